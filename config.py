"""What a training run is set to, and where each value comes from.

TrainConfig holds the training settings (model.py's GPTConfig holds the model's). PRESETS
are named recipes over both. A run's values are layered, in increasing priority: the
dataclass default, the preset (or the checkpoint's config when resuming), the command line.
check_config then refuses impossible values with an error that says what to use instead,
before they turn into a traceback deep inside torch.

train.py turns every field into a --flag (cli.add_flags) and calls build_config; bench.py
measures the same presets, and buildup.py fills a TrainConfig for each rung of its ladder.
"""

import argparse
import math
import shlex
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Optional

import torch

from checkpoint import holds_a_run, load_checkpoint, saved_model_config
from cli import ArgumentParser, UserError, unless_a_typo
from model import ACTIVATIONS, GPTConfig


@dataclass
class TrainConfig:
    data_dir: Annotated[str, "prepared data directory (from prepare.py)"] = "data/shakespeare"
    out_dir: Annotated[str, "where checkpoints and log.csv are written"] = "out"
    device: Annotated[str, "auto, cpu, cuda or mps (auto: cuda, then mps, then cpu)"] = "auto"
    dtype: Annotated[str, "auto, float32, bfloat16 or float16 (auto: bf16 or fp16 on CUDA, else float32)"] = "auto"
    compile: Annotated[Optional[bool], "torch.compile the model (default: on for CUDA, off elsewhere)"] = None
    compile_mode: Annotated[str, "torch.compile's mode: default, reduce-overhead (CUDA graphs: each step's "
                                 "kernels replayed from one launch) or max-autotune"] = "default"
    seed: Annotated[int, "random seed for the weights, the batches and dropout"] = 1337
    batch_size: Annotated[int, "sequences per micro-batch"] = 64
    grad_accum: Annotated[int, "micro-batches per optimizer step (gradient accumulation)"] = 1
    max_iters: Annotated[int, "optimizer steps in the whole run"] = 5000
    lr: Annotated[float, "peak learning rate, reached after warmup"] = 1e-3
    min_lr: Annotated[float, "learning rate at the end of the cosine decay"] = 1e-4
    warmup_iters: Annotated[int, "steps of linear warmup from 0 to lr"] = 100
    weight_decay: Annotated[float, "weight decay (AdamW's and Muon's), applied to 2-D weights only"] = 0.1
    beta1: Annotated[float, "AdamW beta1"] = 0.9
    beta2: Annotated[float, "AdamW beta2"] = 0.99
    grad_clip: Annotated[float, "clip the gradient norm to this (0: no clipping)"] = 1.0
    optimizer: Annotated[str, "'adamw', or 'muon': Muon for the blocks' weight matrices, AdamW for the rest"] = "adamw"
    muon_lr: Annotated[float, "Muon's peak learning rate (it follows the same warmup and decay as lr)"] = 0.02
    max_nan_skips: Annotated[int, "nan/inf losses to skip in a row before stopping (0: stop at the first)"] = 3
    eval_interval: Annotated[int, "evaluate and save a checkpoint every this many steps"] = 250
    eval_iters: Annotated[int, "batches per split in each evaluation"] = 200
    log_interval: Annotated[int, "update the progress bar every this many steps"] = 10


