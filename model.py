"""A decoder-only transformer (GPT) for characters, in one file, with no I/O.

References:
1) "Attention Is All You Need", Vaswani et al. 2017: https://arxiv.org/abs/1706.03762
2) GPT-2, "Language Models are Unsupervised Multitask Learners", Radford et al. 2019:
   pre-LayerNorm blocks, a final LayerNorm, and the initialisation used here.
3) "Using the Output Embedding to Improve Language Models", Press & Wolf 2016: the tied head.

Shapes in the comments: B = batch, T = time (characters), C = n_embd (channels),
nh = n_head, hs = head size (C // nh), V = vocab_size, S = the keys' positions: T without a
KV cache, the cached positions plus T with one (block_size for a StaticKVCache, masked).

Generating text comes twice: `generate` runs the whole context for every new
character (simple, and the reference), `stream` keeps a KV cache and feeds one
character per step (fast). Tests hold the two to the same tokens within block_size
(past it, stream starts its cache again from half a window). On a GPU, stream can
replay each step as one recorded CUDA graph (GraphedStep, with a StaticKVCache).

`Bigram` is the baseline: a table of next-character scores, nothing else. `Recorder`
lets teaching tools see inside a forward pass; `python model.py` uses it to print the
shape of every tensor on the way through.
"""

import math
from collections import Counter
from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GPTConfig:
    # Annotated[type, help]: train.py turns each field into a --flag with this help
    block_size: Annotated[int, "context length: how many characters the model sees at once"] = 256
    vocab_size: Annotated[int, "number of distinct characters (set from the data)"] = 65
    n_layer: Annotated[int, "number of transformer blocks"] = 6
    n_head: Annotated[int, "attention heads per block; must divide n_embd"] = 6
    n_embd: Annotated[int, "width (C): the vector each position carries through the blocks, the residual stream"] = 384
    dropout: Annotated[float, "dropout probability during training"] = 0.0
    bias: Annotated[bool, "use biases in the Linear and LayerNorm layers"] = False
    attention: Annotated[str, "'sdpa' (fused PyTorch kernel) or 'manual' (written out)"] = "sdpa"
    model: Annotated[str, "'gpt' (the transformer) or 'bigram' (a lookup table: the baseline to beat)"] = "gpt"
    # levers for speed (docs/speed.md: time to a target loss); the classic recipe keeps them off
    position: Annotated[str, "'learned' (a vector per position, GPT-2) or 'rotary' (RoPE: q and k turned "
                        "by an angle that grows with the position)"] = "learned"
    qk_norm: Annotated[bool, "RMS-normalise q and k per head before attention (steadier with high lr)"] = False
    activation: Annotated[str, "MLP nonlinearity, a name in model.ACTIVATIONS: 'gelu', 'relu2' "
                          "(relu, squared)"] = "gelu"
    # the ideas buildup.py switches on one at a time, as in "Let's build GPT"; all on is the GPT
    mlp: Annotated[bool, "a feed-forward layer (MLP) after attention in every block"] = True
    residual: Annotated[bool, "residual connections: each block adds its update to x (x + f(x)) "
                              "instead of replacing x with it"] = True
    layer_norm: Annotated[bool, "LayerNorm before attention, before the MLP and before the head (pre-norm)"] = True


def build_model(config):
    """The model that config.model names."""
    return Bigram(config) if config.model == "bigram" else GPT(config)


# ----------------------------------------------------------------------------
# Looking inside: teaching tools record the tensors of one forward pass. Normal runs
# record nothing, and the record() calls cost one comparison each.


class Recorder:
    """`with Recorder() as rec: model(idx)` -> rec.records, a list of (name, dims, tensor)
    in the order the forward pass made them. Names inside a block come once per block."""

    active = None  # the Recorder in use, if any

    def __init__(self):
        self.records = []

    def __enter__(self):
        Recorder.active = self
        return self

    def __exit__(self, *exc):
        Recorder.active = None

    def get(self, name):
        """The tensors recorded under name, in order: for a name inside a block, one per layer."""
        return [tensor for n, _, tensor in self.records if n == name]


