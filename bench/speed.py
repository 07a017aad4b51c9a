"""Speed: how fast this machine trains and samples. It prints numbers; the tests never assert them.

    python -m bench.speed sample                  # KV cache vs no cache, `shakespeare`-size model, CPU
    python -m bench.speed sample --device cuda --checkpoint out/best.pt
    python -m bench.speed train                   # step time, tokens/s, FLOP/s (MFU on a GPU), memory
    python -m bench.speed train --preset shakespeare --device cuda --target 1.47   # time to a val loss

`train` takes every setting of train.py (not --out_dir, --resume or --trace_shapes). --target
trains (writing nothing) until an evaluation reaches the target val loss, and reports training
time without the evaluations and without the compile warm-up, which it runs first and reports
on its own.

Speed does not depend on what the weights are, so without --checkpoint the model is
a freshly initialised one of the `shakespeare` preset's shape (10.65M parameters without
the position embeddings, as nanoGPT counts them).
"""

import copy
import functools
import importlib
import math
import resource
import shlex
import statistics
import sys
import time

import torch

if not __package__:  # run as a file (python bench/speed.py): the imports below need python -m
    command = shlex.join(["python", "-m", "bench.speed", *sys.argv[1:]])
    print(f"error: run it as a module, from the repo's folder — {command}", file=sys.stderr)
    sys.exit(2)

import train
from config import PRESETS, TrainConfig
from engine.decode import generate_cached
from machinery.bookkeeping import count_params, tokens_per_iter
from machinery.checkpoint import load_model
from machinery.cli import (ArgumentParser, HelpFormatter, UserError, add_flags, check_count, dtype_name, parse_bool,
                           pick_device, refuse_an_unreachable_target, run_cli)
from machinery.settings import (pick_dtype, preset_shown, refuse_past_memory, registries, sample_bytes,
                                split_config)
from model import GPT, GPTConfig

