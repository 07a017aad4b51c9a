"""Fast generation: each new character feeds one position through the model, reading the
earlier ones' keys and values from a KV cache (stream), and on a GPU each such step can be
one replay of a recorded CUDA graph (GraphedStep).

A CUDA graph records the GPU work of one call and replays it with one launch from the CPU. A
replay repeats the recording exactly (the same tensors, shapes and Python numbers), so whatever
changes from step to step, the character and its position, must sit in a tensor the graph reads.

model.py's generate is the simple reference: it reruns the whole context for every new
character. Tests hold stream to the same tokens within block_size (past it, stream starts
its cache again from half a window, while generate slides its window one character at a time).
"""

import torch

from engine.kv_cache import KVCache, StaticKVCache
from engine.sampling import sample_next


def forward_cached(model, idx, cache):
    """model(idx) continuing the text in cache -> the logits (B, T, V); the cache moves on by T."""
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

    cuda_graph=True: each step is a replay of one recorded CUDA graph (GraphedStep), and the
    prompt (and the half window) goes in one character at a time. The logits agree with the
    plain path's to float rounding, so the tokens are the same unless a draw falls that close
    to the boundary between two characters.
    """
    block_size = model.config.block_size
    keep = max(1, block_size // 2)  # the context kept when the cache is full
    graphed = GraphedStep(model, idx.size(0)) if cuda_graph else None
    cache = graphed.cache if graphed else KVCache(model.config, idx.size(0))
    recent = idx[:, -block_size:]  # (B, <= block_size): all that can ever be re-fed
    context = recent  # what the model reads next: the prompt, then one character per step
    for _ in range(max_new_tokens):
        if cache.length + context.size(1) > block_size:  # full: start again from half a window
            cache.reset()
            context = recent[:, -keep:]
        logits = graphed(context) if graphed else forward_cached(model, context, cache)[:, -1, :]  # (B, V)
        idx_next = sample_next(logits, temperature, top_k, top_p, generator)  # (B, 1)
        recent = torch.cat((recent, idx_next), dim=1)[:, -block_size:]
        context = idx_next
        yield idx_next[:, 0]  # (B,)


def generate_cached(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None,
                    cuda_graph=False):
    """`stream`, collected -> (B, T + max_new_tokens). Within block_size it is what model.generate
    returns, only faster (to float rounding: the logits differ in the last bits, so a draw that falls
    that close to the boundary between two characters could differ); past it, see stream."""
    columns = stream(model, idx, max_new_tokens, temperature, top_k, top_p, generator, cuda_graph)
    return torch.cat([idx] + [column[:, None] for column in columns], dim=1)  # (B, T + new)


class GraphedStep:
    """One decoding step (one new character per row -> the logits of the next) recorded once
    as a CUDA graph and replayed for every character.

    A batch-1 step of a model this small is about a hundred tiny kernels (on a CPU, the shakespeare
    preset's step runs 101 operations that compute, beside 160 views: docs/sampling.md), each
    launched from the CPU; on an H100 the step waited neither for the arithmetic nor for memory
    (docs/sampling.md), which leaves the launches (an inference: no profile of it was taken). A
    replay launches them all at once. The graph reads its inputs from, and writes its logits to,
    the same tensors every time, so a step copies the character in and reads the logits out.
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
                # choices, workspaces) is not recorded into the graph; on a side stream, as graph recording wants
                side = torch.cuda.Stream()
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