def record(name, tensor, dims):
    """Show tensor, whose axes dims names (e.g. "B, T, C"), to the active Recorder, if any."""
    if Recorder.active is not None:
        Recorder.active.records.append((name, dims, tensor.detach()))


def trace_shapes(model, idx, targets=None):
    """Run one forward pass -> lines "name  shape  (dims)". Each name appears once,
    with how often it repeats: every block makes the same shapes."""
    with torch.no_grad(), Recorder() as rec:
        model(idx, targets)
    counts = Counter(name for name, _, _ in rec.records)
    named = max(len(name) for name, _, _ in rec.records)  # the columns fit the longest name and shape
    width = max(len(str(tuple(tensor.shape))) for _, _, tensor in rec.records)
    lines, seen = [], set()
    for name, dims, tensor in rec.records:
        if name not in seen:
            seen.add(name)
            repeat = f"  x {counts[name]}, once per block" if counts[name] > 1 else ""
            lines.append(f"{name:<{named}}  {str(tuple(tensor.shape)):<{width}}  ({dims}){repeat}")
    return lines


def causal_mask(T_q, T_k, device=None):
    """(T_q, T_k) bool, True where a query may look: the T_q queries are the last T_q of
    the T_k positions, so query i sees keys 0 .. i + (T_k - T_q) and nothing later."""
    return torch.ones(T_q, T_k, dtype=torch.bool, device=device).tril(diagonal=T_k - T_q)


class CausalSelfAttention(nn.Module):
    """Each position looks back at itself and earlier positions, in n_head heads at once.

    Every position makes a query (what it is looking for), a key (what it offers) and a
    value (what it passes on). Query i scores the keys of positions 0..i (q . k), the softmax
    of the scores says how much of each value position i takes, and their sum is its output.
    """

    def __init__(self, config, layer_idx=0):
        super().__init__()
        assert config.n_embd % config.n_head == 0, "n_embd must be divisible by n_head"
        assert config.position != "rotary" or config.n_embd // config.n_head % 2 == 0, "rotary turns channel pairs"
        assert config.attention in ("sdpa", "manual"), "attention must be 'sdpa' or 'manual'"
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.attention = config.attention
        self.layer_idx = layer_idx  # which slot of a KV cache is ours
        self.qk_norm = config.qk_norm
        # one Linear makes queries, keys and values for all heads at once
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x, cache=None, rotary=None):
        """x (B, T, C) -> (B, T, C). cache: a KV cache when generating (this layer's slot grows
        by T); rotary: the (cos, sin) angles of these T positions, or None for learned positions."""
        B, T, C = x.shape
        qkv = self.c_attn(x)  # (B, T, 3C)
        record("attn: c_attn(x), q k v side by side", qkv, "B, T, 3C")
        q, k, v = qkv.split(C, dim=2)  # 3 x (B, T, C)
        # split the channels into heads and move the head axis next to batch
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        record("attn: q, split into heads", q, "B, nh, T, hs")
        if self.qk_norm:  # unit RMS per head: the scores cannot blow up, however large the weights grow
            q, k = F.rms_norm(q, (q.size(-1),)), F.rms_norm(k, (k.size(-1),))
            record("attn: qk-norm(q), unit RMS per head (k too)", q, "B, nh, T, hs")
        if rotary is not None:  # positions enter here, as angles, instead of being added to x
            record("attn: rotary angles cos, sin", rotary[0], "T, hs/2")
            q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
            record("attn: rotary(q), turned by position (k too)", q, "B, nh, T, hs")
        mask = None  # None: the usual causal triangle
        if cache is not None:
            # generating: remember this step's keys and values, attend to all so far
            k, v = cache.append(self.layer_idx, k, v)  # 2 x (B, nh, S, hs), S = earlier + T
            mask = cache.mask()  # a StaticKVCache's (1, S): which of its slots are written yet
        record("attn: k (with the cache: all so far)", k, "B, nh, S, hs")
        record("attn: v", v, "B, nh, S, hs")
        if self.attention == "manual" or Recorder.active is not None:  # a Recorder wants the scores
            y = self.manual_attention(q, k, v, mask)
        else:
            y = self.sdpa_attention(q, k, v, mask)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): heads side by side again
        record("attn: heads joined again", y, "B, T, C")
        return self.resid_dropout(self.c_proj(y))  # (B, T, C): back into the residual stream

    def manual_attention(self, q, k, v, mask=None):
        """softmax(q kᵀ / √hs, future masked out) v, spelled out step by step.

        q has T rows; k and v have S >= T (S > T when earlier keys come from a KV cache).
        mask: which keys each query may see, if not the causal triangle's (broadcast to T, S).
        """
        T, S, hs = q.size(-2), k.size(-2), q.size(-1)
        att = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, nh, T, S): how much t attends to s
        record("attn: scores q @ k^T / sqrt(hs)", att, "B, nh, T, S")
        mask = causal_mask(T, S, q.device) if mask is None else mask  # (T, S), or a StaticKVCache's (1, S)
        record("attn: causal mask", mask, "T, S")
        att = att.masked_fill(~mask, float("-inf"))  # no peeking at the future
        att = F.softmax(att, dim=-1)  # each row sums to 1
        record("attn: weights, softmax(scores)", att, "B, nh, T, S")
        att = self.attn_dropout(att)
        y = att @ v  # (B, nh, T, hs): a weighted average of the values
        record("attn: weights @ v", y, "B, nh, T, hs")
        return y

    def sdpa_attention(self, q, k, v, mask=None):
        """The same computation as manual_attention, in one fused kernel (FlashAttention
        on recent GPUs) that never materialises the T x S matrix."""
        T, S = q.size(-2), k.size(-2)
        dropout_p = self.dropout if self.training else 0.0
        if mask is not None:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        if T == S:  # training, or the first step of generation: the usual triangle
            return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
        # is_causal would align the triangle to the top left, which is wrong when T < S;
        # one new query (T == 1) may see every cached key, so it needs no mask at all
        mask = None if T == 1 else causal_mask(T, S, q.device)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)