# bf16 dense tensor-core peaks from NVIDIA's datasheets, TFLOP/s, by what the device's name
# contains (torch.cuda.get_device_name: "NVIDIA H100 80GB HBM3" is the SXM card); first match wins
PEAK_TFLOPS = [("H100 NVL", 835.0, "H100 NVL"), ("H100 PCIe", 756.0, "H100 PCIe"), ("H100", 989.0, "H100 SXM"),
               ("H200 NVL", 835.0, "H200 NVL"), ("H200", 989.0, "H200 SXM"), ("A100", 312.0, "A100")]


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
    so this is the floor under its time on a machine whose memory is the bottleneck.
    One sum over one copy of them all: a sum per weight tensor would time the launches
    of those sums on a GPU (about 40 of them), not the reading."""
    weights = torch.cat([p.detach().reshape(-1) for p in model.parameters()])  # (all weights,)
    weights.sum()
    return 1000 * statistics.median(timed(weights.sum, device) for _ in range(repeats))


def model_to_time(checkpoint, device):
    if checkpoint:
        model, _, _ = load_model(checkpoint)
        source = checkpoint
    else:
        torch.manual_seed(0)
        model = GPT(split_config(PRESETS["shakespeare"])[1])
        source = "random weights, `shakespeare` preset shape"
    return model.eval().to(device), source


def bench_sample(args):
    device = pick_device(args.device)
    dtypes = [pick_dtype(name.strip(), device) for name in args.dtype.split(",")]  # (an unknown one: refused)
    names = [dtype_name(dtype) for dtype in dtypes]  # (auto -> the dtype it means)
    if len(set(names)) < len(names):
        raise UserError(f"--dtype {args.dtype} names {', '.join(names)}: one twice — give each dtype once")
    model, source = model_to_time(args.checkpoint, device)
    cfg, B, n = model.config, args.batch_size, args.max_new_tokens
    # each path generates the batch at once, its text a (B, n + 1) tensor of 8-byte ids
    each = sample_bytes(cfg, n + 1, max(dtypes, key=lambda dtype: dtype.itemsize), text_bytes=8)
    refuse_past_memory("--batch_size", B, f"samples of {n + 1:,} characters", each, device,
                       otherwise="give a smaller --max_new_tokens")
    model = model.to(dtypes[0])
    weights_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 1e6
    cache_mb = 2 * cfg.n_layer * B * cfg.block_size * cfg.n_embd * dtypes[0].itemsize / 1e6
    print(f"model: {source}; {count_params(model, non_embedding=True) / 1e6:.2f}M parameters without position "
          f"embeddings ({weights_mb:.1f} MB of {names[0]} weights, all of them), block_size {cfg.block_size}")
    print(f"device: {device}, torch threads: {torch.get_num_threads()}, batch {B}, {n} new tokens, "
          f"median of {args.repeats}")
    if isinstance(model, GPT):
        print(f"KV cache: 2 x {cfg.n_layer} layers x {B} x {cfg.block_size} x {cfg.n_embd} = "
              f"{cache_mb:.1f} MB in {names[0]}")
    else:  # (a table: the "KV cache" path only counts positions)
        print("KV cache: none, a bigram has no attention: the \"KV cache\" path below reads the last character "
              "alone at each step, the \"no cache\" path the whole window")
    read_ms = weight_read_ms(model, device)
    print(f"reading every weight once: {read_ms:.2f} ms, so batch 1 cannot beat "
          f"~{1000 / read_ms:.0f} tokens/s here")

    fast = "CUDA graph" if device.type == "cuda" else "KV cache"  # (a graph replays a step of the KV cache)
    paths = {"KV cache": functools.partial(generate_cached, model), "no cache": model.generate}
    if device.type == "cuda":  # each step one replay of a recorded graph (GraphedStep; recording included)
        paths = {fast: functools.partial(generate_cached, model, cuda_graph=True)} | paths
    for name, dtype in zip(names[1:], dtypes[1:]):  # the other dtypes: the fast path, on a copy of the model
        other = copy.deepcopy(model).to(dtype)
        paths[f"{fast}, {name}"] = functools.partial(generate_cached, other, cuda_graph=device.type == "cuda")
    rates = timed_in_turn(paths, B, n, args.repeats, device)
    what = "the cache" if isinstance(model, GPT) else "reading the last character alone"
    print(f"speed-up of {what}: {rates['KV cache'] / rates['no cache']:.1f}x")
    if "CUDA graph" in rates:
        print(f"speed-up of the CUDA graph over the KV cache alone: {rates['CUDA graph'] / rates['KV cache']:.1f}x")
    for name in names[1:]:
        print(f"speed-up of {name} weights: {rates[f'{fast}, {name}'] / rates[fast]:.1f}x")
    return 0


def timed_in_turn(paths, B, n, repeats, device):
    """{name: generate} -> {name: tokens/s}, the median of repeats runs of n new tokens for B samples from
    a one-character prompt (sample.py's default). The paths take turns, round after round, so that
    each meets the machine as the others do; each runs once first, untimed (kernels, allocator, threads)."""
    prompt = torch.zeros(B, 1, dtype=torch.long, device=device)
    for generate in paths.values():
        generate(prompt, 20)
    seconds = {name: [] for name in paths}
    for _ in range(repeats):
        for name, generate in paths.items():
            run = functools.partial(generate, prompt, n, generator=torch.Generator(device).manual_seed(0))
            seconds[name].append(timed(run, device))
    rates = {name: B * n / statistics.median(times) for name, times in seconds.items()}
    for name, times in seconds.items():
        print(f"{name:>18}: {rates[name]:8.1f} tokens/s  (runs: {', '.join(f'{s:.2f}' for s in times)} s)")
    return rates


def flops_per_token(model):
    """Training FLOPs per token: 6 per weight (2 forward, 4 backward), plus attention's
    q k^T and weights @ v, 12 x n_layer x block_size x n_embd (the PaLM paper's count)."""
    c = model.config
    attention = 12 * c.n_layer * c.block_size * c.n_embd if isinstance(model, GPT) else 0
    return 6 * count_params(model, non_embedding=True) + attention


def peak_tflops(device_name, given=None):
    """-> (the bf16 dense peak in TFLOP/s, for MFU, and where it came from), or (None, None)."""
    if given:
        return given, "--peak_tflops"
    for key, peak, model in PEAK_TFLOPS:
        if key in device_name:
            return peak, f"{model} bf16 dense, datasheet; device {device_name!r}"
    return None, None


def peak_memory_mb(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e6, "peak GPU memory allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3, "peak resident memory of this process"


def training(preset, overrides, nan_check=True):
    """train.py's run for the config that preset and flags give (writing nothing), and two
    functions: step() takes its next training step, restart() goes back to the start."""
    # the set-up's two slowest parts, done first to time them (on one H200, the set-up took 9 to 11 s)
    gpu = torch.cuda.is_available()  # (off a GPU, nothing compiles unless asked: no compiler to import)
    t0 = time.perf_counter()
    if gpu:
        torch.cuda.init()
    t1 = time.perf_counter()
    if gpu:
        importlib.import_module("torch._dynamo")  # what torch.compile loads on its first call
    t2 = time.perf_counter()
    run = train.setup(preset, False, overrides, new_run=False)
    print(f"set-up: {time.perf_counter() - t0:.2f} s (starting CUDA {t1 - t0:.2f} s, importing the compiler "
          f"{t2 - t1:.2f} s, the rest of train.setup {time.perf_counter() - t2:.2f} s)")
    print(f"device: {run.device}, dtype: {dtype_name(run.dtype)}, compile: {run.use_compile}, "
          f"torch threads: {torch.get_num_threads()}")
    # the random state too, as train.py's first step finds it: seeding again would replay the draws that made the
    # weights, and give dropout other masks than train.py's (on a CPU; a GPU's own generator is not drawn from yet)
    initial = {"model": copy.deepcopy(run.raw_model.state_dict()),
               "optimizer": copy.deepcopy(run.optimizer.state_dict()),
               "rng": torch.get_rng_state(),
               "cuda_rng": torch.cuda.get_rng_state(run.device) if run.device.type == "cuda" else None}

    def step():
        lr = train.lr_at(run.iter, run.cfg)
        train.train_step(run.model, run.optimizer, run.scaler, lambda: train.next_batch(run), lr, run.cfg,
                         run.autocast, run.micro_steps, device=run.device, check_finite=nan_check)
        run.iter += 1

    def restart():
        """Back to the initial weights, optimizer, batches and dropout masks (the compiled code stays)."""
        run.raw_model.load_state_dict(initial["model"])
        run.optimizer.load_state_dict(initial["optimizer"])
        run.data_generator.manual_seed(run.cfg.seed)
        torch.set_rng_state(initial["rng"])
        if initial["cuda_rng"] is not None:
            torch.cuda.set_rng_state(initial["cuda_rng"], run.device)
        run.iter = 0

    return run, step, restart


def bench_train(args, overrides):
    run, step, restart = training(args.preset, overrides, args.nan_check)
    device, tokens_per_step, flops = run.device, tokens_per_iter(run), flops_per_token(run.raw_model)
    millions = count_params(run.raw_model, non_embedding=True) / 1e6
    print(f"model: {millions:.2f}M parameters without position embeddings, {flops / 1e6:.1f} MFLOP per token; "
          f"{tokens_per_step:,} tokens per step")

    t0 = time.perf_counter()
    for _ in range(args.warmup):  # compile, allocator, thread pools
        step()
    sync(device)
    print(f"warm-up: {args.warmup} steps in {time.perf_counter() - t0:.2f} s (includes compiling, if on)")
    if args.target is not None:
        restart()
        return time_to_target(args.target, run, step)

    seconds = [timed(step, device) for _ in range(args.steps)]
    median = statistics.median(seconds)
    rate = tokens_per_step / median
    print(f"step time: {1000 * median:.1f} ms (median of {args.steps}; min {1000 * min(seconds):.1f}, "
          f"max {1000 * max(seconds):.1f})")
    print(f"throughput: {rate:,.0f} tokens/s, {rate * flops / 1e9:,.1f} GFLOP/s achieved")
    peak, source = peak_tflops(torch.cuda.get_device_name(device) if device.type == "cuda" else "", args.peak_tflops)
    if peak:
        print(f"MFU: {100 * rate * flops / (peak * 1e12):.1f}% of {peak:g} TFLOP/s ({source})")
    elif device.type == "cuda":
        print(f"MFU: unknown peak for {torch.cuda.get_device_name(device)!r} — give --peak_tflops")
    memory, what = peak_memory_mb(device)
    print(f"memory: {memory:,.0f} MB, {what}")
    return 0


def time_to_target(target, run, step):
    """Train as train.py would (same batches, schedule and dropout masks) until an evaluation's val loss
    is at or below target; the clock stops during evaluations."""
    cfg, train_s, eval_s = run.cfg, 0.0, 0.0
    start = time.perf_counter()
    while run.iter < cfg.max_iters:
        step()
        if run.iter % cfg.eval_interval and run.iter != cfg.max_iters:
            continue
        sync(run.device)
        train_s += time.perf_counter() - start
        t_eval = time.perf_counter()
        # val only: the target is a val loss, and the train split would double the evaluation's time
        losses = train.estimate_loss(run.model, {"val": run.splits["val"]}, cfg, run.mcfg.block_size, run.device,
                                     run.autocast)
        eval_s += time.perf_counter() - t_eval
        print(f"iter {run.iter}: val loss {losses['val']:.4f}, training time {train_s:.2f} s")
        if losses["val"] <= target:
            print(f"reached val loss {losses['val']:.4f} <= {target} at iteration {run.iter}: {train_s:.2f} s of "
                  f"training ({eval_s:.2f} s of evaluation not counted)")
            return 0
        start = time.perf_counter()
    print(f"did not reach val loss {target} in {cfg.max_iters} iterations ({train_s:.2f} s of training)")
    return 1


def main(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="{sample,train}")
    s = commands.add_parser("sample", help="generation speed with and without the KV cache",
                            description="Batch-1 generation speed: the KV cache (and on a GPU, the CUDA graph), "
                            "without it, and in other --dtype's.", formatter_class=HelpFormatter)
    s.add_argument("--checkpoint", help="a checkpoint to time (default: random weights, shakespeare shape)")
    s.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    s.add_argument("--batch_size", type=int, default=1, help="samples generated together")
    s.add_argument("--max_new_tokens", type=int, default=1000, help="characters generated per sample")
    s.add_argument("--repeats", type=int, default=3, help="timed runs of each path, in turn; the median is reported")
    s.add_argument("--dtype", default="float32", help="the weights' dtype; more, comma-separated (float32,bfloat16), "
                   "time the fast path again in each of the others")
    t = commands.add_parser("train", help="training step time, throughput, MFU, memory; or time to a val loss",
                            formatter_class=HelpFormatter)
    t.add_argument("--preset", choices=PRESETS, help="a train.py preset (default: as train.py picks)")
    t.add_argument("--steps", type=int, help="timed steps; the median is reported (default: 20; not with --target, "
                   "which trains up to --max_iters)")
    t.add_argument("--warmup", type=int, default=5,
                   help="untimed steps first (compiling happens here; 0: the first timed step pays for it)")
    t.add_argument("--target", type=float, help="train until the val loss reaches this, and report the time")
    t.add_argument("--peak_tflops", type=float, help="the device's peak, for MFU (default: from the GPU's name)")
    t.add_argument("--nan_check", type=parse_bool, default=True, nargs="?", const=True, metavar="BOOL",
                   help="train.py's per-step nan/inf check (false: measure what its few device-side operations cost)")
    preset = preset_shown(argv)[0]  # so that --help shows the values a run would get, as train.py's does
    # train.py's flags, but --out_dir: a benchmark writes no checkpoints or log
    add_flags(t, TrainConfig, skip={"out_dir"}, preset=preset, preset_values=PRESETS[preset], choices=registries())
    add_flags(t, GPTConfig, skip={"vocab_size"}, preset=preset, preset_values=PRESETS[preset], choices=registries())
    t.refused = dict.fromkeys(("--out_dir", "--resume", "--trace_shapes"), "is train.py's, not bench.speed train's, "
                              "which writes no checkpoints or log and times a fresh run — leave it out")
    args = parser.parse_args(argv)
    if args.command == "train":
        bench_only = {"command", "preset", "steps", "warmup", "target", "peak_tflops", "nan_check"}
        overrides = {k: v for k, v in vars(args).items() if k not in bench_only}
        for flag in ("steps", "peak_tflops"):  # (for the step time and its MFU: a run to --target reports neither)
            if args.target is not None and getattr(args, flag) is not None:
                raise UserError(f"--{flag} and --target both given — --target trains up to --max_iters and reports "
                                f"its time, not a step's: drop one of them")
        args.steps = 20 if args.steps is None else args.steps
        check_count("--steps", args.steps)
        check_count("--warmup", args.warmup, least=0)  # (0: a cold start)
        refuse_an_unreachable_target(args.target)
        if args.peak_tflops is not None and not 0 < args.peak_tflops < math.inf:
            raise UserError(f"--peak_tflops {args.peak_tflops} must be a number of TFLOP/s above 0 — e.g. 989, an "
                            f"H100's bf16 peak")
        return bench_train(args, overrides)
    for name in ("batch_size", "max_new_tokens", "repeats"):
        check_count(f"--{name}", getattr(args, name))
    return bench_sample(args)


if __name__ == "__main__":
    sys.exit(run_cli(main))
