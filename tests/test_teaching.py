"""The teaching tools: the baby GPT, the shape trace, and the bigram baseline."""

import copy
import csv
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lessons import babygpt
from machinery import checkpoint
import sample
import train
from conftest import TINY, run_command
from engine.decode import generate_cached
from lessons.inside import WEIGHTS_LABEL, attention_weights, print_shapes, recorded, trace_shapes, watch
from model import GPT, Bigram, GPTConfig, build_model
from machinery.cli import UserError
from machinery import settings
from machinery.bookkeeping import count_params

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------
# babygpt.py


def test_babygpt_parameter_count():
    V, T, L, C = 2, 3, 4, 16  # vocab {0, 1}, context 3, 4 layers, 16 wide, no biases
    per_block = 2 * C + C * 3 * C + C * C + C * 4 * C + 4 * C * C  # 2 LayerNorms, attention, MLP
    expected = V * C + T * C + L * per_block + C  # tied token embedding, positions, blocks, ln_f
    assert expected == 12512
    assert count_params(GPT(babygpt.CONFIG)) == expected


def test_babygpt_windows():
    X, Y = babygpt.windows(babygpt.BITS, 3)
    assert X.shape == (12, 3) and Y.shape == (12,)
    assert X[3].tolist() == [1, 0, 1] and Y[3].item() == 1  # 101 is always followed by 1
    after_111 = [y for x, y in zip(X.tolist(), Y.tolist()) if x == [1, 1, 1]]
    assert sorted(after_111) == [0, 0, 0, 1, 1, 1]  # 111 splits evenly


def test_babygpt_learns_the_chain():
    """After 300 steps from seed 1337 (the value holds for this seed), 101 -> 1 is likely
    and 111 is near a coin toss, as in the data."""
    torch.manual_seed(1337)
    model = GPT(babygpt.CONFIG)
    before = babygpt.next_bit_probs(model)
    loss = babygpt.train(model, *babygpt.windows(babygpt.BITS, 3), steps=300)
    after = babygpt.next_bit_probs(model)
    p = dict(zip(babygpt.STATES, after.tolist()))
    assert p["101"] > 0.7
    assert abs(p["111"] - 0.5) < 0.15
    assert abs(before[babygpt.STATES.index("101")] - 0.5) < 0.2  # it was learned, not there at the start
    assert loss < 0.5


def parse_dot(text):
    nodes = re.findall(r'^\s*"([01]{3})";$', text, flags=re.M)
    edges = re.findall(r'^\s*"([01]{3})" -> "([01]{3})" \[label="([0-9.]+)"', text, flags=re.M)
    return nodes, edges


def test_babygpt_command_writes_a_chain(tmp_path, capsys):
    dot = tmp_path / "chain" / "baby.dot"
    assert babygpt.main(["--steps", "60", "--dot", str(dot)]) == 0
    out = capsys.readouterr().out
    assert "baby GPT: 12,512 parameters" in out
    assert re.search(r"^P\(next=1\) +before +after 50 +after 60 +in training\?$", out, flags=re.M)  # --look_at 50
    assert len(re.findall(r"^state [01]{3}( +[0-9.]+){3} +(yes|no)$", out, flags=re.M)) == 8
    assert out.count(" yes") == 4  # 111, 110, 101, 011 occur in the bit string; the rest never do

    text = dot.read_text()
    assert text.startswith("digraph") and text.rstrip().endswith("}")
    nodes, edges = parse_dot(text)
    assert sorted(nodes) == babygpt.STATES
    assert len(edges) == 16
    for state in babygpt.STATES:
        out_edges = [(dst, float(p)) for src, dst, p in edges if src == state]
        assert sorted(dst for dst, _ in out_edges) == [state[1:] + "0", state[1:] + "1"]
        assert sum(p for _, p in out_edges) == pytest.approx(1, abs=0.011)  # two rounded labels


def test_babygpt_draws_a_png_when_graphviz_is_there(tmp_path, monkeypatch, capsys):
    fake = tmp_path / "bin" / "dot"  # stands in for Graphviz: copies its input to -o
    fake.parent.mkdir()
    fake.write_text(f"#!{sys.executable}\nimport shutil, sys\nshutil.copy(sys.argv[2], sys.argv[4])\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{Path(sys.executable).parent}")
    assert babygpt.main(["--steps", "1", "--dot", str(tmp_path / "baby.dot")]) == 0
    assert "drew it as" in capsys.readouterr().out
    assert (tmp_path / "baby.png").read_text().startswith("digraph")
    # a name that starts with a dash: Graphviz read it as an option, and printed its whole usage
    fake.write_text(f"#!{sys.executable}\nimport shutil, sys\nif sys.argv[2].startswith('-'): sys.exit('dot: no such "
                    f"option')\nshutil.copy(sys.argv[2], sys.argv[4])\n")
    monkeypatch.chdir(tmp_path)
    assert babygpt.main(["--steps", "1", "--dot=-draft.dot"]) == 0
    assert "drew it as -draft.png" in capsys.readouterr().out and (tmp_path / "-draft.png").is_file()
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # no Graphviz: the command to draw it is printed
    assert babygpt.main(["--steps", "1", "--dot=-sketch.dot"]) == 0
    assert "install Graphviz and run: dot -Tpng ./-sketch.dot -o ./-sketch.png" in capsys.readouterr().out


