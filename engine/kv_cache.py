"""KV caches: the keys and values of the positions generated so far, so that each new
character's projections and MLP cost one position's worth of work instead of the whole
context's (its attention still reads every cached key and value).

Why they can be kept: attention is causal, so position s's key and value depend only on the
characters 0 .. s, and text added after it never changes them. And only the newest position's
query is needed, because only its output predicts the next character: queries are not kept.

model.py uses a cache through three calls: its attention's append(layer, k, v) and mask(T), and
GPT.forward's positions(T). length, the positions filled, is the caller's to move on after each
forward (engine.decode.forward_cached). A slot is one position in time: slot s always holds position s.
Past block_size a cache starts again from a shorter context (engine.decode's stream says why: from
the second layer on, the cached keys and values depend on the character that leaves the window). So it
is not a ring buffer, which would overwrite its oldest slot to go on; and a position scheme that needs
each key's position (a bias on the scores by distance, say) can read it off the slot.

Shapes as in model.py: B = batch, nh = n_head, hs = head size, T = the new positions of this
forward, S = the keys' positions attention reads (cached + T; engine/cuda_graph.py's
StaticKVCache, for CUDA graphs: all block_size).
"""

import torch

from model import causal_mask


class KVCache:
    """The keys and values of every layer for the positions generated so far.

    Without it, each new character recomputes keys and values for the whole context;
    with it, a step computes them for one position and reads the rest from here.
    Memory: 2 (keys and values) x n_layer x B x block_size x n_embd (= nh x hs) numbers,
    allocated once on the first step and never grown: only length moves on.
    """

    def __init__(self, config, batch_size):
        self.config = config
        self.batch_size = batch_size
        self.k = self.v = None  # (n_layer, B, nh, block_size, hs) each, once allocated
        # positions filled: the caller moves it on after each forward (engine.decode.forward_cached), not
        # append, which every layer calls for the same new positions: it may move only after the last layer
        self.length = 0
        self.step_mask = None  # mask()'s last answer, for the other layers of the same step

    def append(self, layer, k, v):
        """Store k, v (B, nh, T, hs) after the cached positions -> all of them, 2 x (B, nh, S, hs)."""
        if self.k is None:  # allocate on first use, on the device and in the dtype of the model
            c = self.config
            shape = (c.n_layer, self.batch_size, c.n_head, c.block_size, c.n_embd // c.n_head)
            self.k, self.v = k.new_empty(shape), v.new_empty(shape)
        end = self.length + k.size(2)  # dim 2 of k, and 3 of self.k, is time
        self.k[layer, :, :, self.length:end] = k
        self.v[layer, :, :, self.length:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def positions(self, T, device=None):
        """(T,): the positions of the T new characters, after the cached ones."""
        assert self.length + T <= self.config.block_size, \
            f"{self.length + T} positions, but the model knows only block_size {self.config.block_size}"
        return torch.arange(self.length, self.length + T, device=device)

    def mask(self, T):
        """(T, S) bool: which of the S = cached + T keys each of the T new queries may see. None while
        the cache is empty (the first pass, and the first after a reset), when S == T and attention's
        usual triangle does it (model.py's sdpa_attention passes is_causal, and manual_attention makes
        causal_mask(T, T))."""
        if self.length == 0:
            return None
        if self.step_mask is None or self.step_mask.shape != (T, self.length + T):
            # made once per step, not once per layer: every layer asks with the same T and length
            self.step_mask = causal_mask(T, self.length + T, self.k.device)  # one new query (T == 1) sees them all
        return self.step_mask

    def reset(self):
        """Forget the cached positions (the memory stays allocated for reuse)."""
        self.length = 0
