"""A decoder-only transformer (GPT) for characters, in one file, with no I/O.

References:
1) "Attention Is All You Need", Vaswani et al. 2017: https://arxiv.org/abs/1706.03762
2) GPT-2, "Language Models are Unsupervised Multitask Learners", Radford et al. 2019:
   pre-LayerNorm blocks, a final LayerNorm, and the initialisation used here.
3) "Using the Output Embedding to Improve Language Models", Press & Wolf 2016: the tied head.

Shapes in the comments: B = batch, T = time (characters), C = n_embd (channels),
nh = n_head, hs = head size (C // nh), V = vocab_size.
"""

import math
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
    n_embd: Annotated[int, "width of the residual stream (C)"] = 384
    dropout: Annotated[float, "dropout probability during training"] = 0.0
    bias: Annotated[bool, "use biases in the Linear and LayerNorm layers"] = False
    attention: Annotated[str, "'sdpa' (fused PyTorch kernel) or 'manual' (written out)"] = "sdpa"


class CausalSelfAttention(nn.Module):
    """Each position looks back at itself and earlier positions, in n_head heads at once."""

    def __init__(self, config):
        super().__init__()
        assert config.n_embd % config.n_head == 0, "n_embd must be divisible by n_head"
        assert config.attention in ("sdpa", "manual"), "attention must be 'sdpa' or 'manual'"
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.attention = config.attention
        # one Linear makes queries, keys and values for all heads at once
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # 3 x (B, T, C)
        # split the channels into heads and move the head axis next to batch
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        if self.attention == "manual":
            y = self.manual_attention(q, k, v)
        else:
            # the same computation as manual_attention, in one fused kernel
            # (FlashAttention on recent GPUs); it never materialises the T x T matrix
            y = F.scaled_dot_product_attention(
                q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): heads side by side again
        return self.resid_dropout(self.c_proj(y))

    def manual_attention(self, q, k, v):
        """softmax(q kᵀ / √hs, future masked out) v, spelled out step by step."""
        T, hs = q.size(-2), q.size(-1)
        att = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, nh, T, T): how much t attends to s
        causal = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()  # (T, T): s <= t
        att = att.masked_fill(~causal, float("-inf"))  # no peeking at the future
        att = F.softmax(att, dim=-1)  # each row sums to 1
        att = self.attn_dropout(att)
        return att @ v  # (B, nh, T, hs): a weighted average of the values


class MLP(nn.Module):
    """Per-position thinking: widen 4x, GELU, project back."""

    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))  # (B, T, C)


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))  # tokens talk to each other
        x = x + self.mlp(self.ln_2(x))  # each token thinks on its own
        return x


class GPT(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),  # token embedding
            wpe=nn.Embedding(config.block_size, config.n_embd),  # learned position embedding
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # weight tying: reading a character in and writing it out share one matrix
        self.transformer.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)
        # GPT-2: the projections that write into the residual stream get a smaller
        # std, so the stream's variance does not grow with depth (2 per block)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

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
        if non_embedding:
            n -= self.transformer.wpe.weight.numel()
        return n

    def forward(self, idx, targets=None):
        """idx (B, T) of ids -> (logits (B, T, V), mean cross-entropy or None)."""
        B, T = idx.shape
        assert T <= self.config.block_size, f"sequence of {T} is longer than block_size {self.config.block_size}"
        pos = torch.arange(T, device=idx.device)  # (T,)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)  # (B, T, C) + (T, C) -> (B, T, C)
        x = self.transformer.drop(x)
        for block in self.transformer.h:
            x = block(x)  # (B, T, C)
        x = self.transformer.ln_f(x)
        logits = self.lm_head(x)  # (B, T, V): a score for every possible next character
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(B * T, -1).float(), targets.reshape(B * T))
        return logits, loss

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None):
        """Extend idx (B, T) by max_new_tokens sampled characters -> (B, T + max_new_tokens).

        The simple way: run the whole (cropped) context through the model for every
        new character. The model only knows block_size positions, so older
        characters fall out of view once the context is longer than that.
        """
        for _ in range(max_new_tokens):
            context = idx[:, -self.config.block_size:]  # (B, <= block_size)
            logits, _ = self(context)
            logits = logits[:, -1, :].float() / temperature  # (B, V): only the last position matters
            if top_k is not None and top_k < logits.size(-1):
                kth = torch.topk(logits, top_k).values[:, [-1]]  # (B, 1): the k-th best score
                logits = logits.masked_fill(logits < kth, float("-inf"))
            probs = F.softmax(logits, dim=-1)
            idx_next = torch.multinomial(probs, num_samples=1)  # (B, 1)
            idx = torch.cat((idx, idx_next), dim=1)
        return idx
