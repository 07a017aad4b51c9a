"""Never lose a run: the nan guard, disk and permission errors, resume notes and refusals,
and the random states a resume restores."""

import errno
import json
import os
import random
import re
import shutil
import stat
import tempfile
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lessons import buildup
from machinery import checkpoint
from machinery import ddp
from machinery import settings
import config
from machinery import optim
import prepare
import sample
import train
from conftest import TINY, file_size_limit
from model import GPT, GPTConfig
from machinery import cli
from machinery.cli import UserError
from machinery import bookkeeping


def snapshot(directory):
    """{file name: bytes} of everything in a directory."""
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


# ----------------------------------------------------------------------------
# The nan guard


def poison(monkeypatch, bad_calls):
    """Make the training forward passes numbered in bad_calls (from 0) return a nan loss."""
    calls = []

    class Poisoned(GPT):
        def forward(self, idx, targets=None, cache=None):
            logits, loss = super().forward(idx, targets, cache)
            if self.training:
                calls.append(len(calls))
                if calls[-1] in bad_calls:
                    loss = loss * float("nan")
            return logits, loss

    monkeypatch.setattr(train, "build_model", Poisoned)


def test_a_few_nan_steps_are_skipped(data_dir, tmp_path, monkeypatch, capsys):
    poison(monkeypatch, bad_calls={5, 6})
    out = tmp_path / "o"
    assert train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(out), "--max_nan_skips", "2"]) == 0
    printed = capsys.readouterr().out
    assert "warning: the loss is nan at iteration 5; the step was skipped (1 in a row" in printed
    assert "(2 in a row, --max_nan_skips 2)" in printed
    weights = checkpoint.load_checkpoint(out / "latest.pt", "")["model"]
    assert all(torch.isfinite(w).all() for w in weights.values())  # the nan never reached the weights