def test_babygpt_with_no_steps_reports_the_untrained_loss(tmp_path, capsys):
    """--steps 0 is the model as built: its loss is about ln 2 (it guesses near 0.5), not nan."""
    assert babygpt.main(["--steps", "0", "--dot", str(tmp_path / "baby.dot")]) == 0
    loss = float(re.search(r"after 0 steps of AdamW .*: loss (\S+)", capsys.readouterr().out).group(1))
    assert loss == pytest.approx(math.log(2), abs=0.1)


def test_babygpt_shows_and_writes_the_chain_of_its_seeded_model(tmp_path, capsys):
    """The table holds each state's own P(next=1) before, at --look_at and at the end, from --seed's
    model; the .dot file holds the final chain; "in training?" is yes for exactly the windows' states."""
    torch.manual_seed(1337)
    model = GPT(babygpt.CONFIG)
    X, Y = babygpt.windows(babygpt.BITS, 3)
    expected = {"before": babygpt.next_bit_probs(model)}

    def look(step):
        if step == 5:
            expected["after 5"] = babygpt.next_bit_probs(model)
    babygpt.train(model, X, Y, 12, after_step=look)
    expected["after 12"] = babygpt.next_bit_probs(model)

    torch.manual_seed(0)  # main seeds itself
    dot = tmp_path / "baby.dot"
    assert babygpt.main(["--steps", "12", "--look_at", "5", "--seed", "1337", "--dot", str(dot)]) == 0
    rows = re.findall(r"^state ([01]{3}) +([0-9.]+) +([0-9.]+) +([0-9.]+) +(yes|no)$", capsys.readouterr().out,
                      flags=re.M)
    assert [r[0] for r in rows] == babygpt.STATES
    for i, (state, *shown, seen) in enumerate(rows):
        for column, value in zip(("before", "after 5", "after 12"), shown):
            assert float(value) == pytest.approx(expected[column][i].item(), abs=5e-4), (state, column)
        assert (seen == "yes") == (state in ("011", "101", "110", "111")), state
    edges = parse_dot(dot.read_text())[1]
    for state, p1 in zip(babygpt.STATES, expected["after 12"].tolist()):
        assert (state, state[1:] + "1", f"{p1:.2f}") in edges


