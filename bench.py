"""Benchmarks: they print numbers; the tests never assert them.

    python bench.py sample                        # KV cache vs no cache, `shakespeare`-size model, CPU
    python bench.py sample --device cuda --checkpoint out/best.pt
    python bench.py train                         # step time, tokens/s, FLOP/s (MFU on a GPU), memory
    python bench.py train --preset shakespeare --device cuda --target 1.47   # time to a val loss
    python bench.py suite                         # every GPU measurement, logs in out/bench

`bench.py train` takes every flag of train.py. --target trains (writing nothing) until an
evaluation reaches the target val loss, and reports training time without the evaluations
and without the compile warm-up, which it runs first and reports on its own.

Speed does not depend on what the weights are, so without --checkpoint the model is
a freshly initialised one of the `shakespeare` preset's shape (10.65M parameters).
"""

import copy
import functools
import importlib
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import torch

import train
from engine.decode import generate_cached
from model import GPT, GPTConfig
from machinery.cli import ArgumentParser, HelpFormatter, UserError, add_flags, parse_bool, pick_device, run_cli
from machinery.checkpoint import load_model
from config import PRESETS, TrainConfig
from machinery.bookkeeping import tokens_per_iter
from machinery.settings import preset_shown, split_config

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
    model, source = model_to_time(args.checkpoint, device)
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
    paths = [("KV cache", functools.partial(generate_cached, model)), ("no cache", model.generate)]
    if device.type == "cuda":  # each step one replay of a recorded graph (GraphedStep; recording included)
        paths.insert(0, ("CUDA graph", functools.partial(generate_cached, model, cuda_graph=True)))
    for name, generate in paths:
        generate(prompt, 20)  # warm-up: kernels, allocator, thread pool
        run = functools.partial(generate, prompt, n, generator=torch.Generator(device).manual_seed(0))
        seconds = [timed(run, device) for _ in range(args.repeats)]
        rates[name] = B * n / statistics.median(seconds)
        print(f"{name:>9}: {rates[name]:8.1f} tokens/s  (runs: {', '.join(f'{s:.2f}' for s in seconds)} s)")
    print(f"speed-up of the cache: {rates['KV cache'] / rates['no cache']:.1f}x")
    if "CUDA graph" in rates:
        print(f"speed-up of the CUDA graph over the KV cache alone: {rates['CUDA graph'] / rates['KV cache']:.1f}x")
    return 0


def flops_per_token(model):
    """Training FLOPs per token: 6 per weight (2 forward, 4 backward), plus attention's
    q k^T and weights @ v, 12 x n_layer x block_size x n_embd (the PaLM paper's count)."""
    c = model.config
    attention = 12 * c.n_layer * c.block_size * c.n_embd if isinstance(model, GPT) else 0
    return 6 * model.num_params(non_embedding=True) + attention


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
    t0 = time.perf_counter()
    if torch.cuda.is_available():
        torch.cuda.init()
    t1 = time.perf_counter()
    importlib.import_module("torch._dynamo")  # what torch.compile loads on its first call
    t2 = time.perf_counter()
    run = train.setup(preset, False, overrides, new_run=False)
    print(f"set-up: {time.perf_counter() - t0:.2f} s (starting CUDA {t1 - t0:.2f} s, importing the compiler "
          f"{t2 - t1:.2f} s, the rest of train.setup {time.perf_counter() - t2:.2f} s)")
    print(f"device: {run.device}, dtype: {str(run.dtype).removeprefix('torch.')}, compile: {run.use_compile}, "
          f"torch threads: {torch.get_num_threads()}")
    initial = {"model": copy.deepcopy(run.raw_model.state_dict()),
               "optimizer": copy.deepcopy(run.optimizer.state_dict())}

    def step():
        lr = train.lr_at(run.iter, run.cfg)
        train.train_step(run.model, run.optimizer, run.scaler, lambda: train.next_batch(run), lr, run.cfg,
                         run.autocast, run.micro_steps, device=run.device, check_finite=nan_check)
        run.iter += 1

    def restart():
        """Back to the initial weights, optimizer and batches (the compiled code stays)."""
        run.raw_model.load_state_dict(initial["model"])
        run.optimizer.load_state_dict(initial["optimizer"])
        run.data_generator.manual_seed(run.cfg.seed)
        torch.manual_seed(run.cfg.seed)
        run.iter = 0

    return run, step, restart