@pytest.mark.parametrize("fp16", [False, True], ids=["float32", "fp16"])
def test_a_skipped_step_leaves_the_weights_alone(fp16):
    """In fp16 too, where the GradScaler would read a nan as an overflow and halve its loss scale."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=8, vocab_size=5, n_layer=1, n_head=1, n_embd=8))
    cfg = config.TrainConfig(grad_clip=1.0)  # (AdamW: Muon refuses fp16)
    optimizer = optim.make_optimizer(model, cfg, torch.device("cpu"))
    scaler = torch.amp.GradScaler("cpu", enabled=fp16)
    scale = scaler.get_scale()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randint(5, (2, 8))

    class NanLoss(torch.nn.Module):  # a model whose loss is nan
        def forward(self, idx, targets):
            logits, loss = model(idx, targets)
            return logits, loss * float("nan")

    loss, taken = train.train_step(NanLoss(), optimizer, scaler, lambda: (x, x), 1e-3, cfg,
                                   torch.autocast("cpu", enabled=False), 1, device=torch.device("cpu"))
    assert not taken and torch.isnan(loss)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(not p.grad.any() for p in model.parameters())  # the garbage is gone: zeroed in place
    assert scaler.get_scale() == scale


def test_too_many_nan_steps_stop_and_name_the_last_good_checkpoint(data_dir, tmp_path, monkeypatch):
    poison(monkeypatch, bad_calls=set(range(6, 100)))  # from iteration 6 on
    out = tmp_path / "o"
    argv = TINY + ["--data_dir", str(data_dir), "--out_dir", str(out), "--max_nan_skips", "2"]
    with pytest.raises(UserError, match=r"the loss was nan or inf for 3 steps in a row, up to iteration 8; "
                                        r"the last good checkpoint is .*latest.pt \(iteration 8\) — resume") as e:
        train.main(argv)
    # saved at 8 between the skipped steps 6, 7 and 8: with the weights of step 5, untouched by the nans
    ckpt = checkpoint.load_checkpoint(out / "latest.pt", "")
    assert ckpt["iter"] == 8 and all(torch.isfinite(w).all() for w in ckpt["model"].values())
    suggested = re.search(r"e\.g\. (--lr \S+ --min_lr \S+ --muon_lr \S+)$", str(e.value))[1]
    assert suggested == "--lr 0.004 --min_lr 0.0004 --muon_lr 0.02"  # half the preset's (Muon's: it stayed at 40)
    monkeypatch.undo()  # the nans gone: what the message says to do works
    assert train.main(argv + ["--resume", "--max_iters", "12"] + suggested.split()) == 0


def test_a_resume_counts_on_the_nan_steps_skipped_in_a_row_before_it(data_dir, tmp_path, monkeypatch):
    """Found by a hunt for resume bugs: the count of skipped steps was not saved, so a run stopped inside a run of
    nan steps and resumed counted from 0, and trained on where the uninterrupted run stopped."""
    from test_train import ctrl_c_during_step
    argv = TINY + ["--data_dir", str(data_dir), "--max_nan_skips", "3"]
    poison(monkeypatch, bad_calls={5, 6, 7, 8})  # (the forward passes of training, from 0: iterations 5 to 8)
    said = "the loss was nan or inf for 4 steps in a row, up to iteration 8"
    with pytest.raises(UserError, match=said):
        train.main(argv + ["--out_dir", str(tmp_path / "whole")])
    poison(monkeypatch, bad_calls={5, 6, 7, 8})  # (counted afresh)
    take_ctrl_c_away = ctrl_c_during_step(6, monkeypatch)  # (saved at iteration 7, after 2 nan steps)
    assert train.main(argv + ["--out_dir", str(tmp_path / "o")]) == 130
    take_ctrl_c_away()
    poison(monkeypatch, bad_calls={0, 1})  # (a new process counts its calls from 0: iterations 7 and 8)
    with pytest.raises(UserError, match=said):
        train.main(argv + ["--out_dir", str(tmp_path / "o"), "--resume"])


def test_a_nan_evaluation_is_never_saved(data_dir, tmp_path, monkeypatch):
    class NanWhenEvaluating(GPT):
        def forward(self, idx, targets=None, cache=None):
            logits, loss = super().forward(idx, targets, cache)
            return logits, loss if self.training or targets is None else loss * float("nan")

    monkeypatch.setattr(train, "build_model", NanWhenEvaluating)
    out = tmp_path / "o"
    with pytest.raises(UserError, match="the evaluation at iteration 0 gave train loss nan and val loss nan; "
                                        "no checkpoint was saved yet"):
        train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(out)])
    assert not list(out.glob("*.pt"))


def test_max_nan_skips_zero_stops_at_the_first(data_dir, tmp_path, monkeypatch):
    poison(monkeypatch, bad_calls={1})
    with pytest.raises(UserError, match="for 1 steps in a row, up to iteration 1; no checkpoint was saved yet"):
        train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "o"), "--max_nan_skips", "0"])


# ----------------------------------------------------------------------------
# Disk and permissions


def test_disk_full_during_a_save_keeps_the_old_checkpoint(data_dir, tmp_path):
    """A real failed write, half-way through the file (file_size_limit)."""
    out = tmp_path / "o"
    argv = TINY + ["--data_dir", str(data_dir), "--out_dir", str(out)]
    assert train.main(argv) == 0
    before = snapshot(out)
    with file_size_limit(len(before["best.pt"]) // 2):  # log.csv still fits
        with pytest.raises(UserError, match=r"cannot save .*best.pt \(File too large\); .*best.pt still "
                                            r"holds the previous checkpoint — free some disk space"):
            train.main(argv + ["--resume", "--max_iters", "16"])
    after = snapshot(out)
    assert after["latest.pt"] == before["latest.pt"] and after["best.pt"] == before["best.pt"]
    assert not list(out.glob(".*.tmp"))  # the half-written temp file is gone


def test_a_failed_save_says_what_to_do_with_what_the_folder_holds(tmp_path, monkeypatch):
    """Resume from latest.pt; or, in a first save that wrote best.pt only, copy it first; or, with nothing
    saved yet, run the command again (--resume would find nothing to resume)."""
    def full_disk(path, write):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "write_atomically", full_disk)
    copy = f"cp {tmp_path / 'best.pt'} {tmp_path / 'latest.pt'}"
    for there, then in (((), "run the same command again"),
                        (("best.pt",), f"copy best.pt to latest.pt ({copy}) and resume"),
                        (("best.pt", "latest.pt"), "resume with --resume")):
        for name in there:
            (tmp_path / name).write_bytes(b"a checkpoint")
        with pytest.raises(UserError, match=re.escape(f"free some disk space or fix the permissions, then {then}")):
            checkpoint.save_checkpoint(tmp_path / "latest.pt", {"iter": 1})


def test_a_run_stopped_between_its_first_two_saves_resumes_as_it_says(data_dir, tmp_path, monkeypatch, capsys):
    """Found by a hunt for resume bugs: killed, or out of disk space, after the first evaluation's best.pt and
    before its latest.pt, a run that --resume refused (no latest.pt) and a new run refused too (a run is there).
    best.pt then holds the run's last evaluation: the resume copies it to latest.pt and goes on, exactly."""
    argv = TINY + ["--data_dir", str(data_dir)]
    assert train.main(argv + ["--out_dir", str(tmp_path / "whole")]) == 0
    write = checkpoint.write_atomically

    def no_room_for_latest(path, write_file):
        if path.name == "latest.pt":
            raise OSError(errno.ENOSPC, "No space left on device")
        write(path, write_file)

    monkeypatch.setattr(checkpoint, "write_atomically", no_room_for_latest)
    out = tmp_path / "o"
    with pytest.raises(UserError, match=r"cannot save .*latest.pt \(No space left on device\); nothing was written — "
                                        r"free some disk space or fix the permissions, then resume with --resume$"):
        train.main(argv + ["--out_dir", str(out)])
    monkeypatch.undo()
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "log.csv", "train.lock"]
    with pytest.raises(UserError, match=r"already holds a run \(best.pt\) — add --resume to continue it"):
        train.main(argv + ["--out_dir", str(out)])
    _, ckpt, said = settings.build_config(None, True, {"out_dir": str(out)})  # settings alone: best.pt read
    assert ckpt["iter"] == 4 and f"config: resuming {out / 'best.pt'}" in said and not (out / "latest.pt").exists()
    with pytest.raises(UserError, match="the checkpoint has n_layer=2"):  # (a third review: a refusal writes nothing)
        train.main(argv + ["--out_dir", str(out), "--resume", "--n_layer", "3"])
    assert not (out / "latest.pt").exists()
    monkeypatch.setattr(checkpoint, "write_atomically", no_room_for_latest)  # still no room: best.pt read, and said
    assert checkpoint.latest_from_best(out) == [f"note: {out / 'latest.pt'} is missing, and best.pt, which holds the "
                                                f"run's last evaluation, could not be copied there (No space left on "
                                                f"device): resuming from best.pt"]
    monkeypatch.undo()
    capsys.readouterr()
    assert train.main(argv + ["--out_dir", str(out), "--resume"]) == 0
    assert (f"note: {out / 'latest.pt'} was missing (the run stopped between its first two saves, or it was "
            f"deleted); best.pt holds the run's last evaluation, so it was copied there") in capsys.readouterr().out
    resumed, whole = (checkpoint.load_checkpoint(folder / "latest.pt", "") for folder in (out, tmp_path / "whole"))
    assert all(torch.equal(resumed["model"][k], whole["model"][k]) for k in whole["model"])
    rows = lambda folder: [row.split(",")[:3] for row in (folder / "log.csv").read_text().splitlines()]
    assert rows(out) == rows(tmp_path / "whole")
    (out / "latest.pt").unlink()  # a run gone on past its best.pt: resuming from best.pt is the user's to choose
    with open(out / "log.csv", "a") as f:
        f.write("99,1.0,9.0,0.0001,100.0,9.0\n")
    with pytest.raises(UserError, match=r"only best.pt is there; to resume from it, copy it: cp "):
        train.main(argv + ["--out_dir", str(out), "--resume"])