PRESETS = {
    # nanoGPT's shakespeare_char recipe, the published anchor: best val 1.4697
    "shakespeare": dict(
        n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2, bias=False,
        batch_size=64, grad_accum=1, max_iters=5000, lr=1e-3, min_lr=1e-4, warmup_iters=100,
        weight_decay=0.1, beta1=0.9, beta2=0.99, grad_clip=1.0, eval_interval=250, eval_iters=200),
    # under 3 minutes on 2 CPU cores: nanoGPT's CPU model shape with the levers that
    # measured best there (docs/speed.md): Muon, rotary positions, QK-norm, a high
    # learning rate and batch 32 (a CPU does 32 windows more efficiently than 12)
    "shakespeare-cpu": dict(
        n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0, bias=False,
        position="rotary", qk_norm=True, optimizer="muon", muon_lr=0.04,
        batch_size=32, grad_accum=1, max_iters=800, lr=8e-3, min_lr=8e-4, warmup_iters=50,
        weight_decay=0.1, beta1=0.9, beta2=0.99, grad_clip=1.0, eval_interval=200, eval_iters=50),
    # the CPU speedrun: the same recipe on 2 layers, and a schedule 250 steps long; it
    # passes val 1.886 (nanoGPT's CPU recipe after 126 s) in about 18 s of training
    "cpu-speedrun": dict(
        n_layer=2, n_head=4, n_embd=128, block_size=64, dropout=0.0, bias=False,
        position="rotary", qk_norm=True, optimizer="muon", muon_lr=0.04,
        batch_size=32, grad_accum=1, max_iters=250, lr=8e-3, min_lr=8e-4, warmup_iters=30,
        weight_decay=0.1, beta1=0.9, beta2=0.99, grad_clip=1.0, eval_interval=25, eval_iters=50),
    # the GPU speedrun: the classic model with the levers, 4 times the batch, 6 times the lr and
    # a tenth of the steps; it passes val 1.47 after a median of 11.5 s of training steps on one H100,
    # and 15 to 17 s on one H200 (41 to 42 s for the whole process with a warm compile cache; docs/speed.md).
    # Its 50 evaluation batches of 256 windows are the very windows of the classic preset's 200 of 64
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

# ----------------------------------------------------------------------------
# The layers: a preset (or a checkpoint's config), then the flags


def default_preset(device_name):
    """The preset a run without --preset gets: the GPU recipe on CUDA, the laptop one elsewhere."""
    cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    return "shakespeare" if cuda else "shakespeare-cpu"


def preset_shown(argv):
    """A first look at --preset and --device, so that --help can show the values they bring
    (here, not in train.py, because bench.py's --help shows them too).
    -> (the preset whose values are the defaults, whether --preset named it)"""
    first = ArgumentParser(add_help=False)
    first.add_argument("--preset")
    first.add_argument("--device", default="auto")
    try:
        known = first.parse_known_args(argv)[0]
    except UserError:  # (a mistake here is the full parser's to report)
        known = argparse.Namespace(preset=None, device="auto")
    named = known.preset in PRESETS
    return (known.preset if named else default_preset(known.device)), named


def split_config(values):
    """{all fields} -> (TrainConfig, GPTConfig)."""
    def pick(cls):
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})
    return pick(TrainConfig), pick(GPTConfig)


def build_config(preset, resume, overrides):
    """Layer the config: dataclass defaults < preset (or the checkpoint's) < command line.
    -> (all fields, the checkpoint to resume or None, lines that say where they came from)"""
    out_dir_given = overrides.get("out_dir", TrainConfig.out_dir)
    out_dir = Path(out_dir_given)
    ckpt, notes = None, []
    if resume:
        nothing = "there is nothing to resume; run without --resume"
        if (out_dir / "best.pt").is_file():  # latest.pt deleted, or a save that failed in between
            best, latest = (shlex.quote(str(out_dir / name)) for name in ("best.pt", "latest.pt"))
            nothing = f"only best.pt is there; to resume from it, copy it: cp {best} {latest}"
        resumable = lambda folder: holds_a_run(folder, ["latest.pt"])  # what --resume reads
        ckpt = load_checkpoint(out_dir / "latest.pt", lambda: unless_a_typo(out_dir, "--out_dir", resumable, nothing))
        saved = ckpt["optimizer"].get("optimizers", [ckpt["optimizer"]])  # one state, or AdamW's and Muon's
        if "numpy" not in ckpt["rng"] or any("kind" not in g for s in saved for g in s["param_groups"]):
            raise UserError(f"{out_dir / 'latest.pt'} was written by an earlier version of this repo, before "
                            f"the optimizer groups and random states it needs to resume — start a new run "
                            f"(sample.py still reads it)")
        saved_model_config(ckpt, out_dir / "latest.pt")  # refuses a setting that model.py no longer has
        values = {**ckpt["train_config"], **ckpt["model_config"]}
        # the run goes on in the folder it was read from, even if it was trained in another (then moved)
        values["out_dir"] = out_dir_given
        # the command the run was started with, plus --resume, works: its preset is only checked against
        # the run (where no flag of the command overrides it); the run keeps its own training values
        given = {**PRESETS.get(preset, {}), **overrides}
        fixed = [f"{k}={values[k]} (given: {v})" for k, v in given.items() if k in values and values[k] != v
                 and ((k in ckpt["model_config"] and k not in ("dropout", "attention")) or k == "optimizer")]
        if fixed:
            raise UserError(f"the checkpoint has {', '.join(fixed)}; its weights (and optimizer state) belong "
                            f"to that setup — resume with the preset and flags the run was started with")
        source = f"resuming {out_dir / 'latest.pt'} at iteration {ckpt['iter']}" + (f", preset {preset}"
                                                                                     if preset else "")
        # training settings may change: the optimizer keeps its state, the schedule follows the new values
        notes = [f"note: --{k} changes from {values[k]} (the checkpoint's) to {v}" for k, v in overrides.items()
                 if k in values and values[k] != v]
    else:
        preset = preset or default_preset(overrides.get("device", "auto"))
        values = dict(PRESETS[preset])
        source = f"preset {preset}"
    values.update(overrides)
    given = ", ".join(f"--{k} {v}" for k, v in overrides.items())
    return values, ckpt, "\n".join([f"config: {source}" + (f", with {given}" if given else "")] + notes)


