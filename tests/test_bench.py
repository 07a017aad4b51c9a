"""The benchmarks in smoke mode: a tiny model, a few steps (speed.speed), and every job of the
suite at toy sizes (speed.suite). They print numbers; nothing here asserts how fast anything is."""

import argparse
import importlib.util
import json
import _thread
import os
import re
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest
import torch

import train
from bench import score, speed, suite
from conftest import TINY
from machinery.checkpoint import read_log
from machinery.cli import UserError

NANOGPT = os.environ.get("NANOGPT_DIR")  # a nanoGPT checkout, if the machine has one (CI's has)


def test_train_benchmark_reports_its_numbers(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # where train.py would write out/
    argv = ["train", "--data_dir", str(data_dir), *TINY, "--steps", "3", "--warmup", "1"]
    assert speed.main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"step time: [\d.]+ ms \(median of 3", out)
    assert re.search(r"throughput: [\d,]+ tokens/s, [\d.,]+ GFLOP/s achieved", out)
    assert re.search(r"memory: [\d,]+ MB, peak resident memory", out)
    assert "128 tokens per step" in out  # 8 x 16 x 1
    assert not any(tmp_path.iterdir())  # a benchmark writes nothing
    with pytest.raises(UserError, match="^--out_dir is train.py's, not bench.speed train's"):  # it offers none
        speed.main(argv + ["--out_dir", "out/bench"])
    assert speed.main(argv + ["--nan_check", "false"]) == 0  # without the per-step wait for the device
    assert re.search(r"step time: [\d.]+ ms", capsys.readouterr().out)
    assert speed.main(argv + ["--warmup", "0"]) == 0  # a cold start: the first timed step compiles
    assert re.search(r"warm-up: 0 steps .*\nstep time: [\d.]+ ms", capsys.readouterr().out)


def test_time_to_target(data_dir, capsys):
    argv = ["train", "--data_dir", str(data_dir), *TINY, "--warmup", "1", "--optimizer", "muon"]
    assert speed.main(argv + ["--target", "9.0"]) == 0  # reached at the first evaluation
    assert re.search(r"reached val loss [\d.]+ <= 9.0 at iteration 4: [\d.]+ s of training", capsys.readouterr().out)
    assert speed.main(argv + ["--target", "0.1"]) == 1
    out = capsys.readouterr().out
    assert out.count("training time") == 3 and "did not reach val loss 0.1 in 12 iterations" in out


def test_time_to_target_trains_as_train_py_does_dropout_too(data_dir, tmp_path, capsys):
    """--target's val losses are train.py's, step for step: the same batches, schedule and dropout masks
    (the warm-up steps drew masks of their own; a reseed would have replayed the weights' draws)."""
    flags = ["--data_dir", str(data_dir), *TINY, "--dropout", "0.2"]
    assert train.main(flags + ["--out_dir", str(tmp_path / "run")]) == 0
    iters, _, val_losses = read_log(tmp_path / "run" / "log.csv")
    logged = {i: f"{loss:.4f}" for i, loss in zip(iters, val_losses)}
    capsys.readouterr()
    assert speed.main(["train", *flags, "--warmup", "2", "--target", "0.1"]) == 1  # (not reached: all 12 steps)
    printed = dict(re.findall(r"iter (\d+): val loss ([\d.]+), training time", capsys.readouterr().out))
    assert {int(i): loss for i, loss in printed.items()} == {i: loss for i, loss in logged.items() if i > 0}


def test_flops_per_token_counts_weights_and_attention():
    from model import GPT, GPTConfig
    model = GPT(GPTConfig(block_size=256, vocab_size=65, n_layer=6, n_head=6, n_embd=384))
    assert speed.flops_per_token(model) == 6 * 10_646_784 + 12 * 6 * 256 * 384  # about 71 MFLOP
    assert round(speed.flops_per_token(model) / 1e6) == 71


