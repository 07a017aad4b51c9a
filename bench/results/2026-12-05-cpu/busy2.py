import sys
sys.path[:0] = [".", "tests"]
import torch
from exercises.plug import configs
from lessons.buildup import train_rung
from machinery.data import load_data
vocab, splits = load_data("data/shakespeare")
threads = int(sys.argv[1])
mcfg, cfg = configs(4, vocab["vocab_size"], 500, 20)  # exercise 4's small model, the repo's own attention
torch.set_num_threads(threads)
_, _, secs, _ = train_rung(mcfg, cfg, splits, torch.device("cpu"))
print(f"small threads {threads}: {secs:.2f} s for {cfg.max_iters} steps")