def test_babygpt_trains_with_the_documented_adamw():
    """Full batch, AdamW, lr 1e-3, weight decay 0.1 (docs/lessons.md): step for step the same weights."""
    X, Y = babygpt.windows(babygpt.BITS, 3)
    torch.manual_seed(1337)
    model = GPT(babygpt.CONFIG)
    reference = copy.deepcopy(model)
    babygpt.train(model, X, Y, 3)
    optimizer = torch.optim.AdamW(reference.parameters(), lr=1e-3, weight_decay=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        babygpt.last_position_loss(reference, X, Y).backward()
        optimizer.step()
    for (name, a), b in zip(model.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(a, b), name


def test_babygpt_can_look_at_its_last_step(tmp_path, capsys):
    """--look_at may be any step from 0 to --steps, the last one included."""
    assert babygpt.main(["--steps", "3", "--look_at", "3", "--dot", str(tmp_path / "baby.dot")]) == 0
    assert re.search(r"^P\(next=1\) +before +after 3 +in training\?$", capsys.readouterr().out, flags=re.M)


def test_babygpt_refuses_negative_steps():
    with pytest.raises(UserError, match="--steps -1 must be at least 0 — e.g. --steps 300"):
        babygpt.main(["--steps", "-1"])


# ----------------------------------------------------------------------------
# Shape tracing


def tiny_config(**changes):
    return GPTConfig(**{**dict(block_size=8, vocab_size=11, n_layer=2, n_head=4, n_embd=24), **changes})


def test_trace_lists_every_shape_once():
    B, T, C, nh, V = 3, 8, 24, 4, 11
    idx = torch.randint(V, (B, T))
    lines = trace_shapes(GPT(tiny_config()), idx, idx)
    shapes = {name: shape for name, shape, *_ in (re.split(r" {2,}", line) for line in lines)}
    assert shapes == {
        "idx": str((B, T)),
        "token embedding wte(idx)": str((B, T, C)),
        "position embedding wpe(pos)": str((T, C)),
        "x = tok + pos": str((B, T, C)),
        "attn: c_attn(x), q k v side by side": str((B, T, 3 * C)),
        "attn: q, split into heads": str((B, nh, T, C // nh)),
        "attn: k, split into heads": str((B, nh, T, C // nh)),
        "attn: v, split into heads": str((B, nh, T, C // nh)),
        "attn: scores q @ k^T / sqrt(hs)": str((B, nh, T, T)),
        "attn: causal mask": str((T, T)),
        "attn: weights, softmax(scores)": str((B, nh, T, T)),
        "attn: weights @ v": str((B, nh, T, C // nh)),
        "attn: heads joined again": str((B, T, C)),
        "mlp: gelu(c_fc(x))": str((B, T, 4 * C)),
        "block output": str((B, T, C)),
        "logits = lm_head(ln_f(x))": str((B, T, V)),
        "loss": "()",
    }
    assert sum("x 2, once per block" in line for line in lines) == 11  # the names inside a block
    assert "(B, nh, T, hs)" in lines[5]


def test_a_shape_seen_once_is_not_said_to_repeat():
    idx = torch.randint(11, (3, 8))
    lines = trace_shapes(GPT(tiny_config()), idx, idx)
    once = [line for line in lines if line.split("  ")[0] in ("idx", "token embedding wte(idx)", "loss")]
    assert len(once) == 3 and not any("once per block" in line for line in once)


def test_print_shapes_names_the_head_size(capsys):
    """hs is C / nh (24 / 4 = 6 here; the model has 2 layers, so C / n_layer would say 12)."""
    idx = torch.randint(11, (3, 8))
    assert print_shapes(GPT(tiny_config()), idx, idx) == 0
    assert "nh=4 heads, hs=6 head size," in capsys.readouterr().out.splitlines()[0]


def test_the_mlps_width_is_read_off_its_tensor():
    """model.py's MLP is 4C wide; a fork's wider or narrower one is labelled as it is, not as 4C."""
    idx = torch.randint(11, (3, 8))
    model = GPT(tiny_config())
    assert any(line.endswith("(B, T, 4C)  x 2, once per block") for line in trace_shapes(model, idx))
    for block in model.transformer.h:  # a fork's MLP, 2C wide
        block.mlp.c_fc, block.mlp.c_proj = torch.nn.Linear(24, 48, bias=False), torch.nn.Linear(48, 24, bias=False)
    assert any(line.startswith("mlp: gelu(c_fc(x))") and "(3, 8, 48)" in line and "(B, T, 2C)" in line
               for line in trace_shapes(model, idx))


def test_trace_columns_fit_the_longest_name():
    """With rotary and QK-norm on, the longest names, every shape still starts in one column."""
    idx = torch.randint(11, (3, 8))
    lines = trace_shapes(GPT(tiny_config(position="rotary", qk_norm=True)), idx, idx)
    assert any("qk-norm" in line for line in lines)
    assert len({len(line) - len(line.split("  ", 1)[1].lstrip()) for line in lines}) == 1


@pytest.mark.parametrize("position, qk_norm", [("learned", True), ("rotary", True), ("rotary", False)])
def test_the_probes_give_back_the_scores(position, qk_norm):
    """TransformerLens's names: hook_q and hook_k are q and k just split into heads, hook_rot_q and
    hook_rot_k the same after rotary. So both are at one stage, and the scores come back from them."""
    torch.manual_seed(0)
    model = GPT(tiny_config(position=position, qk_norm=qk_norm, n_layer=1)).eval()
    names = ("hook_q", "hook_k", "hook_rot_q", "hook_rot_k", "hook_scores")
    with torch.no_grad(), watch(model, [(rf".*\.attn\.{name}", "out", name, "", None) for name in names]) as records:
        model(torch.randint(11, (2, 8)))
    seen = {label: value for label, _, value in records}
    if position == "rotary":
        q, k = seen["hook_rot_q"], seen["hook_rot_k"]
    else:
        assert "hook_rot_k" not in seen

        def rms(t):  # qk-norm written out, not the model's own q_norm and k_norm: a no-op there would pass
            return t / t.pow(2).mean(-1, keepdim=True).add(torch.finfo(t.dtype).eps).sqrt() if qk_norm else t
        q, k = rms(seen["hook_q"]), rms(seen["hook_k"])
    assert seen["hook_q"].shape == seen["hook_k"].shape == (2, 4, 8, 6)  # (B, nh, T, hs)
    torch.testing.assert_close(q @ k.transpose(-2, -1) / math.sqrt(6), seen["hook_scores"])


@pytest.mark.parametrize("attention", ["sdpa", "manual"])
def test_recording_changes_nothing(attention):
    """Watching sends attention through the written-out path, which must give the same logits;
    afterwards the hooks are gone and the attention is as it was."""
    torch.manual_seed(0)
    model = GPT(tiny_config(attention=attention)).eval()
    idx = torch.randint(11, (2, 8))
    plain, _ = model(idx)
    with watch(model) as records:
        watched, _ = model(idx)
    assert not any(m._forward_hooks for m in model.modules())
    assert {m.attention for m in model.modules() if hasattr(m, "attention")} == {attention}
    torch.testing.assert_close(watched, plain)
    weights = recorded(records, WEIGHTS_LABEL)
    assert len(weights) == 2  # one per layer
    for att in weights:  # (B, nh, T, T): rows are distributions, and nothing looks ahead
        torch.testing.assert_close(att.sum(-1), torch.ones(2, 4, 8))
        assert att.triu(diagonal=1).abs().max() == 0


def test_the_lessons_doc_snippet_prints_a_runs_attention_weights(run_dir, tmp_path, monkeypatch, capsys):
    """docs/lessons.md's snippet, run as written in a folder whose out/ holds a trained run."""
    snippet = re.search(r"The weights themselves.*?```python\n(.*?)```", (ROOT / "docs" / "lessons.md").read_text(),
                        re.S)[1]
    shutil.copytree(run_dir, tmp_path / "out")
    monkeypatch.chdir(tmp_path)
    exec(snippet, {})
    rows = capsys.readouterr().out.strip().splitlines()  # tensor([[1.0000, 0.0000, ...], ...]): 6 rows, one per
    # position of "ROMEO:", each summing to 1 with nothing after the diagonal
    weights = torch.tensor([[float(v) for v in re.findall(r"\d\.\d+", row)] for row in rows])
    assert weights.shape == (6, 6) and (weights.triu(diagonal=1) == 0).all()
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(6), atol=0.03, rtol=0)


def test_attention_weights_are_each_layers_softmax_of_its_scores():
    """What the pictures draw: per layer (B, nh, T, T), the masked scores through a softmax, rows summing to 1."""
    torch.manual_seed(0)
    model = GPT(tiny_config()).eval()
    idx = torch.randint(11, (2, 8))
    weights = attention_weights(model, idx)
    with torch.no_grad(), watch(model) as records:
        model(idx)
    scores = recorded(records, "attn: scores q @ k^T / sqrt(hs)")
    assert len(weights) == len(scores) == 2
    future = torch.ones(8, 8, dtype=torch.bool).triu(1)
    for att, score in zip(weights, scores):
        torch.testing.assert_close(att, torch.softmax(score.masked_fill(future, float("-inf")), dim=-1))
        torch.testing.assert_close(att.sum(-1), torch.ones(2, 4, 8))


def test_train_trace_shapes_prints_and_trains_nothing(data_dir, run_dir, capsys):
    # run_dir holds a finished run: tracing must neither refuse it nor touch it
    before = {f.name: f.stat().st_mtime_ns for f in run_dir.iterdir()}
    argv = TINY + ["--data_dir", str(data_dir), "--out_dir", str(run_dir), "--trace_shapes"]
    assert train.main(argv) == 0
    out = capsys.readouterr().out
    assert "B=8 batch, T=16 time, C=32 channels, nh=2 heads, hs=16 head size" in out
    assert "(attention written out for this pass, as attention=manual does, so that its scores and weights show; " \
           "the model's own is sdpa)\n" in out  # (the run's settings, printed above it, say sdpa)
    assert re.search(r"attn: scores q @ k\^T / sqrt\(hs\) +\(8, 2, 16, 16\) +\(B, nh, T, S\)", out)
    assert re.search(r"logits = lm_head\(ln_f\(x\)\) +\(8, 16, 43\) +\(B, T, V\)", out)  # 43 characters
    assert "train loss" not in out
    assert {f.name: f.stat().st_mtime_ns for f in run_dir.iterdir()} == before
    assert train.main(argv + ["--preset", "bigram"]) == 0  # a table: no channels or heads to name
    assert "B=8 batch, T=16 time, V=43 vocabulary\nidx" in capsys.readouterr().out  # (no attention to write out)


def test_the_shape_lesson_runs_as_a_module():
    p = run_command("lessons.inside", cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    assert re.search(r"^attn: q, split into heads +\(3, 4, 8, 12\) +\(B, nh, T, hs\)  x 2, once per block$", p.stdout,
                     re.M)
    assert re.search(r"^mlp: gelu\(c_fc\(x\)\) +\(3, 8, 192\) ", p.stdout, re.M)
    sizes = dict(re.findall(r"(\w+)=(\d+) ", p.stdout.splitlines()[0]))  # B, T, C, nh, hs, V
    assert len(sizes) == 6 and len(set(sizes.values())) == 6  # each size names one axis
    assert "2" not in sizes.values()  # nor is it the count of "x 2, once per block"
    assert f"```\n{p.stdout}```" in (ROOT / "docs" / "lessons.md").read_text()  # the output it shows


def test_the_shape_lesson_stops_quietly_at_a_closed_pipe(tmp_path):
    """python -m lessons.inside | head -1: the reader is gone before the trace is written (it is
    still importing torch); that must end quietly, with the exit code of SIGPIPE."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # a pipe buffers, as usual
    env["PYTHONPATH"] = str(ROOT)
    p = subprocess.Popen([sys.executable, "-m", "lessons.inside"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdout.close()
    stderr = p.communicate(timeout=120)[1].decode()
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr and p.returncode == 141, stderr


# ----------------------------------------------------------------------------
# The bigram baseline


def test_bigram_is_a_table():
    model = build_model(tiny_config(model="bigram"))
    assert isinstance(model, Bigram) and count_params(model) == 11 * 11
    idx = torch.tensor([[3, 5, 3]])
    logits, loss = model(idx, torch.tensor([[5, 3, 1]]))
    assert loss.item() == pytest.approx(math.log(11))  # a zero table: uniform
    with torch.no_grad():
        model.table.weight[3, 7] = 5.0
    logits, _ = model(idx)
    assert logits[0, 0, 7] == 5.0 and logits[0, 2, 7] == 5.0 and logits[0, 1, 7] == 0  # row = this character


def test_bigram_cached_and_naive_generation_agree():
    torch.manual_seed(0)
    model = build_model(tiny_config(model="bigram"))
    with torch.no_grad():
        model.table.weight.normal_()
    idx = torch.randint(11, (2, 3))
    for temperature in (0.0, 1.0):
        naive = model.generate(idx, 30, temperature, generator=torch.Generator().manual_seed(1))
        cached = generate_cached(model, idx, 30, temperature, generator=torch.Generator().manual_seed(1))
        assert torch.equal(naive, cached)  # 30 > block_size: also across cache restarts


def test_bigram_trains_and_samples(data_dir, tmp_path, capsys):
    out = tmp_path / "bigram"
    argv = TINY + ["--data_dir", str(data_dir), "--out_dir", str(out), "--model", "bigram", "--lr", "0.05",
                   "--max_iters", "40", "--eval_interval", "20", "--eval_iters", "4", "--weight_decay", "0"]
    assert train.main(argv) == 0
    assert "model: bigram, a" in capsys.readouterr().out
    val = [float(row["val_loss"]) for row in csv.DictReader(open(out / "log.csv"))]
    vocab_size = checkpoint.load_checkpoint(out / "best.pt", "")["model_config"]["vocab_size"]
    assert val[0] == pytest.approx(math.log(vocab_size), abs=1e-4)  # uniform at the start
    assert val[-1] < val[0] - 1.0
    assert sample.main(["--out_dir", str(out), "--prompt", "KING", "--max_new_tokens", "20",
                        "--num_samples", "2"]) == 0
    assert capsys.readouterr().out.count("\nKING") == 2


def test_bigram_preset_and_unknown_model(data_dir, tmp_path):
    values, _, summary = settings.build_config("bigram", False, {"out_dir": str(tmp_path)})
    assert values["model"] == "bigram" and summary == f"config: preset bigram, with --out_dir {tmp_path}"
    with pytest.raises(UserError, match="--model 'trigram' is unknown — use gpt or bigram"):
        train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path), "--model", "trigram"])
    assert not any(tmp_path.iterdir())


def test_each_arrow_of_the_chain_shifts_in_its_bit_with_its_probability():
    probs = torch.linspace(0.1, 0.8, 8)  # P(next = 1) of states 000 .. 111
    dot = babygpt.to_dot(probs)
    p = probs[5].item()  # state 101
    assert f'"101" -> "011" [label="{p:.2f}"' in dot  # 101, then a 1: 011
    assert f'"101" -> "010" [label="{1 - p:.2f}"' in dot  # 101, then a 0: 010
    assert dot.count("->") == 16