def test_a_write_cut_short_inside_a_tensor_says_why(tmp_path):
    """torch.save straight into the file reported this as "RuntimeError: ... unexpected pos"."""
    with file_size_limit(2 ** 19):  # half-way through the one 1 MiB tensor
        with pytest.raises(UserError, match=r"cannot save .*big.pt \(File too large\); nothing was written"):
            checkpoint.save_checkpoint(tmp_path / "big.pt", {"w": torch.zeros(2 ** 18)})
    assert list(tmp_path.iterdir()) == []


def test_out_dir_that_cannot_be_written(data_dir, tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("mine")
    with pytest.raises(UserError, match=r"cannot write in .*a_file/out \(Not a directory\) — choose another"):
        train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(blocker / "out")])
    assert blocker.read_text() == "mine"

    def no_permission(*args, **kwargs):  # as root, chmod cannot take the permission away
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", no_permission)
    with pytest.raises(UserError, match=r"cannot write in .*locked \(Permission denied\)"):
        train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "locked")])
    monkeypatch.setattr(tempfile, "TemporaryFile", no_permission)  # buildup.py finds out before its climb too
    with pytest.raises(UserError, match=r"cannot write in .*ladder \(Permission denied\)"):
        buildup.main(["--quick", "--data_dir", str(data_dir), "--out_dir", str(tmp_path / "ladder")])


def test_a_folder_where_a_run_keeps_a_file_is_named(data_dir, run_dir, tmp_path):
    """A log.csv or train.lock that is a folder was "cannot write in out_dir"; a latest.pt that is one, "holds a
    run" and then, with --resume, "no checkpoint"."""
    argv = TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path)]
    for name in ("log.csv", "train.lock"):
        (tmp_path / "train.lock").unlink(missing_ok=True)  # (the lock's file stays; the lock ends with its run)
        (tmp_path / name).mkdir()
        with pytest.raises(UserError, match=rf"^cannot write .*/{name} \(Is a directory\) — move it away, or choose"):
            train.main(argv)
        (tmp_path / name).rmdir()
    (tmp_path / "latest.pt").mkdir()
    with pytest.raises(UserError, match=r"latest.pt is a folder, where train.py saves a checkpoint — move it away"):
        train.main(argv)
    with pytest.raises(UserError, match=r"latest.pt is a folder, not a checkpoint — move it away$"):
        train.main(argv + ["--resume"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt"]  # nothing written
    run = tmp_path / "run"  # a resumed run whose best.pt is a folder: it failed at its first save, after training
    shutil.copytree(run_dir, run)
    (run / "best.pt").unlink()
    (run / "best.pt").mkdir()
    log = (run / "log.csv").read_text()
    with pytest.raises(UserError, match=r"best.pt is a folder, where train.py saves a checkpoint — move it away"):
        train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(run), "--resume", "--max_iters", "16"])
    assert (run / "log.csv").read_text() == log


@pytest.mark.skipif(not bookkeeping.fcntl, reason="no lock file without fcntl (Windows)")
def test_a_train_lock_of_the_users_or_a_link_there_is_not_written_over(data_dir, tmp_path):
    """A file of the user's named train.lock came out of a run holding a process's number; a link of that name, the
    file it pointed to did."""
    argv = TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "run")]
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "train.lock").write_text("notes\n")
    with pytest.raises(UserError, match=r"run/train.lock is not a lock that train.py wrote, and it would write over"):
        train.main(argv)
    assert (tmp_path / "run" / "train.lock").read_text() == "notes\n"
    (tmp_path / "precious.txt").write_text("precious\n")
    (tmp_path / "run" / "train.lock").unlink()
    (tmp_path / "run" / "train.lock").symlink_to(tmp_path / "precious.txt")
    with pytest.raises(UserError, match=r"run/train.lock is a link, where train.py keeps its lock — move it away"):
        train.main(argv)
    assert (tmp_path / "precious.txt").read_text() == "precious\n"
    (tmp_path / "run" / "train.lock").unlink()
    (tmp_path / "run" / "train.lock").write_text("12345")  # a run's lock, left: taken over
    assert train.main(argv) == 0
    assert train.main(argv + ["--resume", "--max_iters", "16"]) == 0  # and again: its number written at offset 0
    assert (tmp_path / "run" / "train.lock").read_text() == str(os.getpid())


def test_an_out_dir_that_cannot_be_written_is_named_not_a_file_in_it(data_dir, tmp_path):
    """The error of a folder we may not write named the temp file that could not be made in it, as one to move
    away (mkstemp puts its name in the error). Only a file of the run's that is a folder is named."""
    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "o" / ".log.csv.x1y2.tmp"))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(tempfile, "mkstemp", refused)
        with pytest.raises(UserError, match=r"^cannot write in .*/o \(Permission denied\) — "
                                            r"choose another --out_dir$"):
            train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "o")])


