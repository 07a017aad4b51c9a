"""Checkpoints: what one holds, and how it is written, read and restored.

A checkpoint is a dict saved with torch.save and read back with weights_only=True, so
loading one can never run code. It holds:

    format, version      "char-gpt-checkpoint", 1: anything else is refused by name
    model_config         GPTConfig as a dict: enough to rebuild the model
    train_config         TrainConfig as a dict: the settings a resume starts from
    vocab                vocab.json's dict: chars, the characters in id order (sample.py needs nothing else)
    model                the uncompiled model's state_dict (no "_orig_mod." prefixes)
    optimizer, scaler    their state_dicts (the scaler's is empty without fp16)
    iter, best_val_loss  where the run is, and the best val loss so far
    elapsed_s            training time so far
    extended_at          where a resume lengthened the schedule (train.decay_left), or None
    bad_steps            the nan or inf steps skipped in a row, up to here (--max_nan_skips)
    owed_evaluation      (lr, tokens/s) of an evaluation a Ctrl-C cut short, which the resume does first; or None
    rng                  the random states (rng_states): data, dropout per process, numpy, Python

Checkpoint writes are atomic (a temp file renamed into place), so a crash never leaves half a
file. Beside them, train.py appends a row to log.csv per evaluation; read_log reads it, leaving
out a last row that a crash cut short.
"""

import csv
import errno
import io
import math
import os
import random
import shlex
import sys
import time
import typing
import warnings
import zipfile
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from machinery.cli import UserError, folders_inside, refuse_a_run_folder_gone, unless_a_typo, write_atomically
from machinery.data import run_dir_for, written_by_prepare
from machinery.optim import load_state
from config import PRESETS, TrainConfig
from model import ACTIVATIONS, POSITIONS, GPTConfig, build_model

CKPT_FORMAT = "char-gpt-checkpoint"
CKPT_VERSION = 1


def make_checkpoint(run):
    """A Run (machinery/bookkeeping.py) -> its checkpoint (collective under DDP: every process must call it, for the
    random states)."""
    return {
        "format": CKPT_FORMAT, "version": CKPT_VERSION,
        "model_config": asdict(run.mcfg), "train_config": asdict(run.cfg), "vocab": run.vocab,
        "model": run.raw_model.state_dict(),  # the uncompiled module: no "_orig_mod." prefixes
        "optimizer": run.optimizer.state_dict(), "scaler": run.scaler.state_dict(),
        "iter": run.iter, "best_val_loss": run.best_val, "extended_at": run.extended_at,
        "bad_steps": run.bad_steps,  # nan or inf steps skipped in a row, up to here: --max_nan_skips counts on
        "owed_evaluation": run.owed_evaluation,  # an evaluation a Ctrl-C cut short: the resume does it first
        "elapsed_s": run.elapsed_before + time.perf_counter() - run.t_train,
        "rng": rng_states(run.data_generator, run.device),
    }


# what each reader takes from a checkpoint, and its kind: one a hand edit dropped is named, not a KeyError later
READ = {"model": dict, "model_config": dict, "train_config": dict, "vocab": dict, "iter": int,  # every reader
        "best_val_loss": (int, float)}
RESUMED = {"optimizer": dict, "scaler": dict, "rng": dict, "elapsed_s": (int, float)}  # a resume, besides


def lacks(ckpt, kinds):
    """The keys of kinds that ckpt has no value of that kind under, joined by "or"; "" for none."""
    return " or ".join(key for key, kind in kinds.items() if not isinstance(ckpt.get(key), kind))


def damaged(ckpt):
    """The first of a resume's smaller keys that holds no value train.py could have saved there (a hand edit,
    say), named, or "": named here, before the run is built, not in a traceback once it is."""
    def pair(value, first=(0, math.inf), second=(0, math.inf)):  # two numbers, each within its [low, high]
        return isinstance(value, (list, tuple)) and len(value) == 2 and all(
            isinstance(x, (int, float)) and low <= x <= high and x < math.inf for x, (low, high) in
            zip(value, (first, second)))  # (nan fails the comparisons)

    # (iteration, decay left: a fork's decay may start a rounding error above 1, as settings.check_decay allows)
    checks = {"extended_at": lambda value: value is None or pair(value, second=(0, 1 + 1e-6)),
              "bad_steps": lambda n: isinstance(n, int) and n >= 0,
              "owed_evaluation": lambda value: value is None or pair(value),  # (lr, tokens/s)
              "rng": random_states_fit}
    return next((key for key, fits in checks.items() if key in ckpt and not fits(ckpt[key])), "")


