"""Why rung 2 of the ladder (lessons/buildup.py: embeddings and a head, no attention) scores worse than rung 1 (the
bigram table): its architecture, or its recipe? Rungs 1 and 2 at the CPU ladder's sizes, each trained with both
recipes: rung 1's (lr 0.03, weight decay 0) and the GPT rungs' (lr 1e-3, weight decay 0.1); the same batches and
val windows as the ladder. Run from the repo root, with the text prepared:
python bench/results/2026-12-07-cpu/rung2-recipe.py"""
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repo's folder, for its imports

import torch

from lessons.buildup import SIZES, ladder, train_rung, training_config
from machinery.data import load_data

device = torch.device("cpu")
sizes = SIZES["cpu"]
vocab, splits = load_data("data/shakespeare")
rungs = ladder(sizes, vocab["vocab_size"])
recipes = {number: training_config(sizes, number, 1337, device) for number in (1, 2)}
print(f"torch {torch.__version__}; {sizes.steps} steps of batch {sizes.batch_size}, block {sizes.block_size}")
for number in (1, 2):
    for recipe_of in (1, 2):
        theirs = recipes[recipe_of]
        cfg = dataclasses.replace(recipes[number], lr=theirs.lr, min_lr=theirs.min_lr,
                                  weight_decay=theirs.weight_decay)
        _, losses, seconds, _ = train_rung(rungs[number - 1].config, cfg, splits, device)
        mine = " (its own, as the ladder trains it)" if recipe_of == number else ""
        print(f"rung {number} with rung {recipe_of}'s recipe (lr {cfg.lr:g}, weight decay {cfg.weight_decay:g})"
              f"{mine}: val {losses['val']:.4f}, train {losses['train']:.4f}, {seconds:.1f} s")
