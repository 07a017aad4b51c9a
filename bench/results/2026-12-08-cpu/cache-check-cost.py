"""What sample.py's check of the KV cache (engine/decode.py's cache_gap) costs, in-process: an untrained model of the
CPU default's sizes and one of the shakespeare (GPU) preset's, float32 on the CPU, as sample.py runs it. One call
first (not counted), then the median of 5, by time.perf_counter around the call alone.
Run from the repo's folder: python bench/results/2026-12-08-cpu/cache-check-cost.py"""
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
import torch  # noqa: E402

from engine.decode import cache_gap  # noqa: E402
from model import GPT, GPTConfig  # noqa: E402

torch.manual_seed(0)
print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
for name, cfg in (("shakespeare-cpu's sizes (4 x 128, block 64, rotary, qk-norm)",
                   GPTConfig(vocab_size=65, n_layer=4, n_head=4, n_embd=128, block_size=64, position="rotary",
                             qk_norm=True)),
                  ("shakespeare's sizes (6 x 384, block 256)", GPTConfig(vocab_size=65))):
    model = GPT(cfg).eval()
    gap = cache_gap(model)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        cache_gap(model)
        times.append(time.perf_counter() - t0)
    print(f"{name}: gap {gap:.1e}, median {statistics.median(times) * 1000:.0f} ms "
          f"({', '.join(f'{t * 1000:.0f}' for t in times)})")
