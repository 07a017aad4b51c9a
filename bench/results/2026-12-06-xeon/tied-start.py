"""Rung 9 of the ladder, the head tied to the token embedding, with the tie's two changes apart, for
docs/lessons.md: tying makes one matrix both read and write characters, and it also changes the
embedding's start (the shared matrix starts as the head's nn.Linear, uniform with std 1/sqrt(3 C), not as
nn.Embedding, N(0, 1)). The same sizes, seed, batches and val windows as `python -m lessons.buildup` on a
CPU. Run from the repo root, with the text prepared:  python bench/results/2026-12-06-xeon/tied-start.py"""
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repo's folder, for its imports

import torch
from torch import nn

from lessons.buildup import SIZES, ladder, train_rung, training_config
from machinery.data import load_data


def embedding_start(model):
    """The token embedding re-drawn as nn.Embedding draws it, N(0, 1) (tied: the head's weights too)."""
    nn.init.normal_(model.transformer.wte.weight)


def linear_start(model):
    """The token embedding re-drawn as the head's nn.Linear draws it: uniform, std 1/sqrt(3 C)."""
    nn.init.kaiming_uniform_(model.transformer.wte.weight, a=5 ** 0.5)  # what nn.Linear.reset_parameters does


sizes, device = SIZES["cpu"], torch.device("cpu")
vocab, splits = load_data("data/shakespeare")
rungs = ladder(sizes, vocab["vocab_size"])
variants = [(8, {}, None), (8, {}, linear_start), (9, {}, None), (9, {}, embedding_start)]
for rung, change, plug in variants:
    mcfg = dataclasses.replace(rungs[rung - 1].config, **change)
    model, losses, seconds, skipped = train_rung(mcfg, training_config(sizes, rung, 1337, device), splits, device,
                                                 plug=plug)
    start = plug.__name__ if plug else "as in the ladder"
    print(f"rung {rung} {start} (tied: {mcfg.tie_head}): train {losses['train']:.4f}, val {losses['val']:.4f} "
          f"({seconds:.1f} s of training, {skipped} steps skipped)", flush=True)
