"""Score checkpoints, this repo's or nanoGPT's, on the very same val windows: one protocol for all.

    python -m bench.score out/best.pt                      # one checkpoint
    python -m bench.score out/bench/20261204-230000        # every best.pt and ckpt.pt under a folder
    python -m bench.score out/best.pt --dtype bfloat16     # the same, its weights rounded to bfloat16

Two recipes that each print their own val loss may score different windows, in different
numbers: nanoGPT's CPU recipe evaluates 20 batches of 12, ours 50 of 32. This scores each
model on --batches batches of --batch_size windows of its block_size, drawn from val.bin by a
generator seeded with --seed, so models of one block size see the same text (nanoGPT's
published protocol is 200 batches of 64). A nanoGPT checkpoint (its ckpt.pt) loads into
model.py's GPT: with learned positions, GELU, pre-LayerNorm and the tied head, it is the same
network under the same names, so the strict load doubles as a check of that.
"""

import math
import os
import re
import shlex
import sys
from contextlib import nullcontext
from pathlib import Path

if not __package__:  # run as a file (python bench/score.py): the imports below need python -m
    command = shlex.join(["python", "-m", "bench.score", *sys.argv[1:]])
    print(f"error: run it as a module, from the repo's folder — {command}", file=sys.stderr)
    sys.exit(2)

import torch

from config import TrainConfig
from machinery.checkpoint import check_ours, load_weights, model_from_checkpoint, read_pt
from machinery.cli import (ArgumentParser, HelpFormatter, UserError, check_count, dtype_name, parse_seed,
                           pick_device, run_cli)
from machinery.data import load_data
from machinery.settings import forward_bytes, pick_dtype, refuse_past_memory
from model import GPT, GPTConfig
from train import estimate_loss

NANOGPT_SETTINGS = ("n_layer", "n_head", "n_embd", "block_size", "vocab_size")  # and bias, True unless saved


def checkpoints_in(paths):
    """-> [(path, named)]: the files named (named=True), and every best.pt (ours) and ckpt.pt (nanoGPT's)
    under the folders named."""
    found = []
    if "" in paths:  # Path("") is the current folder: an unset "$VARIABLE" would score everything under it
        raise UserError("a path is empty — give checkpoints (.pt) or folders that hold them (an unset \"$VARIABLE\" "
                        "gives an empty one)")
    for path in map(Path, paths):
        if path.is_dir():
            found += [(p, False) for p in runs_under(path)]
        elif path.is_file():
            found.append((path, True))
        else:
            raise UserError(f"{path}: no such file or folder — give checkpoints (.pt) or folders that hold them")
    if not found:
        raise UserError(f"no best.pt or ckpt.pt in {', '.join(paths)} — give the folder of a finished run")
    return found


def runs_under(folder):
    """Every best.pt and ckpt.pt under folder, in order. A folder inside it that may not be read is said and
    skipped, as a file that is no checkpoint is; folder itself, so, is a one-line error (rglob skips both unsaid)."""
    def unread(e):
        if Path(e.filename) == folder:
            raise e
        print(f"skipped: cannot read {e.filename} ({e.strerror})")
    return sorted(Path(root) / name for root, _, names in os.walk(folder, onerror=unread)
                  for name in names if name in ("best.pt", "ckpt.pt"))


def load_any(path):
    """A checkpoint of this repo or of nanoGPT -> (model on the CPU, whose it is, its characters in id
    order: ours carry them; nanoGPT keeps them in its data folder's meta.pkl, so None)."""
    ckpt = read_pt(path, "give a best.pt (ours) or a ckpt.pt (nanoGPT's)")
    if isinstance(ckpt, dict) and "model_args" in ckpt and "model" in ckpt:  # nanoGPT's train.py wrote it
        return nanogpt_model(ckpt, path), "nanoGPT", None
    if not (isinstance(ckpt, dict) and "format" in ckpt):
        raise UserError(f"{path} is neither this repo's checkpoint nor nanoGPT's — give a best.pt or a ckpt.pt")
    ckpt = check_ours(ckpt, path)
    return model_from_checkpoint(ckpt, path), "this repo", ckpt["vocab"]["chars"]


