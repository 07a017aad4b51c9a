"""The real command lines, each in a process of its own, as a user runs them; then cli.py's "did you mean"."""

import argparse
import io
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from machinery import cli
import config
import sample
import train
from conftest import TINY, run_command
from machinery import settings
from model import GPTConfig

ROOT = Path(__file__).resolve().parents[1]


def run(*argv, cwd):
    """python SCRIPT.py ..., or python -m FOLDER.NAME ..., each a process of its own (conftest.run_command)."""
    return run_command(*argv, cwd=cwd, env={"COLUMNS": "100"})  # argparse wraps --help to the terminal's width


@pytest.mark.parametrize("argv", [["sample.py", "--top_p", "2"], ["bench.speed", "sample", "--repeat", "2"],
                                  ["lessons.inside"]])
def test_a_command_forked_says_what_a_fresh_python_says(argv, tmp_path):
    """run() forks from a process that has imported torch: what a module prints as it is imported, or Python
    at its shutdown, would reach only a fresh process's output. Here both run, and must say the same."""
    script = [str(ROOT / argv[0])] if argv[0].endswith(".py") else ["-m", argv[0]]
    fresh = subprocess.run([sys.executable, *script, *argv[1:]], cwd=tmp_path, capture_output=True, text=True,
                           env={**os.environ, "COLUMNS": "100", "PYTHONPATH": str(ROOT)}, timeout=300)
    forked = run(*argv, cwd=tmp_path)
    assert (forked.returncode, forked.stdout, forked.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)
    assert fresh.stdout + fresh.stderr