def test_a_log_a_resume_may_not_read_is_named_not_its_folder(data_dir, run_dir, tmp_path, monkeypatch):
    """A log.csv this user may not read: "cannot write in the folder — choose another --out_dir", which would not
    resume the run."""
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)

    def refused(path, *args):  # (as root, chmod cannot take the permission away)
        raise PermissionError(errno.EACCES, "Permission denied", str(path))
    monkeypatch.setattr(bookkeeping, "trim_log", refused)
    with pytest.raises(UserError, match=rf"^cannot use {run / 'log.csv'} \(Permission denied\) — fix its "
                                        rf"permissions \(chmod u\+rw {run / 'log.csv'}\), then run again$"):
        train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(run), "--resume", "--max_iters", "16"])


def test_only_a_new_run_is_refused_an_out_dir_that_is_its_data(data_dir, run_dir, tmp_path):
    """--trace_shapes writes nothing, and a run begun in its data's folder before the refusal resumes there."""
    mixed = tmp_path / "mixed"
    shutil.copytree(data_dir, mixed)
    argv = TINY + ["--data_dir", str(mixed), "--out_dir", str(mixed)]
    with pytest.raises(UserError, match="^--out_dir and --data_dir are the same folder"):
        train.main(argv)
    assert train.main(argv + ["--trace_shapes"]) == 0
    for name in ("best.pt", "latest.pt", "log.csv"):
        shutil.copy(run_dir / name, mixed / name)
    assert train.main(argv + ["--resume", "--max_iters", "16"]) == 0


def test_a_run_folder_moved_while_it_trains_is_said_to_be_gone(tmp_path, monkeypatch):
    """mv out/run out/run2 mid-run: the next write said "No such file or directory — free some disk space"."""
    gone = tmp_path / "run"
    run = SimpleNamespace(out_dir=gone, iter=20, elapsed_before=0.0, t_train=0.0)
    said = rf"^{gone} is gone: moved or deleted while the run trained — if it was moved and holds a latest.pt, go on "
    with pytest.raises(UserError, match=said + r"from it there: python train.py --resume --out_dir NEW_PLACE; if not, "
                                               r"start the run again$"):
        bookkeeping.append_log(run, {"train": 2.0, "val": 2.1}, 1e-3, 1000.0)
    with pytest.raises(UserError, match=said):
        checkpoint.save_checkpoint(gone / "latest.pt", {"iter": 20})

    def no_entry(path, *args, **kwargs):  # a parent folder this user may not enter: not gone, and not said so
        raise PermissionError(errno.EACCES, "Permission denied", str(path))
    monkeypatch.setattr(cli.os, "stat", no_entry)
    assert cli.refuse_a_run_folder_gone(gone) is None


def test_rank_without_torchrun_is_refused(data_dir, tmp_path, monkeypatch):
    """RANK left in the environment (from an earlier torchrun session, say) without the rest."""
    monkeypatch.setenv("RANK", "0")
    for name in ("LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(UserError, match="RANK is set, but not LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT: "
                                        "this is not a torchrun launch — start it with torchrun"):
        train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "o")])


def test_a_model_far_too_big_for_the_machine_is_refused_before_it_is_built(data_dir, tmp_path):
    """It filled the memory a layer at a time, for minutes, until the system killed it without a word."""
    with pytest.raises(UserError, match=r"^a model of 1000 layers 16384 wide has about 3,221\.2 billion weights, and "
                                        r"training them takes about 51,540 GB, more than this machine's [\d,]+ GB — "
                                        r"use a smaller --n_layer or --n_embd$"):
        train.main(["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "o"), "--device", "cpu",
                    "--n_layer", "1000", "--n_embd", "16384", "--n_head", "128"])
    assert not (tmp_path / "o").exists()
    settings.check_fits(GPTConfig(n_layer=6, n_embd=384, block_size=256, vocab_size=65), torch.device("cpu"))


def test_far_too_many_samples_are_refused_before_the_batch_is_made(run_dir, capsys):
    """sample.py --num_samples 100000000 filled the memory while it built the batch, until the system stopped it."""
    with pytest.raises(UserError, match=r"^--num_samples 100,000,000 of 501 characters take about [\d,]+ GB at "
                                        r"once, more than this machine's [\d,]+ GB — give --num_samples [\d,]+ or "
                                        r"fewer$"):
        sample.main(["--out_dir", str(run_dir), "--num_samples", "100000000", "--device", "cpu"])
    with pytest.raises(UserError, match=r"GB — give a smaller --max_new_tokens$"):  # one sample, not streamed
        sample.main(["--out_dir", str(run_dir), "--no_cache", "--num_samples", "1", "--max_new_tokens", str(10 ** 13),
                     "--device", "cpu"])
    assert sample.main(["--out_dir", str(run_dir), "--num_samples", "64", "--max_new_tokens", "2"]) == 0
    assert capsys.readouterr().out.count("---- sample") == 64


def test_world_size_without_torchrun_is_one_process(monkeypatch, capsys):
    """WORLD_SIZE alone (no RANK) is not a launch: one process, and the whole batch (it was halved
    under WORLD_SIZE=2, while the start-up line still printed the whole). Under a launch, a
    WORLD_SIZE that is no count of processes is refused, where it was a ValueError or a division by 0."""
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert ddp.launched_processes() == 1
    monkeypatch.setenv("RANK", "0")
    assert ddp.launched_processes() == 2
    for value in ("0", "abc", "-1", ""):
        monkeypatch.setenv("WORLD_SIZE", value)
        with pytest.raises(UserError, match=f"^WORLD_SIZE is {value!r}, not a number of processes — start it"):
            ddp.launched_processes()