def random_states_fit(states):
    """Whether each saved random state goes into a generator of its kind: throwaway ones, not the run's."""
    try:
        dropout = states.get("torch_ranks", [states["torch"]])  # every process's, or this one's
        if not dropout:  # (an empty list: no process's state to take)
            return False
        for saved in (states["data"], *dropout):
            torch.Generator().set_state(saved)
        numpy_state, python_state = numpy_and_python(states)
        np.random.RandomState().set_state(numpy_state)
        random.Random().setstate(python_state)
    except Exception:  # (whatever a generator raises at a state it cannot take: a probe, not the run's error)
        return False
    return True


def restore_checkpoint(run, ckpt):
    """Put a checkpoint's state back into a freshly built Run. -> notes on what could not
    be restored as it was."""
    # a setting the checkpoint lacks has no value of the run's: one other than its default came from a flag
    flagged = {f.name for f in fields(run.mcfg) if getattr(run.mcfg, f.name) != f.default}
    load_weights(run.raw_model, ckpt["model"], run.out_dir / "latest.pt", added_since(ckpt, flagged))
    load_state(run.optimizer, ckpt["optimizer"])
    notes = []
    if run.scaler.is_enabled() and not ckpt["scaler"]:  # a float32 or bf16 run, resumed in float16
        notes.append("note: float16's loss scale starts afresh (the run was saved without loss scaling)")
    else:
        run.scaler.load_state_dict(ckpt["scaler"])
    notes += set_rng_states(ckpt["rng"], run.data_generator, run.rank, run.world_size, run.device)
    run.iter, run.best_val, run.elapsed_before = ckpt["iter"], ckpt["best_val_loss"], ckpt["elapsed_s"]
    run.last_saved, run.extended_at, run.bad_steps = ckpt["iter"], ckpt.get("extended_at"), ckpt.get("bad_steps", 0)
    run.owed_evaluation = ckpt.get("owed_evaluation")  # (None: done, and in any checkpoint from before the key)
    copied = latest_from_best(run.out_dir) if run.rank == 0 else []  # (only process 0 writes)
    return notes + copied + best_on_disk(run)


def best_on_disk(run):
    """A resume's best val loss, where the best.pt beside latest.pt says otherwise. A better best.pt (latest.pt
    put back from a backup, or a crash between the two saves) stays until an evaluation beats it; a best.pt that
    is gone is written anew by the first evaluation, so that the run ends with one. -> notes"""
    best = run.out_dir / "best.pt"
    if not best.is_file():
        if run.best_val == float("inf"):  # (stopped before its first save: no best.pt yet, rightly)
            return []
        gone, run.best_val = run.best_val, float("inf")
        return [f"note: {best} is gone (the run's best was val {gone:.4f}): the next evaluation writes it anew"]
    kept = saved_number(best, "best_val_loss")  # (None: not a checkpoint of ours; the next save replaces it)
    if kept is None or kept >= run.best_val:
        return []
    latest, run.best_val = run.best_val, kept
    return [f"note: {best} (val {kept:.4f}) is better than latest.pt's best ({latest:.4f}): it stays until an "
            f"evaluation beats it"]


def saved_number(path, key):
    """One number a checkpoint holds (its iter, its best_val_loss), read through mmap: not the weights and optimizer
    state beside it. None where path is no checkpoint of ours, or a damaged one (its own reader says what is wrong)."""
    try:
        value = torch.load(path, map_location="cpu", weights_only=True, mmap=True)[key]
    except Exception:
        return None
    return value if isinstance(value, (int, float)) else None


