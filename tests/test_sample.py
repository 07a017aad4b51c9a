"""sample.py: it needs only the checkpoint, it is repeatable, and it refuses bad input clearly."""

import argparse
import os
import pickle
import re
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from engine.kv_cache import KVCache
from engine.sampling import sample_next

from machinery import checkpoint, settings
import prepare
import sample
import train
from machinery.cli import UserError, run_cli
from model import GPTConfig
from machinery import bookkeeping, data


def samples(capsys, argv):
    assert sample.main(argv) == 0
    return capsys.readouterr().out


def test_same_seed_same_text(run_dir, capsys):
    args = ["--out_dir", str(run_dir), "--max_new_tokens", "50", "--num_samples", "2", "--device", "cpu"]
    a, b = samples(capsys, args), samples(capsys, args)
    c = samples(capsys, args + ["--seed", "2"])
    assert a == b and a != c
    assert a.count("---------------- sample") == 2


def test_output_continues_the_prompt(run_dir, capsys):
    out = samples(capsys, ["--out_dir", str(run_dir), "--prompt", "ROMEO:", "--num_samples", "1",
                           "--max_new_tokens", "30"])
    text = out.split("----------------\n", 1)[1]
    assert text.startswith("ROMEO:") and len(text) == len("ROMEO:") + 30 + 1  # + print's newline


def test_needs_only_the_checkpoint(run_dir, tmp_path, capsys):
    lone = tmp_path / "elsewhere.pt"
    lone.write_bytes((run_dir / "best.pt").read_bytes())
    assert "sample 1 of 1" in samples(capsys, ["--checkpoint", str(lone), "--num_samples", "1",
                                                "--max_new_tokens", "5"])


def test_a_best_pt_cut_down_to_share_samples(run_dir, tmp_path, capsys):
    """The optimizer's state and the random states make most of a checkpoint, and sampling needs none of them: a
    best.pt without them samples as the whole one does (--resume refuses it: train-resume-no-optimizer)."""
    ckpt = checkpoint.load_checkpoint(run_dir / "best.pt", "")
    kept = {key: ckpt[key] for key in ("format", "version", *checkpoint.READ)}
    (tmp_path / "share").mkdir()
    torch.save(kept, tmp_path / "share" / "best.pt")
    args = ["--num_samples", "1", "--max_new_tokens", "20", "--seed", "3"]
    whole = samples(capsys, ["--out_dir", str(run_dir)] + args)
    assert samples(capsys, ["--out_dir", str(tmp_path / "share")] + args).split("---", 1)[1] == whole.split("---", 1)[1]


@pytest.mark.skipif(not hasattr(torch.serialization, "set_crc32_options"),
                    reason="this PyTorch writes every checksum (set_crc32_options came after 2.4)")
def test_a_checkpoint_saved_without_checksums_is_read(run_dir, tmp_path, capsys):
    """torch.serialization.set_crc32_options(False) saves every CRC as 0, to save faster: nothing to check
    there, so nothing is refused (a flipped bit in a checksummed one is: train-resume-bit-flipped-checkpoint)."""
    ckpt = checkpoint.load_checkpoint(run_dir / "best.pt", "")
    torch.serialization.set_crc32_options(False)
    try:
        torch.save(ckpt, tmp_path / "fast.pt")
    finally:
        torch.serialization.set_crc32_options(True)
    assert "sample 1 of 1" in samples(capsys, ["--checkpoint", str(tmp_path / "fast.pt"), "--num_samples", "1",
                                                "--max_new_tokens", "5"])


def test_empty_prompt_means_newline(run_dir, tmp_path, capsys):
    args = ["--out_dir", str(run_dir), "--max_new_tokens", "20"]
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    newline = samples(capsys, args + ["--prompt", "\n"])
    assert samples(capsys, args + ["--prompt", ""]) == newline
    assert samples(capsys, args + ["--prompt_file", str(empty)]) == newline


