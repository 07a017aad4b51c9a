"""The settings of a run, in one place: a hacker's first stop.

TrainConfig holds the training settings (model.py's GPTConfig holds the model's), each with
the help its --flag shows. PRESETS are named recipes over both. A run's values come from, in
increasing priority: the dataclass default, the preset (with no --preset: shakespeare on CUDA,
shakespeare-cpu elsewhere; the checkpoint's config when resuming), the command line
(machinery/settings.py layers them and checks them).

To add a preset, add an entry to PRESETS: `python train.py --preset NAME --out_dir out/NAME` runs it. A key it leaves
out keeps the dataclass default, nanoGPT's GPU recipe but for its dropout (0 here, 0.2 there): for a CPU, start from a
copy of shakespeare-cpu, `PRESETS["tiny"] = dict(PRESETS["shakespeare-cpu"], n_layer=2)` below the dict.
"""

import math
from dataclasses import dataclass
from typing import Annotated, Optional


@dataclass
class TrainConfig:
    data_dir: Annotated[str, "prepared data directory (from prepare.py)"] = "data/shakespeare"
    out_dir: Annotated[str, "where checkpoints and log.csv are written"] = "out"
    device: Annotated[str, "auto, cpu, cuda or mps (auto: cuda, then mps, then cpu)"] = "auto"
    dtype: Annotated[str, "auto, float32, bfloat16 or float16 (auto: bf16 or fp16 on CUDA, else float32)"] = "auto"
    compile: Annotated[Optional[bool], "torch.compile the model (default: on for CUDA, off elsewhere)"] = None
    compile_mode: Annotated[str, "torch.compile's mode: default, reduce-overhead (CUDA graphs: each step's kernels "
                                 "replayed from one launch), max-autotune or max-autotune-no-cudagraphs"] = "default"
    seed: Annotated[int, "random seed for the weights, the batches and dropout"] = 1337
    batch_size: Annotated[int, "sequences per micro-batch"] = 64
    grad_accum: Annotated[int, "micro-batches per optimizer step (gradient accumulation: a batch bigger than "
                                "memory holds)"] = 1
    max_iters: Annotated[int, "optimizer steps in the whole run"] = 5000
    lr: Annotated[float, "peak learning rate, reached after warmup"] = 1e-3
    min_lr: Annotated[float, "the learning rate the decay falls to (at its end, for cosine and linear)"] = 1e-4
    warmup_iters: Annotated[int, "steps of linear warmup up to lr"] = 100
    decay: Annotated[str, "the shape of the fall from lr to min_lr after warmup, a name in config.DECAYS"] = "cosine"
    weight_decay: Annotated[float, "each step multiplies the 2-D weights by 1 - (their learning rate then) x this "
                                   "(AdamW's follow lr, Muon's muon_lr)"] = 0.1
    beta1: Annotated[float, "AdamW beta1: how slowly its running mean of the gradients (momentum) forgets"] = 0.9
    beta2: Annotated[float, "AdamW beta2 (nanoGPT's shakespeare_char value: above its usual 0.95, as few tokens a "
                            "step make noisy gradients; below Adam's 0.999, so that the running variance of the "
                            "gradients keeps up in a short run)"] = 0.99
    grad_clip: Annotated[float, "clip the gradient norm to this (0: no clipping)"] = 1.0
    optimizer: Annotated[str, "'adamw', or 'muon': Muon (momentum steps made orthogonal; train.py's setup says "
                              "more) for the blocks' weight matrices, AdamW for the rest"] = "adamw"
    muon_lr: Annotated[float, "Muon's peak learning rate (it follows the same warmup and decay as lr)"] = 0.02
    max_nan_skips: Annotated[int, "nan/inf losses to skip in a row before stopping (0: stop at the first)"] = 3
    eval_interval: Annotated[int, "evaluate and save a checkpoint every this many steps, and at the last"] = 250
    eval_iters: Annotated[int, "batches per split in each evaluation"] = 200
    log_interval: Annotated[int, "read the loss back and show it, the lr and tok/s every this many steps"] = 10