def nanogpt_model(ckpt, path):
    """nanoGPT's ckpt.pt -> model.py's GPT with its weights."""
    args = ckpt["model_args"]
    missing = [k for k in NANOGPT_SETTINGS if not isinstance(args, dict) or not isinstance(args.get(k), int)]
    if missing:
        raise UserError(f"{path} looks like nanoGPT's, but its model_args lack {', '.join(missing)} — give a "
                        f"ckpt.pt that nanoGPT's train.py wrote")
    sizes = {k: args[k] for k in NANOGPT_SETTINGS}
    of_tensors = isinstance(ckpt["model"], dict) and all(isinstance(k, str) and torch.is_tensor(v)
                                                         for k, v in ckpt["model"].items())
    # a compiled run saves its weights under _orig_mod.; attn.bias is the causal mask of its
    # written-out attention (a buffer, not a weight: model.py makes its mask as it goes)
    weights = {re.sub(r"^_orig_mod\.", "", k): v for k, v in ckpt["model"].items()} if of_tensors else {}
    weights = {k: v for k, v in weights.items() if not k.endswith(".attn.bias")}
    wte = weights.get("transformer.wte.weight")  # (vocab_size, n_embd): checked before a model of these sizes is made
    if (min(sizes.values()) < 1 or sizes["n_embd"] % sizes["n_head"] or wte is None
            or tuple(wte.shape) != (sizes["vocab_size"], sizes["n_embd"])):
        raise UserError(f"{path} looks like nanoGPT's, but its weights do not make the GPT its model_args describe "
                        f"({', '.join(f'{k}={v}' for k, v in sizes.items())}) — give a ckpt.pt that nanoGPT's "
                        f"train.py wrote")
    config = GPTConfig(**sizes, bias=bool(args.get("bias", True)))
    model = GPT(config)
    load_weights(model, weights, path)
    return model


def mismatch(model, chars, vocab, val):
    """Why model cannot be scored on this data, or None."""
    if chars is not None and chars != vocab["chars"]:
        return "it was trained on another vocabulary"
    if model.config.vocab_size != vocab["vocab_size"]:
        return f"it has {model.config.vocab_size} characters, the data {vocab['vocab_size']}"
    if len(val) <= model.config.block_size:
        return f"val.bin has {len(val)} characters, fewer than one window of {model.config.block_size} + 1"
    return None


def score(model, val, batches, batch_size, seed, device):
    """Mean cross-entropy over batches x batch_size windows of val, drawn as train.py's evaluation draws
    them (its estimate_loss, with these settings; no autocast: each model in its weights' dtype)."""
    settings = TrainConfig(batch_size=batch_size, eval_iters=batches, seed=seed)
    return estimate_loss(model.to(device), {"val": val}, settings, model.config.block_size, device,
                         nullcontext())["val"]


def main(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    parser.add_argument("paths", nargs="+", help="checkpoints (.pt), or folders: every best.pt and ckpt.pt in them")
    parser.add_argument("--data_dir", default=TrainConfig.data_dir, help="prepared data (prepare.py): its val.bin")
    parser.add_argument("--batches", type=int, default=200, help="batches of windows to score")
    parser.add_argument("--batch_size", type=int, default=64, help="windows per batch")
    parser.add_argument("--seed", type=parse_seed, default=1337, help="seed of the generator that draws the windows")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    parser.add_argument("--dtype", default="float32", help="the weights' dtype while scoring: float32 (as "
                        "trained), bfloat16, float16, or auto (as train.py picks it)")
    args = parser.parse_args(argv)
    check_count("--batches", args.batches, fix="e.g. 200, nanoGPT's protocol")
    check_count("--batch_size", args.batch_size, fix="e.g. 64, nanoGPT's protocol")
    device = pick_device(args.device)
    dtype = pick_dtype(args.dtype, device)
    found = checkpoints_in(args.paths)
    vocab, splits = load_data(args.data_dir)
    header = (f"scoring on {args.batches} batches of {args.batch_size} windows of {args.data_dir}/val.bin, seed "
              f"{args.seed}, weights in {dtype_name(dtype)}")
    scored = 0
    for path, named in found:
        try:
            model, whose, chars = load_any(path)
        except UserError as e:  # named: the user's mistake; found in a folder: a stray file, the others still count
            if named:
                raise
            print(f"skipped: {str(e).split(' — ')[0]}")  # (what it is not; the advice is for a named file)
            continue
        if header:  # (printed once the first file has loaded: a file that is no checkpoint gets its line alone)
            print(header)
            header = None
        why = mismatch(model, chars, vocab, splits["val"])
        if why and named:
            raise UserError(f"cannot score {path} on {args.data_dir}: {why} — give the --data_dir it was trained on")
        if why:  # found in a folder, which may hold other runs: the others are still scored
            print(f"skipped {path}: {why}")
            continue
        # a batch of windows goes through the model at once: one too large was stopped by the system without a word
        refuse_past_memory("--batch_size", args.batch_size, f"windows through {path}", forward_bytes(model.config),
                           device, otherwise="score it on a machine with more memory")
        loss = score(model.to(dtype), splits["val"], args.batches, args.batch_size, args.seed, device)
        print(f"val loss {loss:.4f} ({loss / math.log(2):.4f} bits per char): {path} ({whose}, "
              f"block {model.config.block_size})")
        scored += 1
    if not scored:  # every file found was skipped, each with its line above
        raise UserError(f"none of the files in {' '.join(args.paths)} could be scored on {args.data_dir} (each "
                        f"says why above) — give checkpoints, this repo's or nanoGPT's, with the --data_dir they "
                        f"were trained on")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