def reference_text(run_dir, prompt, n, seed=1337, **sampling):
    """What the slow path makes of the prompt, decoded: the whole context through the model for
    every character (model.generate's loop, with the engine's sampler, which has top-p)."""
    ckpt = checkpoint.load_checkpoint(run_dir / "best.pt", "")
    model = checkpoint.model_from_checkpoint(ckpt).eval()
    chars = ckpt["vocab"]["chars"]
    idx, generator = torch.tensor([prepare.encode(prompt, chars)]), torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _ in range(n):
            logits, _ = model(idx[:, -model.config.block_size:])
            idx = torch.cat((idx, sample_next(logits[:, -1], generator=generator, **sampling)), dim=1)
    return prepare.decode(idx[0].tolist(), chars)


@pytest.mark.parametrize("sampling", [{}, {"temperature": 0}, {"top_p": 0.9, "top_k": 5}])
def test_streamed_sample_is_the_naive_sample(run_dir, capsys, sampling):
    """One sample is printed character by character from the KV cache; the text is what the
    slow reference path generates (within block_size = 16: 6 prompt + 10 new)."""
    flags = [f for key, value in sampling.items() for f in (f"--{key}", str(value))]
    out = samples(capsys, ["--out_dir", str(run_dir), "--prompt", "ROMEO:", "--num_samples", "1",
                           "--max_new_tokens", "10"] + flags)
    text = out.split("----------------\n", 1)[1]
    settings = {"temperature": 0.8, **sampling}  # sample.py's default temperature, unless given
    assert text == reference_text(run_dir, "ROMEO:", 10, **settings) + "\n"


def test_no_cache_means_model_py_s_generate_for_a_single_sample_too(run_dir, capsys, monkeypatch):
    """A single sample streams from the cache, unless --no_cache: then the text comes from generate, at
    the end. (The two give the same text within block_size, so only the path taken tells them apart.)"""
    def no_engine(*args, **kwargs):
        raise AssertionError("--no_cache used the KV-cache path")
    monkeypatch.setattr(sample, "stream", no_engine)
    monkeypatch.setattr(sample, "generate_cached", no_engine)
    args = ["--out_dir", str(run_dir), "--prompt", "KING", "--num_samples", "1", "--max_new_tokens", "5", "--no_cache"]
    text = reference_text(run_dir, "KING", 5, temperature=0.8)  # sample.py's default temperature
    assert samples(capsys, args) == f"---------------- sample 1 of 1 ----------------\n{text}\n"


def test_top_p_1_is_allowed_and_changes_nothing(run_dir, capsys):
    """--top_p 1 is allowed (the whole distribution), and gives the text of no --top_p at all."""
    args = ["--out_dir", str(run_dir), "--num_samples", "2", "--max_new_tokens", "20", "--seed", "5"]
    assert samples(capsys, args + ["--top_p", "1"]) == samples(capsys, args)


def test_streaming_flushes_each_character(run_dir, monkeypatch):
    written = []
    monkeypatch.setattr("builtins.print", lambda *a, end="\n", flush=False, file=None: written.append((a, end, flush)))
    assert sample.main(["--out_dir", str(run_dir), "--num_samples", "1", "--max_new_tokens", "7"]) == 0
    streamed = [w for w in written if w[1] == ""]
    assert len(streamed) == 1 + 7 and all(flush for _, _, flush in streamed)  # the prompt, then 7 characters


def test_a_ctrl_c_while_streaming_ends_the_texts_line(run_dir, monkeypatch, capsys):
    """"interrupted" was printed on the text's last line: "...ROinterrupted"."""
    chars = torch.load(run_dir / "best.pt", weights_only=True)["vocab"]["chars"]

    def stream(model, idx, *args, **kwargs):
        yield torch.tensor([chars.index("M")])
        raise KeyboardInterrupt
    monkeypatch.setattr(sample, "stream", stream)
    with pytest.raises(KeyboardInterrupt):
        sample.main(["--out_dir", str(run_dir), "--num_samples", "1", "--prompt", "RO"])
    assert capsys.readouterr().out.endswith("ROM\n")