class ReLUSquared(nn.Module):
    """relu(x)², a cheaper nonlinearity than GELU that trains as well or better
    (So et al. 2021, "Primer")."""

    def forward(self, x):
        return F.relu(x).square()


# --activation's choices: to try another nonlinearity, add it here and pass its name
ACTIVATIONS = {"gelu": nn.GELU, "relu2": ReLUSquared}


def rotary_angles(config, device=None):
    """cos and sin (block_size, hs/2) for rotary position embeddings (Su et al. 2021, "RoFormer").
    Channel pair i of a head turns by position * theta_i, theta_i = 10000^(-2i/hs): fast turns
    for fine position, slow ones for coarse. q.k then depends only on how far apart two
    positions are."""
    hs = config.n_embd // config.n_head
    theta = 10000.0 ** (-torch.arange(0, hs, 2, device=device).float() / hs)  # (hs/2,)
    angles = torch.outer(torch.arange(config.block_size, device=device).float(), theta)  # (block_size, hs/2)
    return angles.cos(), angles.sin()


def apply_rotary(x, cos, sin):
    """Turn each channel pair of x (B, nh, T, hs) by the angle for its position (cos, sin: (T, hs/2)).
    Pair i is channel i with channel i + hs/2 (the head split in halves, not neighbours 2i, 2i+1
    as in the RoFormer paper): the same rotation, with channels in another order."""
    x1, x2 = x.float().chunk(2, dim=-1)  # 2 x (B, nh, T, hs/2)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).type_as(x)


class MLP(nn.Module):
    """Per-position thinking: widen 4x, a nonlinearity (GELU; or ReLU², a speed lever), project back."""

    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        assert config.activation in ACTIVATIONS, f"activation must be one of {', '.join(ACTIVATIONS)}"
        self.activation = config.activation
        self.act = ACTIVATIONS[config.activation]()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        hidden = self.act(self.c_fc(x))  # (B, T, 4C)
        record(f"mlp: {self.activation}(c_fc(x))", hidden, "B, T, 4C")
        return self.dropout(self.c_proj(hidden))  # (B, T, C)


