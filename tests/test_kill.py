"""Crash safety: SIGKILL a training run 20 times, at random moments and in the middle of
checkpoint saves, resuming after each kill. No checkpoint may ever be unreadable, every
resume must work, and the finished run must match one that was never interrupted.

Each killed run is a process of its own, forked from a server process that has imported
torch and train.py once (conftest.forkserver): it starts in a fraction of a second, where a fresh
`python train.py` needs about 3 s before its first step. The run that finishes is a fresh
`python train.py --resume`."""

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from machinery import checkpoint
import train
from conftest import forkserver, run_as_main

ROOT = Path(__file__).resolve().parents[1]
# big enough that a checkpoint (weights and AdamW state, about 5 MB) takes a while to
# write, small enough that a step takes milliseconds; an evaluation (and save) every 2 steps
ARGS = ["--device", "cpu", "--n_layer", "2", "--n_head", "2", "--n_embd", "128", "--block_size", "16",
        "--batch_size", "8", "--max_iters", "120", "--eval_interval", "2", "--eval_iters", "1",
        "--warmup_iters", "2", "--log_interval", "2", "--dropout", "0.1", "--grad_accum", "2"]
KILLS = 20


def log_rows(out):
    """Rows in log.csv, cheaply: this is polled in a tight loop."""
    try:
        return (out / "log.csv").read_bytes().count(b"\n") - 1
    except FileNotFoundError:
        return 0


def losses(out):
    """(iter, train loss, val loss) of every row of log.csv ([] before there is one)."""
    if not (out / "log.csv").exists():
        return []
    with open(out / "log.csv", newline="") as f:
        return [(r["iter"], r["train_loss"], r["val_loss"]) for r in csv.DictReader(f)]


def temp_files(out):
    return list(out.glob(".*.tmp"))


def wait_for(condition, proc, timeout=60):
    """Poll (about every millisecond) until condition() holds -> True, or the process ended -> False."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if not proc.is_alive():
            return False
        time.sleep(0.001)
    raise AssertionError("the training process neither got there nor ended")


def check_checkpoints(out):
    """Every checkpoint in out loads; -> the iteration of latest.pt (0 if none yet)."""
    for path in out.glob("*.pt"):
        checkpoint.load_checkpoint(path, "")  # raises on a torn or foreign file
    latest = out / "latest.pt"
    return checkpoint.load_checkpoint(latest, "")["iter"] if latest.exists() else 0


def test_sigkill_never_loses_a_run(data_dir, tmp_path):
    reference = tmp_path / "reference"
    assert train.main(ARGS + ["--data_dir", str(data_dir), "--out_dir", str(reference)]) == 0

    out = tmp_path / "killed"
    rng = random.Random(0)
    forks, log = forkserver(), tmp_path / "killed.log"
    kills = mid_save = 0
    last_iter = 0
    while kills < KILLS:
        resume = ["--resume"] if (out / "latest.pt").exists() else []
        t0 = time.monotonic()
        argv = ["train.py", *ARGS, "--data_dir", str(data_dir), "--out_dir", str(out), *resume]
        proc = forks.Process(target=run_as_main, daemon=True,  # daemon: killed, not awaited, if the test fails
                             args=(argv, tmp_path, dict(os.environ), log, log))
        proc.start()
        rows = log_rows(out) + rng.randint(0, 3)  # let it get this many log rows further first
        if kills % 2 == 0:  # in the middle of a save: the moment its temp file appears
            started = wait_for(lambda rows=rows: log_rows(out) > rows and temp_files(out), proc)
        else:  # anywhere in training: a random fraction of a few steps later
            started = wait_for(lambda rows=rows: log_rows(out) > rows, proc)
            time.sleep(rng.uniform(0, 0.05))
        proc.kill()  # SIGKILL
        proc.join()
        output = log.read_text()[-2000:] if log.exists() else "no output (see the forkserver's stderr)"
        assert started, f"the run ended before it could be killed: {output}"
        assert proc.exitcode == -signal.SIGKILL
        kills += 1
        mid_save += bool(temp_files(out))  # the kill left a half-written file: it came mid-save
        print(f"kill {kills}: {time.monotonic() - t0:.2f} s, mid-save {bool(temp_files(out))}, latest {last_iter}")
        it = check_checkpoints(out)
        assert it >= last_iter  # a checkpoint never goes back in time
        last_iter = it

    assert mid_save >= KILLS // 4, f"only {mid_save} of {KILLS} kills landed in the middle of a save"
    assert last_iter < 120, "the run finished during the kills; make it longer"
    # finish the run; it cleans up the temp files and must end exactly where the reference did
    finish = subprocess.run([sys.executable, str(ROOT / "train.py"), *ARGS, "--data_dir", str(data_dir),
                             "--out_dir", str(out), "--resume"], capture_output=True, text=True, timeout=300)
    assert finish.returncode == 0, finish.stderr
    assert not temp_files(out)
    assert losses(out) == losses(reference)  # bit for bit: every evaluation of the run, train and val
    assert check_checkpoints(out) == 120
