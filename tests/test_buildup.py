"""lessons/buildup.py: the video's ladder, each rung model.py's GPT with one more part switched on."""

import csv
import dataclasses
import importlib.util
import json
import re
import shutil

import numpy as np
import pytest
import torch
import torch.nn as nn

from lessons import buildup
from engine.decode import forward_cached
from engine.kv_cache import KVCache
from machinery.cli import UserError
from model import GPT, MLP, Bigram, Block, GPTConfig

V = 65


def rung_models(sizes_name):
    torch.manual_seed(0)
    return [(rung.what, rung.config, (Bigram if rung.config.model == "bigram" else GPT)(rung.config))
            for rung in buildup.ladder(buildup.SIZES[sizes_name], V)]


@pytest.mark.parametrize("sizes_name", list(buildup.SIZES))
def test_every_rung_builds_and_runs(sizes_name):
    rungs = rung_models(sizes_name)
    assert len(rungs) == 11
    for what, config, model in rungs:
        idx = torch.randint(V, (2, config.block_size))
        logits, loss = model(idx, idx)
        assert logits.shape == (2, config.block_size, V), what
        assert torch.isfinite(loss), what


def parts(model):
    """What a rung's model is made of, read off the modules (and, for the residual, its behaviour)."""
    if isinstance(model, Bigram):
        return dict(kind="table")
    blocks = [m for m in model.modules() if isinstance(m, Block)]
    found = dict(kind="gpt", blocks=len(blocks), heads={b.attn.n_head for b in blocks},
                 mlps=sum(isinstance(m, MLP) for m in model.modules()),
                 layer_norms=sum(isinstance(m, nn.LayerNorm) for m in model.modules()),
                 dropout=any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules()),
                 position="wpe" in model.transformer,
                 tied=model.transformer.wte.weight is model.lm_head.weight,
                 # GPT-2's N(0, 0.02), against PyTorch's own: N(0, 1) for an embedding, about 0.1 for a tied head
                 gpt2_init=model.transformer.wte.weight.std().item() < 0.05)
    if blocks:  # with every update zeroed, a residual block passes x through; without one, it outputs 0
        block = blocks[0]
        with torch.no_grad():
            for m in block.modules():
                if hasattr(m, "c_proj"):
                    m.c_proj.weight.zero_()
            x = torch.randn(1, 4, model.config.n_embd)
            y = block.eval()(x)
        assert torch.equal(y, x) or torch.equal(y, torch.zeros_like(x))
        found["residual"] = torch.equal(y, x)
    return found


def test_each_rung_has_exactly_the_parts_it_names():
    s = buildup.SIZES["cpu"]
    small = dict(kind="gpt", mlps=0, layer_norms=0, dropout=False, position=True, tied=False, gpt2_init=False)
    heads, deep = {s.n_head}, s.n_layer
    expected = [
        dict(kind="table"),                                                          # 1 bigram
        {**small, "blocks": 0, "heads": set()},                                      # 2 embeddings, a head
        {**small, "blocks": 1, "heads": {1}, "residual": False},                     # 3 one attention head
        {**small, "blocks": 1, "heads": heads, "residual": False},                   # 4 several heads
        {**small, "blocks": 1, "heads": heads, "residual": False, "mlps": 1},        # 5 an MLP after attention
        {**small, "blocks": deep, "heads": heads, "residual": False, "mlps": deep},  # 6 several blocks
        {**small, "blocks": deep, "heads": heads, "residual": True, "mlps": deep},   # 7 residual connections
        {**small, "blocks": deep, "heads": heads, "residual": True, "mlps": deep,    # 8 LayerNorm: 2 per block
         "layer_norms": 2 * deep + 1},                                               # and 1 before the head
        {**small, "blocks": deep, "heads": heads, "residual": True, "mlps": deep,    # 9 GPT-2's tied head
         "layer_norms": 2 * deep + 1, "tied": True},
        {**small, "blocks": deep, "heads": heads, "residual": True, "mlps": deep,    # 10 GPT-2's initialisation
         "layer_norms": 2 * deep + 1, "tied": True, "gpt2_init": True},
        dict(kind="gpt", blocks=s.full["n_layer"], heads={s.full["n_head"]}, mlps=s.full["n_layer"],  # 11
             layer_norms=2 * s.full["n_layer"] + 1, dropout=True, position=True, residual=True, tied=True,
             gpt2_init=True),
    ]
    for rung, ((what, _, model), want) in enumerate(zip(rung_models("cpu"), expected), start=1):
        assert parts(model) == want, f"rung {rung} ({what})"