def test_sample_benchmark_of_a_bigram_reports_no_cache(data_dir, tmp_path, capsys):
    """A table has no attention: no KV cache to size (it once printed the default GPT's)."""
    out = tmp_path / "bigram"
    assert train.main(TINY + ["--model", "bigram", "--lr", "0.03", "--min_lr", "0.003", "--data_dir", str(data_dir),
                              "--out_dir", str(out)]) == 0
    capsys.readouterr()
    assert speed.main(["sample", "--checkpoint", str(out), "--max_new_tokens", "5", "--repeats", "1"]) == 0
    printed = capsys.readouterr().out
    assert "KV cache: none, a bigram has no attention" in printed and "layers x" not in printed
    # the paths' names are said for a table too: it read "speed-up of the cache" after "KV cache: none"
    assert "speed-up of reading the last character alone: " in printed and "speed-up of the cache" not in printed
    # another dtype: the fast path again, on a copy of the model in it, in turn with the others
    assert speed.main(["sample", "--checkpoint", str(out), "--max_new_tokens", "5", "--repeats", "2",
                       "--dtype", "float32, bfloat16"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"KV cache, bfloat16: +[\d.]+ tokens/s  \(runs: [\d.]+, [\d.]+ s\)", printed)
    assert re.search(r"speed-up of bfloat16 weights: [\d.]+x", printed) and "of float32 weights" in printed
    with pytest.raises(UserError, match="--dtype 'int8' is unknown"):
        speed.main(["sample", "--checkpoint", str(out), "--dtype", "float32,int8"])
    with pytest.raises(UserError, match="--dtype float32,auto names float32, float32: one twice"):  # auto, here
        speed.main(["sample", "--checkpoint", str(out), "--dtype", "float32,auto"])


def train_classic(data_dir, out, bias):
    """A tiny run of the classic preset: learned positions, GELU, LayerNorm, the tied head, nanoGPT's network."""
    argv = ["--preset", "shakespeare"] + TINY + ["--bias", str(bias), "--data_dir", str(data_dir)]
    assert train.main(argv + ["--out_dir", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def classic_run(data_dir, tmp_path_factory):
    return train_classic(data_dir, tmp_path_factory.mktemp("classic"), bias=False)


@pytest.fixture(scope="module", params=[False, True], ids=["no-bias", "bias"])
def classic_runs(data_dir, tmp_path_factory, classic_run, request):
    """Without biases (the preset's, and nanoGPT's shakespeare_char), and with them (nanoGPT's default)."""
    return train_classic(data_dir, tmp_path_factory.mktemp("biased"), bias=True) if request.param else classic_run


def as_nanogpt_checkpoint(ckpt):
    """One of our checkpoints as nanoGPT's train.py writes its ckpt.pt: the weights of a compiled
    model (_orig_mod.), the causal-mask buffer of its written-out attention, its model_args."""
    cfg = ckpt["model_config"]
    weights = {f"_orig_mod.{k}": v for k, v in ckpt["model"].items()}
    T = cfg["block_size"]
    weights |= {f"_orig_mod.transformer.h.{i}.attn.bias": torch.ones(T, T).tril().view(1, 1, T, T)
                for i in range(cfg["n_layer"])}
    args = {k: cfg[k] for k in ("n_layer", "n_head", "n_embd", "block_size", "bias", "vocab_size", "dropout")}
    return {"model": weights, "model_args": args, "iter_num": ckpt["iter"], "best_val_loss": torch.tensor(2.0),
            "config": {"dataset": "shakespeare_char"}, "optimizer": {}}


def scored(out):
    """bench.score's lines -> [(loss, the checkpoint's folder, whose)]."""
    rows = re.findall(r"^val loss ([\d.]+) \([\d.]+ bits per char\): (\S+) \((nanoGPT|this repo), block 16\)$",
                      out, flags=re.M)
    return [(loss, Path(path).parent.name, whose) for loss, path, whose in rows]


def test_score_gives_a_nanogpt_checkpoint_of_the_same_weights_the_same_loss(classic_runs, data_dir, tmp_path, capsys,
                                                                            monkeypatch):
    """bench.score reads nanoGPT's ckpt.pt into model.py's GPT (the same network under the same
    names), so both recipes' models are scored on the very same windows."""
    ckpt = torch.load(classic_runs / "best.pt", weights_only=True)
    (tmp_path / "nanogpt" / "out").mkdir(parents=True)
    torch.save(as_nanogpt_checkpoint(ckpt), tmp_path / "nanogpt" / "out" / "ckpt.pt")
    (tmp_path / "ours").mkdir()
    (tmp_path / "ours" / "best.pt").write_bytes((classic_runs / "best.pt").read_bytes())
    (tmp_path / "ours" / "latest.pt").write_bytes((classic_runs / "latest.pt").read_bytes())  # not a model to score
    argv = ["--data_dir", str(data_dir), "--batches", "3", "--batch_size", "4"]
    assert score.main([str(tmp_path)] + argv) == 0
    rows = scored(capsys.readouterr().out)
    assert [row[1:] for row in rows] == [("out", "nanoGPT"), ("ours", "this repo")]
    assert rows[0][0] == rows[1][0]  # the same weights on the same windows
    old = as_nanogpt_checkpoint(ckpt)
    if old["model_args"].pop("bias"):  # nanoGPT before 2023 saved no bias: it had biases then, as its default does
        torch.save(old, tmp_path / "nanogpt" / "out" / "ckpt.pt")
        assert score.main([str(tmp_path / "nanogpt")] + argv) == 0
        assert scored(capsys.readouterr().out) == rows[:1]
    dtypes = []  # of the weights that reach the scoring
    scoring = score.score
    monkeypatch.setattr(score, "score", lambda model, *a: dtypes.append(next(model.parameters()).dtype) or scoring(
        model, *a))
    assert score.main([str(tmp_path / "ours"), "--dtype", "bfloat16"] + argv) == 0  # rounded weights, near
    out = capsys.readouterr().out
    assert dtypes == [torch.bfloat16] and "weights in bfloat16" in out.splitlines()[0]
    assert abs(float(scored(out)[0][0]) - float(rows[1][0])) < 0.05


def test_score_refuses_what_it_cannot_score(classic_run, data_dir, tmp_path, capsys):
    """Each a one-line error; a folder's unfit checkpoint is skipped, with a line, and the others scored."""
    ckpt = torch.load(classic_run / "best.pt", weights_only=True)
    other = dict(ckpt, model={k: v for k, v in ckpt["model"].items() if k != "lm_head.weight"})
    torch.save(as_nanogpt_checkpoint(other), tmp_path / "other.pt")  # another network: refused, by name
    with pytest.raises(UserError, match="model.py has lm_head.weight, the checkpoint does not"):
        score.main([str(tmp_path / "other.pt"), "--data_dir", str(data_dir)])
    torch.save({"model": {}, "model_args": {"n_layer": 2}}, tmp_path / "odd.pt")
    with pytest.raises(UserError, match="its model_args lack n_head, n_embd, block_size, vocab_size"):
        score.main([str(tmp_path / "odd.pt"), "--data_dir", str(data_dir)])
    nano = as_nanogpt_checkpoint(ckpt)
    for edit in ({"n_head": 3}, {"n_embd": -32}, {"vocab_size": 10 ** 12}, {"n_head": 0}):  # found by a bad-input hunt
        torch.save(dict(nano, model_args={**nano["model_args"], **edit}), tmp_path / "edited.pt")
        with pytest.raises(UserError, match="its weights do not make the GPT its model_args describe"):
            score.main([str(tmp_path / "edited.pt"), "--data_dir", str(data_dir)])
    torch.save(dict(nano, model=[1]), tmp_path / "edited.pt")
    with pytest.raises(UserError, match="its weights do not make the GPT its model_args describe"):
        score.main([str(tmp_path / "edited.pt"), "--data_dir", str(data_dir)])
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(UserError, match="neither this repo's checkpoint nor nanoGPT's"):
        score.main([str(tmp_path / "foreign.pt"), "--data_dir", str(data_dir)])
    with pytest.raises(UserError, match="a path is empty — give checkpoints"):  # not: all under this folder
        score.main([str(tmp_path / "foreign.pt"), "", "--data_dir", str(data_dir)])
    # a batch too big for the memory: the system stopped it without a word
    with pytest.raises(UserError, match=r"--batch_size 1,000,000,000 windows through .* GB at once, more than .* — "
                                        r"give --batch_size [\d,]+ or fewer$"):
        score.main([str(classic_run / "best.pt"), "--data_dir", str(data_dir), "--batch_size", "1000000000"])
    (tmp_path / "runs" / "a").mkdir(parents=True)
    (tmp_path / "runs" / "b").mkdir()
    (tmp_path / "runs" / "a" / "best.pt").write_bytes((classic_run / "best.pt").read_bytes())
    chars = ckpt["vocab"]["chars"]
    torch.save(dict(ckpt, vocab=dict(ckpt["vocab"], chars=chars[::-1])), tmp_path / "runs" / "b" / "best.pt")
    with pytest.raises(UserError, match="b/best.pt on .*: it was trained on another vocabulary — give the"):
        score.main([str(tmp_path / "runs" / "b" / "best.pt"), "--data_dir", str(data_dir)])
    (tmp_path / "runs" / "c").mkdir()
    (tmp_path / "runs" / "c" / "best.pt").write_bytes(b"not a checkpoint")  # a stray file of that name
    assert score.main([str(tmp_path / "runs"), "--data_dir", str(data_dir), "--batches", "2"]) == 0
    out = capsys.readouterr().out
    assert "b/best.pt: it was trained on another vocabulary" in out and [r[1] for r in scored(out)] == ["a"]
    assert re.search(r"skipped: \S+/c/best.pt is neither this repo's checkpoint nor nanoGPT's\n", out)
    (tmp_path / "runs" / "a" / "best.pt").unlink()  # none left to score: an error, not a silent exit 0
    none = "none of the files in .*runs could be scored on .* \\(each says why above\\) — give checkpoints"
    with pytest.raises(UserError, match=none):
        score.main([str(tmp_path / "runs"), "--data_dir", str(data_dir), "--batches", "2"])
    short = tmp_path / "short"  # a val split shorter than one window of 16
    short.mkdir()
    for name in ("train.bin", "vocab.json"):
        (short / name).write_bytes((data_dir / name).read_bytes())
    (short / "val.bin").write_bytes((data_dir / "val.bin").read_bytes()[:2 * 10])  # 10 uint16 ids
    vocab = json.loads((short / "vocab.json").read_text())
    (short / "vocab.json").write_text(json.dumps(dict(vocab, val_tokens=10)))
    with pytest.raises(UserError, match="val.bin has 10 characters, fewer than one window of 16 \\+ 1"):
        score.main([str(classic_run / "best.pt"), "--data_dir", str(short)])
    with pytest.raises(UserError, match="no best.pt or ckpt.pt in"):
        score.main([str(data_dir), "--data_dir", str(data_dir)])
    with pytest.raises(UserError, match="no such file or folder"):
        score.main([str(tmp_path / "nowhere"), "--data_dir", str(data_dir)])
    with pytest.raises(UserError, match="^--batches 0 must be at least 1 — e.g. 200, nanoGPT's protocol$"):
        score.main([str(tmp_path), "--data_dir", str(data_dir), "--batches", "0"])
    with pytest.raises(UserError, match="^--batches is 9,223,372,036,854,775,808, above 1,000,000,000"):  # (an
        score.main([str(tmp_path), "--data_dir", str(data_dir), "--batches", str(2 ** 63)])  # overflow, was)
    with pytest.raises(UserError, match="--seed: 99999999999999999999999 does not fit in 64 bits"):  # a traceback
        score.main([str(tmp_path), "--data_dir", str(data_dir), "--seed", "99999999999999999999999"])  # (was)


@pytest.mark.skipif(not NANOGPT, reason="needs a nanoGPT checkout (NANOGPT_DIR)")
def test_nanogpts_own_model_computes_our_loss_from_the_same_weights(classic_runs):
    """The independent truth behind bench.score: nanoGPT's model.py, given our weights, computes
    the loss model.py does, on the same batch (with and without biases)."""
    spec = importlib.util.spec_from_file_location("nanogpt_model", Path(NANOGPT) / "model.py")
    theirs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(theirs)
    nano = as_nanogpt_checkpoint(torch.load(classic_runs / "best.pt", weights_only=True))
    model = theirs.GPT(theirs.GPTConfig(**nano["model_args"]))
    weights = {k.removeprefix("_orig_mod."): v for k, v in nano["model"].items()}
    has = model.state_dict()  # (the mask buffers only where its attention is the written-out one)
    model.load_state_dict({k: v for k, v in weights.items() if k in has or not k.endswith(".attn.bias")})
    ours, _, _ = score.load_any(classic_runs / "best.pt")
    x = torch.randint(0, nano["model_args"]["vocab_size"], (4, 16), generator=torch.Generator().manual_seed(0))
    y = x.roll(-1, dims=1)
    with torch.no_grad():
        _, their_loss = model.eval()(x, y)
        _, our_loss = ours.eval()(x, y)
    torch.testing.assert_close(our_loss, their_loss)


def test_bad_benchmark_flags():
    with pytest.raises(UserError, match="--steps 0 must be at least 1"):
        speed.main(["train", "--steps", "0"])
    with pytest.raises(UserError, match="^--batch_size is 9,223,372,036,854,775,808, above 1,000,000,000, the most"):
        speed.main(["sample", "--batch_size", str(2 ** 63)])  # (torch's overflow, a traceback, without the check)
    # a batch too big for the memory ran until the system stopped it
    with pytest.raises(UserError, match=r"^--batch_size 1,000,000,000 samples of 11 characters take about [\d,]+ GB "
                                        r"at once, more than this machine's [\d,]+ GB — give --batch_size [\d,]+ or "
                                        r"fewer$"):
        speed.main(["sample", "--batch_size", "1000000000", "--max_new_tokens", "10"])
    for target in ("0", "-1", "nan"):  # trained every step, then said it was not reached
        with pytest.raises(UserError, match=f"--target {float(target)} is a val loss no run reaches"):
            speed.main(["train", "--target", target])
    with pytest.raises(UserError, match="did you mean --target"):
        speed.main(["train", "--targt", "1.5"])
    for flag in ("--out_dir=x", "--resume"):  # "did you mean --data_dir?", "--preset?"
        with pytest.raises(UserError, match=f"^{flag.split('=')[0]} is train.py's, not bench.speed train's"):
            speed.main(["train", flag])
    for flag, value in (("--steps", "5"), ("--peak_tflops", "5")):  # a run to --target ignored them, without a word
        with pytest.raises(UserError, match=f"^{flag} and --target both given — --target trains up to --max_iters"):
            speed.main(["train", "--target", "1.5", flag, value])
    for peak in ("-5", "0", "nan", "inf"):  # MFU: -0.0% of -5 TFLOP/s, after the whole run
        with pytest.raises(UserError, match=f"--peak_tflops {float(peak)} must be a number of TFLOP/s above 0"):
            speed.main(["train", "--peak_tflops", peak])


# suite jobs run here in this process, from the command lines the suite gives them: each is a
# speed.speed or train.py command like one the suite runs as a process, with other flags (or another
# environment, a cold compile cache or one thread, which here they do not get). In smoke mode, where
# the sizes are the same for all, each process would be 4 s of starting torch
VARIANTS = ["classic-step-nocheck", "classic-step-graphs", "speedrun-graphs", "speedrun-adamw", "speedrun-learned",
            "speedrun-no-qknorm", "speedrun-fp32", "speedrun-b64", "speedrun-train", "classic-target",
            "classic-target-cold", "speedrun-one-thread", "speedrun-warmup", "classic-target-warmup", "classic-warmup",
            "classic-600", "cpu-speedrun-train", "levers-large"]
ANCHOR_VARIANTS = ["anchor", "anchor-warmup", "anchor-600", "anchor-cpu-recipe"]  # nanoGPT's: one runs here


def test_suite_runs_every_job_and_can_run_again(corpus, tmp_path, capsys):
    """The GPU measurement set, in smoke mode on the CPU: the data prepared from a local file,
    each job a process with its log kept, summary.txt appended job by job; then a second
    command into the same out_dir, which meets nothing of the first. The VARIANTS run here, in this
    process, from the command lines the suite gives them."""
    out, data = tmp_path / "bench", tmp_path / "data"
    argv = ["--device", "cpu", "--smoke", "--data_dir", str(data), "--out_dir", str(out)]
    all_jobs = suite.suite_jobs(tmp_path, 1.47)
    jobs = [job for job in all_jobs if job not in VARIANTS + ANCHOR_VARIANTS[1:]]
    if NANOGPT:
        argv += ["--anchor", NANOGPT]
    else:
        jobs.remove("anchor")
    assert jobs[-1] == "score"  # last: it scores every model the jobs before it trained
    assert suite.main(argv + ["--input", str(corpus), "--jobs", ",".join(jobs)]) == 0
    smoke = argparse.Namespace(device="cpu", data_dir=str(data), smoke=True)
    for job in VARIANTS:
        cmd = [a.replace("{job_dir}", str(tmp_path / job)) for a in suite.job_argv(all_jobs[job].cmd, smoke)]
        main = speed.main if cmd[:2] == ["-m", "bench.speed"] else train.main
        assert main(cmd[2:] if cmd[0] == "-m" else cmd[1:]) == 0, job
    assert (tmp_path / "speedrun-train" / "best.pt").is_file()  # speedrun-train's run (its folder: its job's)
    # bench.score on a model of the levers (rotary, qk-norm), as the score job would find it among the runs
    assert score.main([str(tmp_path / "levers-large"), "--data_dir", str(data), "--device", "cpu", "--batches", "2",
                       "--batch_size", "4"]) == 0
    first = next(p for p in out.iterdir() if p.is_dir())
    runs = {"classic-train", "ddp"} | ({"anchor"} if "anchor" in jobs else set())
    assert {p.name for p in first.iterdir()} == {f"{job}.log" for job in ["prepare"] + jobs} | runs
    summary = (out / "summary.txt").read_text()
    assert summary.startswith(f"== suite in {first}: machine ") and "torch " + torch.__version__ in summary
    for job in ["prepare"] + jobs:
        head = rf"== {re.escape(job)} \(exit 0, \d+ s(, empty compile cache)?\): (python|bash) "
        assert re.search(head, summary), job
    # each result line says when the process printed it: the whole process's clock
    assert re.search(r"== speedrun-cold \(exit 0, \d+ s, empty compile cache\)", summary)
    assert re.search(r"   warm-up: 1 steps in [\d.]+ s .* @ [\d.]+ s\n", summary)
    assert re.search(r"== speedrun, compile warm-up: median [\d.]+ s over 1 of 1 run\(s\) \([\d.]+\)", summary)
    for job, number in (("classic-step", "step time: "), ("classic-train", "best val loss "),
                        ("speedrun", "reached val loss "),
                        ("speedrun-train", "best val loss "), ("sample", "speed-up of the cache: "),
                        ("cuda-tests", "skipped"), ("ddp", "best val loss "), ("resume", "best val loss "),
                        ("anchor", "nanoGPT best val loss ")):
        if job in jobs:
            assert re.search(rf"== {job} \(exit 0, \d+ s\): .*\n(   .*\n)*   .*{number}", summary), job
    if "anchor" in jobs:  # nanoGPT's step times, the evaluation steps left out
        assert re.search(r"nanoGPT step time: [\d.]+ ms \(median of 2 logged steps\)", summary)
        assert re.search(rf"val loss [\d.]+ \(.*\): {first}/anchor/\S+/ckpt.pt \(nanoGPT, block 16\)", summary)
    # the training script's clock: for nanoGPT from nanogpt.sh's line, after its copy and its data
    for job in ["classic-train"] + (["anchor"] if "anchor" in jobs else []):
        assert re.search(rf"== {job} \(.*\n(   .*\n)*   training script: [\d.]+ s from its start", summary), job
    assert re.search(rf"val loss [\d.]+ \(.*\): {first}/classic-train/best.pt \(this repo, block 16\)", summary)
    assert "DDP over gloo: 1 process x 1 micro-batch(es) of 4 rows" in (first / "ddp.log").read_text()
    assert "iterations 4 -> 6" in (first / "resume.log").read_text()  # on from the DDP run's checkpoint
    assert f"--checkpoint {first / 'classic-train' / 'best.pt'}" in summary  # the model this command trained

    import time
    time.sleep(1)  # the next command's folder is named by the second it starts
    assert suite.main(argv + ["--jobs", "classic-train,classic-train"]) == 0  # twice: a folder each
    second = max(p for p in out.iterdir() if p.is_dir())
    assert second != first and all((second / run / "best.pt").is_file() for run in ("classic-train", "classic-train-2"))
    assert {p.name for p in second.iterdir()} == {"classic-train", "classic-train-2", "classic-train.log",
                                                  "classic-train-2.log"}
    again = (out / "summary.txt").read_text()
    assert again.startswith(summary) and again.count("== suite in ") == 2  # appended, nothing lost
    # the two runs of one job, summed up together: the spread of their times
    spread = r"== classic-train, training script: median [\d.]+ s over 2 of 2 run\(s\) \([\d.]+, [\d.]+\)"
    assert re.search(spread, again)
    capsys.readouterr()
    assert suite.main(argv + ["--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in listed] == list(suite.suite_jobs(tmp_path, 1.47))
    assert all("--device cpu" in line or " cpu " in line for line in listed if "pytest" not in line)


def test_the_gpu_session_script_refuses_before_it_runs_anything(tmp_path):
    """bench/session.sh, in a copy of the repo without .gpu/ (its whole run is docs/speed.md's smoke command):
    one line and exit 2, where it used to go on, report an earlier command's numbers and exit 0."""
    (tmp_path / "repo" / "bench").mkdir(parents=True)
    script = tmp_path / "repo" / "bench" / "session.sh"
    script.write_text((Path(__file__).parents[1] / "bench" / "session.sh").read_text())
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "machine.txt").write_text("an earlier command's")
    for out, error in (("full", "is not empty — give a new or empty folder"),
                       ("new", "no .gpu/input.txt or .gpu/nanogpt")):
        done = subprocess.run(["bash", str(script), out, "60"], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 2 and done.stdout == "", out
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ") and error in done.stderr, done.stderr
    assert (tmp_path / "full" / "machine.txt").read_text() == "an earlier command's"


def session_repo(tmp_path):
    """A copy of the repo as session.sh needs it, with .gpu/ in place: the script alone. -> the copy's folder"""
    repo = tmp_path / "repo"
    (repo / "bench").mkdir(parents=True)
    (repo / "bench" / "session.sh").write_text((Path(__file__).parents[1] / "bench" / "session.sh").read_text())
    (repo / ".gpu" / "nanogpt").mkdir(parents=True)
    (repo / ".gpu" / "input.txt").write_text("text")
    return repo


def test_the_gpu_session_script_waits_for_its_first_part_and_fails_on_a_refusal(tmp_path):
    """Its first part runs three suites side by side: what follows waits for all three (a `wait` inside a $(...),
    a subshell, had not), and one that refuses to start (exit 2) fails the command. A stand-in for python
    plays the suites: the GPU tests take a second; the DDP suite exits with DDP_EXIT."""
    repo, python = session_repo(tmp_path), tmp_path / "python"
    python.write_text('#!/usr/bin/env bash\ncase "$*" in\n'
                      '  *cuda-tests*) sleep 1; echo "   == cuda-tests (exit 0, 1 s): 5 passed";;\n'
                      '  *ddp,resume*) echo "error: refused"; exit "$DDP_EXIT";;\nesac\n')
    python.chmod(0o755)
    for ddp_exit in (0, 2):
        env = dict(os.environ, PYTHON=str(python), DDP_EXIT=str(ddp_exit))
        done = subprocess.run(["bash", str(repo / "bench" / "session.sh"), f"out{ddp_exit}", "60"], cwd=tmp_path,
                              env=env, capture_output=True, text=True)
        assert done.returncode == ddp_exit, done.stderr
        assert "5 passed" in done.stdout.split("\ndone at ")[1]  # in the summary at the end: it waited for the tests
    assert done.stderr == f"error: a suite command refused to start — its error is in {tmp_path / 'out2'}\n"


def test_the_gpu_session_script_warms_an_empty_compile_cache_before_warm_runs(tmp_path):
    """PHASE1=0, the second command, runs the jobs that need a warm compile cache: on a machine started afresh
    between the two commands, its warm-ups run first, and it says so. A stand-in for python prints its arguments."""
    repo, python = session_repo(tmp_path), tmp_path / "python"
    python.write_text('#!/usr/bin/env bash\necho "ran: $*"\n')
    python.chmod(0o755)
    cache = tmp_path / "cache"
    cache.mkdir()
    env = dict(os.environ, PYTHON=str(python), PHASE1="0", TORCHINDUCTOR_CACHE_DIR=str(cache))
    for warm in (False, True):
        if warm:
            (cache / "fxgraph").mkdir()
        done = subprocess.run(["bash", str(repo / "bench" / "session.sh"), f"out{warm}", "60"], cwd=tmp_path,
                              env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        warmups = (tmp_path / f"out{warm}" / "1-warmup.txt")
        assert warmups.is_file() != warm and ("the warm-ups run first" in done.stdout) != warm
        assert not (tmp_path / f"out{warm}" / "1-cuda-tests.txt").exists()  # (the GPU paths: command 1's)
        assert "--jobs speedrun,classic-target,speedrun," in (tmp_path / f"out{warm}" / "2-measured.txt").read_text()
    done = subprocess.run(["bash", str(repo / "bench" / "session.sh"), "short", "45"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)  # 45 s, less 20 to pack the logs: too few to measure
    assert done.returncode == 0 and "no time for the measured jobs — give a larger SECONDS" in done.stdout
    assert "ran:" not in (tmp_path / "short" / "2-measured.txt").read_text()


def test_a_job_past_its_time_limit_is_stopped_and_its_last_numbers_kept(tmp_path):
    # a child that outlives its parent is stopped with it (nanoGPT's script, torchrun and the compile's workers)
    child = "import subprocess, sys; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])"
    script = f"{child}; import time; print('iter 50: train loss 2.1, val loss 2.2'); time.sleep(60)"
    code, seconds, lines = suite.run_job(["-c", script], tmp_path / "job.log", 2)
    assert code is None and seconds < 30
    assert len(lines) == 1 and re.fullmatch(r"iter 50: train loss 2.1, val loss 2.2 @ \d\.\d s", lines[0])


def test_ctrl_c_in_the_suite_is_passed_on_to_its_job_and_stops_it(tmp_path):
    """The job runs in its own session, out of the terminal's reach: a Ctrl-C left it training, with no limit."""
    script = ("import signal, sys, time\n"
              "def stop(*_):\n    print('saved latest.pt', flush=True)\n    sys.exit(130)\n"
              "signal.signal(signal.SIGINT, stop)\nprint('throughput: 9 tokens/s', flush=True)\ntime.sleep(60)")
    timer = threading.Timer(1.5, _thread.interrupt_main)  # Ctrl-C, as the terminal sends it to the suite
    # Python's own handler: under a shell's background job SIGINT is ignored, and interrupt_main with it
    ignored = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer.start()
    started = time.perf_counter()
    try:
        with pytest.raises(suite.Interrupted) as stopped:  # (a KeyboardInterrupt, with what the job printed)
            suite.run_job(["-c", script], tmp_path / "job.log", 50)
    finally:
        signal.signal(signal.SIGINT, ignored)
    assert time.perf_counter() - started < 20 and stopped.value.seconds < 20
    assert [line.split(" @ ")[0] for line in stopped.value.lines] == ["throughput: 9 tokens/s"]
    assert stopped.value.how == "it stopped"
    deaf = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                             "print(1, flush=True); time.sleep(60)"], stdout=subprocess.PIPE, start_new_session=True)
    deaf.stdout.readline()  # (its handler is set)
    assert suite.stop_gently(deaf, seconds=1) is False and deaf.poll() is not None  # killed, not left running
    assert (tmp_path / "job.log").read_text().splitlines()[-1].endswith("] saved latest.pt")  # stopped as by Ctrl-C


def test_each_line_of_a_job_is_timed_and_the_side_by_side_window_measured(tmp_path, monkeypatch):
    """The log shows when each line came (seconds since the job started); the time between the
    evaluation lines of WINDOW's iterations is measured the same way for nanoGPT's log and ours."""
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)  # (set here, it would hide a job run buffered)
    first, last = suite.WINDOW
    script = (f"import time; print('iter {first}: train loss 2.0, val loss 2.1'); time.sleep(1.5); "
              f"print('step {last}: train loss 1.9, val loss 2.0')")
    code, _, lines = suite.run_job(["-c", script], tmp_path / "job.log", 30)
    assert code == 0
    window = float(re.fullmatch(rf"evaluation lines {first} -> {last}: ([\d.]+) s", lines[-1])[1])
    # The lines are timed as they are read, so a loaded machine may read either one late: the first
    # one late shortens the 1.5 s (CI once logged 1.49 s, from 0.08 s to 1.57 s), the second lengthens it.
    assert 1.3 <= window < 15
    log = (tmp_path / "job.log").read_text().splitlines()
    times = [float(re.match(r"\[ *([\d.]+)\] ", line)[1]) for line in log]
    assert times[1] - times[0] >= 1.3 and log[0].endswith(f"iter {first}: train loss 2.0, val loss 2.1")
    assert suite.window_line([(1.0, f"iter {first}: train loss 2.0, val loss 2.1")]) == []  # one line: no window


def test_a_training_script_is_timed_from_its_own_start():
    """From the job's start for ours; for nanoGPT, from the line nanogpt.sh prints once its copy
    and its data are ready, so that both clocks start where the training script does."""
    nanogpt = [(3.0, f"{suite.NANOGPT_STARTS} the data in /tmp/x; ..."), (5.0, "step 0: ..."), (9.5, "iter 4: ...")]
    assert suite.script_line(nanogpt, ["bash", "nanogpt.sh"]) == [
        "training script: 6.50 s from its start to its last line"]
    assert suite.script_line([(2.0, "model: ..."), (7.25, "wall time ...")], ["/repo/train.py", "--max_iters", "4"]) \
        == ["training script: 7.25 s from its start to its last line"]
    assert suite.script_line([(2.0, "x")], ["-m", "bench.speed"]) == []  # not a training run
    assert suite.script_line(nanogpt[1:], ["bash", "nanogpt.sh"]) == []  # its copy or its data failed
    assert suite.NANOGPT_STARTS in suite.NANOGPT.read_text()  # the line nanogpt.sh prints


def test_a_training_script_that_fails_or_is_stopped_gets_no_time(tmp_path):
    """Only a run that finished is timed: a failure, or a run cut off at its limit, would look fast. A
    stand-in for train.py (the suite knows a training run by the script's name) prints as it does."""
    stand_in = tmp_path / "train.py"
    for fate, limit, code in (("sys.exit(2)", 60, 2), ("time.sleep(60)", 2, None), ("pass", 60, 0)):
        stand_in.write_text(f"import sys, time\nprint('model: 0.01M parameters', flush=True)\n{fate}\n")
        ended, _, lines = suite.run_job([str(stand_in)], tmp_path / "job.log", limit)
        assert ended == code and "model:" in (tmp_path / "job.log").read_text()  # it ran, and ended so
        timed = [line for line in lines if line.startswith("training script")]
        assert len(timed) == (code == 0), fate  # (a run that finished is timed: the stand-in is one)


def test_a_cold_job_compiles_into_an_empty_cache_that_is_removed_afterwards(tmp_path):
    env = suite.suite_jobs(tmp_path, 1.47)["speedrun-cold"].env
    show = ("import os; d = os.environ['TORCHINDUCTOR_CACHE_DIR']; "
            "print(d, os.listdir(d), os.environ['TRITON_CACHE_DIR'])")
    with suite.cold_cache(env) as job_env:
        assert suite.run_job(["-c", show], tmp_path / "job.log", 30, env=job_env)[0] == 0
    folder, listed, triton = (tmp_path / "job.log").read_text().split("] ", 1)[1].split()
    assert listed == "[]" and triton == f"{folder}/triton" and not os.path.exists(folder)
    with suite.cold_cache({"TORCHINDUCTOR_COMPILE_THREADS": "1"}) as job_env:  # other settings pass as they are
        assert job_env == {"TORCHINDUCTOR_COMPILE_THREADS": "1"}


def test_a_job_named_twice_runs_twice_each_with_its_own_log_and_folder(tmp_path):
    args = argparse.Namespace(jobs="classic-600,speedrun,classic-600", input=None, target=1.47, data_dir="d")
    plan = suite.suite_plan(args, tmp_path)
    assert [(label, name) for label, name, _ in plan] == [("classic-600", "classic-600"), ("speedrun", "speedrun"),
                                                          ("classic-600-2", "classic-600")]
    results = [("speedrun", ["reached val loss 1.4690 <= 1.47 at iteration 350: 9.50 s of training @ 30.0 s"]),
               ("speedrun", ["reached val loss 1.4650 <= 1.47 at iteration 400: 11.50 s of training @ 34.0 s"]),
               ("speedrun", ["reached val loss 1.4680 <= 1.47 at iteration 350: 10.00 s of training @ 31.0 s"])]
    assert suite.spread_lines(results) == [
        "== speedrun, training to the target: median 10.00 s over 3 of 3 run(s) (9.50, 11.50, 10.00)",
        "== speedrun, process to the target: median 31.00 s over 3 of 3 run(s) (30.00, 34.00, 31.00)"]
    # a run that never reached it (or was stopped) has no time to the target: the median says it left it out
    results.append(("speedrun", ["did not reach val loss 1.47 in 500 iterations (20.00 s of training)"]))
    assert suite.spread_lines(results)[0].startswith("== speedrun, training to the target: median 10.00 s over 3 of "
                                                     "4 run(s)")


def test_no_job_starts_once_the_suites_time_limit_is_spent(data_dir, tmp_path, capsys):
    argv = ["--device", "cpu", "--smoke", "--data_dir", str(data_dir), "--out_dir", str(tmp_path),
            "--jobs", "classic-step", "--time_limit", "5"]  # under the 10 s a job needs at least
    assert suite.main(argv) == 1
    why = "== classic-step: not started, the suite's --time_limit is spent"
    assert why in (tmp_path / "summary.txt").read_text() and why in capsys.readouterr().out  # said where seen


def test_no_job_runs_once_the_text_given_could_not_be_prepared(data_dir, tmp_path, capsys):
    """The data folder held another text: prepare.py refused to write over it, and the jobs went on to train on it."""
    other = tmp_path / "other.txt"
    other.write_text("To be, or not to be, that is the question.\n" * 40)
    argv = ["--device", "cpu", "--smoke", "--data_dir", str(data_dir), "--out_dir", str(tmp_path / "bench"),
            "--input", str(other), "--jobs", "classic-step"]
    with pytest.raises(UserError, match=f"--input {other} was not prepared into {data_dir} — .*prepare.log says why"):
        suite.main(argv)
    assert "== classic-step" not in capsys.readouterr().out
    with pytest.raises(UserError, match=f"--input {other} was not prepared: --time_limit 5 s is too short to start"):
        suite.main(argv + ["--data_dir", str(tmp_path / "new"), "--out_dir", str(tmp_path / "bench2"), "--time_limit",
                           "5"])


def test_a_summary_txt_the_suite_did_not_write_is_refused_before_anything_runs(data_dir, tmp_path):
    """A summary.txt of the user's own (their notes) got the suite's lines appended to it; a folder of that name was
    said as 'cannot write in OUT_DIR', after a folder for the jobs was made."""
    out = tmp_path / "bench"
    out.mkdir()
    argv = ["--device", "cpu", "--smoke", "--data_dir", str(data_dir), "--out_dir", str(out), "--jobs", "classic-step"]
    (out / "summary.txt").write_text("Notes I keep\n")
    with pytest.raises(UserError, match=re.escape(f"{out / 'summary.txt'} was not written by bench.suite, and this "
                                                  f"would add its numbers to it — choose another --out_dir, or move "
                                                  f"it away")):
        suite.main(argv)
    assert (out / "summary.txt").read_text() == "Notes I keep\n" and len(list(out.iterdir())) == 1
    (out / "summary.txt").unlink()
    (out / "summary.txt").mkdir()
    with pytest.raises(UserError, match=re.escape(f"{out / 'summary.txt'} is a folder, where the suite appends its "
                                                  f"numbers to a file — choose another --out_dir, or move it away")):
        suite.main(argv)
    assert [p.name for p in out.iterdir()] == ["summary.txt"]


def test_nanogpts_jobs_without_a_checkout_are_refused_when_named_and_skipped_among_all(tmp_path, monkeypatch, capsys):
    argv = ["--device", "cpu", "--out_dir", str(tmp_path)]
    with pytest.raises(UserError, match="--jobs anchor-cpu-recipe: it runs nanoGPT, and no nanoGPT checkout given — "
                                        "git clone https://github.com/karpathy/nanoGPT, then give --anchor PATH"):
        suite.main(argv + ["--jobs", "classic-step,anchor-cpu-recipe"])
    with pytest.raises(UserError, match="--input /no/such.txt: no such file"):  # the flag given, named first
        suite.main(argv + ["--jobs", "anchor-cpu-recipe", "--input", "/no/such.txt"])
    with pytest.raises(UserError, match=f"--input {tmp_path}: a folder, not a file — give the path of a text file"):
        suite.main(argv + ["--jobs", "anchor-cpu-recipe", "--input", str(tmp_path)])
    with pytest.raises(UserError, match=f"{tmp_path} is not a nanoGPT checkout \\(it has no train.py and no "
                                        f"data/shakespeare_char\\)"):
        suite.main(argv + ["--jobs", "anchor-cpu-recipe", "--anchor", str(tmp_path)])
    with pytest.raises(UserError, match="--jobs names score before other jobs — name it last"):
        suite.main(argv + ["--jobs", "score,cpu-speedrun-train"])
    with pytest.raises(UserError, match="--jobs names score twice — name it once, last"):
        suite.main(argv + ["--jobs", "cpu-speedrun-train,score,score"])
    with pytest.raises(UserError, match="--jobs score alone has nothing to score — .*python -m bench.score FOLDER"):
        suite.main(argv + ["--jobs", "score"])
    for jobs, name in (("resume", "resume"), ("sample-on-cpu,ddp", "sample-on-cpu")):  # ddp's run: not made yet
        with pytest.raises(UserError, match=f"^--jobs {name} .* the ddp job's run — name ddp before it: "
                                            f"--jobs ddp,{name}$"):
            suite.main(argv + ["--jobs", jobs])
    assert not any(tmp_path.iterdir())  # refused before anything was made
    jobs = {"anchor": suite.Job(["bash", "nanogpt.sh", "{job_dir}"], 60), "hello": suite.Job(["-c", "print(1)"], 60)}
    monkeypatch.setattr(suite, "suite_jobs", lambda run_dir, target: jobs)
    assert suite.main(argv) == 0  # all the jobs: nanoGPT's skipped, the others run
    out = capsys.readouterr().out
    assert "== anchor: skipped, no nanoGPT checkout given" in out and "== hello (exit 0" in out
    assert out.rstrip().endswith("0 of 2 job(s) failed, 1 skipped")
    with pytest.raises(UserError, match="it runs nanoGPT, and .*nowhere is not a nanoGPT checkout"):  # a given
        suite.main(argv + ["--anchor", str(tmp_path / "nowhere")])  # --anchor that is wrong is not skipped


@pytest.mark.parametrize("name, peak", [("NVIDIA H100 80GB HBM3", 989), ("NVIDIA H100 PCIe", 756),
                                        ("NVIDIA H100 NVL", 835), ("NVIDIA H200", 989),
                                        ("NVIDIA A100-SXM4-80GB", 312), ("NVIDIA A100 80GB PCIe", 312),
                                        ("Tesla T4", None)])
def test_mfu_uses_the_peak_of_the_exact_gpu(name, peak):
    found, source = speed.peak_tflops(name)
    assert found == peak
    assert peak is None or name in source
    assert speed.peak_tflops(name, 500.0) == (500.0, "--peak_tflops")


def test_suite_refuses_what_it_cannot_do_before_it_starts(tmp_path):
    with pytest.raises(UserError, match="unknown job 'zzz' — choose from cuda-tests, classic-step"):
        suite.main(["--jobs", "classic-step,zzz", "--list"])
    with pytest.raises(UserError, match=r"unknown job 'sampel' — did you mean sample\? \(--list shows every job\)"):
        suite.main(["--jobs", "sampel", "--list"])
    with pytest.raises(UserError, match="--jobs is empty — name the jobs"):  # not: run them all
        suite.main(["--jobs", "", "--list"])
    for listed in ([], ["--list"]):  # --list too: it lists what would run, not what would be refused
        for limit in ("0", "-1", "nan"):  # not: no limit, or every job refused
            with pytest.raises(UserError, match=f"--time_limit {limit} must be a number of seconds above 0"):
                suite.main(["--device", "cpu", "--jobs", "classic-step", "--time_limit", limit,
                            "--out_dir", str(tmp_path / "never")] + listed)
        for target in ("0", "-1", "nan"):  # not: refused by the job that needs it, after the jobs before it had run
            with pytest.raises(UserError, match=f"--target {float(target)} is a val loss no run reaches"):
                suite.main(["--device", "cpu", "--jobs", "classic-step,speedrun", "--target", target,
                            "--out_dir", str(tmp_path / "never")] + listed)
    assert not (tmp_path / "never").exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="cannot write in .*file/bench .* — choose another --out_dir"):
        suite.main(["--device", "cpu", "--out_dir", str(tmp_path / "file" / "bench")])
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="--device cuda, but PyTorch sees no CUDA GPU"):
            suite.main(["--out_dir", str(tmp_path / "bench")])  # cuda is the suite's default
        assert not (tmp_path / "bench").exists()


def test_score_says_a_folder_it_may_not_read(tmp_path, monkeypatch, capsys):
    """A run folder of chmod 000 was skipped unsaid under a folder given, and, given itself, was "no best.pt in
    it". (As root, chmod cannot take the permission away: the folder listing refuses it here.)"""
    (tmp_path / "locked").mkdir()
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "best.pt").write_bytes(b"")
    scandir = os.scandir

    def refusing(path="."):
        if Path(path) == tmp_path / "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)
    monkeypatch.setattr(os, "scandir", refusing)
    assert score.checkpoints_in([str(tmp_path)]) == [(tmp_path / "ok" / "best.pt", False)]
    assert capsys.readouterr().out == f"skipped: cannot read {tmp_path / 'locked'} (Permission denied)\n"
    assert score.run_cli(score.main, [str(tmp_path / "locked")]) == 2
    assert capsys.readouterr().err.startswith(f"error: permission denied: {tmp_path / 'locked'} — check its")


def test_score_reads_batches_of_batch_size_windows():
    """bench.score's protocol: `batches` batches of `batch_size` windows each (not the other way round, which
    scores as many windows, but two compared models would both be wrong alike)."""
    import numpy as np
    from model import GPT, GPTConfig
    model = GPT(GPTConfig(block_size=8, vocab_size=5, n_layer=1, n_head=1, n_embd=8)).eval()
    seen = []
    model.register_forward_hook(lambda module, inputs, output: seen.append(tuple(inputs[0].shape)))
    val = np.random.default_rng(0).integers(0, 5, 200).astype(np.uint16)
    score.score(model, val, batches=2, batch_size=3, seed=1337, device=torch.device("cpu"))
    assert seen == [(3, 8), (3, 8)]  # 2 batches of 3 windows of block_size


def test_time_to_target_evaluates_at_the_last_step_too(monkeypatch, capsys):
    """max_iters 6, eval_interval 4: evaluations at 4 and at the last step, 6, as train.py's."""
    run = types.SimpleNamespace(iter=0, cfg=types.SimpleNamespace(max_iters=6, eval_interval=4), model=None,
                                splits={"val": None}, mcfg=types.SimpleNamespace(block_size=8), device=None,
                                autocast=None)
    monkeypatch.setattr(speed, "sync", lambda device: None)
    monkeypatch.setattr(train, "estimate_loss", lambda *args, **kwargs: {"val": 3.0 - run.iter / 10})
    assert speed.time_to_target(2.0, run, lambda: setattr(run, "iter", run.iter + 1)) == 1
    out = capsys.readouterr().out
    assert [line.split(":")[0] for line in out.splitlines() if line.startswith("iter")] == ["iter 4", "iter 6"]


def test_the_sample_benchmark_counts_every_sample_of_the_batch_over_the_median_run(monkeypatch, capsys):
    """4 samples of 10 new characters, in runs of 1, 5 and 2 s: 40 characters over the median, 2 s."""
    times = iter([1.0, 5.0, 2.0])
    monkeypatch.setattr(speed, "timed", lambda fn, device: next(times))
    rates = speed.timed_in_turn({"kv cache": lambda prompt, n, generator=None: None}, 4, 10, 3, torch.device("cpu"))
    assert rates == {"kv cache": 20.0}


def test_the_window_is_the_time_between_its_two_evaluation_lines():
    """Between the lines' own times (2.0 and 5.5 s after the job started), not from the job's start."""
    first, last = suite.WINDOW
    lines = [(2.0, f"iter {first}: train loss 2.0, val loss 2.1"),
             (3.0, "x"),
             (5.5, f"step {last}: train loss 1.9, val loss 2.0")]
    assert suite.window_line(lines) == [f"evaluation lines {first} -> {last}: 3.50 s"]


def test_nanogpts_best_val_loss_is_its_lowest_not_its_last():
    lines = [(1.0, "step 0: train loss 4.1, val loss 4.2"), (2.0, "iter 1: loss 3.0, time 10.0ms"),
             (3.0, "step 250: train loss 1.5, val loss 1.6"), (3.5, "iter 250: loss 1.5, time 900.0ms"),
             (4.0, "iter 251: loss 1.4, time 12.0ms"), (5.0, "step 500: train loss 1.2, val loss 1.7")]
    out = suite.anchor_numbers(lines)
    assert "nanoGPT best val loss 1.6 at step 250" in out
    assert "nanoGPT step time: 11.00 ms (median of 2 logged steps)" in out  # the step with an evaluation left out
