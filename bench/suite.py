"""Every GPU measurement, and the side-by-side with nanoGPT on a CPU, in one command: each job its
own process, its log kept, each line of it behind the second its process printed it.

    python -m bench.suite --list                       # the jobs and their exact command lines
    python -m bench.suite --out_dir out/bench          # all of them, on cuda
    python -m bench.suite --jobs speedrun,classic-target,speedrun,classic-target --time_limit 300
    python -m bench.suite --jobs anchor --anchor ~/nanoGPT    # nanoGPT itself, from your checkout
    python -m bench.suite --smoke --device cpu         # every job at toy sizes: checks that they run
    python -m bench.suite --device cpu --anchor ~/nanoGPT --jobs anchor-cpu-recipe,cpu-speedrun-train,score

As each job ends, its lines with numbers are appended to OUT_DIR/summary.txt, under the GPU's
name, the PyTorch version and the date, so a command that is cut off still leaves what it
measured. docs/speed.md says what each job measures and what was measured.
"""

import math
import os
import platform
import re
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

if not __package__:  # run as a file (python bench/suite.py): the imports below need python -m
    command = shlex.join(["python", "-m", "bench.suite", *sys.argv[1:]])
    print(f"error: run it as a module, from the repo's folder — {command}", file=sys.stderr)
    sys.exit(2)

from config import TrainConfig
from machinery.cli import (ArgumentParser, HelpFormatter, UserError, closest, pick_device,
                           refuse_an_unreachable_target, run_cli)

REPO = Path(__file__).resolve().parent.parent
NANOGPT = Path(__file__).resolve().parent / "nanogpt.sh"  # runs nanoGPT's recipe from a checkout of it
NANOGPT_STARTS = "nanogpt.sh: prepared"  # the line it prints just before it starts nanoGPT's train.py


LEVERS = ["--optimizer", "muon", "--position", "rotary", "--qk_norm"]
SMOKE = ["--n_layer", "1", "--n_head", "2", "--n_embd", "32", "--block_size", "16", "--batch_size", "4",
         "--max_iters", "4", "--eval_interval", "2", "--eval_iters", "1"]  # --smoke: seconds on a CPU
# nanoGPT names these settings as we do, but writes them --name=value
ANCHOR_SMOKE = [f"{flag}={value}" for flag, value in zip(SMOKE[::2], SMOKE[1::2])] + [
    "--compile=False", "--lr_decay_iters=4", "--log_interval=1"]
