"""torchrun with 2 CPU processes (gloo): the same run as one process with the same global batch. Two tests run
torchrun itself; the others fork its two processes (forked_torchrun), which is quicker."""

import csv
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from machinery import bookkeeping
from machinery import checkpoint
import train
from conftest import TINY, start_command

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="this PyTorch build has no gloo backend")


def torchrun(*args, cwd):
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def forked_torchrun(*args, cwd, timeout=300):
    """The two processes torchrun starts, each with the variables torchrun sets, but forked from
    the tests' server of imports (conftest.forkserver) rather than started (torchrun, then each of
    its processes, begins by importing torch). As torchrun does, it stops the other process once
    one fails (the other would wait for it), and gives exit code 1."""
    with socket.socket() as s:  # a free port for process 0's rendezvous, as torchrun --standalone finds one
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    shared = {"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
              "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as logs:
        processes, outputs = [], []
        for rank in range(2):
            env = {**os.environ, **shared, "RANK": str(rank), "LOCAL_RANK": str(rank)}
            process, out, err = start_command(["train.py", *args], cwd, env, Path(logs), name=f"rank{rank}")
            processes.append(process)
            outputs.append((out, err))
        deadline = time.monotonic() + timeout
        running = lambda: any(p.exitcode is None for p in processes) and not any(p.exitcode for p in processes)
        while running() and time.monotonic() < deadline:  # both done, or one failed, or time is up
            time.sleep(0.05)
        timed_out = running()
        for process in processes:  # (a failed one's partner, or both when time is up)
            if process.exitcode is None:
                process.kill()
            process.join()
        stdout = "".join(out.read_text() for out, _ in outputs)
        stderr = "".join(err.read_text() for _, err in outputs)
        if timed_out:
            raise subprocess.TimeoutExpired(["train.py", *args], timeout, stdout, stderr)
        return subprocess.CompletedProcess(args, int(any(p.exitcode for p in processes)), stdout, stderr)


def losses(out_dir):
    with open(out_dir / "log.csv", newline="") as f:
        return [(int(r["iter"]), float(r["train_loss"]), float(r["val_loss"])) for r in csv.DictReader(f)]


def assert_same_run(a, b):
    assert [row[0] for row in a] == [row[0] for row in b]
    for (_, train_a, val_a), (_, train_b, val_b) in zip(a, b):
        assert train_a == pytest.approx(train_b, abs=1e-4) and val_a == pytest.approx(val_b, abs=1e-4)


def test_two_processes_are_one_process_also_after_resume(data_dir, tmp_path):
    """8 steps, then --resume to 12, each step 4 micro-batches: in one process, and in two
    (2 each, no_sync on the first). The same batches (see get_batch), so the same losses."""
    args = TINY + ["--data_dir", str(data_dir), "--grad_accum", "4"]
    assert train.main(args + ["--out_dir", str(tmp_path / "one"), "--max_iters", "8"]) == 0
    assert train.main(args + ["--out_dir", str(tmp_path / "one"), "--resume"]) == 0

    first = forked_torchrun(*args, "--out_dir", "two", "--max_iters", "8", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("config: ") == 1  # only process 0 prints
    assert "DDP over gloo: 2 processes x 2 micro-batch(es) of 8 rows per step" in first.stdout
    lock = {"train.lock"} if bookkeeping.fcntl else set()  # (Windows has no lock)
    assert {f.name for f in (tmp_path / "two").iterdir()} == {"best.pt", "latest.pt", "log.csv"} | lock
    ckpt = checkpoint.load_checkpoint(tmp_path / "two" / "latest.pt", "")
    assert "module." not in next(iter(ckpt["model"])) and len(ckpt["rng"]["torch_ranks"]) == 2
    assert not torch.equal(*ckpt["rng"]["torch_ranks"])  # seeded per process: their dropout masks differ
    resumed = forked_torchrun(*args, "--out_dir", "two", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr

    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert [row[0] for row in two] == [0, 4, 8, 12]
    assert_same_run(two, one)


def test_the_default_flags_share_each_micro_batch_out(data_dir, tmp_path):
    """grad_accum 1 (the default) under 2 processes: each takes 4 of the micro-batch's 8 rows, and
    together they give the losses of one process. eval_iters 1 leaves process 1 without an
    evaluation batch: with DDP's buffer broadcast (rotary's tables) it would wait forever."""
    args = TINY + ["--data_dir", str(data_dir), "--eval_iters", "1", "--max_iters", "8"]
    assert train.main(args + ["--out_dir", str(tmp_path / "one")]) == 0
    two = torchrun(*args, "--out_dir", "two", cwd=tmp_path)
    assert two.returncode == 0, two.stderr
    assert "broadcast_buffers" not in two.stderr, two.stderr  # torch 2.13 warns of the constructor's flag
    assert "DDP over gloo: 2 processes x 1 micro-batch(es) of 4 rows per step" in two.stdout
    assert_same_run(losses(tmp_path / "two"), losses(tmp_path / "one"))


def test_a_batch_that_cannot_be_shared_is_refused_once_and_first(data_dir, tmp_path):
    p = torchrun(*TINY, "--data_dir", str(data_dir), "--grad_accum", "3", "--batch_size", "7", cwd=tmp_path)
    assert p.returncode != 0
    message = ("error: --grad_accum 3 micro-batches of --batch_size 7 rows cannot be shared evenly among "
               "2 processes — make --grad_accum or --batch_size a multiple of 2")
    assert p.stderr.count(message) == 1  # said by process 0 alone
    assert p.stderr.index(message) < p.stderr.index("Traceback")  # before torchrun's own report of it
    assert not (tmp_path / "out").exists()


def test_trace_shapes_under_torchrun_prints_one_table_of_one_processs_rows(data_dir, tmp_path):
    """Each process printed the whole table, with B the whole micro-batch rather than its own share."""
    p = forked_torchrun(*TINY, "--data_dir", str(data_dir), "--batch_size", "8", "--trace_shapes", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("B=4 batch") == 1 and p.stdout.count("idx  ") == 1, p.stdout
