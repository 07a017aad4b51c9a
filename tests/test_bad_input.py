"""The bad-input catalogue: each case is a mistake a user can make, and each must give one
line, `error: what went wrong — what to do`, exit code 2, and leave every file as it was.
docs/errors.md lists the same cases (a test below checks that the two lists agree)."""

import gc
import json
import os
import pickle
import re
import shutil
import sys
import warnings
import zipfile
from importlib.machinery import ModuleSpec
from pathlib import Path

import numpy as np
import pytest
import torch

from lessons import babygpt
from lessons import buildup
from lessons import plot
import prepare
import sample
import train
from config import PRESETS
from conftest import TINY
from machinery.cli import run_cli

ROOT = Path(__file__).resolve().parents[1]
T = TINY + ["--data_dir", "data", "--out_dir", "new"]  # a fresh run on the prepared test text


def truncate(path, size):
    def setup(work):
        with open(work / path, "r+b") as f:
            f.truncate(size)
    return setup


def write(path, content):
    def setup(work):
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_bytes(content)
    return setup


def lowercased(folder):
    """folder's vocab.json as a fork's prepare.py that lowercases the text would have written it, from the same text."""
    def setup(work):
        vocab = json.loads((work / folder / "vocab.json").read_text())
        vocab["chars"] = sorted(set("".join(vocab["chars"]).lower()))
        vocab["vocab_size"] = len(vocab["chars"])
        (work / folder / "vocab.json").write_text(json.dumps(vocab))
    return setup


def remove(path):
    def setup(work):
        (work / path).unlink()
    return setup


def past_best(work):
    """latest.pt deleted, after the run had gone on past its best.pt (a best.pt that is the run's last evaluation,
    the resume copies to latest.pt itself)."""
    (work / "run" / "latest.pt").unlink()
    with open(work / "run" / "log.csv", "a") as f:
        f.write("1000,1.0,9.0,0.0001,100.0,9.0\n")


def folder_in_place(path):
    def setup(work):
        (work / path).unlink()
        (work / path).mkdir()
    return setup


def append(path, line):
    def setup(work):
        with open(work / path, "ab" if isinstance(line, bytes) else "a") as f:
            f.write(line)
    return setup


def drop_first_line(path):
    def setup(work):
        (work / path).write_text("".join((work / path).read_text().splitlines(keepends=True)[1:]))
    return setup


def short_train(work):
    """train.bin cut to 10 tokens, and vocab.json edited to match: too few for one window of the block."""
    edit_vocab(train_tokens=10)(work)
    truncate("data/train.bin", 20)(work)


def empty_val(work):
    """val.bin emptied, and vocab.json edited to match: each agrees with the other, but there is nothing to score."""
    edit_vocab(val_tokens=0)(work)
    truncate("data/val.bin", 0)(work)


def edit_vocab(**changes):
    """vocab.json with some values changed, as a hand edit would."""
    def setup(work):
        path = work / "data/vocab.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | changes))
    return setup


def big_token_id(work):
    with open(work / "data/train.bin", "r+b") as f:
        f.seek(10)
        f.write(np.array([60000], dtype=np.uint16).tobytes())


def garble_a_name(source, target):
    """A copy of a checkpoint with one byte of the zip directory's first file name changed to one that
    is not UTF-8: zipfile then raised UnicodeDecodeError, a traceback, where BadZipFile was caught."""
    def setup(work):
        data = bytearray((work / source).read_bytes())
        data[data.find(b"PK\x01\x02") + 46] = 0xFF  # 46: the directory entry's fixed part, then the name
        (work / target).write_bytes(data)
    return setup