def test_the_full_rung_is_the_gpt_of_model_py():
    s = buildup.SIZES["cpu"]
    _, config, rung9 = rung_models("cpu")[-1]
    gpt = GPT(GPTConfig(vocab_size=V, bias=False, **s.full))  # model.py's defaults for everything else
    assert config == gpt.config
    gpt.load_state_dict(rung9.state_dict())  # strict: the same parameters, by name and shape
    rung9.eval(), gpt.eval()
    idx = torch.randint(V, (2, config.block_size))
    assert torch.equal(rung9(idx, idx)[1], gpt(idx, idx)[1])


@pytest.mark.parametrize("rung", range(2, 12))
def test_each_rung_gives_the_same_logits_with_the_kv_cache(rung):
    """The switched-off parts must not break the cache: the prompt, then one character at a
    time through a KV cache, scores every position as one pass over the whole text does (in
    float64: these weights make logits in the hundreds, where float32 rounds at 1e-2)."""
    _, config, model = rung_models("quick")[rung - 1]
    with torch.no_grad():
        for p in model.parameters():  # weights far from the init's, so that the logits are not flat
            p.normal_(0, 0.5)
    model.double().eval()
    idx = torch.randint(V, (2, config.block_size), generator=torch.Generator().manual_seed(rung))
    with torch.no_grad():
        full, _ = model(idx)  # (2, T, V)
        assert full.std() > 0.5
        cache = KVCache(config, 2)
        steps = [forward_cached(model, idx[:, :5], cache)] + [forward_cached(model, idx[:, t:t + 1], cache)
                                                              for t in range(5, config.block_size)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-9, rtol=1e-9)


