"""train.py and config.py: config and flags, batches, the schedule, checkpoints, and exact resume."""

import csv
import dataclasses
import math
import re
import shutil
import signal
import subprocess
import sys
import time
import types
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from machinery import checkpoint
import config
from machinery import optim
import train
from conftest import CORES_BUSY, TINY
from model import GPT, GPTConfig
from machinery.cli import UserError
from machinery import settings
from machinery import data
from machinery import bookkeeping


def read_log(out_dir):
    with open(out_dir / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


# ----------------------------------------------------------------------------
# Configuration


def test_every_config_field_is_a_flag():
    parser_flags = settings.parse_train_args([])[3]
    assert parser_flags == {}  # nothing given, nothing overridden
    for cls in (config.TrainConfig, GPTConfig):
        for f in dataclasses.fields(cls):
            if f.name == "vocab_size":
                continue
            value = "1" if f.type is not str else "x"
            assert f.name in settings.parse_train_args([f"--{f.name}", value])[3], f.name


def test_flags_are_typed():
    _, _, _, values = settings.parse_train_args(["--lr", "3e-4", "--n_layer", "3", "--bias", "--compile", "false",
                                     "--data_dir", "d"])
    assert values == {"lr": 3e-4, "n_layer": 3, "bias": True, "compile": False, "data_dir": "d"}
    for text, value in (("true", True), ("1", True), ("yes", True), ("On", True), ("false", False), ("0", False),
                        ("no", False), ("OFF", False)):  # each spelling, in any case
        assert settings.parse_train_args(["--bias", text])[3] == {"bias": value}, text


def test_a_negative_number_is_a_value_not_a_flag():
    """So that the config's check, not argparse's "expected one argument", answers `--min_lr -1e-4`."""
    flags = ["--min_lr", "-1e-4", "--lr", "-.5", "--seed", "-3", "--beta1", "-2E+1"]
    _, _, _, values = settings.parse_train_args(flags)
    assert values == {"min_lr": -1e-4, "lr": -0.5, "seed": -3, "beta1": -20.0}
    with pytest.raises(UserError, match="--min_lr is -0.0001, but it must be 0 or more"):
        settings.check_config(*settings.split_config({**config.PRESETS["shakespeare-cpu"], **values, "lr": 1e-3,
                                                  "beta1": 0.9}))


@pytest.mark.parametrize("name", list(config.PRESETS))
def test_every_preset_names_real_settings_of_their_types(name):
    settings.check_preset(name)  # each key a setting (or a typo's fix), each value its flag's type and choices


@pytest.mark.parametrize("name", list(config.DECAYS))
def test_every_decay_starts_at_lr_and_stays_between_min_lr_and_lr(name):
    settings.check_decay(name)  # (a fork's entry too: train.py checks it the same way)


@pytest.mark.parametrize("shape, message", [
    (lambda progress: 2 * (1 - progress), "config.DECAYS['mine'] gives 2 at progress 0, but a decay gives the share "
                                          "of lr - min_lr left: 1 there (the lr, as the warmup ends) — fix it in "
                                          "config.py"),
    (lambda progress: progress, "config.DECAYS['mine'] gives 0 at progress 0"),  # climbing
    (lambda progress: 1 - 2 * progress, "config.DECAYS['mine'] gives -0.1 at progress 0.55, but a decay gives "
                                        "the share of lr - min_lr left: from 0 (min_lr) to 1 (lr) — fix it in "
                                        "config.py")])
def test_a_decay_off_its_range_is_refused_in_a_line(shape, message, monkeypatch, data_dir, tmp_path):
    """A fork's decay that starts above 1 trained at twice --lr, and one that climbed, from 0, without a word."""
    monkeypatch.setitem(config.DECAYS, "mine", shape)
    with pytest.raises(UserError, match=re.escape(message)):
        train.main(TINY + ["--decay", "mine", "--data_dir", str(data_dir), "--out_dir", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()
    monkeypatch.setitem(config.DECAYS, "mine", lambda progress: float(progress < 0.5))  # a step: its range
    settings.check_decay("mine")
    # a run's own decay, edited since: a resume with a new --max_iters goes on down it, whatever --decay says
    args = TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "run"), "--max_iters", "4"]
    assert train.main(args + ["--decay", "mine"]) == 0
    monkeypatch.setitem(config.DECAYS, "mine", shape)
    with pytest.raises(UserError, match=re.escape(message)):
        train.main(args + ["--resume", "--decay", "cosine", "--max_iters", "8"])


@pytest.mark.parametrize("slip, message", [
    (dict(nlayer=2), "config.PRESETS['mine'] has 'nlayer', which is not a setting — did you mean 'n_layer'?"),
    (dict(n_layer="2"), "config.PRESETS['mine'] gives n_layer the str '2', but its type is int — e.g. n_layer=6"),
    (dict(qk_norm=1), "config.PRESETS['mine'] gives qk_norm the int 1, but its type is bool — e.g. qk_norm=False"),
    (dict(n_layer=True), "config.PRESETS['mine'] gives n_layer the bool True, but its type is int — e.g. n_layer=6"),
    (dict(compile="yes"), "config.PRESETS['mine'] gives compile the str 'yes', but its type is bool — e.g. "
                          "compile=False"),
    (dict(activation="swigloo"), "config.PRESETS['mine'] gives activation 'swigloo', which is not one of: gelu"),
], ids=["key", "type", "bool", "bool-for-int", "optional", "name"])
def test_a_preset_with_a_slip_is_refused_in_a_line(slip, message, monkeypatch, data_dir, tmp_path):
    """A preset is a plain dict: a key with a typo was skipped without a word (the run trained the
    default's 6 layers), and a string where a number belongs failed deep inside. Its --help says so too."""
    monkeypatch.setitem(config.PRESETS, "mine", {**config.PRESETS["shakespeare-cpu"], **slip})
    for args in (["--max_iters", "2"], ["--help"]):
        with pytest.raises(UserError) as refused:
            train.main(["--preset", "mine", "--data_dir", str(data_dir), "--out_dir", str(tmp_path / "o")] + args)
        assert str(refused.value).startswith(message)
    with pytest.raises(UserError, match=re.escape(message)):  # (train.setup, which bench.speed calls too)
        settings.build_config("mine", False, {})
    assert not (tmp_path / "o").exists()
    monkeypatch.setitem(config.PRESETS, "mine", {**config.PRESETS["shakespeare-cpu"], "lr": 1, "compile": None})
    settings.check_preset("mine")  # an int for a float is a number still, and None is --compile's own "auto"


def test_classic_preset_is_the_published_recipe():
    p = config.PRESETS["shakespeare"]
    assert (p["n_layer"], p["n_head"], p["n_embd"], p["block_size"], p["batch_size"]) == (6, 6, 384, 256, 64)
    assert (p["dropout"], p["lr"], p["min_lr"], p["warmup_iters"], p["beta2"], p["max_iters"]) == \
        (0.2, 1e-3, 1e-4, 100, 0.99, 5000)


def test_the_speedrun_preset_is_the_classic_model_scored_on_the_same_windows():
    """So that its val loss compares with the classic preset's: its 50 evaluation batches of 256
    windows are the very 200 batches of 64 that the classic preset scores (one seeded generator)."""
    classic, speedrun = config.PRESETS["shakespeare"], config.PRESETS["speedrun"]
    for name in ("n_layer", "n_head", "n_embd", "block_size", "dropout"):
        assert speedrun[name] == classic[name], name
    text = np.random.default_rng(0).integers(0, 65, 100_000).astype(np.uint16)

    def scored(p):
        generator = torch.Generator().manual_seed(config.TrainConfig.seed)
        return torch.cat([train.get_batch(text, p["batch_size"], p["block_size"], generator, torch.device("cpu"))[0]
                          for _ in range(p["eval_iters"])])  # (12800, 256)
    assert torch.equal(scored(speedrun), scored(classic))


@pytest.mark.parametrize("argv, message", [
    (["--max_iter", "5"], "did you mean --max_iters"),
    (["--lr", "fast"], "invalid float value"),
    (["--preset", "huge"], "invalid choice"),
    (["--bias", "maybe"], "expected true or false"),
    pytest.param(["--device", "cuda"], "sees no CUDA GPU here — use --device cpu",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")),
    (["--device", "tpu"], "unknown — use auto, cpu, cuda or mps"),
    (["--n_embd", "30", "--n_head", "4"], "not divisible by n_head"),
    (["--batch_size", "0"], "must be at least 1"),
    (["--dropout", "1.5"], "outside [0, 1)"),
    (["--dropout", "1"], "--dropout 1.0 is outside [0, 1)"),  # 1 would drop every activation
    (["--muon_lr", "0"], "--muon_lr is 0.0, but it must be above 0 and finite"),  # TINY's preset trains with Muon
    (["--lr", "nan"], "--lr is nan, but it must be above 0 and finite"),
    (["--lr", "inf"], "--lr is inf, but it must be above 0 and finite"),
    (["--min_lr", "-0.0001"], "--min_lr is -0.0001, but it must be 0 or more"),
    (["--weight_decay", "-0.1"], "--weight_decay is -0.1, but it must be 0 or more"),
    (["--beta1", "1"], "--beta1 1.0 is outside [0, 1)"),
    (["--n_embd", "100", "--n_head", "3", "--position", "learned"], "e.g. --n_head 4 or --n_embd 99"),
    (["--n_embd", "100", "--n_head", "3"], "e.g. --n_head 2 or --n_embd 102"),  # rotary: an even head size too
    (["--n_embd", "100", "--n_head", "4"], "the head size must be even, but n_embd 100 / n_head 4 is 25 — e.g. "
                                           "--n_head 5 or --n_embd 96, or --position learned"),
    (["--grad_clip", "-1"], "--grad_clip is -1.0, but it must be 0 or more and finite"),
    (["--warmup_iters", "-1"], "--warmup_iters is -1, but it must be 0 or more — e.g. the preset's value"),
    (["--dtype", "int8"], "use auto, float32, bfloat16 or float16"),
    (["--block_size", "100000"], "longer text or a smaller --block_size"),
])
def test_bad_flags_are_user_errors(argv, message, data_dir, tmp_path):
    with pytest.raises(UserError, match=re.escape(message)):
        train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "o")] + argv)
    assert not (tmp_path / "o" / "latest.pt").exists()


def test_missing_data_says_run_prepare(tmp_path, monkeypatch):
    """The fix named is the one for that folder: the download for the default, your text for another."""
    with pytest.raises(UserError, match="run `python prepare.py --input YOUR_TEXT_FILE --out_dir 'my data'` first"):
        train.main(TINY + ["--data_dir", "my data", "--out_dir", str(tmp_path / "o")])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="run `python prepare.py` first"):
        train.main(TINY + ["--out_dir", str(tmp_path / "o")])


def test_truncated_bin_is_caught(data_dir, tmp_path):
    broken = shutil.copytree(data_dir, tmp_path / "broken")
    with open(broken / "val.bin", "r+b") as f:
        f.truncate(101)
    with pytest.raises(UserError, match="val.bin has 101 bytes, not a whole number of uint16 tokens"):
        train.main(TINY + ["--data_dir", str(broken), "--out_dir", str(tmp_path / "o")])
    with open(broken / "val.bin", "r+b") as f:
        f.truncate(100)
    with pytest.raises(UserError, match="val.bin has 50 tokens, but vocab.json says"):
        train.main(TINY + ["--data_dir", str(broken), "--out_dir", str(tmp_path / "o")])


