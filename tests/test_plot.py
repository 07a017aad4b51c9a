"""lessons/plot.py: each picture is a real PNG when matplotlib is installed, and without it the
command says what to install. The drawing tests are skipped where matplotlib is absent."""

import math
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from lessons import plot
from lessons.inside import attention_weights
from model import GPT, GPTConfig
from machinery.checkpoint import load_model
from conftest import TINY
from machinery.cli import UserError, run_cli
import train

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("command", [["loss"], ["attention", "--prompt", "KING HENRY:\nThe"], ["attention"],
                                     ["embeddings"]])
def test_each_plot_writes_a_png(run_dir, tmp_path, command, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "pictures" / f"{command[0]}.png"
    assert plot.main(command + ["--out_dir", str(run_dir), "--save", str(png)]) == 0
    data = png.read_bytes()
    assert data.startswith(PNG_MAGIC) and 5_000 < len(data) < 200_000
    assert f"wrote {png}" in capsys.readouterr().out


def test_a_backend_the_environment_names_is_not_the_pictures_concern(run_dir, tmp_path):
    """MPLBACKEND=Agg2 was matplotlib's traceback, after the whole climb in lessons.buildup."""
    pytest.importorskip("matplotlib")
    png = tmp_path / "loss.png"
    done = subprocess.run([sys.executable, "-m", "lessons.plot", "loss", "--out_dir", str(run_dir), "--save", str(png)],
                          cwd=ROOT, env={**os.environ, "MPLBACKEND": "Agg2"}, capture_output=True, text=True)
    assert done.returncode == 0 and png.read_bytes().startswith(PNG_MAGIC), done.stderr


@pytest.mark.parametrize("name", ["run", r"$\frac$ run"])  # the title shows the path: not read as maths
def test_default_picture_goes_beside_the_run(run_dir, tmp_path, name):
    pytest.importorskip("matplotlib")
    run = tmp_path / name
    run.mkdir()
    (run / "log.csv").write_bytes((run_dir / "log.csv").read_bytes())
    assert plot.main(["loss", "--out_dir", str(run)]) == 0
    assert (run / "loss.png").read_bytes().startswith(PNG_MAGIC)


def test_a_picture_of_its_own_is_redrawn_and_one_of_the_users_is_kept(run_dir, tmp_path, capsys):
    """A rerun draws over the picture it drew before (matplotlib names itself in the PNG); a PNG of the user's with
    the name given is refused, whole."""
    pytest.importorskip("matplotlib")
    png = tmp_path / "loss.png"
    for _ in range(2):
        assert plot.main(["loss", "--out_dir", str(run_dir), "--save", str(png)]) == 0
    theirs = tmp_path / "holiday.png"
    theirs.write_bytes(PNG_MAGIC + b"a photo")
    assert run_cli(plot.main, ["loss", "--out_dir", str(run_dir), "--save", str(theirs)]) == 2
    assert f"{theirs} was not written by matplotlib, and this would replace it" in capsys.readouterr().err
    assert theirs.read_bytes() == PNG_MAGIC + b"a photo"


def test_a_short_log_gets_a_note(run_dir, tmp_path, capsys):
    """A run shorter than --eval_interval logs only its first and last evaluations."""
    pytest.importorskip("matplotlib")
    run = tmp_path / "run"
    run.mkdir()
    lines = (run_dir / "log.csv").read_text().splitlines(keepends=True)
    assert len(lines) == 1 + 4  # header, then iterations 0, 4, 8, 12: no note
    (run / "log.csv").write_text("".join(lines))
    assert plot.main(["loss", "--out_dir", str(run)]) == 0
    assert "note" not in capsys.readouterr().err
    (run / "log.csv").write_text("".join(lines[:2] + lines[-1:]))
    assert plot.main(["loss", "--out_dir", str(run)]) == 0
    assert ("note: log.csv holds 2 evaluation(s), so the curve has as many points — for more, train again, into a "
            "new --out_dir, with a smaller --eval_interval (e.g. 1)") in capsys.readouterr().err
    (run / "log.csv").write_text("".join(lines[:2]))  # stopped before its first evaluation: it offered "e.g. 1"
    note = ("note: log.csv holds only iteration 0's evaluation, of the untrained model — the curve goes on at the "
            "run's next evaluation: let it train on (if it was stopped: ")
    assert plot.main(["loss", "--out_dir", str(run)]) == 0  # killed: no latest.pt to resume from
    assert capsys.readouterr().err == note + "start it again with the command that began it)\n"
    shutil.copy(run_dir / "latest.pt", run / "latest.pt")  # a Ctrl-C saves one
    assert plot.main(["loss", "--out_dir", str(run)]) == 0
    assert capsys.readouterr().err == note + f"python train.py --resume --out_dir {run})\n"


def test_without_matplotlib_it_says_what_to_install(run_dir, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what `import matplotlib` sees when it is absent
    assert run_cli(plot.main, ["loss", "--out_dir", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err == "error: the pictures need matplotlib, an optional extra — pip install matplotlib\n"


def test_pca_finds_the_spread():
    torch.manual_seed(0)
    direction = torch.tensor([3.0, 4.0, 0.0]) / 5
    X = torch.randn(200, 1) * 10 * direction + torch.randn(200, 3) * 0.1 + 7  # mostly along one line
    points, share = plot.pca_2d(X)
    assert points.shape == (200, 2)
    assert share[0] > 0.99 and share[0] + share[1] <= 1
    assert points.mean(dim=0).abs().max() < 1e-4  # centred
    points, share = plot.pca_2d(torch.randn(1, 8))  # a vocabulary of one character: a point, no spread (not nan)
    assert points.shape == (1, 2) and share == [0.0, 0.0]


@pytest.mark.parametrize("argv, message", [
    (["attention", "--layer", "2"], r"--layer 2 does not exist: the model has layers 0 \.\. 1 — give one of them"),
    (["attention", "--layer", "-1"], r"--layer -1 does not exist: the model has layers 0 \.\. 1"),  # not the last
    (["attention", "--prompt", ""],
     r"the prompt has 0 characters, and the model reads 1 to 16 characters at once \(its block_size\)"),
    (["attention", "--prompt", "x" * 17],
     r"the prompt has 17 characters, and the model reads 1 to 16 characters at once \(its block_size\)"),
    (["attention", "--prompt", "KING ~"], "not in the model's vocabulary: '~'"),
    (["embeddings", "--checkpoint", "missing.pt"], "--checkpoint missing.pt and --out_dir .* both given"),  # (not one)
])
def test_bad_input(run_dir, argv, message):
    pytest.importorskip("matplotlib")
    with pytest.raises(UserError, match=message):
        plot.main(argv + ["--out_dir", str(run_dir)])


def test_a_prompt_of_the_wrong_length_is_told_what_reads_best_only_where_it_fits():
    """About 40 characters make a readable picture: said where the model can read 40, not for a block of 16."""
    for block_size, advice in ((16, "give a prompt of that length$"), (40, r"that length \(about 40 read best\)$")):
        with pytest.raises(UserError, match=advice):
            plot.prompt_ids("", list("ab"), GPTConfig(block_size=block_size))


def test_a_missing_checkpoint_is_named(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")  # (without it, the command stops first at "pip install matplotlib")
    monkeypatch.chdir(tmp_path)  # (no --out_dir: given beside --checkpoint, it is refused)
    with pytest.raises(UserError, match="no checkpoint at missing.pt"):
        plot.main(["embeddings", "--checkpoint", "missing.pt"])


def test_missing_or_foreign_log(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    command = f"python train.py --out_dir {tmp_path}"
    with pytest.raises(UserError, match=f"no training log at .*train a model first with `{command}`"):
        plot.main(["loss", "--out_dir", str(tmp_path)])
    monkeypatch.chdir(tmp_path)  # logs in folders inside out/, none in out itself: as sample.py, it names them
    (tmp_path / "out" / "bigram").mkdir(parents=True)
    (tmp_path / "out" / "bigram" / "log.csv").write_text("iter,train_loss,val_loss\n")
    (tmp_path / "out" / "no_log").mkdir()
    (tmp_path / "out" / "no_log" / "best.pt").write_bytes(b"")  # (a checkpoint alone: nothing to plot)
    hint = "give --out_dir a run in it (out/bigram), or train a model first"
    with pytest.raises(UserError, match=re.escape(f"no training log at out/log.csv — {hint}")):
        plot.main(["loss"])
    (tmp_path / "log.csv").write_text("a,b\n1,2\n")
    with pytest.raises(UserError, match="is not a log.csv written by train.py"):
        plot.main(["loss", "--out_dir", str(tmp_path)])
    (tmp_path / "folder" / "log.csv").mkdir(parents=True)  # (an IsADirectoryError's traceback, before)
    with pytest.raises(UserError, match=r"cannot read .*log.csv \(Is a directory\) — point --out_dir at a run's"):
        plot.main(["loss", "--out_dir", str(tmp_path / "folder")])


def test_a_bigram_has_nothing_to_draw(data_dir, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "bigram"
    assert train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(out), "--model", "bigram",
                              "--max_iters", "4"]) == 0
    # the error names the file and how to point at a GPT instead
    shown = r"best\.pt holds a bigram model, which has no attention .* --out_dir or --checkpoint"
    with pytest.raises(UserError, match=shown):
        plot.main(["embeddings", "--out_dir", str(out)])


def test_characters_the_font_lacks_get_one_note_not_a_warning_each(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    import matplotlib
    plt = plot.pyplot()
    with matplotlib.rc_context({"font.family": "DejaVu Sans"}):  # matplotlib's own font: no CJK in it
        fig = plt.figure()
        fig.text(0.5, 0.5, "KING 日本 日")
        with warnings.catch_warnings(record=True) as leaked:
            warnings.simplefilter("always")
            plot.save_png(fig, tmp_path / "cjk.png")
    assert not [str(w.message) for w in leaked if "Glyph" in str(w.message)]
    err = capsys.readouterr().err
    assert err == "note: the font has no glyph for 2 character(s), drawn as boxes: 日 本\n"
    assert (tmp_path / "cjk.png").read_bytes().startswith(PNG_MAGIC)


def drawn(monkeypatch):
    """The figures the command draws, kept instead of written."""
    figs = []
    monkeypatch.setattr(plot, "save_png", lambda fig, path, flag="--save": figs.append(fig))
    return figs


def test_the_loss_picture_names_the_best_val_loss(run_dir, tmp_path, monkeypatch):
    """The lowest val loss, not the last: this log's rises again after iteration 4."""
    pytest.importorskip("matplotlib")
    header, *rows = (run_dir / "log.csv").read_text().splitlines(keepends=True)
    rows = [",".join([r.split(",")[0], r.split(",")[1], val] + r.split(",")[3:])
            for r, val in zip(rows, ["4.0", "2.0", "2.5", "3.0"], strict=True)]  # iterations 0, 4, 8, 12
    try:  # in a folder whose name is not UTF-8, a Latin-1 café (its title: a TypeError from matplotlib, before)
        out = tmp_path / os.fsdecode(b"caf\xe9")
        out.mkdir()
    except (OSError, UnicodeError):  # a file system of UTF-8 names only
        out = tmp_path
    (out / "log.csv").write_text(header + "".join(rows))
    figs = drawn(monkeypatch)
    assert plot.main(["loss", "--out_dir", str(out), "--save", str(tmp_path / "loss.png")]) == 0
    assert "(best val 2.0000, at iteration 4)" in figs[0].axes[0].get_title()
    figs[0].axes[0].get_title().encode("utf-8")  # text that a font can draw: no byte of a file name left in it


@pytest.mark.parametrize("layer", [0, 1])
def test_the_attention_picture_draws_the_layer_asked_for(run_dir, tmp_path, monkeypatch, layer):
    """--layer draws that layer's weights, head by head, the masked future grey (nan)."""
    pytest.importorskip("matplotlib")
    figs = drawn(monkeypatch)
    assert plot.main(["attention", "--out_dir", str(run_dir), "--prompt", "ROMEO:", "--layer", str(layer),
                      "--save", str(tmp_path / "attention.png")]) == 0
    model, ckpt, _ = load_model(None, str(run_dir))
    model.eval()
    att = attention_weights(model, plot.prompt_ids("ROMEO:", ckpt["vocab"]["chars"], model.config))[layer][0]
    T = att.size(-1)
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    for h in range(model.config.n_head):
        shown = torch.from_numpy(np.ma.filled(figs[0].axes[h].images[0].get_array(), np.nan).astype(np.float32))
        assert torch.allclose(shown, att[h].masked_fill(future, math.nan), equal_nan=True)
        assert figs[0].axes[h].images[0].get_clim() == (0, 1)  # every head on one scale: 0 to 1


def test_a_log_ending_before_iteration_10_suggests_an_interval_of_at_least_1(run_dir, tmp_path, capsys):
    """--eval_interval 0 would be no advice: a run of 8 iterations is told e.g. 1, not 8 // 10 = 0."""
    pytest.importorskip("matplotlib")
    lines = (run_dir / "log.csv").read_text().splitlines(keepends=True)
    (tmp_path / "log.csv").write_text("".join(lines[:4]))  # header, then iterations 0, 4, 8
    assert plot.main(["loss", "--out_dir", str(tmp_path), "--save", str(tmp_path / "loss.png")]) == 0
    err = capsys.readouterr().err
    assert "holds 3 evaluation(s)" in err and "(e.g. 1)" in err


def test_the_attention_picture_shows_newline_and_space_as_signs(run_dir, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    figs = drawn(monkeypatch)
    assert plot.main(["attention", "--out_dir", str(run_dir), "--prompt", "KING HENRY:\nThe",
                      "--save", str(tmp_path / "attention.png")]) == 0
    for ticks in (figs[0].axes[0].get_xticklabels(), figs[0].axes[0].get_yticklabels()):
        assert "".join(t.get_text() for t in ticks) == "KING␣HENRY:⏎The"


def test_without_layer_the_attention_picture_is_layer_0(run_dir, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    figs = drawn(monkeypatch)
    assert plot.main(["attention", "--out_dir", str(run_dir), "--prompt", "ROMEO:",
                      "--save", str(tmp_path / "attention.png")]) == 0
    assert [ax.get_title() for ax in figs[0].axes[:2]] == ["layer 0, head 0", "layer 0, head 1"]


def test_the_attention_picture_draws_every_head_in_a_near_square_grid(tmp_path, monkeypatch):
    """3 heads: a 2 x 2 grid, the fourth cell empty; each head's own weights in its cell."""
    pytest.importorskip("matplotlib")
    from types import SimpleNamespace
    chars = sorted(set("ROMEO:"))
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(chars), block_size=8, n_layer=1, n_head=3, n_embd=12)).eval()
    monkeypatch.setattr(plot, "load_gpt", lambda args: (model, {"vocab": {"chars": chars}}, tmp_path / "best.pt"))
    figs = drawn(monkeypatch)
    plot.plot_attention(SimpleNamespace(layer=0, prompt="ROMEO:", save=None), plot.pyplot())
    att = attention_weights(model, plot.prompt_ids("ROMEO:", chars, model.config))[0][0]  # (3, T, T)
    grid = figs[0].axes[:4]  # (the colour bar is an axes too, after them)
    assert grid[0].get_subplotspec().get_geometry()[:2] == (2, 2)  # rows, columns
    assert [ax.get_title() for ax in grid] == ["layer 0, head 0", "layer 0, head 1", "layer 0, head 2", ""]
    assert not grid[3].axison and not grid[3].images
    for h in range(3):
        shown = np.ma.filled(grid[h].images[0].get_array(), np.nan)
        assert np.allclose(np.tril(shown), att[h].numpy(), atol=1e-6)


@pytest.mark.parametrize("command, name", [("attention", "attention.png"), ("embeddings", "embeddings.png")])
def test_default_picture_of_a_checkpoint_goes_beside_it(run_dir, tmp_path, monkeypatch, command, name):
    """With --checkpoint, the picture goes beside that file, not into --out_dir (out/, by default)."""
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    saved = []
    monkeypatch.setattr(plot, "save_png", lambda fig, path, flag="--save": saved.append(path))
    assert plot.main([command, "--checkpoint", str(run_dir / "best.pt")]) == 0
    assert saved == [run_dir / name]


def test_pca_keeps_the_points_of_a_plane_as_they_are():
    """Points that lie in a plane, in 5 dimensions: their 2-D coordinates keep every distance."""
    torch.manual_seed(0)
    flat = torch.randn(50, 2, dtype=torch.float64) * torch.tensor([3.0, 1.0], dtype=torch.float64)  # wider one way
    basis, _ = torch.linalg.qr(torch.randn(5, 2, dtype=torch.float64))  # (5, 2): two orthonormal directions
    points, share = plot.pca_2d(flat @ basis.T + 1.5)
    def distances(x):  # (N, N), each one computed directly: exactly 0 from a point to itself
        return torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")
    torch.testing.assert_close(distances(points), distances(flat))
    assert points[:, 0].var() > points[:, 1].var()  # component 1 is the wider one
    assert share[0] + share[1] == pytest.approx(1, abs=1e-5)
    assert share[0] == pytest.approx(points[:, 0].var().item() / points.var(dim=0).sum().item(), abs=1e-5)


def test_the_embeddings_picture_colours_and_labels(run_dir, tmp_path, monkeypatch):
    """Blue lower case, purple upper case, grey the rest (as its title says), and each axis its own share."""
    pytest.importorskip("matplotlib")
    figs = drawn(monkeypatch)
    assert plot.main(["embeddings", "--out_dir", str(run_dir), "--save", str(tmp_path / "e.png")]) == 0
    model, ckpt, _ = load_model(None, str(run_dir))
    ax = figs[0].axes[0]
    colours = {t.get_text(): t.get_color() for t in ax.texts}
    assert colours["a"] == "tab:blue" and colours["K"] == "tab:purple" and colours["⏎"] == colours[":"] == "tab:gray"
    assert len(ax.texts) == len(ckpt["vocab"]["chars"])
    _, share = plot.pca_2d(model.transformer.wte.weight.detach().float())
    assert ax.get_xlabel() == f"principal component 1 ({share[0]:.0%} of the variance)"
    assert ax.get_ylabel() == f"principal component 2 ({share[1]:.0%})"


def test_the_explore_page_refuses_a_nan_rather_than_write_json_no_browser_reads():
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        plot.explore_page({"share": [float("nan")]})