def test_resume_removes_temp_files_of_a_killed_save(data_dir, tmp_path, capsys):
    out = tmp_path / "o"
    argv = TINY + ["--data_dir", str(data_dir), "--out_dir", str(out)]
    assert train.main(argv) == 0
    (out / ".latest.pt.x1y2.tmp").write_bytes(b"half a checkpoint")
    (out / "notes.tmp").write_text("not ours")
    assert train.main(argv + ["--resume", "--max_iters", "14"]) == 0
    assert "removed 1 half-written temp file(s)" in capsys.readouterr().out
    assert not (out / ".latest.pt.x1y2.tmp").exists() and (out / "notes.tmp").exists()


def test_a_resume_from_an_earlier_latest_pt_keeps_the_better_best_pt(data_dir, tmp_path, capsys):
    """latest.pt put back from a backup: a resume from it must not replace the run's better best.pt with a worse
    one, as it did when it took the best val loss from latest.pt alone."""
    out = tmp_path / "o"
    argv = TINY + ["--data_dir", str(data_dir), "--out_dir", str(out), "--lr", "3e-3"]
    assert train.main(argv + ["--max_iters", "4"]) == 0
    shutil.copy(out / "latest.pt", tmp_path / "backup.pt")
    assert train.main(argv + ["--resume", "--max_iters", "40"]) == 0
    best = torch.load(out / "best.pt", weights_only=True)
    shutil.copy(tmp_path / "backup.pt", out / "latest.pt")
    capsys.readouterr()
    assert train.main(argv + ["--resume", "--max_iters", "8"]) == 0  # (its evaluations, at 8, are worse than 40's)
    said = capsys.readouterr().out
    assert f"note: {out / 'best.pt'} (val {best['best_val_loss']:.4f}) is better than latest.pt's best" in said
    assert (f"note: {out / 'log.csv'} had rows past iteration 4, where this resume goes on from: the log as it was is "
            f"kept as {out / 'log.prev.csv'}") in said
    kept = torch.load(out / "best.pt", weights_only=True)
    assert kept["iter"] == best["iter"] and kept["best_val_loss"] == best["best_val_loss"]
    # the log's rows past iteration 4, dropped from log.csv (this resume redoes them), were lost without a word
    assert int((out / "log.prev.csv").read_text().splitlines()[-1].split(",")[0]) == 40
    assert int((out / "log.csv").read_text().splitlines()[-1].split(",")[0]) == 8


def test_a_log_row_the_resume_writes_again_is_not_kept_aside(data_dir, tmp_path, capsys):
    """Killed between an evaluation's log row and its save, a run's log holds one row past latest.pt: the resume
    writes it again, so the log as it was is no log.prev.csv of its own (each such kill would add one)."""
    out = tmp_path / "o"
    argv = TINY + ["--data_dir", str(data_dir), "--out_dir", str(out)]
    assert train.main(argv) == 0
    with open(out / "log.csv", "a") as log:
        log.write("16,2.5,2.6,0.0008,1000.0,1.00\n")  # iteration 16's row, as a run killed before its save leaves
    capsys.readouterr()
    assert train.main(argv + ["--resume", "--max_iters", "16"]) == 0
    assert "log.prev" not in capsys.readouterr().out and not (out / "log.prev.csv").exists()
    assert [line.split(",")[0] for line in (out / "log.csv").read_text().splitlines()[1:]] == ["0", "4", "8", "12",
                                                                                                "16"]
    with open(out / "log.csv", "a") as log:  # a row off the grid of evaluations (a run of --max_iters 18, say), which
        log.write("18,2.5,2.6,0.0008,1000.0,1.00\n")  # a resume to 24 never writes again: kept (it went unsaid)
    assert train.main(argv + ["--resume", "--max_iters", "24"]) == 0
    assert "18,2.5,2.6" in (out / "log.prev.csv").read_text()


def test_a_resume_writes_a_best_pt_that_was_deleted_anew(data_dir, tmp_path, capsys, monkeypatch):
    """best.pt deleted, then a resume whose evaluations do not beat the run's best: the run ended naming a best.pt
    that was not there, and sample.py then sampled latest.pt."""
    out = tmp_path / "o"
    argv = TINY + ["--data_dir", str(data_dir), "--out_dir", str(out)]
    assert train.main(argv) == 0
    (out / "best.pt").unlink()
    capsys.readouterr()
    monkeypatch.setattr(train, "estimate_loss", lambda *args: {"train": 9.0, "val": 9.0})  # worse than the run's best
    assert train.main(argv + ["--resume", "--max_iters", "16"]) == 0
    assert f"note: {out / 'best.pt'} is gone (the run's best was val " in capsys.readouterr().out
    best = torch.load(out / "best.pt", weights_only=True)
    assert best["iter"] == 16 and best["best_val_loss"] == 9.0