def test_default_preset_follows_the_device(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no out/ here
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    values, _, summary = settings.build_config(None, False, {})
    assert values["n_embd"] == 384 and summary == "config: preset shakespeare"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    values, _, summary = settings.build_config(None, False, {})
    assert values == config.PRESETS["shakespeare-cpu"] and summary == "config: preset shakespeare-cpu"


def test_the_default_preset_follows_the_device_asked_for(monkeypatch):
    """Not only the device found: --device cpu on a machine with CUDA gets the laptop recipe, --device cuda:1 the
    GPU one, and --help's first look at the flags (preset_shown) picks the preset that run would get."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    summary = settings.build_config(None, False, {"device": "cpu"})[2]
    assert summary == "config: preset shakespeare-cpu, with --device cpu"
    assert settings.preset_shown(["--device", "cpu"]) == ("shakespeare-cpu", False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert settings.default_preset("cuda:1") == "shakespeare"
    assert settings.preset_shown(["--device", "cuda"]) == ("shakespeare", False)


# ----------------------------------------------------------------------------
# Pieces of the loop


def test_batches_are_shifted_windows():
    data = np.arange(1000, dtype=np.uint16)
    g = torch.Generator().manual_seed(0)
    x, y = train.get_batch(data, 5, 8, g, torch.device("cpu"))
    assert x.shape == y.shape == (5, 8) and x.dtype == torch.long
    assert torch.equal(y, x + 1)  # in this data, the next id is always id + 1
    assert torch.equal(x[:, 1:], x[:, :-1] + 1)  # each row is a contiguous window
    assert x.min() >= 0 and y.max() <= 999
    x2, _ = train.get_batch(data, 5, 8, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert torch.equal(x, x2)


def test_batches_reach_both_ends():
    data = np.arange(20, dtype=np.uint16)
    g = torch.Generator().manual_seed(0)
    starts = torch.cat([train.get_batch(data, 64, 8, g, torch.device("cpu"))[0][:, 0] for _ in range(10)])
    assert starts.min() == 0 and starts.max() == 20 - 8 - 1  # y of the last window ends at the last id


def test_lr_schedule():
    cfg = config.TrainConfig(lr=1e-3, min_lr=1e-4, warmup_iters=10, max_iters=110)
    lrs = [train.lr_at(it, cfg) for it in range(111)]
    assert lrs[0] == pytest.approx(1e-3 / 11) and lrs[9] == pytest.approx(1e-3 * 10 / 11)
    assert lrs[10] == pytest.approx(1e-3)  # the peak, right after warmup
    assert lrs[60] == pytest.approx((1e-3 + 1e-4) / 2)  # half-way down the cosine
    assert lrs[35] == pytest.approx(1e-4 + 0.5 * (1 + math.cos(math.pi / 4)) * 9e-4), (
        "this pins nanoGPT's cosine decay, every preset's, on purpose: for another shape, add it to "
        "config.DECAYS and train with --decay NAME (README, \"Hack it\"), which leaves the cosine as it is")
    assert lrs[110] == pytest.approx(1e-4)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    linear = dataclasses.replace(cfg, decay="linear")  # config.DECAYS' other shape: the same steps down
    assert [train.lr_at(it, linear) for it in (10, 35, 60, 110)] == pytest.approx([1e-3, 1e-4 + 0.75 * 9e-4,
                                                                                  (1e-3 + 1e-4) / 2, 1e-4])


def test_weight_decay_only_on_matrices():
    model = GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=2, n_head=2, n_embd=16, bias=True))
    optimizer = optim.make_optimizer(model, config.TrainConfig(weight_decay=0.1), torch.device("cpu"))
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def gradients_the_optimizer_sees(micro_steps, grad_clip, scaled=False):
    """One train_step, every micro-batch the same batch -> the .grad tensors at optimizer.step.
    scaled: through fp16's GradScaler, which multiplies the loss by 65,536 and must divide it out again."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=16))
    cfg = config.TrainConfig(optimizer="adamw", grad_clip=grad_clip)
    optimizer = optim.make_optimizer(model, cfg, torch.device("cpu"))
    seen = []
    optimizer.step = lambda: seen.append([p.grad.clone() for p in model.parameters()])
    x = torch.randint(11, (4, 9), generator=torch.Generator().manual_seed(1))
    train.train_step(model, optimizer, torch.amp.GradScaler("cpu", enabled=scaled), lambda: (x[:, :-1], x[:, 1:]),
                     1e-3, cfg, train.nullcontext(), micro_steps, device=torch.device("cpu"))
    return seen[0]


def test_accumulation_averages_and_clipping_bounds_the_norm():
    """Three micro-batches give the gradient of one (an average, not a sum, which would also make
    clipping three times stricter), and grad_clip caps the norm the optimizer sees. Muon and AdamW
    hardly notice a gradient's scale, so whole runs would not catch either going wrong."""
    for one, three in zip(gradients_the_optimizer_sees(1, 0.0), gradients_the_optimizer_sees(3, 0.0), strict=True):
        torch.testing.assert_close(three, one)
    for scaled in (False, True):  # with fp16's loss scaling, clipping must see the true gradients, not 65,536 x
        clipped = gradients_the_optimizer_sees(1, 1e-3, scaled)
        assert torch.cat([g.flatten() for g in clipped]).norm().item() == pytest.approx(1e-3, rel=1e-4), scaled


def test_a_step_reports_the_mean_loss_of_its_micro_batches():
    """The loss train_step returns (the log's, the bar's) is the mean over its micro-batches, as
    with one big batch: a sum would read grad_accum times too high."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=16))
    cfg = config.TrainConfig(optimizer="adamw", grad_clip=0.0)
    optimizer = optim.make_optimizer(model, cfg, torch.device("cpu"))
    windows = [torch.randint(11, (4, 9), generator=torch.Generator().manual_seed(i)) for i in range(3)]
    with torch.no_grad():
        expected = sum(model(w[:, :-1], w[:, 1:])[1].item() for w in windows) / 3
    batches = iter((w[:, :-1], w[:, 1:]) for w in windows)
    loss, finite = train.train_step(model, optimizer, torch.amp.GradScaler("cpu", enabled=False),
                                    lambda: next(batches), 0.0, cfg, train.nullcontext(), 3, device=torch.device("cpu"))
    assert loss.item() == pytest.approx(expected, rel=1e-5) and finite.item()


def test_estimate_loss_is_repeatable_and_restores_train_mode():
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=1, n_embd=8, dropout=0.5))
    splits = {"train": np.arange(200, dtype=np.uint16) % 11, "val": np.arange(100, dtype=np.uint16) % 11}
    cfg = config.TrainConfig(batch_size=4, eval_iters=3)
    a = train.estimate_loss(model, splits, cfg, 8, torch.device("cpu"), train.nullcontext())
    b = train.estimate_loss(model, splits, cfg, 8, torch.device("cpu"), train.nullcontext())
    assert a == b  # same windows, dropout off
    assert model.training
    model.eval()  # and it is the mean loss of the eval_iters batches a generator seeded with cfg.seed draws
    generator = torch.Generator().manual_seed(cfg.seed)
    batches = [train.get_batch(splits["val"], 4, 8, generator, torch.device("cpu")) for _ in range(3)]
    with torch.no_grad():
        assert a["val"] == pytest.approx(sum(model(x, y)[1].item() for x, y in batches) / 3, rel=1e-6)


def test_a_slow_evaluation_shows_its_progress_in_process_0_only(monkeypatch, capsys):
    """A GPU preset's evaluation on a laptop takes many minutes: after a few seconds a bar shows
    that it is moving. Here the bar's delay is taken away, so that a quick evaluation counts as slow."""
    real = train.tqdm
    monkeypatch.setattr(train, "tqdm", lambda *args, **kwargs: real(*args, **(kwargs | {"delay": 0})))
    model = GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=1, n_embd=8))
    splits = {"train": np.arange(200, dtype=np.uint16) % 11, "val": np.arange(100, dtype=np.uint16) % 11}
    cfg = config.TrainConfig(batch_size=4, eval_iters=3)
    for rank in (0, 1):
        train.estimate_loss(model, splits, cfg, 8, torch.device("cpu"), train.nullcontext(), rank, world_size=2)
        err = capsys.readouterr().err
        assert ("evaluating train" in err and "evaluating val" in err) == (rank == 0), err
    monkeypatch.setattr(train, "tqdm", real)  # with its delay, a quick evaluation shows none
    train.estimate_loss(model, splits, cfg, 8, torch.device("cpu"), train.nullcontext())
    assert "evaluating" not in capsys.readouterr().err


@pytest.fixture
def foreground_signals():
    """The signals as a terminal's foreground process has them, whatever started pytest: Ctrl-C raises
    KeyboardInterrupt (a background job's SIGINT is ignored, and a second Ctrl-C would do nothing), and a SIGTERM
    that nothing else handles fails the test, where SIGTERM's own default would end pytest."""
    def fail(signum, frame):
        raise AssertionError("SIGTERM reached the test's own handler: the run did not take it")
    before = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
              signal.SIGTERM: signal.signal(signal.SIGTERM, fail)}
    yield
    for signum, handler in before.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_sets_the_stop_flag(signum, foreground_signals):
    """SIGTERM too (kill's, timeout's, a job scheduler's first): it ended the run with nothing saved."""
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}  # (a background job's: SIG_IGN)
    with bookkeeping.StopOnCtrlC() as stop:
        assert not stop.requested
        signal.raise_signal(signum)
        assert stop.requested and stop.signum == signum
        assert all(signal.getsignal(s) is h for s, h in before.items())  # a second one stops at once
    assert all(signal.getsignal(s) is h for s, h in before.items())


def test_a_handler_set_outside_python_is_put_back_as_the_default(foreground_signals):
    """signal.signal calls a handler that C code set None, and None passed back to it raised a TypeError, inside
    the signal's own handler."""
    stop = bookkeeping.StopOnCtrlC()
    stop.previous = {signal.SIGTERM: None}
    stop.restore()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


# ----------------------------------------------------------------------------
# Whole runs


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_mixed_precision_trains(dtype, data_dir, tmp_path):
    """The autocast and GradScaler paths that CUDA uses, exercised on the CPU."""
    out = tmp_path / "o"
    optimizer = ["--optimizer", "adamw"] if dtype == "float16" else []  # Muon refuses fp16's loss scaling
    assert train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(out), "--dtype", dtype] + optimizer) == 0
    rows = read_log(out)
    assert float(rows[-1]["val_loss"]) < float(rows[0]["val_loss"])
    ckpt = checkpoint.load_checkpoint(out / "latest.pt", "")
    assert all(v.dtype == torch.float32 for v in ckpt["model"].values())  # master weights stay fp32
    assert ckpt["scaler"] if dtype == "float16" else ckpt["scaler"] == {}


def test_checkpoints_are_self_contained(data_dir, tmp_path):
    out = tmp_path / "o"
    assert train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(out)]) == 0
    rows = read_log(out)
    assert [int(r["iter"]) for r in rows] == [0, 4, 8, 12]
    assert math.isclose(float(rows[0]["val_loss"]), math.log(40), abs_tol=0.3)  # about uniform at first
    best_val = min(float(r["val_loss"]) for r in rows[1:])
    for name in ("latest.pt", "best.pt"):
        ckpt = torch.load(out / name, map_location="cpu", weights_only=True)
        assert not any(k.startswith("_orig_mod.") for k in ckpt["model"])
        assert ckpt["best_val_loss"] == pytest.approx(best_val, abs=1e-6)
        assert ckpt["vocab"]["chars"] == data.load_vocab(data_dir)["chars"]
        model = GPT(GPTConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["model"])  # strict: every key present and no extras
    assert torch.load(out / "latest.pt", weights_only=True)["iter"] == 12
    assert not list(out.glob(".*tmp"))  # no temp files left behind


