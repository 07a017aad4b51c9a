"""Exercise 9: generation with a KV cache.

To generate, the simple way runs the whole text so far through the model for every new
character (model.py's generate). But the keys and values of the earlier positions never change,
so a cache can keep them: each step then feeds only the newest character, whose attention reads
the cached keys and values. model.py talks to a cache through append and mask (in its attention)
and positions (in GPT.forward); the caller moves length on after each forward.

This cache grows a tensor per layer with torch.cat: the simple way. The repo's (engine/kv_cache.py) is
written differently on purpose: it fills one tensor of all block_size positions, allocated once, instead
of copying the cache into a longer one at every step (and engine/cuda_graph.py's StaticKVCache keeps one
shape for a CUDA graph).

Check it: python -m exercises check 9
"""

import torch


class KVCache:
    """The keys and values of every layer for the positions seen so far (a list per layer)."""

    def __init__(self, n_layer):
        self.k = [None] * n_layer  # layer -> (B, nh, S, hs): all the keys so far
        self.v = [None] * n_layer
        self.length = 0  # positions cached so far (the caller adds T after each forward)

    def append(self, layer, k, v):
        """This step's keys and values, k and v (B, nh, T, hs), of layer `layer` -> all of them so far,
        (keys, values), each (B, nh, length + T, hs): the old ones first, then the new."""
        raise NotImplementedError("exercise 9 is yours to write: keep k and v after the cached ones, along "
                                  "the time axis. The repo's is engine/kv_cache.py")

    def positions(self, T, device=None):
        """(T,): the positions of the T new characters, which come after the cached ones, made on
        device (the model's: on a GPU, positions on the CPU would not do)."""
        raise NotImplementedError("exercise 9 is yours to write: the T positions after the cached ones. The "
                                  "repo's is engine/kv_cache.py")

    def mask(self, T):
        """(T, S) bool: which of the S = length + T keys each new query may see (given, not an exercise)."""
        from model import causal_mask  # (imported here, so that the file runs by itself, as python exercises/...)
        return None if self.length == 0 else causal_mask(T, self.length + T)


if __name__ == "__main__":  # run by itself (python exercises/ex09_kv_cache.py), it says how to check it
    print("to check it: python -m exercises check 9")
