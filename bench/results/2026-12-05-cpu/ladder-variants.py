"""Two rungs of the ladder as an earlier version of it had them, for docs/lessons.md (rungs 9 and 10): rung 2
with the head tied to the embedding, and rung 6 with GPT-2's initialisation (untied, then tied too). The same
sizes, seed, batches and val windows as `python -m lessons.buildup` on a CPU. Run from the repo root, with the
text prepared:  python bench/results/2026-12-05-cpu/ladder-variants.py"""
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repo's folder, for its imports

import torch

from lessons.buildup import SIZES, ladder, train_rung, training_config
from machinery.data import load_data

sizes, device = SIZES["cpu"], torch.device("cpu")
vocab, splits = load_data("data/shakespeare")
rungs = ladder(sizes, vocab["vocab_size"])
variants = [(2, {}), (2, dict(tie_head=True)), (6, {}), (6, dict(init="gpt2")), (6, dict(init="gpt2", tie_head=True))]
for rung, change in variants:
    mcfg = dataclasses.replace(rungs[rung - 1].config, **change)
    _, losses, seconds, skipped = train_rung(mcfg, training_config(sizes, rung, 1337, device), splits, device)
    print(f"rung {rung} {change or 'as in the ladder'}: train {losses['train']:.4f}, val {losses['val']:.4f} "
          f"({seconds:.1f} s of training, {skipped} steps skipped)", flush=True)