def test_a_run_folder_named_after_a_preset_is_trained_with_it(tmp_path, monkeypatch):
    """The lessons' out/bigram, sampled before its lesson trained it: the advice trained a GPT there."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=re.escape("train a model first with `python train.py --preset bigram "
                                                  "--out_dir out/bigram`")):
        sample.main(["--out_dir", "out/bigram"])


def test_a_change_to_model_py_that_the_cache_misses_is_refused(run_dir, monkeypatch, capsys):
    """A token shift in Block.forward (each position gets the one before it added, outside attention) trained and
    resumed well, and the cache, which feeds each new character alone, sampled other text than the model's own
    ("he t t t t" where --no_cache wrote "I the the the"), without a word."""
    import model
    forward = model.Block.forward

    def shifted(self, x, *rest):
        return forward(self, x + F.pad(x, (0, 0, 1, 0))[:, :-1], *rest)  # x (B, T, C), plus x one position back
    monkeypatch.setattr(model.Block, "forward", shifted)
    args = ["--out_dir", str(run_dir), "--num_samples", "1", "--max_new_tokens", "5"]
    assert run_cli(sample.main, args) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(r"error: the KV cache's logits differ from the model's own by \d+\.\d% of their size: model.py "
                        r"computes something the cache does not follow \(a token shift outside attention, a mask of "
                        r"attention's own\) — sample with --no_cache, or make engine/ follow the change\n", err)
    assert run_cli(sample.main, args + ["--no_cache"]) == 0  # model.py's generate: the whole context every time


def test_a_batch_with_the_cache_equals_one_without(run_dir, capsys):
    args = ["--out_dir", str(run_dir), "--prompt", "KING", "--num_samples", "4", "--max_new_tokens", "12"]
    assert samples(capsys, args) == samples(capsys, args + ["--no_cache"])


def test_bfloat16_weights_sample_with_a_bfloat16_cache(run_dir, capsys, monkeypatch):
    """--dtype bfloat16 casts the weights, and the KV cache follows them; the float32 default samples
    the weights as trained."""
    stored = []  # the dtype of every key the cache stores
    append = KVCache.append
    monkeypatch.setattr(KVCache, "append", lambda cache, i, k, v: stored.append(k.dtype) or append(cache, i, k, v))
    args = ["--out_dir", str(run_dir), "--prompt", "ROMEO:", "--num_samples", "1", "--max_new_tokens", "12",
            "--device", "cpu"]
    assert sample.main(args + ["--dtype", "bfloat16"]) == 0
    out, err = capsys.readouterr()
    text = out.split("----------------\n", 1)[1]
    assert text.startswith("ROMEO:") and len(text) == len("ROMEO:") + 12 + 1
    assert err.rstrip().endswith(", weights in bfloat16")  # said, as the checkpoint is
    check = stored.index(torch.bfloat16)  # sample.py's check of the cache came first, in float32, before the cast
    assert check > 0 and set(stored[:check]) == {torch.float32} and set(stored[check:]) == {torch.bfloat16}
    stored.clear()
    samples(capsys, args)
    assert stored and set(stored) == {torch.float32}


def test_greedy_ignores_the_seed(run_dir, capsys):
    args = ["--out_dir", str(run_dir), "--temperature", "0", "--num_samples", "2", "--max_new_tokens", "40"]
    one = samples(capsys, args)
    assert one == samples(capsys, args + ["--seed", "5"])
    first, second = re.split(r"-+ sample \d of 2 -+\n", one)[1:]
    assert first == second  # greedy: every sample in the batch is the same text


def test_greedy_from_the_default_prompt_says_to_give_one(run_dir, tmp_path, capsys):
    """From a newline, the CPU default's model greedily writes newline after newline: a blank screen, unexplained.
    Said for any prompt that comes down to the start character alone, and after every error, never before one."""
    args = ["--out_dir", str(run_dir), "--num_samples", "1", "--max_new_tokens", "5"]
    said = "note: --temperature 0 takes the likeliest character every time, and after '\\n' alone"
    (tmp_path / "empty.txt").write_text("")
    greedy = ["--temperature", "0"]
    for more, noted in ((greedy, True), (greedy + ["--prompt", ""], True), (greedy + ["--prompt_file",
                        str(tmp_path / "empty.txt")], True), (greedy + ["--prompt", "KING"], False), ([], False),
                        (greedy + ["--max_new_tokens", "0"], False)):
        assert sample.main(args + more) == 0
        assert (said in capsys.readouterr().err) == noted, more
    for wrong in (["--out_dir", str(tmp_path / "none")], ["--num_samples", "100000000"]):  # no run; too many
        with pytest.raises(UserError):
            sample.main(args + greedy + wrong)
        assert said not in capsys.readouterr().err, wrong
    greedy = argparse.Namespace(temperature=0, max_new_tokens=5)  # the example it offers is one the model can read
    # (it offered ROMEO: to both, and the digits' model cannot read it)
    for chars, example in ((list("\n:EMORabc"), "ROMEO:"), (list("\n 0123456789"), "0")):
        settings.note_a_greedy_start(greedy, "\n", "\n", chars)
        printed = capsys.readouterr().err
        assert printed.endswith(f"an empty-looking sample — give a --prompt, e.g. --prompt {example}\n")


def test_sampling_turns_dropout_off(run_dir, tmp_path, capsys):
    """A run trained with dropout samples without it: the same text as with no dropout at all."""
    ckpt = torch.load(run_dir / "best.pt", weights_only=True)
    ckpt["model_config"]["dropout"] = 0.5  # as --dropout 0.5 saves it; the weights are the same
    torch.save(ckpt, tmp_path / "dropout.pt")
    args = ["--temperature", "0", "--num_samples", "2", "--max_new_tokens", "20", "--device", "cpu"]
    assert samples(capsys, args + ["--checkpoint", str(tmp_path / "dropout.pt")]) == \
        samples(capsys, args + ["--checkpoint", str(run_dir / "best.pt")])


def test_a_setting_model_py_gained_since_a_run_was_saved_is_named(run_dir, tmp_path, capsys):
    """A run saved before GPTConfig had a setting gets its default, which may build another model than the run's:
    sample.py says so, and an error over the weights' shapes names it as the likely cause."""
    ckpt = torch.load(run_dir / "best.pt", weights_only=True)
    del ckpt["model_config"]["qk_norm"]  # as if model.py had gained qk_norm after the run (which trained with it)
    torch.save(ckpt, tmp_path / "older.pt")
    args = ["--checkpoint", str(tmp_path / "older.pt"), "--num_samples", "1", "--max_new_tokens", "5"]
    assert sample.main(args) == 0
    said = capsys.readouterr().err
    assert "; it was saved before model.py had qk_norm: GPTConfig's default (False) stands in" in said
    del ckpt["model_config"]["n_embd"]  # a default that builds other shapes: 384 wide, the run 32
    torch.save(ckpt, tmp_path / "older.pt")
    with pytest.raises(UserError, match=r" more\); it was saved before model.py had n_embd, qk_norm: GPTConfig's "
                                        r"defaults \(384, False\) stand in — if the run had other values, give them"):
        sample.main(args)


