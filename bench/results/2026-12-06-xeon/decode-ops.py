"""How many operations one batch-1 decoding step runs (GraphedStep.run, the step a CUDA graph records: in
engine/decode.py when this ran, engine/cuda_graph.py since 2026-12-07), for the default model (6 layers, 384 wide) with and without rotary and QK-norm, counted as PyTorch
dispatches them on a CPU: the views (which move no data and launch no GPU kernel) apart from the rest. For
GraphedStep's and docs/sampling.md's "about a hundred tiny kernels". Run from the repo root:
python bench/results/2026-12-06-xeon/decode-ops.py"""
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repo's folder, for its imports

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from engine.cuda_graph import GraphedStep
from model import GPT, GPTConfig

VIEWS = {"view", "_unsafe_view", "t", "transpose", "select", "slice", "split", "split_with_sizes", "unsqueeze",
         "squeeze", "expand", "permute", "alias", "as_strided", "unbind", "reshape"}


class Count(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


for levers in ({}, dict(position="rotary", qk_norm=True)):
    step = GraphedStep(GPT(GPTConfig(**levers)).eval(), batch_size=1)
    with torch.no_grad(), Count() as count:
        step.run()
    views = sum(n for name, n in count.ops.items() if name in VIEWS)
    computing = {name: n for name, n in count.ops.items() if name not in VIEWS}
    print(f"{levers or 'the default model'}: {sum(count.ops.values())} operations, {views} views, "
          f"{sum(computing.values())} that compute: {computing}")