def test_quick_ladder_runs_end_to_end(data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    figs, save_png = [], buildup.save_png
    monkeypatch.setattr(buildup, "save_png", lambda fig, *args: (figs.append(fig), save_png(fig, *args)))
    assert buildup.main(["--quick", "--data_dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "the losses mean nothing yet" in out
    # not where a real ladder goes, nor where the default data's --quick goes (data_dir is another text's, play)
    with open(tmp_path / "out" / "buildup" / "play-quick" / "ladder.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["rung"]) for r in rows] == list(range(1, 12))
    for r in rows:
        assert 0 < float(r["val"]) < 10 and 0 < float(r["train"]) < 10
        assert f"{float(r['val']):.4f}" in out  # the table printed what the file holds
    vocab_size = len(json.loads((data_dir / "vocab.json").read_text())["chars"])
    assert int(rows[0]["params"]) == vocab_size ** 2  # rung 1: the table
    assert "what each rung writes" in out
    # --quick's losses mean nothing, so no rung is said to be worse than the one before
    assert not any("than rung" in r["note"] for r in rows)
    assert [r["what"] for r in rows] == [rung.what for rung in buildup.ladder(buildup.SIZES["quick"], vocab_size)]
    assert (f"val {float(rows[0]['val']):.4f} (bigram) -> {float(rows[-1]['val']):.4f} (the full GPT)") in out
    written = out.split("what each rung writes")[1]
    assert [int(n) for n in re.findall(r"^ +(\d+)  ['\"]", written, flags=re.M)] == list(range(1, 12))  # one per rung
    if importlib.util.find_spec("matplotlib"):  # the picture says that its losses mean nothing
        assert "--quick" in figs[0].axes[0].get_title()


def test_a_climb_does_not_replace_a_ladder_csv_or_png_it_did_not_write(data_dir, tmp_path):
    """Refused before the first rung trains. An earlier climb's ladder.csv, and the picture beside it, it replaces."""
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "ladder.csv").write_text("my own notes\n")
    (tmp_path / "png").mkdir()
    (tmp_path / "png" / "ladder.png").write_bytes(b"my picture")
    for name, what in (("csv", "ladder.csv"), ("png", "ladder.png")):
        with pytest.raises(UserError, match=f"{what} was not written by lessons.buildup, and a climb would replace"):
            buildup.main(["--quick", "--data_dir", str(data_dir), "--out_dir", str(tmp_path / name)])
    assert (tmp_path / "csv" / "ladder.csv").read_text() == "my own notes\n"
    assert (tmp_path / "png" / "ladder.png").read_bytes() == b"my picture"
    (tmp_path / "png" / "ladder.csv").write_text(",".join(buildup.COLUMNS) + "\n")  # a climb's
    with pytest.raises(UserError, match="ladder.png was not written by matplotlib"):  # but not the picture
        buildup.refuse_to_write_over_other_files(tmp_path / "png")
    (tmp_path / "png" / "ladder.png").write_bytes(b"\x89PNG\r\n\x1a\n...tEXtSoftware\x00Matplotlib version")
    buildup.refuse_to_write_over_other_files(tmp_path / "png")  # a climb's picture, which matplotlib drew: allowed


def test_a_real_ladders_rows_say_where_a_rung_did_not_help(data_dir, capsys):
    """Every later rung that is not better than the one before says so in its row (quick sizes, but not --quick)."""
    from types import SimpleNamespace
    from machinery.data import load_data
    vocab, splits = load_data(data_dir)
    rungs = buildup.ladder(buildup.SIZES["quick"], vocab["vocab_size"])[:4]
    results, _ = buildup.climb(rungs, buildup.SIZES["quick"], splits, vocab["chars"], torch.device("cpu"),
                               SimpleNamespace(seed=1337, quick=False))
    for before, r in zip(results, results[1:]):
        assert (r["note"] != "") == (r["val"] >= before["val"] - 0.005)


def test_notes_say_where_a_rung_did_not_help():
    assert buildup.note_for(2, 2.0, None) == ""
    assert buildup.note_for(3, 2.0, 2.5) == ""
    assert buildup.note_for(3, 2.5, 2.5) == "no better than rung 2 at these sizes"
    assert buildup.note_for(3, 2.6, 2.5) == "worse than rung 2 at these sizes"
    assert (buildup.note_for(3, 2.6, 2.5, skipped=2)
            == "worse than rung 2 at these sizes; 2 steps skipped for a nan or inf loss")
    assert buildup.note_for(3, 2.0, 2.5, skipped=1) == "1 steps skipped for a nan or inf loss"
    assert buildup.note_for(3, 2.6, 2.5, why="as in the video") == "worse than rung 2 at these sizes, as in the video"
    assert buildup.note_for(3, 2.4, 2.5, why="as in the video") == ""  # a rung that helped needs no why


def test_without_matplotlib_it_says_so_and_goes_on(data_dir, tmp_path, monkeypatch, capsys):
    import builtins
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    buildup.draw([dict(val=2.0, short="a")], tmp_path / "ladder.png")
    assert "pip install matplotlib" in capsys.readouterr().out
    assert not (tmp_path / "ladder.png").exists()


def test_the_picture(tmp_path):
    pytest.importorskip("matplotlib")
    results = [dict(val=3.0 - 0.1 * i, short=f"rung {i}") for i in range(1, 10)]
    buildup.draw(results, tmp_path / "ladder.png")
    assert (tmp_path / "ladder.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_py_takes_the_switches_and_its_checkpoint_keeps_them(data_dir, tmp_path):
    """The ladder's switches are GPTConfig fields, so train.py has them as flags too."""
    import train
    from machinery.checkpoint import load_model
    from conftest import TINY
    out = tmp_path / "run"
    assert train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(out), "--mlp", "false",
                              "--residual", "false", "--layer_norm", "false"]) == 0
    model, _, _ = load_model(None, out)
    assert (model.config.mlp, model.config.residual, model.config.layer_norm) == (False, False, False)
    assert parts(model)["mlps"] == 0 and parts(model)["layer_norms"] == 0 and not parts(model)["residual"]


def test_the_bigram_rung_trains_without_weight_decay():
    """A table has no depth to regularise: the bigram rung trains as the bigram preset does, without decay."""
    sizes = buildup.SIZES["quick"]
    assert buildup.training_config(sizes, 1, 1337, torch.device("cpu")).weight_decay == 0.0
    assert buildup.training_config(sizes, 2, 1337, torch.device("cpu")).weight_decay == 0.1


def test_what_a_rung_writes_is_the_characters_after_the_newline():
    """The newline it starts from is the prompt, not part of what the rung wrote."""
    chars = list("\nabc")
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=8, vocab_size=4, n_layer=1, n_head=1, n_embd=8))
    text = buildup.sample_text(model, chars, torch.device("cpu"), length=20, seed=3)
    ids = model.generate(torch.zeros(1, 1, dtype=torch.long), 20, generator=torch.Generator().manual_seed(3))
    assert text == "".join(chars[i] for i in ids[0, 1:].tolist())  # 20 characters, the newline left out