# The side-by-side: the classic recipe for 600 steps, evaluated every 200, in nanoGPT and here. The time
# between the evaluation lines of iterations 200 and 600 (400 steps, two evaluations of both splits and
# a checkpoint) is the same statistic for both. The warm-up runs fill the compile cache for them first.
SHORT = {"max_iters": 600, "eval_interval": 200}
WARMUP = {"max_iters": 20, "eval_interval": 20, "eval_iters": 20}
WINDOW = (200, 600)  # the evaluation lines whose times the side-by-side compares
# The CPU side-by-side: nanoGPT's CPU recipe as its README gives it, and ours (the cpu-speedrun preset), each
# run whole. The statistic is the same for both: the seconds from the training script's start to its last
# line. The score job then scores every model the command trained on the same val windows (bench/score.py)
NANOGPT_CPU = {"max_iters": 2000, "compile": False, "eval_iters": 20, "log_interval": 1, "block_size": 64,
               "batch_size": 12, "n_layer": 4, "n_head": 4, "n_embd": 128, "dropout": 0.0}


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
    def speedrun(*change, preset="speedrun", to=target):
        return ["-m", "bench.speed", "train", "--preset", preset, "--target", str(to), "--warmup", "3", *change]
    def anchor(settings):  # nanoGPT's recipe, from a checkout of it (nanogpt.sh; its own --name=value flags)
        return ["bash", "nanogpt.sh", "{job_dir}"] + [f"--{k}={v}" for k, v in settings.items()] + [
            f"--lr_decay_iters={settings['max_iters']}"]
    def ours(settings):
        return ["train.py", "--preset", "shakespeare", "--out_dir", "{job_dir}"] + [
            str(x) for k, v in settings.items() for x in (f"--{k}", v)]
    classic_step = ["-m", "bench.speed", "train", "--preset", "shakespeare", "--steps", "100", "--warmup", "20"]
    ddp = str(Path(run_dir) / "ddp")  # a DDP run, resumed in one process, sampled on the CPU
    return {
        # no:cacheprovider: the job runs pytest inside the repo, which would leave a .pytest_cache folder there
        "cuda-tests": Job(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_cuda.py"], 300),
        "classic-step": Job(classic_step, 120),
        "classic-step-nocheck": Job(classic_step + ["--nan_check", "false"], 120),
        "classic-step-graphs": Job(classic_step + ["--compile_mode", "reduce-overhead"], 180),
        "classic-train": Job(["train.py", "--preset", "shakespeare", "--out_dir", "{job_dir}"], 450),
        "sample": Job(["-m", "bench.speed", "sample"], 100),
        "anchor": Job(["bash", "nanogpt.sh", str(Path(run_dir) / "anchor")], 420),
        "anchor-warmup": Job(anchor(WARMUP), 150),
        "anchor-600": Job(anchor(SHORT), 150),
        "anchor-cpu-recipe": Job(anchor(NANOGPT_CPU), 300),
        "cpu-speedrun-train": Job(["train.py", "--preset", "cpu-speedrun", "--out_dir", "{job_dir}"], 120),
        "classic-warmup": Job(ours(WARMUP), 150),
        "classic-600": Job(ours(SHORT), 150),
        "ddp": Job(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "train.py", "--preset",
                    "shakespeare", "--max_iters", "200", "--eval_interval", "100", "--out_dir", ddp], 240),
        "resume": Job(["train.py", "--resume", "--max_iters", "300", "--out_dir", ddp], 180),
        "sample-on-cpu": Job(["sample.py", "--out_dir", ddp, "--device", "cpu", "--num_samples", "1",
                              "--max_new_tokens", "200"], 60),
        "speedrun": Job(speedrun(), 120),
        "speedrun-cold": Job(speedrun(), 150, COLD_CACHE),
        # evaluated every 200 steps of 64 rows, as often in tokens as the speedrun's every 50 of 256: both clocks
        # to the target then have the same resolution (the preset's 250 would read it up to 50 steps later)
        "classic-target": Job(speedrun("--eval_interval", "200", preset="shakespeare"), 150),
        "classic-target-cold": Job(speedrun("--eval_interval", "200", preset="shakespeare"), 180, COLD_CACHE),
        # not measurements: each compiles what its runs to the target compile (the training step, then the
        # evaluation, at iteration 20), and so fills the compile cache for the runs that find it warm
        "speedrun-warmup": Job(speedrun("--eval_interval", "20", to=math.inf), 150),
        "classic-target-warmup": Job(speedrun("--eval_interval", "20", preset="shakespeare", to=math.inf), 150),
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
        "speedrun-train": Job(["train.py", "--preset", "speedrun", "--out_dir", "{job_dir}"], 150),
        "levers-large": Job(["train.py", "--preset", "shakespeare", *LEVERS, "--n_layer", "8", "--n_head", "8",
                             "--n_embd", "512", "--dropout", "0.25", "--lr", "3e-3", "--min_lr", "3e-4",
                             "--out_dir", "{job_dir}"], 540),
        # last, so that a command of all the jobs scores every model it trained
        "score": Job(["-m", "bench.score", str(run_dir)], 300),
    }


