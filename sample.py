"""Generate text from a trained checkpoint.

    python sample.py                                   # 3 samples from out/best.pt
    python sample.py --prompt "ROMEO:" --num_samples 1 --max_new_tokens 1000

The checkpoint carries the model config, the weights and the vocabulary, so this
needs nothing else: not the data directory, not the training flags.
"""

import argparse
import sys
from pathlib import Path

import torch

from model import GPT, GPTConfig
from prepare import ArgumentParser, UserError, run_cli
from train import load_checkpoint, pick_device


def encode(text, chars):
    """Characters -> ids, naming any character the model has never seen."""
    stoi = {c: i for i, c in enumerate(chars)}
    unknown = sorted(set(text) - stoi.keys())
    if unknown:
        raise UserError(f"the prompt has characters not in the model's vocabulary: "
                        f"{' '.join(repr(c) for c in unknown)} — leave them out")
    return [stoi[c] for c in text]


def decode(ids, chars):
    return "".join(chars[i] for i in ids)


def main(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0],
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out_dir", default="out", help="the training run to sample from (uses its best.pt)")
    parser.add_argument("--checkpoint", help="a checkpoint file to use instead of <out_dir>/best.pt")
    parser.add_argument("--prompt", default="\n", help="text to continue (an empty prompt means a newline)")
    parser.add_argument("--num_samples", type=int, default=3, help="how many samples to generate")
    parser.add_argument("--max_new_tokens", type=int, default=500, help="characters to generate per sample")
    parser.add_argument("--temperature", type=float, default=0.8,
                        help="below 1 is more conservative, above 1 more adventurous")
    parser.add_argument("--top_k", type=int, default=None, help="sample only from the k likeliest characters")
    parser.add_argument("--seed", type=int, default=1337, help="the same seed gives the same samples")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    args = parser.parse_args(argv)
    if args.num_samples < 1 or args.max_new_tokens < 0:
        raise UserError("--num_samples must be at least 1 and --max_new_tokens at least 0 — fix the flag")
    if args.temperature <= 0:
        raise UserError(f"--temperature {args.temperature} must be above 0 — try 0.8")
    if args.top_k is not None and args.top_k < 1:
        raise UserError(f"--top_k {args.top_k} must be at least 1 — or leave it out to use all characters")

    path = args.checkpoint or Path(args.out_dir) / "best.pt"
    ckpt = load_checkpoint(path, "train a model first with `python train.py`")
    chars = ckpt["vocab"]["chars"]
    prompt = encode(args.prompt or "\n", chars)
    device = pick_device(args.device)

    model = GPT(GPTConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    model.eval().to(device)
    torch.manual_seed(args.seed)
    idx = torch.tensor([prompt] * args.num_samples, dtype=torch.long, device=device)  # (N, T)
    out = model.generate(idx, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k)
    for i, row in enumerate(out.tolist()):
        print(f"---------------- sample {i + 1} of {args.num_samples} ----------------")
        print(decode(row, chars))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