def test_a_bigram_is_said_to_lack_only_the_settings_a_table_uses():
    """A table has no layers, heads or width: a GPT setting gained since changes nothing in it, so is not named."""
    ckpt = {"model_config": {"model": "bigram", "vocab_size": 65}}  # as if saved before block_size and the GPT's
    assert checkpoint.added_since(ckpt) == "saved before model.py had block_size: GPTConfig's default (256) stands in"
    ckpt["model_config"]["block_size"] = 8
    assert checkpoint.added_since(ckpt) == ""


def test_prepared_data_given_as_a_run_is_offered_a_run_folder_train_py_takes(data_dir, tmp_path, monkeypatch):
    """out/data holds a run already, which train.py would refuse to write over: the command offered uses out/data-2,
    as prepare.py's own next command does."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(data_dir, "data")
    (tmp_path / "out" / "data").mkdir(parents=True)
    (tmp_path / "out" / "data" / "latest.pt").write_bytes(b"a run")
    hint = checkpoint.no_checkpoint_hint(out_dir="data")
    assert hint.endswith("or train one on it: `python train.py --data_dir data --out_dir out/data-2`"), hint


def test_prompt_file(run_dir, tmp_path, capsys):
    path = tmp_path / "scene.txt"
    path.write_text("JULIET:\nWhat", encoding="utf-8")
    args = ["--out_dir", str(run_dir), "--num_samples", "1", "--max_new_tokens", "30"]
    assert samples(capsys, args + ["--prompt_file", str(path)]) == samples(capsys, args + ["--prompt", "JULIET:\nWhat"])
    windows = tmp_path / "notepad.txt"  # as a Windows editor may save it: a byte-order mark, \r\n line ends
    windows.write_bytes(b"\xef\xbb\xbfJULIET:\r\nWhat")
    from_windows = samples(capsys, args + ["--prompt_file", str(windows)])
    assert from_windows == samples(capsys, args + ["--prompt_file", str(path)])


def test_a_prompt_file_reads_its_line_ends_as_prepare_py_reads_a_text(tmp_path):
    """Found by a hunt for data bugs: Python's reading turned a lone \r into \n, which prepare.py keeps as a
    character where the text has \n too; --prompt kept it, --prompt_file did not."""
    for raw, read in ((b"a\rb\nc", "a\rb\nc"), (b"a\r\nb", "a\nb"), (b"a\rb", "a\nb"), (b"\xef\xbb\xbfa\r\n", "a\n")):
        (tmp_path / "p.txt").write_bytes(raw)
        assert data.read_prompt_file(str(tmp_path / "p.txt")) == read, raw


def test_a_prompt_file_past_the_limit_is_refused_before_it_is_read_whole(tmp_path, monkeypatch):
    """/dev/zero, or a whole dataset: read until the kernel killed the process, before."""
    monkeypatch.setattr(data, "MAX_PROMPT_CHARS", 12)
    (tmp_path / "twelve.txt").write_text("JULIET:\nWhat")
    assert data.read_prompt_file(tmp_path / "twelve.txt") == "JULIET:\nWhat"
    (tmp_path / "thirteen.txt").write_text("JULIET:\nWhat?")
    with pytest.raises(UserError, match="thirteen.txt is over 12 characters — the model reads only its last"):
        data.read_prompt_file(tmp_path / "thirteen.txt")
    (tmp_path / "windows.txt").write_bytes(b"line\r\n" * 5)  # (a review: its \r\n read as \n before the count)
    with pytest.raises(UserError, match="windows.txt is over 12 characters"):
        data.read_prompt_file(tmp_path / "windows.txt")
    if os.path.exists("/dev/zero"):
        with pytest.raises(UserError, match="/dev/zero is over 12 characters"):
            data.read_prompt_file("/dev/zero")


def test_generating_three_windows(run_dir, capsys):
    out = samples(capsys, ["--out_dir", str(run_dir), "--num_samples", "1", "--max_new_tokens", "48"])
    assert len(out.split("----------------\n", 1)[1]) == 1 + 48 + 1  # block_size is 16


@pytest.mark.parametrize("argv, message", [
    (["--prompt", "JULIET: ¿qué?"], r"'¿' \(U\+00BF INVERTED QUESTION MARK\) 'é' \(U\+00E9 LATIN SMALL LETTER E "
                                     r"WITH ACUTE\)"),
    (["--temperature", "-0.5"], "--temperature -0.5 must be 0 \\(greedy\\) or from 1e-4 to 1e4"),
    (["--temperature", "nan"], "--temperature nan must be 0 \\(greedy\\) or from 1e-4 to 1e4"),
    (["--temperature", "1e-45"], "--temperature 1e-45 must be 0 \\(greedy\\) or from 1e-4 to 1e4"),  # would overflow
    (["--seed", "99999999999999999999"], "does not fit in 64 bits"),
    (["--top_k", "0"], "--top_k 0 must be at least 1"),
    (["--top_p", "0"], "--top_p 0.0 must be above 0 and at most 1"),
    (["--top_p", "1.5"], "--top_p 1.5 must be above 0 and at most 1"),
    (["--num_samples", "0"], "--num_samples 0 must be at least 1"),
    (["--max_new_tokens", "-1"], "--max_new_tokens -1 must be at least 0"),
    (["--prompt_file", "/no/such/prompt.txt"], "prompt file /no/such/prompt.txt does not exist"),
    (["--prompt_file", "."], "cannot read prompt file .: Is a directory"),
    (["--prompt", "a", "--prompt_file", "p.txt"], "--prompt and --prompt_file both given"),
    (["--device", "cuda"] if not torch.cuda.is_available() else ["--device", "tpu"], "--device"),
    (["--nope"], "unknown argument --nope"),
    (["--dtype", "float64"], "--dtype 'float64' is unknown — use auto, float32, bfloat16 or float16"),
    (["--dtype", "float64", "--checkpoint", "/no/such.pt"], "--dtype 'float64' is unknown"),  # before the load
])
def test_bad_arguments(run_dir, argv, message):
    """Each a clear UserError (the one line and exit 2 that run_cli makes of it: test_cli.py)."""
    with pytest.raises(UserError, match=message):
        sample.main(["--out_dir", str(run_dir)] + argv)


def test_prompt_file_not_utf8(run_dir, tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("ROMEO: ¿qué?".encode("latin-1"))
    with pytest.raises(UserError, match=r"latin1.txt is not UTF-8 text \(byte 7\) — save it as UTF-8"):
        sample.main(["--out_dir", str(run_dir), "--prompt_file", str(path)])


def test_no_checkpoint_says_train_first(tmp_path):
    with pytest.raises(UserError, match="no checkpoint at .*python train.py"):
        sample.main(["--out_dir", str(tmp_path)])


class Boom:
    def __reduce__(self):  # what a malicious pickle does: call something on load
        return (exec, ("raise SystemExit('pickle code ran')",))


@pytest.mark.parametrize("content", [
    b"not a checkpoint at all",
    pickle.dumps(Boom(), protocol=2),
    "torch-but-not-ours",
    "torch-saved-code",
    "numpy-zip",
], ids=["garbage", "malicious-pickle", "foreign-torch-file", "malicious-torch-file", "numpy-zip"])
def test_refuses_files_that_are_not_our_checkpoints(tmp_path, content):
    """Whole files that are not ours are foreign, zips included; only a zip that lost its end is
    "cut short" (see the catalogue)."""
    path = tmp_path / "best.pt"
    if content == "torch-but-not-ours":
        torch.save({"model": {"w": torch.zeros(2)}}, path)
    elif content == "torch-saved-code":
        torch.save({"model": Boom()}, path)
    elif content == "numpy-zip":  # a whole zip, like torch's, but not torch's
        with open(path, "wb") as f:
            np.savez(f, w=np.zeros(2))
    else:
        path.write_bytes(content)
    with pytest.raises(UserError, match="not a checkpoint of this project"):
        sample.main(["--out_dir", str(tmp_path)])


def test_a_text_without_a_newline_samples_with_no_prompt(tmp_path, capsys):
    """The default prompt is a newline; a one-line text has none, so its first character is used."""
    import prepare
    from conftest import TINY
    (tmp_path / "line.txt").write_text("abc de fgh " * 200)  # one line, no newline at all
    assert prepare.main(["--input", str(tmp_path / "line.txt"), "--out_dir", str(tmp_path / "d")]) == 0
    assert train.main(TINY + ["--data_dir", str(tmp_path / "d"), "--out_dir", str(tmp_path / "o"),
                              "--max_iters", "4"]) == 0
    capsys.readouterr()
    text = samples(capsys, ["--out_dir", str(tmp_path / "o"), "--max_new_tokens", "20", "--num_samples", "1"])
    assert len(text.splitlines()[1]) == 21  # the prompt, " ", and 20 new characters


def test_a_run_without_best_pt_samples_from_latest_pt(run_dir, tmp_path, capsys):
    run = shutil.copytree(run_dir, tmp_path / "run")
    (run / "best.pt").unlink()  # as if stopped before its first evaluation after the start
    assert sample.main(["--out_dir", str(run), "--max_new_tokens", "20", "--device", "cpu"]) == 0
    a, err = capsys.readouterr()
    note, line = err.splitlines()
    assert note.startswith(f"note: {run / 'best.pt'} is not there (the run stopped") and note.endswith("latest.pt")
    assert "after iteration 0's, which saves nothing," in note  # (a newcomer had seen iteration 0's evaluation)
    assert line == f"sampling {run / 'latest.pt'}: iteration 12"
    b = samples(capsys, ["--checkpoint", str(run / "latest.pt"), "--max_new_tokens", "20", "--device", "cpu"])
    assert a == b
    (run / "best.pt").mkdir()  # it was called missing
    assert sample.main(["--out_dir", str(run), "--max_new_tokens", "20", "--device", "cpu"]) == 0
    assert capsys.readouterr().err.startswith(f"note: {run / 'best.pt'} is a folder, not a checkpoint; using latest")


def test_a_checkpoint_whose_model_settings_cannot_be_built_says_so(run_dir, tmp_path):
    """A hand-edited setting of the right kind but out of range (dropout 5.0) was nn.Dropout's traceback."""
    for edit, said in ((dict(dropout=5.0), "dropout 5.0"), (dict(n_layer=0), "n_layer 0"),
                       (dict(n_head=3), "n_head 3, which does not divide n_embd 32")):
        ckpt = torch.load(run_dir / "best.pt", weights_only=True)
        ckpt["model_config"].update(edit)
        torch.save(ckpt, tmp_path / "edited.pt")
        with pytest.raises(UserError, match=rf"^.*edited.pt has {said} in its model_config, which train.py never "
                                            rf"saves \(edited by hand\?\) — use a backup, or another checkpoint$"):
            sample.main(["--checkpoint", str(tmp_path / "edited.pt")])


