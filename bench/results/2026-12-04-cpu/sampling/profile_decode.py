# A profile of batch-1 decoding with the KV cache, the shakespeare-shape model with random weights, on the CPU.
# From the repo root: PYTHONPATH=. python bench/results/2026-12-04-cpu/sampling/profile_decode.py
import time

import torch
from torch.profiler import ProfilerActivity, profile

from config import PRESETS
from machinery.settings import split_config
from model import GPT
from engine.decode import stream

torch.manual_seed(0)
model = GPT(split_config(PRESETS["shakespeare"])[1]).eval()
idx = torch.zeros(1, 1, dtype=torch.long)
def run(n):
    t = time.perf_counter()
    for _ in stream(model, idx, n): pass
    return time.perf_counter() - t
run(20)
for _ in range(3): print(f"{200 / run(200):.1f} tok/s")
with profile(activities=[ProfilerActivity.CPU]) as prof:
    run(100)
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
