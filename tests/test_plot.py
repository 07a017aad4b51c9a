"""lessons/plot.py: each picture is a real PNG when matplotlib is installed, and without it the
command says what to install. The drawing tests are skipped where matplotlib is absent."""

import math
import sys
import warnings

import numpy as np
import pytest
import torch

from lessons import plot
from lessons.inside import attention_weights
from machinery.checkpoint import load_model
from conftest import TINY
from machinery.cli import UserError, run_cli
import train

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


@pytest.mark.parametrize("name", ["run", r"$\frac$ run"])  # the title shows the path: not read as maths
def test_default_picture_goes_beside_the_run(run_dir, tmp_path, name):
    pytest.importorskip("matplotlib")
    run = tmp_path / name
    run.mkdir()
    (run / "log.csv").write_bytes((run_dir / "log.csv").read_bytes())
    assert plot.main(["loss", "--out_dir", str(run)]) == 0
    assert (run / "loss.png").read_bytes().startswith(PNG_MAGIC)


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
    assert ("note: log.csv holds 2 evaluation(s), so the curve has as many points — for more, train with a smaller "
            "--eval_interval (e.g. 1)") in capsys.readouterr().err


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


@pytest.mark.parametrize("argv, message", [
    (["attention", "--layer", "2"], r"--layer 2 does not exist: the model has layers 0 \.\. 1"),
    (["attention", "--prompt", ""], "the prompt has 0 characters, and the model reads 1 to block_size 16 at once"),
    (["attention", "--prompt", "x" * 17],
     "the prompt has 17 characters, and the model reads 1 to block_size 16 at once"),
    (["attention", "--prompt", "KING ~"], "not in the model's vocabulary: '~'"),
    (["embeddings", "--checkpoint", "missing.pt"], "no checkpoint at missing.pt"),
])
def test_bad_input(run_dir, argv, message):
    pytest.importorskip("matplotlib")
    with pytest.raises(UserError, match=message):
        plot.main(argv + ["--out_dir", str(run_dir)])


def test_missing_or_foreign_log(tmp_path):
    pytest.importorskip("matplotlib")
    with pytest.raises(UserError, match="no training log at .*train first"):
        plot.main(["loss", "--out_dir", str(tmp_path)])
    (tmp_path / "log.csv").write_text("a,b\n1,2\n")
    with pytest.raises(UserError, match="is not a log.csv written by train.py"):
        plot.main(["loss", "--out_dir", str(tmp_path)])


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
    (tmp_path / "log.csv").write_text(header + "".join(rows))
    figs = drawn(monkeypatch)
    assert plot.main(["loss", "--out_dir", str(tmp_path), "--save", str(tmp_path / "loss.png")]) == 0
    assert "(best val 2.0000, at iteration 4)" in figs[0].axes[0].get_title()


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