def test_a_checkpoint_folder_the_user_may_not_enter_is_said_to_be_so(tmp_path, monkeypatch, capsys):
    """--checkpoint at a run folder of chmod 000: it was "a folder without a checkpoint", its best.pt unseen.
    (As root, chmod cannot take the permission away: os.access says it here.)"""
    locked = tmp_path / "locked"
    locked.mkdir()
    with pytest.raises(UserError, match="is a folder without a checkpoint"):  # one that may be read: empty
        sample.main(["--checkpoint", str(locked)])
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != locked and access(path, mode))
    assert sample.run_cli(sample.main, ["--checkpoint", str(locked)]) == 2
    assert capsys.readouterr().err.startswith(f"error: permission denied: {locked} — check its permissions")


def test_a_file_given_for_a_run_that_is_no_checkpoint_is_not_offered_as_one(run_dir, tmp_path, monkeypatch):
    """A file named out, or a run's log.csv, given for --out_dir: it said "use --checkpoint out, or --out_dir .",
    neither of which samples."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").write_text("my notes\n")
    with pytest.raises(UserError, match="^--out_dir out is a file, not a run's folder — give --out_dir the folder "
                                        "train.py wrote$"):
        sample.main([])
    with pytest.raises(UserError, match=re.escape(f"--out_dir {run_dir / 'log.csv'} is a file, not a run's folder — "
                                                  f"give --out_dir the folder train.py wrote ({run_dir})")):
        sample.main(["--out_dir", str(run_dir / "log.csv")])


def test_a_run_folder_is_a_checkpoint_too(run_dir, capsys):
    a = samples(capsys, ["--checkpoint", str(run_dir), "--max_new_tokens", "20", "--device", "cpu"])
    b = samples(capsys, ["--checkpoint", str(run_dir / "best.pt"), "--max_new_tokens", "20", "--device", "cpu"])
    assert a == b


def test_sample_says_which_checkpoint_it_samples_and_whether_the_run_went_on(run_dir, tmp_path, capsys):
    run = shutil.copytree(run_dir, tmp_path / "run")
    best = torch.load(run / "best.pt", weights_only=True)
    said = f"sampling {run / 'best.pt'}: iteration {best['iter']}, val loss {best['best_val_loss']:.4f}, the run's best"
    log = run / "log.csv"
    log.write_text(f"{bookkeeping.LOG_HEADER}\n{best['iter']},1.0,{best['best_val_loss']},0.001,100,1.0\n")
    argv = ["--out_dir", str(run), "--max_new_tokens", "5", "--device", "cpu"]
    assert sample.main(argv) == 0
    assert capsys.readouterr().err == said + "\n"
    with open(log, "a") as f:  # the run went on, and its val loss rose: it began to overfit
        f.write(f"{best['iter'] + 8},0.5,9.0,0.001,100,2.0\n")
    assert sample.main(argv) == 0
    assert capsys.readouterr().err == (f"{said}; the run's last evaluation, at iteration {best['iter'] + 8}, gave "
                                       f"9.0000 (--checkpoint {run / 'latest.pt'} samples the run's last state)\n")
    log.write_text("not a log\n")  # whatever the log holds, sampling goes on
    assert sample.main(argv) == 0
    assert capsys.readouterr().err == said + "\n"


def test_sampling_best_pt_points_to_latest_pt_only_where_there_is_one(tmp_path):
    (tmp_path / "log.csv").write_text(f"{checkpoint.LOG_HEADER}\n8,1.0,2.0,0.001,100,1.0\n16,0.5,9.0,0.001,100,2.0\n")
    ckpt = {"iter": 8, "best_val_loss": 2.0, "model_config": asdict(GPTConfig())}  # (every setting model.py has)
    said = f"sampling {tmp_path / 'best.pt'}: iteration 8, val loss 2.0000, the run's best"
    assert checkpoint.what_is_sampled(tmp_path / "best.pt", ckpt) == said  # no latest.pt: nothing to point to
    (tmp_path / "latest.pt").write_bytes(b"x")
    assert checkpoint.what_is_sampled(tmp_path / "best.pt", ckpt).startswith(
        f"{said}; the run's last evaluation, at iteration 16, gave 9.0000")


def test_a_best_pt_written_anew_is_not_called_the_runs_best(tmp_path):
    """best.pt deleted, then written anew by a resume whose evaluations did not reach the run's best: log.csv's
    better row is named, where sample.py called the new one the run's best."""
    (tmp_path / "log.csv").write_text(f"{checkpoint.LOG_HEADER}\n8,1.0,1.5,0.001,100,1.0\n16,0.5,2.0,0.001,100,2.0\n")
    ckpt = {"iter": 16, "best_val_loss": 2.0, "model_config": asdict(GPTConfig())}
    assert checkpoint.what_is_sampled(tmp_path / "best.pt", ckpt) == (
        f"sampling {tmp_path / 'best.pt'}: iteration 16, val loss 2.0000, not the run's best: log.csv has 1.5000 at "
        f"iteration 8 (its best.pt was deleted or replaced)")
    ckpt["best_val_loss"] = 1.5000004  # (log.csv's 6 decimals: the same val loss)
    assert checkpoint.what_is_sampled(tmp_path / "best.pt", ckpt).endswith("val loss 1.5000, the run's best")
    # (a hunt for data bugs: a huge vocabulary's untrained loss, iteration 0's, can be the lowest; it is never saved)
    (tmp_path / "log.csv").write_text(f"{checkpoint.LOG_HEADER}\n0,1.0,1.0,0,0,0\n8,1.0,1.5,0.001,100,1.0\n")
    assert checkpoint.what_is_sampled(tmp_path / "best.pt", ckpt).endswith("val loss 1.5000, the run's best")