def test_prepare_train_sample(corpus, tmp_path):
    p = run("prepare.py", "--input", str(corpus), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "next: python train.py --data_dir data/play" in p.stdout

    t = run("train.py", "--data_dir", "data/play", *TINY, cwd=tmp_path)
    assert t.returncode == 0, t.stderr
    for line in ("device: cpu", "parameters", "tokens per iteration: 8 x 16 x 1 = 128", "best val loss",
                 "bits per char", "wall time", "out/best.pt"):
        assert line in t.stdout
    assert "it/s" in t.stderr  # the progress bar
    assert {"best.pt", "latest.pt", "log.csv"} <= {f.name for f in (tmp_path / "out").iterdir()}
    assert "next: python sample.py" not in t.stdout  # out/: where sample.py reads by default
    elsewhere = run("train.py", "--data_dir", "data/play", *TINY, "--out_dir", "out/play", cwd=tmp_path)
    assert elsewhere.stdout.splitlines()[-1] == "next: python sample.py --out_dir out/play", elsewhere.stdout

    s = run("sample.py", "--prompt", "KING", "--max_new_tokens", "40", "--num_samples", "2", cwd=tmp_path)
    assert s.returncode == 0, s.stderr
    assert s.stdout.count("\nKING") == 2

    one = run("sample.py", "--prompt", "KING", "--max_new_tokens", "40", "--num_samples", "1", "--top_p", "0.9",
              cwd=tmp_path)  # streamed
    assert one.returncode == 0, one.stderr
    assert one.stdout.startswith("---------------- sample 1 of 1 ----------------\nKING") and len(one.stdout) == 48 + 45

    b = run("bench.speed", "sample", "--checkpoint", "out/best.pt", "--max_new_tokens", "5", "--repeats", "1",
            cwd=tmp_path)
    assert b.returncode == 0, b.stderr
    for line in ("KV cache:", "no cache:", "tokens/s", "speed-up of the cache", "reading every weight once"):
        assert line in b.stdout


@pytest.mark.parametrize("argv, message", [
    (["prepare.py", "--input", "missing.txt"], "no such file: missing.txt"),
    (["train.py", "--max_iterations", "3"], "unknown argument --max_iterations — did you mean --max_iters? (--help"),
    (["train.py", "--zzz"], "unknown argument --zzz — valid flags: --activation --attention"),  # no close match
    (["train.py", "--", "extra"], "unknown argument -- — valid flags: --activation"),  # not "did you mean --lr?"
    (["sample.py", "--l"], "unknown argument --l — valid flags: --checkpoint"),  # not --help: "--" is no likeness
    (["train.py", "--lr ", "1"], "unknown argument '--lr ' — did you mean --lr?"),  # quoted with a space
    (["train.py", "--le", "1"], "unknown argument --le — did you mean --lr?"),  # one letter off two
    (["train.py", "bigram"], "unknown argument bigram — valid flags:"),  # a stray word: not --bias
    (["train.py", "--data_dir", "nowhere"], "run `python prepare.py --input YOUR_TEXT_FILE --out_dir nowhere` first"),
    (["train.py"], "no prepared data in data/shakespeare (no vocab.json) — run `python prepare.py` first (offline: "
                   "with --input and your copy of its input.txt), or check the path"),
    (["sample.py"], "train a model first"),
    (["sample.py", "--top_p", "2"], "--top_p 2.0 must be above 0 and at most 1"),
    (["bench.speed", "sample", "--repeat", "2"], "did you mean --repeats?"),
    (["sample.py", "--temp", "1"], "did you mean --temperature?"),  # a flag it begins, not --help
    (["sample.py", "--tokens", "10"], "did you mean --max_new_tokens?"),  # one of its words, not --top_k
])
def test_user_errors_are_one_line_with_exit_code_2(argv, message, tmp_path):
    p = run(*argv, cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr.startswith("error: ") and p.stderr.count("\n") == 1 and " — " in p.stderr
    assert message in p.stderr and "Traceback" not in p.stderr


def test_a_mistyped_flag_gets_the_flags_it_begins_or_names_a_word_of():
    flags = ["--batch_size", "--block_size", "--eval_interval", "--eval_iters", "--help", "--lr", "--max_iters",
             "--max_new_tokens", "--temperature", "--warmup_iters"]
    assert cli.closest_flag("--temp", flags) == "--temperature"  # (whole-string likeness: --help)
    assert cli.closest_flag("--eval", flags) == "--eval_interval or --eval_iters"
    assert cli.closest_flag("--iters", flags) == "--eval_iters, --max_iters or --warmup_iters"
    assert cli.closest_flag("--size", flags) == "--batch_size or --block_size"
    assert cli.closest_flag("--tokens", flags) == "--max_new_tokens"
    assert cli.closest_flag("--lrr", flags) == "--lr"  # a typo
    assert cli.closest_flag("size", flags) is None  # a stray word is no flag


def test_a_closed_pipe_is_not_a_traceback(corpus, tmp_path):
    """python sample.py | head: the reader stops early; the streaming writer must stop quietly."""
    assert run("prepare.py", "--input", str(corpus), cwd=tmp_path).returncode == 0
    assert run("train.py", "--data_dir", "data/play", *TINY, cwd=tmp_path).returncode == 0
    p = subprocess.Popen([sys.executable, str(ROOT / "sample.py"), "--num_samples", "1", "--max_new_tokens", "5000"],
                         cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.read(10)
    p.stdout.close()  # as head does after its lines
    stderr = p.communicate(timeout=120)[1].decode()
    assert "Traceback" not in stderr and p.returncode == 141


def test_a_path_without_its_flag_gets_the_flag_it_needed(tmp_path, monkeypatch):
    """python train.py data: the prepared folder inside it; a folder that holds a run, or nothing, is
    an --out_dir; any other folder gets no guess (following one would train into data/ or /root)."""
    monkeypatch.chdir(tmp_path)
    for folder in ("data/notes", "out", "empty", "other/stuff"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "data/notes/vocab.json").write_text("{}")
    (tmp_path / "out/log.csv").write_text("")
    (tmp_path / "run.pt").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("")
    train_flags, sample_flags = ["--data_dir", "--out_dir"], ["--out_dir", "--checkpoint", "--prompt_file"]
    assert cli.flag_for_a_path("data", train_flags) == "--data_dir data/notes"
    assert cli.flag_for_a_path("data", sample_flags) is None
    assert [cli.flag_for_a_path(f, train_flags) for f in ("out", "empty", "other", "nowhere")] == [
        "--out_dir out", "--out_dir empty", None, None]
    assert cli.flag_for_a_path("run.pt", sample_flags) == "--checkpoint run.pt"
    assert cli.flag_for_a_path("notes.txt", sample_flags) == "--prompt_file notes.txt"
    assert cli.flag_for_a_path("notes.txt", ["--input", "--out_dir"]) == "--input notes.txt"


def test_a_path_this_user_may_not_enter_is_one_line(capsys):
    """A parent folder without x permission makes Path.is_file() itself raise: wherever that
    happens, the user reads one line (a test as root cannot make such a folder, so the error is raised here)."""
    def main(argv):
        raise PermissionError(13, "Permission denied", "locked/run")
    assert cli.run_cli(main, []) == 2
    assert capsys.readouterr().err == ("error: permission denied: locked/run — check its permissions and its "
                                       "folders', or choose another path\n")


def test_a_ctrl_c_under_torchrun_is_said_once_with_how_to_go_on(monkeypatch, capsys):
    """torchrun stops every process at once: each printed a bare 'interrupted' above torchrun's traceback."""
    def main(argv):
        raise KeyboardInterrupt
    monkeypatch.delenv("RANK", raising=False)
    assert cli.run_cli(main, []) == 130 and capsys.readouterr().err == "interrupted\n"  # one process
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")  # torchrun with one process: a Ctrl-C stops it as without torchrun
    assert cli.run_cli(main, []) == 130 and capsys.readouterr().err == "interrupted\n"
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert cli.run_cli(main, []) == 130 and capsys.readouterr().err == (
        "interrupted — every process stopped at once: --resume goes on from the latest.pt of the last evaluation, "
        "if one was saved (docs/multi-gpu.md)\n")
    monkeypatch.setenv("RANK", "1")
    assert cli.run_cli(main, []) == 130 and capsys.readouterr().err == ""


def test_an_interruption_that_says_where_it_stopped_is_printed_after_interrupted(capsys):
    def main(argv):  # (as train.py's StopOnCtrlC raises it after a second Ctrl-C)
        raise KeyboardInterrupt("at iteration 6, without saving — go on from the last checkpoint with: python ...")
    assert cli.run_cli(main, []) == 130
    assert capsys.readouterr().err == ("interrupted at iteration 6, without saving — go on from the last checkpoint "
                                       "with: python ...\n")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full, a file that is always full")
def test_output_to_a_full_disk_is_one_line(corpus, tmp_path):
    """python prepare.py > log on a disk that fills up: the print fails, and says so in one line."""
    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, str(ROOT / "prepare.py"), "--input", str(corpus)], cwd=tmp_path,
                           stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr == ("error: the disk that the output goes to is full — free some space there and run again (a "
                        "training run that saved a checkpoint goes on with --resume)\n")
    with open("/dev/full", "w") as full:  # --help: argparse's exit, which used to leave the failed write unsaid
        p = subprocess.run([sys.executable, str(ROOT / "prepare.py"), "--help"], cwd=tmp_path, stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.startswith("error: the disk that the output goes to is full")


def test_a_tilde_after_an_equals_sign_or_quoted_is_the_home_folder(corpus, tmp_path):
    """The shell expands ~ in `--input ~/play.txt` but not in `--input=~/play.txt`, nor in a quoted "~/data" (as
    from OUT="~/data" and --out_dir "$OUT"), which made a folder named ~ here."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "play.txt").write_text(corpus.read_text())
    p = subprocess.run([sys.executable, str(ROOT / "prepare.py"), "--input=~/play.txt", "--out_dir", "~/data"],
                       cwd=tmp_path, env={**os.environ, "HOME": str(home)}, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert (home / "data" / "vocab.json").is_file() and not (tmp_path / "~").exists()


def test_an_output_that_cannot_hold_a_character_is_one_line(monkeypatch, capsys):
    """python sample.py > out.txt on Windows writes cp1252, which has no emoji."""
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BytesIO(), encoding="cp1252"))
    assert cli.run_cli(lambda argv: print("a smile: \U0001f600")) == 2
    assert capsys.readouterr().err == ("error: the output's encoding, cp1252, has no '\\U0001f600' — set "
                                       "PYTHONIOENCODING=utf-8 and run again\n")
    assert cli.run_cli(lambda argv: print("不知" * 50)) == 2  # a whole vocabulary of them: the first is named
    assert capsys.readouterr().err.startswith("error: the output's encoding, cp1252, has no '\\u4e0d' — set")
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    with pytest.raises(UnicodeEncodeError):  # UTF-8 has every character: that advice would not help
        cli.run_cli(lambda argv: print("half a surrogate: \udcff"))


def test_a_closed_stdout_or_stderr_is_not_a_traceback(corpus, tmp_path):
    """python prepare.py >&- (or 2>&-): Python's sys.stdout is then None; the work is done all the same. So it is
    with an output open for reading only (1</dev/null; 2>&- through a pyenv shim), whose first write failed."""
    for closed, argv in ((">&-", ["prepare.py", "--input", str(corpus), "--out_dir", "d"]),
                         ("2>&-", ["train.py", "--data_dir", "d", *TINY]),
                         ("1</dev/null", ["prepare.py", "--input", str(corpus), "--out_dir", "d2"])):
        command = " ".join([sys.executable, str(ROOT / argv[0]), *argv[1:], closed])
        p = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0 and "Traceback" not in p.stdout + p.stderr, p.stdout + p.stderr
    assert (tmp_path / "d" / "vocab.json").is_file() and (tmp_path / "out" / "best.pt").is_file()
    assert (tmp_path / "d2" / "vocab.json").is_file()


def test_a_link_to_itself_is_one_line(data_dir, tmp_path, monkeypatch, capsys):
    """Python 3.12 and older refuse it where a path is resolved, 3.13 where one is opened (or takes it for a
    missing file: still one line)."""
    monkeypatch.chdir(tmp_path)
    os.symlink("self", "self")
    for argv in (["--data_dir", "self"], ["--data_dir", str(data_dir), "--out_dir", "self"]):
        assert cli.run_cli(train.main, argv + TINY) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        if sys.version_info < (3, 13):
            assert "goes through a symbolic link that leads back to itself — point the link at a real file" in err


def test_running_out_of_memory_is_one_line(capsys):
    """Sizes too big for the machine: the CPU's allocator, CUDA's and Python's say so each in their way. (Not
    for real here: where Linux overcommits memory, a huge model is killed when it touches the pages instead.)"""
    def raising(error):
        def main(argv):
            raise error
        return main

    advice = (" — use smaller sizes: train.py's --batch_size, --block_size, --n_layer or --n_embd, sample.py's "
              "--num_samples\n")
    cpu = RuntimeError("[enforce fail at alloc_cpu.cpp:127] data. DefaultCPUAllocator: can't allocate memory: you "
                       "tried to allocate 13600000000 bytes. Error code 12 (Cannot allocate memory)")
    cuda = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity ...")
    for error, said in ((cpu, " (it asked for 13.6 GB)"), (cuda, " (it asked for 2.00 GiB)"), (MemoryError(), "")):
        assert cli.run_cli(raising(error)) == 2
        assert capsys.readouterr().err == f"error: out of memory{said}{advice}"
    with pytest.raises(RuntimeError, match="a bug"):  # any other RuntimeError keeps its traceback
        cli.run_cli(raising(RuntimeError("a bug")))


PRETEND_AN_OLD_TORCH = """import runpy, sys, torch
torch.__version__ = "2.1.2"
del torch.amp.GradScaler, torch.nn.RMSNorm  # what 2.1 lacks
sys.argv = sys.argv[1:]
if sys.argv[0].endswith(".py"):
    runpy.run_path(sys.argv[0], run_name="__main__")
else:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def test_a_pytorch_older_than_2_4_is_one_line(monkeypatch, capsys):
    """requirements.txt asks for 2.4. 2.3.1 stopped train.py and sample.py with an AttributeError (no nn.RMSNorm,
    for the CPU default's qk-norm), 2.1.2 most scripts at import (no torch.amp.GradScaler). Every script that
    imports torch at its start now says so first; so does exercises' training, which imports it later
    (`exercises check` runs on 2.3 and 2.1: it is left to run)."""
    for version, refused in (("2.3.1+cu121", True), ("1.13.1", True), ("2.4.0", False), ("2.15.0+cu132", False),
                             ("2.6.0a0+git1234", False), ("2.10.0", False)):
        monkeypatch.setattr(torch, "__version__", version)
        assert cli.run_cli(lambda argv: 0) == (2 if refused else 0)
        assert capsys.readouterr().err == (f"error: this needs PyTorch 2.4 or newer, and this Python has {version} — "
                                           f"upgrade it (pip install -U torch; without a GPU, as the README's Set-up "
                                           f"says)\n" if refused else "")
    # exercises/ imports torch only once a command needs it, after run_cli's check: its training checks again
    import exercises.__main__ as exercises_command
    monkeypatch.setattr(torch, "__version__", "2.3.1")
    with pytest.raises(cli.UserError, match="needs PyTorch 2.4 or newer"):
        exercises_command.main(["train", "4"])
    monkeypatch.delitem(sys.modules, "torch")  # prepare.py never imports it: nothing to check
    assert cli.run_cli(lambda argv: 0) == 0
    # as a user meets it: train.py's imports must get as far as the check, and the check come before the work
    done = subprocess.run([sys.executable, "-c", PRETEND_AN_OLD_TORCH, "train.py"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert (done.returncode, done.stderr) == (2, "error: this needs PyTorch 2.4 or newer, and this Python has 2.1.2 "
                                                 "— upgrade it (pip install -U torch; without a GPU, as the README's "
                                                 "Set-up says)\n")


@pytest.mark.skipif(os.pathconf("/tmp", "PC_NAME_MAX") > 300, reason="this file system allows names of 301 bytes")
def test_a_name_longer_than_the_file_system_allows_is_one_line(corpus, data_dir, tmp_path, monkeypatch, capsys):
    """Path.exists() and its kin raise this error instead of answering False: every script says it in one line."""
    import prepare, sample, train
    monkeypatch.chdir(tmp_path)
    long = "x" * 301
    cases = [(prepare.main, ["--input", long]),
             (prepare.main, ["--input", str(corpus), "--out_dir", long]),
             (train.main, TINY + ["--data_dir", long]),
             (train.main, TINY + ["--data_dir", str(data_dir), "--out_dir", long]),
             (sample.main, ["--out_dir", long]),
             (sample.main, ["--checkpoint", f"{long}.pt"])]
    for main, argv in cases:
        assert cli.run_cli(main, argv) == 2
        err = capsys.readouterr().err
        assert re.fullmatch(r"error: a name in .*x{301}.* is longer than the file system allows — use a shorter "
                            r"one\n", err), err
    assert list(tmp_path.iterdir()) == []


def test_a_stray_word_like_a_home_folder_is_an_unknown_argument(capsys):
    """The shell leaves ~name as it is when there is no user of that name; Python's expanduser then raises."""
    import sample
    assert cli.run_cli(sample.main, ["~nosuchuser-here/run"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown argument ~nosuchuser-here/run — valid flags: ")


def test_the_head_count_a_bad_width_is_offered_is_found_at_once():
    """The fix it suggests comes from n_embd's divisors: a search over every head count up to the one asked for
    (or up to the width) ran for a minute at a billion. The alarm turns such a search into a failure."""
    def too_slow(signum, frame):
        raise TimeoutError("check_heads searched for 10 s")
    signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(10)
    try:
        for n_embd, n_head, fix in ((30, 999_999_999, "--n_head 30 or --n_embd 999999999"),
                                    (999_999_999, 1_000_000_000, "--n_head 999999999 or --n_embd 1000000000"),
                                    (384, 5, "--n_head 6 or --n_embd 385"), (384, 7, "--n_head 8 or --n_embd 385")):
            with pytest.raises(cli.UserError, match=f"is not divisible by n_head {n_head} — .* e.g. {fix}$"):
                settings.check_heads(GPTConfig(n_embd=n_embd, n_head=n_head))
    finally:
        signal.alarm(0)


def test_a_file_to_write_must_have_its_kind_of_name(tmp_path):
    """So that a slip cannot overwrite a checkpoint; the fix offered is a name that works."""
    for path, fix in ((tmp_path / "run" / "best.pt", tmp_path / "run" / "best.png"), (tmp_path, tmp_path / "loss.png"),
                      (".", "loss.png"), ("..", "../loss.png"), ("pic", "pic.png")):
        with pytest.raises(cli.UserError, match=f"--save {re.escape(str(path))} must end in .png — e.g. "
                                                f"--save {re.escape(str(fix))}$"):
            cli.check_suffix(path, ".png", "loss.png", "--save")
    cli.check_suffix("LOSS.PNG", ".png", "loss.png", "--save")  # any case
    for path, fix in ((".png", "loss.png"), (tmp_path / ".PNG", tmp_path / "loss.png")):  # all suffix, no name
        with pytest.raises(cli.UserError, match=f"--save {re.escape(str(path))} has no name before its .png — e.g. "
                                                f"--save {re.escape(str(fix))}$"):
            cli.check_suffix(path, ".png", "loss.png", "--save")


@pytest.mark.parametrize("command", ["prepare.py", "train.py", "sample.py", "bench.speed", "bench.speed train",
                                     "bench.suite", "lessons.babygpt", "lessons.buildup", "lessons.plot explore",
                                     "lessons.inside", "exercises check"])
def test_help(command, tmp_path):
    """Every --help works, names the command as it was typed, shows no "(default: None)" or
    "(default: False)" (of a flag that takes no value), and says a flag's default once."""
    p = run(*command.split(), "--help", cwd=tmp_path)
    assert p.returncode == 0 and "--" in p.stdout
    typed = command if command.endswith(".py") else f"python -m {command}"
    assert p.stdout.startswith(f"usage: {typed} ")
    shown = " ".join(p.stdout.split())  # argparse wraps lines
    assert "(default: None)" not in shown and not re.search(r"\(default[^)]*\) \(default", shown)
    assert "(default: False)" not in shown
    if command == "lessons.buildup":
        assert "(default: data/shakespeare)" in shown and "(default: 1337)" in shown
    if command in ("train.py", "bench.speed train"):  # both show the values of the preset a run would get
        preset = settings.default_preset("auto")
        assert f"(default: {config.PRESETS[preset]['batch_size']}, from preset {preset})" in shown


def test_near_miss_offers_only_another_path_that_would_do(tmp_path):
    for name in ("run", "run2"):
        (tmp_path / name).mkdir()
    (tmp_path / "notes.txt").write_text("")
    is_dir = os.path.isdir
    assert cli.near_miss(tmp_path / "rn", is_dir) == tmp_path / "run"
    assert cli.near_miss(tmp_path / "notes.tx", os.path.isfile) == tmp_path / "notes.txt"
    assert cli.near_miss(tmp_path / "notes.tx", is_dir) is None  # close, but not what is needed
    assert cli.near_miss(tmp_path / "run", is_dir) is None  # itself is no fix, even when it exists
    assert cli.near_miss(tmp_path / "run3", is_dir) is None  # run and run2 are other runs, not typos of it
    assert cli.near_miss(tmp_path / "nowhere" / "rn", is_dir) is None  # no such parent folder


def test_a_script_run_from_another_folder_is_sent_to_the_repos_folder(data_dir, run_dir, tmp_path, monkeypatch,
                                                                      capsys):
    """python ../char-gpt/sample.py: the scripts read data/ and out/ in the folder they are run from, so from
    another they find nothing. Where the repo's folder holds what they looked for, the line says how to get there."""
    repo, elsewhere = tmp_path / "char-gpt", tmp_path / "notes"
    shutil.copytree(data_dir, repo / "data" / "shakespeare")
    shutil.copytree(run_dir, repo / "out")
    elsewhere.mkdir()
    monkeypatch.setattr(cli, "REPO", repo)
    monkeypatch.chdir(elsewhere)
    go = f"The scripts read and write in the folder they are run from: `cd {shlex.quote(str(repo))}` and run it there"
    assert cli.run_cli(sample.main, []) == 2
    assert capsys.readouterr().err == (f"error: no checkpoint at out/best.pt — did you mean the repo's "
                                       f"{repo / 'out'}? {go}. If not, train a model first with `python train.py`\n")
    assert cli.run_cli(train.main, ["--device", "cpu"]) == 2
    assert capsys.readouterr().err.startswith(f"error: no prepared data in data/shakespeare (no vocab.json) — "
                                              f"did you mean the repo's {repo / 'data' / 'shakespeare'}? {go}. If "
                                              f"not, run `python prepare.py` first")

    (repo / "out").rename(repo / "play")  # a run in a folder inside the repo's out/ (prepare.py's next: says so)
    (repo / "out").mkdir()
    (repo / "play").rename(repo / "out" / "play")
    assert cli.run_cli(sample.main, []) == 2
    assert capsys.readouterr().err.startswith(f"error: no checkpoint at out/best.pt — did you mean the repo's "
                                              f"{repo / 'out'}? {go}.")

    (elsewhere / "out").mkdir()  # an out/ of its own: the user works in this folder, and its hints fit
    assert cli.run_cli(sample.main, []) == 2
    assert "repo's" not in capsys.readouterr().err
    monkeypatch.chdir(repo / "out")  # in the repo, though not at its top: it still points there
    assert cli.run_cli(sample.main, ["--out_dir", "out"]) == 2
    assert f"did you mean the repo's {repo / 'out'}?" in capsys.readouterr().err
    monkeypatch.chdir(repo)  # where the scripts are: no other folder to point to
    assert cli.run_cli(sample.main, ["--out_dir", "runs"]) == 2
    assert "repo's" not in capsys.readouterr().err
    gone = tmp_path / "gone"  # a folder deleted under the shell: the usual line, not a traceback
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert cli.run_cli(sample.main, []) == 2
    assert capsys.readouterr().err == ("error: no checkpoint at out/best.pt — train a model first with "
                                       "`python train.py`\n")


def test_a_choice_one_typo_away_is_named():
    parser = cli.ArgumentParser()
    parser.add_argument("--preset", choices=["shakespeare", "shakespeare-cpu"])
    parser.add_argument("--heads", type=int, choices=[1, 2, 4])
    with pytest.raises(cli.UserError, match="invalid choice: 'shakespeare_cpu' — did you mean shakespeare-cpu?"):
        parser.parse_args(["--preset", "shakespeare_cpu"])
    with pytest.raises(cli.UserError, match=r"invalid choice: 'poems' \(choose from"):  # no close one: the list
        parser.parse_args(["--preset", "poems"])
    with pytest.raises(cli.UserError, match=r"invalid choice: 12 \(choose from"):  # 12 is no typo of 2
        parser.parse_args(["--heads", "12"])


def test_a_commands_flag_given_before_the_command_is_moved_after_it():
    """python -m exercises --steps 10 train 3: argparse took 10 for the command, or said "did you mean --steps?" of
    --steps=10 itself."""
    parser = cli.ArgumentParser(prog="python -m tool")
    parser.add_argument("--quiet", action="store_true")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("check").add_argument("--device")
    train = commands.add_parser("train")
    train.add_argument("numbers", nargs="*")
    train.add_argument("--steps", type=int)
    train.add_argument("--fast", action="store_true")
    for argv, flag, fix in ((["--steps", "10", "train", "3"], "--steps", "train 3 --steps 10"),
                            (["--steps=10", "train"], "--steps", "train --steps=10"),
                            (["--quiet", "--fast", "train"], "--fast", "--quiet train --fast"),
                            (["--device", "cpu", "check"], "--device", "check --device cpu")):
        with pytest.raises(cli.UserError, match=f"^{flag} belongs to the command: give it after the command — e.g. "
                                                f"python -m tool {fix}$"):
            parser.parse_args(argv)
    assert parser.parse_args(["--quiet", "train", "3", "--fast"]).fast  # (a flag of its own stays before it)
    with pytest.raises(cli.UserError, match="invalid choice: 'trian' — did you mean train"):  # (not a flag's value)
        parser.parse_args(["--quiet", "trian"])
    # after its command, or before one that lacks it, or with no command: not moved (the review's cases)
    for argv in (["check", "--steps", "10"], ["check", "--device", "cpu", "--steps", "10"], ["--steps", "10", "check"],
                 ["--steps", "10"], ["--steps=10"], ["--device", "cpu"]):
        with pytest.raises(cli.UserError) as refused:
            parser.parse_args(argv)
        assert "belongs to the command" not in str(refused.value), argv
    with pytest.raises(cli.UserError, match="e.g. python -m tool check --device train$"):  # its value, a command's name
        parser.parse_args(["--device", "train", "check"])


def test_a_flag_of_another_command_names_its_command():
    """python -m exercises check 3 --data_dir X said "valid flags: --help", and --data_dir X check 3 that X is no
    command; check --steps 10 offered --help for --steps."""
    parser = cli.ArgumentParser(prog="python -m tool")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("check").add_argument("numbers", nargs="*")
    for name in ("train", "time"):
        commands.add_parser(name).add_argument("--steps", type=int)
    for argv in (["check", "3", "--steps", "10"], ["check", "--steps=10"], ["--steps", "10", "check", "3"]):
        with pytest.raises(cli.UserError, match=r"^--steps is a flag of train or time, not of check — "
                                                r"python -m tool train --help lists train's flags$"):
            parser.parse_args(argv)
    numbered = cli.ArgumentParser(prog="python -m tool")  # check's number given the flag's value (check --data_dir X)
    named = numbered.add_subparsers(dest="command")
    named.add_parser("check").add_argument("numbers", nargs="*", type=int)
    named.add_parser("train").add_argument("--data_dir")
    for argv in (["check", "--data_dir", "X"], ["check", "--data_dir=X", "Y"], ["check", "--data_dir", "d", "3"]):
        with pytest.raises(cli.UserError, match=r"^--data_dir is a flag of train, not of check — "):
            numbered.parse_args(argv)
    with pytest.raises(cli.UserError, match=r"^argument numbers: invalid int value: 'X' — "):  # no such flag: as was
        numbered.parse_args(["check", "X"])
    for argv in (["check", "--stesp", "10"], ["--steps", "10"]):  # no command has it, or no command was given
        with pytest.raises(cli.UserError) as refused:
            parser.parse_args(argv)
        assert "is a flag of" not in str(refused.value), argv


def test_a_seed_leaves_room_for_the_rank_in_64_bits():
    assert cli.parse_seed(str(2 ** 63 - 1)) == 2 ** 63 - 1 and cli.parse_seed(str(-2 ** 63)) == -2 ** 63
    for seed in (2 ** 63, 2 ** 64 - 1):  # torch.manual_seed takes up to 2**64 - 1, but seed + rank would overflow
        with pytest.raises(argparse.ArgumentTypeError, match="does not fit in 64 bits"):
            cli.parse_seed(str(seed))


FLAGS = ["--batch_size", "--block_size", "--eval_interval", "--eval_iters", "--log_interval", "--lr", "--max_iters"]


def test_a_flag_named_by_a_piece_of_a_word_is_not_a_word_of_it():
    """--size names a word of --batch_size; "val", a piece of "interval", names no word of --log_interval."""
    assert cli.closest_flag("--size", FLAGS) == "--batch_size or --block_size"
    assert "--log_interval" not in (cli.closest_flag("--val", FLAGS) or "")


def test_a_device_is_checked_before_torch_sees_it(monkeypatch):
    """A malformed name was PyTorch's traceback; a GPU's number past the last one failed later, inside torch."""
    with pytest.raises(cli.UserError, match=r"--device 'cpu:abc' is not a device — use auto, cpu, cuda, cuda:N"):
        cli.pick_device("cpu:abc")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # one GPU, as a machine with one would say
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert cli.pick_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(cli.UserError, match=r"--device cuda:1, but this machine has 1 CUDA GPU\(s\), numbered from 0"):
        cli.pick_device("cuda:1")


def test_a_setting_declared_without_its_help_is_named_in_a_line():
    """A fork's `mlp_ratio: int = 4` in GPTConfig, without Annotated's help, made every train.py
    command, --help too, fail in an AttributeError."""
    from dataclasses import dataclass

    @dataclass
    class Mine:
        mlp_ratio: int = 4
    with pytest.raises(cli.UserError, match=re.escape(
            f"{Mine.__module__}.Mine.mlp_ratio has no help: declare it as mlp_ratio: Annotated[int, \"what it does\"] "
            f"= its default, as the other fields are (it becomes a --flag with that help)")):
        cli.add_flags(argparse.ArgumentParser(), Mine)