def job_argv(cmd, args, checkpoint=None):
    """A job's command with the suite's device and data, and with --smoke, tiny sizes."""
    if cmd[:2] == ["-m", "pytest"] or cmd[0] == "sample.py":  # (sample.py: the checkpoint on the CPU)
        return cmd
    if cmd[0] == "bash":  # bash nanogpt.sh CHECKOUT WORKDIR DEVICE TEXT [nanoGPT's flags]
        return (["bash", str(NANOGPT), str(args.anchor or "NANOGPT_CHECKOUT"), cmd[2], args.device,
                 str(anchor_text(args))] + cmd[3:]
                + (ANCHOR_SMOKE if args.smoke else []))
    if cmd[1:2] == ["bench.score"]:
        return cmd + ["--data_dir", args.data_dir, "--device", args.device] + (
            ["--batches", "2", "--batch_size", "4"] if args.smoke else [])
    if cmd[1:3] == ["bench.speed", "sample"]:
        return (cmd + ["--device", args.device] + (["--checkpoint", str(checkpoint)] if checkpoint else [])
                + (["--max_new_tokens", "5", "--repeats", "1"] if args.smoke else []))
    extra = ["--device", args.device, "--data_dir", args.data_dir]
    if args.smoke:  # a smoke run checks that each job runs, not that it reaches its target
        speed = cmd[1:2] == ["bench.speed"]
        extra += SMOKE + (["--warmup", "1"] if speed else [])
        extra += ["--steps", "2"] if speed and "--target" not in cmd else []  # (a run to --target times no steps)
        extra += ["--target", "inf"] if "--target" in cmd else []
        extra += ["--max_iters", "6"] if "--resume" in cmd else []  # on from the smoke run's 4
    return cmd + extra


def anchor_text(args):
    """The text nanoGPT prepares: the suite's --input, or the one prepare.py downloaded."""
    return Path(args.input) if args.input else Path(args.data_dir) / "input.txt"


def anchor_missing(args):
    """Why the nanoGPT jobs cannot start, or None."""
    if not args.anchor:
        return "no nanoGPT checkout given — git clone https://github.com/karpathy/nanoGPT, then give --anchor PATH"
    lacks = [name for name in ("train.py", "data/shakespeare_char") if not (Path(args.anchor) / name).exists()]
    if lacks:
        return f"{args.anchor} is not a nanoGPT checkout (it has no {' and no '.join(lacks)}) — give --anchor PATH"
    if not anchor_text(args).is_file():
        return f"no text for nanoGPT at {anchor_text(args)} — give --input FILE"
    return None


# the lines of a log that hold the numbers
RESULT_LINE = re.compile(r"step time|throughput|MFU|memory:|reached val loss|did not reach|best val loss|"
                         r"wall time|tokens/s|speed-up|passed|failed|skipped|^error|^model:|^warm-up:|^set-up:|"
                         r"^val loss ")
# an evaluation's line, here (train.py) and in nanoGPT
EVAL_LINE = re.compile(r"^(?:iter|step) (\d+): train loss [\d.]+, val loss [\d.]+")