# --decay's choices: how far through the decay a step is (progress, 0 -> 1 over the steps after the warmup)
# -> the share of lr - min_lr still left (1 -> 0); train.py's decay_left uses it. To try another shape, add it
# here and pass its name
DECAYS = {
    "cosine": lambda progress: 0.5 * (1.0 + math.cos(math.pi * progress)),  # nanoGPT's, every preset's
    "linear": lambda progress: 1.0 - progress,
}


# --preset's choices: a key a preset leaves out keeps its default above (or GPTConfig's, in model.py)
PRESETS = {
    # nanoGPT's shakespeare_char recipe, the published anchor: best val 1.4697 in nanoGPT's README
    "shakespeare": dict(
        n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2, bias=False,
        batch_size=64, grad_accum=1, max_iters=5000, lr=1e-3, min_lr=1e-4, warmup_iters=100,
        weight_decay=0.1, beta1=0.9, beta2=0.99, grad_clip=1.0, eval_interval=250, eval_iters=200),
    # the CPU default: nanoGPT's CPU model shape with the levers that measured best on a 2-core CPU (docs/speed.md:
    # each one's share): Muon, rotary positions, QK-norm, a high learning rate and batch 32 (a CPU does 32 windows
    # more efficiently than nanoGPT's 12)
    "shakespeare-cpu": dict(
        n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0, bias=False,
        position="rotary", qk_norm=True, optimizer="muon", muon_lr=0.04,
        batch_size=32, grad_accum=1, max_iters=800, lr=8e-3, min_lr=8e-4, warmup_iters=50,
        weight_decay=0.1, beta1=0.9, beta2=0.99, grad_clip=1.0, eval_interval=200, eval_iters=50),
    # the video's GPT on a CPU, with GPT-2's and nanoGPT's details (GELU, the tied head, GPT-2's init, the schedule:
    # the README lists them): the shakespeare-cpu shape with none of the speed levers (learned positions, AdamW),
    # and dropout 0.1: rung 11 of the ladder's model and recipe (lessons/buildup.py)
    "classic-cpu": dict(
        n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.1, bias=False,
        batch_size=32, grad_accum=1, max_iters=1000, lr=5e-3, min_lr=5e-4, warmup_iters=100,
        weight_decay=0.1, beta1=0.9, beta2=0.99, grad_clip=1.0, eval_interval=250, eval_iters=50),
    # the CPU speedrun, to pass val 1.886 (where nanoGPT's CPU recipe ends, by nanoGPT's own evaluation) soon:
    # shakespeare-cpu's recipe on 2 layers, a schedule 250 steps long (warmup 30), an evaluation every 50 steps
    # (its times, on which clock: the README's Results, docs/speed.md)
    "cpu-speedrun": dict(
        n_layer=2, n_head=4, n_embd=128, block_size=64, dropout=0.0, bias=False,
        position="rotary", qk_norm=True, optimizer="muon", muon_lr=0.04,
        batch_size=32, grad_accum=1, max_iters=250, lr=8e-3, min_lr=8e-4, warmup_iters=30,
        weight_decay=0.1, beta1=0.9, beta2=0.99, grad_clip=1.0, eval_interval=50, eval_iters=50),
    # the GPU speedrun, to pass val 1.47 (about nanoGPT's best) soon: the shakespeare preset's model with the
    # levers, 4 times the batch, 6 times the lr and a tenth of the steps (its times, on which clock: the README's
    # Results, docs/speed.md). Its 50 evaluation batches of 256 windows are the very windows of the shakespeare
    # preset's 200 of 64
    "speedrun": dict(
        n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2, bias=False,
        position="rotary", qk_norm=True, optimizer="muon", muon_lr=0.04,
        batch_size=256, grad_accum=1, max_iters=500, lr=6e-3, min_lr=6e-4, warmup_iters=50,
        weight_decay=0.1, beta1=0.9, beta2=0.99, grad_clip=1.0, eval_interval=50, eval_iters=50),
    # the baseline to beat: a table of character pairs (seconds on a CPU). A table has no
    # depth to stabilise, so it takes a learning rate 30x the shakespeare preset's, and no weight decay
    "bigram": dict(
        model="bigram", block_size=64, batch_size=32, grad_accum=1, max_iters=1000, lr=0.03, min_lr=0.003,
        warmup_iters=100, weight_decay=0.0, beta1=0.9, beta2=0.99, grad_clip=1.0, eval_interval=250,
        eval_iters=50),
}