def test_each_rung_trains_at_the_documented_settings():
    """docs/lessons.md: lr 1e-3 (0.03 for the table), 5000 steps of batch 32; rung 11 at its own lr, steps
    and batch; the schedule decays to a tenth and warms up over a tenth of the steps, at most 100."""
    cpu = torch.device("cpu")
    for sizes_name, full in (("cpu", dict(lr=5e-3, max_iters=1000, batch_size=32)),
                             ("video", dict(lr=3e-4, max_iters=5000, batch_size=64))):
        sizes = buildup.SIZES[sizes_name]
        for rung in range(1, 12):
            cfg = buildup.training_config(sizes, rung, 1337, cpu)
            want = full if rung == 11 else dict(lr=0.03 if rung == 1 else 1e-3, max_iters=5000, batch_size=32)
            got = dict(lr=cfg.lr, max_iters=cfg.max_iters, batch_size=cfg.batch_size)
            assert got == pytest.approx(want), (sizes_name, rung)
            assert cfg.min_lr == pytest.approx(cfg.lr / 10) and cfg.warmup_iters == 100, (sizes_name, rung)
    assert buildup.training_config(buildup.SIZES["quick"], 3, 1337, cpu).warmup_iters == 2  # a tenth of 20 steps


def test_a_gpu_without_bf16_trains_the_ladder_in_float32(monkeypatch):
    """fp16 would round rung 6's tiny signals to 0: where train.py would pick it, the ladder takes float32."""
    sizes = buildup.SIZES["video"]
    monkeypatch.setattr(buildup, "pick_dtype", lambda name, device: torch.float16)
    assert buildup.training_config(sizes, 6, 1337, torch.device("cpu")).dtype == "float32"
    monkeypatch.setattr(buildup, "pick_dtype", lambda name, device: torch.bfloat16)
    assert buildup.training_config(sizes, 6, 1337, torch.device("cpu")).dtype == "auto"


def test_a_rung_trains_the_same_whatever_ran_before(data_dir):
    """Every rung starts from the seed: the differences between rungs are the ideas', not the random state's."""
    from machinery.data import load_data
    _, splits = load_data(data_dir)
    sizes = buildup.SIZES["quick"]
    rung = buildup.ladder(sizes, V)[2]
    cfg = dataclasses.replace(buildup.training_config(sizes, 3, 1337, torch.device("cpu")), max_iters=2)
    runs = []
    for other in (0, 1):
        torch.manual_seed(other)  # what an earlier rung left behind
        model, losses, _, _ = buildup.train_rung(rung.config, cfg, splits, torch.device("cpu"))
        runs.append((model.state_dict(), losses))
    assert runs[0][1] == runs[1][1]
    for name, weights in runs[0][0].items():
        assert torch.equal(weights, runs[1][0][name]), name


def test_what_a_rung_writes_is_sampled_with_dropout_off():
    """The full rung trains with dropout: its sample is the model's, in eval mode, not a dropped-out one."""
    chars = list("\nabc")
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=8, vocab_size=4, n_layer=1, n_head=1, n_embd=8, dropout=0.5))
    model.train()  # as train_rung leaves it after a training step
    text = buildup.sample_text(model, chars, torch.device("cpu"), length=30, seed=3)
    assert not model.training
    ids = model.generate(torch.zeros(1, 1, dtype=torch.long), 30, generator=torch.Generator().manual_seed(3))
    assert text == "".join(chars[i] for i in ids[0, 1:].tolist())