def test_an_empty_log_is_rebuilt_on_resume(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("")  # killed between creating the file and writing to it
    bookkeeping.trim_log(log, 10)
    assert log.read_text() == bookkeeping.LOG_HEADER + "\n"


# ----------------------------------------------------------------------------
# Resume: what may change, what may not


def test_resume_notes_changed_training_settings(data_dir, tmp_path, capsys):
    out = tmp_path / "o"
    argv = TINY + ["--data_dir", str(data_dir), "--out_dir", str(out)]
    assert train.main(argv) == 0
    capsys.readouterr()
    lower = ["--lr", "5e-4", "--min_lr", "5e-5"]
    assert train.main(argv + ["--resume", "--max_iters", "14", "--dropout", "0.1", "--eval_iters", "3"] + lower) == 0
    printed = capsys.readouterr().out
    assert "note: --max_iters changes from 12 (the checkpoint's) to 14\n" in printed
    assert ("note: --eval_iters changes from 2 (the checkpoint's) to 3; evaluations now score other windows than "
            "the run's best val loss did") in printed
    assert "note: --lr changes from 0.008 (the checkpoint's) to 0.0005" in printed
    assert "note: --dropout changes from 0.0 (the checkpoint's) to 0.1" in printed
    assert "note: --n_layer" not in printed  # given, but unchanged


def test_resume_puts_changed_optimizer_settings_into_the_groups(data_dir, tmp_path):
    """load_state_dict brings back the saved groups, with the old run's weight decay, betas and Muon lr:
    the new values must replace them (configure_groups), not only be noted."""
    out = tmp_path / "o"
    argv = TINY + ["--data_dir", str(data_dir), "--out_dir", str(out)]
    assert train.main(argv) == 0
    changed = ["--weight_decay", "0.05", "--beta2", "0.9", "--muon_lr", "0.004", "--lr", "0.002"]
    assert train.main(argv + ["--resume", "--max_iters", "13"] + changed) == 0
    saved = torch.load(out / "latest.pt", weights_only=True)["optimizer"]
    groups = [g for state in saved.get("optimizers", [saved]) for g in state["param_groups"]]
    assert {g["kind"] for g in groups} == {"decay", "no_decay", "muon"}
    for g in groups:
        assert g["weight_decay"] == (0.0 if g["kind"] == "no_decay" else 0.05)
        if g["kind"] == "muon":
            assert g["lr_scale"] == pytest.approx(0.004 / 0.002)  # Muon's lr is muon_lr where AdamW's is lr
        else:
            assert g["betas"] == (0.9, 0.9)


def test_a_training_setting_that_config_py_no_longer_has_does_not_stop_a_resume(data_dir, tmp_path):
    """Training settings, unlike the model's, change nothing in the weights: one saved by an older
    config.py is left out (and its max_iters still extends the schedule)."""
    out = tmp_path / "o"
    argv = TINY + ["--data_dir", str(data_dir), "--out_dir", str(out)]
    assert train.main(argv) == 0
    ckpt = torch.load(out / "latest.pt", weights_only=True)
    ckpt["train_config"]["lr_schedule"] = "cosine"  # a setting since removed
    checkpoint.save_checkpoint(out / "latest.pt", ckpt)
    assert train.main(argv + ["--resume", "--max_iters", "16"]) == 0


@pytest.mark.parametrize("flag, value", [("n_head", "4"), ("bias", "true"), ("block_size", "8"), ("model", "bigram"),
                                         ("position", "learned"), ("optimizer", "adamw")])  # unlike the preset
def test_resume_refuses_a_different_model(data_dir, tmp_path, flag, value):
    out = tmp_path / "o"
    argv = TINY + ["--data_dir", str(data_dir), "--out_dir", str(out)]
    assert train.main(argv) == 0
    before = snapshot(out)
    with pytest.raises(UserError, match=f"the checkpoint has {flag}=.*; its weights .and optimizer state. belong"):
        train.main(argv + ["--resume", f"--{flag}", value])
    assert snapshot(out) == before


def test_resume_refuses_other_data_with_the_same_characters(data_dir, corpus, tmp_path):
    """Another folder's data names the folder the run was trained on; the same folder, prepared again, says so."""
    out, mine = tmp_path / "o", tmp_path / "mine"
    shutil.copytree(data_dir, mine)
    argv = TINY + ["--data_dir", str(mine), "--out_dir", str(out)]
    assert train.main(argv) == 0
    shuffled = tmp_path / "shuffled.txt"  # the same characters, another text
    lines = corpus.read_text().splitlines(keepends=True)
    shuffled.write_text("".join(reversed(lines)))
    assert prepare.main(["--input", str(shuffled), "--out_dir", str(tmp_path / "d2")]) == 0
    with pytest.raises(UserError, match=f"was prepared from another text than the checkpoint's .* — resume with the "
                                        f"--data_dir it was trained on \\({re.escape(str(mine))}\\), or train"):
        train.main(argv + ["--resume", "--data_dir", str(tmp_path / "d2")])
    shutil.rmtree(mine)
    assert prepare.main(["--input", str(shuffled), "--out_dir", str(mine)]) == 0
    source = json.loads((data_dir / "vocab.json").read_text())["source"]
    again = f"— prepare the run's text \\({re.escape(source)}\\) into a folder of its own and resume with it, or "
    with pytest.raises(UserError, match=again):
        train.main(argv + ["--resume", "--data_dir", f"{mine}/../mine"])  # (the same folder, spelt otherwise)
    edited = tmp_path / "edited" / json.loads((data_dir / "vocab.json").read_text())["source"]  # its name, changed
    edited.parent.mkdir()
    edited.write_text("".join(reversed(lines)))
    assert prepare.main(["--input", str(edited), "--out_dir", str(tmp_path / "d3")]) == 0
    with pytest.raises(UserError, match=rf"\({edited.name}, as it was then: it has been edited since\) — prepare "
                                        rf"the run's text \({re.escape(source)}\)"):  # (mine holds another text now)
        train.main(argv + ["--resume", "--data_dir", str(tmp_path / "d3")])
    shutil.rmtree(mine)  # the run's folder gone: its text named again
    with pytest.raises(UserError, match=again):
        train.main(argv + ["--resume", "--data_dir", str(tmp_path / "d2")])


# ----------------------------------------------------------------------------
# Random states


def test_random_states_round_trip_through_a_checkpoint(tmp_path):
    generator = torch.Generator().manual_seed(3)
    torch.manual_seed(1), np.random.seed(2), random.seed(4)
    np.random.randn()  # a cached gaussian is part of numpy's state too
    checkpoint.save_checkpoint(tmp_path / "s.pt", {"rng": checkpoint.rng_states(generator)})
    first = (torch.rand(3), np.random.rand(3), np.random.randn(), random.random(), torch.rand(2, generator=generator))
    states = torch.load(tmp_path / "s.pt", weights_only=True)["rng"]  # loadable without pickle's code
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    checkpoint.set_rng_states(states, generator)
    again = (torch.rand(3), np.random.rand(3), np.random.randn(), random.random(), torch.rand(2, generator=generator))
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert first[2] == again[2] and first[3] == again[3] and torch.equal(first[4], again[4])


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("key, edit", [  # each once passed the check, and failed later in the run or in its log
    ("rng", lambda c: c["rng"].update(torch_ranks=[])),  # an IndexError in set_rng_states
    ("extended_at", lambda c: c.update(extended_at=(12, 1e300))),  # AdamW: a value not to fit a float
    ("extended_at", lambda c: c.update(extended_at=(12, NAN))),  # nan learning rates, and advice to lower --lr
    ("extended_at", lambda c: c.update(extended_at=(NAN, 0.5))),
    ("owed_evaluation", lambda c: c.update(owed_evaluation=(NAN, INF))),  # nan and inf in log.csv
    ("bad_steps", lambda c: c.update(bad_steps=-5)),
])
def test_a_value_train_py_could_not_have_saved_is_named(run_dir, key, edit):
    """A hand edit of latest.pt's smaller keys is refused in one line (test_bad_input: two of them, whole runs)."""
    ckpt = torch.load(run_dir / "latest.pt", weights_only=True)
    assert checkpoint.damaged(ckpt) == ""
    kept = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    assert checkpoint.damaged({**ckpt, "extended_at": (4, 0.25), "owed_evaluation": (1e-3, 5e3)}) == ""
    # a fork's decay may start a rounding error above 1 (settings.check_decay allows it), and a new run owes (0, 0)
    assert checkpoint.damaged({**ckpt, "extended_at": (57, 1 + 1e-12), "owed_evaluation": (0.0, 0.0)}) == ""
    assert torch.equal(kept[0], torch.get_rng_state()) and np.array_equal(kept[1], np.random.get_state()[1])
    assert kept[2] == random.getstate()  # the check tries the states in generators of its own
    edit(ckpt)
    assert checkpoint.damaged(ckpt) == key


@pytest.mark.parametrize("bad_id", [60000, "vocab_size"])  # the first id past the table, too: ids run 0 .. V-1
def test_damaged_token_ids_are_caught(data_dir, tmp_path, bad_id):
    broken = shutil.copytree(data_dir, tmp_path / "broken")
    if bad_id == "vocab_size":
        bad_id = json.loads((broken / "vocab.json").read_text())["vocab_size"]
    with open(broken / "train.bin", "r+b") as f:
        f.seek(20)
        f.write(np.array([bad_id], dtype=np.uint16).tobytes())
    message = rf"train.bin holds token id {bad_id}, but the vocabulary has only \d+ characters"
    with pytest.raises(UserError, match=message):
        train.main(TINY + ["--data_dir", str(broken), "--out_dir", str(tmp_path / "o")])


def test_a_val_split_of_exactly_block_size_tokens_is_refused(data_dir, tmp_path):
    """A window needs block_size + 1 tokens (its targets are one further), so block_size is one too few."""
    tokens = json.loads((data_dir / "vocab.json").read_text())["val_tokens"]
    with pytest.raises(UserError, match=f"val.bin has {tokens:,} tokens, not more than block_size {tokens}"):
        train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "o"), "--block_size", str(tokens)])