def test_a_second_fresh_run_does_not_overwrite(data_dir, tmp_path):
    out = tmp_path / "o"
    assert train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(UserError, match="already holds a run"):
        train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(out)])
    with pytest.raises(UserError, match=re.escape("--dropout 1.5 is outside [0, 1)")):  # a bad flag is told first:
        train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(out), "--dropout", "1.5"])  # not 2 tries
    with pytest.raises(UserError, match="--dtype 'bf16' is unknown — use auto, float32, bfloat16 or float16"):
        train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(out), "--dtype", "bf16"])  # so is a dtype
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_run_without_checkpoints_may_be_started_again_and_its_log_is_kept(data_dir, tmp_path, capsys):
    """A run killed before its first save leaves iteration 0's row at most: nothing to keep. One stopped in
    its first save (a full disk), or whose checkpoints were deleted, leaves more: kept as log.prev.csv."""
    out = tmp_path / "o"
    out.mkdir()
    row_0 = "0,4.170000,4.172000,0,0.0,0.41\n"
    (out / "log.csv").write_text(f"{bookkeeping.LOG_HEADER}\n{row_0}")
    args = TINY + ["--data_dir", str(data_dir), "--out_dir", str(out)]
    assert train.main(args) == 0
    assert not (out / "log.prev.csv").exists()
    earlier = (out / "log.csv").read_text()
    for name in ("best.pt", "latest.pt"):
        (out / name).unlink()
    assert train.main(args) == 0
    assert (out / "log.prev.csv").read_text() == earlier  # every row, as it was
    assert f"kept the log of an earlier run in {out}, which has no checkpoint, as {out / 'log.prev.csv'}" \
        in capsys.readouterr().out
    losses = lambda text: [line.split(",")[:4] for line in text.splitlines()]  # (speed and time vary)
    assert losses((out / "log.csv").read_text()) == losses(earlier)  # the same seed: the same run again
    (out / "log.csv").write_bytes(earlier.encode() + b"\xff notes\n")  # not text after all: kept, not a traceback
    for name in ("best.pt", "latest.pt"):
        (out / name).unlink()
    assert train.main(args) == 0
    assert (out / "log.prev2.csv").read_bytes().endswith(b"\xff notes\n")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "log.csv").write_text("\nmy notes, after a blank line\n")  # not train.py's: refused, as any other
    with pytest.raises(UserError, match="log.csv was not written by train.py"):
        train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(mine)])


def test_resume_refuses_another_model_shape_or_vocabulary(data_dir, tmp_path):
    out = tmp_path / "o"
    args = TINY + ["--data_dir", str(data_dir), "--out_dir", str(out)]
    assert train.main(args) == 0
    with pytest.raises(UserError, match="n_embd=32"):
        train.main(args + ["--resume", "--n_embd", "64"])
    other = tmp_path / "other"
    other.mkdir()
    (other / "t.txt").write_text("0123456789 " * 200)
    import prepare
    prepare.main(["--input", str(other / "t.txt"), "--out_dir", str(other)])
    with pytest.raises(UserError, match="different vocabulary"):
        train.main(args + ["--resume", "--data_dir", str(other)])
    with pytest.raises(UserError, match=r"n_layer=2 \(preset shakespeare: 6\)"):  # another preset's model
        train.main(["--data_dir", str(data_dir), "--out_dir", str(out), "--resume", "--preset", "shakespeare"])
    with pytest.raises(UserError, match=r"block_size=16 \(preset shakespeare: 256\), n_layer=2 \(given: 4\)"):
        train.main(["--data_dir", str(data_dir), "--out_dir", str(out), "--resume", "--preset", "shakespeare",
                    "--n_layer", "4"])  # a flag over the preset's value is the user's
    with pytest.raises(UserError, match="nothing to resume"):
        train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "new"), "--resume"])


def test_a_moved_run_resumes_where_it_is_now(data_dir, tmp_path, monkeypatch):
    """The checkpoint keeps the --out_dir it was trained in; --resume goes on in the folder it read."""
    assert train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "first")]) == 0
    (tmp_path / "first").rename(tmp_path / "out")
    monkeypatch.chdir(tmp_path)
    assert train.main(TINY + ["--data_dir", str(data_dir), "--resume", "--max_iters", "16"]) == 0  # out: the default
    assert not (tmp_path / "first").exists()
    assert torch.load(tmp_path / "out" / "latest.pt", weights_only=True)["iter"] == 16


@contextmanager
def another_process_holding(lock, says_who=True):
    """A process that holds lock's file lock, as a train.py training there would, until the block ends. -> its pid.
    says_who=False: it has not written its pid yet, as a run that took the lock a moment ago."""
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                               "f = open(sys.argv[1], 'a+'); fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
                               f"f.truncate(0); f.write(str(os.getpid()) if {says_who} else ''); f.flush()\n"
                               "print('held', flush=True); time.sleep(60)", str(lock)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.skipif(bookkeeping.fcntl is None, reason="no file locks on Windows")
def test_one_run_at_a_time_in_an_out_dir(data_dir, tmp_path, capsys):
    """While another process holds the folder's lock (as a train.py there would), a second run, new
    or resumed, is refused before it touches log.csv, and before its start-up lines; once that process
    has ended, the same command trains. This process trains there twice: it never shuts itself out."""
    run = ["--data_dir", str(data_dir), "--out_dir", str(tmp_path)]
    assert train.main(TINY + run) == 0
    log = (tmp_path / "log.csv").read_bytes()
    fresh = ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "new")]  # a new run, before its first save
    (tmp_path / "new").mkdir()
    with another_process_holding(tmp_path / "train.lock") as pid, \
            another_process_holding(tmp_path / "new" / "train.lock") as new_pid:
        capsys.readouterr()
        for argv, holder in ((run + ["--resume", "--max_iters", "16"], pid), (fresh, new_pid)):
            with pytest.raises(UserError, match=rf"^another train.py \(process {holder}\) is training in .* — wait"):
                train.main(TINY + argv)
            assert capsys.readouterr() == ("", "")  # (it printed the settings, and a busy-CPU note, first)
        # bench.speed's run writes nothing in out_dir: it goes on beside a train.py there
        sizes = {"device": "cpu", "n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 16}
        assert train.setup(None, False, {**sizes, "data_dir": str(data_dir), "out_dir": str(tmp_path)}, new_run=False)
        assert (tmp_path / "log.csv").read_bytes() == log
    assert train.main(TINY + run + ["--resume", "--max_iters", "16"]) == 0


@pytest.mark.skipif(bookkeeping.fcntl is None, reason="no file locks on Windows")
def test_a_resume_beside_a_run_that_has_not_saved_yet_is_told_so(data_dir, tmp_path):
    """It said "no checkpoint ... run without --resume", and that, done, hit the lock's error."""
    (tmp_path / "log.csv").write_text("")  # what a run in its first steps has: a lock, no checkpoint
    argv = TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path), "--resume"]
    with another_process_holding(tmp_path / "train.lock") as pid:
        with pytest.raises(UserError, match=rf"^another train.py \(process {pid}\) is training in .* — wait"):
            train.main(argv)
    with pytest.raises(UserError, match="there is nothing to resume"):  # the lock let go: the usual line
        train.main(argv)
    with another_process_holding(tmp_path / "train.lock", says_who=False):  # it said "(process ?)"
        with pytest.raises(UserError, match=r"^another train.py \(one starting as this one did\) is training in "):
            train.main(argv)


@pytest.mark.skipif(bookkeeping.fcntl is None, reason="no file locks on Windows")
def test_under_torchrun_process_0_alone_looks_for_another_run(data_dir, tmp_path, monkeypatch):
    """The others, looking at once, would each find another's look (the lock, held for a moment) and refuse."""
    overrides = {"data_dir": str(data_dir), "out_dir": str(tmp_path), "device": "cpu"}
    with another_process_holding(tmp_path / "train.lock") as pid:
        with pytest.raises(UserError, match=rf"^another train.py \(process {pid}\) is training in"):
            settings.load_settings(None, False, overrides)  # process 0, or no torchrun
        monkeypatch.setenv("RANK", "1")
        cfg, *_ = settings.load_settings(None, False, overrides)  # process 1 leaves it to process 0
        assert cfg.out_dir == str(tmp_path)


@pytest.mark.skipif(bookkeeping.fcntl is None, reason="no file locks on Windows")
def test_two_runs_in_one_process_share_the_lock_until_the_last_ends(tmp_path):
    """A lockf lock goes when any descriptor of its file closes: the first run's end must not take it
    from a second, still training in the same process (a notebook)."""
    class Run:  # what claim_out_dir reads of a run
        out_dir = tmp_path

    def free():  # as another process sees it
        probe = ("import fcntl, sys\nf = open(sys.argv[1], 'r+')\ntry:\n    fcntl.lockf(f, fcntl.LOCK_EX | "
                 "fcntl.LOCK_NB)\nexcept OSError:\n    sys.exit(1)")
        return subprocess.run([sys.executable, "-c", probe, str(tmp_path / "train.lock")]).returncode == 0

    first, second = Run(), Run()
    bookkeeping.claim_out_dir(first)
    bookkeeping.claim_out_dir(second)
    assert not free()
    del first
    assert not free()
    del second
    assert free()


def ctrl_c_during_step(step, monkeypatch):
    """A Ctrl-C in the middle of that step (lr_at is called once at the top of each): the run finishes the
    step, saves and stops. -> a function that takes the Ctrl-C away again, for the resume."""
    lr_at = train.lr_at

    def with_ctrl_c(it, cfg, *rest):
        if it == step:
            signal.raise_signal(signal.SIGINT)
        return lr_at(it, cfg, *rest)

    monkeypatch.setattr(train, "lr_at", with_ctrl_c)
    return lambda: monkeypatch.setattr(train, "lr_at", lr_at)


@pytest.mark.parametrize("levers", [[], ["--optimizer", "muon", "--position", "rotary", "--qk_norm"],
                                    ["--dtype", "float16", "--optimizer", "adamw"]], ids=["classic", "levers", "fp16"])
def test_stop_and_resume_gives_the_same_run(levers, data_dir, tmp_path, monkeypatch):
    """Ctrl-C mid-run, resume, and the losses and final weights match an uninterrupted run.

    Dropout and gradient accumulation are on, so the torch RNG and the data RNG
    both have to be restored exactly; in fp16, the loss scaler's state too.
    """
    args = TINY + ["--data_dir", str(data_dir), "--dropout", "0.1", "--grad_accum", "2"] + levers
    assert train.main(args + ["--out_dir", str(tmp_path / "whole")]) == 0

    undo = ctrl_c_during_step(6, monkeypatch)
    parts = tmp_path / "parts"
    assert train.main(args + ["--out_dir", str(parts)]) == 130  # step 6 finishes, then it stops
    assert torch.load(parts / "latest.pt", weights_only=True)["iter"] == 7
    undo()
    assert train.main(args + ["--out_dir", str(parts), "--resume"]) == 0

    whole_log, parts_log = read_log(tmp_path / "whole"), read_log(parts)
    assert [(r["iter"], r["train_loss"], r["val_loss"]) for r in whole_log] == \
        [(r["iter"], r["train_loss"], r["val_loss"]) for r in parts_log]
    for name in ("latest.pt", "best.pt"):
        a = torch.load(tmp_path / "whole" / name, weights_only=True)
        b = torch.load(parts / name, weights_only=True)
        assert a["iter"] == b["iter"] and a["scaler"] == b["scaler"]  # ({} but in fp16: its scale and count)
        for key in a["model"]:
            assert torch.equal(a["model"][key], b["model"][key]), key


def test_a_sigterm_saves_and_stops_as_a_ctrl_c_does(data_dir, tmp_path, monkeypatch, capsys, foreground_signals):
    """`timeout 300 python train.py` or `kill PID`: the run ended silently, and its steps since the last evaluation
    were lost. Now the step finishes, latest.pt is saved, and the exit status is SIGTERM's, 128 + 15."""
    args = TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path)]
    lr_at = train.lr_at
    monkeypatch.setattr(train, "lr_at", lambda it, *rest: (it == 6 and signal.raise_signal(signal.SIGTERM),
                                                           lr_at(it, *rest))[1])
    before = signal.getsignal(signal.SIGTERM)
    assert train.main(args) == 143
    out = capsys.readouterr().out
    assert "SIGTERM: stopping after this step" in out
    assert f"stopped by SIGTERM at iteration 7; saved {tmp_path / 'latest.pt'}" in out
    assert torch.load(tmp_path / "latest.pt", weights_only=True)["iter"] == 7
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("first, step", [(signal.SIGINT, 1), (signal.SIGINT, 6), (signal.SIGTERM, 6)],
                         ids=["before-a-checkpoint", "after-one", "after-a-sigterm"])
