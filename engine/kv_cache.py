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
forward, S = the keys' positions attention reads (cached + T; a StaticKVCache's: block_size).
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
        """(T, S) bool: which of the S = cached + T keys each of the T new queries may see. None on
        the first pass, when S == T and attention's usual triangle does it (model.py's
        sdpa_attention passes is_causal, and manual_attention makes causal_mask(T, T))."""
        if self.length == 0:
            return None
        if self.step_mask is None or self.step_mask.shape != (T, self.length + T):
            # made once per step, not once per layer: every layer asks with the same T and length
            self.step_mask = causal_mask(T, self.length + T, self.k.device)  # one new query (T == 1) sees them all
        return self.step_mask

    def reset(self):
        """Forget the cached positions (the memory stays allocated for reuse)."""
        self.length = 0


class StaticKVCache(KVCache):
    """A KV cache that a CUDA graph (a recording of one step's GPU work, replayed with one launch:
    engine/decode.py's GraphedStep) can use:
    its tensors keep one shape and one address (hence "static"), and where it writes comes from a
    tensor on the device, not from a Python number, so one recorded step serves every position.
    length, a Python number, is bookkeeping outside the step only (where GraphedStep sets pos, and
    when stream resets): the recorded step reads pos.

    It takes one position per step, written at slot pos; attention reads all block_size slots,
    with a mask that hides the slots after pos (unwritten, or left over from before a reset).
    Unlike KVCache's, its memory is allocated when it is made, before a graph records a step.
    """

    def __init__(self, config, batch_size, device, dtype):
        super().__init__(config, batch_size)
        c = config
        shape = (c.n_layer, batch_size, c.n_head, c.block_size, c.n_embd // c.n_head)
        # zeros, not new_empty's garbage: a nan left in an unwritten slot would come through the mask (sdpa adds
        # the mask to the scores, and nan - inf is nan; a masked value is multiplied by weight 0, and 0 x nan is nan)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.pos = torch.zeros(1, dtype=torch.long, device=device)  # (1,): the slot this step writes
        self.slots = torch.arange(c.block_size, device=device)  # (block_size,)

    def append(self, layer, k, v):
        """k, v (B, nh, 1, hs) into slot pos -> every slot, 2 x (B, nh, block_size, hs)."""
        assert k.size(2) == 1, "a StaticKVCache takes one position per step"
        self.k[layer].index_copy_(2, self.pos, k)  # self.k[layer] (B, nh, block_size, hs): dim 2 is time
        self.v[layer].index_copy_(2, self.pos, v)
        return self.k[layer], self.v[layer]

    def positions(self, T, device=None):
        assert T == 1, "a StaticKVCache takes one position per step"
        return self.pos

    def mask(self, T):
        return (self.slots <= self.pos).view(1, -1)  # (T=1, S=block_size): the written slots, this one's too