# ----------------------------------------------------------------------------
# Found by breaking the code on purpose (each of these once passed every other test)


def test_python_s_cached_gaussian_round_trips_through_a_checkpoint(tmp_path):
    """random.gauss draws its numbers in pairs and keeps the second (gauss_next): part of the state too."""
    before = random.getstate(), torch.get_rng_state(), np.random.get_state()  # the global generators, given back
    try:
        generator = torch.Generator().manual_seed(3)
        random.seed(4)
        random.gauss(0.0, 1.0)  # the pair's second number is now cached
        checkpoint.save_checkpoint(tmp_path / "s.pt", {"rng": checkpoint.rng_states(generator)})
        first = random.gauss(0.0, 1.0)
        states = torch.load(tmp_path / "s.pt", weights_only=True)["rng"]
        random.seed(9)
        checkpoint.set_rng_states(states, generator)
        assert random.gauss(0.0, 1.0) == first
    finally:
        random.setstate(before[0]), torch.set_rng_state(before[1]), np.random.set_state(before[2])


def test_the_temp_files_of_every_file_a_run_writes_atomically_are_removed(tmp_path):
    """latest.pt, best.pt and log.csv (trimmed on resume, atomically) each leave .NAME.<random>.tmp when killed."""
    for name in (".latest.pt.a1.tmp", ".best.pt.b2.tmp", ".log.csv.c3.tmp", "notes.tmp", ".vocab.json.d4.tmp"):
        (tmp_path / name).write_bytes(b"half")
    assert checkpoint.remove_stale_temp_files(tmp_path) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [".vocab.json.d4.tmp", "notes.tmp"]


def test_a_damaged_latest_pt_is_told_to_copy_best_pt_only_where_there_is_one(tmp_path):
    latest = tmp_path / "latest.pt"
    latest.write_bytes(b"x")
    assert checkpoint.way_around(latest) == "use a backup, or another checkpoint"  # no best.pt to copy
    (tmp_path / "best.pt").write_bytes(b"x")
    assert checkpoint.way_around(latest).startswith(f"to resume from the best evaluation instead, copy "
                                                    f"{tmp_path / 'best.pt'} over it")