def flip_a_bit(path):
    """One bit flipped in the middle of a checkpoint's largest tensor, as a failing disk or memory does: torch.load
    reads it as a weight like any other, so only the zip's checksum of that tensor's bytes can tell."""
    def setup(work):
        with zipfile.ZipFile(work / path) as archive:
            largest = max(archive.infolist(), key=lambda info: info.file_size)
        data = bytearray((work / path).read_bytes())
        start = largest.header_offset + 30 + int.from_bytes(data[largest.header_offset + 26:][:2], "little") \
            + int.from_bytes(data[largest.header_offset + 28:][:2], "little")  # 30: the local header, then name, extra
        data[start + largest.file_size // 2] ^= 1
        (work / path).write_bytes(data)
    return setup


def edit_checkpoint(source, target, edit):
    """A copy of a run's checkpoint, changed by edit(ckpt): what a newer repo, or model code
    changed since the run was saved, would meet."""
    def setup(work):
        ckpt = torch.load(work / source, weights_only=True)
        edit(ckpt)
        torch.save(ckpt, work / target)
    return setup


def trained_on(data_dir):
    """run/latest.pt as if it had been trained from this folder on data_dir (the template's run names a folder of
    the test machine)."""
    return edit_checkpoint("run/latest.pt", "run/latest.pt",
                           lambda ckpt: ckpt["train_config"].update(data_dir=data_dir))


def rename_c_fc(ckpt):  # model.py's MLP.c_fc, called fc_in when the run was saved: in every block
    for name in [name for name in ckpt["model"] if ".mlp.c_fc." in name]:
        ckpt["model"][name.replace(".c_fc.", ".fc_in.")] = ckpt["model"].pop(name)


def narrow_c_fc(ckpt):  # saved when the MLP widened 3x, not 4x
    ckpt["model"]["transformer.h.0.mlp.c_fc.weight"] = ckpt["model"]["transformer.h.0.mlp.c_fc.weight"][:96]


def add_a_setting(ckpt):  # saved when GPTConfig had a setting it has since lost
    ckpt["model_config"]["swiglu"] = True


def setting(name, value):  # saved by a fork's model.py (a rotary run, an activation the repo lacks)
    def edit(ckpt):
        ckpt["model_config"][name] = value
    return edit


def a_nan_weight(ckpt):  # written by other code: train.py never saves one
    ckpt["model"]["transformer.h.0.attn.c_attn.weight"][0, 0] = float("nan")


def newer_version(ckpt):
    ckpt["version"] = 99


class Evil:
    """Unpickling this runs a command: what a malicious checkpoint would do."""
    def __reduce__(self):
        return (os.system, ("touch pwned",))


# (id, script, argv, part of the message, setup(workspace) or None)
CASES = [
    ("prepare-missing-input", prepare, ["--input", "texts/nope.txt"], "no such file: texts/nope.txt", None),
    ("prepare-input-typo", prepare, ["--input", "texts/play.tx"],
     "no such file: texts/play.tx — did you mean --input texts/play.txt?", None),
    ("prepare-input-and-url", prepare, ["--input", "texts/play.txt", "--url", "https://example.com/other.txt"],
     "--input and --url both given — --url is where the download comes from: drop one of them", None),
    ("prepare-input-dash", prepare, ["--input", "-"],
     "no such file: - — to read from a pipe, give --input /dev/stdin", None),
    ("prepare-empty-input", prepare, ["--input", "texts/empty.txt"], "has only 0 characters", None),
    ("prepare-input-prepared-file", prepare, ["--input", "data/train.bin"],
     "data/train.bin is what prepare.py wrote, not a text — give --input the text file it was prepared from", None),
    ("prepare-binary-input", prepare, ["--input", "texts/photo.bin"], "contains NUL bytes, so it looks binary", None),
    ("prepare-not-utf8", prepare, ["--input", "texts/latin1.txt"],
     "is not valid UTF-8 (byte 3, line 1) — re-save it as UTF-8; from Windows-1252 (most older Windows text), "
     "for example: iconv -f cp1252 -t utf-8 texts/latin1.txt > texts/latin1-utf8.txt", None),
    ("prepare-utf16", prepare, ["--input", "texts/notepad.txt"], "texts/notepad.txt is UTF-16, not UTF-8 — re-save "
     "it as UTF-8, for example: iconv -f utf-16 -t utf-8 texts/notepad.txt > texts/notepad-utf8.txt",
     write("texts/notepad.txt", "To be, or not to be\n".encode("utf-16"))),
    ("prepare-utf16-without-bom", prepare, ["--input", "texts/export.txt"], "texts/export.txt looks like UTF-16 "
     "(utf-16le), not UTF-8 — re-save it as UTF-8, for example: iconv -f utf-16le -t utf-8 texts/export.txt > "
     "texts/export-utf8.txt", write("texts/export.txt", "To be, or not to be\n".encode("utf-16-le"))),
    ("prepare-input-empty", prepare, ["--input", ""], "--input is empty — give a path", None),
    ("prepare-out-dir-has-other-data", prepare, ["--input", "texts/digits.txt", "--out_dir", "data"],
     "data already holds data prepared from a different text (play.txt; an edited file counts as different) — "
     "choose another --out_dir, or move data away first", None),
    ("prepare-out-dir-has-other-bins", prepare, ["--input", "texts/play.txt", "--out_dir", "nano"],
     "nano holds train.bin, with other ids and no vocab.json (another tool's data, such as nanoGPT's?) — choose "
     "another --out_dir, or move them away first", write("nano/train.bin", b"nanoGPT's ids, say")),
    ("prepare-out-dir-encoded-otherwise", prepare, ["--input", "texts/play.txt", "--out_dir", "data"],
     "data already holds this text encoded another way (25 characters in its vocabulary, 43 now: prepare.py changed "
     "since?), which a run trained on it may still need — choose another --out_dir, or move data away first",
     lowercased("data")),
    ("prepare-download-target-taken", prepare, ["--out_dir", "mine"], "mine/input.txt exists but is not the expected",
     write("mine/input.txt", b"my own notes\n")),
    ("prepare-url-not-an-address", prepare, ["--url", "notaurl", "--out_dir", "dl"], "'notaurl' is not an address to "
     "download from (http:// or https://) — fix --url, or pass a local copy with --input FILE", None),
    ("prepare-input-is-a-folder", prepare, ["--input", "texts"], "texts is a folder, not a file", None),
    ("prepare-out-dir-is-a-file", prepare, ["--input", "texts/play.txt", "--out_dir", "texts/digits.txt"],
     "cannot make the folder texts/digits.txt (File exists) — choose another --out_dir", None),
    ("prepare-out-dir-under-a-file", prepare, ["--input", "texts/play.txt", "--out_dir", "texts/digits.txt/data"],
     "cannot make the folder texts/digits.txt/data (Not a directory) — choose another --out_dir", None),
    ("prepare-out-dir-cannot-be-made", prepare, ["--input", "texts/play.txt", "--out_dir", "/proc/x"],
     "cannot make the folder /proc/x (No such file or directory) — choose another --out_dir", None),
    ("prepare-unknown-flag", prepare, ["--inptu", "a.txt"],
     "unknown argument --inptu — did you mean --input? (--help lists every flag)", None),
    ("prepare-input-without-its-flag", prepare, ["texts/play.txt"],
     "unknown argument texts/play.txt — did you mean --input texts/play.txt? (--help lists every flag)", None),
    ("prepare-endless-input", prepare, ["--input", "/dev/zero"], "/dev/zero is over 256 MiB, more than this repo "
     "prepares (it reads the whole text into memory, about 7 bytes a character of plain text at the peak) — give a "
     "smaller text, or a piece of it", None),

    ("prepare-into-a-run", prepare, ["--input", "texts/play.txt", "--out_dir", "run"],
     "run holds a training run (its checkpoints) — prepare the data into a folder of its own: leave --out_dir out, "
     "and prepare.py picks data/ and the text's name", None),
    ("train-unknown-preset", train, T + ["--preset", "shakespear"],
     "invalid choice: 'shakespear' — did you mean shakespeare? (--help lists the choices)", None),
    ("train-flag-given-a-value", train, T + ["--resume=true"],
     "argument --resume: ignored explicit argument 'true' — --resume takes no value: write --resume alone", None),
    ("train-unknown-flag", train, T + ["--lrr", "1e-3"],
     "unknown argument --lrr — did you mean --lr? (--help lists every flag)", None),
    ("train-data-without-its-flag", train, ["data"],
     "unknown argument data — did you mean --data_dir data? (--help lists every flag)", None),
    ("train-preset-without-value", train, T + ["--preset", "--max_iters", "5"],
     f"argument --preset: expected one argument — give --preset one of: {', '.join(PRESETS)}", None),
    ("train-not-a-number", train, T + ["--lr", "fast"], "invalid float value: 'fast'", None),
    ("train-not-a-bool", train, T + ["--bias", "maybe"], "expected true or false, got 'maybe'", None),
    ("train-zero-size", train, T + ["--n_layer", "0"], "--n_layer 0 must be at least 1", None),
    ("train-negative-size", train, T + ["--batch_size", "-4"], "--batch_size -4 must be at least 1", None),
    ("train-count-too-large", train, T + ["--eval_iters", "9223372036854775808"],
     "--eval_iters is 9,223,372,036,854,775,808, above 1,000,000,000, the most a count may be — give a smaller "
     "number",
     None),
    ("train-heads-do-not-divide", train, T + ["--n_embd", "30", "--n_head", "4"],
     "n_embd 30 is not divisible by n_head 4 — pick sizes where it is, e.g. --n_head 5 or --n_embd 32", None),
    ("train-dropout-out-of-range", train, T + ["--dropout", "1.5"], "--dropout 1.5 is outside [0, 1)", None),
    ("train-zero-lr", train, T + ["--lr", "0"],
     "--lr is 0.0, but it must be above 0 and finite — e.g. the preset's value, which --help shows", None),
    ("train-huge-lr", train, T + ["--lr", "1e300"], "--lr is 1e+300, above 1e+06, far past any learning rate that "
     "trains — e.g. the preset's value, which --help shows", None),
    ("train-beta-out-of-range", train, T + ["--beta2", "1.5"],
     "--beta2 1.5 is outside [0, 1) — e.g. --beta2 0.99", None),
    ("train-min-lr-above-lr", train, T + ["--lr", "1e-4"],
     "--min_lr 0.0008 is above --lr 0.0001 — give a lower --min_lr too, e.g. --min_lr 1e-05", None),
    ("train-seed-too-large", train, T + ["--seed", "99999999999999999999"],
     "--seed 99999999999999999999 does not fit in 64 bits", None),
    ("train-out-dir-empty", train, TINY + ["--data_dir", "data", "--out_dir", ""], "--out_dir is empty", None),
    ("train-unknown-model", train, T + ["--model", "trigram"], "--model 'trigram' is unknown", None),
    ("train-unknown-attention", train, T + ["--attention", "flash"], "--attention 'flash' is unknown", None),
    ("train-negative-nan-skips", train, T + ["--max_nan_skips", "-1"], "--max_nan_skips -1 must be 0 or more", None),
    ("train-unknown-device", train, T + ["--device", "tpu"], "--device 'tpu' is unknown", None),
    ("train-device-not-a-device", train, T + ["--device", "cpu:abc"], "--device 'cpu:abc' is not a device", None),
    ("train-cuda-without-gpu", train, T + ["--device", "cuda"], "PyTorch sees no CUDA GPU here", None),
    ("train-unknown-dtype", train, T + ["--dtype", "fp8"], "--dtype 'fp8' is unknown", None),
    ("train-muon-with-float16", train, T + ["--optimizer", "muon", "--dtype", "float16"],
     "--optimizer muon does not work with float16's loss scaling — use --dtype bfloat16", None),
    ("train-unknown-optimizer", train, T + ["--optimizer", "adam"],
     "--optimizer 'adam' is unknown — use adamw or muon", None),
    ("train-unknown-compile-mode", train, T + ["--compile_mode", "fast"], "--compile_mode 'fast' is unknown — use "
     "default, reduce-overhead, max-autotune or max-autotune-no-cudagraphs", None),
    ("train-no-data", train, TINY + ["--data_dir", "nowhere", "--out_dir", "new"], "no prepared data in nowhere", None),
    ("train-data-dir-typo", train, TINY + ["--data_dir", "dta", "--out_dir", "new"],
     "no prepared data in dta (no vocab.json) — did you mean the prepared folder beside it, --data_dir data? If not, "
     "run `python prepare.py", None),
    ("train-data-dir-holds-prepared-folders", train, TINY + ["--data_dir", "sets", "--out_dir", "new"],
     "no prepared data in sets (no vocab.json) — give --data_dir a prepared folder inside it: sets/play",
     lambda work: shutil.copytree(work / "data", work / "sets" / "play")),
    ("train-data-dir-is-a-file", train, TINY + ["--data_dir", "texts/play.txt", "--out_dir", "new"],
     "--data_dir texts/play.txt is a file, not a prepared folder — prepare it first with `python prepare.py --input "
     "texts/play.txt`, then give the folder that prints", None),
    ("train-data-dir-a-file-in-it", train, TINY + ["--data_dir", "data/train.bin", "--out_dir", "new"],
     "--data_dir data/train.bin is a file of a prepared folder — give the folder: --data_dir data", None),
    ("train-bin-is-a-folder", train, TINY + ["--data_dir", "data", "--out_dir", "new"],
     "data/train.bin is a folder, where prepare.py writes the ids — move it away, then run `python prepare.py "
     "--input YOUR_TEXT_FILE --out_dir data` again",
     folder_in_place("data/train.bin")),
    ("train-data-dir-of-another-tool", train, TINY + ["--data_dir", "nano", "--out_dir", "new"],
     "nano holds a train.bin but no vocab.json — if prepare.py stopped before its end, run `python prepare.py "
     "--input YOUR_TEXT_FILE --out_dir nano` again; if it is another tool's data (nanoGPT's?), prepare the text into "
     "a new folder, with --out_dir", write("nano/train.bin", b"nanoGPT's ids, say")),
    ("train-data-dir-is-a-run", train, TINY + ["--data_dir", "run", "--out_dir", "new"],
     "run holds a training run, not prepared data — give --data_dir the folder prepare.py wrote (data/shakespeare by "
     "default)", None),
    ("train-out-dir-is-the-data", train, TINY + ["--data_dir", "data", "--out_dir", "data/"],
     "--out_dir and --data_dir are the same folder, data: the run's files would mix with the data's — give the run a "
     "folder of its own, e.g. --out_dir out/NAME", None),
    ("train-foreign-vocab", train, T, "data/vocab.json was not written by prepare.py", write("data/vocab.json", b"{}")),
    ("train-vocab-nested-deep", train, T, "data/vocab.json was not written by prepare.py — move it away, then run "
     "`python prepare.py --input YOUR_TEXT_FILE --out_dir data`", write("data/vocab.json", b"[" * 10 ** 5)),
    ("train-vocab-missing-keys", train, T, "data/vocab.json has no chars or vocab_size or dtype or train_tokens or "
     "val_tokens or version (edited by hand?) — move it away, then run `python prepare.py --input YOUR_TEXT_FILE "
     "--out_dir data`",
     write("data/vocab.json", b'{"format": "char-gpt-vocab"}')),
    ("train-vocab-edited-badly", train, T, "data/vocab.json has a vocab_size and a train_tokens that prepare.py "
     "would not write (edited by hand?) — move it away, then run `python prepare.py --input YOUR_TEXT_FILE --out_dir "
     "data`", edit_vocab(vocab_size=99, train_tokens="1000")),
    ("train-vocab-other-version", train, T, "data/vocab.json is vocab.json version 2, where this prepare.py writes "
     "version 1 — move it away, then run `python prepare.py --input YOUR_TEXT_FILE --out_dir data`",
     edit_vocab(version=2)),
    ("train-vocab-empty-split", train, T, "data/vocab.json has a val_tokens that prepare.py would not write (edited "
     "by hand?)", empty_val),
    ("train-bin-not-whole-tokens", train, T, "val.bin has 101 bytes, not a whole number of uint16 tokens",
     truncate("data/val.bin", 101)),
    ("train-bin-shorter-than-vocab-says", train, T, "val.bin has 50 tokens, but vocab.json says",
     truncate("data/val.bin", 100)),
    ("train-token-id-too-big", train, T, "holds token id 60000, but the vocabulary has only", big_token_id),
    ("train-val-shorter-than-block", train, T + ["--block_size", "5000"],
     "data/val.bin has 2,128 tokens, not more than block_size 5000", None),
    ("train-train-shorter-than-block", train, T, "data/train.bin has 10 tokens, not more than block_size 16 — use a "
     "longer text or a smaller --block_size", short_train),
    ("train-out-dir-holds-a-run", train, TINY + ["--data_dir", "data", "--out_dir", "run"],
     "run already holds a run (latest.pt) — add --resume", None),
    ("train-out-dir-holds-a-run-other-preset", train, ["--preset", "classic-cpu"] + TINY + ["--data_dir", "data",
     "--out_dir", "run"], "choose a new --out_dir for this --preset classic-cpu run (e.g. --out_dir out/classic-cpu), "
     "or continue that one: python train.py --resume --out_dir run", None),  # (--resume --preset: refused, if other)
    ("train-out-dir-holds-another-log", train, TINY + ["--data_dir", "data", "--out_dir", "mine"],
     "mine/log.csv was not written by train.py, and a new run would write over it — move it away to keep it, or "
     "choose a new --out_dir", write("mine/log.csv", b"my,important\n1,2\n")),
    ("train-cuda-without-gpu-into-a-run", train, TINY + ["--data_dir", "data", "--out_dir", "run", "--device", "cuda"],
     "PyTorch sees no CUDA GPU here", None),  # told first: what the out_dir holds comes after
    ("train-out-dir-not-writable", train, TINY + ["--data_dir", "data", "--out_dir", "texts/play.txt/out"],
     "cannot write in texts/play.txt/out (Not a directory)", None),
    ("train-resume-nothing", train, T + ["--resume"], "no checkpoint at new/latest.pt", None),
    ("train-resume-runs-inside", train, TINY + ["--data_dir", "data", "--out_dir", "out", "--resume"],
     "no checkpoint at out/latest.pt — give --out_dir a run in it (out/poems), or run without --resume",
     lambda work: shutil.copytree(work / "run", work / "out" / "poems")),
    ("train-resume-only-best", train, TINY + ["--data_dir", "data", "--out_dir", "run", "--resume"],
     "no checkpoint at run/latest.pt — only best.pt is there; to resume from it, copy it: "
     "cp run/best.pt run/latest.pt",
     past_best),
    ("train-resume-out-dir-is-the-checkpoint", train, TINY + ["--data_dir", "data", "--out_dir", "run/latest.pt",
                                                              "--resume"],
     "--out_dir run/latest.pt is a file, not a run's folder — use --out_dir run", None),
    ("train-resume-empty-checkpoint", train, TINY + ["--data_dir", "data", "--out_dir", "run", "--resume"],
     "run/latest.pt is empty (0 bytes), so it cannot be read — to resume from the best evaluation instead, copy "
     "run/best.pt over it, or use a backup", truncate("run/latest.pt", 0)),
    ("train-resume-out-dir-typo", train, TINY + ["--data_dir", "data", "--out_dir", "rn", "--resume"],
     "no checkpoint at rn/latest.pt — did you mean --out_dir run? If not, there is nothing to resume", None),
    ("train-resume-other-shape", train, TINY + ["--data_dir", "data", "--out_dir", "run", "--resume", "--n_embd", "64"],
     "the checkpoint has n_embd=32 (given: 64); its weights (and optimizer state) belong to that setup", None),
    ("train-resume-other-text", train, TINY + ["--data_dir", "reversed", "--out_dir", "run", "--resume"],
     "reversed was prepared from another text than the checkpoint's (play.txt) — resume with the --data_dir it was "
     "trained on (data)", trained_on("data")),
    ("train-resume-other-vocabulary", train, TINY + ["--data_dir", "digits", "--out_dir", "run", "--resume"],
     "digits has a different vocabulary from the checkpoint — resume with the --data_dir it was trained on (data), "
     "or train a new run with another --out_dir", trained_on("data")),
    ("train-resume-data-prepared-again", train, TINY + ["--data_dir", "reversed", "--out_dir", "run", "--resume"],
     "reversed was prepared from another text than the checkpoint's (play.txt) — prepare the run's text (play.txt) "
     "into a folder of its own and resume with it, or train a new run with another --out_dir", trained_on("reversed")),
    ("train-resume-data-moved", train, TINY + ["--out_dir", "run", "--resume", "--max_iters", "16"],
     "the run in run was trained on --data_dir moved (a path from the folder the run was started in), which holds "
     "no prepared data now — resume from that folder, or with --data_dir NEW_PLACE if the data moved, or prepare the "
     "run's text (play.txt) again: python prepare.py --input YOUR_TEXT_FILE --out_dir moved",
     trained_on("moved")),
    ("train-resume-other-preset", train,
     ["--data_dir", "data", "--out_dir", "run", "--resume", "--preset", "shakespeare"],
     "the checkpoint has block_size=16 (preset shakespeare: 256), n_layer=2 (preset shakespeare: 6), n_head=2 "
     "(preset shakespeare: 6), n_embd=32 (preset shakespeare: 384), position=rotary (GPTConfig's default: learned), "
     "qk_norm=True (GPTConfig's default: False), optimizer=muon (TrainConfig's default: adamw); its weights (and "
     "optimizer state) belong to that setup — resume with the preset and flags the run was started with, or with "
     "--resume and --out_dir alone", None),
    ("train-resume-preset-of-another-model", train,
     TINY + ["--data_dir", "data", "--out_dir", "run", "--resume", "--preset", "classic-cpu"],
     "the checkpoint has position=rotary (GPTConfig's default: learned), qk_norm=True (GPTConfig's default: False), "
     "optimizer=muon (TrainConfig's default: adamw); its weights (and optimizer state) belong to that setup", None),
    ("train-resume-position-gone", train, TINY + ["--data_dir", "data", "--out_dir", "run", "--resume"],
     "run/latest.pt has model settings that model.py no longer has (position 'xpos') — they were saved by other "
     "model code", edit_checkpoint("run/latest.pt", "run/latest.pt", setting("position", "xpos"))),
    ("train-resume-finished", train, TINY + ["--data_dir", "data", "--out_dir", "run", "--resume"],
     "the run in run is at iteration 12 and --max_iters is 12, so there is nothing to train — to train on, give a "
     "larger one, e.g. --max_iters 24", None),
    ("train-resume-behind", train, TINY + ["--data_dir", "data", "--out_dir", "run", "--resume", "--max_iters", "8"],
     "the run in run is at iteration 12 and --max_iters is 8, so there is nothing to train", None),
    ("train-resume-log-edited", train,
     TINY + ["--data_dir", "data", "--out_dir", "run", "--resume", "--max_iters", "16"],
     "run/log.csv line 6 is not a row train.py wrote ('note: lr too high?') — fix or delete that line, then resume",
     append("run/log.csv", "note: lr too high?\n")),
    ("train-resume-log-header-gone", train,
     TINY + ["--data_dir", "data", "--out_dir", "run", "--resume", "--max_iters", "16"],
     "run/log.csv line 1 is not train.py's header, iter,train_loss,val_loss,lr,tokens_per_sec,elapsed_s — put that "
     "line back first, then resume", drop_first_line("run/log.csv")),
    ("train-resume-log-not-text", train,
     TINY + ["--data_dir", "data", "--out_dir", "run", "--resume", "--max_iters", "16"],
     "run/log.csv line 6 holds bytes that are not text, so train.py did not write it — fix or delete that line, "
     "then resume", append("run/log.csv", b"16,2.9\xff\xfe\n")),
    ("train-resume-bit-flipped-checkpoint", train, TINY + ["--data_dir", "data", "--out_dir", "run", "--resume"],
     "run/latest.pt is damaged (its data fails the checksum saved with it), so it cannot be read — to resume from "
     "the best evaluation instead, copy run/best.pt over it, or use a backup", flip_a_bit("run/latest.pt")),
    ("train-resume-nan-weights", train,
     TINY + ["--data_dir", "data", "--out_dir", "run", "--resume", "--max_iters", "24"],
     "run/latest.pt holds nan or inf weights (in transformer.h.0.attn.c_attn.weight), so it cannot be used (train.py "
     "never saves them) — to resume from the best evaluation instead, copy run/best.pt over it, or use a backup",
     edit_checkpoint("run/latest.pt", "run/latest.pt", a_nan_weight)),
    ("train-resume-no-optimizer", train, TINY + ["--data_dir", "data", "--out_dir", "run", "--resume"],
     "run/latest.pt has no optimizer as train.py saves it, which a resume needs (edited by hand?) — to resume from "
     "the best evaluation instead, copy run/best.pt over it, or use a backup",
     edit_checkpoint("run/latest.pt", "run/latest.pt", lambda ckpt: ckpt.pop("optimizer"))),
    ("train-resume-setting-of-another-kind", train, TINY + ["--data_dir", "data", "--out_dir", "run", "--resume"],
     "run/latest.pt has n_layer '2' in its model_config, not the int train.py saves (edited by hand?) — to resume "
     "from the best evaluation instead, copy run/best.pt over it, or use a backup",
     edit_checkpoint("run/latest.pt", "run/latest.pt", lambda ckpt: ckpt["model_config"].update(n_layer="2"))),
    ("train-resume-random-state-edited", train, TINY + ["--data_dir", "data", "--out_dir", "run", "--resume"],
     "run/latest.pt's rng is not as train.py saves it (edited by hand?) — to resume from the best evaluation "
     "instead, copy run/best.pt over it, or use a backup",
     edit_checkpoint("run/latest.pt", "run/latest.pt", lambda ckpt: ckpt["rng"].update(python=[3]))),
    ("train-resume-schedule-edited", train, TINY + ["--data_dir", "data", "--out_dir", "run", "--resume"],
     "run/latest.pt's extended_at is not as train.py saves it (edited by hand?) — to resume from the best "
     "evaluation instead, copy run/best.pt over it, or use a backup",
     edit_checkpoint("run/latest.pt", "run/latest.pt", lambda ckpt: ckpt.update(extended_at="12"))),
    ("train-resume-foreign-file", train, TINY + ["--data_dir", "data", "--out_dir", "run", "--resume"],
     "run/latest.pt is not a checkpoint of this project", write("run/latest.pt", b"not a checkpoint")),
    ("train-resume-model-code-changed", train, TINY + ["--data_dir", "data", "--out_dir", "run", "--resume",
                                                       "--max_iters", "24"],
     "the weights in run/latest.pt do not fit model.py as it is now: transformer.h.0.mlp.c_fc.weight is (96, 32) "
     "in the checkpoint, (128, 32) in model.py — they were saved by other model code: bring back the model.py that "
     "saved them, or train a new run", edit_checkpoint("run/latest.pt", "run/latest.pt", narrow_c_fc)),

    ("sample-no-checkpoint", sample, ["--out_dir", "new"],
     "no checkpoint at new/best.pt — train a model first with `python train.py --out_dir new`", None),
    ("sample-run-inside-out", sample, [], "no checkpoint at out/best.pt — give --out_dir a run in it (out/bigram), "
     "or train a model first with `python train.py`", write("out/bigram/best.pt", b"a run's checkpoint, unread")),
    ("sample-run-not-saved-yet", sample, ["--out_dir", "early"], "no checkpoint at early/best.pt — the run in it has "
     "not saved one yet (its first evaluation after step 0 does) — wait for that, or, if it was stopped, start it "
     "again with the command that began it", write("early/log.csv", b"iter,train_loss,val_loss,lr,tokens_per_sec,"
                                                   b"elapsed_s\n0,4.2,4.2,0,0,1.5\n")),
    ("sample-checkpoint-no-vocab", sample, ["--out_dir", "run"], "run/best.pt has no vocab as train.py saves it "
     "(edited by hand?) — give --checkpoint run/latest.pt instead, or use a backup",
     edit_checkpoint("run/best.pt", "run/best.pt", lambda ckpt: ckpt.update(vocab=None))),
    ("sample-checkpoint-vocab-cut", sample, ["--out_dir", "run"], "run/best.pt has a vocab whose characters do not "
     "fit its model's vocab_size, as train.py never saves them (edited by hand?) — give --checkpoint run/latest.pt "
     "instead, or use a backup", edit_checkpoint("run/best.pt", "run/best.pt",
                                                 lambda ckpt: ckpt["vocab"].update(chars=ckpt["vocab"]["chars"][:-5]))),
    ("sample-out-dir-typo", sample, ["--out_dir", "rn"], "no checkpoint at rn/best.pt — did you mean --out_dir run? "
     "If not, train a model first with `python train.py --out_dir rn`", None),
    ("sample-out-dir-is-prepared-data", sample, ["--out_dir", "data"], "no checkpoint at data/best.pt — data holds "
     "prepared data, not a run: give --out_dir the folder train.py wrote, or train one on it: `python train.py "
     "--data_dir data --out_dir out/data`", None),
    ("sample-out-dir-is-prepared-data-beside-a-run", sample, ["--out_dir", "data"], "no checkpoint at data/best.pt — "
     "data holds prepared data, not a run: give --out_dir the folder train.py wrote, such as out, or train one on "
     "it: `python train.py --data_dir data --out_dir out/data`",
     lambda work: shutil.copytree(work / "run", work / "out")),
    ("sample-out-dir-is-prepared-data-beside-runs", sample, ["--out_dir", "data"], "no checkpoint at data/best.pt — "
     "data holds prepared data, not a run: give --out_dir the folder train.py wrote, such as out/poems, or train one "
     "on it: `python train.py --data_dir data --out_dir out/data`",
     lambda work: shutil.copytree(work / "run", work / "out" / "poems")),
    ("sample-out-dir-is-a-checkpoint", sample, ["--out_dir", "run/best.pt"],
     "--out_dir run/best.pt is a file, not a run's folder — use --checkpoint run/best.pt, or --out_dir run", None),
    ("sample-checkpoint-missing-file", sample, ["--checkpoint", "run/nope.pt"],
     "no checkpoint at run/nope.pt — check the path: --checkpoint takes a .pt file written by train.py", None),
    ("sample-checkpoint-typo", sample, ["--checkpoint", "run/best.p"],
     "no checkpoint at run/best.p — did you mean --checkpoint run/best.pt?", None),
    ("sample-checkpoint-folder-without-run", sample, ["--checkpoint", "texts"],
     "texts is a folder without a checkpoint (no best.pt or latest.pt)", None),
    ("sample-malicious-pickle", sample, ["--checkpoint", "evil.pt"], "evil.pt is not a checkpoint of this project",
     write("evil.pt", pickle.dumps(Evil()))),
    ("sample-truncated-checkpoint", sample, ["--out_dir", "run"], "run/best.pt was cut short (a copy that stopped?), "
     "so it cannot be read — give --checkpoint run/latest.pt instead, or use a backup",
     truncate("run/best.pt", 20000)),
    ("sample-damaged-checkpoint", sample, ["--checkpoint", "damaged.pt"], "damaged.pt is damaged, so it cannot be "
     "read — use a backup, or another checkpoint", garble_a_name("run/best.pt", "damaged.pt")),
    ("sample-newer-checkpoint", sample, ["--checkpoint", "future.pt"], "has checkpoint version 99",
     edit_checkpoint("run/best.pt", "future.pt", newer_version)),
    ("sample-model-code-changed", sample, ["--checkpoint", "renamed.pt"],
     "the weights in renamed.pt do not fit model.py as it is now: model.py has transformer.h.0.mlp.c_fc.weight, "
     "the checkpoint does not; the checkpoint has transformer.h.0.mlp.fc_in.weight, model.py does not (and 2 "
     "more) — they were saved by other model code", edit_checkpoint("run/best.pt", "renamed.pt", rename_c_fc)),
    ("sample-model-setting-gone", sample, ["--checkpoint", "gone.pt"],
     "gone.pt has model settings that model.py no longer has (swiglu) — they were saved by other model "
     "code: bring back the model.py that saved them, or train a new run",
     edit_checkpoint("run/best.pt", "gone.pt", add_a_setting)),
    ("sample-model-activation-gone", sample, ["--checkpoint", "snake.pt"],
     "snake.pt has model settings that model.py no longer has (activation 'snake') — they were saved by other "
     "model code", edit_checkpoint("run/best.pt", "snake.pt", setting("activation", "snake"))),
    ("sample-nan-weights", sample, ["--checkpoint", "nan.pt"],
     "nan.pt holds nan or inf weights (in transformer.h.0.attn.c_attn.weight), so it cannot be used (train.py never "
     "saves them) — use a backup, or another checkpoint", edit_checkpoint("run/best.pt", "nan.pt", a_nan_weight)),
    ("sample-negative-temperature", sample, ["--out_dir", "run", "--temperature", "-1"],
     "--temperature -1.0 must be 0 (greedy) or from 1e-4 to 1e4", None),
    ("sample-seed-too-large", sample, ["--out_dir", "run", "--seed", "99999999999999999999"],
     "argument --seed: 99999999999999999999 does not fit in 64 bits", None),
    ("sample-zero-top-k", sample, ["--out_dir", "run", "--top_k", "0"], "--top_k 0 must be at least 1", None),
    ("sample-top-p-out-of-range", sample, ["--out_dir", "run", "--top_p", "1.5"],
     "--top_p 1.5 must be above 0 and at most 1", None),
    ("sample-negative-max-new-tokens", sample, ["--out_dir", "run", "--max_new_tokens", "-1"],
     "--max_new_tokens -1 must be at least 0", None),
    ("sample-zero-samples", sample, ["--out_dir", "run", "--num_samples", "0"], "--num_samples 0 must be at least 1",
     None),
    ("sample-missing-prompt-file", sample, ["--out_dir", "run", "--prompt_file", "texts/nope.txt"],
     "prompt file texts/nope.txt does not exist", None),
    ("sample-prompt-file-dash", sample, ["--out_dir", "run", "--prompt_file", "-"],
     "no such file: - — to read from a pipe, give --prompt_file /dev/stdin", None),
    ("sample-prompt-not-utf8", sample, ["--out_dir", "run", "--prompt", "KING\udcff"],
     "--prompt holds bytes that are not UTF-8 (from a terminal set to another encoding?) — give it as UTF-8 text",
     None),
    ("sample-prompt-file-not-utf8", sample, ["--out_dir", "run", "--prompt_file", "texts/latin1.txt"],
     "prompt file texts/latin1.txt is not UTF-8 text", None),
    ("sample-prompt-file-binary", sample, ["--out_dir", "run", "--prompt_file", "data/train.bin"],
     "prompt file data/train.bin contains NUL bytes, so it looks binary — give a UTF-8 text file", None),
    ("sample-flag-begun", sample, ["--out_dir", "run", "--temp", "1"],
     "unknown argument --temp — did you mean --temperature? (--help lists every flag)", None),
    ("sample-prompt-and-prompt-file", sample, ["--out_dir", "run", "--prompt", "A", "--prompt_file", "texts/play.txt"],
     "--prompt and --prompt_file both given", None),
    ("sample-checkpoint-and-out-dir", sample, ["--checkpoint", "run/best.pt", "--out_dir", "run"],
     "--checkpoint run/best.pt and --out_dir run both given — use one of them", None),
    ("sample-prompt-starts-with-a-dash", sample, ["--out_dir", "run", "--prompt", "-ROMEO"],
     "argument --prompt: expected one argument — give --prompt a value; one starting with a dash goes after =, as in "
     "--prompt=-TEXT",
     None),
    ("sample-unknown-characters", sample, ["--out_dir", "run", "--prompt", "KING ~"],
     "not in the model's vocabulary: '~'", None),
    ("sample-prompt-typed-newline", sample, ["--out_dir", "run", "--prompt", "KING:\\nO"],  # (as --help shows one)
     "'\\\\' — leave them out (in quotes, \\n is a backslash and an n: type a new line as $'ROMEO:\\nBut' in bash",
     None),
    ("sample-cuda-without-gpu", sample, ["--out_dir", "run", "--device", "cuda"], "PyTorch sees no CUDA GPU here",
     None),
    ("sample-cuda-graph-off-the-gpu", sample, ["--out_dir", "run", "--device", "cpu", "--cuda_graph", "true"],
     "--cuda_graph needs a CUDA GPU, and this runs on cpu — leave the flag out", None),
    ("sample-cuda-graph-without-cache", sample, ["--out_dir", "run", "--device", "cuda", "--cuda_graph", "true",
                                                 "--no_cache"],
     "--cuda_graph replays the KV-cache path's step, and --no_cache turns that path off — give one of them", None),
    ("sample-top-p-without-cache", sample, ["--out_dir", "run", "--top_p", "0.9", "--no_cache"],
     "--top_p is the KV-cache path's (engine/sampling.py), and --no_cache turns that path off — give one of them",
     None),

    ("plot-unknown-picture", plot, ["attn"], "invalid choice: 'attn' — did you mean attention?", None),
    ("plot-flag-before-its-picture", plot, ["--out_dir", "run", "loss"],
     "--out_dir belongs to the command: give it after the command — e.g. python -m lessons.plot loss --out_dir run",
     None),
    ("plot-flag-of-another-picture", plot, ["loss", "--prompt", "ROMEO:"],
     "--prompt is a flag of attention or explore, not of loss — python -m lessons.plot attention --help lists "
     "attention's flags", None),
    ("plot-save-over-a-checkpoint", plot, ["loss", "--out_dir", "run", "--save", "run/best.pt"],
     "--save run/best.pt must end in .png — e.g. --save run/best.png", None),
    ("plot-save-a-folder", plot, ["loss", "--out_dir", "run", "--save", "texts/loss.png"],
     "cannot write texts/loss.png: it is a folder — choose another --save",
     lambda work: (work / "texts" / "loss.png").mkdir(parents=True)),
    ("explore-save-over-the-data", plot, ["explore", "--out_dir", "run", "--save", "data/vocab.json"],
     "--save data/vocab.json must end in .html — e.g. --save data/vocab.html", None),
    ("explore-no-checkpoint", plot, ["explore", "--out_dir", "new"],
     "no checkpoint at new/best.pt — train a model first with `python train.py --out_dir new`", None),
    ("explore-not-a-checkpoint", plot, ["explore", "--checkpoint", "texts/play.txt"],
     "texts/play.txt is not a checkpoint of this project", None),
    ("explore-unknown-characters", plot, ["explore", "--out_dir", "run", "--prompt", "KING ~"],
     "not in the model's vocabulary: '~'", None),
    ("explore-prompt-too-long", plot, ["explore", "--out_dir", "run", "--prompt", "the king " * 5],
     "the prompt has 45 characters, and the model reads 1 to 16 characters at once (its block_size)", None),
    ("explore-empty-prompt", plot, ["explore", "--out_dir", "run", "--prompt", ""],
     "the prompt has 0 characters, and the model reads 1 to 16 characters at once (its block_size)", None),
    ("explore-prompt-not-utf8", plot, ["explore", "--out_dir", "run", "--prompt", "KING\udcff"],
     "--prompt holds bytes that are not UTF-8 (from a terminal set to another encoding?) — give it as UTF-8 text",
     None),
    ("explore-save-over-a-page-of-the-users", plot, ["explore", "--out_dir", "run", "--save", "texts/page.html"],
     "texts/page.html was not written by lessons.plot, and this would replace it — choose another --save, or move it "
     "away", write("texts/page.html", b"<html>my page</html>")),
    ("explore-save-inside-a-file", plot, ["explore", "--out_dir", "run", "--save", "texts/play.txt/page.html"],
     "cannot write texts/play.txt/page.html: texts/play.txt is a file, not a folder — choose another --save", None),

    ("babygpt-dot-over-a-checkpoint", babygpt, ["--dot", "run/latest.pt"],
     "--dot run/latest.pt must end in .dot — e.g. --dot run/latest.dot", None),
    ("babygpt-look-at-past-the-end", babygpt, ["--steps", "40", "--look_at", "400"],
     "--look_at 400 is outside the training's 0 to 40 steps — give one of them, or leave it out", None),
    ("babygpt-steps-past-the-most", babygpt, ["--steps", "99999999999"],
     "--steps is 99,999,999,999, above 1,000,000,000, the most a count may be — give a smaller number", None),
    ("babygpt-png-not-its-own", babygpt, ["--dot", "texts/chart.dot"], "texts/chart.png is there, and the chain's "
     "drawing (Graphviz's -o) would go over it — choose another --dot, or move texts/chart.png away",
     write("texts/chart.png", b"\x89PNG")),
    ("babygpt-dot-not-its-own", babygpt, ["--dot", "texts/chain.dot"], "texts/chain.dot was not written by "
     "lessons.babygpt, and this would replace it — choose another --dot, or move it away",
     write("texts/chain.dot", b"digraph mine {}\n")),
    ("babygpt-dot-inside-a-file", babygpt, ["--dot", "texts/play.txt/chain.dot"],
     "cannot write texts/play.txt/chain.dot: texts/play.txt is a file, not a folder — choose another --dot", None),
    ("babygpt-png-beside-its-dot-not-a-picture", babygpt, ["--dot", "texts/chain.dot"], "texts/chain.png was not "
     "written by Graphviz, and this would replace it — choose another --dot, or move it away",
     lambda work: (write("texts/chain.dot", b"digraph markov_chain {\n}\n")(work),
                   write("texts/chain.png", b"my notes on the chain\n")(work))),
    ("babygpt-dot-where-nothing-can-be-written", babygpt, ["--dot", "/proc/chain.dot"],  # found before it trains
     "cannot write /proc/chain.dot: /proc takes no new file (No such file or directory) — choose another --dot",
     None),
    ("buildup-no-data", buildup, ["--quick", "--data_dir", "nowhere", "--out_dir", "ladder"],
     "no prepared data in nowhere", None),
    ("buildup-out-dir-not-writable", buildup, ["--quick", "--data_dir", "data", "--out_dir", "texts/play.txt/out"],
     "cannot write in texts/play.txt/out (Not a directory)", None),
    ("buildup-out-dir-holds-another-ladder", buildup, ["--quick", "--data_dir", "data", "--out_dir", "texts"],
     "texts/ladder.csv was not written by lessons.buildup", write("texts/ladder.csv", b"my notes\n")),
    ("buildup-unknown-sizes", buildup, ["--sizes", "huge"], "invalid choice: 'huge'", None),
    ("buildup-quick-and-sizes", buildup, ["--quick", "--sizes", "cpu"],
     "--quick and --sizes cpu both given — --quick climbs at toy sizes: drop one of them", None),
]


@pytest.fixture(scope="module")
def template(data_dir, run_dir, corpus, tmp_path_factory):
    """The user's files, made once: prepared data, a trained run, and some texts."""
    work = tmp_path_factory.mktemp("template")
    shutil.copytree(data_dir, work / "data")
    shutil.copytree(run_dir, work / "run")
    texts = work / "texts"
    texts.mkdir()
    text = corpus.read_text()
    (texts / "play.txt").write_text(text)
    (texts / "empty.txt").write_text("")
    (texts / "photo.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (texts / "latin1.txt").write_bytes("José\n".encode("latin-1"))  # é is one byte, 0xe9, in Latin-1
    (texts / "digits.txt").write_text("0123456789\n" * 300)
    (texts / "reversed.txt").write_text("".join(reversed(text.splitlines(keepends=True))))
    for name in ("digits", "reversed"):  # data from other texts, one with other characters
        assert prepare.main(["--input", str(texts / f"{name}.txt"), "--out_dir", str(work / name)]) == 0
    return work


def snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case_id, script, argv, message, setup", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case_id, script, argv, message, setup, template, tmp_path, monkeypatch, capsys):
    if "cuda" in case_id and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    work = tmp_path / "work"
    shutil.copytree(template, work)
    if setup:
        setup(work)
    monkeypatch.chdir(work)
    if "." in script.__name__:  # (lessons.plot: its usage and its fixes say `python -m lessons.plot`, not pytest's)
        monkeypatch.setattr(sys.modules["__main__"], "__spec__", ModuleSpec(script.__name__, None))
    before = snapshot(work)
    capsys.readouterr()

    gc.collect()  # an earlier test's garbage (a socket, say) must not warn in here
    with warnings.catch_warnings(record=True) as caught:  # a warning would be more lines on stderr
        warnings.simplefilter("always")
        assert run_cli(script.main, argv) == 2
    assert not caught, [str(w.message) for w in caught]
    err = capsys.readouterr().err
    assert re.fullmatch(r"error: [^\n]+ — [^\n]+\n", err), err  # one line: what went wrong — what to do
    assert message in err
    new = err.removeprefix("error: ").strip()  # docs/errors.md quotes the line word for word: a fork changes both
    assert err == f"error: {documented()[case_id]}\n", (f"docs/errors.md's row {case_id} quotes another message: if "
                                                        f"this one is meant (a preset added, say), put it there: {new}")
    assert snapshot(work) == before  # nothing created, changed or deleted


def documented():
    """docs/errors.md's catalogue -> {case id: the message it quotes}, in its order."""
    text = (ROOT / "docs" / "errors.md").read_text()
    catalogue = text.split("## Bad input, case by case")[1].split("\n## ")[0]
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| .* \| (.*) \|$", catalogue, flags=re.M)
    return dict(rows)


def test_the_docs_list_every_case():
    assert list(documented()) == [case[0] for case in CASES]
    assert len(CASES) >= 25
