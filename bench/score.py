"""Score checkpoints, this repo's or nanoGPT's, on the very same val windows: one protocol for all.

    python -m bench.score out/best.pt                      # one checkpoint
    python -m bench.score out/bench/20261204-230000        # every best.pt and ckpt.pt under a folder

Two recipes that each print their own val loss may score different windows, in different
numbers: nanoGPT's CPU recipe evaluates 20 batches of 12, ours 50 of 32. This scores each
model on --batches batches of --batch_size windows of its block_size, drawn from val.bin by a
generator seeded with --seed, so models of one block size see the same text (nanoGPT's
published protocol is 200 batches of 64). A nanoGPT checkpoint (its ckpt.pt) loads into
model.py's GPT: with learned positions, GELU, pre-LayerNorm and the tied head, it is the same
network under the same names, so the strict load doubles as a check of that.
"""

import math
import re
import sys
from pathlib import Path

import torch

from config import TrainConfig
from machinery.checkpoint import load_checkpoint, load_weights, model_from_checkpoint, read_pt
from machinery.cli import ArgumentParser, HelpFormatter, UserError, pick_device, run_cli
from machinery.data import load_data
from model import GPT, GPTConfig
from train import get_batch

NANOGPT_SETTINGS = ("n_layer", "n_head", "n_embd", "block_size", "bias", "vocab_size")


def checkpoints_in(paths):
    """The files named, and every best.pt (ours) and ckpt.pt (nanoGPT's) under the folders named."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.pt") if p.name in ("best.pt", "ckpt.pt"))
        elif path.is_file():
            found.append(path)
        else:
            raise UserError(f"{path}: no such file or folder — give checkpoints (.pt) or folders that hold them")
    if not found:
        raise UserError(f"no best.pt or ckpt.pt in {', '.join(paths)} — give the folder of a finished run")
    return found


def load_any(path):
    """A checkpoint of this repo or of nanoGPT -> (model on the CPU, whose it is)."""
    ckpt = read_pt(path, "give a best.pt (ours) or a ckpt.pt (nanoGPT's)")
    if isinstance(ckpt, dict) and "model_args" in ckpt and "model" in ckpt:  # nanoGPT's train.py wrote it
        config = GPTConfig(**{k: ckpt["model_args"][k] for k in NANOGPT_SETTINGS})
        # a compiled run saves its weights under _orig_mod.; attn.bias is the causal mask of its
        # written-out attention (a buffer, not a weight: model.py makes its mask as it goes)
        weights = {re.sub(r"^_orig_mod\.", "", k): v for k, v in ckpt["model"].items()}
        weights = {k: v for k, v in weights.items() if not k.endswith(".attn.bias")}
        model = GPT(config)
        load_weights(model, weights, path)
        return model, "nanoGPT"
    return model_from_checkpoint(load_checkpoint(path, ""), path), "this repo"  # (refused unless it is ours)


@torch.no_grad()
def score(model, val, batches, batch_size, seed, device):
    """Mean cross-entropy over batches x batch_size windows of val, from a generator seeded with seed
    (float32: no autocast, so that every model is scored alike)."""
    model.eval().to(device)
    generator = torch.Generator().manual_seed(seed)
    # summed on the device, so the host waits once, at the end (MPS has no float64)
    total = torch.zeros((), dtype=torch.float32 if device.type == "mps" else torch.float64, device=device)
    for _ in range(batches):
        x, y = get_batch(val, batch_size, model.config.block_size, generator, device)
        total += model(x, y)[1]
    return total.item() / batches


def main(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    parser.add_argument("paths", nargs="+", help="checkpoints (.pt), or folders: every best.pt and ckpt.pt in them")
    parser.add_argument("--data_dir", default=TrainConfig.data_dir, help="prepared data (prepare.py): its val.bin")
    parser.add_argument("--batches", type=int, default=200, help="batches of windows to score")
    parser.add_argument("--batch_size", type=int, default=64, help="windows per batch")
    parser.add_argument("--seed", type=int, default=1337, help="seed of the generator that draws the windows")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    if args.batches < 1 or args.batch_size < 1:
        raise UserError("--batches and --batch_size must be at least 1 — e.g. 200 and 64, nanoGPT's protocol")
    vocab, splits = load_data(args.data_dir)
    print(f"scoring on {args.batches} batches of {args.batch_size} windows of {args.data_dir}/val.bin, seed "
          f"{args.seed}")
    for path in checkpoints_in(args.paths):
        model, whose = load_any(path)
        if model.config.vocab_size != vocab["vocab_size"]:
            raise UserError(f"{path} has {model.config.vocab_size} characters, {args.data_dir} has "
                            f"{vocab['vocab_size']} — score it on the data it was trained on (--data_dir)")
        loss = score(model, splits["val"], args.batches, args.batch_size, args.seed, device)
        print(f"val loss {loss:.4f} ({loss / math.log(2):.4f} bits per char): {path} ({whose}, "
              f"block {model.config.block_size})")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