def test_a_second_ctrl_c_says_where_the_run_goes_on_from(first, step, data_dir, tmp_path, monkeypatch,
                                                         foreground_signals):
    """It stops at once, saving nothing, and said only "interrupted": now it says what the resume has to go on
    from (iteration 4's checkpoint, after step 6), or that there is none yet."""
    lr_at = train.lr_at

    def twice(it, *rest):
        if it == step:
            signal.raise_signal(first)  # asks to stop after this step
            signal.raise_signal(signal.SIGINT)  # stops it at once: KeyboardInterrupt
        return lr_at(it, *rest)
    monkeypatch.setattr(train, "lr_at", twice)
    with pytest.raises(KeyboardInterrupt) as stopped:
        train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path)])
    if step == 1:
        assert str(stopped.value) == "at iteration 1, before any checkpoint — start the run again"
    else:
        assert str(stopped.value) == (f"at iteration 6, without saving — go on from the last checkpoint with: "
                                      f"python train.py --resume --out_dir {tmp_path}")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def ctrl_c_in_evaluation(number, monkeypatch, where="estimate_loss"):
    """A Ctrl-C as evaluation number (0: the first) begins, or, where="append_log", once it has measured; counts
    every evaluation begun. -> that count, a list of one number"""
    called, original = [0], getattr(train, where)

    def with_ctrl_c(*a, **k):
        called[0] += 1
        if called[0] == number + 1:
            signal.raise_signal(signal.SIGINT)
        return original(*a, **k)
    monkeypatch.setattr(train, where, with_ctrl_c)
    return called


def rows(out_dir):  # log.csv but its clocks (tokens/s, elapsed), which differ from run to run
    return [(r["iter"], r["train_loss"], r["val_loss"], r["lr"]) for r in read_log(out_dir)]


@pytest.mark.parametrize("number", [0, 1], ids=["first", "second"])
def test_ctrl_c_in_an_evaluation_stops_it_at_once_and_the_resume_does_it_first(number, data_dir, tmp_path,
                                                                                monkeypatch, capsys):
    """A Ctrl-C in the untrained model's evaluation (minutes on a busy CPU, where the start-up's note says to
    Ctrl-C and --resume) waited for its end; now it stops it at once, saves latest.pt, and the resume does that
    evaluation first: the same log and weights as the run never stopped."""
    args = TINY + ["--data_dir", str(data_dir), "--dropout", "0.1"]
    assert train.main(args + ["--out_dir", str(tmp_path / "whole")]) == 0
    counted = ctrl_c_in_evaluation(number, monkeypatch)
    parts = tmp_path / "parts"
    capsys.readouterr()
    assert train.main(args + ["--out_dir", str(parts)]) == 130
    saved = torch.load(parts / "latest.pt", weights_only=True)
    lr = float(read_log(tmp_path / "whole")[number]["lr"])  # the evaluation's, as log.csv shows it
    assert saved["iter"] == 4 * number and saved["owed_evaluation"][0] == pytest.approx(lr, rel=1e-4)
    assert f"stopped at iteration {4 * number} (in its evaluation, which the resume does first); saved " \
        f"{parts / 'latest.pt'} — continue with" in capsys.readouterr().out
    monkeypatch.undo()
    assert train.main(args + ["--out_dir", str(parts), "--resume"]) == 0
    assert rows(parts) == rows(tmp_path / "whole") and counted == [number + 1]
    whole, resumed = (torch.load(d / "latest.pt", weights_only=True)["model"] for d in (tmp_path / "whole", parts))
    assert all(torch.equal(whole[key], resumed[key]) for key in whole)


def test_a_ctrl_c_in_the_step_before_an_evaluation_does_not_begin_it(data_dir, tmp_path, monkeypatch):
    """Pressed in the step before iteration 4's evaluation, the Ctrl-C waited for that whole evaluation."""
    args = TINY + ["--data_dir", str(data_dir), "--dropout", "0.1"]
    assert train.main(args + ["--out_dir", str(tmp_path / "whole")]) == 0
    ctrl_c_during_step(3, monkeypatch)
    counted = ctrl_c_in_evaluation(-1, monkeypatch)  # (no Ctrl-C of its own: counts them)
    parts = tmp_path / "parts"
    assert train.main(args + ["--out_dir", str(parts)]) == 130
    saved = torch.load(parts / "latest.pt", weights_only=True)
    assert counted == [1] and saved["iter"] == 4 and saved["owed_evaluation"] is not None  # iteration 0's alone
    monkeypatch.undo()
    assert train.main(args + ["--out_dir", str(parts), "--resume"]) == 0
    assert rows(parts) == rows(tmp_path / "whole")


def test_a_resume_after_the_first_evaluation_does_not_do_it_again(data_dir, tmp_path, monkeypatch, capsys):
    """A Ctrl-C once the untrained model was measured, before the first step: the resume measured it again (a
    minute more on a busy CPU); now it goes on with the first step, and the log is the whole run's."""
    args = TINY + ["--data_dir", str(data_dir)]
    assert train.main(args + ["--out_dir", str(tmp_path / "whole")]) == 0
    ctrl_c_in_evaluation(0, monkeypatch, where="append_log")  # (after the measuring: it goes on to its end)
    parts = tmp_path / "parts"
    assert train.main(args + ["--out_dir", str(parts)]) == 130
    assert torch.load(parts / "latest.pt", weights_only=True)["owed_evaluation"] is None
    monkeypatch.undo()
    counted = ctrl_c_in_evaluation(-1, monkeypatch)  # (no Ctrl-C: counts them)
    assert train.main(args + ["--out_dir", str(parts), "--resume"]) == 0
    assert counted == [3] and rows(parts) == rows(tmp_path / "whole")  # iterations 4, 8 and 12


@pytest.mark.parametrize("number", [0, 1], ids=["new-run", "resumed"])
def test_the_bars_clock_starts_after_the_evaluation_a_run_begins_with(number, data_dir, tmp_path, monkeypatch):
    """Its rate and time left are the steps': the untrained model's evaluation was left out of them, but an owed
    one (a resume's, number 1) was counted."""
    args = TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path)]
    if number:
        ctrl_c_in_evaluation(number, monkeypatch)
        assert train.main(args) == 130
        monkeypatch.undo()
    bars, ended, evaluate = [], [], train.evaluate

    class Kept(train.tqdm):  # (a bar as train.py makes it, kept to read its clock)
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            bars.append(self)
    monkeypatch.setattr(train, "tqdm", Kept)
    monkeypatch.setattr(train, "evaluate", lambda *a: (evaluate(*a), ended.append(time.time())))
    assert train.main(args + ["--resume"] * number) == 0
    assert bars[0].start_t >= ended[0]  # (tqdm's clock is time.time's)


def test_a_ctrl_c_in_the_last_evaluation_lets_it_finish(data_dir, tmp_path, monkeypatch):
    """The last evaluation ends the run: cut, a resume would find nothing left to train."""
    ctrl_c_in_evaluation(3, monkeypatch)  # iteration 12's, of TINY's 12
    assert train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path)]) == 0
    assert read_log(tmp_path)[-1]["iter"] == "12"
    assert torch.load(tmp_path / "latest.pt", weights_only=True)["owed_evaluation"] is None


def test_resume_drops_log_rows_past_the_checkpoint(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("iter,train_loss,val_loss,lr,tokens_per_sec,elapsed_s\n0,4,4,0,0,0\n4,3,3,1,1,1\n8,2,2,1,1,2\n")
    bookkeeping.trim_log(log, 4)
    assert [r["iter"] for r in csv.DictReader(log.open())] == ["0", "4"]


def test_a_log_row_cut_short_by_a_crash_is_left_out(tmp_path):
    """Rows are appended, not written atomically: a crash (or a full disk) mid-append leaves part of one."""
    log = tmp_path / "log.csv"
    log.write_text("iter,train_loss,val_loss,lr,tokens_per_sec,elapsed_s\n0,4,4,0,0,0\n4,3,3,1,1,1\n8,2.1,2")
    assert checkpoint.read_log(log) == ((0, 4), (4.0, 3.0), (4.0, 3.0))  # plot.py loss: not a val loss of 2
    bookkeeping.trim_log(log, 8)
    assert [r["iter"] for r in csv.DictReader(log.open())] == ["0", "4"]
    log.write_text(log.read_text() + "\n")  # a blank last line, as an editor may leave: ignored
    bookkeeping.trim_log(log, 8)
    assert [r["iter"] for r in csv.DictReader(log.open())] == ["0", "4"]
    with pytest.raises(UserError, match=r"--out_dir .*log.csv is a file, not a run's folder — use --out_dir"):
        checkpoint.read_log(log / "log.csv")  # plot.py loss --out_dir out/run/log.csv
    with pytest.raises(UserError, match=r"cannot read .*log.csv/run/log.csv \(Not a directory\) — point --out_dir"):
        checkpoint.read_log(log / "run" / "log.csv")  # a file further up: no "use --out_dir <a file>"


# ----------------------------------------------------------------------------
# Muon


@pytest.mark.parametrize("shape", [(16, 64), (64, 16), (24, 40)])
def test_orthogonalize_evens_out_the_singular_values(shape):
    torch.manual_seed(0)
    G = torch.randn(*shape) @ torch.diag(torch.logspace(-1, 1, shape[1]))  # directions of very different size
    S = torch.linalg.svdvals(optim.orthogonalize(G))
    assert S.min() > 0.5 and S.max() < 1.3  # all near 1 (Newton-Schulz does not need them exact)
    U, _, Vh = torch.linalg.svd(G, full_matrices=False)
    assert (optim.orthogonalize(G) * (U @ Vh)).sum() / min(shape) > 0.8  # and pointing the way U Vᵀ does


@pytest.mark.parametrize("found_inf", [None, 0.0, 1.0], ids=["plain", "told-to-step", "told-to-skip"])
def test_muon_decays_the_weights_apart_from_the_gradient(found_inf):
    """With a zero gradient the update is zero, so the decoupled weight decay is all that moves the
    weights: by a factor (1 - lr * weight_decay), in both of step's branches, and not when skipped."""
    W = torch.nn.Parameter(torch.randn(8, 4, generator=torch.Generator().manual_seed(0)))
    W.grad = torch.zeros_like(W)
    optimizer = optim.Muon([W], lr=0.1, weight_decay=0.5)
    if found_inf is not None:
        optimizer.found_inf = torch.tensor(found_inf)  # as step_unless sets it
    before = W.detach().clone()
    optimizer.step()
    torch.testing.assert_close(W.detach(), before * (1 - 0.1 * 0.5 if found_inf != 1.0 else 1.0))


@pytest.mark.parametrize("shape", [(8, 2), (2, 8)], ids=["tall", "wide"])
def test_muon_scales_up_the_update_of_a_tall_matrix_only(shape):
    """Without momentum a step is exactly lr * sqrt(max(1, rows/cols)) * orthogonalize(grad)."""
    W = torch.nn.Parameter(torch.randn(shape, generator=torch.Generator().manual_seed(0)))
    grad = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    before, W.grad = W.detach().clone(), grad.clone()
    optim.Muon([W], lr=0.1, momentum=0.0, weight_decay=0.0).step()
    rows, cols = shape
    torch.testing.assert_close(before - W.detach(), 0.1 * max(1, rows / cols) ** 0.5 * optim.orthogonalize(grad))


def test_muon_looks_one_step_ahead_with_its_momentum():
    """Nesterov momentum, worked out by hand for momentum 0.9: buf = 0.1 g1, then 0.09 g1 + 0.1 g2;
    the second step orthogonalises g2 + 0.9 (buf - g2) = 0.081 g1 + 0.19 g2. (One step cannot show
    it: the first update, 0.19 g1, orthogonalises to what g1 does.)"""
    W = torch.nn.Parameter(torch.zeros(4, 4))
    g1, g2 = (torch.randn(4, 4, generator=torch.Generator().manual_seed(i)) for i in (1, 2))
    optimizer = optim.Muon([W], lr=0.1, momentum=0.9, weight_decay=0.0)
    W.grad = g1.clone()
    optimizer.step()
    before, W.grad = W.detach().clone(), g2.clone()
    optimizer.step()
    torch.testing.assert_close(before - W.detach(), 0.1 * optim.orthogonalize(0.081 * g1 + 0.19 * g2),
                               rtol=1e-4, atol=1e-5)


def test_muon_decreases_the_loss_on_a_toy_problem():
    torch.manual_seed(0)
    target = torch.randn(24, 16)
    W = torch.nn.Parameter(torch.zeros(24, 16))
    x = torch.randn(256, 16)
    optimizer = optim.Muon([W], lr=0.2)  # a constant lr: it gets close, then hovers
    losses = []
    for _ in range(60):
        loss = ((x @ W.T - x @ target.T) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    assert all(b < a for a, b in zip(losses[:15], losses[1:16]))  # falls at every early step


def test_muon_steps_matrices_of_one_shape_together_as_it_would_one_by_one():
    """Stacking same-shape matrices into one batched Newton-Schulz is a speed-up, not a change."""
    torch.manual_seed(0)
    shapes = [(8, 4), (8, 4), (4, 8), (8, 4), (6, 6)]
    together = [torch.nn.Parameter(torch.randn(s, dtype=torch.float64)) for s in shapes]
    alone = [torch.nn.Parameter(p.detach().clone()) for p in together]
    opt_together = optim.Muon(together, lr=0.1, weight_decay=0.1)
    opt_alone = [optim.Muon([p], lr=0.1, weight_decay=0.1) for p in alone]
    for _ in range(3):
        grads = [torch.randn(s, dtype=torch.float64) for s in shapes]
        for p, q, g in zip(together, alone, grads):
            p.grad, q.grad = g.clone(), g.clone()
        opt_together.step()
        for opt in opt_alone:
            opt.step()
    for p, q in zip(together, alone):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12)


def test_muon_takes_the_block_matrices_and_adamw_the_rest():
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=2, n_head=2, n_embd=16))
    cfg = config.TrainConfig(optimizer="muon", lr=1e-3, muon_lr=0.03, weight_decay=0.1)
    optimizer = optim.make_optimizer(model, cfg, torch.device("cpu"))
    kinds = {group["kind"]: group for group in optimizer.param_groups}
    names = {id(p): n for n, p in model.named_parameters()}
    assert sorted(names[id(p)] for p in kinds["muon"]["params"]) == sorted(
        n for n, p in model.named_parameters() if p.dim() == 2 and n.startswith("transformer.h."))
    assert {names[id(p)] for p in kinds["decay"]["params"]} == {"transformer.wte.weight", "transformer.wpe.weight"}
    assert kinds["muon"]["lr_scale"] == pytest.approx(30) and kinds["no_decay"]["weight_decay"] == 0
    assert kinds["muon"]["weight_decay"] == kinds["decay"]["weight_decay"] == 0.1
    optim.set_lr(optimizer, 5e-4)  # half-way down the schedule: Muon's lr goes down with AdamW's
    assert kinds["muon"]["lr"] == pytest.approx(0.015) and kinds["decay"]["lr"] == kinds["no_decay"]["lr"] == 5e-4
    assert isinstance(optimizer.state_dict()["optimizers"], list)
    # a fork that renames transformer.h keeps Muon on its blocks: they are found by their class, not their name
    model.transformer["blocks"] = model.transformer.pop("h")
    renamed = {g["kind"]: g for g in optim.make_optimizer(model, cfg, torch.device("cpu")).param_groups}
    assert [id(p) for p in renamed["muon"]["params"]] == [id(p) for p in kinds["muon"]["params"]]


