"""The exercises answered with the repo's own code, for the tests: the checker must pass each one,
and train with it to the repo's own val loss. (Learners: the exercise files name these places.)"""

import math
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch.func import functional_call

import train
from config import TrainConfig
from engine.sampling import keep_top_k, keep_top_p
from lessons.babygpt import next_bit_probs
from model import MLP, CausalSelfAttention, GPTConfig, causal_mask


def bigram_probs(ids, vocab_size, smoothing=1.0):
    counts = torch.zeros(vocab_size, vocab_size)
    counts.index_put_((ids[:-1], ids[1:]), torch.ones(len(ids) - 1), accumulate=True)
    counts += smoothing
    return counts / counts.sum(dim=1, keepdim=True)


def causal_average(x):
    T = x.size(1)
    weights = torch.tril(torch.ones(T, T))
    return weights / weights.sum(dim=1, keepdim=True) @ x


def attention_head(x, key, query, value):
    q, k, v = x @ query, x @ key, x @ value  # (B, T, hs)
    att = (q @ k.transpose(-2, -1) / math.sqrt(k.size(-1))).masked_fill(~causal_mask(x.size(1), x.size(1)),
                                                                        float("-inf"))
    weights = F.softmax(att, dim=-1)
    return weights @ v, weights


def multi_head_attention(x, c_attn, c_proj, n_head):
    """model.py's CausalSelfAttention itself, with these weights (written-out attention)."""
    C = x.size(-1)
    config = GPTConfig(block_size=x.size(1), n_head=n_head, n_embd=C, attention="manual")
    attn = CausalSelfAttention(config).eval()
    return functional_call(attn, {"c_attn.weight": c_attn, "c_proj.weight": c_proj}, (x,))


def mlp(x, c_fc, c_proj):
    C = x.size(-1)
    return functional_call(MLP(GPTConfig(n_embd=C)).eval(), {"c_fc.weight": c_fc, "c_proj.weight": c_proj}, (x,))


def block(x, attention, feed_forward, ln_1, ln_2):
    x = x + attention(ln_1(x))
    return x + feed_forward(ln_2(x))


def cross_entropy(logits, targets):
    logits = logits.reshape(-1, logits.size(-1))  # (B*T, V)
    m = logits.max(dim=-1, keepdim=True).values  # (B*T, 1): taken out of the exp, added back after the log
    logsumexp = m[:, 0] + (logits - m).exp().sum(dim=-1).log()
    return (logsumexp - logits.gather(1, targets.reshape(-1, 1))[:, 0]).mean()


def learning_rate(it, warmup_iters, max_iters, lr, min_lr):
    return train.lr_at(it, TrainConfig(warmup_iters=warmup_iters, max_iters=max_iters, lr=lr, min_lr=min_lr))


def next_char_probs(logits, temperature=1.0, top_k=None, top_p=None):
    if temperature == 0:
        return F.one_hot(logits.argmax(dim=-1), logits.size(-1)).float()
    cut = keep_top_k(logits / temperature, top_k) if top_k is not None else logits / temperature
    return F.softmax(keep_top_p(cut, top_p) if top_p is not None else cut, dim=-1)


class KVCache:
    def __init__(self, n_layer):
        self.k, self.v, self.length = [None] * n_layer, [None] * n_layer, 0

    def append(self, layer, k, v):
        self.k[layer] = k if self.k[layer] is None else torch.cat((self.k[layer], k), dim=2)
        self.v[layer] = v if self.v[layer] is None else torch.cat((self.v[layer], v), dim=2)
        return self.k[layer], self.v[layer]

    def positions(self, T, device=None):
        return torch.arange(self.length, self.length + T, device=device)

    def mask(self, T):
        return None if self.length == 0 else causal_mask(T, self.length + T)


@torch.no_grad()
def transition_probs(model):
    ones = next_bit_probs(model)
    return torch.stack((1 - ones, ones), dim=1)


ANSWERS = SimpleNamespace(**{name: value for name, value in globals().items() if not name.startswith("_")})