def test_max_nan_skips_counts_skipped_steps_in_a_row_not_in_all(tmp_path):
    run = SimpleNamespace(cfg=SimpleNamespace(max_nan_skips=1, lr=1e-3, min_lr=1e-4, optimizer="adamw"), bad_steps=0,
                          rank=0, last_saved=None, out_dir=tmp_path, iter=4, dtype=torch.float32)

    def step(i, loss):  # (iteration, loss, taken), as train_step leaves them: nan != nan, so a nan is not taken
        return i, torch.tensor(loss), torch.tensor(loss == loss)

    pending = [step(1, float("nan")), step(2, 1.0), step(3, float("nan")), step(4, 1.0), step(5, float("nan"))]
    bookkeeping.read_steps(run, pending)  # three skipped, never two in a row: the run goes on
    assert run.bad_steps == 1 and pending == []
    with pytest.raises(UserError, match="the loss was nan or inf for 2 steps in a row, up to iteration 6"):
        bookkeeping.read_steps(run, [step(6, float("nan"))])


def test_a_step_skipped_for_another_process_s_nan_says_so(tmp_path, capsys):
    """Found by a hunt for DDP bugs: under torchrun, process 0 warned "the loss is 3.378" for a step skipped for
    process 1's nan (each process reads its own loss; whether all were finite is shared)."""
    run = SimpleNamespace(cfg=SimpleNamespace(max_nan_skips=3), bad_steps=0, rank=0)
    bookkeeping.read_steps(run, [(40, torch.tensor(3.378), torch.tensor(False)), (41, torch.tensor(float("inf")),
                                                                                  torch.tensor(False))])
    assert capsys.readouterr().out.splitlines() == [
        "warning: another process's loss is nan or inf at iteration 40; the step was skipped (1 in a row, "
        "--max_nan_skips 3)",
        "warning: the loss is inf at iteration 41; the step was skipped (2 in a row, --max_nan_skips 3)"]


def test_a_resume_may_change_the_attention_kernel_but_not_the_model(run_dir, tmp_path):
    """sdpa and the written-out attention compute the same function of the same weights: either resumes a run."""
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    values, _, _ = settings.build_config(None, True, {"out_dir": str(run), "attention": "manual", "dropout": 0.1})
    assert values["attention"] == "manual" and values["dropout"] == 0.1
    with pytest.raises(UserError, match=r"the checkpoint has n_embd=32 \(given: 64\)"):
        settings.build_config(None, True, {"out_dir": str(run), "n_embd": 64})


def test_a_resume_that_changes_the_windows_an_evaluation_scores_says_so(run_dir):
    """--batch_size, --eval_iters and --seed pick the windows an evaluation scores: changed on resume, the note
    adds that the run's best val loss was scored on other ones; --lr picks none (build_config reads, writes nothing)."""
    saved = checkpoint.load_checkpoint(run_dir / "latest.pt", "")["train_config"]
    windows = "; evaluations now score other windows than the run's best val loss did"
    for name, value in (("batch_size", 4), ("eval_iters", 3), ("seed", 7), ("lr", 1e-4)):
        summary = settings.build_config(None, True, {"out_dir": str(run_dir), name: value})[2]
        note = f"note: --{name} changes from {saved[name]} (the checkpoint's) to {value}"
        assert note in summary and (note + windows in summary) == (name != "lr"), summary


def test_check_fits_counts_16_bytes_a_weight(monkeypatch):
    """The weight, its gradient and AdamW's two moments, 4 bytes each: a model whose weights alone fit, but
    whose training state does not, is refused too."""
    mcfg = GPTConfig(n_layer=12, n_head=12, n_embd=768, block_size=1024, vocab_size=65)  # about 86M weights
    monkeypatch.setattr(settings, "memory_of", lambda device: (1e9, "this machine's"))  # 4 x 86M < 1 GB < 16 x 86M
    with pytest.raises(UserError, match="a model of 12 layers 768 wide"):
        settings.check_fits(mcfg, torch.device("cpu"))
    monkeypatch.setattr(settings, "memory_of", lambda device: (2e9, "this machine's"))
    settings.check_fits(mcfg, torch.device("cpu"))


def test_a_bigram_of_a_huge_vocabulary_is_refused_before_it_is_built(data_dir, tmp_path, monkeypatch):
    """A text of 66,602 distinct characters made a 66,602 x 66,602 table: killed by the system, without a word
    (train.py --preset bigram, and rung 1 of the ladder)."""
    with pytest.raises(UserError, match=r"^a bigram of 1,000,000 characters is a table of 1,000,000 x 1,000,000 "
                                        r"weights, and training them takes about 16,000 GB, more than this "
                                        r"machine's [\d,]+ GB — use a text of fewer distinct "
                                        r"characters, or train a GPT on this one"):
        settings.check_fits(GPTConfig(model="bigram", vocab_size=1_000_000), torch.device("cpu"))
    settings.check_fits(GPTConfig(model="bigram", vocab_size=65), torch.device("cpu"))
    V = json.loads((data_dir / "vocab.json").read_text())["vocab_size"]
    monkeypatch.setattr(settings, "memory_of", lambda device: (16 * V ** 2 - 1, "this machine's"))  # just too small
    with pytest.raises(UserError, match=f"a bigram of {V} characters"):
        buildup.main(["--quick", "--data_dir", str(data_dir), "--out_dir", str(tmp_path / "ladder")])
    assert not (tmp_path / "ladder").exists()  # refused before its folder was made


def test_a_file_written_atomically_gets_the_usual_permissions(tmp_path):
    """mkstemp makes its file private (0600): checkpoints and logs must be readable as any new file is."""
    old = os.umask(0o022)  # the usual umask, whatever this machine's is: 0644, not 0600
    try:
        cli.write_atomically(tmp_path / "log.csv", lambda f: f.write(b"x\n"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "log.csv").st_mode) == 0o644