# ----------------------------------------------------------------------------
# What a newcomer tries next


def test_training_longer_goes_on_from_the_learning_rate_the_run_had(data_dir, tmp_path, capsys):
    """A finished 12-step run taken on to 24 steps: no jump back up to the peak learning rate,
    and a lower val loss at the end than at step 12."""
    args = TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "o")]
    assert train.main(args) == 0
    capsys.readouterr()
    assert train.main(args + ["--resume", "--max_iters", "24"]) == 0
    assert "note: the run had finished its decay, so the new steps train at --min_lr, 8.00e-04 (--lr has no effect " \
        "here)" in capsys.readouterr().out
    rows = read_log(tmp_path / "o")
    assert [int(r["iter"]) for r in rows][-4:] == [12, 16, 20, 24]
    assert max(float(r["lr"]) for r in rows if int(r["iter"]) > 12) == pytest.approx(8e-4)  # min_lr, no jump
    assert float(rows[-1]["val_loss"]) < float(next(r for r in rows if r["iter"] == "12")["val_loss"])


def test_an_extension_stopped_and_resumed_keeps_its_schedule(data_dir, tmp_path, monkeypatch):
    """The checkpoint keeps where an extension's decay began (extended_at). Resumed without it, a
    stopped extension would fall back to the cosine of the whole 24 steps and throw the lr back up."""
    args = TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "o")]
    assert train.main(args) == 0
    undo = ctrl_c_during_step(17, monkeypatch)
    assert train.main(args + ["--resume", "--max_iters", "24"]) == 130
    undo()
    assert train.main(args + ["--resume", "--max_iters", "24"]) == 0
    rows = read_log(tmp_path / "o")
    assert [int(r["iter"]) for r in rows][-4:] == [12, 16, 20, 24]
    assert [float(r["lr"]) for r in rows[-3:]] == pytest.approx([8e-4] * 3)  # min_lr, before and after the stop


def test_a_run_shorter_than_its_warmup_says_so(data_dir, tmp_path, capsys):
    """--max_iters 50 of the bigram preset (warmup 100) never reaches the peak lr: one note says
    so and what to pass; the log's lr shows why. A run past its warmup says nothing."""
    args = ["--preset", "bigram", "--device", "cpu", "--data_dir", str(data_dir), "--eval_iters", "2"]
    assert train.main(args + ["--out_dir", str(tmp_path / "short"), "--max_iters", "50"]) == 0
    note = ("note: the run's 50 iterations (max_iters) end inside its 100-step warmup (warmup_iters), so the "
            "learning rate never reaches its peak, lr=0.03 — add e.g. --warmup_iters 5")
    assert capsys.readouterr().out.count(note) == 1
    assert max(float(r["lr"]) for r in read_log(tmp_path / "short")) < 0.03 / 2
    assert train.main(args + ["--out_dir", str(tmp_path / "long"), "--max_iters", "50", "--warmup_iters", "5"]) == 0
    assert "end inside" not in capsys.readouterr().out


def test_a_gpu_sized_run_on_a_cpu_says_so(data_dir, tmp_path, capsys, monkeypatch):
    """The shakespeare preset is 675 times the CPU default's work (hours on a laptop): a note says so at the
    start. The measure: layers x width² x tokens, so the presets compare by their sizes alone."""
    def times(name):
        cfg, mcfg = settings.split_config({**config.PRESETS[name], "vocab_size": 65})
        return bookkeeping.times_the_cpu_default(cfg, mcfg, cfg.max_iters)
    presets = ("shakespeare-cpu", "classic-cpu", "speedrun", "shakespeare")
    assert [times(name) for name in presets] == [1, 1.25, 270, 675]
    args = TINY + ["--data_dir", str(data_dir), "--max_iters", "4", "--eval_iters", "1"]
    assert train.main(args + ["--out_dir", str(tmp_path / "small")]) == 0
    assert "sized for a GPU" not in capsys.readouterr().out
    monkeypatch.setattr(bookkeeping, "times_the_cpu_default", lambda cfg, mcfg, steps: 675.0)
    assert train.main(args + ["--out_dir", str(tmp_path / "large")]) == 0
    assert "note: this run is about 675 times the work of the CPU default, which takes 2 minutes on 2 cores: about " \
           "22 hours there (the progress bar estimates it here) — a smaller --max_iters" in capsys.readouterr().out


def test_evaluating_more_than_training_gets_a_note(data_dir, tmp_path, capsys):
    """A run of 50 steps, 2 layers 64 wide, with 100 evaluation batches spent 33.0 s of its 46.4 s evaluating, 2.5
    times its training's 13.4 (2-core Intel Xeon VM, one thread; the note's estimate: 3 times;
    bench/results/2026-12-06-xeon/evaluation-note.log): a note says so at the start. No preset of the repo's gets it."""
    for name, preset in config.PRESETS.items():
        assert bookkeeping.evaluation_note(settings.split_config({**preset, "vocab_size": 65})[0], 0) is None, name
    cfg = config.TrainConfig(max_iters=50)  # eval_interval 250, eval_iters 200: step 0's evaluation and step 50's
    assert bookkeeping.evaluation_note(cfg, 0) == (
        "note: this run's 2 evaluations of 200 batches per split are about 5 times the work of its 50 training steps "
        "— a smaller --eval_iters (the CPU default's is 50) gives a rougher val loss sooner")
    assert "this run's 1 evaluation of 200 batches per split is about 13 times the work of its 10 training steps" in \
        bookkeeping.evaluation_note(cfg, 40)  # resumed at 40: the last step's evaluation alone
    assert bookkeeping.evaluation_note(config.TrainConfig(max_iters=50, eval_iters=20), 0) is None
    assert bookkeeping.evaluation_note(config.TrainConfig(max_iters=200), 0) is None  # 1.3 times: no note
    resumed = bookkeeping.evaluation_note(config.TrainConfig(max_iters=60, eval_interval=20, eval_iters=200), 20)
    assert "2 evaluations" in resumed and "a larger --eval_interval" in resumed  # (a resumed run's fewest: 1)
    # resumed after a Ctrl-C in the evaluation at 40, which it does first; at 0, once that one was done (none owed)
    assert "2 evaluations of 200 batches per split are about 27 times" in bookkeeping.evaluation_note(cfg, 40, True)
    assert "1 evaluation of 200 batches per split is about 3 times" in bookkeeping.evaluation_note(cfg, 0, False)
    short = bookkeeping.evaluation_note(config.TrainConfig(max_iters=1, eval_iters=20), 0)
    assert short.endswith("its 1 training step — a smaller --eval_iters gives a rougher val loss sooner, a larger "
                          "--max_iters more training")
    often = bookkeeping.evaluation_note(config.TrainConfig(max_iters=100, eval_interval=1, eval_iters=20), 0)
    assert often.endswith("about 13 times the work of its 100 training steps — a larger --eval_interval evaluates "
                          "less often")  # (20 batches are fewer than the CPU default's 50: not named)
    args = TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "o")]
    assert train.main(args + ["--eval_iters", "50"]) == 0  # 4 evaluations of 50 batches, 12 steps
    assert "note: this run's 4 evaluations of 50 batches per split are about 11 times the work of its 12 training " \
           "steps — a larger --eval_interval evaluates less often\n" in capsys.readouterr().out