# ----------------------------------------------------------------------------
# The checks: settings that cannot work, refused with what to use instead


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def check_config(cfg, mcfg):
    """Catch impossible settings before they turn into a traceback deep inside torch."""
    gpt = mcfg.model == "gpt"  # a bigram is a table: the GPT's sizes do not apply to it
    for name in ("batch_size", "grad_accum", "max_iters", "eval_interval", "eval_iters", "log_interval",
                 "block_size") + (("n_layer", "n_head", "n_embd") if gpt else ()):
        value = getattr(cfg if hasattr(cfg, name) else mcfg, name)
        if value < 1:
            raise UserError(f"--{name} is {value}, but it must be at least 1 — give a positive number")
    if not 0 <= mcfg.dropout < 1:
        raise UserError(f"--dropout {mcfg.dropout} is outside [0, 1) — use e.g. 0.0 or 0.2")
    for settings, name, allowed in ((mcfg, "attention", ("sdpa", "manual")), (mcfg, "model", ("gpt", "bigram")),
                                    (mcfg, "position", ("learned", "rotary")), (mcfg, "activation", tuple(ACTIVATIONS)),
                                    (cfg, "optimizer", ("adamw", "muon")), (cfg, "compile_mode", COMPILE_MODES)):
        if getattr(settings, name) not in allowed:
            choices = ", ".join(allowed[:-1]) + " or " + allowed[-1]
            raise UserError(f"--{name} {getattr(settings, name)!r} is unknown — use {choices}")
    if gpt:
        check_heads(mcfg)
    if cfg.max_nan_skips < 0:
        raise UserError(f"--max_nan_skips {cfg.max_nan_skips} must be 0 or more — e.g. 3")
    positive = ("lr",) + (("muon_lr",) if cfg.optimizer == "muon" else ())
    for name in positive + ("min_lr", "warmup_iters", "weight_decay", "grad_clip"):
        value = getattr(cfg, name)
        in_range = value > 0 if name in positive else value >= 0
        if not (in_range and value < math.inf):  # nan fails both comparisons
            lowest = "above 0" if name in positive else "0 or more"
            finite = " and finite" if isinstance(value, float) else ""
            raise UserError(f"--{name} is {value}, but it must be {lowest}{finite} — e.g. the preset's value, "
                            f"which --help shows")
    for name in ("beta1", "beta2"):  # the decay rates of AdamW's running averages
        if not 0 <= getattr(cfg, name) < 1:
            raise UserError(f"--{name} {getattr(cfg, name)} is outside [0, 1) — "
                            f"e.g. --{name} {getattr(TrainConfig, name)}")


def check_heads(mcfg):
    """n_head must divide n_embd into heads, and rotary positions, which turn a head's channels in
    pairs, need an even head size. The error suggests the nearest head count and width that work."""
    pair = 2 if mcfg.position == "rotary" else 1
    unit = mcfg.n_head * pair  # n_embd must be a multiple of this
    if mcfg.n_embd % unit == 0:
        return
    heads = [h for h in range(1, 2 * mcfg.n_head + 1) if mcfg.n_embd % (h * pair) == 0]
    fix = (f"--n_head {min(heads, key=lambda h: (abs(h - mcfg.n_head), -h))} or " if heads else "") + \
        f"--n_embd {max(1, round(mcfg.n_embd / unit)) * unit}"
    if mcfg.n_embd % mcfg.n_head:
        raise UserError(f"n_embd {mcfg.n_embd} is not divisible by n_head {mcfg.n_head} — pick sizes where it is, "
                        f"e.g. {fix}")
    raise UserError(f"rotary positions turn a head's channels in pairs, so the head size must be even, but n_embd "
                    f"{mcfg.n_embd} / n_head {mcfg.n_head} is {mcfg.n_embd // mcfg.n_head} — e.g. {fix}, "
                    f"or --position learned")
