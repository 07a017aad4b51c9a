"""A decoder-only transformer (GPT) for characters, in one file, with no I/O.

References:
1) "Attention Is All You Need", Vaswani et al. 2017: https://arxiv.org/abs/1706.03762
2) GPT-2, "Language Models are Unsupervised Multitask Learners", Radford et al. 2019:
   pre-LayerNorm blocks, a final LayerNorm, and the initialisation used here.
3) "Using the Output Embedding to Improve Language Models", Press & Wolf 2016: the tied head.

Shapes in the comments: B = batch, T = time (characters), C = n_embd (channels), nh = n_head, hs = head size
(C // nh), V = vocab_size, S = how many keys each query is scored against: T in training. (When generating, the
KV cache of engine/ keeps the earlier characters' keys and values, so a new one computes only its own: S is more.)

Read it top to bottom: the config, attention (written out, and fused: tests hold the two equal), rotary positions
and the MLP's nonlinearities, the MLP, the block, what the GPT and the Bigram share (a simple `generate`, the
loss), the GPT, the Bigram (the baseline to beat), build_model. Fast generation (KV cache, CUDA graphs): engine/.
"""

import math
from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GPTConfig:
    # Annotated[type, help]: each field but vocab_size is a --flag of train.py with this help (machinery/settings.py).
    # The defaults: nanoGPT's shakespeare_char model without its dropout of 0.2 (the shakespeare preset has it); presets
    # change them (config.py; shakespeare-cpu, the CPU default: 4 layers, 4 heads, 128 wide, block 64, rotary, qk-norm)
    block_size: Annotated[int, "context length: how many characters the model sees at once"] = 256
    vocab_size: Annotated[int, "number of distinct characters (set from the data)"] = 65
    n_layer: Annotated[int, "number of transformer blocks"] = 6
    n_head: Annotated[int, "attention heads per block; must divide n_embd"] = 6
    n_embd: Annotated[int, "width (C): the vector each position carries through the blocks, the residual stream"] = 384
    dropout: Annotated[float, "dropout probability during training"] = 0.0
    bias: Annotated[bool, "use biases in the Linear and LayerNorm layers"] = False
    attention: Annotated[str, "'sdpa' (F.scaled_dot_product_attention: fused) or 'manual' (written out)"] = "sdpa"
    model: Annotated[str, "'gpt' (the transformer) or 'bigram' (a lookup table: the baseline to beat)"] = "gpt"
    # levers for speed (docs/speed.md: time to a target loss); the classic recipe keeps them off
    position: Annotated[str, "how positions enter: 'learned' (a vector per position, GPT-2), 'rotary' "
                        "(RoPE: q and k turned by an angle that grows with the position)"] = "learned"
    qk_norm: Annotated[bool, "RMS-normalise q and k per head before attention (steadier with high lr)"] = False
    activation: Annotated[str, "the MLP's nonlinearity, a name in model.ACTIVATIONS"] = "gelu"
    # the ideas lessons/buildup.py switches on one at a time, as in "Let's build GPT"; all on is the GPT
    mlp: Annotated[bool, "a feed-forward layer (MLP) after attention in every block"] = True
    residual: Annotated[bool, "residual connections: each block adds its update to x (x + f(x)) "
                              "instead of replacing x with it"] = True
    layer_norm: Annotated[bool, "LayerNorm before attention, before the MLP and before the head (pre-norm)"] = True
    # and what GPT-2 changed: the video's GPT keeps a head of its own and each layer's PyTorch initialisation
    tie_head: Annotated[bool, "the head shares the token embedding's matrix (GPT-2); false: one of its own"] = True
    init: Annotated[str, "'gpt2' (N(0, 0.02), less for the residual projections) "
                    "or 'pytorch' (each layer's own)"] = "gpt2"


def causal_mask(T_q, T_k, device=None):
    """(T_q, T_k) bool, True where a query may look. In training T_q == T_k: the lower triangle of
    the video's tril. With a KV cache (engine/) the T_q queries are the last T_q of the T_k
    positions, so query i sees keys 0 .. i + (T_k - T_q) and nothing later."""
    return torch.ones(T_q, T_k, dtype=torch.bool, device=device).tril(diagonal=T_k - T_q)