def run_job(argv, log_path, limit, env=None):
    """Run one job in its own process (its own compile, its own memory count), its output in
    log_path, each line behind the seconds since the job started (the whole process's clock).
    -> (exit code, or None if it ran past its limit and was stopped; seconds; its lines with
    numbers, each with the second it was printed)"""
    start = time.perf_counter()
    # the jobs name this repo's scripts and tests, which need not be in the current directory
    argv = [str(REPO / a) if a.endswith(".py") and (REPO / a).is_file() and not Path(a).is_file() else a
            for a in argv]
    # this Python's folder first on the PATH: nanoGPT's script calls `python`, which a machine may
    # lack (one with only python3), or which may be another Python without torch. The repo on the
    # PYTHONPATH, for `-m bench.speed` from any folder. Unbuffered, so that each line is timed when
    # it is printed, not when a buffer fills
    env = os.environ | (env or {}) | {
        "PYTHONUNBUFFERED": "1", "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
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

    reader = threading.Thread(target=copy_to_log, daemon=True)
    reader.start()
    interrupted = None  # after a Ctrl-C: how the job ended
    try:
        code = process.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        code = None
    except KeyboardInterrupt:  # Ctrl-C reaches the suite only (the job has its own session): pass it on
        code, interrupted = None, "it stopped" if stop_gently(process) else "it did not stop, and was killed"
    seconds = time.perf_counter() - start
    stop_group(process)  # the job's leftovers too (a child still holding its output open)
    reader.join()
    if argv[0] == "bash":  # nanoGPT's log
        lines = anchor_numbers(timed_lines)
    else:
        lines = [f"{line.strip()} @ {t:.1f} s" for t, line in timed_lines if RESULT_LINE.search(line.strip())]
    lines += window_line(timed_lines) + (script_line(timed_lines, argv) if code == 0 else [])  # (finished runs)
    if code is None:  # where a stopped training run had got to
        lines += [f"{line.strip()} @ {t:.1f} s" for t, line in timed_lines if line.startswith(("iter ", "step "))][-1:]
    if interrupted:
        raise Interrupted(seconds, lines, interrupted)
    return code, seconds, lines


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a job, raised once the job has stopped, with what it printed so far (for summary.txt)."""
    def __init__(self, seconds, lines, how):
        super().__init__()
        self.seconds, self.lines, self.how = seconds, lines, how


def stop_gently(process, seconds=30):
    """Ctrl-C to the job's group, as a terminal would send it (train.py then saves latest.pt), and, after
    seconds or a second Ctrl-C, SIGKILL: a job left running would hold the GPU with no one to stop it.
    -> whether the job stopped by itself"""
    stopped = False
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=seconds)
        stopped = True
    except ProcessLookupError:  # gone already
        stopped = True
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        pass
    finally:
        stop_group(process)
    return stopped


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


def script_line(timed_lines, argv):
    """A training run's seconds from its script's start to its last line: for ours, from the job's
    start; for nanoGPT, from the line nanogpt.sh prints once its copy and its data are ready."""
    if argv[0] == "bash":
        start = next((t for t, line in timed_lines if line.startswith(NANOGPT_STARTS)), None)
    else:
        start = 0.0 if Path(argv[0]).name == "train.py" else None
    if start is None or not timed_lines:
        return []
    return [f"training script: {timed_lines[-1][0] - start:.2f} s from its start to its last line"]


def anchor_numbers(timed_lines):
    """nanoGPT's log -> its evaluations, its best val loss, and the median of its step times
    (each "iter N: loss L, time T ms" line; the steps with an evaluation in them left out)."""
    evals = [(t, m) for t, line in timed_lines
             if (m := re.match(r"step (\d+): train loss ([\d.]+), val loss ([\d.]+)", line))]
    steps = {int(m[1]) for _, m in evals}
    step_line = re.compile(r"iter (\d+): loss [\d.]+, time ([\d.]+)ms")
    times = [float(m[2]) for _, line in timed_lines if (m := step_line.match(line)) and int(m[1]) not in steps]
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
    once runs each time: its label is its name, then name-2, name-3..., and the jobs that train a run of train.py's
    own (classic-train, cpu-speedrun-train, speedrun-train, levers-large) do so in a folder of that name
    ({job_dir}); ddp, resume and sample-on-cpu share one run, in the folder ddp, and anchor writes in anchor."""
    jobs = suite_jobs(run_dir, args.target)
    if args.jobs == "":  # --jobs "$JOBS" with JOBS unset: not "no --jobs", which runs them all
        raise UserError("--jobs is empty — name the jobs (--list shows them), or leave the flag out for all")
    names = args.jobs.split(",") if args.jobs else list(jobs)
    unknown = [n for n in names if n not in jobs]
    if unknown:
        if guess := closest(unknown[0], jobs):  # a typo: its fix alone, not the list of 30
            raise UserError(f"unknown job {unknown[0]!r} — did you mean {guess}? (--list shows every job)")
        raise UserError(f"unknown job {unknown[0]!r} — choose from {', '.join(jobs)}")
    if names.count("score") > 1:
        raise UserError("--jobs names score twice — name it once, last: it scores every model the others trained")
    if "score" in names[:-1]:  # it scores the models that the jobs before it trained
        raise UserError("--jobs names score before other jobs — name it last: it scores what they trained")
    if names == ["score"]:  # (a new command's folder holds no models yet)
        raise UserError("--jobs score alone has nothing to score — name the training jobs before it, or run "
                        "python -m bench.score FOLDER on a finished suite's folder")
    for name in ("resume", "sample-on-cpu"):  # (ddp's run, in the folder ddp, is theirs: a job before them makes it)
        if name in names and "ddp" not in names[:names.index(name)]:
            raise UserError(f"--jobs {name} {'goes on from' if name == 'resume' else 'samples'} the ddp job's run — "
                            f"name ddp before it: --jobs ddp,{name}")
    plan = [("prepare", "prepare", Job(["prepare.py", "--input", args.input, "--out_dir", args.data_dir], 120))
            ] if args.input else []
    for i, name in enumerate(names):
        runs = names[:i].count(name)
        plan.append((f"{name}-{runs + 1}" if runs else name, name, jobs[name]))
    return plan


def run_suite(args):
    out_dir = Path(args.out_dir)
    refuse_an_unreachable_target(args.target)  # (before --list too: it lists what would run)
    if args.time_limit is not None and not 0 < args.time_limit < math.inf:
        raise UserError(f"--time_limit {args.time_limit:g} must be a number of seconds above 0 — e.g. 540, or "
                        f"leave it out for each job's own limit")
    if args.list:
        for label, _, job in suite_plan(args, out_dir / "<date-time>"):
            argv = job.cmd if label == "prepare" else job_argv(job.cmd, args)
            argv = [a.replace("{job_dir}", str(out_dir / "<date-time>" / label)) for a in argv]
            cold = " (empty compile cache)" if job.env == COLD_CACHE else ""
            env = "".join(f"{k}={v} " for k, v in job.env.items()) if job.env and not cold else ""
            print(f"{label}: {env}{shown(argv)}  (limit {job.limit:g} s){cold}")
        return 0
    plan = suite_plan(args, out_dir)  # an unknown job is refused before anything is made
    if args.input and not Path(args.input).is_file():
        what = "a folder, not a file" if Path(args.input).is_dir() else "no such file"
        raise UserError(f"--input {args.input}: {what} — give the path of a text file to prepare")
    anchors = list(dict.fromkeys(name for _, name, job in plan if job.cmd[0] == "bash"))
    if (args.jobs or args.anchor) and anchors and anchor_missing(args):  # (all the jobs, no --anchor: skipped)
        raise UserError(f"--jobs {', '.join(anchors)}: {'they run' if len(anchors) > 1 else 'it runs'} nanoGPT, "
                        f"and {anchor_missing(args)}")
    device = pick_device(args.device)
    refuse_a_summary_not_ours(out_dir / "summary.txt")
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
              + (f"; time limit {args.time_limit:g} s" if args.time_limit is not None else ""))
    append(out_dir / "summary.txt", [header])
    print(header)
    start, failed, skipped, results = time.perf_counter(), 0, 0, []
    for label, name, job in plan:
        limit = job.limit
        if args.time_limit is not None:
            limit = min(limit, args.time_limit - (time.perf_counter() - start))
        classic = run_dir / "classic-train" / "best.pt"  # the sample job times the model this command trained
        argv = job.cmd if label == "prepare" else job_argv(job.cmd, args, classic if classic.is_file() else None)
        argv = [a.replace("{job_dir}", str(run_dir / label)) for a in argv]
        if limit < 10:
            lines, head = [], f"== {label}: not started, the suite's --time_limit is spent"
            brief, failed = head, failed + 1
        elif argv[0] == "bash" and not args.anchor:  # all the jobs, and no nanoGPT: the others still run
            lines, head = [], f"== {label}: skipped, {anchor_missing(args)}"
            brief, skipped = head, skipped + 1
        else:
            print(f"== {label}: {shown(argv)}", flush=True)
            with cold_cache(job.env) as env:
                try:
                    code, seconds, lines = run_job(argv, run_dir / f"{label}.log", limit, env)
                except Interrupted as stop:  # keep what it measured, and the medians so far; then stop
                    append(out_dir / "summary.txt", [f"== {label} (interrupted by Ctrl-C after {stop.seconds:.0f} s: "
                                                     f"{stop.how})"]
                           + [f"   {line}" for line in stop.lines] + spread_lines(results + [(name, stop.lines)]))
                    raise
            status = f"stopped at its {limit:.0f} s limit" if code is None else f"exit {code}, {seconds:.0f} s"
            cold = ", empty compile cache" if job.env == COLD_CACHE else ""
            head = f"== {label} ({status}{cold}): " + "".join(f"{k}={v} " for k, v in env.items()
                                                               if job.env != COLD_CACHE) + shown(argv)
            brief = head.split(": ")[0]  # (its command line is printed above)
            failed += code != 0
            results.append((name, lines))
        append(out_dir / "summary.txt", [head] + [f"   {line}" for line in lines])  # kept if we are cut off
        print(*(f"   {line}" for line in [brief] + lines), sep="\n", flush=True)
        if label == "prepare" and failed:  # the jobs would train on what --data_dir held before, not on --input
            if not (run_dir / "prepare.log").is_file():  # (not started)
                raise UserError(f"--input {args.input} was not prepared: --time_limit {args.time_limit:g} s is too "
                                f"short to start — give a larger --time_limit")
            raise UserError(f"--input {args.input} was not prepared into {args.data_dir} — {run_dir / 'prepare.log'} "
                            f"says why: fix that, and run again")
    if medians := spread_lines(results):
        append(out_dir / "summary.txt", medians)
        print(*medians, sep="\n")
    print(f"logs in {run_dir}, numbers in {out_dir / 'summary.txt'}; {failed} of {len(plan)} job(s) failed"
          + (f", {skipped} skipped" if skipped else ""))
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
          "evaluation lines": re.compile(r"^evaluation lines \d+ -> \d+: ([\d.]+) s"),
          "training script": re.compile(r"^training script: ([\d.]+) s")}


