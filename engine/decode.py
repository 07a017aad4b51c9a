"""Fast generation: each new character feeds one position through the model, reading the
earlier ones' keys and values from a KV cache (stream), and on a GPU each such step can be
one replay of a recorded CUDA graph (engine/cuda_graph.py's GraphedStep: skip it on a first read).

model.py's generate is the simple reference: it reruns the whole context for every new
character. Tests hold stream to the same tokens within block_size (past it, stream starts
its cache again from half a window, while generate slides its window one character at a time).
"""

import torch

from engine.cuda_graph import GraphedStep
from engine.kv_cache import KVCache
from engine.sampling import sample_next


def forward_cached(model, idx, cache):
    """model(idx) continuing the text in cache -> the logits (B, T, V); the cache moves on by T (here, not in the
    cache's append, which every layer calls: engine/kv_cache.py, the cache itself, is the file to read first)."""
    logits, _ = model(idx, cache=cache)
    cache.length += idx.size(1)
    return logits


@torch.inference_mode()
def stream(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None,
           cuda_graph=False):
    """Like model.generate, but fast: yields each new column of ids (B,) as soon as it is sampled.

    The prompt goes through the model once (prefill) and fills a KV cache; each later
    step feeds only the newest character, which attends to the cached keys and values.

    Past block_size: the positions stop at block_size - 1 (the learned table, and
    rotary's too), so the window must move on, and its oldest character leaves it. Every
    later character attended to that one in the first layer, so from the second layer on
    their keys and values would change: the cache would be stale (with learned positions,
    every cached key would also sit at a position it no longer has). Instead, when the cache is full, it
    starts again from the last half window (re-prefilled at positions 0 ..), and fills
    up again one character at a time. The model then always sees between half and a
    whole window of context, and a re-prefill of block_size/2 characters is paid once
    every block_size/2 + 1 characters, so the cost per character stays bounded. (With
    block_size 8, once the prompt is past: the characters sampled read 4, 5, 6, 7, 8, 4, ...
    characters of context; the step that re-prefills the 4 samples one too.)

    cuda_graph=True: on a CUDA GPU, each step is a replay of one recorded CUDA graph (GraphedStep;
    elsewhere the same step runs call by call), and the prompt (and the half window) goes in one
    character at a time. The logits agree with the plain path's to float rounding, so the tokens
    are the same unless a draw falls that close to the boundary between two characters.
    """
    block_size = model.config.block_size
    keep = max(1, block_size // 2)  # the context kept when the cache is full
    graphed = GraphedStep(model, idx.size(0)) if cuda_graph else None
    cache = graphed.cache if graphed else KVCache(model.config, idx.size(0))
    recent = idx[:, -block_size:]  # (B, <= block_size): the last characters, of which a restart re-feeds the half
    context = recent  # what the model reads next: the prompt, then one character per step
    for _ in range(max_new_tokens):
        if cache.length + context.size(1) > block_size:  # full: start again from half a window
            cache.reset()
            context = recent[:, -keep:]  # (B, keep): the last of them the character just sampled
        logits = graphed(context) if graphed else forward_cached(model, context, cache)[:, -1, :]  # (B, V)
        idx_next = sample_next(logits, temperature, top_k, top_p, generator)  # (B, 1)
        recent = torch.cat((recent, idx_next), dim=1)[:, -block_size:]  # (B, <= block_size)
        context = idx_next  # (B, 1): the next step feeds it alone
        yield idx_next[:, 0]  # (B,)


def generate_cached(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None,
                    cuda_graph=False):
    """`stream`, collected -> (B, T + max_new_tokens). Within block_size it is what model.generate
    returns, only faster (to float rounding: the logits differ in the last bits, so a draw that falls
    that close to the boundary between two characters could differ); past it, see stream."""
    columns = stream(model, idx, max_new_tokens, temperature, top_k, top_p, generator, cuda_graph)
    return torch.cat([idx] + [column[:, None] for column in columns], dim=1)  # (B, T + new)


@torch.inference_mode()
def cache_gap(model, steps=4):
    """How far the cached path's logits are from one plain forward's over a whole window of made-up characters (a
    prefill of all but the last `steps`, then those one at a time): the largest difference, as a share of the largest
    logit (rounding's: about 1e-6 in float32). A change to model.py that the cache does not follow makes it large:
    one that mixes positions outside attention (a token shift, a convolution over time: the cache feeds each new
    character alone), or a mask of attention's own (a sliding window: the cache passes its own mask). Eval mode only."""
    T = model.config.block_size
    idx = torch.arange(T, device=next(model.parameters()).device)[None] % model.config.vocab_size  # (1, T)
    plain, _ = model(idx)  # (1, T, V)
    cache, prefill = KVCache(model.config, 1), max(1, T - steps)
    cached = [forward_cached(model, idx[:, :prefill], cache)]  # (1, prefill, V)
    cached += [forward_cached(model, idx[:, t:t + 1], cache) for t in range(prefill, T)]  # then (1, 1, V) each
    return ((torch.cat(cached, dim=1) - plain).abs().max() / plain.abs().max().clamp_min(1e-6)).item()