class CausalSelfAttention(nn.Module):
    """Each position looks back at itself and earlier positions, in n_head heads at once.

    Every position makes a query (what it is looking for), a key (what it offers) and a
    value (what it passes on). Query i scores the keys of positions 0..i (q . k), the softmax
    of the scores says how much of each value position i takes, and their sum is its output.
    """

    def __init__(self, config, layer_idx=0):
        super().__init__()
        self.n_head = config.n_head
        self.dropout_p = config.dropout  # for sdpa_attention's fused kernel; manual_attention's is attn_dropout
        self.attention = config.attention
        self.layer_idx = layer_idx  # which layer's keys and values in a KV cache are ours
        # one Linear for every head's query, key and value: the video's per-Head Linears, stacked
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.head_size = config.n_embd // config.n_head  # hs: each head's share of the channels
        # qk-norm: each head's q and k divided by their root-mean-square (LayerNorm without subtracting the mean
        # or a gain), so the scores cannot blow up however large the weights grow
        self.q_norm = nn.RMSNorm(self.head_size, elementwise_affine=False) if config.qk_norm else nn.Identity()
        self.k_norm = nn.RMSNorm(self.head_size, elementwise_affine=False) if config.qk_norm else nn.Identity()
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        # probes: each hook_NAME is an nn.Identity, so read self.hook_q(q) as q; lessons/inside.py hangs forward hooks
        # on them to watch the values (as TransformerLens's HookPoints): hook_q/k/v, split into heads (before
        # qk-norm, rotary, the cache), hook_rot_q/k after rotary; scores ... mix in manual_attention only (sdpa fuses)
        for name in ("q", "k", "v", "rot_q", "rot_k", "scores", "mask", "weights", "mix"):
            self.add_module(f"hook_{name}", nn.Identity())

    def forward(self, x, cache=None, rotary=None):
        """x (B, T, C) -> (B, T, C). cache: a KV cache when generating (engine/kv_cache.py: this layer's T new
        keys and values go in after the cached ones); rotary: (cos, sin) of these T positions' angles, or None."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # 3 x (B, T, C): c_attn(x) is q, k, v side by side
        # split the channels into heads and move the head axis next to batch
        q = self.hook_q(q.view(B, T, self.n_head, self.head_size).transpose(1, 2))  # (B, nh, T, hs)
        k = self.hook_k(k.view(B, T, self.n_head, self.head_size).transpose(1, 2))  # (B, nh, T, hs)
        v = self.hook_v(v.view(B, T, self.n_head, self.head_size).transpose(1, 2))  # (B, nh, T, hs)
        q, k = self.q_norm(q), self.k_norm(k)  # (nn.Identity without qk-norm)
        if rotary is not None:  # positions enter here, as angles (apply_rotary, below), instead of being added to x
            q, k = self.hook_rot_q(apply_rotary(q, *rotary)), self.hook_rot_k(apply_rotary(k, *rotary))
        mask = None  # None: the usual causal triangle
        if cache is not None:
            # generating: remember this step's keys and values, attend to all so far
            k, v = cache.append(self.layer_idx, k, v)  # 2 x (B, nh, S, hs), S = earlier + T (or block_size)
            mask = cache.mask(T)  # (T, S): the keys each new query may see; None where it is the plain triangle
        if self.attention == "manual":
            y = self.manual_attention(q, k, v, mask)
        else:
            y = self.sdpa_attention(q, k, v, mask)
        # (B, nh, T, hs) -> (B, T, nh, hs) -> (B, T, C): heads side by side (view needs them so in memory)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))  # (B, T, C): back into the residual stream

    def manual_attention(self, q, k, v, mask=None):
        """softmax(q kᵀ / √hs, future masked out) v, spelled out step by step.

        q has T rows; k and v have S >= T (S > T when earlier keys come from a KV cache).
        mask: which keys each query may see (a KV cache's), if not the causal triangle's.
        """
        T, S, hs = q.size(-2), k.size(-2), q.size(-1)
        # / √hs: q·k adds up hs products, so its spread grows like √hs, and the softmax would go one-hot
        att = self.hook_scores(q @ k.transpose(-2, -1) / math.sqrt(hs))  # (B, nh, T, S): how much t attends to s
        mask = self.hook_mask(causal_mask(T, S, q.device) if mask is None else mask)  # (T, S): the triangle or cache's
        att = att.masked_fill(~mask, float("-inf"))  # no peeking at the future
        att = self.hook_weights(F.softmax(att, dim=-1))  # (B, nh, T, S): each row sums to 1
        att = self.attn_dropout(att)
        return self.hook_mix(att @ v)  # (B, nh, T, hs): a weighted average of the values

    def sdpa_attention(self, q, k, v, mask=None):
        """The same computation as manual_attention, in one fused kernel (FlashAttention on recent GPUs) that never
        materialises the T x S matrix; on a CPU, dropout sends PyTorch back to the written-out math, which does."""
        dropout_p = self.dropout_p if self.training else 0.0
        if mask is None:  # is_causal: the video's tril, right only when T == S (a cache passes its own mask)
            return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)


# --position's choices. To try another scheme, add its name here and its branch in GPT below
POSITIONS = ("learned", "rotary")


def rotary_angles(config, device=None):
    """cos and sin (block_size, hs/2) for rotary position embeddings (Su et al. 2021, "RoFormer"). Channel pair i
    of a head turns by position * theta_i, theta_i = 10000^(-2i/hs): fast turns for fine position, slow ones for
    coarse. Position then enters q.k only as how far apart the two positions are."""
    hs = config.n_embd // config.n_head
    theta = 10000.0 ** (-torch.arange(0, hs, 2, device=device).float() / hs)  # (hs/2,)
    angles = torch.outer(torch.arange(config.block_size, device=device).float(), theta)  # (block_size, hs/2)
    return angles.cos(), angles.sin()


def apply_rotary(x, cos, sin):
    """Turn each channel pair of x (B, nh, T, hs) by the angle for its position (cos, sin: (T, hs/2)).
    Pair i is channel i with channel i + hs/2 (the head split in halves, not neighbours 2i, 2i+1
    as in the RoFormer paper): the same rotation, with channels in another order."""
    x1, x2 = x.float().chunk(2, dim=-1)  # 2 x (B, nh, T, hs/2), in float32: bf16's 3 digits would blur the turns
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).type_as(x)  # cos, sin broadcast over B, nh


class ReLUSquared(nn.Module):
    """relu(x)², simpler arithmetic than GELU, which trained as well or better in "Primer" (So et al. 2021); here it
    trained a little worse, and its steps ran 11% slower on an Intel Xeon VM (docs/speed.md): the presets keep GELU."""

    def forward(self, x):
        return F.relu(x).square()


# --activation's choices. To try another nonlinearity, add its nn.Module class here and pass its name. A gated
# one (SwiGLU: silu(a) * b, a, b: halves of c_fc's output) sets inputs_per_output = 2: c_fc doubles (README: Hack it)
ACTIVATIONS = {"gelu": nn.GELU, "relu2": ReLUSquared}


class MLP(nn.Module):
    """Per-position thinking: widen 4x, GELU (GPT-2's; the video's: ReLU) or ReLU² (a lever tried), project back."""

    def __init__(self, config):
        super().__init__()
        self.act = ACTIVATIONS[config.activation]()
        inputs = getattr(self.act, "inputs_per_output", 1)  # 1, or 2 for a gated activation
        self.c_fc = nn.Linear(config.n_embd, inputs * 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        hidden = self.act(self.c_fc(x))  # (B, T, 4C), from c_fc's (B, T, inputs x 4C)
        return self.dropout(self.c_proj(hidden))  # (B, T, C)


def layer_norm(config):
    """A LayerNorm over the channels, or nothing (nn.Identity) where config switches it off."""
    return nn.LayerNorm(config.n_embd, bias=config.bias) if config.layer_norm else nn.Identity()


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(ln(x)), then x + mlp(ln(x)).

    The ladder's early rungs (lessons/buildup.py) switch parts off (config.mlp, residual,
    layer_norm), to show what each one buys; the GPT has them all."""

    def __init__(self, config, layer_idx=0):
        super().__init__()
        self.residual = config.residual
        self.ln_1 = layer_norm(config)
        self.attn = CausalSelfAttention(config, layer_idx)
        self.ln_2 = layer_norm(config) if config.mlp else None
        self.mlp = MLP(config) if config.mlp else None

    def forward(self, x, cache=None, rotary=None):
        """x (B, T, C) -> (B, T, C); cache and rotary go to the attention (see its forward)."""
        x = self.join(x, self.attn(self.ln_1(x), cache, rotary))  # (B, T, C): tokens talk to each other
        if self.mlp is not None:
            x = self.join(x, self.mlp(self.ln_2(x)))  # (B, T, C): each token thinks on its own
        return x

    def join(self, x, update):
        """The residual connection: x + update. Gradients flow straight down the sum to every
        block, which is what lets deep stacks train; without it, update replaces x."""
        return x + update if self.residual else update


class LanguageModel(nn.Module):
    """What GPT and Bigram share: forward(idx, targets, cache) -> (logits, loss), and text
    generation on top of it. A subclass sets self.config (block_size, n_layer, ...)."""

    @torch.inference_mode()  # no autograd bookkeeping at all: a little faster than no_grad
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None):
        """Extend idx (B, T) by max_new_tokens sampled characters -> (B, T + max_new_tokens).

        The simple way, and the reference for engine/'s fast one: run the whole (cropped)
        context through the model for every new character. The model only knows block_size
        positions, so older characters fall out of view once the context is longer.
        """
        for _ in range(max_new_tokens):
            context = idx[:, -self.config.block_size:]  # (B, <= block_size)
            logits, _ = self(context)
            logits = logits[:, -1, :].float()  # (B, V): the last position's scores, those for the next character
            if temperature == 0:  # greedy: always the likeliest
                idx_next = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
            else:
                logits = logits / temperature  # below 1 sharpens the distribution, above 1 flattens it
                if top_k is not None and top_k < logits.size(-1):  # only the k likeliest stay in the draw
                    kth = torch.topk(logits, top_k).values[:, [-1]]  # (B, 1): the k-th best score
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = F.softmax(logits, dim=-1)  # (B, V)
                idx_next = torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)
            idx = torch.cat((idx, idx_next), dim=1)  # (B, T + 1): the context grows by one
        return idx