def layer_norm(config):
    """A LayerNorm over the channels, or nothing (nn.Identity) where config switches it off."""
    return nn.LayerNorm(config.n_embd, bias=config.bias) if config.layer_norm else nn.Identity()


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(ln(x)), then x + mlp(ln(x)).

    buildup.py's early rungs switch parts off (config.mlp, residual, layer_norm), to show
    what each one buys; the GPT has them all."""

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
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None):
        """Extend idx (B, T) by max_new_tokens sampled characters -> (B, T + max_new_tokens).

        The simple way, and the reference for `stream`: run the whole (cropped) context
        through the model for every new character. The model only knows block_size
        positions, so older characters fall out of view once the context is longer.
        """
        for _ in range(max_new_tokens):
            context = idx[:, -self.config.block_size:]  # (B, <= block_size)
            logits, _ = self(context)
            idx_next = sample_next(logits[:, -1, :], temperature, top_k, top_p, generator)  # (B, 1)
            idx = torch.cat((idx, idx_next), dim=1)
        return idx

    @torch.inference_mode()
    def stream(self, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None,
               cuda_graph=False):
        """Like generate, but fast: yields each new column of ids (B,) as soon as it is sampled.

        The prompt goes through the model once (prefill) and fills a KV cache; each later
        step feeds only the newest character, which attends to the cached keys and values.

        Past block_size: the positions stop at block_size - 1 (the learned table, and
        rotary's too), and sliding the window by one would give every cached key a new
        position, so the whole cache would be stale. Instead, when the cache is full, it
        starts again from the last half window (re-prefilled at positions 0 ..), and fills
        up again one character at a time. The model then always sees between half and a
        whole window of context, and a re-prefill of block_size/2 characters is paid once
        every block_size/2 characters, so the cost per character stays bounded.

        cuda_graph=True: each step is a replay of one recorded CUDA graph (GraphedStep), and
        the prompt goes in one character at a time. The logits agree with the plain path's
        to float rounding, so the tokens are the same unless a draw falls that close to the
        boundary between two characters.
        """
        block_size = self.config.block_size
        keep = max(1, block_size // 2)  # the context kept when the cache is full
        graphed = GraphedStep(self, idx.size(0)) if cuda_graph else None
        cache = graphed.cache if graphed else KVCache(self.config, idx.size(0))
        recent = idx[:, -block_size:]  # (B, <= block_size): all that can ever be re-fed
        context = recent  # what the model reads next: the prompt, then one character per step
        for _ in range(max_new_tokens):
            if cache.length + context.size(1) > block_size:  # full: start again from half a window
                cache.reset()
                context = recent[:, -keep:]
            logits = graphed(context) if graphed else self(context, cache=cache)[0][:, -1, :]  # (B, V)
            idx_next = sample_next(logits, temperature, top_k, top_p, generator)  # (B, 1)
            recent = torch.cat((recent, idx_next), dim=1)[:, -block_size:]
            context = idx_next
            yield idx_next[:, 0]  # (B,)

    def generate_cached(self, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None,
                        cuda_graph=False):
        """`stream`, collected -> (B, T + max_new_tokens). Within block_size it is exactly
        what generate returns, only faster; past it, see stream."""
        columns = self.stream(idx, max_new_tokens, temperature, top_k, top_p, generator, cuda_graph)
        return torch.cat([idx] + [column[:, None] for column in columns], dim=1)  # (B, T + new)


def lm_loss(logits, targets):
    """Mean cross-entropy of logits (B, T, V) against the next characters targets (B, T),
    in float32 (under autocast the logits may be bf16 or fp16); None without targets."""
    if targets is None:
        return None
    B, T, V = logits.shape
    loss = F.cross_entropy(logits.reshape(B * T, V).float(), targets.reshape(B * T))
    record("loss", loss, "a number: mean over B*T")
    return loss


class GPT(LanguageModel):
    """Token embedding (+ position embedding) -> n_layer Blocks -> a final LayerNorm -> the tied
    head: idx (B, T) -> logits (B, T, V), and the loss when targets are given."""

    def __init__(self, config):
        super().__init__()
        assert config.position in ("learned", "rotary"), "position must be 'learned' or 'rotary'"
        self.config = config
        parts = dict(wte=nn.Embedding(config.vocab_size, config.n_embd))  # token embedding
        if config.position == "learned":
            parts["wpe"] = nn.Embedding(config.block_size, config.n_embd)  # learned position embedding
        else:  # rotary: fixed angles, not weights (persistent=False keeps them out of checkpoints)
            cos, sin = rotary_angles(config)
            self.register_buffer("rotary_cos", cos, persistent=False)  # (block_size, hs/2)
            self.register_buffer("rotary_sin", sin, persistent=False)
        parts.update(drop=nn.Dropout(config.dropout),
                     h=nn.ModuleList([Block(config, i) for i in range(config.n_layer)]),
                     ln_f=layer_norm(config))
        self.transformer = nn.ModuleDict(parts)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # weight tying: reading a character in and writing it out share one matrix
        self.transformer.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)
        # GPT-2: the projections that write into the residual stream get a smaller
        # std, so the stream's variance does not grow with depth (2 per block)
        for block in self.transformer.h:
            for writer in (block.attn, block.mlp):
                if writer is not None:  # (buildup.py's early rungs have no MLP)
                    nn.init.normal_(writer.c_proj.weight, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        """GPT-2 initialisation: weights N(0, 0.02), biases 0 (LayerNorms keep 1 and 0)."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self, non_embedding=False):
        """Parameters, counting the tied embedding once.

        non_embedding=True leaves out the position embedding, the convention
        behind the "10.65M" that nanoGPT prints for its Shakespeare model.
        """
        n = sum(p.numel() for p in self.parameters())  # parameters() yields a tied tensor once
        if non_embedding and "wpe" in self.transformer:
            n -= self.transformer.wpe.weight.numel()
        return n

    def forward(self, idx, targets=None, cache=None):
        """idx (B, T) of ids -> (logits (B, T, V), mean cross-entropy or None).

        With a KV cache, idx continues the text the cache holds: its positions start
        after the cached ones, and its keys and values are added to the cache.
        """
        B, T = idx.shape
        start = cache.length if cache is not None else 0
        assert start + T <= self.config.block_size, \
            f"{start + T} positions, but the model knows only block_size {self.config.block_size}"
        # (T,): start, start + 1, ...; a StaticKVCache gives its position as a tensor instead
        positions = cache.positions(T, idx.device) if cache is not None else torch.arange(T, device=idx.device)
        x = tok_emb = self.transformer.wte(idx)  # (B, T, C)
        record("idx", idx, "B, T")
        record("token embedding wte(idx)", tok_emb, "B, T, C")
        rotary = None
        if "wpe" in self.transformer:
            pos_emb = self.transformer.wpe(positions)  # (T, C)
            x = tok_emb + pos_emb  # (B, T, C): broadcast over the batch
            record("position embedding wpe(pos)", pos_emb, "T, C")
            record("x = tok + pos", x, "B, T, C")
        else:  # the angles of these positions, for attention to turn q and k by
            rotary = self.rotary_cos[positions], self.rotary_sin[positions]  # 2 x (T, hs/2)
        x = self.transformer.drop(x)  # (B, T, C)
        for block in self.transformer.h:
            x = block(x, cache, rotary)  # (B, T, C)
            record("block output", x, "B, T, C")
        if cache is not None:
            cache.length += T
        x = self.transformer.ln_f(x)  # (B, T, C)
        logits = self.lm_head(x)  # (B, T, V): a score for every possible next character
        record("logits = lm_head(ln_f(x))", logits, "B, T, V")
        return logits, lm_loss(logits, targets)


class Bigram(LanguageModel):
    """The simplest language model: the next character depends on the current one only.
    A learned table of V x V scores; row i scores what follows character i. It sees no
    context at all, so the gap between its loss and GPT's is what the context buys."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.table = nn.Embedding(config.vocab_size, config.vocab_size)  # (V, V)
        nn.init.zeros_(self.table.weight)  # start uniform: every character equally likely

    def num_params(self, non_embedding=False):  # (GPT's signature; a table has no position embedding)
        return self.table.weight.numel()

    def forward(self, idx, targets=None, cache=None):
        if cache is not None:  # nothing to remember: the last character is all a bigram reads
            cache.length += idx.size(1)
        logits = self.table(idx)  # (B, T, V): row idx[b, t] of the table
        record("idx", idx, "B, T")
        record("logits = table[idx]", logits, "B, T, V")
        return logits, lm_loss(logits, targets)


class KVCache:
    """The keys and values of every layer for the positions generated so far.

    Without it, each new character recomputes keys and values for the whole context;
    with it, a step computes them for one position and reads the rest from here.
    Memory: 2 (keys and values) x n_layer x B x block_size x n_embd numbers,
    allocated once on the first step and never grown.
    """

    def __init__(self, config, batch_size):
        self.config = config
        self.batch_size = batch_size
        self.k = self.v = None  # (n_layer, B, nh, block_size, hs) each, once allocated
        self.length = 0  # positions filled (the same for every layer after a forward)

    def append(self, layer, k, v):
        """Store k, v (B, nh, T, hs) after the cached positions -> all of them, 2 x (B, nh, S, hs)."""
        if self.k is None:  # allocate on first use, on the device and in the dtype of the model
            c = self.config
            shape = (c.n_layer, self.batch_size, c.n_head, c.block_size, c.n_embd // c.n_head)
            self.k, self.v = k.new_empty(shape), v.new_empty(shape)
        end = self.length + k.size(2)
        self.k[layer, :, :, self.length:end] = k
        self.v[layer, :, :, self.length:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def positions(self, T, device=None):
        """(T,): the positions of the T new characters, after the cached ones."""
        return torch.arange(self.length, self.length + T, device=device)

    def mask(self):
        """None: attention's usual causal rule picks the keys (StaticKVCache needs its own)."""
        return None

    def reset(self):
        """Forget the cached positions (the memory stays allocated for reuse)."""
        self.length = 0


class StaticKVCache(KVCache):
    """A KV cache that a CUDA graph can use (GraphedStep): its tensors keep one shape and one
    address, and where it writes comes from a tensor on the device, not from a Python number,
    so one recorded step serves every position.

    It takes one position per step, written at slot pos; attention reads all block_size slots,
    with a mask that hides the slots after pos (unwritten, or left over from before a reset).
    """

    def __init__(self, config, batch_size, device, dtype):
        super().__init__(config, batch_size)
        c = config
        shape = (c.n_layer, batch_size, c.n_head, c.block_size, c.n_embd // c.n_head)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.pos = torch.zeros(1, dtype=torch.long, device=device)  # (1,): the slot this step writes
        self.slots = torch.arange(c.block_size, device=device)  # (block_size,)

    def append(self, layer, k, v):
        """k, v (B, nh, 1, hs) into slot pos -> every slot, 2 x (B, nh, block_size, hs)."""
        assert k.size(2) == 1, "a StaticKVCache takes one position per step"
        self.k[layer].index_copy_(2, self.pos, k)
        self.v[layer].index_copy_(2, self.pos, v)
        return self.k[layer], self.v[layer]

    def positions(self, T, device=None):
        assert T == 1, "a StaticKVCache takes one position per step"
        return self.pos

    def mask(self):
        return (self.slots <= self.pos).view(1, -1)  # (T=1, S=block_size): the written slots, this one's too


class GraphedStep:
    """One decoding step (one new character per row -> the logits of the next) recorded once
    as a CUDA graph and replayed for every character.

    Batch-1 decoding of a model this small is launch-bound: a step is a few hundred tiny
    kernels, and the CPU takes longer to launch each than the GPU takes to run it. A replay
    launches them all at once. The graph reads its inputs from, and writes its logits to,
    the same tensors every time, so a step copies the character in and reads the logits out.
    The prompt goes through the same step, one character at a time: simple, and at most
    block_size replays. Off a GPU the step runs eagerly, which lets a CPU test check its arithmetic.
    """

    def __init__(self, model, batch_size):
        # a replay repeats what was recorded: dropout's random mask, or a Recorder's records, would be frozen
        assert not model.training and Recorder.active is None, "record the decoding step of a model in eval mode"
        weight = next(model.parameters())
        self.model = model
        self.cache = StaticKVCache(model.config, batch_size, weight.device, weight.dtype)
        self.token = torch.zeros(batch_size, 1, dtype=torch.long, device=weight.device)  # (B, 1)
        self.graph = None
        if weight.device.type == "cuda":
            with torch.cuda.device(weight.device):  # the streams and the graph on the model's GPU
                side = torch.cuda.Stream()  # warm up (lazy initialisations) off the main stream, as capture wants
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    for _ in range(3):
                        self.run()
                torch.cuda.current_stream().wait_stream(side)
                self.graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(self.graph):
                    self.logits = self.run()  # (B, V): refilled by every replay
        self.cache.reset()

    def run(self):
        # the step must not depend on where generation is, as a Python number: a graph would keep the
        # value it saw when recorded. So the model's own count stays 0, and the position is cache.pos
        self.cache.length = 0
        return self.model(self.token, cache=self.cache)[0][:, -1]

    def __call__(self, context):
        """Feed context (B, T) one character at a time, after the cached ones -> the logits (B, V)
        after its last. On a GPU they are the graph's output tensor, which the next call
        overwrites: use them (sample) before calling again."""
        for t in range(context.size(1)):
            position = self.cache.length
            self.token.copy_(context[:, t:t + 1])
            self.cache.pos.fill_(position)
            if self.graph is None:
                self.logits = self.run()
            else:
                self.graph.replay()  # refills self.logits
            self.cache.length = position + 1
        return self.logits


def keep_top_k(logits, k):
    """logits (B, V) -> the same, with all but the k highest set to -inf."""
    if k >= logits.size(-1):
        return logits
    kth = torch.topk(logits, k).values[:, [-1]]  # (B, 1): the k-th best score
    return logits.masked_fill(logits < kth, float("-inf"))


def keep_top_p(logits, p):
    """logits (B, V) -> the same, keeping only the nucleus: the fewest likeliest
    characters whose probabilities add up to at least p (the likeliest always stays)."""
    if p >= 1.0:
        return logits
    probs, order = F.softmax(logits, dim=-1).sort(dim=-1, descending=True)  # (B, V) each
    mass_before = probs.cumsum(dim=-1) - probs  # (B, V): the mass of the likelier characters
    drop_sorted = mass_before >= p  # already enough without this one
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # (B, V): back in vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def sample_next(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    """Scores of the last position (B, V) -> the next ids (B, 1).

    temperature 0 is greedy (always the likeliest); otherwise top-k, then top-p,
    narrow the choice before drawing from the softmax.
    """
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits.float() / temperature
    if top_k is not None:
        logits = keep_top_k(logits, top_k)
    if top_p is not None:
        logits = keep_top_p(logits, top_p)
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)


def main(argv=None):
    """python model.py: follow one batch through a small GPT, shape by shape. The sizes
    differ from each other on purpose, so each number in a shape names one axis; only S, the
    number of keys, equals T, because without a KV cache every position is a key."""
    from machinery.cli import ArgumentParser  # (here, not at the top: the model itself needs only torch)
    ArgumentParser(description="Follow one batch through a small GPT and print every tensor's shape, "
                               "with its axes. (train.py --trace_shapes does it for your own config.)").parse_args(argv)
    config = GPTConfig(block_size=8, vocab_size=65, n_layer=2, n_head=4, n_embd=48)
    B, T = 2, config.block_size
    torch.manual_seed(0)
    idx = torch.randint(config.vocab_size, (B, T))  # (B, T): a batch of character ids
    targets = torch.randint(config.vocab_size, (B, T))  # (B, T): the characters that follow
    print(f"B={B} batch, T={T} time, C={config.n_embd} channels, nh={config.n_head} heads, "
          f"hs={config.n_embd // config.n_head} head size, S=T keys, V={config.vocab_size} vocabulary")
    for line in trace_shapes(GPT(config), idx, targets):
        print(line)
    return 0


if __name__ == "__main__":
    from machinery.cli import run_cli
    raise SystemExit(run_cli(main))