def test_a_busy_cpu_gets_a_note_with_the_threads_to_use(data_dir, tmp_path, capsys, monkeypatch):
    """Beside a program spinning one of 2 cores, 2 threads took 19.7 s where 1 took 10.7 (docs/training.md):
    a core or more kept busy, with threads it would slow, gets a note naming OMP_NUM_THREADS."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    note = lambda *args, **kwargs: bookkeeping.busy_cpu_note(*args, **kwargs)[0]  # (the threads it names: below)
    assert bookkeeping.busy_cpu_note(8, busy=2.0, cores=8)[1] == 6
    assert "OMP_NUM_THREADS=1 in front" in note(2, busy=1.0, cores=2)
    assert "OMP_NUM_THREADS=6 in front" in note(8, busy=2.0, cores=8)
    assert "OMP_NUM_THREADS=1 in front" in note(8, busy=7.6, cores=8)
    assert "OMP_NUM_THREADS=1 in front" in note(2, busy=0.5, cores=2)  # half a core and up counts as one
    assert note(2, busy=0.3, cores=2) is None  # nothing keeps a core busy
    assert note(1, busy=2.0, cores=2) is None  # one thread waits on no other
    assert note(4, busy=2.0, cores=8) is None  # room for every thread
    monkeypatch.setattr(bookkeeping, "cores_busy", lambda: 1.2)
    monkeypatch.setattr(bookkeeping, "usable_cores", lambda: [0, 1])
    monkeypatch.setattr(bookkeeping.torch, "get_num_threads", lambda: 2)
    args = TINY + ["--data_dir", str(data_dir), "--max_iters", "2", "--eval_iters", "1"]
    assert train.main(args + ["--out_dir", str(tmp_path / "busy")]) == 0
    said = capsys.readouterr().out
    assert "note: other programs keep 1.2 of the 2 cores busy" in said
    assert "— Ctrl-C and --resume it with OMP_NUM_THREADS=1 in front\n" in said  # it has started by now
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user chose already
    assert train.main(args + ["--out_dir", str(tmp_path / "chosen")]) == 0
    assert "cores busy" not in capsys.readouterr().out


def test_a_run_slowed_by_a_program_started_beside_it_gets_the_note_once(capsys, monkeypatch):
    """The newcomer's case: the test suite started 30 s into a CPU run, which then took 10 minutes, not 2."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    busy = [0.1]  # the cores other programs keep busy, as cores_busy would measure them
    monkeypatch.setattr(bookkeeping, "cores_busy", lambda: busy[0])
    monkeypatch.setattr(bookkeeping, "usable_cores", lambda: [0, 1])
    monkeypatch.setattr(bookkeeping.torch, "get_num_threads", lambda: 2)
    run = types.SimpleNamespace(device=torch.device("cpu"), world_size=1, fastest=0.0, threads_advised=None,
                                iter=200, cfg=types.SimpleNamespace(max_iters=800))

    def said(tokens_per_sec):
        bookkeeping.note_a_slowdown(run, tokens_per_sec)
        return capsys.readouterr().out

    assert said(0.0) == said(18000.0) == said(9500.0) == ""  # iteration 0's 0 tokens/s, then no halving
    assert said(8000.0) == ""  # half the speed, but no program to blame (a laptop's power saving, say)
    busy[0] = 1.1
    run.iter = 800  # the last evaluation: too late to Ctrl-C and resume
    assert said(7000.0) == ""
    run.iter = 400
    assert said(7000.0) == ("note: this run has slowed from 18,000 to 7,000 tokens/s: other programs keep 1.1 of "
                            "the 2 cores busy, so PyTorch's 2 threads wait on them (beside one busy core of 2, a run "
                            "took 3 to 6 times as long: docs/training.md, A busy CPU) — Ctrl-C and --resume it "
                            "with OMP_NUM_THREADS=1 in front\n")
    assert said(5000.0) == ""  # once is enough
    gpu = types.SimpleNamespace(device=torch.device("cuda"), world_size=1, fastest=18000.0, threads_advised=None,
                                iter=200, cfg=run.cfg)
    bookkeeping.note_a_slowdown(gpu, 5000.0)
    assert capsys.readouterr().out == "" and not gpu.threads_advised  # a GPU's threads are not the CPU's


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="cores_busy reads Linux's /proc/stat")
def test_a_program_spinning_on_a_core_is_measured_busy():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # started and spinning
        assert 0.5 <= CORES_BUSY(0.3) <= len(bookkeeping.usable_cores())
    finally:
        spinner.kill()
        spinner.wait()


def test_an_extension_of_an_unfinished_run_decays_from_where_it_was():
    cfg = config.TrainConfig(lr=1e-3, min_lr=1e-4, warmup_iters=10, max_iters=100)
    at_50 = train.lr_at(50, cfg)
    longer = dataclasses.replace(cfg, max_iters=200)
    extended_at = (50, train.decay_left(50, cfg))
    lrs = [train.lr_at(it, longer, extended_at) for it in range(50, 201)]
    why = "decay_left must keep its `height *`: a resumed, lengthened run goes on down from where it was"
    assert lrs[0] == pytest.approx(at_50) and lrs[-1] == pytest.approx(1e-4), why
    assert all(a >= b for a, b in zip(lrs, lrs[1:])), why  # only down from there
    # a new --lr or --min_lr on a later resume still counts: the run keeps its place in the decay
    higher = dataclasses.replace(longer, lr=2e-3, min_lr=2e-4)
    assert train.lr_at(50, higher, extended_at) == pytest.approx(2 * at_50)
    said = []  # the note at the start names the share of the way and the learning rate it gives
    run = types.SimpleNamespace(cfg=higher, iter=50, extended_at=None, say=said.append)
    train.extend_schedule(run, cfg)
    assert said == [f"note: the learning rate goes on down the decay from where the run was, "
                    f"{extended_at[1]:.0%} of the way from --min_lr up to --lr: {2 * at_50:.2e} now, --min_lr at "
                    f"iteration 200"]


def test_the_note_of_an_extension_names_where_a_flat_decay_ends(monkeypatch):
    """A fork's decay that stays up (a constant lr) never reaches --min_lr: the note gives its last lr."""
    monkeypatch.setitem(config.DECAYS, "constant", lambda progress: 1.0)
    cfg = config.TrainConfig(lr=8e-3, min_lr=8e-4, warmup_iters=10, max_iters=40, decay="constant")
    said = []
    train.extend_schedule(types.SimpleNamespace(cfg=dataclasses.replace(cfg, max_iters=60), iter=40,
                                                extended_at=None, say=said.append), cfg)
    assert said == ["note: the learning rate goes on down the decay from where the run was, 100% of the way "
                    "from --min_lr up to --lr: 8.00e-03 now, 8.00e-03 at iteration 60"]


def test_a_run_whose_decay_was_removed_since_is_refused_in_a_line(monkeypatch, data_dir, tmp_path):
    """Its place on the schedule is worked out with its own decay: without it, a resume with a new --max_iters
    failed in a KeyError, and one without --decay blamed a flag never given. Another --decay with the run's
    --max_iters needs no old decay, and goes on."""
    monkeypatch.setitem(config.DECAYS, "step", lambda progress: float(progress < 0.5))
    args = TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path), "--max_iters", "12"]
    finished = TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "done"), "--max_iters", "4"]
    assert train.main(finished + ["--decay", "step"]) == 0
    take_ctrl_c_away = ctrl_c_during_step(6, monkeypatch)  # (saved at iteration 7 of 12)
    assert train.main(args + ["--decay", "step"]) == 130
    take_ctrl_c_away()
    monkeypatch.delitem(config.DECAYS, "step")
    for changes in ([], ["--decay", "cosine", "--max_iters", "20"]):
        with pytest.raises(UserError, match=re.escape(
                f"{tmp_path / 'latest.pt'} was trained with --decay 'step', which config.DECAYS no longer has — put "
                f"it back there, or resume with another --decay ({', '.join(config.DECAYS)}) and the run's "
                f"--max_iters, 12 (a new --max_iters or --warmup_iters goes on down it)")):
            train.main(args + ["--resume"] + changes)
    with pytest.raises(UserError, match=re.escape(  # (a review: a new warmup alone met the old decay in a KeyError)
            "and the run's --max_iters, 12, and --warmup_iters, 2 (a new --max_iters or --warmup_iters goes on down "
            "it)")):
        train.main(args + ["--resume", "--decay", "cosine", "--warmup_iters", "3"])
    assert train.main(args + ["--resume", "--decay", "cosine"]) == 0
    with pytest.raises(UserError, match=re.escape(  # finished: only the old decay lets a new --max_iters go on
            f"{tmp_path / 'done' / 'latest.pt'} was trained with --decay 'step', which config.DECAYS no longer has — "
            f"put it back there (a new --max_iters or --warmup_iters goes on down it)")):
        train.main(finished + ["--resume", "--decay", "cosine", "--max_iters", "8"])


@pytest.mark.parametrize("max_iters", [12, 40])
@pytest.mark.parametrize("saved_at", [2, 7])
def test_a_longer_warmup_given_to_a_resume_past_its_warmup_does_not_throw_the_lr_back_up(max_iters, saved_at):
    """Found by a hunt for resume bugs: saved at 7 of 12 (warmup 2) and resumed with --warmup_iters 20, and with or
    without --max_iters 40, the run went back into a warmup and climbed to its peak lr again; and (a review) so did
    one saved where its warmup ends, as the speedrun preset's first save is."""
    before = config.TrainConfig(lr=8e-3, min_lr=8e-4, warmup_iters=2, max_iters=12)
    after = dataclasses.replace(before, warmup_iters=20, max_iters=max_iters)
    run = types.SimpleNamespace(cfg=after, iter=saved_at, extended_at=None, say=lambda note: None)
    train.extend_schedule(run, before)
    lrs = [train.lr_at(it, after, run.extended_at) for it in range(saved_at, max_iters + 1)]
    assert lrs[0] == pytest.approx(train.lr_at(saved_at, before))  # where the run was
    assert all(a >= b for a, b in zip(lrs, lrs[1:])) and lrs[-1] == pytest.approx(8e-4)  # only down, to min_lr


@pytest.mark.parametrize("decay", list(config.DECAYS))
def test_an_extension_from_inside_the_old_warmup_starts_the_decay_at_its_top(decay):
    """Saved at 60 in a 100-step warmup, resumed with --warmup_iters 10 and a longer run: the old
    decay had not begun, so the new one starts at lr, never above it."""
    before = config.TrainConfig(lr=1e-3, min_lr=1e-4, warmup_iters=100, max_iters=200, decay=decay)
    assert train.decay_left(60, before) == 1.0
    after = dataclasses.replace(before, warmup_iters=10, max_iters=300)
    assert train.lr_at(60, after, (60, train.decay_left(60, before))) == pytest.approx(1e-3)


def test_the_same_command_with_resume_accepts_its_preset(data_dir, tmp_path, capsys):
    """The preset is checked against the run, not applied over it: cpu-speedrun's 250 steps do not
    replace the run's own --max_iters, nor its lr the one a resume changed."""
    args = ["--preset", "cpu-speedrun"] + TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "o")]
    assert train.main(args + ["--max_iters", "8"]) == 0
    del args[args.index("--max_iters"):args.index("--max_iters") + 2]  # no --max_iters: the run's own counts
    ckpt = checkpoint.load_checkpoint(tmp_path / "o" / "latest.pt", "")
    ckpt["train_config"]["max_iters"] = 12  # as if stopped at 8 of 12
    checkpoint.save_checkpoint(tmp_path / "o" / "latest.pt", ckpt)
    capsys.readouterr()
    assert train.main(args + ["--resume"]) == 0
    out = capsys.readouterr().out
    assert "config: resuming" in out and ", preset cpu-speedrun" in out and "iterations 8 -> 12" in out
    assert "max_iters=12 " in out and "lr=0.008 " in out


def test_help_shows_the_values_a_run_would_use(capsys):
    with pytest.raises(SystemExit):
        settings.parse_train_args(["--help"])
    shown = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    preset = settings.default_preset("auto")
    assert f"(default: {config.PRESETS[preset]['batch_size']}, from preset {preset})" in shown
    assert f"the defaults above are those of preset {preset}, which a run without --preset gets" in shown.lower()
    with pytest.raises(SystemExit):
        settings.parse_train_args(["--preset", "bigram", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "(default: bigram, from preset bigram)" in shown and "(default: 0.03, from preset bigram)" in shown


def test_a_run_prints_every_value_in_effect(data_dir, tmp_path, capsys):
    assert train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "o")]) == 0
    printed = capsys.readouterr()
    training = next(line for line in printed.out.splitlines() if line.startswith("training settings: "))
    model = next(line for line in printed.out.splitlines() if line.startswith("model settings: "))
    assert "lr=0.008 " in training and "optimizer=muon " in training and "max_iters=12 " in training
    assert "position=rotary " in model and "n_embd=32 " in model
    assert "model: 0.03M parameters, 2 layers" in printed.out  # rotary: no position embeddings to leave out
    assert "device: cpu, dtype: float32, compile: False\n" in printed.out  # --dtype auto: bf16 is slower on a CPU