def lm_loss(logits, targets):
    """Mean cross-entropy of logits (B, T, V) against the next characters, targets (B, T), taken as B*T rows (the
    form F.cross_entropy wants) in float32 (train.py's autocast may make logits bf16 or fp16); None without targets."""
    if targets is None:
        return None
    B, T, V = logits.shape
    return F.cross_entropy(logits.reshape(B * T, V).float(), targets.reshape(B * T))


class GPT(LanguageModel):
    """Token embedding (+ position embedding) -> n_layer Blocks -> a final LayerNorm -> the head (tied to the
    token embedding unless tie_head is false): idx (B, T) -> logits (B, T, V), and the loss when given targets."""

    def __init__(self, config):
        super().__init__()
        # catches a bad value set in Python; a bad --flag is refused earlier, with advice (machinery/settings.py)
        for name, known in (("position", POSITIONS), ("activation", ACTIVATIONS), ("attention", ("sdpa", "manual")),
                            ("init", ("gpt2", "pytorch")), ("model", ("gpt", "bigram"))):
            assert getattr(config, name) in known, f"{name} must be one of {', '.join(known)}"
        self.config = config
        parts = dict(wte=nn.Embedding(config.vocab_size, config.n_embd))  # token embedding
        if config.position == "learned":
            parts["wpe"] = nn.Embedding(config.block_size, config.n_embd)  # learned position embedding
        elif config.position == "rotary":  # fixed angles, not weights (persistent=False keeps them out of checkpoints)
            cos, sin = rotary_angles(config)
            self.register_buffer("rotary_cos", cos, persistent=False)  # (block_size, hs/2)
            self.register_buffer("rotary_sin", sin, persistent=False)
            self.hook_rotary = nn.Identity()  # a probe (see CausalSelfAttention's)
        parts.update(drop=nn.Dropout(config.dropout),
                     h=nn.ModuleList([Block(config, i) for i in range(config.n_layer)]),  # h: the blocks
                     ln_f=layer_norm(config))
        self.transformer = nn.ModuleDict(parts)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_head:  # weight tying: reading a character in and writing it out share one matrix
            self.transformer.wte.weight = self.lm_head.weight  # both (V, C): a Linear stores (out, in)
        if config.init == "gpt2":  # (else PyTorch's own init, as in the video's GPT; tied, the head's uniform one)
            self.apply(self._init_weights)
            # GPT-2: the 2 projections per block that write into the residual stream (attn's and mlp's c_proj) get std
            # 0.02 / sqrt(2 * n_layer): the stream's 2 * n_layer writes then sum to the same variance whatever n_layer
            for block in self.transformer.h:
                for writer in (block.attn, block.mlp):
                    if writer is not None:  # (the ladder's early rungs have no MLP)
                        nn.init.normal_(writer.c_proj.weight, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        """GPT-2 initialisation: weights N(0, 0.02), biases 0 (LayerNorms keep their 1s, and 0s if bias)."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx, targets=None, cache=None):
        """idx (B, T) of ids -> (logits (B, T, V), mean cross-entropy or None).

        With a KV cache (engine/kv_cache.py), idx continues the text the cache holds: its positions start after the
        cached ones, and its keys and values go into the cache (the caller then moves cache.length on by T).
        """
        B, T = idx.shape
        assert T <= self.config.block_size, f"{T} positions, but the model knows only {self.config.block_size}"
        # (T,): 0, 1, ..., or, generating with a KV cache, the positions after the cached ones (engine/kv_cache.py)
        positions = torch.arange(T, device=idx.device) if cache is None else cache.positions(T, idx.device)
        x = self.transformer.wte(idx)  # (B, T, C): each character's vector (the video's tok_emb)
        rotary = None
        if self.config.position == "learned":
            pos_emb = self.transformer.wpe(positions)  # (T, C)
            x = x + pos_emb  # (B, T, C): pos_emb broadcast over the batch
        elif self.config.position == "rotary":  # the angles of these positions, for attention to turn q and k by
            rotary = self.hook_rotary((self.rotary_cos[positions], self.rotary_sin[positions]))  # 2 x (T, hs/2)
        x = self.transformer.drop(x)  # (B, T, C)
        for block in self.transformer.h:
            x = block(x, cache, rotary)  # (B, T, C)
        x = self.transformer.ln_f(x)  # (B, T, C)
        logits = self.lm_head(x)  # (B, T, V): a score for every possible next character
        return logits, lm_loss(logits, targets)


class Bigram(LanguageModel):
    """The simplest language model: the next character depends on the current one only.
    A learned table of V x V scores; row i scores what follows character i. It sees no
    context at all, so the gap between its loss and GPT's is what the context buys."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.table = nn.Embedding(config.vocab_size, config.vocab_size)  # (V, V)
        nn.init.zeros_(self.table.weight)  # start uniform: loss ln V (the video's N(0, 1) table starts higher)

    def forward(self, idx, targets=None, cache=None):  # (a cache has nothing to hold: a bigram reads one character)
        logits = self.table(idx)  # (B, T, V): row idx[b, t] of the table
        return logits, lm_loss(logits, targets)


def build_model(config):
    """The model that config.model names."""
    return Bigram(config) if config.model == "bigram" else GPT(config)