def spread_lines(results):
    """For each job and number: the median and the range over the job's runs in this command that have it, and
    how many runs that is of those that started (a run that never reached the target, or was stopped, has none)."""
    lines = []
    for name in dict.fromkeys(name for name, _ in results):
        runs = sum(job == name for job, _ in results)
        for what, pattern in SPREAD.items():
            values = [float(m[1]) for job, job_lines in results if job == name
                      for m in map(pattern.search, job_lines) if m]
            if values:
                lines.append(f"== {name}, {what}: median {statistics.median(values):.2f} s over {len(values)} of "
                             f"{runs} run(s) ({', '.join(f'{v:.2f}' for v in values)})")
    return lines


def append(path, lines):
    with open(path, "a", encoding="utf-8", errors="surrogateescape") as f:  # (a name's non-UTF-8 bytes: as they are)
        f.write("".join(f"{line}\n" for line in lines))


def refuse_a_summary_not_ours(summary):
    """summary.txt is appended to, command after command: a file of the user's at that path (their notes, say), or a
    folder, is refused before a job runs or a folder is made."""
    if summary.is_dir():
        raise UserError(f"{summary} is a folder, where the suite appends its numbers to a file — choose another "
                        f"--out_dir, or move it away")
    if summary.is_file():
        with open(summary, "rb") as f:
            if f.read(12) not in (b"", b"== suite in "):
                raise UserError(f"{summary} was not written by bench.suite, and this would add its numbers to it — "
                                f"choose another --out_dir, or move it away")


def main(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    parser.add_argument("--device", default="cuda", help="the device every job uses")
    parser.add_argument("--data_dir", default=TrainConfig.data_dir, help="prepared data (prepare.py)")
    parser.add_argument("--out_dir", default="out/bench", help="summary.txt (appended to), and a folder per "
                        "suite command with its logs and runs")
    parser.add_argument("--jobs", help="comma-separated job names (default: all; see --list)")
    parser.add_argument("--input", help="a text file to prepare into --data_dir first (a machine without network)")
    parser.add_argument("--time_limit", type=float, help="seconds for the whole command: a job is stopped at its "
                        "own limit or this, whichever comes first, and none starts once it is spent")
    parser.add_argument("--target", type=float, default=1.47,
                        help="val loss for the speedrun* and classic-target* jobs to reach")
    parser.add_argument("--anchor", help="the folder of a nanoGPT checkout, for the anchor jobs (git clone "
                        "https://github.com/karpathy/nanoGPT); they copy it and prepare the suite's text in the copy")
    parser.add_argument("--list", action="store_true", help="print the jobs' command lines; run nothing")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and few steps: checks the suite runs")
    return run_suite(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(run_cli(main))
