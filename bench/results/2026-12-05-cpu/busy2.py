import sys
sys.path[:0] = [".", "tests"]
import torch, dataclasses
from exercises.plug import configs
from lessons.buildup import train_rung
from machinery.data import load_data
vocab, splits = load_data("data/shakespeare")
which, threads = sys.argv[1], int(sys.argv[2])
mcfg, cfg = configs(4, vocab["vocab_size"], 500, 20)
if which == "full":
    mcfg = dataclasses.replace(mcfg, n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.1)
    cfg = dataclasses.replace(cfg, max_iters=100)
torch.set_num_threads(threads)
_, _, secs, _ = train_rung(mcfg, cfg, splits, torch.device("cpu"))
print(f"{which} threads {threads}: {secs:.2f} s for {cfg.max_iters} steps")