def test_a_bigram_prints_only_the_settings_it_uses(data_dir, tmp_path, capsys):
    """A table has no layers, heads or width: they are not echoed back as if in effect, and flags
    that set them are named as changing nothing."""
    args = ["--preset", "bigram", "--device", "cpu", "--data_dir", str(data_dir), "--out_dir", str(tmp_path / "o"),
            "--max_iters", "4", "--warmup_iters", "1", "--eval_iters", "1"]
    assert train.main(args + ["--n_layer", "3", "--dropout", "0.1"]) == 0
    out = capsys.readouterr().out
    assert f"model settings: model=bigram vocab_size={data.load_data(data_dir)[0]['vocab_size']} block_size=64\n" in out
    assert "note: a bigram is a table, with no layers, heads or width: --n_layer --dropout change nothing" in out
    assert train.main(args + ["--resume", "--max_iters", "8", "--dropout", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "note: --dropout changes from 0.1" in out and not re.search("changes? nothing", out)  # says what changes


def test_the_progress_bar_draws_rarely_into_a_log_file(data_dir, tmp_path, capsys):
    """stderr is not a terminal here: 40 steps with a loss every 2 would draw the bar 20 times or more."""
    started = time.perf_counter()
    assert train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "o"), "--max_iters", "40",
                              "--eval_interval", "40"]) == 0
    every_30_s = int((time.perf_counter() - started) / 30)  # (a draw each 30 s: on a busy machine, the run is slow)
    err = capsys.readouterr().err
    # the start, the end, around the evaluation
    assert err.count("train: ") - err.count("evaluating train: ") <= 5 + every_30_s


def test_trace_shapes_shows_qk_norm_and_rotary(data_dir, tmp_path, capsys):
    assert train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "o"), "--trace_shapes"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"attn: qk-norm\(q\), unit RMS per head \(k too\) +\(8, 2, 16, 16\)", printed)
    assert re.search(r"rotary angles for attention: cos \(sin too\) +\(16, 8\) +\(T, hs/2\)", printed)
    assert re.search(r"attn: rotary\(q\), turned by position \(k too\) +\(8, 2, 16, 16\)", printed)


def test_trace_shapes_of_a_finished_run_is_traced_not_refused(run_dir, data_dir, capsys):
    """--resume --trace_shapes trains nothing: a run at its --max_iters is traced, not refused (and left as it was)."""
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    argv = TINY + ["--data_dir", str(data_dir), "--out_dir", str(run_dir), "--resume", "--trace_shapes"]
    assert train.main(argv) == 0
    assert "attn: rotary(q)" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


def test_a_checkpoint_of_an_earlier_layout_is_refused_by_name(run_dir, data_dir, tmp_path):
    """Version-1 files from before the optimizer groups had kinds cannot be resumed: one line, no KeyError."""
    run = shutil.copytree(run_dir, tmp_path / "old")
    ckpt = checkpoint.load_checkpoint(run / "latest.pt", "")
    for state in ckpt["optimizer"].get("optimizers", [ckpt["optimizer"]]):
        for group in state["param_groups"]:
            del group["kind"]
    checkpoint.save_checkpoint(run / "latest.pt", ckpt)
    with pytest.raises(UserError, match="was written by an earlier version of this repo"):
        train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(run), "--resume", "--max_iters", "20"])


def test_the_overfitting_note_needs_val_up_and_train_down():
    from types import SimpleNamespace
    def note(best, last):
        return bookkeeping.overfitting_note(SimpleNamespace(losses_at_best=best, last_losses=last))
    best = {"train": 0.58, "val": 2.0018}
    assert note(None, {"train": 0.3, "val": 2.5}) is None  # no best in this command (a resume, say)
    assert note(best, {"train": 0.32, "val": 2.04}) is None  # within 2%
    assert note(best, {"train": 0.60, "val": 2.1678}) is None  # both rose: not memorising, something else
    assert note(best, {"train": 0.58, "val": 2.1678}) is None  # the train loss flat: it did not go on falling
    said = note(best, {"train": 0.32, "val": 2.1678})
    assert said.startswith("note: the val loss ended at 2.1678, 8% above its best, while the train loss went on "
                           "falling") and "docs/training.md" in said


def test_a_run_that_ends_overfitting_says_so(data_dir, tmp_path, monkeypatch, capsys):
    args = TINY + ["--data_dir", str(data_dir)]
    assert train.main(args + ["--out_dir", str(tmp_path / "plain")]) == 0
    assert "overfitting" not in capsys.readouterr().out
    real, calls = train.estimate_loss, []

    def val_up_at_the_end(*a, **kw):  # the last of TINY's evaluations (0, 4, 8, 12) as if memorising
        losses = real(*a, **kw)
        calls.append(losses)
        return {**losses, "val": losses["val"] * 1.1} if len(calls) == 4 else losses
    monkeypatch.setattr(train, "estimate_loss", val_up_at_the_end)
    assert train.main(args + ["--out_dir", str(tmp_path / "memorising")]) == 0
    assert calls[3]["train"] < calls[2]["train"] and calls[2]["val"] < calls[1]["val"]  # as the test assumes
    rise = 1.1 * calls[3]["val"] / calls[2]["val"] - 1
    assert f"{rise:.0%} above its best, while the train loss went on falling" in capsys.readouterr().out
    assert torch.load(tmp_path / "memorising" / "best.pt", weights_only=True)["iter"] == 8  # not the worse 12


def test_best_pt_is_the_lowest_val_loss_of_the_whole_run(data_dir, tmp_path, monkeypatch):
    """Not merely better than the evaluation before: 2.2 at step 12 beats 2.5, but not 2.0 at step 4;
    and 2.0 again at step 16 is no better, so best.pt keeps the first."""
    val_losses = iter([3.0, 2.0, 2.5, 2.2, 2.0])  # at steps 0, 4, 8, 12 and 16
    monkeypatch.setattr(train, "estimate_loss", lambda *a, **kw: {"train": 1.0, "val": next(val_losses)})
    assert train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "o"), "--max_iters", "16"]) == 0
    best = torch.load(tmp_path / "o" / "best.pt", weights_only=True)
    assert (best["iter"], best["best_val_loss"]) == (4, 2.0)


def test_a_worse_evaluation_leaves_best_pt_alone(run_dir, data_dir, tmp_path, monkeypatch):
    """Also across a resume, which must bring back the best val loss so far, not start it again."""
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    best = (run / "best.pt").read_bytes()
    real = train.estimate_loss
    monkeypatch.setattr(train, "estimate_loss", lambda *a, **kw: {**real(*a, **kw), "val": 99.0})
    assert train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(run), "--resume", "--max_iters", "16"]) == 0
    assert torch.load(run / "latest.pt", weights_only=True)["iter"] == 16
    assert (run / "best.pt").read_bytes() == best


def test_the_log_s_elapsed_time_goes_on_from_the_run_it_resumes(run_dir, data_dir, tmp_path):
    """elapsed_s counts the whole run's training time (plots and times to a target read it), not this command's."""
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    ckpt = torch.load(run / "latest.pt", weights_only=True)
    checkpoint.save_checkpoint(run / "latest.pt", {**ckpt, "elapsed_s": 1000.0})  # far more than 4 steps can take
    assert train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(run), "--resume", "--max_iters", "16"]) == 0
    assert 1000 < float(read_log(run)[-1]["elapsed_s"]) < 1060


def test_a_resume_names_a_setting_model_py_gained_since_the_run_was_saved(run_dir, data_dir, tmp_path, capsys):
    """Its default stands in (here, no qk-norm for a run that trained with it): said, with the flag to give the run's
    value, unless a flag gives another; a default that breaks the weights' shapes is named in the error."""
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    ckpt = torch.load(run / "latest.pt", weights_only=True)
    del ckpt["model_config"]["qk_norm"]
    checkpoint.save_checkpoint(run / "latest.pt", ckpt)
    args = TINY + ["--data_dir", str(data_dir), "--out_dir", str(run), "--resume", "--max_iters", "14"]
    assert train.main(args) == 0
    note = "was saved before model.py had qk_norm: GPTConfig's default (False) stands in — if the run had other"
    assert f"note: {run / 'latest.pt'} {note}" in capsys.readouterr().out
    checkpoint.save_checkpoint(run / "latest.pt", ckpt)  # (the resume saved qk_norm in it)
    assert train.main(args + ["--qk_norm", "true"]) == 0
    assert note not in capsys.readouterr().out
    checkpoint.save_checkpoint(run / "latest.pt", ckpt)
    assert train.main(args + ["--qk_norm", "false"]) == 0  # the default, given: no note either
    assert note not in capsys.readouterr().out
    del ckpt["train_config"]["muon_lr"]  # a training setting config.py gained since, as well
    checkpoint.save_checkpoint(run / "latest.pt", ckpt)
    assert train.main(args) == 0
    assert "was saved before config.py had muon_lr: TrainConfig's default (0.02) stands in" in capsys.readouterr().out
    del ckpt["model_config"]["n_embd"]  # TINY gives --n_embd 32: the run's value, so only qk_norm is named
    checkpoint.save_checkpoint(run / "latest.pt", ckpt)
    assert train.main(args) == 0
    assert "before model.py had qk_norm: GPTConfig's default" in capsys.readouterr().out
    checkpoint.save_checkpoint(run / "latest.pt", ckpt)
    width = args.index("--n_embd")
    no_width = args[:width] + args[width + 2:]  # (TINY's --n_embd 32 left out: the default, 384, stands in)
    with pytest.raises(UserError, match=r" more\); it was saved before model.py had n_embd, qk_norm: GPTConfig's "
                                        r"defaults \(384, False\) stand in — if the run had other values, give them"):
        train.main(no_width)
    with pytest.raises(UserError, match=r"it was saved before model.py had n_embd: GPTConfig's default \(384\) "):
        train.main(no_width + ["--qk_norm", "true"])  # (the flag's value is no default standing in)


def test_a_new_run_with_a_preset_into_a_run_s_folder_is_pointed_to_another(tmp_path, monkeypatch):
    """With a --preset named, a new out_dir comes first (the README's classic-cpu after the default, say), and
    out/PRESET is suggested only where nothing of that name is there yet."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "latest.pt").write_bytes(b"a run")
    with pytest.raises(UserError, match=r"^out already holds a run \(latest.pt\) — choose a new --out_dir for this "
                                        r"--preset bigram run \(e.g. --out_dir out/bigram\), or continue that one: "
                                        r"python train.py --resume --out_dir out$"):
        bookkeeping.refuse_to_overwrite(Path("out"), "bigram")
    (tmp_path / "out" / "bigram").mkdir()
    with pytest.raises(UserError, match=r"for this --preset bigram run, or continue"):
        bookkeeping.refuse_to_overwrite(Path("out"), "bigram")


def test_a_folder_holding_only_best_pt_is_not_written_over(tmp_path, monkeypatch):
    """--resume reads latest.pt, so the fix copies best.pt to it first."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "best.pt").write_bytes(b"a run's best")  # latest.pt lost, or deleted to save space
    with pytest.raises(UserError, match=r"already holds a run \(best.pt\) — copy best.pt to latest.pt \(cp best.pt "
                                        r"latest.pt\), then add --resume to continue it, or choose a new --out_dir$"):
        bookkeeping.refuse_to_overwrite(Path("."))
    with pytest.raises(UserError, match=r"or continue that one: copy best.pt to latest.pt \(cp best.pt latest.pt\), "
                                        r"then python train.py --resume --out_dir \.$"):
        bookkeeping.refuse_to_overwrite(Path("."), "bigram")


@pytest.mark.parametrize("name", ["batch_size", "grad_accum", "max_iters", "eval_interval", "eval_iters",
                                  "log_interval", "block_size", "n_layer", "n_head", "n_embd"])