def test_a_rung_within_half_a_hundredth_is_no_better_not_worse():
    assert buildup.note_for(3, 2.503, 2.5) == "no better than rung 2 at these sizes"
    assert buildup.note_for(3, 2.497, 2.5) == "no better than rung 2 at these sizes"
    assert buildup.note_for(3, 2.506, 2.5) == "worse than rung 2 at these sizes"


def test_the_pictures_bars_start_at_zero(tmp_path, monkeypatch):
    """Bars that start higher would exaggerate the differences between rungs (matplotlib starts them at 0
    by itself: this guards against a raised bottom)."""
    pytest.importorskip("matplotlib")
    figs = []
    monkeypatch.setattr(buildup, "save_png", lambda fig, *where: figs.append(fig))
    results = [dict(val=2.5 - 0.05 * i, short=f"rung {i}") for i in range(1, 12)]
    buildup.draw(results, tmp_path / "ladder.png", quick=True)
    ax = figs[0].axes[0]
    assert ax.get_ylim()[0] == 0
    assert [round(p.get_height(), 6) for p in ax.patches] == [round(r["val"], 6) for r in results]
    assert "--quick" in ax.get_title()


def test_auto_sizes_are_the_videos_on_cuda_and_the_cpus_elsewhere(data_dir, tmp_path, monkeypatch, capsys):
    """--sizes auto (the default): the video's on a CUDA GPU, the CPU ladder elsewhere, each in its own folder."""
    monkeypatch.chdir(tmp_path)
    climbed = []

    def climb(rungs, sizes, *args):
        climbed.append(sizes)
        return [dict(rung=n, short="", what="", params=0, train=2.0, val=2.0, seconds=0.0, note="")
                for n in range(1, 12)], [""] * 11
    monkeypatch.setattr(buildup, "climb", climb)
    monkeypatch.setattr(buildup, "draw", lambda *args, **kwargs: None)
    monkeypatch.setattr(buildup, "check_fits", lambda *args: None)  # (a pretended GPU has no memory to read)
    shutil.copytree(data_dir, tmp_path / "data" / "shakespeare")  # the default data, whose climbs go to <sizes>/
    for device, name in (("cpu", "cpu"), ("cuda", "video")):
        monkeypatch.setattr(buildup, "pick_device", lambda _, device=device: torch.device(device))
        assert buildup.main([]) == 0
        assert climbed[-1] is buildup.SIZES[name]
        assert f"sizes: {name} " in capsys.readouterr().out
        assert (tmp_path / "out" / "buildup" / name / "ladder.csv").is_file()


# 20: enough for quick's rungs 1 to 10 (block 16), not for rung 11 (block 32): the check must be of the longest;
# 32: one short of a window of block 32
@pytest.mark.parametrize("val_tokens", [20, 32])
def test_too_little_val_text_for_the_longest_block_is_refused_before_the_climb(data_dir, tmp_path, monkeypatch,
                                                                               val_tokens):
    """A window is block_size + 1 characters, so the val text must be longer than the longest rung's block."""
    import shutil
    from machinery.cli import UserError
    short = tmp_path / "short"
    shutil.copytree(data_dir, short)
    vocab = json.loads((short / "vocab.json").read_text())
    itemsize = np.dtype(vocab["dtype"]).itemsize
    (short / "val.bin").write_bytes((short / "val.bin").read_bytes()[:val_tokens * itemsize])
    (short / "vocab.json").write_text(json.dumps({**vocab, "val_tokens": val_tokens}))

    def climb(*args):
        raise AssertionError("the ladder began to climb")
    monkeypatch.setattr(buildup, "climb", climb)
    with pytest.raises(UserError, match="too little val text for block_size 32"):
        buildup.main(["--quick", "--data_dir", str(short), "--out_dir", str(tmp_path / "ladder")])
