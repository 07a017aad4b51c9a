"""Shared fixtures: a small generated corpus, prepared once, and a tiny training config."""

import contextlib
import random
import sys

import pytest

import prepare
import train

# a model small enough that a dozen steps take well under a second on a CPU
TINY = ["--device", "cpu", "--n_layer", "2", "--n_head", "2", "--n_embd", "32", "--block_size", "16",
        "--batch_size", "8", "--max_iters", "12", "--eval_interval", "4", "--eval_iters", "2",
        "--log_interval", "2", "--warmup_iters", "2"]


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
    """Play-like text: speaker names and lines of words, about 25k characters."""
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