def bench_train(args, overrides):
    run, step, restart = training(args.preset, overrides, args.nan_check)
    device, tokens_per_step, flops = run.device, tokens_per_iter(run), flops_per_token(run.raw_model)
    print(f"model: {run.raw_model.num_params(non_embedding=True) / 1e6:.2f}M parameters, {flops / 1e6:.1f} MFLOP "
          f"per token; {tokens_per_step:,} tokens per step")

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
    """Train as train.py would (same batches, same schedule) until an evaluation's val loss
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


# ----------------------------------------------------------------------------
# The whole GPU measurement set in one go


LEVERS = ["--optimizer", "muon", "--position", "rotary", "--qk_norm"]
SMOKE = ["--n_layer", "1", "--n_head", "2", "--n_embd", "32", "--block_size", "16", "--batch_size", "4",
         "--max_iters", "4", "--eval_interval", "2", "--eval_iters", "1"]  # --smoke: seconds on a CPU
ANCHOR = Path(__file__).resolve().parent.parent / "shared" / "anchors" / "nanogpt"  # nanoGPT, to measure against
# nanoGPT names these settings as we do, but writes them --name=value
ANCHOR_SMOKE = [f"{flag}={value}" for flag, value in zip(SMOKE[::2], SMOKE[1::2])] + [
    "--compile=False", "--lr_decay_iters=4", "--log_interval=1"]
# The side-by-side: the classic recipe for 600 steps, evaluated every 200, in nanoGPT and here. The time
# between the evaluation lines of iterations 200 and 600 (400 steps, two evaluations of both splits and
# a checkpoint) is the same statistic for both. The warm-up runs fill the compile cache for them first.
SHORT = {"max_iters": 600, "eval_interval": 200}
WARMUP = {"max_iters": 20, "eval_interval": 20, "eval_iters": 20}
WINDOW = (200, 600)  # the evaluation lines whose times the side-by-side compares


class Job(NamedTuple):
    cmd: list          # the command line after `python` ({job_dir}: a folder of this run of the job)
    limit: float       # seconds before it is stopped
    env: dict = {}     # set for its process ({cold_cache}: a new, empty folder, removed afterwards)


# torch.compile keeps what it compiled in these folders: a job given new, empty ones compiles from scratch,
# as on a new machine; every other job shares the machine's, warm once one run has compiled the same model
COLD_CACHE = {"TORCHINDUCTOR_CACHE_DIR": "{cold_cache}", "TRITON_CACHE_DIR": "{cold_cache}/triton"}


def suite_jobs(run_dir, target):
    """name -> Job: each measurement the README's GPU results need. The limits are budgets for
    one H100 or H200; a job past its limit is stopped, and its log and last numbers are kept.
    A name may be given to --jobs more than once: each run gets its own log and folder.

    The speedrun-* jobs time the `speedrun` preset to the target, then again with one lever
    off at a time (or, for CUDA graphs, on), and speedrun-train runs it as train.py would.
    classic-target is the baseline: the classic preset timed to the same target. The *-cold
    jobs do the same from an empty compile cache. levers-large is a candidate for the best val
    loss: a wider, deeper model."""
    def speedrun(*change, preset="speedrun"):
        return ["bench.py", "train", "--preset", preset, "--target", str(target), "--warmup", "3", *change]
    def anchor(settings):  # nanoGPT's own script: bash SCRIPT WORKDIR [its --name=value flags]
        return ["bash", "run_side_by_side.sh", "{job_dir}"] + [f"--{k}={v}" for k, v in settings.items()] + [
            f"--lr_decay_iters={settings['max_iters']}"]
    def ours(settings):
        return ["train.py", "--preset", "shakespeare", "--out_dir", "{job_dir}"] + [
            str(x) for k, v in settings.items() for x in (f"--{k}", v)]
    classic_step = ["bench.py", "train", "--preset", "shakespeare", "--steps", "100", "--warmup", "20"]
    ddp = str(Path(run_dir) / "ddp")  # a DDP run, resumed in one process, sampled on the CPU
    return {
        "cuda-tests": Job(["-m", "pytest", "-q", "tests/test_cuda.py"], 300),
        "classic-step": Job(classic_step, 120),
        "classic-step-nocheck": Job(classic_step + ["--nan_check", "false"], 120),
        "classic-step-graphs": Job(classic_step + ["--compile_mode", "reduce-overhead"], 180),
        "classic-train": Job(["train.py", "--preset", "shakespeare", "--out_dir", str(Path(run_dir) / "classic")],
                             450),
        "sample": Job(["bench.py", "sample"], 100),
        "anchor": Job(["bash", "run_side_by_side.sh", str(Path(run_dir) / "anchor")], 420),
        "anchor-warmup": Job(anchor(WARMUP), 150),
        "anchor-600": Job(anchor(SHORT), 150),
        "classic-warmup": Job(ours(WARMUP), 150),
        "classic-600": Job(ours(SHORT), 150),
        "ddp": Job(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "train.py", "--preset",
                    "shakespeare", "--max_iters", "200", "--eval_interval", "100", "--out_dir", ddp], 240),
        "resume": Job(["train.py", "--resume", "--max_iters", "300", "--out_dir", ddp], 180),
        "sample-on-cpu": Job(["sample.py", "--out_dir", ddp, "--device", "cpu", "--num_samples", "1",
                              "--max_new_tokens", "200"], 60),
        "speedrun": Job(speedrun(), 120),
        "speedrun-cold": Job(speedrun(), 150, COLD_CACHE),
        "classic-target": Job(speedrun(preset="shakespeare"), 150),
        "classic-target-cold": Job(speedrun(preset="shakespeare"), 180, COLD_CACHE),
        # the compile's 16 worker processes start beside the first steps even when every kernel comes from
        # the cache; with one compile thread there are none
        "speedrun-one-thread": Job(speedrun(), 120, {"TORCHINDUCTOR_COMPILE_THREADS": "1"}),
        "speedrun-graphs": Job(speedrun("--compile_mode", "reduce-overhead"), 120),
        "speedrun-adamw": Job(speedrun("--optimizer", "adamw"), 120),
        "speedrun-learned": Job(speedrun("--position", "learned"), 120),
        "speedrun-no-qknorm": Job(speedrun("--qk_norm", "false"), 120),
        "speedrun-fp32": Job(speedrun("--dtype", "float32"), 120),
        # the batch of the classic preset, and 4 times the steps: the same tokens, and the same windows scored
        "speedrun-b64": Job(speedrun("--batch_size", "64", "--max_iters", "2000", "--eval_interval", "200",
                                     "--eval_iters", "200"), 120),
        "speedrun-train": Job(["train.py", "--preset", "speedrun", "--out_dir", str(Path(run_dir) / "speedrun")],
                              150),
        "levers-large": Job(["train.py", "--preset", "shakespeare", *LEVERS, "--n_layer", "8", "--n_head", "8",
                             "--n_embd", "512", "--dropout", "0.25", "--lr", "3e-3", "--min_lr", "3e-4",
                             "--out_dir", str(Path(run_dir) / "large")], 540),
    }


def job_argv(cmd, args, checkpoint=None):
    """A job's command with the suite's device and data, and with --smoke, tiny sizes."""
    if cmd[:2] == ["-m", "pytest"] or cmd[0] == "sample.py":  # (sample.py: the checkpoint on the CPU)
        return cmd
    if cmd[0] == "bash":  # nanoGPT's own script, its own flags: bash SCRIPT WORKDIR DEVICE [flags]
        return (["bash", str(Path(args.anchor) / cmd[1]), cmd[2], args.device] + cmd[3:]
                + (ANCHOR_SMOKE if args.smoke else []))
    if cmd[:2] == ["bench.py", "sample"]:
        return (cmd + ["--device", args.device] + (["--checkpoint", str(checkpoint)] if checkpoint else [])
                + (["--max_new_tokens", "5", "--repeats", "1"] if args.smoke else []))
    extra = ["--device", args.device, "--data_dir", args.data_dir]
    if args.smoke:  # a smoke run checks that each job runs, not that it reaches its target
        extra += SMOKE + (["--steps", "2", "--warmup", "1"] if cmd[0] == "bench.py" else [])
        extra += ["--target", "inf"] if "--target" in cmd else []
        extra += ["--max_iters", "6"] if "--resume" in cmd else []  # on from the smoke run's 4
    return cmd + extra


# the lines of a log that hold the numbers
RESULT_LINE = re.compile(r"step time|throughput|MFU|memory:|reached val loss|did not reach|best val loss|"
                         r"wall time|tokens/s|speed-up|passed|failed|skipped|^error|^model:|^warm-up:|^set-up:")
# an evaluation's line, here (train.py) and in nanoGPT
EVAL_LINE = re.compile(r"^(?:iter|step) (\d+): train loss [\d.]+, val loss [\d.]+")


REPO = Path(__file__).resolve().parent


def run_job(argv, log_path, limit, text_file=None, env=None):
    """Run one job in its own process (its own compile, its own memory count), its output in
    log_path, each line behind the seconds since the job started (the whole process's clock).
    -> (exit code, or None if it ran past its limit and was stopped; seconds; its lines with
    numbers, each with the second it was printed)"""
    start = time.perf_counter()
    # the jobs name this repo's scripts and tests, which need not be in the current directory
    argv = [str(REPO / a) if a.endswith(".py") and (REPO / a).is_file() and not Path(a).is_file() else a
            for a in argv]
    # this Python's folder first on the PATH: nanoGPT's script calls `python`, which a machine may
    # lack (one with only python3), or which may be another Python without torch. Unbuffered, so that
    # each line is timed when it is printed, not when a buffer fills
    env = os.environ | (env or {}) | {"PYTHONUNBUFFERED": "1",
                                      "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    if text_file:
        env["TEXT"] = str(Path(text_file).resolve())  # the text nanoGPT's script prepares
    timed_lines = []  # (seconds since the start, line)
    # its own process group, so that a job stopped at its limit takes its children with it (nanoGPT's
    # script runs python; torchrun and torch.compile start processes of their own)
    process = subprocess.Popen(argv if argv[0] == "bash" else [sys.executable, *argv], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=env, text=True, errors="replace",
                               start_new_session=True)

    def copy_to_log():
        with open(log_path, "w") as log:
            for line in process.stdout:
                timed_lines.append((time.perf_counter() - start, line.rstrip("\n")))
                log.write(f"[{timed_lines[-1][0]:8.2f}] {line}")
                log.flush()

    reader = threading.Thread(target=copy_to_log)
    reader.start()
    try:
        code = process.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        code = None
    seconds = time.perf_counter() - start
    stop_group(process)  # the job's leftovers too (a child still holding its output open)
    reader.join()
    if argv[0] == "bash":  # nanoGPT's log
        lines = anchor_numbers(timed_lines)
    else:
        lines = [f"{line.strip()} @ {t:.1f} s" for t, line in timed_lines if RESULT_LINE.search(line.strip())]
    lines += window_line(timed_lines)
    if code is None:  # where a stopped training run had got to
        lines += [f"{line.strip()} @ {t:.1f} s" for t, line in timed_lines if line.startswith(("iter ", "step "))][-1:]
    return code, seconds, lines


def stop_group(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # all gone already
        pass
    process.wait()


def window_line(timed_lines):
    """The seconds between the evaluation lines of WINDOW's two iterations, if both were printed."""
    at = {int(m[1]): t for t, line in timed_lines if (m := EVAL_LINE.match(line))}
    first, last = WINDOW
    if first in at and last in at:
        return [f"evaluation lines {first} -> {last}: {at[last] - at[first]:.2f} s"]
    return []


def anchor_numbers(timed_lines):
    """nanoGPT's log -> its evaluations, its best val loss, and the median of its step times
    (each "iter N: loss L, time T ms" line; the steps with an evaluation in them left out)."""
    evals = [(t, m) for t, line in timed_lines
             if (m := re.match(r"step (\d+): train loss ([\d.]+), val loss ([\d.]+)", line))]
    steps = {int(m[1]) for _, m in evals}
    times = [float(m[2]) for _, line in timed_lines if (m := re.match(r"iter (\d+): loss [\d.]+, time ([\d.]+)ms", line))
             and int(m[1]) not in steps]
    lines = [f"nanoGPT step {m[1]}: train loss {m[2]}, val loss {m[3]} @ {t:.1f} s" for t, m in evals]
    if evals:
        _, best = min(evals, key=lambda e: float(e[1][3]))
        lines.append(f"nanoGPT best val loss {best[3]} at step {best[1]}")
    if times:
        lines.append(f"nanoGPT step time: {statistics.median(times):.2f} ms (median of {len(times)} logged steps)")
    return lines


def shown(argv):
    """A job's command line as it would be typed."""
    return shlex.join(argv) if argv[0] == "bash" else f"python {shlex.join(argv)}"


def suite_plan(args, run_dir):
    """-> [(label, name, Job)] of the runs this suite command makes, in order. A job named more than
    once runs each time: its label is its name, then name-2, name-3..."""
    jobs = suite_jobs(run_dir, args.target)
    names = args.jobs.split(",") if args.jobs else list(jobs)
    unknown = [n for n in names if n not in jobs]
    if unknown:
        raise UserError(f"unknown job {unknown[0]!r} — choose from {', '.join(jobs)}")
    plan = [("prepare", "prepare", Job(["prepare.py", "--input", args.input, "--out_dir", args.data_dir], 120))
            ] if args.input else []
    for i, name in enumerate(names):
        runs = names[:i].count(name)
        plan.append((f"{name}-{runs + 1}" if runs else name, name, jobs[name]))
    return plan


def run_suite(args):
    out_dir = Path(args.out_dir)
    if args.list:
        for label, _, job in suite_plan(args, out_dir / "<date-time>"):
            argv = job.cmd if label == "prepare" else job_argv(job.cmd, args)
            argv = [a.replace("{job_dir}", str(out_dir / "<date-time>" / label)) for a in argv]
            cold = " (empty compile cache)" if job.env == COLD_CACHE else ""
            env = "".join(f"{k}={v} " for k, v in job.env.items()) if job.env and not cold else ""
            print(f"{label}: {env}{shown(argv)}  (limit {job.limit:g} s){cold}")
        return 0
    suite_plan(args, out_dir)  # an unknown job is refused before anything is made
    if args.input and not Path(args.input).is_file():
        raise UserError(f"--input {args.input}: no such file — give the path of a text file to prepare")
    device = pick_device(args.device)
    run_dir = out_dir / time.strftime("%Y%m%d-%H%M%S")  # this command's logs and runs: a rerun never
    try:                                                 # meets the last one's checkpoints
        run_dir.mkdir(parents=True, exist_ok=False)
        (out_dir / "summary.txt").open("a").close()  # fail now, not after an hour of jobs
    except FileExistsError:
        raise UserError(f"{run_dir} exists: another suite started this second — start again") from None
    except OSError as e:
        raise UserError(f"cannot write in {out_dir} ({e.strerror}) — choose another --out_dir") from None
    plan = suite_plan(args, run_dir)
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    header = (f"== suite in {run_dir}: machine {machine}; torch {torch.__version__}; python "
              f"{platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M')}"
              + (f"; time limit {args.time_limit:g} s" if args.time_limit else ""))
    append(out_dir / "summary.txt", [header])
    print(header)
    start, failed, results = time.perf_counter(), 0, []
    for label, name, job in plan:
        limit = job.limit
        if args.time_limit:
            limit = min(limit, args.time_limit - (time.perf_counter() - start))
        classic = run_dir / "classic" / "best.pt"  # the sample job times the model this command trained
        argv = job.cmd if label == "prepare" else job_argv(job.cmd, args, classic if classic.is_file() else None)
        argv = [a.replace("{job_dir}", str(run_dir / label)) for a in argv]
        if limit < 10:
            lines, head = [], f"== {label}: not started, the suite's --time_limit is spent"
            failed += 1
        elif argv[0] == "bash" and not Path(argv[1]).is_file():
            lines = []
            head = f"== {label}: not started, no nanoGPT at {args.anchor} (no {Path(argv[1]).name}) — give --anchor"
            failed += 1
        else:
            print(f"== {label}: {shown(argv)}", flush=True)
            with cold_cache(job.env) as env:
                code, seconds, lines = run_job(argv, run_dir / f"{label}.log", limit, args.input, env)
            status = f"stopped at its {limit:.0f} s limit" if code is None else f"exit {code}, {seconds:.0f} s"
            cold = ", empty compile cache" if job.env == COLD_CACHE else ""
            head = f"== {label} ({status}{cold}): " + "".join(f"{k}={v} " for k, v in env.items()
                                                               if job.env != COLD_CACHE) + shown(argv)
            failed += code != 0
            results.append((name, lines))
        append(out_dir / "summary.txt", [head] + [f"   {line}" for line in lines])  # kept if we are cut off
        print(*(f"   {line}" for line in [head.split(": ")[0]] + lines), sep="\n", flush=True)
    if medians := spread_lines(results):
        append(out_dir / "summary.txt", medians)
        print(*medians, sep="\n")
    print(f"logs in {run_dir}, numbers in {out_dir / 'summary.txt'}; {failed} of {len(plan)} job(s) failed")
    return 1 if failed else 0


@contextmanager
def cold_cache(env):
    """The job's environment, with {cold_cache} made a new, empty folder for the time of the job."""
    if not any("{cold_cache}" in v for v in env.values()):
        yield dict(env)
        return
    folder = tempfile.mkdtemp(prefix="compile-cache-")
    try:
        yield {k: v.replace("{cold_cache}", folder) for k, v in env.items()}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# the numbers whose spread over a job's runs the suite prints at its end
SPREAD = {"training to the target": re.compile(r"reached val loss .*: ([\d.]+) s of training"),
          "process to the target": re.compile(r"reached val loss .* @ ([\d.]+) s"),
          "compile warm-up": re.compile(r"^warm-up: \d+ steps in ([\d.]+) s"),
          "evaluation lines": re.compile(r"^evaluation lines \d+ -> \d+: ([\d.]+) s")}


def spread_lines(results):
    """For each job and number: the median and the range over the job's runs in this command."""
    lines = []
    for name in dict.fromkeys(name for name, _ in results):
        for what, pattern in SPREAD.items():
            values = [float(m[1]) for job, job_lines in results if job == name
                      for m in map(pattern.search, job_lines) if m]
            if values:
                lines.append(f"== {name}, {what}: median {statistics.median(values):.2f} s over {len(values)} "
                             f"run(s) ({', '.join(f'{v:.2f}' for v in values)})")
    return lines


def append(path, lines):
    with open(path, "a") as f:
        f.write("".join(f"{line}\n" for line in lines))


def main(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="{sample,train,suite}")
    s = commands.add_parser("sample", help="generation speed with and without the KV cache",
                            formatter_class=HelpFormatter)
    s.add_argument("--checkpoint", help="a checkpoint to time (default: random weights, shakespeare shape)")
    s.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    s.add_argument("--batch_size", type=int, default=1, help="samples generated together")
    s.add_argument("--max_new_tokens", type=int, default=1000, help="characters generated per sample")
    s.add_argument("--repeats", type=int, default=3, help="timed runs of each path; the median is reported")
    t = commands.add_parser("train", help="training step time, throughput, MFU, memory; or time to a val loss",
                            formatter_class=HelpFormatter)
    t.add_argument("--preset", choices=PRESETS, help="a train.py preset (default: as train.py picks)")
    t.add_argument("--steps", type=int, default=20, help="timed steps; the median is reported")
    t.add_argument("--warmup", type=int, default=5, help="untimed steps first (compiling happens here)")
    t.add_argument("--target", type=float, help="train until the val loss reaches this, and report the time")
    t.add_argument("--peak_tflops", type=float, help="the device's peak, for MFU (default: from the GPU's name)")
    t.add_argument("--nan_check", type=parse_bool, default=True, nargs="?", const=True, metavar="BOOL",
                   help="train.py's per-step nan/inf check (false: measure what its wait for the device costs)")
    preset = preset_shown(argv)[0]  # so that --help shows the values a run would get, as train.py's does
    # train.py's flags, but --out_dir: a benchmark writes no checkpoints or log
    add_flags(t, TrainConfig, skip={"out_dir"}, preset=preset, preset_values=PRESETS[preset])
    add_flags(t, GPTConfig, skip={"vocab_size"}, preset=preset, preset_values=PRESETS[preset])
    u = commands.add_parser("suite", help="every GPU measurement, one process each, logs saved",
                            formatter_class=HelpFormatter)
    u.add_argument("--device", default="cuda", help="the device every job uses")
    u.add_argument("--data_dir", default=TrainConfig.data_dir, help="prepared data (prepare.py)")
    u.add_argument("--out_dir", default="out/bench", help="summary.txt (appended to), and a folder per "
                   "suite command with its logs and runs")
    u.add_argument("--jobs", help="comma-separated job names (default: all; see --list)")
    u.add_argument("--input", help="a text file to prepare into --data_dir first (a machine without network)")
    u.add_argument("--time_limit", type=float, help="seconds for the whole command: a job is stopped at its "
                   "own limit or this, whichever comes first, and none starts once it is spent")
    u.add_argument("--target", type=float, default=1.47, help="val loss for the levers-* jobs to reach")
    u.add_argument("--anchor", default=str(ANCHOR), help="nanoGPT's folder with run_side_by_side.sh, for the "
                   "anchor job (it prepares --input, or its own default text)")
    u.add_argument("--list", action="store_true", help="print the jobs' command lines; run nothing")
    u.add_argument("--smoke", action="store_true", help="tiny sizes and few steps: checks the suite runs")
    args = parser.parse_args(argv)
    if args.command == "suite":
        return run_suite(args)
    if args.command == "train":
        bench_only = {"command", "preset", "steps", "warmup", "target", "peak_tflops", "nan_check"}
        overrides = {k: v for k, v in vars(args).items() if k not in bench_only}
        for name in ("steps", "warmup"):
            if getattr(args, name) < 1:
                raise UserError(f"--{name} {getattr(args, name)} must be at least 1 — fix the flag")
        return bench_train(args, overrides)
    for name in ("batch_size", "max_new_tokens", "repeats"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name} {getattr(args, name)} must be at least 1 — fix the flag")
    return bench_sample(args)


if __name__ == "__main__":
    sys.exit(run_cli(main))
