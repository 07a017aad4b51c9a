"""CUDA graphs for decoding: stream's one-character step (engine/decode.py), recorded once on a GPU
and replayed for every character. Skip it on a first read: it makes the same step faster, and
changes nothing that the step computes.

A CUDA graph records the GPU work of one call and replays it with one launch from the CPU. A
replay repeats the recording exactly (the same tensors, shapes and Python numbers), so whatever
changes from step to step, the character and its position, must sit in a tensor the graph reads:
hence a KV cache of its own, StaticKVCache, and GraphedStep, the step that feeds it.
"""

import torch

from engine.kv_cache import KVCache


class StaticKVCache(KVCache):
    """A KV cache that a CUDA graph (GraphedStep, below) can use: its tensors keep one shape and one
    address (hence "static"), and where it writes comes from a tensor on the device, not from a
    Python number, so one recorded step serves every position.
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


class GraphedStep:
    """One decoding step (one new character per row -> the logits of the next) recorded once
    as a CUDA graph and replayed for every character.

    A batch-1 step of a model this small is about a hundred tiny kernels (on a CPU, the shakespeare
    preset's step runs 101 operations that compute, beside 160 views, which move no data:
    docs/sampling.md), each launched from the CPU; on an H100 the step waited neither for the
    arithmetic nor for memory (docs/sampling.md), which leaves the launches (an inference: no
    profile of it was taken). A replay launches them all at once. The graph reads its inputs from, and writes its
    logits to, the same tensors every time, so a step copies the character in and reads the logits out.
    The prompt goes through the same step, one character at a time: simple, and at most
    block_size replays. So does the half window after each reset (stream): past block_size that
    is about two replays a character, where the plain path re-runs the half window in one pass.
    Off a GPU nothing is recorded: the step runs call by call (eagerly), which lets a CPU test
    check its arithmetic (sample.py itself records a graph on a CUDA GPU only, and refuses
    --cuda_graph true elsewhere).
    """

    def __init__(self, model, batch_size):
        # sampling wants eval mode (no dropout); and a replay reruns the recorded kernels, not the Python: a hook
        # would not run again
        hooked = any(m._forward_hooks for m in model.modules())
        assert not model.training and not hooked, "record the decoding step of a model in eval mode, unhooked"
        weight = next(model.parameters())
        self.model = model
        self.cache = StaticKVCache(model.config, batch_size, weight.device, weight.dtype)
        self.token = torch.zeros(batch_size, 1, dtype=torch.long, device=weight.device)  # (B, 1)
        self.graph = None
        if weight.device.type == "cuda":
            with torch.cuda.device(weight.device):  # the streams and the graph on the model's GPU
                # run the step a few times first, so that what PyTorch sets up lazily on a first call (kernel
                # choices, workspaces) is not recorded into the graph (three times, as PyTorch's own example of
                # graphs does); on a CUDA stream (a queue of GPU work) of its own, as graph recording wants
                warmup_stream = torch.cuda.Stream()
                warmup_stream.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(warmup_stream):
                    for _ in range(3):
                        self.run()
                torch.cuda.current_stream().wait_stream(warmup_stream)
                self.graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(self.graph):
                    self.logits = self.run()  # (B, V): refilled by every replay

    def run(self):
        """The step: self.token at slot cache.pos -> the logits (B, V) of the next character."""
        # where generation is must not enter as a Python number, which a graph would keep as recorded:
        # StaticKVCache takes it from cache.pos, a tensor. cache.length is 0 here, as a graph would see it,
        # so that a change that reads it in the step fails the CPU tests too, not only on a GPU
        self.cache.length = 0
        logits, _ = self.model(self.token, cache=self.cache)  # (B, 1, V)
        return logits[:, -1]  # (B, V)

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
            # length moves on here, as forward_cached moves it on the plain path (without a graph, run had set it to 0)
            self.cache.length = position + 1
        return self.logits