def test_every_count_must_be_at_least_1(name):
    """Else 0 fails later, far from its flag (--eval_interval 0 or --log_interval 0: a modulo by zero at the first
    step), or not at all (--grad_accum 0: steps of no micro-batches, which train nothing)."""
    cfg, mcfg = settings.split_config({**config.PRESETS["shakespeare-cpu"], "vocab_size": 65, name: 0})
    with pytest.raises(UserError, match=f"^--{name} 0 must be at least 1 — give a positive number$"):
        settings.check_config(cfg, mcfg)


def test_a_bigram_is_not_held_to_the_gpt_s_sizes():
    """A table has no layers or heads: sizes a GPT could not take (30 wide in 4 heads, 0 layers) do not stop it."""
    settings.check_config(config.TrainConfig(), GPTConfig(model="bigram", n_embd=30, n_head=4, n_layer=0))
    with pytest.raises(UserError, match="n_embd 30 is not divisible by n_head 4"):
        settings.check_config(config.TrainConfig(), GPTConfig(model="gpt", n_embd=30, n_head=4))


def test_a_constant_learning_rate_is_allowed():
    settings.check_config(config.TrainConfig(lr=1e-3, min_lr=1e-3), GPTConfig())  # min_lr == lr: no decay, not above
    with pytest.raises(UserError, match="is above --lr"):
        settings.check_config(config.TrainConfig(lr=1e-3, min_lr=2e-3), GPTConfig())


def test_the_losses_are_read_every_log_interval_and_at_the_last_step(data_dir, tmp_path, monkeypatch):
    """--log_interval 2: the loop reads the pending losses (and shows them) every 2 steps, not only at the
    evaluations every 4, and once more at the last step, 11, which is neither."""
    seen, real = [], train.read_steps
    monkeypatch.setattr(train, "read_steps", lambda run, pending: seen.append(run.iter) or real(run, pending))
    assert train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "o"), "--max_iters", "11"]) == 0
    assert seen == [2, 4, 6, 8, 10, 11]


def test_tokens_per_sec_is_each_windows_tokens_over_its_time(data_dir, tmp_path, monkeypatch):
    """A clock that moves 0.5 s per step: every window between two readings trains 8 x 16 x 2 = 256 tokens
    a step, so log.csv says 512 tokens/s at every evaluation (0 for the untrained model), whatever
    the window's length (2 steps, the log_interval, then the last 1)."""
    now, real_step = [0.0], train.train_step
    monkeypatch.setattr(train, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))

    def step(*args, **kwargs):
        now[0] += 0.5
        return real_step(*args, **kwargs)
    monkeypatch.setattr(train, "train_step", step)
    out = tmp_path / "o"
    assert train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(out), "--grad_accum", "2",
                              "--max_iters", "11"]) == 0
    rows = read_log(out)
    assert [r["iter"] for r in rows] == ["0", "4", "8", "11"]
    assert [float(r["tokens_per_sec"]) for r in rows] == [0.0, 512.0, 512.0, 512.0]


def test_the_bar_shows_the_loss_of_the_last_step(data_dir, tmp_path, monkeypatch, capsys):
    read, real = [], train.read_steps
    monkeypatch.setattr(train, "read_steps", lambda run, pending: read.append(real(run, pending)) or read[-1])
    assert train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert read[-1][0] != read[-1][1]  # (steps 10 and 11 differ, so the bar shows which it read)
    assert f"loss={read[-1][-1]:.4f}" in err and f"loss={read[-1][0]:.4f}" not in err


def test_setup_compiles_the_ddp_wrapped_model(data_dir, tmp_path, monkeypatch):
    """Under torchrun with --compile, what trains is torch.compile(DDP(model)): DDP wraps the model
    first, and compile wraps that (the other way round, the DDP wrap would drop the compiled model)."""
    monkeypatch.setattr(train.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(train, "wrap_ddp", lambda run: setattr(run, "model", ("ddp", run.model)))
    monkeypatch.setattr(train.torch, "compile", lambda model, mode=None: ("compiled", model))
    _, _, _, overrides = settings.parse_train_args(TINY + ["--data_dir", str(data_dir), "--out_dir",
                                                           str(tmp_path / "o"), "--compile", "true"], "")
    run = train.setup(None, False, overrides)
    assert run.model == ("compiled", ("ddp", run.raw_model))


def test_a_resumed_bigram_names_no_flag_as_changing_nothing(capsys):
    """A resume says what each flag changes itself: print_settings adds no "changes nothing" note."""
    cfg, mcfg = config.TrainConfig(), GPTConfig(model="bigram")
    bookkeeping.print_settings("config: resuming", cfg, mcfg, {"dropout": 0.2}, resuming=True)
    assert "nothing" not in capsys.readouterr().out
    bookkeeping.print_settings("config: new", cfg, mcfg, {"dropout": 0.2}, resuming=False)
    assert "--dropout changes nothing" in capsys.readouterr().out


def test_muon_lr_under_adamw_is_named_as_changing_nothing(capsys):
    """--muon_lr sets only Muon's learning rate: given to an AdamW run, it is said to change nothing."""
    adamw, muon = config.TrainConfig(optimizer="adamw"), config.TrainConfig(optimizer="muon")
    bookkeeping.print_settings("config: new", adamw, GPTConfig(), {"muon_lr": 0.1}, resuming=False)
    note = "note: --muon_lr is Muon's learning rate: with --optimizer adamw it changes nothing"
    assert note in capsys.readouterr().out
    for cfg, resuming in ((muon, False), (adamw, True)):  # (a resume says what each flag changes)
        bookkeeping.print_settings("config", cfg, GPTConfig(), {"muon_lr": 0.1}, resuming=resuming)
        assert "nothing" not in capsys.readouterr().out


def test_finish_gives_the_best_val_loss_in_nats_and_in_bits(tmp_path, capsys):
    run = types.SimpleNamespace(best_val=2 * math.log(2), losses_at_best=None, last_losses=None, eval_seconds=1.0,
                                out_dir=tmp_path, say=print)
    bookkeeping.finish(run, 3.0)
    assert "best val loss 1.3863 nats per char = 2.0000 bits per char\n" in capsys.readouterr().out


def test_ctrl_c_reads_the_steps_still_pending(tmp_path, monkeypatch, capsys):
    """A skipped step since the last reading is still warned of when Ctrl-C stops the run."""
    saved = []
    monkeypatch.setattr(bookkeeping, "make_checkpoint", lambda run: {"iter": run.iter})
    monkeypatch.setattr(bookkeeping, "save_checkpoint", lambda path, state: saved.append(state))
    run = types.SimpleNamespace(iter=3, bad_steps=0, rank=0, out_dir=tmp_path, threads_advised=None,
                                owed_evaluation=None, cfg=types.SimpleNamespace(max_nan_skips=5))
    pending = [(1, torch.tensor(2.0), torch.tensor(True)), (2, torch.tensor(float("nan")), torch.tensor(False))]
    assert bookkeeping.save_on_ctrl_c(run, pending, types.SimpleNamespace(close=lambda: None)) == 130
    assert saved == [{"iter": 3}] and pending == [] and run.bad_steps == 1
    assert "warning: the loss is nan at iteration 2; the step was skipped" in capsys.readouterr().out


def test_ctrl_c_after_a_busy_cpu_note_continues_with_the_threads_it_named(tmp_path, monkeypatch, capsys):
    """The newcomer pasted the resume command that Ctrl-C printed, and the run went on at the busy speed."""
    monkeypatch.setattr(bookkeeping, "make_checkpoint", lambda run: {"iter": run.iter})
    monkeypatch.setattr(bookkeeping, "save_checkpoint", lambda path, state: None)
    for advised, command in ((1, "OMP_NUM_THREADS=1 python train.py --resume"), (None, "python train.py --resume")):
        run = types.SimpleNamespace(iter=3, bad_steps=0, rank=0, out_dir=tmp_path / "run", threads_advised=advised,
                                    owed_evaluation=None, cfg=types.SimpleNamespace(max_nan_skips=5))
        assert bookkeeping.save_on_ctrl_c(run, [], types.SimpleNamespace(close=lambda: None)) == 130
        assert capsys.readouterr().out.endswith(f" — continue with: {command} --out_dir {tmp_path / 'run'}\n")
        run.out_dir.mkdir(exist_ok=True)
        (run.out_dir / "latest.pt").touch()  # and after a second Ctrl-C, which saves nothing
        said = bookkeeping.stopped_at_once(run)
        assert said.endswith(f" — go on from the last checkpoint with: {command} --out_dir {tmp_path / 'run'}")


def describe_said(monkeypatch, capsys, iters_done, params=(0, 0), **train_fields):
    """describe()'s lines for a CPU run of the CPU default's model, iters_done steps in; params: what count_params
    gives, with the position embeddings and without."""
    monkeypatch.setattr(bookkeeping, "busy_cpu_note", lambda threads, then=None: (None, None))
    monkeypatch.setattr(bookkeeping, "count_params", lambda model, non_embedding=False: params[non_embedding])
    cpu = bookkeeping.CPU_DEFAULT
    mcfg = GPTConfig(**{k: cpu[k] for k in ("n_layer", "n_head", "n_embd", "block_size")}, vocab_size=65)
    cfg = config.TrainConfig(**{k: cpu[k] for k in ("batch_size", "grad_accum")}, **train_fields)
    run = types.SimpleNamespace(cfg=cfg, mcfg=mcfg, device=torch.device("cpu"), dtype=torch.float32,
                                use_compile=False, raw_model=types.SimpleNamespace(transformer={}), iter=iters_done,
                                extended_at=None, world_size=1, threads_advised=None, say=print,
                                owed_evaluation=None if iters_done else (0.0, 0.0))  # (a new run's first)
    bookkeeping.describe(run)
    return capsys.readouterr().out


def test_the_count_without_position_embeddings_is_said_where_it_differs(monkeypatch, capsys):
    """nanoGPT's convention (10.65M for its Shakespeare model); "0.80M parameters (0.80M without ...)" said nothing."""
    said = describe_said(monkeypatch, capsys, 0, params=(10_745_088, 10_646_784))
    assert "model: 10.75M parameters (10.65M without position embeddings), 4 layers" in said
    assert "model: 0.80M parameters, 4 layers" in describe_said(monkeypatch, capsys, 0, params=(804_096, 795_904))


def test_the_work_note_counts_only_the_steps_left(monkeypatch, capsys):
    """30 times the CPU default's steps: a note; resumed with one CPU default's worth left: none."""
    steps = bookkeeping.CPU_DEFAULT["max_iters"]
    assert "note: this run is about 30 times the work" in describe_said(monkeypatch, capsys, 0, max_iters=30 * steps)
    assert "times the work" not in describe_said(monkeypatch, capsys, 29 * steps, max_iters=30 * steps)


def test_a_run_as_long_as_its_warmup_gets_the_warmup_note(monkeypatch, capsys):
    said = describe_said(monkeypatch, capsys, 0, max_iters=10, warmup_iters=10)
    assert "note: the run's 10 iterations (max_iters) end inside its 10-step warmup" in said
    assert "warmup" not in describe_said(monkeypatch, capsys, 0, max_iters=11, warmup_iters=10)


def test_a_log_an_editor_saved_with_a_byte_order_mark_still_resumes(tmp_path):
    """log.csv opened and saved in an editor that adds a byte-order mark: its header is still train.py's, so a resume
    trims it as it would the log train.py wrote, and a new run takes it for train.py's."""
    from machinery.bookkeeping import trim_log
    from machinery.checkpoint import LOG_HEADER, written_by_train_py
    log = tmp_path / "log.csv"
    log.write_text(f"{LOG_HEADER}\n0,4.17,4.17,0.0,0.0,0.1\n4,3.90,3.91,0.001,900.0,1.2\n", encoding="utf-8-sig")
    assert written_by_train_py(log)  # (a new run beside it, with no checkpoints, keeps it)
    trim_log(log, 0)
    assert log.read_text() == f"{LOG_HEADER}\n0,4.17,4.17,0.0,0.0,0.1\n"
