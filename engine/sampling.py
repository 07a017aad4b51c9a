"""Choosing the next character from the model's scores: temperature, top-k and top-p.

With top_p None, sample_next draws exactly what model.py's simple generate draws from the same
logits and the same generator (a test holds them equal); engine/decode.py says when the fast
path's logits differ from the simple one's, and with them the text.
"""

import torch
import torch.nn.functional as F


def keep_top_k(logits, k):
    """logits (B, V) -> the same, with all but the k highest (and any tied with the k-th) set to -inf."""
    if k >= logits.size(-1):
        return logits
    kth = torch.topk(logits, k).values[:, [-1]]  # (B, 1): the k-th best score
    return logits.masked_fill(logits < kth, float("-inf"))


def keep_top_p(logits, p):
    """logits (B, V) -> the same, keeping only the nucleus: the fewest likeliest
    characters whose probabilities add up to at least p (for any p > 0, the likeliest stays)."""
    if p >= 1.0:
        return logits
    probs, order = F.softmax(logits, dim=-1).sort(dim=-1, descending=True)  # (B, V) each
    mass_before = probs.cumsum(dim=-1) - probs  # (B, V): the mass of the likelier characters
    drop_sorted = mass_before >= p  # already enough without this one
    drop_sorted[:, 0] = False  # the likeliest stays, even for a p so small that it rounds to 0 in float32
    # un-sort: sorted column j is character order[j], so its flag goes back to column order[j]
    drop = torch.empty_like(drop_sorted).scatter_(-1, order, drop_sorted)  # (B, V): in vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def sample_next(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    """Scores of the last position (B, V) -> the next ids (B, 1).

    temperature 0 is greedy (always the likeliest); otherwise the scores are divided by it, and
    then top-k, then top-p (on those tempered scores), narrow the choice before drawing from the softmax.
    """
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits.float() / temperature  # (bf16 weights give bf16 logits: the softmax in float32)
    if top_k is not None:
        logits = keep_top_k(logits, top_k)
    if top_p is not None:
        logits = keep_top_p(logits, top_p)
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)
