"""Shared fixtures: a small generated corpus, prepared once, and a tiny training config; and a command line
run in a process of its own, forked rather than started, so that it does not wait for torch's import."""

import contextlib
import gc
import multiprocessing
import os
import random
import runpy
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
import torch
from tqdm import tqdm

import prepare
import train
from machinery import bookkeeping, cli

ROOT = Path(__file__).resolve().parents[1]
CORES_BUSY = bookkeeping.cores_busy  # the probe itself (idle_cores, below, stands in for it in each test)
# where cli.in_the_repo looks, in each test and each forked command: nowhere, so that what the repo's own data/ and
# out/ hold (the user's runs) cannot change a test's messages
NO_REPO = ROOT / "tests" / "no-such-folder"
# a model small enough that a dozen steps take well under a second on a CPU
TINY = ["--device", "cpu", "--n_layer", "2", "--n_head", "2", "--n_embd", "32", "--block_size", "16",
        "--batch_size", "8", "--max_iters", "12", "--eval_interval", "4", "--eval_iters", "2",
        "--log_interval", "2", "--warmup_iters", "2"]


@pytest.fixture(autouse=True)
def repo_holds_nothing(monkeypatch):
    monkeypatch.setattr(cli, "REPO", NO_REPO)


@pytest.fixture(scope="session", autouse=True)
def frozen_heap():
    """What exists when the first test starts (torch, the scripts, the tests: about 300,000 objects) is set aside
    from the garbage collector, which then scans only what the tests make. A full collection took 0.2 s, and
    test_bad_input makes one in each of its 172 cases (the file took 44.6 s, then 5.7 s)."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture(autouse=True)
def idle_cores(monkeypatch):
    """train.py's busy-CPU probe sleeps 0.1 s as each run starts, a few hundred runs here, and reads what other
    programs do: on a busy machine, its note would come into a test's output. Here it finds every core idle. The
    tests of the note set what it finds; the test of the probe takes the real one (CORES_BUSY)."""
    monkeypatch.setattr(bookkeeping, "cores_busy", lambda seconds=0.1: 0.0)


@pytest.fixture(autouse=True)
def close_figures():
    """A command that draws leaves its figure open (its process ends there); here, close them after each test."""
    yield
    if sys.modules.get("matplotlib.pyplot"):
        sys.modules["matplotlib.pyplot"].close("all")


@contextlib.contextmanager
def file_size_limit(size):
    """Inside, a write past size bytes fails half-way, as on a full disk (with EFBIG, "File too
    large"; Python ignores the SIGXFSZ that would otherwise end the process). POSIX only: elsewhere
    the test is skipped."""
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def make_text(n_lines=600, seed=0):
    """Play-like text: speaker names and lines of words, about 21,000 characters."""
    rng = random.Random(seed)
    words = "the king my lord love thou art not what sweet night and death of to be or a".split()
    lines = []
    for _ in range(n_lines):
        lines.append(rng.choice(["ROMEO:", "JULIET:", "KING HENRY:"]))
        lines.append(" ".join(rng.choice(words) for _ in range(rng.randint(3, 9))).capitalize() + ".")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "play.txt"
    path.write_text(make_text(), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def data_dir(corpus, tmp_path_factory):
    """The corpus prepared by prepare.py (read-only for the tests that use it)."""
    out = tmp_path_factory.mktemp("data") / "play"
    assert prepare.main(["--input", str(corpus), "--out_dir", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def run_dir(data_dir, tmp_path_factory):
    """A tiny training run (read-only for the tests that use it): best.pt, latest.pt, log.csv."""
    out = tmp_path_factory.mktemp("run")
    assert train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(out)]) == 0
    return out


def forkserver():
    """A start method that forks each process from a server which has already imported what the
    commands import: torch, train.py, sample.py, prepare.py, torch._dynamo (which torch.optim imports
    when the first optimizer is made), and pytest (which conftest, the home of run_as_main, imports).
    A fork starts in a fraction of a second, where a fresh `python train.py` spends about 2 s importing
    torch before it does anything. There is one server per pytest process, started at its first fork:
    it keeps the environment of that moment, and finds the scripts to import only when pytest runs
    from the repo's folder (elsewhere each fork imports them itself)."""
    forks = multiprocessing.get_context("forkserver")
    forks.set_forkserver_preload(["train", "sample", "prepare", "torch._dynamo", "pytest"])
    return forks


def run_as_main(argv, cwd, env, stdout, stderr):
    """In a forked process: what `python SCRIPT.py ...` (SCRIPT in the repo's folder) or `python -m MODULE ...` does
    in the folder cwd (with cli.REPO at NO_REPO), its output appended to the files stdout and stderr (which may be
    one file). What a real process does before and after its script is not the same: what the modules above print as
    they are imported went to the server's output, env comes too late for what Python reads at start-up (PYTHONPATH;
    torch's thread count is set from its OMP_NUM_THREADS here), and there is no interpreter shutdown (test_cli holds
    a real process's output to a forked one's). Its progress bars get a thread lock rather than tqdm's
    multiprocessing one, whose semaphore a killed process would leave to multiprocessing's resource tracker to
    warn about."""
    os.chdir(cwd)
    cli.REPO = NO_REPO
    os.environ.clear()
    os.environ.update(env)
    if "OMP_NUM_THREADS" in env:  # (torch read it as the server started; torchrun sets 1)
        torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
    for path, fd in ((stdout, 1), (stderr, 2)):
        with open(path, "a") as f:
            os.dup2(f.fileno(), fd)
    tqdm.set_lock(threading.RLock())
    sys.argv = ["", *argv[1:]]
    if argv[0].endswith(".py"):
        runpy.run_path(str(ROOT / argv[0]), run_name="__main__")  # sets sys.argv[0] to the script
    else:
        runpy.run_module(argv[0], run_name="__main__", alter_sys=True)


def start_command(argv, cwd, env, logs, name="command"):
    """Fork argv, as run_as_main runs it, its output in the folder logs: NAME.out and NAME.err.
    -> (the process, started; the two files)"""
    stdout, stderr = logs / f"{name}.out", logs / f"{name}.err"
    stdout.touch()  # (a fork that dies before it opens them gets its exit code, not a missing file)
    stderr.touch()
    process = forkserver().Process(target=run_as_main, args=(argv, cwd, env, stdout, stderr))
    process.start()
    return process, stdout, stderr


def run_command(*argv, cwd, env=None, timeout=300):
    """python SCRIPT.py ..., or python -m FOLDER.NAME ..., in a process of its own (forked, see forkserver)
    -> subprocess.CompletedProcess with its exit code and its output, as subprocess.run gives them. env is added
    to this process's environment (subprocess.run's env= would replace it)."""
    env = {**os.environ, **(env or {})}
    with tempfile.TemporaryDirectory() as logs:
        proc, stdout, stderr = start_command(argv, cwd, env, Path(logs))
        proc.join(timeout)
        if proc.exitcode is None:
            proc.kill()
            proc.join()
            raise subprocess.TimeoutExpired(argv, timeout)
        return subprocess.CompletedProcess(argv, proc.exitcode, stdout.read_text(), stderr.read_text())