def save_checkpoint(path, state):
    """Write atomically: a crash mid-save leaves the previous checkpoint intact.

    The checkpoint is serialised in memory first, so that the disk sees one plain write: a
    full disk then raises OSError, which says why, where torch.save writing to the file
    itself raises an unexplained RuntimeError ("unexpected pos")."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    try:
        write_atomically(path, lambda f: f.write(buffer.getbuffer()))
    except OSError as e:  # a full disk, a lost permission: the old file is still there (write_atomically)
        refuse_a_run_folder_gone(Path(path).parent)
        kept = f"{path} still holds the previous checkpoint" if Path(path).exists() else "nothing was written"
        raise UserError(f"cannot save {path} ({e.strerror or e}); {kept} — free some disk space or fix the "
                        f"permissions, then {how_to_go_on(Path(path).parent)}") from None


def how_to_go_on(folder):
    """After a save failed: resume from latest.pt; in a first save that wrote best.pt only, copy it over
    first (--resume reads latest.pt); with nothing saved yet, start again."""
    if (folder / "latest.pt").exists() or best_is_the_last_state(folder):  # (the resume copies best.pt over)
        return "resume with --resume"
    if (folder / "best.pt").exists():
        return f"copy best.pt to latest.pt ({copy_best_to_latest(folder)}) and resume with --resume"
    return "run the same command again"


def best_is_the_last_state(folder):
    """Whether folder's best.pt holds the run's last evaluation, log.csv's last row: what latest.pt holds or would
    hold (a run killed, or a save that failed, between the first evaluation's two saves, best.pt's first)."""
    saved = saved_number(Path(folder) / "best.pt", "iter")
    rows = evaluations(Path(folder) / "log.csv") if saved is not None else []
    return bool(rows) and rows[-1][0] == saved


def latest_from_best(folder):
    """A resume where latest.pt is missing and best.pt holds the run's last state (the resume has read it, and
    accepted its settings): best.pt copied to latest.pt, which --resume reads, and a note. -> notes ([] where
    best.pt is older: resuming from it is the user's choice)"""
    latest, best = Path(folder) / "latest.pt", Path(folder) / "best.pt"
    if latest.exists() or not best_is_the_last_state(folder):
        return []
    try:
        write_atomically(latest, lambda f: f.write(best.read_bytes()))
    except OSError as e:  # a full disk, say: the resume has read best.pt itself (machinery/settings.py)
        return [f"note: {latest} is missing, and best.pt, which holds the run's last evaluation, could not be copied "
                f"there ({e.strerror or e}): resuming from best.pt"]
    return [f"note: {latest} was missing (the run stopped between its first two saves, or it was deleted); "
            f"best.pt holds the run's last evaluation, so it was copied there to resume from"]


def copy_best_to_latest(folder):
    """The command that puts a run's best.pt where --resume reads, latest.pt (deleted, or never written)."""
    return shlex.join(["cp", str(Path(folder) / "best.pt"), str(Path(folder) / "latest.pt")])


def remove_stale_temp_files(out_dir):
    """A run killed mid-save leaves its temp file (.latest.pt.<random>.tmp) behind; the
    checkpoint itself is whole. -> how many such leftovers were removed."""
    stale = [p for name in ("latest.pt", "best.pt", "log.csv") for p in Path(out_dir).glob(f".{name}.*.tmp")]
    for p in stale:
        p.unlink()
    return len(stale)


def damage(path):
    """An empty file is no checkpoint. torch.save writes a zip archive, whose directory is at the end: a file that
    begins as a zip but has no directory has lost its end (a copy or download that stopped); one whose directory is
    garbled, or whose data fails the checksum the zip keeps for it (a flipped bit: torch.load does
    not check it), is damaged. -> what is wrong, or None (not a zip, or a whole one)"""
    with open(path, "rb") as f:
        start = f.read(4)
    if not start:  # (train.py writes by renaming a whole file into place: a copy that failed, say)
        return "is empty (0 bytes)"
    if start != b"PK\x03\x04":
        return None
    try:
        with zipfile.ZipFile(path) as archive:  # (torch.serialization.set_crc32_options(False) saves every CRC as 0)
            checked = any(info.CRC for info in archive.infolist())
            failed = archive.testzip() if checked else None  # (a second read of every byte, from the disk's cache)
    except zipfile.BadZipFile:
        return "was cut short (a copy that stopped?)"
    except Exception:  # (a file name in the directory that is not UTF-8, say)
        return "is damaged"
    return "is damaged (its data fails the checksum saved with it)" if failed else None


def way_around(path):
    """What to use instead of a run's checkpoint that cannot be read: the run's other one, or a backup."""
    best, latest = path.with_name("best.pt"), path.with_name("latest.pt")
    if path.name == "latest.pt" and best.is_file():
        return f"to resume from the best evaluation instead, copy {best} over it, or use a backup"
    if path.name == "best.pt" and latest.is_file():
        return f"give --checkpoint {latest} instead, or use a backup"  # (sample.py's flag, and the pictures')
    return "use a backup, or another checkpoint"


def load_checkpoint(path, missing_hint):
    """Load one of our checkpoints, safely: weights_only refuses arbitrary pickled code.
    missing_hint says what to do if there is none; a function is called only then (it may look
    around the disk for a typo)."""
    return check_ours(read_pt(path, missing_hint), path)


def check_ours(ckpt, path):
    """ckpt, read from path, if train.py of this version wrote it; else one line that says what it is not."""
    if not isinstance(ckpt, dict) or ckpt.get("format") != CKPT_FORMAT:
        raise UserError(f"{path} is not a checkpoint of this project — point to a .pt written by train.py")
    if ckpt.get("version") != CKPT_VERSION:
        raise UserError(f"{path} has checkpoint version {ckpt.get('version')}, this code reads "
                        f"{CKPT_VERSION} — use the matching version of this repo")
    if missing := lacks(ckpt, READ):
        raise UserError(f"{path} has no {missing} as train.py saves it (edited by hand?) — {way_around(path)}")
    for key, config in (("model_config", GPTConfig), ("train_config", TrainConfig)):
        kinds = typing.get_type_hints(config)  # each field's type, as its flag reads it (Annotated's help left off)
        for name, value, kind in ((name, ckpt[key][name], kind) for name, kind in kinds.items()
                                  if name in ckpt[key] and kind in (bool, int, float, str)):  # (compile: or None)
            if not (type(value) is kind or kind is float and type(value) is int):  # (True is an int, but no count)
                raise UserError(f"{path} has {name} {value!r} in its {key}, not the {kind.__name__} train.py saves "
                                f"(edited by hand?) — {way_around(path)}")
    chars = ckpt["vocab"].get("chars")  # one character a token id: decode reads chars[id] for every id the model has
    if not (isinstance(chars, list) and all(isinstance(c, str) and len(c) == 1 for c in chars)
            and len(set(chars)) == len(chars) == ckpt["model_config"].get("vocab_size")):
        raise UserError(f"{path} has a vocab whose characters do not fit its model's vocab_size, as train.py never "
                        f"saves them (edited by hand?) — {way_around(path)}")
    return ckpt


def read_pt(path, missing_hint):
    """What torch.save wrote at path, read with weights_only (tensors, numbers, strings, lists and
    dicts; never code), or None when it is not such a file."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a checkpoint — move it away")
    if not path.is_file():
        raise UserError(f"no checkpoint at {path} — {missing_hint() if callable(missing_hint) else missing_hint}")
    try:
        with warnings.catch_warnings():  # torch warns about some foreign files before refusing them
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError as e:
        raise UserError(f"cannot read {path} ({e.strerror}) — fix its permissions") from None
    except Exception:  # any other failure to unpickle means: not a file we wrote, or not a whole one
        ckpt = None
    if wrong := damage(path):  # (checked after a load that worked too: torch.load reads a flipped bit as a weight)
        raise UserError(f"{path} {wrong}, so it cannot be read — {way_around(path)}")
    return ckpt


def model_from_checkpoint(ckpt, path="the checkpoint"):
    """A loaded checkpoint (read from path) -> the model it holds, weights in place (on the CPU,
    in training mode)."""
    model = build_model(saved_model_config(ckpt, path))
    load_weights(model, ckpt["model"], path, added_since(ckpt))
    return model


def saved_model_config(ckpt, path):
    """The checkpoint's GPTConfig. A setting that model.py's GPTConfig no longer has, or a position or
    activation it no longer knows, is refused: the model it described cannot be built. (A setting
    added since gets its default.)"""
    known, saved = {f.name for f in fields(GPTConfig)}, ckpt["model_config"]
    gone = [name for name in saved if name not in known]
    for name, names in (("position", POSITIONS), ("activation", ACTIVATIONS)):  # (a fork's, say, since undone)
        if name in saved and saved[name] not in names:
            gone.append(f"{name} {saved[name]!r}")
    if gone:
        raise UserError(f"{path} has model settings that model.py no longer has ({', '.join(gone)}) — "
                        f"they were saved by other model code: bring back the model.py that saved them, or train a "
                        f"new run")
    config = GPTConfig(**ckpt["model_config"])
    sizes = ("block_size", "vocab_size") + (("n_layer", "n_head", "n_embd") if config.model == "gpt" else ())
    wrong = [f"{name} {getattr(config, name)}" for name in sizes if getattr(config, name) < 1]
    wrong += [f"dropout {config.dropout}"] if not 0 <= config.dropout < 1 else []
    wrong += [f"n_head {config.n_head}, which does not divide n_embd {config.n_embd}"] if not (
        wrong or config.model != "gpt" or config.n_embd % config.n_head == 0) else []
    if wrong:  # (train.py refuses each: a hand edit, then, checked here and not left to a traceback in model.py)
        raise UserError(f"{path} has {', '.join(wrong)} in its model_config, which train.py never saves (edited by "
                        f"hand?) — {way_around(path)}")
    return config


BIGRAM_FIELDS = ("model", "vocab_size", "block_size")  # the model settings a bigram uses (block_size: its batches)


def added_since(ckpt, given=(), config=GPTConfig):
    """The settings of config (GPTConfig, or TrainConfig for a resume) that a checkpoint was saved without, which
    model.py (or config.py) has gained since, in words ("" for none): their defaults stand in, and one that does not
    rebuild the old run changes it. Which do is not known here, so every one is named. given: settings that a flag
    (--resume's) gives, left out."""
    saved, file = (ckpt["model_config"], "model.py") if config is GPTConfig else (ckpt["train_config"], "config.py")
    added = {f.name: f.default for f in fields(config) if f.name not in saved and f.name not in given}
    if config is GPTConfig and saved.get("model") == "bigram":  # a table: the GPT's settings change nothing
        added = {name: value for name, value in added.items() if name in BIGRAM_FIELDS}
    if not added:
        return ""
    defaults = ", ".join(f"{value!r}" for value in added.values())
    return (f"saved before {file} had {', '.join(added)}: {config.__name__}'s default{'s' * (len(added) > 1)} "
            f"({defaults}) stand{'s' * (len(added) == 1)} in")


def load_weights(model, weights, path, added=""):
    """Strict: every tensor the model has, of the same shape, and no other. A mismatch means that
    model.py has changed since the checkpoint at path was saved (a renamed layer, another width).
    added: added_since's words, which name the likely cause."""
    ours = model.state_dict()
    kinds = [[f"model.py has {name}, the checkpoint does not" for name in ours if name not in weights],
             [f"the checkpoint has {name}, model.py does not" for name in weights if name not in ours],
             [f"{name} is {tuple(weights[name].shape)} in the checkpoint, {tuple(tensor.shape)} in model.py"
              for name, tensor in ours.items() if name in weights and weights[name].shape != tensor.shape]]
    differences = [d for kind in kinds for d in kind]
    if differences:  # two, the first of each kind first: a renamed layer of every block shows both its names
        shown = [kind[0] for kind in kinds if kind][:2]
        differences = shown + [d for d in differences if d not in shown]
        more = f" (and {len(differences) - 2} more)" if len(differences) > 2 else ""
        fix = "they were saved by other model code: bring back the model.py that saved them, or train a new run"
        if added:  # a likely cause: a default that is not the run's value
            more += f"; it was {added}"
            fix = (f"if the run had other values, give them (to --resume as flags, else as GPTConfig's defaults); "
                   f"if not, {fix}")
        raise UserError(f"the weights in {path} do not fit model.py as it is now: {'; '.join(differences[:2])}"
                        f"{more} — {fix}")
    check_finite(weights, path)
    model.load_state_dict(weights)


def check_finite(weights, path):
    """Refuse weights with a nan or inf in them: every score the model gives would be nan, and sampling
    would stop at its first draw with PyTorch's RuntimeError. train.py never saves such weights (a nan
    step is skipped), but a checkpoint edited or written by other code may hold them."""
    bad = [name for name, tensor in weights.items() if tensor.is_floating_point() and not tensor.isfinite().all()]
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise UserError(f"{path} holds nan or inf weights (in {bad[0]}{more}), so it cannot be used (train.py "
                        f"never saves them) — {way_around(Path(path))}")


def load_model(checkpoint=None, out_dir=None):
    """--checkpoint's file, or else a run's folder (--checkpoint's or --out_dir, by default out), -> (the model on
    the CPU in training mode, its checkpoint, the file it came from)."""
    if checkpoint is not None and out_dir is not None:  # one of them would be ignored
        raise UserError(f"--checkpoint {checkpoint} and --out_dir {out_dir} both given — use one of them")
    out_dir = "out" if out_dir is None else out_dir
    path = checkpoint_path(checkpoint, out_dir)
    ckpt = load_checkpoint(path, lambda: no_checkpoint_hint(checkpoint, out_dir))
    return model_from_checkpoint(ckpt, path), ckpt, path


def no_checkpoint_hint(checkpoint=None, out_dir="out", names=("best.pt", "latest.pt")):
    """What to do when there is no checkpoint: fix a typo in the path, fix --checkpoint's path,
    or train into that folder. A run is a folder holding one of names (read_log's: log.csv)."""
    if checkpoint:
        return unless_a_typo(checkpoint, "--checkpoint", lambda p: holds_a_run(p) or is_a_checkpoint_file(p),
                             "check the path: --checkpoint takes a .pt file written by train.py, or a run's folder")
    if (Path(out_dir) / "log.csv").is_file() and written_by_train_py(Path(out_dir) / "log.csv"):  # no checkpoint
        return ("the run in it has not saved one yet (its first evaluation after step 0 does) — wait for that, or, "
                "if it was stopped, start it again with the command that began it")
    if written_by_prepare(out_dir):  # prepare.py's folder, given for train.py's
        runs = "out" if holds_a_run("out", names) else runs_inside("out", names)  # the default's, or those in it
        command = shlex.join(["python", "train.py", "--data_dir", str(out_dir), "--out_dir", str(run_dir_for(out_dir))])
        return (f"{out_dir} holds prepared data, not a run: give --out_dir the folder train.py wrote"
                + (f", such as {runs}" if runs else "") + f", or train one on it: `{command}`")
    inside, default = "", Path(out_dir) == Path("out")
    if default:  # the default: a run may be in a folder inside it (out/bigram, say)
        runs = runs_inside(out_dir, names)
        inside = f"give --out_dir a run in it ({runs}), or " if runs else ""
    return unless_a_typo(out_dir, "--out_dir", lambda p: holds_a_run(p, names) or (default and runs_inside(p, names)),
                         f"{inside}train a model first with `{train_command(out_dir)}`")


def train_command(out_dir):
    """The command that trains into out_dir: --out_dir given unless it is the default, out; and a folder named
    after a preset, as the lessons' out/bigram, gets that --preset."""
    preset = f" --preset {Path(out_dir).name}" if Path(out_dir).name in PRESETS else ""
    where = "" if Path(out_dir) == Path("out") else f" --out_dir {shlex.quote(str(out_dir))}"
    return "python train.py" + preset + where


def runs_inside(out_dir, names=("best.pt", "latest.pt")):
    """The folders in out_dir that hold a run (out/bigram, say), quoted for a command line: up to 3, then '...';
    "" for none."""
    return folders_inside(out_dir, lambda folder: holds_a_run(folder, names))


def holds_a_run(folder, names=("best.pt", "latest.pt")):
    return any(os.path.isfile(Path(folder) / name) for name in names)


def is_a_checkpoint_file(path):
    return os.path.isfile(path) and Path(path).suffix == ".pt"


LOG_HEADER = "iter,train_loss,val_loss,lr,tokens_per_sec,elapsed_s"


def first_line_of(path):
    """A text file's first line, as read ("" for an empty file); None where it cannot be read (a folder, say)."""
    try:
        with open(path, errors="replace", encoding="utf-8-sig") as f:  # (-sig: an editor's byte-order mark)
            return f.readline()
    except OSError:
        return None


def written_by_train_py(log):
    """Whether a log.csv begins with the header train.py writes (or is empty)."""
    first = first_line_of(log)
    return first is not None and (first == "" or first.strip() == LOG_HEADER)


def log_rows(path):
    """log.csv -> (its header, [(line number, row)]). Rows are appended, not written atomically:
    a last row cut short (a crash while it was appended) is left out, and so are blank lines."""
    with open(path, newline="", encoding="utf-8-sig") as f:  # (-sig: a byte-order mark an editor may add)
        lines = [(number, row) for number, row in enumerate(csv.reader(f), start=1) if row]
    header, rows = (lines[0][1], lines[1:]) if lines else ([], [])
    if rows and len(rows[-1][1]) < len(header) and rows[-1][1][0].isdigit():
        rows.pop()
    return header, rows


def read_log(path):
    """log.csv -> (iterations, train losses, val losses)."""
    try:
        header, rows = log_rows(path)
        columns = [dict(zip(header, row)) for _, row in rows]
        points = [(int(r["iter"]), float(r["train_loss"]), float(r["val_loss"])) for r in columns]
    except FileNotFoundError:
        hint = no_checkpoint_hint(out_dir=Path(path).parent, names=("log.csv",))
        raise UserError(f"no training log at {path} — {hint}") from None
    except OSError as e:  # log.csv a folder, say, or one we may not read
        if isinstance(e, NotADirectoryError) and Path(path).parent.is_file():  # --out_dir out/run/best.pt
            raise UserError(f"--out_dir {path.parent} is a file, not a run's folder — use "
                            f"--out_dir {shlex.quote(str(path.parent.parent))}") from None
        raise UserError(f"cannot read {path} ({e.strerror}) — point --out_dir at a run's folder") from None
    except (KeyError, ValueError):
        raise UserError(f"{path} is not a log.csv written by train.py — point --out_dir at a run") from None
    if not points:
        raise UserError(f"{path} has no evaluations yet — train for at least one --eval_interval")
    return tuple(zip(*points))


def checkpoint_path(checkpoint=None, out_dir="out"):
    """The file load_model reads: --checkpoint's file, or else a run folder's best.pt, or its
    latest.pt before the run has a best (a run stopped before its first evaluation after the start)."""
    path = Path(checkpoint or out_dir)
    if not path.is_dir() and checkpoint:
        return path
    if path.is_file():  # a file, given to the flag for a folder
        if is_a_checkpoint_file(path):  # --out_dir out/run/best.pt
            raise UserError(f"--out_dir {path} is a file, not a run's folder — use --checkpoint "
                            f"{shlex.quote(str(path))}, or --out_dir {shlex.quote(str(path.parent))}")
        run = f" ({shlex.quote(str(path.parent))})" if holds_a_run(path.parent) else ""  # (log.csv, or a file out)
        raise UserError(f"--out_dir {path} is a file, not a run's folder — give --out_dir the folder train.py "
                        f"wrote{run}")
    if checkpoint and not holds_a_run(path):
        if not os.access(path, os.X_OK):  # (a checkpoint in it is no file, to a user who may not enter it)
            raise PermissionError(errno.EACCES, "Permission denied", str(path))  # (run_cli's line: what to do)
        raise UserError(f"{path} is a folder without a checkpoint (no best.pt or latest.pt) — point "
                        f"--checkpoint at a run's folder or a .pt file written by train.py")
    if not (path / "best.pt").is_file() and (path / "latest.pt").is_file():
        why = ("is a folder, not a checkpoint" if (path / "best.pt").is_dir() else "is not there (the run stopped "
               "before its first evaluation after iteration 0's, which saves nothing, or it was moved away)")
        print(f"note: {path / 'best.pt'} {why}; using latest.pt", file=sys.stderr)
        return path / "latest.pt"
    return path / "best.pt"


def rng_states(data_generator, device=torch.device("cpu")):
    """The random-number states to resume from (collective: every DDP process must call it).

    Dropout draws from the CPU generator, or on a GPU from that GPU's own generator, and
    differs per process: "torch" and "cuda" are this process's, "torch_ranks" and
    "cuda_ranks" every process's (under DDP)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()  # nothing here draws from numpy or Python's
    version, mt, gauss_next = random.getstate()            # random, but a fork's additions might: keep them too
    states = {"torch": torch.get_rng_state(), "data": data_generator.get_state(),
              "numpy": [torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
              "python": [version, list(mt), gauss_next]}
    if device.type == "cuda":  # this process's GPU only: another machine may have fewer
        states["cuda"] = torch.cuda.get_rng_state(device)
    if dist.is_initialized():
        for name in [n for n in ("torch", "cuda") if n in states]:
            states[f"{name}_ranks"] = [None] * dist.get_world_size()
            dist.all_gather_object(states[f"{name}_ranks"], states[name])
    return states


def numpy_and_python(states):
    """numpy's and Python's random states as their set_state and setstate take them, from rng_states' lists."""
    keys, pos, has_gauss, gauss = states["numpy"]
    version, mt, gauss_next = states["python"]
    return ("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, gauss), (version, tuple(mt), gauss_next)


def set_rng_states(states, data_generator, rank=0, world_size=1, device=torch.device("cpu")):
    """The data generator is the same in every process; the dropout states are per process.
    -> notes on what could not be restored (another number of processes, another device)."""
    data_generator.set_state(states["data"])
    numpy_state, python_state = numpy_and_python(states)
    np.random.set_state(numpy_state)
    random.setstate(python_state)
    notes = []
    saved_by = len(states.get("torch_ranks", [None]))  # how many processes saved the run
    if saved_by != world_size:  # process 0 carries on as process 0 did; the others start from their seeds
        notes.append(f"note: the run was saved by {saved_by} process(es) and resumes in {world_size}: "
                     f"only process 0 keeps its dropout random state")
    for name in ("torch", "cuda"):
        if name not in states or (name == "cuda" and device.type != "cuda"):
            continue
        saved = states.get(f"{name}_ranks", [states[name]])
        own = saved[rank] if saved_by == world_size else saved[0] if rank == 0 else None
        if own is not None and name == "torch":
            torch.set_rng_state(own)
        elif own is not None:
            torch.cuda.set_rng_state(own, device)
    if "cuda" in states and device.type != "cuda":
        notes.append(f"note: the run was saved on a GPU and resumes on {device.type}: dropout's random "
                     f"numbers will differ from the uninterrupted run")
    elif "cuda" not in states and device.type == "cuda":
        notes.append("note: the run was saved without a GPU: dropout's random numbers on this GPU start "
                     "from the seed")
    return notes


def what_is_sampled(path, ckpt):
    """One line on which checkpoint this samples, and from how far into its run. A best.pt
    whose run went on past it (its val loss did not improve after) points to its latest.pt."""
    line = f"sampling {path}: iteration {ckpt['iter']:,}"
    if path.name == "best.pt":
        rows = evaluations(path.parent / "log.csv")
        saved = [row for row in rows if row[0] > 0]  # (iteration 0's evaluation, the untrained model, is never saved)
        lowest = min(saved, key=lambda row: row[1], default=None)
        if lowest and lowest[1] < ckpt["best_val_loss"] - 1e-5:  # (the log rounds to 6 decimals)
            line += (f", val loss {ckpt['best_val_loss']:.4f}, not the run's best: log.csv has {lowest[1]:.4f} at "
                     f"iteration {lowest[0]:,} (its best.pt was deleted or replaced)")
        else:
            line += f", val loss {ckpt['best_val_loss']:.4f}, the run's best"
        last = rows[-1] if rows else None
        if last and last[0] > ckpt["iter"] and (path.parent / "latest.pt").is_file():
            line += (f"; the run's last evaluation, at iteration {last[0]:,}, gave {last[1]:.4f} "
                     f"(--checkpoint {shlex.quote(str(path.parent / 'latest.pt'))} samples the run's last state)")
    if added := added_since(ckpt):
        line += f"; it was {added}"
    return line


def evaluations(log_path):
    """[(iteration, val loss)] of a run's log.csv, one for each of its rows, or [] without one."""
    try:
        iters, _, val = read_log(log_path)
    except (UserError, OSError):  # no log, an empty one, one not ours, or one we may not read
        return []
    return list(zip(iters, val))
