"""Benchmarks: they print numbers; the tests never assert them.

    python bench.py sample                        # KV cache vs no cache, `shakespeare`-size model, CPU
    python bench.py sample --device cuda --checkpoint out/best.pt

Speed does not depend on what the weights are, so without --checkpoint the model is
a freshly initialised one of the `shakespeare` preset's shape (10.65M parameters).
"""

import argparse
import functools
import statistics
import sys
import time

import torch

from model import GPT
from prepare import ArgumentParser, UserError, run_cli
from train import PRESETS, load_checkpoint, model_from_checkpoint, pick_device, split_config


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device):
    """Seconds that fn() takes, with the device's queued work finished on both sides."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def weight_read_ms(model, device, repeats=20):
    """Milliseconds to read every weight once. A batch-1 generation step must read them all,
    so this is the floor under its time on a machine whose memory is the bottleneck."""
    params = list(model.parameters())

    def read():
        return [p.sum() for p in params]

    read()
    return 1000 * statistics.median(timed(read, device) for _ in range(repeats))


def load_model(checkpoint, device):
    if checkpoint:
        ckpt = load_checkpoint(checkpoint, "give the path of a checkpoint written by train.py")
        model = model_from_checkpoint(ckpt)
        source = checkpoint
    else:
        torch.manual_seed(0)
        model = GPT(split_config(PRESETS["shakespeare"])[1])
        source = "random weights, `shakespeare` preset shape"
    return model.eval().to(device), source


def bench_sample(args):
    device = pick_device(args.device)
    model, source = load_model(args.checkpoint, device)
    cfg, B, n = model.config, args.batch_size, args.max_new_tokens
    weights_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 1e6
    cache_mb = 2 * cfg.n_layer * B * cfg.block_size * cfg.n_embd * 4 / 1e6
    print(f"model: {source}; {model.num_params(non_embedding=True) / 1e6:.2f}M parameters "
          f"({weights_mb:.1f} MB of float32 weights), block_size {cfg.block_size}")
    print(f"device: {device}, torch threads: {torch.get_num_threads()}, batch {B}, {n} new tokens, "
          f"median of {args.repeats}")
    print(f"KV cache: 2 x {cfg.n_layer} layers x {B} x {cfg.block_size} x {cfg.n_embd} = "
          f"{cache_mb:.1f} MB in float32")
    read_ms = weight_read_ms(model, device)
    print(f"reading every weight once: {read_ms:.2f} ms, so batch 1 cannot beat "
          f"~{1000 / read_ms:.0f} tokens/s here")

    prompt = torch.zeros(B, 1, dtype=torch.long, device=device)  # one character, as sample.py's default
    rates = {}
    for name, generate in (("KV cache", model.generate_cached), ("no cache", model.generate)):
        generate(prompt, 20)  # warm-up: kernels, allocator, thread pool
        run = functools.partial(generate, prompt, n, generator=torch.Generator(device).manual_seed(0))
        seconds = [timed(run, device) for _ in range(args.repeats)]
        rates[name] = B * n / statistics.median(seconds)
        print(f"{name:>9}: {rates[name]:8.1f} tokens/s  (runs: {', '.join(f'{s:.2f}' for s in seconds)} s)")
    print(f"speed-up of the cache: {rates['KV cache'] / rates['no cache']:.1f}x")
    return 0


def main(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="{sample}")
    s = commands.add_parser("sample", help="generation speed with and without the KV cache",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("--checkpoint", help="a checkpoint to time (default: random weights, shakespeare shape)")
    s.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    s.add_argument("--batch_size", type=int, default=1, help="samples generated together")
    s.add_argument("--max_new_tokens", type=int, default=1000, help="characters generated per sample")
    s.add_argument("--repeats", type=int, default=3, help="timed runs of each path; the median is reported")
    args = parser.parse_args(argv)
    for name in ("batch_size", "max_new_tokens", "repeats"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name} {getattr(args, name)} must be at least 1 — fix the flag")
    return {"sample": bench_sample}[args.command](args)


if __name__ == "__main__":
    sys.exit(run_cli(main))
