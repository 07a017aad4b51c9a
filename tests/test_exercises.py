"""The exercises: untouched, each says "not started"; answered with the repo's own code, each
passes and trains to the repo's own loss; each named mistake fails with the hint that names it."""

import argparse
import ast
import functools
import importlib
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import run_command
from exercise_answers import ANSWERS
from engine.sampling import keep_top_k
from exercises.check import (EXERCISES, FINITE_MASK_HINT, TUPLE_HINT, Result, bigram_counts, head_reference,
                             part_of, run, top_p_reaching, untouched)
from exercises.plug import count_both, train_both
from machinery.cli import UserError
from machinery.data import load_data
from model import GPT, GPTConfig

ROOT = Path(__file__).resolve().parents[1]


def answered(**changes):
    """The answers, with some functions swapped for wrong ones."""
    return SimpleNamespace(**{**vars(ANSWERS), **changes})


def untouched_copy(tmp_path):
    """exercises/ copied into tmp_path, with a blank for each part the learner writes added at the end of its file:
    the last definition is the one called, whatever the learner wrote above it (the learner's own files may be
    solved, and these tests must not depend on how far they got). -> the folder to run `python -m exercises` in"""
    package = tmp_path / "exercises"
    shutil.copytree(ROOT / "exercises", package, ignore=shutil.ignore_patterns("__pycache__"))
    for exercise in EXERCISES:
        path = package / f"{exercise.module}.py"
        blanks = [loadable(path)]
        for number, name in enumerate(exercise.parts):
            *owner, function = name.split(".")  # (a method: Class.method)
            blanks.append(f"def blank_{number}(*args, **kwargs):\n"
                          f"    raise NotImplementedError('exercise {exercise.number} is yours')\n\n\n"
                          f"{'.'.join(owner + [function])} = blank_{number}\n")
        path.write_text("\n\n".join(blanks), encoding="utf-8")
    return tmp_path


def loadable(path):
    """The learner's file, or where it does not parse (being edited?), as the last commit has it."""
    text = path.read_text(encoding="utf-8")
    for source in (text, committed(path)):
        try:
            ast.parse(source)
            return source
        except SyntaxError:
            pass
    pytest.skip(f"exercises/{path.name} does not parse, nor as committed: these tests copy every exercise")


def committed(path):
    """exercises/NAME as the last commit has it ("" outside a git clone)."""
    shown = subprocess.run(["git", "show", f"HEAD:exercises/{path.name}"], cwd=ROOT, capture_output=True, text=True)
    return shown.stdout if shown.returncode == 0 else ""


def test_untouched_every_exercise_is_not_started_and_the_command_says_so_without_a_traceback(tmp_path):
    p = subprocess.run([sys.executable, "-m", "exercises", "check"], cwd=untouched_copy(tmp_path),
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"})
    assert p.returncode == 1 and "Traceback" not in p.stderr + p.stdout
    assert p.stdout.count("not started (exercises/ex") == len(EXERCISES) == 10
    assert p.stdout.strip().splitlines()[-2:] == [
        "0 of 10 passed", "next: in exercises/ex01_bigram.py, write bigram_probs in place of the `raise "
        "NotImplementedError(...)` (docs/exercises.md), then: python -m exercises check 1"]


def test_an_exercise_file_run_by_itself_says_how_to_check_it():
    """`python exercises/ex03_head.py` printed nothing, which a learner could take for a pass; ex09's gave a
    traceback (its `from model import`, outside the package)."""
    for exercise in EXERCISES:
        text = (ROOT / "exercises" / f"{exercise.module}.py").read_text(encoding="utf-8")
        assert f'    print("to check it: python -m exercises check {exercise.number}")\n' in text, exercise.module
    for module, number in (("ex03_head", 3), ("ex09_kv_cache", 9)):  # (a start of Python and torch each: two)
        p = subprocess.run([sys.executable, f"exercises/{module}.py"], cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
        assert (p.returncode, p.stdout, p.stderr) == (0, f"to check it: python -m exercises check {number}\n", "")


@pytest.mark.skipif(not os.environ.get("EXERCISES_AS_SHIPPED"), reason="the exercises as the repo ships them, "
                    "blank: CI checks them (.ci/run sets EXERCISES_AS_SHIPPED); a learner's may be solved")
def test_the_files_as_they_come_are_blanks():
    """A clean clone's every part is still the blank, so that `check` says "not started"."""
    started = []
    for exercise in EXERCISES:
        try:
            module = importlib.import_module(f"exercises.{exercise.module}")
        except Exception as e:  # (a file that does not load is no blank either)
            started.append(f"{exercise.module}.py ({type(e).__name__})")
            continue
        started += [f"{exercise.module}.py: {name}" for name in exercise.parts if not untouched(part_of(module, name))]
    assert not started, f"not blanks, as the repo ships them: {', '.join(started)}"


@pytest.mark.parametrize("exercise", EXERCISES, ids=[e.module for e in EXERCISES])
def test_the_repos_own_code_passes(exercise):
    assert run(exercise, ANSWERS).status == "passed"


@pytest.mark.parametrize("number", [3, 4, 5, 6, 7])
def test_training_with_the_repos_own_part_gives_the_repos_own_loss(number, data_dir):
    """The same batches, seed and weights: the plugged-in answer trains to the repo's val loss, to
    float rounding (a few steps here; `python -m exercises train N` runs 2000)."""
    (_, repo, _, _), (_, yours, _, text) = train_both(number, ANSWERS, load_data(data_dir), steps=30, eval_iters=4)
    assert abs(yours - repo) < 1e-4 and math.isfinite(repo) and repo < 4.0 and text


def test_exercise_1s_table_is_counted_scored_and_written_with_beside_the_repos(data_dir, tmp_path, capsys,
                                                                             monkeypatch):
    """A table is counted, not trained: `train 1` scores the learner's on every pair of the val split, and writes with
    it as model.py's Bigram's table."""
    import exercises.check
    from exercises.__main__ import main
    data = load_data(data_dir)
    (_, repo, _, repos_text), (_, yours, _, text) = count_both(ANSWERS, data)
    train, val = (data[1][split].astype(np.int64) for split in ("train", "val"))
    counts = np.ones((data[0]["vocab_size"],) * 2)  # smoothing 1, then the pairs, counted by NumPy
    np.add.at(counts, (train[:-1], train[1:]), 1)
    assert repo == pytest.approx(-np.log((counts / counts.sum(axis=1, keepdims=True))[val[:-1], val[1:]]).mean())
    assert yours == pytest.approx(repo, abs=1e-6) and text == repos_text and text
    for signature in (lambda ids, V, smoothing: ANSWERS.bigram_probs(ids, V, smoothing),  # the check passes it
                      lambda ids, V, smoothing=0.0: ANSWERS.bigram_probs(ids, V, smoothing)):
        assert count_both(SimpleNamespace(bigram_probs=signature), data)[1][1] == pytest.approx(repo, abs=1e-6)
    backwards = SimpleNamespace(bigram_probs=lambda ids, V, smoothing=1.0: ANSWERS.bigram_probs(ids.flip(0), V))
    assert count_both(backwards, data)[1][1] > repo + 0.01  # row i: what comes before i
    monkeypatch.setattr(exercises.check, "run", lambda exercise: Result("passed"))
    monkeypatch.setitem(sys.modules, "exercises.ex01_bigram", ANSWERS)  # (the learner's file aside)
    assert main(["train", "1", "--data_dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert f"     yours: val loss {repo:.4f}, " in out and "s of counting; it writes: " in out
    assert "difference: +0.0000: the same, to float rounding" in out and "python train.py --preset bigram" in out
    assert out.endswith(f" --out_dir out/{data_dir.name}-bigram\n")  # (another text's: out/bigram is Shakespeare's)
    monkeypatch.chdir(tmp_path)  # where the README's lesson trained it already: train.py would refuse the folder
    (tmp_path / "out" / f"{data_dir.name}-bigram").mkdir(parents=True)
    (tmp_path / "out" / f"{data_dir.name}-bigram" / "best.pt").write_bytes(b"")
    assert main(["train", "1", "--data_dir", str(data_dir)]) == 0
    assert capsys.readouterr().out.endswith(f"instead: out/{data_dir.name}-bigram holds one already (the README's "
                                            f"first lesson trains it): python sample.py --out_dir "
                                            f"out/{data_dir.name}-bigram\n")
    for broken in (lambda ids, V, smoothing=1.0: torch.zeros(V, V).view(V * V + 1),  # raises
                   lambda ids, V, smoothing=1.0: ANSWERS.bigram_probs(ids % 6, 6)):  # the check's size, 6
        with pytest.raises(UserError, match=r"^exercise 1 passed its check, but on the prepared text it raised "
                                            r"\w+Error: .* — fix what it names, then check and train again$"):
            count_both(SimpleNamespace(bigram_probs=broken), data)


def test_exercise_1s_table_too_big_for_the_machine_is_refused_before_it_is_counted():
    """A text of 194,529 distinct characters: `train 1` ran out of memory, and its advice named train.py's flags."""
    vocab = {"vocab_size": 200_000, "chars": [chr(0x4E00 + i) for i in range(200_000)]}
    splits = {"train": np.zeros(10, np.uint32), "val": np.zeros(10, np.uint32)}
    with pytest.raises(UserError, match="a bigram of 200,000 characters is a table of 200,000 x 200,000 weights, "
                                        "and training them takes about .* — use a text of fewer distinct characters"):
        count_both(ANSWERS, (vocab, splits))


def test_the_exercises_train_on_one_thread_and_give_the_others_back(data_dir, monkeypatch):
    """One thread: as fast for models this small, and far faster when the cores are busy; restored after,
    a Ctrl-C included."""
    import exercises.plug as plug
    seen, before = [], torch.get_num_threads()
    def stopped(*args, **kwargs):
        seen.append(torch.get_num_threads())
        raise KeyboardInterrupt
    monkeypatch.setattr(plug, "train_rung", stopped)
    with pytest.raises(KeyboardInterrupt):
        train_both(4, ANSWERS, load_data(data_dir), steps=2, eval_iters=1)
    assert seen == [1] and torch.get_num_threads() == before


WRONG_BUT_TRAINS = {  # exercise -> a wrong answer that still trains: the learner's code is what trains
    4: {"multi_head_attention": lambda x, c_attn, c_proj, n_head: ANSWERS.multi_head_attention(x * 2.0, c_attn, c_proj,
                                                                                                n_head)},
    6: {"cross_entropy": lambda logits, targets: ANSWERS.cross_entropy(logits[:, ::2], targets[:, ::2])},
    7: {"learning_rate": lambda it, warmup_iters, max_iters, lr, min_lr: 3 * lr}}


@pytest.mark.parametrize("number", WRONG_BUT_TRAINS)
def test_training_with_a_wrong_part_gives_another_loss(number, data_dir):
    (_, repo, _, _), (_, yours, _, _) = train_both(number, answered(**WRONG_BUT_TRAINS[number]), load_data(data_dir),
                                                   steps=30, eval_iters=4)
    assert abs(yours - repo) > 1e-3


def failed(number, **wrong):
    result = run(EXERCISES[number - 1], answered(**wrong))
    assert result.status == "failed", result
    return result


def wrong_head(**mistake):
    return lambda x, key, query, value: head_reference(x, key, query, value, **mistake)


def test_no_causal_mask_is_named():
    assert "no causal mask" in failed(3, attention_head=wrong_head(mask=False)).hint

    def unmasked(x, c_attn, c_proj, n_head):
        from exercises.check import multihead_reference
        return multihead_reference(x, c_attn, c_proj, n_head, mask=False)
    assert "no causal mask" in failed(4, multi_head_attention=unmasked).hint
    assert "no causal mask" in failed(2, causal_average=lambda x: x.mean(dim=1, keepdim=True).expand_as(x)).hint


def test_softmax_over_the_wrong_axis_is_named():
    assert "softmax over the wrong axis" in failed(3, attention_head=wrong_head(dim=-2)).hint


def test_no_scaling_is_named():
    assert "no 1/sqrt(hs) scaling" in failed(3, attention_head=wrong_head(scale=False)).hint


def test_a_schedule_off_by_one_step_is_named():
    def early(it, warmup_iters, max_iters, lr, min_lr):  # step it takes step it + 1's rate
        return ANSWERS.learning_rate(it + 1, warmup_iters, max_iters, lr, min_lr)
    assert "off by one step" in failed(7, learning_rate=early).hint


def test_top_p_that_drops_the_likeliest_character_is_named():
    def greedy_cut(logits, temperature=1.0, top_k=None, top_p=None):  # keeps only what fits under p
        probs = ANSWERS.next_char_probs(logits, temperature, top_k)
        if top_p is None or temperature == 0:
            return probs
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        drop = (sorted_probs.cumsum(dim=-1) > top_p).scatter(-1, order, sorted_probs.cumsum(dim=-1) > top_p)
        kept = probs.masked_fill(drop, 0.0)
        return kept / kept.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    assert "top-p that drops the likeliest character" in failed(8, next_char_probs=greedy_cut).hint


def test_a_cache_that_forgets_its_position_is_named():
    class Forgetful(ANSWERS.KVCache):
        def positions(self, T, device=None):
            return torch.arange(T, device=device)
    assert "a cache that forgets its position" in failed(9, KVCache=Forgetful).hint


def test_other_mistakes_get_the_first_mismatch_and_a_hint():
    result = failed(6, cross_entropy=lambda logits, targets: ANSWERS.cross_entropy(logits, targets) * 3)
    assert result.what.startswith("the loss, against F.cross_entropy: at (): expected ") and result.hint
    def naive(logits, targets):  # right, until exp overflows
        probs = torch.exp(logits) / torch.exp(logits).sum(dim=-1, keepdim=True)
        return -torch.log(probs.gather(-1, targets[..., None])).mean()
    naive = failed(6, cross_entropy=naive)
    assert "large logits (+ 1000)" in naive.what and "log-sum-exp" in naive.hint
    shape = failed(1, bigram_probs=lambda ids, vocab_size, smoothing=1.0: torch.ones(vocab_size))
    assert "expected shape (6, 6), got (6,)" in shape.what
    raised = failed(10, transition_probs=lambda model: model.nope)
    assert raised.what.startswith("it raised AttributeError")
    def debugging(model):
        print("here")
        exit()  # which ended `exercises check` at once, with nothing said and exit code 0
    left_in = failed(10, transition_probs=debugging)
    assert left_in.what == "it called exit()" and left_in.hint.startswith("take it out")


def test_a_view_error_without_bincount_gets_no_bincount_hint(tmp_path):
    """The bincount hint needs bincount called in the learner's file: a comment naming it is not a call."""
    module = learners_module(tmp_path, "ex01_mine.py", "import torch\n\n\ndef bigram_probs(ids, vocab_size, "
                             "smoothing=1.0):\n    # TODO: torch.bincount, later\n"
                             "    return torch.zeros(vocab_size * vocab_size - 7).view(vocab_size, vocab_size)\n")
    result = run(EXERCISES[0], module)
    assert result.what.startswith("it raised RuntimeError: shape '[6, 6]' is invalid for input of size 29")
    assert "bincount" not in result.hint and result.hint.startswith("the shapes do not line up")


def test_the_command_alone_checks_them_all(capsys, monkeypatch):
    """`python -m exercises` said "the following arguments are required"; what a learner wants then is the table."""
    from exercises.__main__ import main
    import exercises.check
    monkeypatch.setattr(exercises.check, "run", lambda exercise: Result("not started"))  # (the learner's files aside)
    assert main([]) == main(["check"]) == 1
    alone, check = capsys.readouterr().out.split("     exercise ")[1:]
    assert alone == check and alone.count("not started") == 10


def test_train_refuses_what_it_cannot_train(capsys, monkeypatch):
    from exercises.__main__ import main
    from machinery.cli import UserError
    import exercises.check
    monkeypatch.setattr(exercises.check, "run", lambda exercise: Result("not started"))  # (the learner's file aside)
    with pytest.raises(UserError, match=r"exercise 3 does not pass yet \(not started\) — make it pass first"):
        main(["train", "3"])
    monkeypatch.setattr(exercises.check, "run", lambda exercise: Result("failed", "out (B, T, hs): at (0, 1, 0): ..."))
    with pytest.raises(UserError, match=r"exercise 3 does not pass yet \(failed: out \(B, T, hs\): at \(0, 1, 0\): "
                                        r"\.\.\.\) — make it pass first: python -m exercises check 3"):
        main(["train", "3"])
    for number in ("11", "0", "-1"):  # (0 and -1 are no exercise either: not the last ones, read from the end)
        with pytest.raises(UserError, match=f"there is no exercise {number} — give 1 to 10"):
            main(["check", number])
    with pytest.raises(UserError, match="exercise 9 is checked, not trained with — train with exercises 1, 3, 4, 5, "
                                        "6, 7, 8"):
        main(["train", "9", "--data_dir", "nowhere"])
    with pytest.raises(UserError, match="there is no exercise 11 — train with exercises 1, 3, 4, 5, 6, 7, 8"):
        main(["train", "11"])  # (not "give 1 to 10": 2, 9 and 10 are checked, not trained with)
    with pytest.raises(UserError, match="^train needs the exercise to train with — one of 1, 3, 4, 5, 6, 7, 8: "
                                        "python -m exercises train 4 --steps 20, say$"):
        main(["train", "--steps", "20"])  # (argparse's "arguments are required: number" named no number)
    for given, check, train in ((["3"], "3", "3"), (["ex03", "--steps", "20"], "ex03", "ex03 --steps 20"),
                                (["9"], "9", None), (["3,4"], "3,4", None), (["3", "4"], "3 4", None)):
        also = f" (or, to train with it: python -m exercises train {train})" if train else ""  # (9: checked only)
        with pytest.raises(UserError) as refused:  # the command left out
            main(given)
        assert str(refused.value) == f"a command comes before the exercise — python -m exercises check {check}{also}"
    assert capsys.readouterr().out == ""  # refused before a line was printed


def test_train_takes_fewer_steps_for_a_quicker_look(data_dir, capsys, monkeypatch):
    """2000 steps of two models took 25 to 28 s a run for a learner trying one fix after another."""
    import exercises.check
    import exercises.plug
    from exercises.__main__ import main
    from machinery.cli import UserError
    monkeypatch.setattr(exercises.check, "run", lambda exercise: Result("passed"))
    asked = []
    monkeypatch.setattr(exercises.plug, "train_both", lambda number, module, data, steps: asked.append(steps) or
                        [("the repo's", 2.0, 1.0, "ab"), ("yours", 2.0, 1.0, "ab")])
    assert main(["train", "4", "--steps", "300", "--data_dir", str(data_dir)]) == 0
    assert asked == [300] and "300 steps, on the CPU" in capsys.readouterr().out
    with pytest.raises(UserError, match=r"^--steps 5 must be at least 10 — give 10 or more \(2000 by default\)$"):
        main(["train", "4", "--steps", "5"])
    with pytest.raises(UserError, match=r"^--steps is 1,000,000,001, above 1,000,000,000, the most a count may be"):
        main(["train", "4", "--steps", "1000000001"])  # (at 2 ** 63, an overflow deep in the training loop)
    assert main(["train", "4", "--steps", "10", "--data_dir", str(data_dir)]) == 0 and asked[-1] == 10  # the fewest


def test_train_says_whether_the_two_losses_are_the_same(data_dir, capsys, monkeypatch):
    """A gap of -0.0014 read like an improvement to a learner whose scaling was written in: it is named."""
    import exercises.check
    import exercises.plug
    from exercises.__main__ import main
    monkeypatch.setattr(exercises.check, "run", lambda exercise: Result("passed"))
    for yours, said in ((2.00004, "+0.0000: the same, to float rounding"),
                        (1.9986, "-0.0014: more than float rounding (about 1e-4 or less): yours computes something")):
        monkeypatch.setattr(exercises.plug, "train_both", lambda number, module, data, steps: [
            ("the repo's", 2.0, 1.0, "ab"), ("yours", yours, 1.0, "ab")])
        assert main(["train", "4", "--data_dir", str(data_dir)]) == 0
        assert f"difference: {said}" in capsys.readouterr().out


def test_check_takes_several_numbers_in_the_order_given(capsys, monkeypatch):
    import exercises.check
    from exercises.__main__ import main
    # (not the learner's files: theirs may be solved)
    monkeypatch.setattr(exercises.check, "run", lambda exercise, module=None: Result("not started"))
    main(["check", "2", "1"])
    rows = capsys.readouterr().out.splitlines()
    assert [row.split()[0] for row in rows[1:3]] == ["2", "1"] and rows[-2] == "0 of 2 passed"
    main(["check", "1", "1"])  # once each
    assert capsys.readouterr().out.splitlines()[-2] == "0 of 1 passed"


def test_the_mistakes_a_learner_met_are_named_too():
    """Five more, found by trying the exercises as a learner: the mask after the softmax, top-p
    that counts the character itself, the row's max not added back, every target's logit at every
    position, a cache that keeps nothing."""
    assert "masked after the softmax" in failed(3, attention_head=wrong_head(after=True)).hint

    def counting_itself(logits, temperature=1.0, top_k=None, top_p=None):
        from exercises.check import top_p_counting_itself
        if top_p is None or temperature == 0:
            return ANSWERS.next_char_probs(logits, temperature, top_k)
        return top_p_counting_itself(logits, temperature, top_k, top_p)
    assert "top-p that drops the likeliest character" in failed(8, next_char_probs=counting_itself).hint

    def max_not_added_back(logits, targets):
        shifted = logits - logits.max(dim=-1, keepdim=True).values
        return ANSWERS.cross_entropy(logits, targets) - (logits - shifted).max(dim=-1).values.mean()
    assert "not added back" in failed(6, cross_entropy=max_not_added_back).hint

    def every_target(logits, targets):  # lse (B, T) - logits[..., targets] (B, T, B, T), broadcast
        m = logits.max(dim=-1, keepdim=True).values
        lse = (m + (logits - m).exp().sum(dim=-1, keepdim=True).log()).squeeze(-1)
        return (lse - logits[..., targets]).mean()
    assert "every target" in failed(6, cross_entropy=every_target).what

    class Forgetting(ANSWERS.KVCache):  # concatenates, but never stores: self.k stays empty
        def append(self, layer, k, v):
            if self.k[layer] is None:
                return k, v
            return torch.cat((self.k[layer], k), dim=2), torch.cat((self.v[layer], v), dim=2)
    result = failed(9, KVCache=Forgetting)
    assert "second call" in result.what and "append keeps what it is given" in result.hint


def test_the_mistakes_a_second_learner_met_are_named_too():
    """Exercises 4 to 10 tried as a learner: heads joined without the transpose, a warmup from 0, greedy
    as the character's id, logsumexp for exercise 6, and a float64 answer that passed, then broke training."""
    def joined_straight(x, c_attn, c_proj, n_head):
        from exercises.check import multihead_reference
        return multihead_reference(x, c_attn, c_proj, n_head, join=False)
    assert "y.transpose(1, 2) first" in failed(4, multi_head_attention=joined_straight).hint

    def from_zero(it, warmup_iters, max_iters, lr, min_lr):
        return lr * it / warmup_iters if it < warmup_iters else ANSWERS.learning_rate(it, warmup_iters, max_iters,
                                                                                      lr, min_lr)
    result = failed(7, learning_rate=from_zero)
    assert result.what.startswith("the warmup starts at 0") and "(it + 1) / (warmup_iters + 1)" in result.hint

    def greedy_id(logits, temperature=1.0, top_k=None, top_p=None):
        if temperature == 0:
            return logits.argmax(dim=-1, keepdim=True)  # (B, 1)
        return ANSWERS.next_char_probs(logits, temperature, top_k, top_p)
    result = failed(8, next_char_probs=greedy_id)
    assert "expected shape (2, 5), got (2, 1)" in result.what and "not the character's id" in result.hint

    def with_logsumexp(logits, targets):
        return (torch.logsumexp(logits, dim=-1) - logits.gather(-1, targets[..., None])[..., 0]).mean()
    assert failed(6, cross_entropy=with_logsumexp).what.startswith("it calls torch.logsumexp")
    assert torch.logsumexp(torch.zeros(2), 0) == math.log(2)  # and it is back afterwards

    def in_float64(x, c_attn, c_proj, n_head):
        return ANSWERS.multi_head_attention(x, c_attn, c_proj, n_head).double()
    result = failed(4, multi_head_attention=in_float64)
    assert "expected dtype float32, got float64" in result.what and "keep the input's dtype" in result.hint
    def mlp_in_float64(x, c_fc, c_proj):
        return ANSWERS.mlp(x, c_fc, c_proj).double()
    assert "expected dtype float32, got float64" in failed(5, mlp=mlp_in_float64).what


def test_the_mistakes_a_third_learner_met_are_named_too():
    """Exercises 1, 6 and 8 tried as learners: logcumsumexp's last column for logsumexp, top-p cut at the
    nucleus's smallest probability (which keeps every tie), and counts in float16 or int16."""
    def with_logcumsumexp(logits, targets):
        lse = torch.logcumsumexp(logits, dim=-1)[..., -1]
        return (lse - logits.gather(-1, targets[..., None])[..., 0]).mean()
    assert failed(6, cross_entropy=with_logcumsumexp).what.startswith("it calls torch.logcumsumexp")

    def cut_at_a_probability(logits, temperature=1.0, top_k=None, top_p=None):
        if top_p is None or temperature == 0:
            return ANSWERS.next_char_probs(logits, temperature, top_k)
        probs = ANSWERS.next_char_probs(logits, temperature, top_k)
        sorted_probs = probs.sort(dim=-1, descending=True).values
        inside = (sorted_probs.cumsum(dim=-1) - sorted_probs) < top_p  # the nucleus, in sorted order
        edge = sorted_probs.masked_fill(~inside, 2.0).min(dim=-1, keepdim=True).values
        kept = probs * (probs >= edge)
        return kept / kept.sum(dim=-1, keepdim=True)
    assert "every character tied at top-p's edge kept" in failed(8, next_char_probs=cut_at_a_probability).what

    def counted_in(dtype):  # a float16 count stops at 2,048, an int16 one wraps past 32,767
        def bigram_probs(ids, vocab_size, smoothing=1.0):
            counts = torch.zeros(vocab_size, vocab_size, dtype=dtype)
            counts.index_put_((ids[:-1], ids[1:]), torch.ones(len(ids) - 1, dtype=dtype), accumulate=True)
            counts = counts.float() + smoothing
            return counts / counts.sum(dim=1, keepdim=True)
        return bigram_probs
    for dtype in (torch.float16, torch.int16):
        assert "float16 past 2,048" in failed(1, bigram_probs=counted_in(dtype)).hint


def test_an_error_in_training_with_a_passing_part_is_one_line(data_dir, monkeypatch):
    """Should a part pass its check and still break in the GPT, `exercises train` says so in one line; an
    error in the repo's own training is the repo's bug, and keeps its traceback."""
    import exercises.plug as plug
    from machinery.cli import UserError
    def broken(mcfg, cfg, splits, device, desc, **yours):
        raise RuntimeError(f"mixed dtype (CPU), in {desc}")
    monkeypatch.setattr(plug, "train_rung", broken)
    with pytest.raises(RuntimeError, match="in the repo's"):
        train_both(4, ANSWERS, load_data(data_dir), steps=2, eval_iters=1)
    monkeypatch.setattr(plug, "train_rung", lambda *args, desc, **yours: broken(*args, desc) if desc == "yours" else (
        None, {"val": 2.0}, 1.0, None))
    monkeypatch.setattr(plug, "sample_text", lambda *args: "")
    with pytest.raises(UserError, match=r"^exercise 4 passed its check, but in the GPT with your part it raised "
                                         r"RuntimeError: mixed dtype \(CPU\), in yours — fix what it names"):
        train_both(4, ANSWERS, load_data(data_dir), steps=2, eval_iters=1)
    monkeypatch.setattr(plug, "train_rung", lambda *args, desc, **yours: (desc, {"val": 2.0}, 1.0, None))
    monkeypatch.setattr(plug, "sample_text", lambda model, *args: model == "yours" and broken(*[None] * 4, model))
    with pytest.raises(UserError, match=r"in the GPT with your part it raised RuntimeError: mixed dtype \(CPU\), in "
                                        r"yours"):  # trained, then failed in sampling (a size written in, say)
        train_both(4, ANSWERS, load_data(data_dir), steps=2, eval_iters=1)
    monkeypatch.setattr(plug, "sample_text", lambda model, *args: model == "yours" and sys.exit(3))  # left in
    with pytest.raises(UserError, match=r"in the GPT with your part it raised SystemExit: 3"):
        train_both(4, ANSWERS, load_data(data_dir), steps=2, eval_iters=1)


def test_the_docs_example_is_what_the_check_prints(capsys, monkeypatch):
    """docs/exercises.md's exercise 3 without the scaling (its spoiler's code), checked: the docs quote
    the table the command prints, word for word."""
    import re
    from exercises.__main__ import check
    docs = (ROOT / "docs" / "exercises.md").read_text()
    body = re.search(r"Exercise 3 without the scaling.*?```python\n(.*?)```", docs, re.S)[1]
    namespace = {"torch": torch}
    exec("def attention_head(x, key, query, value):\n" + body, namespace)
    import exercises.check
    real_run = exercises.check.run  # check() imports run each time: this one checks the docs' answer
    monkeypatch.setattr(exercises.check, "run", lambda exercise, module=None: real_run(exercise, answered(**namespace)))
    assert check([3]) == 1
    printed = re.search(r"\$ python -m exercises check 3\n(.*?)```", docs, re.S)[1]
    assert capsys.readouterr().out == printed


def test_mistakes_a_bug_hunt_found_fail_too():
    """Each passed the checker once: the two LayerNorms mixed up, top-k and top-p (or the temperature
    and the cuts) in the other order, a smoothing of 1 always, the vocabulary read off the ids."""
    for wrong_norms in (lambda ln_1, ln_2: (ln_1, ln_1), lambda ln_1, ln_2: (ln_2, ln_1)):
        def mixed_up(x, attention, feed_forward, ln_1, ln_2, wrong_norms=wrong_norms):
            return ANSWERS.block(x, attention, feed_forward, *wrong_norms(ln_1, ln_2))
        assert "ln_1 before attention" in failed(5, block=mixed_up).hint

    def top_p_first(logits, temperature=1.0, top_k=None, top_p=None):
        kept = ANSWERS.next_char_probs(logits, temperature, None, top_p)
        return ANSWERS.next_char_probs(kept.log(), 1.0, top_k)
    def temperature_last(logits, temperature=1.0, top_k=None, top_p=None):
        if temperature == 0:
            return ANSWERS.next_char_probs(logits, 0)
        return ANSWERS.next_char_probs(ANSWERS.next_char_probs(logits, 1.0, top_k, top_p).log(), temperature)
    for wrong, named in ((top_p_first, "top-p measured the mass of the whole"), (temperature_last,
                                                                                "the temperature came after")):
        result = failed(8, next_char_probs=wrong)
        assert result.what.startswith("probs, temperature") and result.hint.startswith(named)

    always_one = lambda ids, vocab_size, smoothing=1.0: ANSWERS.bigram_probs(ids, vocab_size, 1.0)
    assert "smoothing 0.5" in failed(1, bigram_probs=always_one).what
    from_the_ids = lambda ids, vocab_size, smoothing=1.0: ANSWERS.bigram_probs(ids, int(ids.max()) + 1, smoothing)
    assert "expected shape (6, 6), got (5, 5)" in failed(1, bigram_probs=from_the_ids).what


def test_a_pair_counted_once_by_indexed_add_is_named():
    """A newcomer's first vectorised try: counts[ids[:-1], ids[1:]] += 1 adds 1 once per distinct pair."""
    def indexed_add(ids, vocab_size, smoothing=1.0):
        counts = torch.zeros(vocab_size, vocab_size)
        counts[ids[:-1], ids[1:]] += 1
        counts += smoothing
        return counts / counts.sum(dim=1, keepdim=True)
    result = failed(1, bigram_probs=indexed_add)
    assert result.what.startswith("each pair was counted once") and "accumulate=True" in result.hint


def test_an_input_changed_in_place_is_named_not_blamed_on_the_reference():
    def shifted_in_place(logits, targets):
        logits -= logits.max(dim=-1, keepdim=True).values  # the caller's logits change
        return ANSWERS.cross_entropy(logits, targets)
    result = failed(6, cross_entropy=shifted_in_place)
    assert result.what == "shifted_in_place changed its input logits in place" and "logits += ..." in result.hint

    def divided_in_place(logits, temperature=1.0, top_k=None, top_p=None):
        if temperature:
            logits /= temperature
        return ANSWERS.next_char_probs(logits, 1.0 if temperature else 0, top_k, top_p)
    assert failed(8, next_char_probs=divided_in_place).what == "divided_in_place changed its input logits in place"


def test_a_wrong_kind_of_output_is_said_before_causality_is_tested():
    head = failed(3, attention_head=lambda x, key, query, value: (None, None))
    assert head.what == "out (B, T, hs): expected a tensor, got None: does the function end without a `return`?"
    assert failed(3, attention_head=lambda x, key, query, value: ("out", None)).what == ("out (B, T, hs): expected "
                                                                                         "a tensor, got str")
    def no_return(x, key, query, value):
        ANSWERS.attention_head(x, key, query, value)
    assert failed(3, attention_head=no_return).hint.startswith("does it end without a `return`?")
    def heads_not_joined(x, c_attn, c_proj, n_head):
        return ANSWERS.multi_head_attention(x, c_attn, c_proj, n_head).view(2, 8, n_head, -1).transpose(1, 2)
    not_joined = failed(4, multi_head_attention=heads_not_joined)
    assert not_joined.what == "out (B, T, C): expected shape (2, 8, 24), got (2, 4, 8, 6)"
    def detached(x, c_attn, c_proj, n_head):
        return ANSWERS.multi_head_attention(x, c_attn, c_proj, n_head).detach()
    assert failed(4, multi_head_attention=detached).what == "the output carries no gradient back to the weights"
    assert failed(7, learning_rate=lambda *args: None).what == "learning_rate returned None, not a number"
    assert failed(7, learning_rate=lambda *args: "lr").what == "learning_rate returned a str, not a number"


def test_a_file_that_does_not_load_is_a_failed_row_and_a_half_written_one_says_what_is_left(tmp_path):
    """A syntax error in the learner's file fails its exercise; the others are still checked. One of two
    functions written: the row says which one is left."""
    package = untouched_copy(tmp_path) / "exercises"
    (package / "ex02_averaging.py").write_text("def causal_average(x)\n    return x\n")
    (package / "ex05_block.py").write_text(
        "import torch.nn.functional as F\n\n\ndef mlp(x, c_fc, c_proj):\n    return F.gelu(x @ c_fc.T) @ c_proj.T\n\n\n"
        "def block(x, attention, feed_forward, ln_1, ln_2):\n    raise NotImplementedError('exercise 5 is yours')\n")
    p = subprocess.run([sys.executable, "-m", "exercises", "check"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300, env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"})
    assert "Traceback" not in p.stderr + p.stdout and p.returncode == 1
    assert "failed: it does not load: SyntaxError: expected ':' (line 1 of ex02_averaging.py)" in p.stdout
    assert "not finished (exercises/ex05_block.py): block still to write (mlp passed its check)" in p.stdout
    assert p.stdout.count("not started (exercises/ex") == 8
    (package / "ex02_averaging.py").write_bytes(b"def causal_average(x):\n    return x\x00\n")  # saved as no text
    p = subprocess.run([sys.executable, "-m", "exercises", "check", "2"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300, env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"})
    assert "null bytes (ex02_averaging.py)" in p.stdout and "save it again as text, in UTF-8" in p.stdout, p.stdout


def test_an_error_is_placed_at_the_learner_s_line_that_raised_it(tmp_path):
    """The line named is the last of the learner's file the error passed through (inside their helper), not the
    line that called the helper."""
    module = learners_module(tmp_path, "ex03_head.py", "def helper(x):\n    raise ValueError('not yet')\n\n\n"
                             "def attention_head(x, key, query, value):\n    return helper(x)\n")
    assert run(EXERCISES[2], module).what == "it raised ValueError: not yet (line 2 of ex03_head.py)"


def test_a_half_written_exercise_is_not_finished_and_names_what_is_left():
    def unwritten(*args, **kwargs):
        raise NotImplementedError("exercise 5 is yours to write")
    # the part written is checked first, where it comes first, and the row says so
    assert run(EXERCISES[4], answered(block=unwritten)) == ("not finished", "block still to write (mlp passed its "
                                                                            "check)", "")
    assert run(EXERCISES[4], answered(mlp=unwritten)) == ("not finished", "mlp still to write (block is checked "
                                                                          "once mlp is written)", "")
    assert run(EXERCISES[4], answered(mlp=unwritten, block=unwritten)).status == "not started"

    class Half(ANSWERS.KVCache):
        def positions(self, T, device=None):
            raise NotImplementedError("exercise 9 is yours to write")
    assert run(EXERCISES[8], answered(KVCache=Half)) == ("not finished", "KVCache.positions still to write "
                                                         "(KVCache.append is checked once KVCache.positions is "
                                                         "written)", "")

    class OtherHalf(ANSWERS.KVCache):
        def append(self, layer, k, v):
            raise NotImplementedError("exercise 9 is yours to write")
    assert run(EXERCISES[8], answered(KVCache=OtherHalf)).what == "KVCache.append still to write (KVCache.positions " \
                                                                  "passed its check)"

    def written_above_the_raise(x, c_fc, c_proj):  # the learner's code, with the blank's raise left below it
        ANSWERS.mlp(x, c_fc, c_proj)
        raise NotImplementedError("exercise 5 is yours to write")
    result = run(EXERCISES[4], answered(mlp=written_above_the_raise, block=unwritten))
    assert result.status == "failed" and result.what == "mlp still raises NotImplementedError"
    assert "delete the `raise NotImplementedError(...)` line" in result.hint

    def counted_above_the_raise(ids, vocab_size, smoothing=1.0):  # one part: it said "not started"
        ANSWERS.bigram_probs(ids, vocab_size, smoothing)
        raise NotImplementedError("exercise 1 is yours to write")
    result = run(EXERCISES[0], answered(bigram_probs=counted_above_the_raise))
    assert result.status == "failed" and result.what == "bigram_probs still raises NotImplementedError"

    def counted_below_the_raise(ids, vocab_size, smoothing=1.0):
        raise NotImplementedError("exercise 1 is yours to write")
        return ANSWERS.bigram_probs(ids, vocab_size, smoothing)
    assert run(EXERCISES[0], answered(bigram_probs=counted_below_the_raise)).hint.endswith("your code below it "
                                                                                            "never runs")

    def top_p_for_later(logits, temperature=1.0, top_k=None, top_p=None):  # a raise of the learner's own
        if top_p is not None:
            raise NotImplementedError("top-p: later")
        return ANSWERS.next_char_probs(logits, temperature, top_k)
    result = run(EXERCISES[7], answered(next_char_probs=top_p_for_later))
    assert result.what == "next_char_probs raised NotImplementedError: top-p: later"
    assert result.hint.startswith("a raise of yours ran")

    @torch.no_grad()  # called through the decorator's own function: still the blank
    def decorated_blank(model):
        raise NotImplementedError("exercise 10 is yours to write")
    assert run(EXERCISES[9], answered(transition_probs=decorated_blank)).status == "not started"

    def calls_something_unfinished(x, c_fc, c_proj):  # both parts written, the error from elsewhere
        raise NotImplementedError("a helper of mine")
    result = run(EXERCISES[4], answered(mlp=lambda *a: calls_something_unfinished(*a)))
    assert result == ("failed", "it raised NotImplementedError: a helper of mine", "")


def test_what_an_exercise_asks_you_to_write_you_may_not_call():
    def with_the_library(logits, targets):
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
    assert failed(6, cross_entropy=with_the_library).what == ("it calls F.cross_entropy, which the exercise asks you "
                                                              "to write yourself")
    def with_log_softmax(logits, targets):
        return -logits.log_softmax(dim=-1).gather(-1, targets[..., None]).mean()
    assert failed(6, cross_entropy=with_log_softmax).what.startswith("it calls .log_softmax()")
    assert torch.zeros(2).log_softmax(0).shape == (2,) and F.cross_entropy  # and both are back afterwards


def test_a_cache_whose_positions_ignore_the_device_fails():
    class OnTheCpuAlways(ANSWERS.KVCache):
        def positions(self, T, device=None):
            return torch.arange(self.length, self.length + T)
    assert "another device than the one given" in failed(9, KVCache=OnTheCpuAlways).what


def test_the_mistakes_of_a_third_learner_are_named():
    """Found by a learner trying exercises 1, 2, 3 and 7: a sum without keepdim, pairs the wrong way round or two
    apart, the future masked with 0, the scale of C, a 3-D .T, and three schedules that differ only slightly."""
    def counted(ids, vocab_size, smoothing=1.0, first=slice(None, -1), second=slice(1, None), keepdim=True):
        counts = torch.zeros(vocab_size, vocab_size)
        counts.index_put_((ids[first], ids[second]), torch.ones(len(ids[first])), accumulate=True)
        counts += smoothing
        return counts / counts.sum(dim=1, keepdim=keepdim)
    assert "not each row by its own" in failed(1, bigram_probs=lambda *a, **k: counted(*a, **k, keepdim=False)).what
    assert "wrong way round" in failed(1, bigram_probs=lambda *a, **k: counted(
        *a, **k, first=slice(1, None), second=slice(None, -1))).what
    assert "two characters apart" in failed(1, bigram_probs=lambda *a, **k: counted(
        *a, **k, first=slice(None, -2), second=slice(2, None))).what

    def without_keepdim(x):
        weights = torch.tril(torch.ones(x.size(1), x.size(1)))
        return weights / weights.sum(dim=1) @ x
    assert "keepdim=True" in failed(2, causal_average=without_keepdim).hint

    def masked_with_zero(x):
        T = x.size(1)
        weights = torch.zeros(T, T).masked_fill(torch.tril(torch.ones(T, T)) == 0, 0.0)
        return F.softmax(weights, dim=-1) @ x
    assert "filled with 0 before a softmax" in failed(2, causal_average=masked_with_zero).hint
    assert "set to 0, not -inf" in failed(3, attention_head=wrong_head(fill=0.0)).hint
    assert "scaled by sqrt(C)" in failed(3, attention_head=wrong_head(scale="C")).hint

    def wrong_multihead(**mistake):
        from exercises.check import multihead_reference
        return lambda x, c_attn, c_proj, n_head: multihead_reference(x, c_attn, c_proj, n_head, **mistake)
    assert "set to 0, not -inf" in failed(4, multi_head_attention=wrong_multihead(fill=0.0)).hint
    assert "scaled by sqrt(C)" in failed(4, multi_head_attention=wrong_multihead(scale="C")).hint

    def learning_rate(mistake):
        def schedule(it, warmup_iters, max_iters, lr, min_lr):
            if it < warmup_iters:
                return lr * (it + 1) / (warmup_iters + 1)
            progress = {"to 0": (it - warmup_iters) / (max_iters - warmup_iters), "early": (it - warmup_iters) /
                        (max_iters - 1 - warmup_iters), "from 0": it / max_iters}[mistake]
            bottom = 0.0 if mistake == "to 0" else min_lr
            return bottom + 0.5 * (1 + math.cos(math.pi * progress)) * (lr - bottom)
        return schedule
    assert failed(7, learning_rate=learning_rate("to 0")).what == "the decay ends at 0, not at min_lr"
    assert "one step early" in failed(7, learning_rate=learning_rate("early")).what
    assert "from step 0" in failed(7, learning_rate=learning_rate("from 0")).what


def test_a_numpy_number_is_a_number_too():
    import numpy as np
    def in_numpy(it, warmup_iters, max_iters, lr, min_lr):
        return np.float64(ANSWERS.learning_rate(it, warmup_iters, max_iters, lr, min_lr))
    assert run(EXERCISES[6], answered(learning_rate=in_numpy)).status == "passed"


def test_a_wrong_schedule_is_shown_where_it_is_most_wrong():
    """The first step that differs may differ by a hair (0.000999778 against 0.000999753): the check shows the
    step that differs most."""
    def off(it, warmup_iters, max_iters, lr, min_lr):
        return ANSWERS.learning_rate(it, warmup_iters, max_iters, lr, min_lr) + 1e-6 * it / max_iters  # off from 1
    assert failed(7, learning_rate=off).what.startswith("the learning rate at steps 0 .. 109 (lr 1e-3, min_lr 1e-4, "
                                                        "warmup 10, max 110): at step 109: ")


@pytest.mark.filterwarnings("ignore:The use of `x.T`")  # (torch's own warning about a 3-D .T)
def test_a_shape_error_gets_a_hint_and_a_3d_T_gets_a_word():
    from exercises import check

    def transposed_3d(x, key, query, value):
        q, k = x @ query, x @ key
        return q @ k.T, None  # (B, T, hs) @ (hs, T, B)
    for _ in range(2):  # (torch warns once a process; the check notices every time)
        result = failed(3, attention_head=transposed_3d)
        assert result.what.startswith("it raised RuntimeError: ")  # (the likeliest cause first: a learner read past it)
        assert result.hint.startswith(".T on a tensor of 3 axes or more reverses them all: transpose(-2, -1) swaps "
                                      "the last two; then the shapes do not line up")

    def transposed_2d(x, key, query, value):  # a 2-D .T is fine; the shape error is elsewhere
        q, k = x @ query.T.T, x @ key
        return q @ k, None
    result = failed(3, attention_head=transposed_2d)
    assert result.hint.startswith("the shapes do not line up") and ".T" not in result.hint
    assert check.error_hint(ValueError("nothing about shapes")) == ""
    assert "T" not in vars(torch.Tensor)  # the watch is gone again


def test_the_mistakes_of_a_fourth_learner_are_named():
    """Found by a learner solving all ten: a size written in passed (and broke `exercises train` after 2000 steps),
    a loop that never ends hung, and some hints named another mistake than the one made."""
    from exercises.check import LIMIT, multihead_reference
    import exercises.check as check

    def seven(x, key, query, value):  # T written in: right at the check's T = 7 only
        q, k, v = x @ query, x @ key, x @ value
        att = (q @ k.transpose(-2, -1) / math.sqrt(k.size(-1))).masked_fill(torch.tril(torch.ones(7, 7)) == 0,
                                                                             float("-inf"))
        return F.softmax(att, dim=-1) @ v, F.softmax(att, dim=-1)
    result = failed(3, attention_head=seven)
    assert result.what.startswith("out (B, T, hs) for T = 11, hs = 2: it raised RuntimeError") and \
        "not a number written in" in result.hint
    four_heads = lambda x, c_attn, c_proj, n_head: ANSWERS.multi_head_attention(x, c_attn, c_proj, 4)
    assert "not a number written in" in failed(4, multi_head_attention=four_heads).hint
    six = lambda x: torch.tril(torch.ones(6, 6)) / torch.arange(1, 7)[:, None] @ x
    assert failed(2, causal_average=six).what.startswith("out (B, T, C) for T = 11")

    def mistake(**flag):
        return lambda x, c_attn, c_proj, n_head: multihead_reference(x, c_attn, c_proj, n_head, **flag)
    assert "y @ c_proj.T" in failed(4, multi_head_attention=mistake(proj=True)).hint
    assert "in that order" in failed(4, multi_head_attention=mistake(order=True)).hint
    assert "see t + 1" in failed(3, attention_head=wrong_head(diagonal=1)).hint
    assert "not -1" in failed(3, attention_head=wrong_head(diagonal=-1)).hint
    assert "not -1" in failed(4, multi_head_attention=mistake(diagonal=-1)).hint
    assert failed(4, multi_head_attention=mistake(after=True)).hint.startswith("the future is masked after the softmax")
    def nan_everywhere(x, key, query, value):  # 0 * -inf: nan in every row, not tril's diagonal
        out, weights = ANSWERS.attention_head(x, key, query, value)
        return out * float("nan"), weights
    assert "not -1" not in failed(3, attention_head=nan_everywhere).hint
    def detached(x, key, query, value):
        return ANSWERS.attention_head(x, key.detach(), query, value)
    assert "no .detach()" in failed(3, attention_head=detached).hint
    for nonlinearity in (F.relu, lambda h: F.gelu(h, approximate="tanh")):
        def mlp(x, c_fc, c_proj, nonlinearity=nonlinearity):
            return nonlinearity(x @ c_fc.T) @ c_proj.T
        assert failed(5, mlp=mlp).hint.startswith("model.py's MLP uses nn.GELU()")

    class Counting(ANSWERS.KVCache):
        def append(self, layer, k, v):
            self.length += k.size(2)
            return super().append(layer, k, v)
    assert failed(9, KVCache=Counting).what == "append moved length on, from 0 to 5"
    for whole_output in (lambda model: model(torch.zeros(8, 3, dtype=torch.long))[:, -1].softmax(dim=-1),
                         lambda model: model(torch.zeros(8, 3, dtype=torch.long)).softmax(dim=-1),
                         lambda model: torch.softmax(model(torch.zeros(8, 3, dtype=torch.long)), dim=-1)):
        assert failed(10, transition_probs=whole_output).hint == "model(idx) returns a tuple, (logits, loss): " \
            "logits, _ = model(idx)"
    def a_tuple_dim(model):  # a TypeError about a tuple that is not the model's output: no such hint
        return F.softmax(model(torch.zeros(8, 3, dtype=torch.long))[0][:, -1], dim=(-1,))
    assert "logits, _" not in failed(10, transition_probs=a_tuple_dim).hint
    def first_of_two(model):  # model(idx)[0]: right
        states = torch.tensor([[int(b) for b in f"{i:03b}"] for i in range(8)])
        return model(states)[0][:, -1].softmax(dim=-1)
    assert run(EXERCISES[9], answered(transition_probs=first_of_two)).status == "passed"
    kept = []
    def remembered(model):  # the first model's answer, kept in a global and handed back: it passed, on one model
        kept.append(kept[0] if kept else first_of_two(model))
        return kept[-1]
    assert failed(10, transition_probs=remembered).what == ("probs (8, 2): a second model, of other weights, got "
                                                            "the first one's probabilities")
    renamed = SimpleNamespace(**{name: fn for name, fn in vars(ANSWERS).items() if name != "causal_average"})
    result = run(EXERCISES[1], renamed)
    assert result.status == "failed" and result.hint.startswith("keep the name the file gives it, causal_average")

    def forever(it, warmup_iters, max_iters, lr, min_lr):
        while it < warmup_iters:
            pass
        return lr
    check.LIMIT = 0.5
    try:
        result = failed(7, learning_rate=forever)
    finally:
        check.LIMIT = LIMIT
    assert result.what.startswith("still running after 0.5 s of computing") and "loop that never ends" in result.hint
    import signal
    assert signal.getitimer(signal.ITIMER_VIRTUAL) == (0.0, 0.0)  # the timer is gone again

    def waiting(it, warmup_iters, max_iters, lr, min_lr):  # a breakpoint() the learner sits at: no CPU time
        import time
        time.sleep(0.005)
        return ANSWERS.learning_rate(it, warmup_iters, max_iters, lr, min_lr)
    check.LIMIT = 0.5
    try:
        assert run(EXERCISES[6], answered(learning_rate=waiting)).status == "passed"  # 396 calls: 2 s of sleep
    finally:
        check.LIMIT = LIMIT


def test_the_mistakes_of_a_fifth_learner_are_named():
    """Found by a learner solving 2, 3, 4, 6 and 7 from the docstrings: each mistake, written as they wrote it,
    got a hint that named another cause (a mask, when the mask was there), or none."""
    def head(scores=None, keep=None):  # the learner's head, with one of their mistakes
        def attention_head(x, key, query, value):
            B, T, _ = x.shape
            q, k, v = x @ query, x @ key, x @ value
            hs = k.size(-1)
            att = scores(q, k, hs) if scores else q @ k.transpose(-2, -1) / hs ** 0.5
            hidden = keep(torch.ones(T, T)) if keep else torch.tril(torch.ones(T, T)) == 0
            weights = F.softmax(att.masked_fill(hidden, float("-inf")), dim=-1)
            return weights @ v, weights
        return attention_head
    B = 2
    viewed = failed(3, attention_head=head(scores=lambda q, k, hs: q @ k.view(B, hs, -1) / hs ** 0.5))
    assert "k.transpose(-2, -1)" in viewed.hint and "k.view(B, hs, T)" in viewed.hint
    assert viewed.hint.startswith("the weights hide the future")  # (the mask is there: not "no causal mask")
    triu = failed(3, attention_head=head(keep=lambda ones: torch.triu(ones) == 0))
    assert triu.hint.startswith("the mask is the wrong way round")
    present = failed(3, attention_head=head(keep=lambda ones: torch.tril(ones) == 1))
    assert present.hint.startswith("the last position's output is nan") and "not where it is 1" in present.hint
    times = failed(3, attention_head=head(scores=lambda q, k, hs: q @ k.transpose(-2, -1) * hs ** 0.5))
    assert times.what.startswith("weights (B, T, T)") and times.hint.startswith("the scores were multiplied")
    kq = failed(3, attention_head=head(scores=lambda q, k, hs: k @ q.transpose(-2, -1) / hs ** 0.5))
    assert kq.hint.startswith("the scores are k @ q^T")

    def split_view(x, c_attn, c_proj, n_head):  # view after a transpose: torch's error, and a hint for it
        B, T, C = x.shape
        q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (x @ c_attn.T).split(C, dim=2))
        att = (q @ k.transpose(-2, -1) / math.sqrt(C // n_head)).masked_fill(torch.ones(T, T).triu(1) == 1, -math.inf)
        y = F.softmax(att, dim=-1) @ v  # (B, nh, T, hs)
        return y.transpose(1, 2).view(B, T, C) @ c_proj.T
    viewed = failed(4, multi_head_attention=split_view)
    assert viewed.what.startswith("it raised RuntimeError: view size") and ".reshape(...)" in viewed.hint
    from exercises.check import multihead_reference
    for flag, hint in (({"scale": "times"}, "the scores were multiplied"), ({"flip": True}, "the mask is the wrong")):
        wrong = lambda x, c_attn, c_proj, n_head, flag=flag: multihead_reference(x, c_attn, c_proj, n_head, **flag)
        assert failed(4, multi_head_attention=wrong).hint.startswith(hint)

    def through_probs(logits, targets):  # the max taken out, then the log of a probability that rounds to 0
        e = torch.exp(logits - logits.max(-1, keepdim=True).values)
        probs = e / e.sum(-1, keepdim=True)
        return -torch.log(probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)).mean()
    underflow = failed(6, cross_entropy=through_probs)
    assert "very large logits" in underflow.what and "log(0) = -inf" in underflow.hint

    def lse_minus_target(logits, targets):
        m = logits.max(-1, keepdim=True).values
        return (m.squeeze(-1) + (logits - m).exp().sum(-1).log()) - logits.gather(-1, targets[..., None])[..., 0]
    summed_t = failed(6, cross_entropy=lambda logits, targets: lse_minus_target(logits, targets).sum(-1).mean())
    assert summed_t.what.endswith("T = 5 times too much") and "a sum over the T axis" in summed_t.hint
    no_unsqueeze = failed(6, cross_entropy=lambda logits, targets: logits.gather(-1, targets).mean())
    assert "targets.unsqueeze(-1)" in no_unsqueeze.hint
    no_values = failed(6, cross_entropy=lambda logits, targets: (logits - logits.max(-1, keepdim=True)).mean())
    assert no_values.hint.startswith("x.max(dim) returns (values, indices)")

    def schedule(progress_of):
        def learning_rate(it, warmup_iters, max_iters, lr, min_lr):
            if it < warmup_iters:
                return lr * (it + 1) / (warmup_iters + 1)
            return min_lr + 0.5 * (1 + math.cos(progress_of(it, warmup_iters, max_iters))) * (lr - min_lr)
        return learning_rate
    floored = failed(7, learning_rate=schedule(lambda it, w, n: math.pi * ((it - w) // (n - w))))
    assert floored.what == "the learning rate never decays after the warmup" and "`//`" in floored.hint
    no_pi = failed(7, learning_rate=schedule(lambda it, w, n: (it - w) / (n - w)))
    assert no_pi.what.endswith("cos(progress), without pi")


def test_the_mistakes_of_a_sixth_learner_are_named():
    """Found by a learner solving 1, 5, 8, 9 and 10 from the docstrings: hints that named another cause, or none."""
    def integer_counts(ids, vocab_size, smoothing=1.0):
        counts = torch.zeros(vocab_size, vocab_size, dtype=torch.long)
        counts.index_put_((ids[:-1], ids[1:]), torch.ones(len(ids) - 1, dtype=torch.long), accumulate=True)
        counts += int(smoothing)
        return counts // counts.sum(dim=1, keepdim=True)
    assert "divide with /" in failed(1, bigram_probs=integer_counts).hint
    one_short = lambda ids, vocab_size, smoothing=1.0: ANSWERS.bigram_probs(ids[:-1], vocab_size, smoothing)
    assert failed(1, bigram_probs=one_short).what == "the last pair was not counted"

    def dropping(x, c_fc, c_proj):
        return F.dropout(F.gelu(x @ c_fc.T) @ c_proj.T, 0.1)
    assert failed(5, mlp=dropping).hint.startswith("no dropout here")

    def sorted_order(logits, temperature=1.0, top_k=None, top_p=None):  # the nucleus, never put back in place
        probs = ANSWERS.next_char_probs(logits, temperature, top_k, top_p)
        return probs.sort(dim=-1, descending=True).values if temperature else probs
    assert failed(8, next_char_probs=sorted_order).what.endswith("the right probabilities, in another order")
    def divided_by_zero(logits, temperature=1.0, top_k=None, top_p=None):
        return F.softmax(logits / temperature, dim=-1)
    assert failed(8, next_char_probs=divided_by_zero).hint.startswith("temperature 0 is greedy, not a division")

    def nearly_greedy(logits, temperature=1.0, top_k=None, top_p=None):  # 0 written as a small number
        return ANSWERS.next_char_probs(logits, max(temperature, 1e-3), top_k, top_p)
    result = failed(8, next_char_probs=nearly_greedy)
    assert result.what.startswith("probs, temperature 0,") and "a small temperature in its place" in result.hint

    def topk_always(logits, temperature=1.0, top_k=None, top_p=None):
        if top_k is not None:
            torch.topk(logits, top_k)  # raises for a top_k above V
        return ANSWERS.next_char_probs(logits, temperature, top_k, top_p)
    assert "top_k >= V" in failed(8, next_char_probs=topk_always).hint

    class FloatPositions(ANSWERS.KVCache):
        def positions(self, T, device=None):
            return torch.linspace(self.length, self.length + T - 1, T, device=device)
    assert failed(9, KVCache=FloatPositions).what == "positions(3) gave float32 numbers"

    class WrongAxis(ANSWERS.KVCache):
        def append(self, layer, k, v):
            self.k[layer] = k if self.k[layer] is None else torch.cat((self.k[layer], k), dim=1)
            self.v[layer] = v if self.v[layer] is None else torch.cat((self.v[layer], v), dim=1)
            return self.k[layer], self.v[layer]
    assert failed(9, KVCache=WrongAxis).hint.startswith("torch.cat needs its tensors to match")

    def over_positions(model):
        states = torch.tensor([[int(b) for b in f"{i:03b}"] for i in range(8)])
        return torch.softmax(model(states)[0], dim=1)[:, -1]
    result = failed(10, transition_probs=over_positions)
    assert result.what.startswith("the sum of each row") and "2 next-bit scores" in result.hint


def test_the_mistakes_of_a_seventh_learner_are_named():
    """Found by a learner solving all ten: the video's T = 8 written in, a loss returned as .item(), top-k that keeps
    exactly k where one ties, float64 mixed with float32, and exercises named by their files."""
    def eight(x, key, query, value):  # right at T = 8 only: the check's first T is 7
        q, k, v = x @ query, x @ key, x @ value
        att = (q @ k.transpose(-2, -1) / math.sqrt(k.size(-1))).masked_fill(torch.tril(torch.ones(8, 8)) == 0,
                                                                            float("-inf"))
        return F.softmax(att, dim=-1) @ v, F.softmax(att, dim=-1)
    result = failed(3, attention_head=eight)
    assert "must match the size" in result.what and "a size written in as a number (T = 8, say)" in result.hint

    as_number = lambda logits, targets: ANSWERS.cross_entropy(logits, targets).item()
    result = failed(6, cross_entropy=as_number)
    assert result.what == "the loss is a number (float), not a tensor" and "no .item()" in result.hint

    for order in (lambda x: torch.topk(x, x.size(-1)).indices, lambda x: x.sort(dim=-1, stable=True).indices.flip(-1)):
        def exactly_k(logits, temperature=1.0, top_k=None, top_p=None, order=order):  # the k first: a tie is cut
            if not temperature or top_k is None or top_k >= logits.size(-1):
                return ANSWERS.next_char_probs(logits, temperature, top_k, top_p)
            keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, order(logits)[:, :top_k], True)
            return ANSWERS.next_char_probs(logits.masked_fill(~keep, float("-inf")), temperature, None, top_p)
        result = failed(8, next_char_probs=exactly_k)  # (whichever of the tied two it keeps)
        assert result.what.endswith("top_k 2, top_p None: exactly 2 kept, where another character ties with the k-th")
        assert result.hint.startswith("keep every character whose logit is at least the k-th largest")

    def mixed(x, key, query, value):
        weights = ANSWERS.attention_head(x, key, query, value)[1].double()
        return weights @ (x @ value), weights
    assert failed(3, attention_head=mixed).hint.startswith("two dtypes met in one operation")
    def integers(x):
        weights = torch.tril(torch.ones(x.size(1), x.size(1), dtype=torch.long))
        return (weights @ x) / weights.sum(dim=1, keepdim=True)
    assert "integer tensors" in failed(2, causal_average=integers).hint
    unmasked = lambda x: x.mean(dim=1, keepdim=True).expand_as(x)
    assert "torch.tril(torch.ones(T, T)) with each row divided by its sum" in failed(2, causal_average=unmasked).hint

    from exercises.__main__ import exercise_numbers
    names = ("3", "03", " +3", "ex03", "EX03", "exercises/ex03_head.py", "./exercises/ex03_head.py",
             "exercises\\ex03_head.py", "3,4")
    assert [exercise_numbers(name) for name in names] == [[3]] * 8 + [[3, 4]]
    for odd in ("3_4", "ex", "ex-3", "3,", "1e1"):
        with pytest.raises(argparse.ArgumentTypeError):
            exercise_numbers(odd)
    for bad, said in (("check foo", "'foo' is not an exercise's number"),
                      ("train 3,4", "train takes one exercise, not 2 — train with each in turn, first: python -m "
                                    "exercises train 3"), ("train 6 1", "train takes one exercise, not 2"),
                      ("train 6 1 --steps 50", "first: python -m exercises train 6 --steps 50"),
                      ("check --data_dir X", "--data_dir is a flag of train, not of check")):
        p = run_command("exercises", *bad.split(), cwd=ROOT)
        assert p.returncode == 2 and said in p.stderr and "Traceback" not in p.stderr


def test_a_loss_or_schedule_that_passes_once_but_not_in_training_is_caught():
    """Found by a review of `exercises train 6` and `7`: a loss with the right value and no gradient (or a wrong
    one) passed the check, and a schedule right only for the check's numbers did; past the check, a learning rate
    that is no number is named as the schedule's, not blamed on sampling."""
    def no_gradient(logits, targets):
        return torch.tensor(ANSWERS.cross_entropy(logits, targets).item())
    assert failed(6, cross_entropy=no_gradient).what == "the loss carries no gradient back to the logits"

    def detached_logsumexp(logits, targets):  # the right value, the wrong gradient: the softmax's part is cut off
        flat = logits.reshape(-1, logits.size(-1))
        lse = flat.max(dim=-1).values + (flat - flat.max(dim=-1, keepdim=True).values).exp().sum(dim=-1).log()
        return (lse.detach() - flat.gather(1, targets.reshape(-1, 1))[:, 0]).mean()
    assert failed(6, cross_entropy=detached_logsumexp).what.startswith("the gradient of the loss")

    def detached_max(logits, targets):  # right: the max cancels out of logsumexp's gradient
        flat = logits.reshape(-1, logits.size(-1))
        m = flat.max(dim=-1, keepdim=True).values.detach()
        lse = m[:, 0] + (flat - m).exp().sum(dim=-1).log()
        return (lse - flat.gather(1, targets.reshape(-1, 1))[:, 0]).mean()
    assert run(EXERCISES[5], answered(cross_entropy=detached_max)).status == "passed"

    def for_the_check_only(it, warmup_iters, max_iters, lr, min_lr):
        return ANSWERS.learning_rate(it, 10, 110, 1e-3, 1e-4)
    assert "use the arguments given" in failed(7, learning_rate=for_the_check_only).hint

    from exercises.plug import schedule
    from config import TrainConfig
    cfg = TrainConfig(warmup_iters=10, max_iters=20, lr=1e-3, min_lr=1e-4)
    assert schedule(answered())(15, cfg) == pytest.approx(ANSWERS.learning_rate(15, 10, 20, 1e-3, 1e-4))
    for wrong in (float("nan"), None, -1e-3):
        with pytest.raises(ValueError, match=rf"learning_rate\(15, 10, 20, 0.001, 0.0001\) returned {wrong}, not a "
                                             rf"learning rate"):
            schedule(SimpleNamespace(learning_rate=lambda *args, wrong=wrong: wrong))(15, cfg)


def test_exercise_8_writes_with_the_learners_sampler_beside_the_repos(data_dir, capsys, monkeypatch):
    """`exercises train 8`: the repo's GPT trained once, then written with each sampler from the same seed: a right
    one writes the repo's text, a wrong one (the temperature left out) another, and one that breaks is one line."""
    from exercises import __main__ as command
    from machinery.cli import UserError
    data = load_data(data_dir)
    (_, val, _, repos), (_, same_val, _, yours) = train_both(8, ANSWERS, data, steps=30, eval_iters=4)
    assert yours == repos and val == same_val and len(repos) == 100
    def no_temperature(logits, temperature=1.0, top_k=None, top_p=None):
        return ANSWERS.next_char_probs(logits, 1.0, top_k, top_p)
    assert train_both(8, answered(next_char_probs=no_temperature), data, steps=30, eval_iters=4)[1][3] != repos
    def two_rows(logits, temperature=1.0, top_k=None, top_p=None):  # (the check refuses it: here it reaches writing)
        return ANSWERS.next_char_probs(logits.expand(2, -1), temperature, top_k, top_p)
    def not_reached(*args, **kwargs):
        raise AssertionError("the sampler is tried before the 2000 steps")
    monkeypatch.setattr("exercises.plug.train_rung", not_reached)
    with pytest.raises(UserError, match=r"^exercise 8 passed its check, but writing with your sampler it raised "):
        train_both(8, answered(next_char_probs=two_rows), data, steps=30, eval_iters=4)

    monkeypatch.setattr("exercises.plug.train_both", lambda number, module, data, steps: [
        ("the repo's", 2.5, 1.0, "abc"), ("yours", 2.5, 1.0, "abd")])
    assert command.write(ANSWERS, data, "data", 2000) == 0
    out = capsys.readouterr().out
    assert "the repo's writes: 'abc'\n     yours writes: 'abd'\ndifferent text: from the same seed" in out


def test_a_sampler_that_returns_ids_or_log_probabilities_is_told_so():
    def drawn(logits, temperature=1.0, top_k=None, top_p=None):
        return torch.multinomial(ANSWERS.next_char_probs(logits, temperature, top_k, top_p), 1)
    assert failed(8, next_char_probs=drawn).hint.startswith("return the (B, V) probabilities, not a drawn character")
    def logs(logits, temperature=1.0, top_k=None, top_p=None):
        return ANSWERS.next_char_probs(logits, temperature, top_k, top_p).log().nan_to_num(neginf=-1e9)
    assert failed(8, next_char_probs=logs).hint == "probabilities, not log-probabilities: a softmax, not a log_softmax"
    def greedy_long(logits, temperature=1.0, top_k=None, top_p=None):
        if temperature == 0:
            return F.one_hot(logits.argmax(dim=-1), logits.size(-1))  # int64
        return ANSWERS.next_char_probs(logits, temperature, top_k, top_p)
    assert "expected floating-point probabilities, got int64" in failed(8, next_char_probs=greedy_long).what
    def in_float64(logits, temperature=1.0, top_k=None, top_p=None):  # right: multinomial draws from float64 too
        return ANSWERS.next_char_probs(logits.double(), temperature, top_k, top_p)
    assert run(EXERCISES[7], answered(next_char_probs=in_float64)).status == "passed"


@pytest.mark.parametrize("number", [3, 4, 5])
def test_the_repo_s_own_part_plugged_in_gives_the_model_s_own_logits(number):
    """Sharp attention (c_attn scaled up), where a swapped query and key, or another mix-up of the model's
    weights in exercises/plug.py, shows at once: 30 steps of training from the init's near-uniform attention
    hardly tell."""
    from exercises.plug import configs, plugs
    from model import build_model
    torch.manual_seed(0)
    mcfg, _ = configs(number, vocab_size=11, steps=10)
    model = build_model(mcfg).eval()
    with torch.no_grad():
        for block in model.transformer.h:
            block.attn.c_attn.weight.mul_(20)
        idx = torch.randint(11, (2, 8))
        expected = model(idx)[0]
        plugs(ANSWERS)[number](model)
        torch.testing.assert_close(model(idx)[0], expected, rtol=1e-4, atol=1e-4)


def test_check_fails_unless_every_exercise_asked_for_passed(monkeypatch, capsys):
    """One passed of two is a failure: the command's status is 1 (a CI step would otherwise go green)."""
    import exercises.check
    from exercises.__main__ import check
    monkeypatch.setattr(exercises.check, "run", lambda exercise, module=None: Result(
        "passed" if exercise.number == 1 else "failed", "" if exercise.number == 1 else "wrong", ""))
    assert check([1, 2]) == 1
    assert capsys.readouterr().out.splitlines()[-2:] == [
        "1 of 2 passed", "next: fix exercise 2 (above: what went wrong), then: python -m exercises check 2"]
    assert check([1]) == 0


def test_the_last_line_of_check_says_what_to_do_next(monkeypatch, capsys):
    """The first exercise to write or fix; with every one asked passing, the first to train with, or the one after."""
    import exercises.check
    from exercises.__main__ import check
    statuses = {5: Result("not finished", "block still to write")}
    monkeypatch.setattr(exercises.check, "run", lambda exercise, module=None: statuses.get(exercise.number,
                                                                                           Result("passed")))
    said = lambda *numbers: (check(list(numbers)), capsys.readouterr().out.splitlines()[-1])[1]
    assert said(4, 6) == "next: train the GPT with yours: python -m exercises train 4"
    assert said(5, 4) == "next: write the part left in exercises/ex05_block.py, then: python -m exercises check 5"
    assert said(6, 4) == "next: train the GPT with yours: python -m exercises train 4"
    assert said(8) == "next: write with your sampler: python -m exercises train 8"
    assert said(1, 2) == said(2, 1) == "next: score your table and write with it: python -m exercises train 1"
    assert said(2, 2) == "next: exercise 3, in exercises/ex03_head.py"
    assert said(2, 9) == "next: exercise 3, in exercises/ex03_head.py"  # (not 10: 3 to 8 are unchecked)
    assert said(10) == "next: every exercise at once: python -m exercises check"
    statuses.clear()  # all ten pass: not exercise 1's table again, which a learner had run already
    assert said(*range(1, 11)) == ("next: all 10 pass; train with yours, each in turn: python -m exercises train N, N "
                                   "one of 1, 3, 4, 5, 6, 7, 8")


def test_the_mistakes_of_an_eighth_learner_are_named():
    """Found by a learner solving 3, 6, 8 and 9 with mistakes made on purpose: hints that pointed elsewhere."""
    def head(x, key, query, value, scale_after=False, dropout=0.0, size=None, keys_from=None, as_list=False):
        T = x.size(1)
        q, k, v = x @ query, x @ (keys_from if keys_from is not None else key), x @ value
        att = q @ k.transpose(-2, -1) / (1 if scale_after else math.sqrt(k.size(-1)))
        tril = torch.tril(torch.ones(size or T, size or T))[:T, :T]  # (the video's buffer, if size is given)
        weights = F.softmax(att.masked_fill(tril == 0, float("-inf")), dim=-1)
        weights = weights / math.sqrt(k.size(-1)) if scale_after else F.dropout(weights, dropout)
        return [weights @ v, weights] if as_list else (weights @ v, weights)
    dropping = failed(3, attention_head=lambda *a: head(*a, dropout=0.2))
    assert dropping.what.endswith("two calls on the same input gave different outputs")
    assert dropping.hint.startswith("no dropout here")

    def dropping_out(x, key, query, value):  # dropout on the way to out only: the weights come back whole
        out, weights = head(x, key, query, value)
        return F.dropout(weights, 0.2) @ (x @ value), weights
    assert failed(3, attention_head=dropping_out).what == "out (B, T, hs): two calls on the same input gave " \
        "different outputs"

    def multi(x, c_attn, c_proj, n_head, dropout=0.0, size=None):  # the video's MultiHeadAttention, written out
        B, T, C = x.shape
        q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (x @ c_attn.T).split(C, dim=2))
        tril = torch.tril(torch.ones(size or T, size or T))[:T, :T]
        att = (q @ k.transpose(-2, -1) / math.sqrt(C // n_head)).masked_fill(tril == 0, float("-inf"))
        y = F.dropout(F.softmax(att, dim=-1), dropout) @ v
        return y.transpose(1, 2).reshape(B, T, C) @ c_proj.T
    assert run(EXERCISES[3], answered(multi_head_attention=multi)).status == "passed"
    assert failed(4, multi_head_attention=lambda *a: multi(*a, dropout=0.2)).hint.startswith("no dropout here")
    assert failed(4, multi_head_attention=lambda *a: multi(*a, size=8)).what.startswith("out (B, T, C) for T = 11")
    assert run(EXERCISES[2], answered(attention_head=lambda *a: head(*a, as_list=True))).status == "passed"
    assert failed(3, attention_head=lambda *a: head(*a, size=8)).what.startswith("out (B, T, hs) for T = 11")
    assert failed(3, attention_head=lambda *a: head(*a, scale_after=True)).hint.startswith(
        "the scaling belongs on the scores")
    swapped = lambda x, key, query, value: head(x, query, key, value)  # k from query, q from key
    assert "the arguments come key first" in failed(3, attention_head=swapped).hint
    transposed = lambda x, key, query, value: head(x, key.T, query, value)  # x @ key.T: (C, hs) used as (hs, C)
    assert "(in, out) is used as x @ w" in failed(3, attention_head=transposed).hint

    def one_max(logits, targets):
        m = logits.max()  # one for the whole tensor, not each row's
        lse = m + (logits - m).exp().sum(dim=-1).log()
        return (lse - logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)).mean()
    assert failed(6, cross_entropy=one_max).hint.startswith("m must be each row's max")

    def no_keepdim(logits, targets):
        m = logits.max(dim=-1).values  # (B, T): against logits (B, T, V), it does not line up
        lse = m + (logits - m).exp().sum(dim=-1).log()
        return (lse - logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)).mean()
    assert "unless keepdim=True" in failed(6, cross_entropy=no_keepdim).hint

    class MovesLength(ANSWERS.KVCache):
        def positions(self, T, device=None):
            self.length += T
            return torch.arange(self.length - T, self.length, device=device)
    assert failed(9, KVCache=MovesLength).what == "positions(3) moved length on, from 5 to 8"

    class OneAhead(ANSWERS.KVCache):
        def positions(self, T, device=None):
            return torch.arange(self.length + 1, self.length + 1 + T, device=device)
    assert "torch.arange(length, length + T)" in failed(9, KVCache=OneAhead).hint

    class OneLayer(ANSWERS.KVCache):
        def append(self, layer, k, v):
            return super().append(0, k, v)  # every layer's keys in layer 0's place
    assert "each layer its own, self.k[layer]" in failed(9, KVCache=OneLayer).hint

    def unscattered(logits, temperature=1.0, top_k=None, top_p=None):  # the nucleus's mask left in sorted order
        if not temperature or top_p is None:
            return ANSWERS.next_char_probs(logits, temperature, top_k, top_p)
        logits = logits / temperature
        if top_k is not None and top_k < logits.size(-1):
            logits = logits.masked_fill(logits < torch.topk(logits, top_k).values[:, [-1]], float("-inf"))
        sorted_probs, _ = F.softmax(logits, dim=-1).sort(dim=-1, descending=True)
        remove = sorted_probs.cumsum(dim=-1) - sorted_probs >= top_p  # (sorted order)
        return F.softmax(logits.masked_fill(remove, float("-inf")), dim=-1)  # never scattered back
    assert failed(8, next_char_probs=unscattered).what.endswith("top-p's mask is in sorted order")

    def not_renormalised(logits, temperature=1.0, top_k=None, top_p=None):  # the nucleus cut, never rescaled
        probs = ANSWERS.next_char_probs(logits, temperature, top_k, None)
        if not temperature or top_p is None:
            return probs
        return probs * (ANSWERS.next_char_probs(logits, temperature, top_k, top_p) > 0)
    assert failed(8, next_char_probs=not_renormalised).hint.startswith("the rows sum to")


def test_an_error_raised_in_the_repos_code_names_its_line():
    """What a learner's part hands the repo's code (exercise 9's cache, called from model.py's attention) can fail
    there: the line says where, as it names the learner's own line for an error in their file."""
    from exercises.check import raised
    model = GPT(GPTConfig(block_size=4, vocab_size=5, n_layer=1, n_head=1, n_embd=8))
    with pytest.raises(AssertionError) as error:
        model(torch.zeros(1, 6, dtype=torch.long))  # 6 positions: more than block_size
    assert re.search(r"\(in model\.py line \d+, on what your code gave it\)$", raised(error.value)), raised(error.value)


def learners_module(tmp_path, name, source):
    """source as the learner's exercises/NAME, loaded (check.py's learners() knows their files by exercises/ex*)."""
    import importlib.util
    path = tmp_path / "exercises" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"learners_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_right_answers_written_another_way_pass(tmp_path):
    """Found by writing 72 right answers in other styles: three were refused."""
    import numpy as np

    def schedule(it, warmup_iters, max_iters, lr, min_lr):  # numpy's where gives a 0-d array, which float() reads
        progress = (it - warmup_iters) / (max_iters - warmup_iters)
        return np.where(it < warmup_iters, lr * (it + 1) / (warmup_iters + 1),
                        min_lr + 0.5 * (1 + np.cos(np.pi * progress)) * (lr - min_lr))
    assert run(EXERCISES[6], answered(learning_rate=schedule)).status == "passed"

    class FromKeys(ANSWERS.KVCache):  # the positions counted from the keys cached, not from length
        def positions(self, T, device=None):
            start = 0 if self.k[0] is None else self.k[0].size(2)
            return torch.arange(start, start + T, device=device)
    assert run(EXERCISES[8], answered(KVCache=FromKeys)).status == "passed"

    def block(x, attention, feed_forward, ln_1, ln_2):  # each sum a new tensor, by another name
        h = x + attention(ln_1(x))
        return h + feed_forward(ln_2(h))
    assert run(EXERCISES[4], answered(block=block)).status == "passed"
    assert failed(7, learning_rate=lambda *args: [0.1]).what == "learning_rate returned a list, not a number"
    shaped = failed(7, learning_rate=lambda *args: torch.ones(2))
    assert shaped.what == "learning_rate returned a Tensor of shape (2,), not a number"
    assert failed(7, learning_rate=lambda *args: np.ones((1, 2))).what == "learning_rate returned a ndarray of " \
                                                                          "shape (1, 2), not a number"
    assert failed(7, learning_rate=lambda *args: "0.001").what == "learning_rate returned a str, not a number"


def test_an_in_place_operation_that_breaks_training_is_named_with_its_line(tmp_path):
    """`x += ...` after a LayerNorm has kept x, or `w /= ...` after exp has kept w: the values are right, and
    backward fails. The check runs backward, as training does, and names the learner's line that kept the tensor."""
    from exercises.check import INPLACE_HINT
    block = learners_module(tmp_path, "ex05_block.py", "import torch.nn.functional as F\n\n\n"
                            "def mlp(x, c_fc, c_proj):\n    return F.gelu(x @ c_fc.T) @ c_proj.T\n\n\n"
                            "def block(x, attention, feed_forward, ln_1, ln_2):\n"
                            "    x = x + attention(ln_1(x))\n"
                            "    x += feed_forward(ln_2(x))\n"
                            "    return x\n")
    result = run(EXERCISES[4], block)
    assert result.what == "training's backward pass failed: a tensor it saved at line 10 of ex05_block.py was then " \
                          "changed in place"
    assert result.hint == INPLACE_HINT
    head = learners_module(tmp_path, "ex03_head.py", "import torch\n\n\n"
                           "def attention_head(x, key, query, value):\n"
                           "    q, k, v = x @ query, x @ key, x @ value\n"
                           "    T = x.size(1)\n"
                           "    s = (q @ k.transpose(-2, -1) / k.size(-1) ** 0.5).masked_fill("
                           "torch.ones(T, T).tril() == 0, float('-inf'))\n"
                           "    w = torch.exp(s - s.amax(-1, keepdim=True))\n"
                           "    w /= w.sum(-1, keepdim=True)\n"
                           "    return w @ v, w\n")
    assert "a tensor it saved at line 8 of ex03_head.py was" in run(EXERCISES[2], head).what  # (exp saves its output)

    def cut(x, attention, feed_forward, ln_1, ln_2):  # the values right, the residual path cut from the graph
        x = x.detach() + attention(ln_1(x))
        return x + feed_forward(ln_2(x))
    assert failed(5, block=cut).what.startswith("block: the gradient of its output with respect to x: at ")
    assert failed(5, mlp=lambda x, c_fc, c_proj: F.gelu(x @ c_fc.T).detach() @ c_proj.T).what == \
        "mlp: x gets no gradient"

    def rewrapped(logits, targets):  # a learner's fix for "no gradient": a new tensor that asks for one
        return torch.tensor(ANSWERS.cross_entropy(logits, targets).item(), requires_grad=True)
    assert failed(6, cross_entropy=rewrapped).what == "the loss carries no gradient back to the logits"


def test_a_right_answer_runs_once_per_check_of_its_output():
    """A learner's print() in their part shows once for each input the check tries, not once more for each look
    at its gradients (the second run, in autograd's anomaly mode, is for a backward pass that failed only)."""
    calls = []

    def block(*args):
        calls.append(1)
        return ANSWERS.block(*args)
    assert run(EXERCISES[4], answered(block=block)).status == "passed"
    assert len(calls) == 3  # the values, the gradients, then the second size


def test_the_docs_notebook_way_checks_a_function_with_no_file(capsys):
    """docs/exercises.md's cell for a notebook, run as written, on a right answer and on one without the scaling."""
    docs = (ROOT / "docs" / "exercises.md").read_text()
    cell = re.search(r"\*\*In a notebook\*\*.*?```python\n(.*?)```", docs, re.S)[1]
    exec(cell, {"attention_head": ANSWERS.attention_head})
    assert capsys.readouterr().out == "passed  \n"
    unscaled = wrong_head(scale=False)
    exec(cell, {"attention_head": lambda x, key, query, value: unscaled(x, key, query, value)})
    assert capsys.readouterr().out.startswith("failed weights (B, T, T): at (0, 1, 0): expected 0.840517, got ")


def test_wrong_answers_the_check_once_passed_fail():
    """Found by hunting for wrong answers that pass: each was right only on the check's inputs."""
    def schedule(it, warmup_iters, max_iters, lr, min_lr):  # build-nanogpt's min_lr = max_lr * 0.1, over the argument
        return ANSWERS.learning_rate(it, warmup_iters, max_iters, lr, lr * 0.1)
    assert failed(7, learning_rate=schedule).hint == "the decay ends at the min_lr given (here not lr / 10)"

    def unstable(x, key, query, value):  # the softmax written out, without taking each row's max out
        T = x.size(1)
        e = ((x @ query) @ (x @ key).transpose(-2, -1) / key.size(-1) ** 0.5).exp() * torch.tril(torch.ones(T, T))
        weights = e / e.sum(dim=-1, keepdim=True)
        return weights @ (x @ value), weights
    assert failed(3, attention_head=unstable).hint.startswith("exp of scores this large gives inf")

    def added_mask(x, key, query, value):  # -100 added to the future's scores: outweighed by scores in the hundreds
        T = x.size(1)
        att = (x @ query) @ (x @ key).transpose(-2, -1) / key.size(-1) ** 0.5
        weights = (att - 100 * torch.ones(T, T).triu(diagonal=1)).softmax(dim=-1)
        return weights @ (x @ value), weights
    finite = failed(3, attention_head=added_mask)
    assert finite.what == ("out (B, T, hs) for scores of a few hundred: an earlier position's output changed when a "
                           "later input did") and finite.hint == FINITE_MASK_HINT

    def added_mask_heads(x, c_attn, c_proj, n_head):  # the same in exercise 4
        B, T, C = x.shape
        q, k, v = ((t.view(B, T, n_head, -1).transpose(1, 2)) for t in (x @ c_attn.T).split(C, dim=2))
        att = q @ k.transpose(-2, -1) / k.size(-1) ** 0.5 - 100 * torch.ones(T, T).triu(diagonal=1)
        return (att.softmax(dim=-1) @ v).transpose(1, 2).reshape(B, T, C) @ c_proj.T
    assert failed(4, multi_head_attention=added_mask_heads).hint == FINITE_MASK_HINT

    def times_inf(x, key, query, value):  # the mask multiplied by -inf: 0 * -inf is nan, below the diagonal too
        T = x.size(1)
        att = (x @ query) @ (x @ key).transpose(-2, -1) / key.size(-1) ** 0.5
        weights = (att + float("-inf") * torch.ones(T, T).triu(diagonal=1)).softmax(dim=-1)
        return weights @ (x @ value), weights
    assert failed(3, attention_head=times_inf).hint.startswith("every position's output is nan: every score was -inf")

    # -100 written over the future's scores: harmless beside scores above -100, a leak in a row whose own are below
    assert failed(3, attention_head=wrong_head(fill=-100.0)).hint == FINITE_MASK_HINT

    def filled_heads(x, c_attn, c_proj, n_head):
        from exercises.check import multihead_reference
        return multihead_reference(x, c_attn, c_proj, n_head, fill=-100.0)
    assert failed(4, multi_head_attention=filled_heads).hint == FINITE_MASK_HINT

    def whole_max(x, key, query, value):  # the whole tensor's max taken out: a later input moves it, so that the
        # earlier positions' output changes too, yet what is wrong is the exp's overflow
        T = x.size(1)
        att = ((x @ query) @ (x @ key).transpose(-2, -1) / key.size(-1) ** 0.5).masked_fill(
            torch.ones(T, T).triu(diagonal=1) == 1, float("-inf"))
        e = (att - att.max()).exp()
        weights = e / e.sum(dim=-1, keepdim=True)
        return weights @ (x @ value), weights
    assert failed(3, attention_head=whole_max).hint.startswith("exp of scores this large gives inf")

    def log_probs(ids, vocab_size, smoothing=1.0):
        return ANSWERS.bigram_probs(ids, vocab_size, smoothing).log()
    assert failed(1, bigram_probs=log_probs).what == "these are log-probabilities"
    def log2_probs(ids, vocab_size, smoothing=1.0):  # in bits: a log all the same
        return ANSWERS.bigram_probs(ids, vocab_size, smoothing).log2()
    assert failed(1, bigram_probs=log2_probs).what == "these are log-probabilities"

    def softmaxed(ids, vocab_size, smoothing=1.0):  # the counts taken as logits: exp(count), not count
        return bigram_counts(ids, vocab_size, smoothing).softmax(dim=1)
    assert failed(1, bigram_probs=softmaxed).what == "the counts went through a softmax"

    def counted_without_minlength(ids, vocab_size, smoothing=1.0):  # bincount stops at the largest pair it saw
        counts = torch.bincount(ids[:-1] * vocab_size + ids[1:]).view(vocab_size, vocab_size) + smoothing
        return counts / counts.sum(dim=1, keepdim=True)
    short = failed(1, bigram_probs=counted_without_minlength)
    assert "minlength" in short.hint
    assert short.what.startswith("it raised RuntimeError: shape '[6, 6]' is invalid for input of size 29")
    assert short.hint.endswith("give it minlength=vocab_size ** 2")

    def half_width(x, key, query, value):  # the head size taken as C // 2, which it is at the first size only
        out, weights = ANSWERS.attention_head(x, key * (key.size(-1) / (x.size(-1) // 2)) ** 0.5, query, value)
        return out, weights
    assert failed(3, attention_head=half_width).what.startswith("out (B, T, hs) for T = 11, hs = 2")

    def clamped(logits, targets):  # a max below 0 clamped to 0: every exp of logits far below 0 underflows
        m = logits.max(dim=-1, keepdim=True).values.clamp(min=0)
        picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        return (m.squeeze(-1) + (logits - m).exp().sum(dim=-1).log() - picked).mean()
    assert failed(6, cross_entropy=clamped).what.startswith("the loss of logits far below 0 (- 1000)")

    def reaching(logits, temperature=1.0, top_k=None, top_p=None):  # top-p keeping a character the mass before it
        if not temperature or top_p is None:  # brings to p exactly (<= where the docstring has <)
            return ANSWERS.next_char_probs(logits, temperature, top_k, top_p)
        return top_p_reaching(logits, temperature, top_k, top_p)
    assert failed(8, next_char_probs=reaching).what.endswith("where the probabilities before it add up to p exactly")

    def all_tied(logits, temperature=1.0, top_k=None, top_p=None):  # greedy as a mask of every maximum
        if temperature:
            return ANSWERS.next_char_probs(logits, temperature, top_k, top_p)
        return (logits == logits.max(dim=-1, keepdim=True).values).to(logits.dtype)
    assert failed(8, next_char_probs=all_tied).what.endswith("the probability on several characters tied for the top")

    def split(logits, temperature=1.0, top_k=None, top_p=None):  # greedy as an even split over a tie at the top
        if temperature:
            return ANSWERS.next_char_probs(logits, temperature, top_k, top_p)
        top = (logits == logits.max(dim=-1, keepdim=True).values).to(logits.dtype)
        return top / top.sum(dim=-1, keepdim=True)
    assert failed(8, next_char_probs=split).hint.startswith("greedy gives all of it to one character")

    class Restarting(ANSWERS.KVCache):  # several new positions taken for a new prompt: the cache starts again
        def append(self, layer, k, v):
            if k.size(2) > 1:
                self.k[layer], self.v[layer] = None, None
            return super().append(layer, k, v)
    restarted = failed(9, KVCache=Restarting)
    assert restarted.what.startswith("the logits of 9 characters fed as 5, then 4, through the cache: it raised")
    assert restarted.hint.startswith("append keeps the cached keys and adds this step's after them")

    def small_counts(ids, vocab_size, smoothing=1.0):  # counts in uint8, which wrap around past 255
        counts = torch.zeros(vocab_size, vocab_size, dtype=torch.uint8)
        counts.index_put_((ids[:-1], ids[1:]), torch.ones(len(ids) - 1, dtype=torch.uint8), accumulate=True)
        counts = counts.float() + smoothing
        return counts / counts.sum(dim=1, keepdim=True)
    assert failed(1, bigram_probs=small_counts).what.startswith("probs (V, V) of pairs repeated thousands of times")

    tril = torch.tril(torch.ones(8, 8))  # the video's buffer of block_size 8, sliced to T

    def buffered(x):
        T = x.size(1)
        return (tril[:T, :T] / tril[:T, :T].sum(dim=1, keepdim=True)) @ x
    assert failed(2, causal_average=buffered).what.startswith("out (B, T, C) for T = 11: it raised")


def test_a_tie_may_be_broken_either_way():
    """Greedy over characters tied for the top, or top-p's edge among tied ones: any one of them is right."""
    def last_of_the_tied(logits, temperature=1.0, top_k=None, top_p=None):  # argmax from the other end
        if temperature:
            flipped = ANSWERS.next_char_probs(logits.flip(-1), temperature, top_k, top_p)
            return flipped.flip(-1)  # (a sort in the other order: top-p's tied edge broken the other way too)
        V = logits.size(-1)
        return F.one_hot(V - 1 - logits.flip(-1).argmax(dim=-1), V).to(logits.dtype)
    assert run(EXERCISES[7], answered(next_char_probs=last_of_the_tied)).status == "passed"


def test_the_mistakes_of_a_ninth_learner_are_named():
    """Found by a learner making the video's likely mistakes on purpose: each was caught, but these hints named
    another mistake, or none."""
    def tril_below(x):  # the diagonal hidden too: position 0 averages nothing, 0 / 0
        weights = torch.tril(torch.ones(x.size(1), x.size(1)), diagonal=-1)
        return weights / weights.sum(dim=1, keepdim=True) @ x
    nan = failed(2, causal_average=tril_below)
    assert nan.what.startswith("position 0's output is nan") and nan.hint.endswith("not -1")

    def by_hs(x, c_attn, c_proj, n_head):  # the square root forgotten
        from exercises.check import multihead_reference
        return multihead_reference(x, c_attn, c_proj, n_head, scale="hs")
    assert failed(4, multi_head_attention=by_hs).hint.startswith("the scores were divided by hs")
    assert failed(3, attention_head=wrong_head(scale="hs")).hint.startswith("the scores were divided by hs")

    def by_n_head(x, c_attn, c_proj, n_head):  # hs = n_head = 4 and sqrt(C) = 4 once hid this, or named sqrt(C)
        B, T, C = x.shape
        q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (x @ c_attn.T).split(C, dim=2))
        att = (q @ k.transpose(-2, -1) / math.sqrt(n_head)).masked_fill(torch.ones(T, T).triu(1) == 1, -math.inf)
        return (F.softmax(att, dim=-1) @ v).transpose(1, 2).reshape(B, T, C) @ c_proj.T
    by_n_head_failed = failed(4, multi_head_attention=by_n_head)
    assert "for T = 11" not in by_n_head_failed.what and by_n_head_failed.hint.startswith("scaled by sqrt(n_head)")

    def over_the_heads(x, c_attn, c_proj, n_head):  # the softmax over dim 1: nan wherever the future was masked
        B, T, C = x.shape
        q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (x @ c_attn.T).split(C, dim=2))
        att = (q @ k.transpose(-2, -1) / math.sqrt(C // n_head)).masked_fill(torch.ones(T, T).triu(1) == 1, -math.inf)
        return (F.softmax(att, dim=1) @ v).transpose(1, 2).reshape(B, T, C) @ c_proj.T
    assert failed(4, multi_head_attention=over_the_heads).hint.startswith("every position but the last is nan")
    def one_more(logits, temperature=1.0, top_k=None, top_p=None):  # the (k + 1)-th logit as the threshold
        if top_k is not None and top_k < logits.size(-1):
            logits = logits.masked_fill(logits < torch.topk(logits, top_k + 1).values[:, [-1]], -math.inf)
            top_k = None
        return ANSWERS.next_char_probs(logits, temperature, top_k, top_p)
    assert failed(8, next_char_probs=one_more).what.endswith("[3, 3] characters kept in the rows, where top_k 2 keeps "
                                                             "[2, 2]")

    def filled_with_minus_100(logits, temperature=1.0, top_k=None, top_p=None):  # right: exp(-100) is about 0
        if temperature and top_k is not None and top_k < logits.size(-1):
            logits = logits / temperature
            logits = logits.masked_fill(logits < torch.topk(logits, top_k).values[:, [-1]], -100.0)
            temperature, top_k = 1.0, None
        return ANSWERS.next_char_probs(logits, temperature, top_k, top_p)
    assert run(EXERCISES[7], answered(next_char_probs=filled_with_minus_100)).status == "passed"
    def one_residual(x, attention, feed_forward, ln_1, ln_2):  # the MLP's sum forgotten
        x = x + attention(ln_1(x))
        return feed_forward(ln_2(x))
    assert failed(5, block=one_residual).what == "the MLP's residual connection is missing"

    def the_other(x, attention, feed_forward, ln_1, ln_2):  # attention's sum forgotten
        x = attention(ln_1(x))
        return x + feed_forward(ln_2(x))
    assert failed(5, block=the_other).what == "attention's residual connection is missing"

    def rising(it, warmup_iters, max_iters, lr, min_lr):  # 1 - cos: the cosine upside down
        if it < warmup_iters:
            return lr * (it + 1) / (warmup_iters + 1)
        progress = (it - warmup_iters) / (max_iters - warmup_iters)
        return min_lr + 0.5 * (1 - math.cos(math.pi * progress)) * (lr - min_lr)
    assert failed(7, learning_rate=rising).what == "the decay runs backwards: from min_lr up to lr after the warmup"
    from exercises.check import multihead_reference
    for flag, hint in (({"proj": "none"}, "c_proj left out"), ({"order": "qvk"}, "v and k swapped")):
        wrong = lambda x, c_attn, c_proj, n_head, flag=flag: multihead_reference(x, c_attn, c_proj, n_head, **flag)
        assert failed(4, multi_head_attention=wrong).hint.startswith(hint)

    def split_in_three(x, c_attn, c_proj, n_head):  # split's size taken for chunk's count
        q, k, v = (x @ c_attn.T).split(3, dim=2)
    unpacked = failed(4, multi_head_attention=split_in_three)
    assert unpacked.what.startswith("it raised ValueError: too many values to unpack") and "chunk(3" in unpacked.hint

    for returned, said in ((None, "None"), ("keys", "a Tensor of shape (3, 2, 6, 4)"), ("stacked", None)):
        class Returning(ANSWERS.KVCache):
            def append(self, layer, k, v, returned=returned):
                keys, values = super().append(layer, k, v)
                return {None: None, "keys": keys, "stacked": torch.stack((keys, values))}[returned]
        if said is None:  # the two in one tensor unpack as the pair does: right
            assert run(EXERCISES[8], answered(KVCache=Returning)).status == "passed"
            continue
        no_pair = failed(9, KVCache=Returning)
        assert no_pair.what == f"append returned {said}, not the pair (keys, values)"
        assert no_pair.hint.startswith("does it end without a `return`?") == (returned is None)

    def bare_raise(logits, temperature=1.0, top_k=None, top_p=None):
        if top_p is not None:
            raise NotImplementedError
        return ANSWERS.next_char_probs(logits, temperature, top_k)
    assert failed(8, next_char_probs=bare_raise).what == "next_char_probs raised NotImplementedError"


def test_the_mistakes_of_a_tenth_learner_are_named():
    """Found by a learner making likely mistakes in exercises 5 to 10 on purpose: each was caught, but these hints
    named another mistake, or none."""
    def dropout_inside(x, c_fc, c_proj):  # the video's FeedForward has dropout; here on the hidden layer
        return F.dropout(F.gelu(x @ c_fc.T), 0.2) @ c_proj.T
    inside = failed(5, mlp=dropout_inside)
    assert inside.what.endswith("two calls on the same input gave different outputs") and "F.dropout" in inside.hint

    def dropout_on_the_branches(x, attention, feed_forward, ln_1, ln_2):
        x = x + F.dropout(attention(ln_1(x)), 0.1)
        return x + F.dropout(feed_forward(ln_2(x)), 0.1)
    assert failed(5, block=dropout_on_the_branches).what.startswith("block (B, T, C): two calls")

    def shifted_again(logits, targets):  # the targets are already the next characters
        return ANSWERS.cross_entropy(logits[:, :-1], targets[:, 1:])
    assert failed(6, cross_entropy=shifted_again).what.endswith("each position scored against another position's "
                                                                  "target")

    def wrong_axis(logits, targets):  # the sum over T: (B, V), which does not line up with the max's (B, T)
        m = logits.max(dim=-1, keepdim=True).values
        return (m.squeeze(-1) + torch.exp(logits - m).sum(dim=1).log()).mean()
    assert failed(6, cross_entropy=wrong_axis).hint.endswith("it drops the wrong one")

    def past_p_dropped(logits, temperature=1.0, top_k=None, top_p=None):  # up to and including, the first kept
        probs = ANSWERS.next_char_probs(logits, temperature, top_k)
        ordered, order = probs.sort(dim=-1, descending=True)
        drop = ordered.cumsum(dim=-1) > (top_p if top_p is not None else 2.0)
        drop[:, 0] = False
        kept = probs.masked_fill(drop.scatter(-1, order, drop), 0.0)
        return kept / kept.sum(dim=-1, keepdim=True)
    assert failed(8, next_char_probs=past_p_dropped).what.endswith("carries the mass past p was dropped")

    def over_the_batch(logits, temperature=1.0, top_k=None, top_p=None):
        return F.softmax(logits, dim=0)
    assert failed(8, next_char_probs=over_the_batch).hint.startswith("each column sums to 1, not each row")

    def probabilities_divided(logits, temperature=1.0, top_k=None, top_p=None):
        if temperature == 0:
            return ANSWERS.next_char_probs(logits, 0)
        probs = F.softmax(logits, dim=-1) / temperature
        return probs / probs.sum(dim=-1, keepdim=True)  # which undoes the temperature
    assert failed(8, next_char_probs=probabilities_divided).hint.startswith("the temperature changed nothing")

    def not_renormalised(logits, temperature=1.0, top_k=None, top_p=None):
        return F.softmax(logits, dim=-1) / (temperature or 1.0)
    assert failed(8, next_char_probs=not_renormalised).hint.startswith("the temperature divided the probabilities "
                                                                       "(the rows sum to 1/T = 2)")

    class NoFirstCall(ANSWERS.KVCache):  # torch.cat on the empty slot
        def append(self, layer, k, v):
            self.k[layer], self.v[layer] = torch.cat((self.k[layer], k), dim=2), torch.cat((self.v[layer], v), dim=2)
            return self.k[layer], self.v[layer]
    assert "before its first append" in failed(9, KVCache=NoFirstCall).hint

    def heads_not_returned(x, c_attn, c_proj, n_head):  # a helper per head that forgets its return
        def head(h):
            x @ c_attn.T
        return torch.cat([head(h) for h in range(n_head)], dim=-1) @ c_proj.T
    no_return = failed(4, multi_head_attention=heads_not_returned)
    assert "a function that ends without a `return` gives None" in no_return.hint

    def weight_of_its_own(x, c_fc, c_proj):  # a fresh nn.Linear where c_proj was given
        return torch.nn.Linear(4 * x.size(-1), x.size(-1), bias=False)(F.gelu(x @ c_fc.T))
    assert failed(5, mlp=weight_of_its_own).hint.endswith("use the weights given")

    def float_ids(model):
        states = torch.tensor([[(i >> 2) & 1, (i >> 1) & 1, i & 1] for i in range(8)], dtype=torch.float)
        return F.softmax(model(states)[0][:, -1], dim=-1)
    assert failed(10, transition_probs=float_ids).hint.startswith("ids index an embedding's rows")


def test_an_average_in_float64_is_refused_as_the_other_parts_are():
    """Exercise 2's weights @ x is attention's: float64 from .double() or dtype=torch.float64 fails as in 3 to 5."""
    def built_in_float64(x):
        T = x.size(1)
        weights = torch.tril(torch.ones(T, T, dtype=torch.float64))
        return weights / weights.sum(dim=1, keepdim=True) @ x.double()
    for wrong in (built_in_float64, lambda x: ANSWERS.causal_average(x).double()):
        result = failed(2, causal_average=wrong)
        assert result.what == "out (B, T, C): expected dtype float32, got float64"
        assert result.hint.startswith("keep the input's dtype (float32)")


def test_a_model_left_in_another_mode_than_it_was_given_is_named():
    """Exercise 10 reads the chain off the caller's model: a switch to eval or train mode that is not undone lasts
    after it returns (nanoGPT's estimate_loss ends with model.train(), which turns an evaluating model's dropout
    on). Switching and putting the mode back passes, as does not switching at all."""
    def eval_then_train(model):  # nanoGPT's pair, around the reading
        model.eval()
        probs = ANSWERS.transition_probs(model)
        model.train()
        return probs
    result = failed(10, transition_probs=eval_then_train)
    assert result.what == "transition_probs left the model in train mode; it was given in eval mode"
    assert "model.train(was_training)" in result.hint

    def eval_only(model):
        model.eval()
        return ANSWERS.transition_probs(model)
    result = failed(10, transition_probs=eval_only)
    assert result.what == "transition_probs left the model in eval mode; it was given in train mode"

    def part_switched(model):
        model.transformer.h[0].train()
        return ANSWERS.transition_probs(model)
    assert failed(10, transition_probs=part_switched).what.startswith("transition_probs left part of the model")

    def put_back(model):
        was_training = model.training
        model.eval()
        probs = ANSWERS.transition_probs(model)
        model.train(was_training)
        return probs
    assert run(EXERCISES[9], answered(transition_probs=put_back)).status == "passed"


@pytest.mark.parametrize("name, how, instead", [
    ("check", ["exercises/check.py", "3"], "check 3"), ("check", ["-m", "exercises.check"], "check"),
    ("plug", ["exercises/plug.py", "3"], "train 3"), ("plug", ["-m", "exercises.plug"], "train --help")])
def test_a_checker_file_run_by_itself_says_how_to_run_the_exercises(name, how, instead):
    """python exercises/check.py puts exercises/ first on sys.path, where the repo's modules are not found;
    python -m exercises.check ran nothing and said nothing."""
    run = subprocess.run([sys.executable, *how], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr == (f"error: exercises/{name}.py is not a command of its own — from the repo's folder: "
                          f"python -m exercises {instead}\n")


def test_the_mistakes_of_an_eleventh_learner_are_named():
    """Found by a learner solving 1, 2, 4 and 7 with mistakes made on purpose: hints that pointed elsewhere."""
    def multi(x, c_attn, c_proj, n_head, pair=False, heads_first=False):
        B, T, C = x.shape
        shape = (B, n_head, T, C // n_head) if heads_first else (B, T, n_head, C // n_head)
        q, k, v = (t.view(shape) if heads_first else t.view(shape).transpose(1, 2) for t in (x @ c_attn.T).chunk(3, 2))
        att = (q @ k.transpose(-2, -1) / math.sqrt(C // n_head)).masked_fill(torch.ones(T, T).triu(1) == 1, -math.inf)
        weights = F.softmax(att, dim=-1)
        y = (weights @ v).transpose(1, 2).reshape(B, T, C) @ c_proj.T
        return (y, weights) if pair else y
    pair = failed(4, multi_head_attention=lambda *a: multi(*a, pair=True))  # exercise 3's habit, carried on
    assert (pair.what, pair.hint) == ("out (B, T, C): expected a tensor, got tuple",
                                      "return one tensor, as the docstring says")
    heads_first = failed(4, multi_head_attention=lambda *a: multi(*a, heads_first=True))  # no transpose, but chunk's
    assert heads_first.hint.startswith("after a transpose, or on a piece that chunk or split cut from the last axis")
    assert "then transpose(1, 2) (straight to (B, nh, T, hs) mixes positions with heads)" in heads_first.hint

    as_came = failed(10, transition_probs=lambda model: model(torch.zeros(8, 3, dtype=torch.long)))  # no [0]
    assert (as_came.what, as_came.hint) == ("probs (8, 2): expected a tensor, got tuple", TUPLE_HINT)
    maxed = failed(4, multi_head_attention=lambda *a: multi(*a).max(dim=-1, keepdim=True))  # (no .values)
    assert maxed.what == "out (B, T, C): expected a tensor, got torch.return_types.max"
    assert maxed.hint.startswith("x.max(dim) returns (values, indices): take .values")

    def averaged(x, weights):
        return weights(x.size(1)) @ x
    upper = lambda T: torch.triu(torch.ones(T, T)) / torch.triu(torch.ones(T, T)).sum(dim=1, keepdim=True)
    through_softmax = lambda T: F.softmax(torch.tril(torch.ones(T, T)), dim=-1)  # the mask's 0s weigh exp(0) = 1
    for weights in (upper, through_softmax):  # a mask, of the wrong kind: not "no causal mask" alone
        leaks = failed(2, causal_average=lambda x: averaged(x, weights))
        assert leaks.hint.startswith("the future leaks in, with no causal mask or one that lets it through")


def test_the_mistakes_of_a_twelfth_learner_are_named():
    """Found by a learner solving 3, 5, 6, 8, 9 and 10 with mistakes made on purpose: hints that pointed elsewhere,
    or said nothing."""
    def head(x, key, query, value, swap=False, keep_mask=True):
        T = x.size(1)
        att = (x @ query) @ (x @ key).transpose(-2, -1) / math.sqrt(key.size(-1))
        masked = att.masked_fill(torch.tril(torch.ones(T, T)) == 0, float("-inf"))  # a new tensor
        weights = F.softmax(masked if keep_mask else att, dim=-1)
        return (weights, weights @ (x @ value)) if swap else (weights @ (x @ value), weights)
    swapped = failed(3, attention_head=lambda *a: head(*a, swap=True))
    assert (swapped.what, swapped.hint) == ("out and weights came back in the other order",
                                            "return (out, weights), out first")
    assert "masked_fill returns a new tensor, so keep it" in failed(3, attention_head=lambda *a: head(
        *a, keep_mask=False)).hint

    def summing_logits(logits, temperature=1.0, top_k=None, top_p=None):  # the nucleus measured in logits
        if not temperature or top_p is None:
            return ANSWERS.next_char_probs(logits, temperature, top_k, top_p)
        logits = logits / temperature
        if top_k is not None and top_k < logits.size(-1):
            logits = logits.masked_fill(logits < torch.topk(logits, top_k).values[:, [-1]], float("-inf"))
        ordered, order = logits.sort(dim=-1, descending=True)
        drop = ordered.cumsum(dim=-1) - ordered >= top_p
        return F.softmax(logits.masked_fill(drop.scatter(-1, order, drop), float("-inf")), dim=-1)
    assert failed(8, next_char_probs=summing_logits).what.endswith("top-p's running sum was taken over the logits")

    class CountsToT(ANSWERS.KVCache):
        def positions(self, T, device=None):
            return torch.arange(self.length, T, device=device)  # (the end is length + T)
    assert "torch.arange(length, length + T)" in failed(9, KVCache=CountsToT).hint
    assert failed(9, KVCache=CountsToT).hint.startswith("torch.arange(start, end) counts up from start to end - 1")

    ids = torch.tensor([[int(bit) for bit in f"{state:03b}"] for state in range(8)])  # (8, 3)
    no_softmax = failed(10, transition_probs=lambda model: model(ids)[0][:, -1])  # the logits themselves
    assert no_softmax.hint.startswith("probabilities are a softmax of the logits")
    indexed = failed(10, transition_probs=lambda model: F.softmax(model(ids)[:, -1, :], dim=-1))
    assert indexed.what == "model(idx)'s output was indexed as a tensor ([:, -1, :])"


def test_heads_left_apart_and_a_gather_left_unsqueezed_are_named():
    """Mistakes that a shapes error alone leaves open: exercise 4's heads joined on the time axis, or not joined, reach
    c_proj hs wide; exercise 6's gather keeps its last axis, which lines up against the (B, T) logsumexp wrongly."""
    def heads(x, c_attn, c_proj, n_head, dim=1, join=True):
        B, T, C = x.shape
        hs = C // n_head
        q, k, v = (x @ c_attn.T).split(C, dim=2)
        outs = []
        for h in range(n_head):
            s = slice(h * hs, (h + 1) * hs)
            att = (q[..., s] @ k[..., s].transpose(-2, -1) / math.sqrt(hs)).masked_fill(
                torch.tril(torch.ones(T, T)) == 0, float("-inf"))
            outs.append(F.softmax(att, dim=-1) @ v[..., s])  # (B, T, hs)
        y = torch.cat(outs, dim=dim) if join else torch.stack(outs, dim=1)  # (B, nh*T, hs) or (B, nh, T, hs)
        return y @ c_proj.T
    for wrong in (dict(dim=1), dict(join=False)):
        assert failed(4, multi_head_attention=lambda *a, wrong=wrong: heads(*a, **wrong)).hint.startswith(
            "the heads reached c_proj apart")

    def unsqueezed(logits, targets):
        m = logits.max(dim=-1, keepdim=True).values  # (B, T, 1)
        logsumexp = m.squeeze(-1) + (logits - m).exp().sum(dim=-1).log()  # (B, T)
        return (logsumexp - logits.gather(-1, targets.unsqueeze(-1))).mean()  # (B, T) against (B, T, 1)
    assert "gather keeps the axis it gathered along" in failed(6, cross_entropy=unsqueezed).hint

    def max_over_time(logits, targets):  # 2-D cross-entropy's habit: the max over dim=1, which here is T
        m = logits.max(dim=1).values  # (B, V), where (B, T, 1) was wanted: the same message as the gather's
        logsumexp = m + (logits - m).exp().sum(dim=-1).log()
        return (logsumexp - logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)).mean()
    assert "gather" not in failed(6, cross_entropy=max_over_time).hint

    def heads_sliced_first(x, c_attn, c_proj, n_head):  # x cut into heads before c_attn: not c_proj's mistake
        hs = x.size(-1) // n_head
        return torch.cat([x[..., h * hs:(h + 1) * hs] @ c_attn.T for h in range(n_head)], dim=-1) @ c_proj.T
    assert not failed(4, multi_head_attention=heads_sliced_first).hint.startswith("the heads reached c_proj apart")


def test_the_mistakes_of_a_thirteenth_learner_are_named():
    """Found by a learner solving 3, 5, 7, 8 and 9 with mistakes made on purpose: hints that pointed elsewhere."""
    def zero_fill(logits, temperature=1.0, top_k=None, top_p=None):  # top-k's dropped logits set to 0, not -inf
        if not temperature or top_k is None:
            return ANSWERS.next_char_probs(logits, temperature, top_k, top_p)
        logits = logits / temperature
        if top_k < logits.size(-1):
            logits = logits.masked_fill(logits < torch.topk(logits, top_k).values[:, [-1]], 0.0)
        return ANSWERS.next_char_probs(logits, 1.0, None, top_p)
    assert "set them to float('-inf')" in failed(8, next_char_probs=zero_fill).hint

    class JoinedNotKept(ANSWERS.KVCache):  # the first step's keys stored; each later step's joined, then lost
        def append(self, layer, k, v):
            if self.k[layer] is None:
                self.k[layer], self.v[layer] = k, v
                return k, v
            return torch.cat((self.k[layer], k), dim=2), torch.cat((self.v[layer], v), dim=2)
    assert failed(9, KVCache=JoinedNotKept).what.startswith("append's third call returned the first call's keys")

    def float_mask(x, key, query, value):  # tril's 0s and 1s given to masked_fill as they are
        T = x.size(1)
        att = (x @ query) @ (x @ key).transpose(-2, -1) / math.sqrt(key.size(-1))
        weights = F.softmax(att.masked_fill(torch.triu(torch.ones(T, T), diagonal=1), float("-inf")), dim=-1)
        return weights @ (x @ value), weights
    assert failed(3, attention_head=float_mask).hint.startswith("masked_fill's mask says where to fill, True or False")

    def warmup_written_in(it, warmup_iters, max_iters, lr, min_lr):  # right for the first numbers the check tries
        return ANSWERS.learning_rate(it, 10, max_iters, lr, min_lr)
    where = re.search(r"at step (\d+): ", failed(7, learning_rate=warmup_written_in).what)
    # warmup 10 where it is 100: furthest off at step 14, the list's third (every 7th step is tried): the step, not 2
    assert where and where[1] == "14"


def test_a_missing_file_and_another_files_grad_mode_are_told_apart(tmp_path, monkeypatch):
    """A file moved away said "it raised ModuleNotFoundError"; a torch.set_grad_enabled(False) on exercise 1's
    top line failed 3 to 6, each told to take no_grad out of its own code."""
    import exercises
    from exercises.check import run
    work = tmp_path / "exercises"
    shutil.copytree(ROOT / "exercises", work, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(exercises, "__path__", [str(work)])
    for name in [n for n in sys.modules if n.startswith("exercises.ex")]:
        monkeypatch.delitem(sys.modules, name)
    (work / "ex03_head.py").unlink()
    assert run(EXERCISES[3 - 1]) == Result("failed", "exercises/ex03_head.py is not there", "put it back as it came, "
                                          "with git checkout exercises/ex03_head.py, and write your answer in it")
    # a folder of its name, where Python imports the folder (and it said "keep the name the file gives it"), and a
    # folder where the file was (where git checkout fails)
    (work / "ex03_head").mkdir()
    assert run(EXERCISES[3 - 1]).what == "exercises/ex03_head.py is not there"
    (work / "ex03_head.py").mkdir()
    assert run(EXERCISES[3 - 1]) == Result("failed", "exercises/ex03_head.py is a folder, not the exercise's file",
                                          "move the folder away, then put the file back as it came, with git "
                                          "checkout exercises/ex03_head.py, and write your answer in it")
    (work / "ex01_bigram.py").write_text(  # (in the function itself, it fails: test_..._seventeenth_learner_...)
        "import torch\n"
        "torch.set_grad_enabled(False)  # a top line: on import, for the whole process\n"
        "def bigram_probs(ids, vocab_size, smoothing=1.0):\n"
        "    counts = torch.zeros(vocab_size, vocab_size).index_put_((ids[:-1], ids[1:]), torch.ones(len(ids) - 1),\n"
        "                                                            accumulate=True) + smoothing\n"
        "    return counts / counts.sum(dim=1, keepdim=True)\n")
    try:
        assert run(EXERCISES[1 - 1]).status == "passed"
        assert torch.is_grad_enabled() and run(EXERCISES[6 - 1], answered()).status == "passed"
        def own_switch(logits, targets):
            torch.set_grad_enabled(False)
            return ANSWERS.cross_entropy(logits, targets)
        own = run(EXERCISES[6 - 1], answered(cross_entropy=own_switch))  # its own switch: its own failure
        assert own.what.startswith("own_switch left autograd switched off when it returned") and \
            torch.is_grad_enabled()  # (it said "the loss carries no gradient back to the logits", before that check)
        # so with the default dtype: exercise 10's right answer failed after a float64 on another file's top line
        # ("transition_probs converted the caller's model to float64")
        (work / "ex01_bigram.py").write_text((work / "ex01_bigram.py").read_text().replace(
            "torch.set_grad_enabled(False)", "torch.set_default_dtype(torch.float64)"))
        monkeypatch.delitem(sys.modules, "exercises.ex01_bigram")
        run(EXERCISES[1 - 1])
        assert torch.get_default_dtype() == torch.float32 and run(EXERCISES[10 - 1], answered()).status == "passed"
    finally:
        torch.set_grad_enabled(True)
        torch.set_default_dtype(torch.float32)


def test_the_mistakes_of_a_fourteenth_learner_are_named():
    """Found by a learner solving 1, 2, 4, 6 and 10 with mistakes made on purpose: answers the check passed, and
    hints that pointed elsewhere or restated the formula."""
    def bigram(tweak_ids=lambda ids: ids, divide=torch.true_divide, transpose=False):
        def bigram_probs(ids, vocab_size, smoothing=1.0):
            counts = bigram_counts(tweak_ids(ids), vocab_size, smoothing).float()
            probs = divide(counts, counts.sum(dim=1, keepdim=True))
            return probs.T if transpose else probs
        return bigram_probs
    assert failed(1, bigram_probs=bigram(divide=torch.floor_divide)).hint.startswith("divided with //?")
    assert failed(1, bigram_probs=bigram(transpose=True)).what.startswith("row i holds what comes before i")
    assert failed(1, bigram_probs=bigram(lambda ids: ids[1:])).what == "the first pair was not counted"
    assert failed(1, bigram_probs=bigram(lambda ids: torch.cat([ids, ids[:1]]))).what.startswith("one pair too many")

    def average(diagonal=0, side=False, kept=True, grad=True):
        def causal_average(x):
            T = x.size(1)
            with torch.enable_grad() if grad else torch.no_grad():
                wei = torch.zeros(T, T)
                filled = wei.masked_fill(torch.tril(torch.ones(T, T), diagonal=diagonal) == 0, float("-inf"))
                wei = F.softmax(filled if kept else wei, dim=-1)
                return (x.transpose(1, 2) @ wei).transpose(1, 2) if side else wei @ x
        return causal_average
    assert failed(2, causal_average=average(side=True)).hint.startswith("out = wei @ x")
    assert failed(2, causal_average=average(diagonal=1)).hint.startswith("the mask lets position t see t + 1")
    assert "masked_fill returns a new tensor" in failed(2, causal_average=average(kept=False)).hint
    assert failed(2, causal_average=average(grad=False)).what == "out (B, T, C) carries no gradient back to x"

    def multihead(hs=None, mask_size=None, scale=True):
        def multi_head_attention(x, c_attn, c_proj, n_head):
            B, T, C = x.shape
            size = hs or C // n_head
            q, k, v = ((t.view(B, T, -1, size).transpose(1, 2)) for t in (x @ c_attn.T).split(C, dim=2))
            att = q @ k.transpose(-2, -1)
            att = att / (size ** 0.5 if scale is True else scale(T, size))
            n = mask_size(C) if mask_size else T
            att = att.masked_fill(torch.tril(torch.ones(n, n))[:T, :T] == 0, float("-inf"))
            return (F.softmax(att, dim=-1) @ v).transpose(1, 2).reshape(B, T, C) @ c_proj.T
        return multi_head_attention
    for wrong in (multihead(hs=6), multihead(mask_size=lambda C: C), multihead(scale=lambda T, hs: 6 ** 0.5)):
        assert failed(4, multi_head_attention=wrong).what.startswith("out (B, T, C) for T = 11, C = 8, n_head 2")
    assert failed(4, multi_head_attention=multihead(scale=lambda T, hs: T ** 0.5)).hint.startswith("scaled by sqrt(T)")
    assert "2 here, as is sqrt(hs) rounded down" in failed(4, multi_head_attention=multihead(
        scale=lambda T, hs: int(hs ** 0.5))).hint

    def one_hot_loss(logits, targets):  # the one-hot's width read off the targets
        m = logits.max(dim=-1, keepdim=True).values
        lse = (m + (logits - m).exp().sum(dim=-1, keepdim=True).log()).squeeze(-1)
        return (lse - (logits * F.one_hot(targets)).sum(dim=-1)).mean()
    assert failed(6, cross_entropy=one_hot_loss).hint.startswith("it is right only when the targets name the last")

    def frozen(model):
        model.requires_grad_(False)
        return ANSWERS.transition_probs(model)
    assert failed(10, transition_probs=frozen).what.startswith("transition_probs left the model's weights with "
                                                              "requires_grad=False")

    def forward_called(model):  # model.forward skips the check's wrapping of the output: a plain tuple
        ids = torch.tensor([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)])
        return model.forward(ids).softmax(dim=-1)[:, -1]
    assert "model(idx) returns a tuple, (logits, loss)" in failed(10, transition_probs=forward_called).hint

    def float_size(x, c_attn, c_proj, n_head):
        B, T, C = x.shape
        q, k, v = ((t.view(B, T, n_head, C / n_head).transpose(1, 2)) for t in (x @ c_attn.T).split(C, dim=2))
        return ANSWERS.multi_head_attention(x, c_attn, c_proj, n_head)
    assert failed(4, multi_head_attention=float_size).hint.startswith("a size must be an integer")

    def split_as_one(x, c_attn, c_proj, n_head):  # split's tuple taken for a tensor
        qkv = (x @ c_attn.T).split(x.size(-1), dim=2)
        return qkv.view(x.shape)
    assert failed(4, multi_head_attention=split_as_one).hint.startswith("a tuple where a tensor was wanted: split and")

    def through_numpy(x):
        T = x.size(1)
        wei = torch.tril(torch.ones(T, T))
        return torch.from_numpy((wei / wei.sum(dim=1, keepdim=True)).numpy() @ x.numpy())
    assert failed(2, causal_average=through_numpy).hint.startswith("stay with torch's operations")

    def where_of_floats(x, key, query, value):  # torch.where given tril's 0s and 1s as its condition
        T = x.size(1)
        att = (x @ query) @ (x @ key).transpose(-2, -1) / math.sqrt(key.size(-1))
        weights = F.softmax(torch.where(torch.tril(torch.ones(T, T)), att, float("-inf")), dim=-1)
        return weights @ (x @ value), weights
    assert failed(3, attention_head=where_of_floats).hint.startswith("torch.where's condition says which to take")

    def one_max(logits, temperature=1.0, top_k=None, top_p=None):  # greedy's max over the whole batch
        if temperature == 0:
            return (logits == logits.max()).to(logits.dtype)
        return ANSWERS.next_char_probs(logits, temperature, top_k, top_p)
    assert failed(8, next_char_probs=one_max).hint.startswith("greedy took one max for the whole batch")

    def summed_down_the_batch(logits, temperature=1.0, top_k=None, top_p=None):  # top-p's cumsum over dim=0
        probs = ANSWERS.next_char_probs(logits, temperature, top_k, None)
        if top_p is None or not temperature:
            return probs
        ordered, order = probs.sort(dim=-1, descending=True)
        drop = ordered.cumsum(dim=0) - ordered >= top_p
        kept = probs.masked_fill(drop.scatter(-1, order, drop), 0.0)
        return kept / kept.sum(dim=-1, keepdim=True)
    assert failed(8, next_char_probs=summed_down_the_batch).what.endswith("top-p's running sum ran down the batch")

    def loss(scale=1.0, per_sequence=False):
        def cross_entropy(logits, targets):
            m = logits.max(dim=-1, keepdim=True).values
            lse = (m + (logits - m).exp().sum(dim=-1, keepdim=True).log()).squeeze(-1)  # (B, T)
            losses = (lse - logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)) * scale  # (B, T)
            return losses.mean(dim=1).sum() if per_sequence else losses.mean()
        return cross_entropy
    assert failed(6, cross_entropy=loss(per_sequence=True)).what.endswith("B = 2 times too much")
    assert failed(6, cross_entropy=loss(-1.0)).what.endswith("the sign is flipped")
    assert failed(6, cross_entropy=loss(1 / math.log(2))).what.endswith("in bits, not nats")

    def by_columns(x):
        T = x.size(1)
        wei = torch.zeros(T, T).masked_fill(torch.tril(torch.ones(T, T)) == 0, float("-inf"))
        return F.softmax(wei, dim=0) @ x
    assert failed(2, causal_average=by_columns).what == "each column of the weights sums to 1, not each row"

    for what, wrong in (("GELU applied twice", lambda x, c_fc, c_proj: F.gelu(F.gelu(x @ c_fc.T)) @ c_proj.T),
                        ("GELU before c_fc, on x", lambda x, c_fc, c_proj: F.gelu(x) @ c_fc.T @ c_proj.T),
                        ("GELU after c_proj", lambda x, c_fc, c_proj: F.gelu(x @ c_fc.T @ c_proj.T)),
                        ("no GELU", lambda x, c_fc, c_proj: x @ c_fc.T @ c_proj.T)):
        assert failed(5, mlp=wrong).what == f"mlp (B, T, C): {what}"


def test_the_mistakes_of_a_fifteenth_learner_are_named():
    """Found by a learner solving 3, 5, 7, 8 and 9 again: a sampler the check passed, and hints that named another
    cause."""
    def twice(logits, temperature=1.0, top_k=None, top_p=None):  # top-p's nucleus measured at T twice
        if not temperature or top_p is None:
            return ANSWERS.next_char_probs(logits, temperature, top_k, top_p)
        logits = logits / temperature
        if top_k is not None and top_k < logits.size(-1):
            logits = logits.masked_fill(logits < torch.topk(logits, top_k).values[:, [-1]], float("-inf"))
        probs, order = F.softmax(logits / temperature, dim=-1).sort(dim=-1, descending=True)
        drop = (probs.cumsum(dim=-1) - probs >= top_p).scatter(-1, order, probs.cumsum(dim=-1) - probs >= top_p)
        return F.softmax(logits.masked_fill(drop, float("-inf")), dim=-1)
    assert failed(8, next_char_probs=twice).hint.startswith("top-p measured the probabilities with the temperature "
                                                             "applied twice")

    def greedy_kept_axis(logits, temperature=1.0, top_k=None, top_p=None):
        if not temperature:
            return F.one_hot(logits.argmax(dim=-1, keepdim=True), logits.size(-1)).to(logits.dtype)
        return ANSWERS.next_char_probs(logits, temperature, top_k, top_p)
    assert failed(8, next_char_probs=greedy_kept_axis).hint.startswith("greedy's one-hot has an axis too many")

    def transposed_onto_v(x, key, query, value):
        out, weights = ANSWERS.attention_head(x, key, query, value)
        return weights.transpose(-2, -1) @ (x @ value), weights
    assert failed(3, attention_head=transposed_onto_v).what.startswith("out is the weights' transpose times the values")

    def squeezed(x, key, query, value):
        return tuple(t.squeeze() for t in ANSWERS.attention_head(x, key, query, value))
    assert failed(3, attention_head=squeezed).what.endswith("the batch's axis of 1 dropped (by a squeeze()?)")

    mlp_mistakes = {"x added to the MLP's output": lambda x, c_fc, c_proj: x + ANSWERS.mlp(x, c_fc, c_proj),
                    "the nonlinearity is SiLU": lambda x, c_fc, c_proj: F.silu(x @ c_fc.T) @ c_proj.T}
    for what, wrong in mlp_mistakes.items():
        assert failed(5, mlp=wrong).what == f"mlp (B, T, C): {what}"

    def schedule(decay):
        def learning_rate(it, warmup_iters, max_iters, lr, min_lr):
            if it < warmup_iters:
                return lr * (it + 1) / (warmup_iters + 1)
            return decay((it - warmup_iters) / (max_iters - warmup_iters), lr, min_lr)
        return learning_rate
    assert failed(7, learning_rate=schedule(lambda p, lr, min_lr: lr - (lr - min_lr) * p)).what == (
        "the decay is a straight line, not a cosine")
    assert failed(7, learning_rate=schedule(lambda p, lr, min_lr: min_lr + (1 + math.cos(math.pi * p)) * (
        lr - min_lr))).what.endswith("the 0.5 left out")
    assert failed(7, learning_rate=schedule(lambda p, lr, min_lr: min_lr + math.cos(math.pi / 2 * p) * (
        lr - min_lr))).what.startswith("the decay is a quarter of a cosine")
    assert failed(7, learning_rate=lambda it, warmup_iters, max_iters, lr, min_lr: lr * it / (warmup_iters + 1) if (
        it < warmup_iters) else ANSWERS.learning_rate(it, warmup_iters, max_iters, lr, min_lr)).what.startswith(
        "the warmup starts at 0")
    swapped = failed(7, learning_rate=schedule(lambda p, lr, min_lr: decayed(p, min_lr, lr)))
    assert swapped.what.startswith("the decay runs backwards") and "lr and min_lr swapped" in swapped.hint
    seen = {}

    def kept(it, warmup_iters, max_iters, lr, min_lr):  # a memo keyed on the step alone
        return seen.setdefault(it, ANSWERS.learning_rate(it, warmup_iters, max_iters, lr, min_lr))
    assert "nor values kept from an earlier call" in failed(7, learning_rate=kept).hint
    assert failed(7, learning_rate=lambda it, warmup_iters, max_iters, lr, min_lr: lr).what.endswith(
        "the video's constant")

    def multiplied(logits, temperature=1.0, top_k=None, top_p=None):
        return ANSWERS.next_char_probs(logits * temperature * temperature if temperature else logits, temperature,
                                       top_k, top_p)  # (the answer divides by it once: times it, in all)
    assert failed(8, next_char_probs=multiplied).hint.startswith("the logits were multiplied by the temperature")

    class AskedIfFilled(ANSWERS.KVCache):  # a slot tested by its truth, not with `is None`
        def append(self, layer, k, v):
            if not self.k[layer]:
                self.k[layer], self.v[layer] = k, v
                return k, v
            return super().append(layer, k, v)
    assert failed(9, KVCache=AskedIfFilled).hint.startswith("a tensor of several numbers is neither true nor false")

    def stream_normed(x, attention, feed_forward, ln_1, ln_2):
        x = ln_1(x)
        x = x + attention(x)
        return x + feed_forward(ln_2(x))

    def stale(x, attention, feed_forward, ln_1, ln_2):
        h = ln_1(x)
        x = x + attention(h)
        return x + feed_forward(ln_2(h))

    def ended_normed(x, attention, feed_forward, ln_1, ln_2):
        return ln_2(ANSWERS.block(x, attention, feed_forward, ln_1, ln_2))

    def halved(x, attention, feed_forward, ln_1, ln_2):
        x = x + 0.5 * attention(ln_1(x))
        return x + 0.5 * feed_forward(ln_2(x))
    class Swapped(ANSWERS.KVCache):  # the values kept where the keys go
        def append(self, layer, k, v):
            return super().append(layer, v, k)

    class Shared(ANSWERS.KVCache):  # one store on the class, for every cache
        store = {}

        def append(self, layer, k, v):
            Shared.store[layer] = k if layer not in Shared.store else torch.cat((Shared.store[layer], k), dim=2)
            return Shared.store[layer], super().append(layer, k, v)[1]
    assert failed(9, KVCache=Swapped).what == "append returned the values for the keys and the keys for the values"
    assert "another cache's keys came with it" in failed(9, KVCache=Shared).what

    for wrong, what in ((stream_normed, "x itself was normalised (x = ln_1(x))"),
                        (stale, "the MLP read the block's input normalised"),
                        (ended_normed, "the block's output went through ln_2"),
                        (halved, "each part's result was scaled by 0.5")):
        assert failed(5, block=wrong).what.startswith(what)


def decayed(progress, lr, min_lr, shape=lambda progress: 0.5 * (1 + math.cos(math.pi * progress))):
    return min_lr + shape(progress) * (lr - min_lr)


@pytest.mark.parametrize("decay, warmup, named", [  # (it, w, m, lr, min_lr) -> a mistake's lr; None: the right one
    (lambda it, w, m, lr, min_lr: decayed((it - w) / m, lr, min_lr), None, "progress divided by max_iters"),
    (lambda it, w, m, lr, min_lr: decayed((it - w) / (m - w), lr + min_lr, min_lr), None,
     "the decay starts at lr + min_lr"),
    (lambda it, w, m, lr, min_lr: max(min_lr, decayed((it - w) / (m - w), lr, 0.0)), None,
     "the decay is cut off at min_lr"),
    (None, lambda it, w, m, lr, min_lr: lr * (it + 1) / w, "the warmup reaches lr a step early"),
    (None, lambda it, w, m, lr, min_lr: min_lr + (lr - min_lr) * (it + 1) / (w + 1), "the warmup climbs from min_lr"),
])
def test_a_learners_schedule_mistakes_are_named(decay, warmup, named):
    """From a learner's mistakes in exercise 7: each got the formula restated, and each is named now."""
    def schedule(it, warmup_iters, max_iters, lr, min_lr):
        mistake = warmup if it < warmup_iters else decay
        return (mistake or ANSWERS.learning_rate)(it, warmup_iters, max_iters, lr, min_lr)
    assert named in failed(7, learning_rate=schedule).what


@pytest.mark.parametrize("block, named", [
    (lambda x, attention, feed_forward, ln_1, ln_2: x + attention(ln_1(x)) + feed_forward(ln_2(x)), "parallel block"),
    (lambda x, attention, feed_forward, ln_1, ln_2: x + attention(ln_1(x)) + feed_forward(ln_2(attention(ln_1(x)))),
     "the MLP read attention's output alone"),
    (lambda x, attention, feed_forward, ln_1, ln_2: ANSWERS.block(x, feed_forward, attention, ln_2, ln_1),
     "the MLP came before attention"),
])
def test_a_learners_block_mistakes_are_named(block, named):
    """From a learner's mistakes in exercise 5: each got the block's formula restated, and each is named now."""
    assert named in failed(5, block=block).what


def test_a_head_that_passes_on_its_keys_or_is_scaled_by_the_positions_is_named():
    """From a learner's mistakes in exercise 3: v made from the key, and hs read from the time axis (q.size(1))."""
    def head(x, key, query, value, v_from=None, hs_axis=-1):
        q, k = x @ query, x @ key
        v = x @ (v_from if v_from is not None else value)
        T = x.size(1)
        att = (q @ k.transpose(-2, -1) / math.sqrt(q.size(hs_axis))).masked_fill(
            torch.tril(torch.ones(T, T)) == 0, float("-inf"))
        weights = F.softmax(att, dim=-1)
        return weights @ v, weights
    assert failed(3, attention_head=lambda x, key, query, value: head(x, key, query, value, v_from=key)).what == (
        "out is the weights times the keys or the queries, not the values")
    assert failed(3, attention_head=lambda *a: head(*a, hs_axis=1)).hint.startswith("scaled by sqrt(T)")


def test_the_mistakes_of_a_sixteenth_learner_are_named():
    """hs ** 1/2 for the square root (** binds before /), a scale by the batch size, and top-p's two batch slips."""
    def head(scale):
        def attention_head(x, key, query, value):
            q, k, v = x @ query, x @ key, x @ value  # (B, T, hs)
            att = scale(q @ k.transpose(-2, -1), x.size(0), k.size(-1))
            T = x.size(1)
            att = att.masked_fill(torch.tril(torch.ones(T, T)) == 0, float("-inf")).softmax(dim=-1)
            return att @ v, att
        return attention_head
    for scale in (lambda att, B, hs: att / hs**1/2, lambda att, B, hs: att / (hs**1/2)):  # (as a learner writes them)
        assert failed(3, attention_head=head(scale)).hint.startswith("hs ** 1/2 is (hs ** 1) / 2")
    assert failed(3, attention_head=head(lambda att, B, hs: att / math.sqrt(B))).hint.startswith("scaled by sqrt(B)")

    def multi_head_attention(x, c_attn, c_proj, n_head):
        B, T, C = x.shape
        hs = C // n_head
        q, k, v = ((x @ c_attn.T).split(C, dim=2)[i].view(B, T, n_head, hs).transpose(1, 2) for i in range(3))
        att = (q @ k.transpose(-2, -1) / (hs**1/2)).masked_fill(torch.tril(torch.ones(T, T)) == 0, float("-inf"))
        return (att.softmax(dim=-1) @ v).transpose(1, 2).reshape(B, T, C) @ c_proj.T
    assert failed(4, multi_head_attention=multi_head_attention).hint.startswith("hs ** 1/2 is (hs ** 1) / 2")

    def elif_(logits, temperature=1.0, top_k=None, top_p=None):  # top-k, or else top-p
        return ANSWERS.next_char_probs(logits, temperature, top_k, top_p if top_k is None else None)
    assert failed(8, next_char_probs=elif_).what.endswith("only one of top-k and top-p cut")

    def row_0s(logits, temperature=1.0, top_k=None, top_p=None):  # written for a batch of 1
        if not temperature or top_p is None:
            return ANSWERS.next_char_probs(logits, temperature, top_k, top_p)
        logits = keep_top_k(logits / temperature, top_k) if top_k is not None else logits / temperature
        probs, order = F.softmax(logits, dim=-1)[0].sort(descending=True)
        ids = order[1:][(probs.cumsum(dim=-1) - probs)[1:] >= top_p]  # row 0's ids past the nucleus
        logits[:, ids] = float("-inf")
        return F.softmax(logits, dim=-1)
    assert failed(8, next_char_probs=row_0s).what.endswith("row 0's nucleus was cut from every row")


def test_the_hints_read_the_words_of_python_3_10_pytorch_2_4_and_a_cuda_build_without_a_gpu(monkeypatch):
    """Found by the suite under PyTorch 2.4.1 (a CUDA build, on a machine without a GPU) and Python 3.10: each of
    these errors is worded otherwise there, and its hint was missing."""
    from exercises import check
    for usual, other in ((AssertionError("Torch not compiled with CUDA enabled"),
                          RuntimeError("Found no NVIDIA driver on your system. Please check that you have an "
                                       "NVIDIA GPU")),
                         (RuntimeError("upper bound and lower bound inconsistent with step sign"),
                          RuntimeError("upper bound and larger bound inconsistent with step sign"))):
        assert check.error_hint(other) == check.error_hint(usual) != ""

    def python_3_10(name):  # its import of a file with a NUL byte in it
        raise ValueError("source code string cannot contain null bytes")
    monkeypatch.setattr(check.importlib, "import_module", python_3_10)
    result = check.run(EXERCISES[1])
    assert result.what == ("it does not load: SyntaxError: source code string cannot contain null bytes "
                           "(ex02_averaging.py)") and result.hint == "save it again as text, in UTF-8"


def test_the_mistakes_of_a_seventeenth_learner_are_named():
    """Found by a learner making mistakes on purpose in 1, 2, 5, 6, 7, 9 and 10: three answers the check passed that
    break training (autograd left off, the model converted, weights only ever grown), a crash on the check's own
    line, and errors with no hint."""
    def switched_off(model):
        torch.set_grad_enabled(False)
        return ANSWERS.transition_probs(model)
    try:
        assert failed(10, transition_probs=switched_off).what == (
            "transition_probs left autograd switched off when it returned (torch.set_grad_enabled(False), or a "
            "no_grad() entered and never left)")
    finally:
        torch.set_grad_enabled(True)
    assert failed(10, transition_probs=lambda model: ANSWERS.transition_probs(model.double()).float()).what == (
        "transition_probs converted the caller's model to float64")

    def bits_unpadded(model):
        idx = torch.tensor([[int(b) for b in bin(i)[2:]] for i in range(8)])
        return model(idx)[0][:, -1].softmax(dim=-1)
    assert "format(i, '03b') pads to 3 bits" in failed(10, transition_probs=bits_unpadded).hint

    kept = {}

    def grown(x):  # the weights of the longest T so far, never cut to this call's
        T = x.size(1)
        if kept.get("T", 0) < T:
            tril = torch.tril(torch.ones(T, T))
            kept.update(T=T, weights=tril / tril.sum(dim=1, keepdim=True))
        return kept["weights"] @ x
    assert failed(2, causal_average=grown).what.startswith("out (B, T, C) for T = 4, after T = 11")
    assert failed(2, causal_average=lambda x: x.cumsum(dim=1) / torch.arange(x.size(1))[:, None]).what == (
        "position 0's output is inf or nan: a division by 0")

    def on_cuda(x):
        T = x.size(1)
        tril = torch.tril(torch.ones(T, T, device="cuda"))
        return tril / tril.sum(dim=1, keepdim=True) @ x
    if not torch.cuda.is_available():  # (written in, it fails only on a machine without one)
        assert failed(2, causal_average=on_cuda).hint.startswith("a device written in")

    masks = {}

    def head_grown(x, key, query, value):  # the video's tril buffer, made at the longest T so far and never cut
        T = x.size(1)
        masks["tril"] = masks["tril"] if masks.get("tril", torch.ones(0, 0)).size(0) >= T else torch.tril(
            torch.ones(T, T))
        q, k, v = x @ query, x @ key, x @ value
        att = (q @ k.transpose(-2, -1) / math.sqrt(k.size(-1))).masked_fill(masks["tril"] == 0, float("-inf"))
        return att.softmax(dim=-1) @ v, att.softmax(dim=-1)
    assert failed(3, attention_head=head_grown).what.startswith("out (B, T, hs) for T = 4, after T = 11")

    class FirstReturnsNothing(ANSWERS.KVCache):  # the return in the else branch alone
        def append(self, layer, k, v):
            if self.k[layer] is None:
                self.k[layer], self.v[layer] = k, v
            else:
                return super().append(layer, k, v)
    assert failed(9, KVCache=FirstReturnsNothing).what == (
        "append returned None on a layer's first call, not the pair (keys, values)")

    class Sized(ANSWERS.KVCache):
        def __init__(self, n_layer, block_size):
            super().__init__(n_layer)
    assert failed(9, KVCache=Sized).hint.startswith("keep the signature the file gives")

    def gap(it, warmup_iters, max_iters, lr, min_lr):  # < and >: step warmup_iters has no branch
        if it < warmup_iters or it > warmup_iters:
            return ANSWERS.learning_rate(it, warmup_iters, max_iters, lr, min_lr)
    assert failed(7, learning_rate=gap).what == (
        "learning_rate returned None at step 10 (warmup_iters 10, max_iters 110), not a number")

    assert failed(6, cross_entropy=lambda logits, targets: ANSWERS.cross_entropy(logits, targets) * targets.numel()
                  / logits.numel()).what.endswith("V = 7 times too little")  # (the sum / B*T*V)
    assert "divided by len(targets), which is B" in failed(6, cross_entropy=lambda logits, targets: (
        ANSWERS.cross_entropy(logits, targets) * targets.numel() / len(targets))).hint

    def indexed(logits, targets):  # arange(B) and arange(T) side by side, not crossed
        m = logits.max(dim=-1, keepdim=True).values
        lse = m[..., 0] + (logits - m).exp().sum(dim=-1).log()  # (B, T)
        return (lse - logits[torch.arange(logits.size(0)), torch.arange(logits.size(1)), targets]).mean()
    assert "torch.arange(B)[:, None] (B, 1)" in failed(6, cross_entropy=indexed).hint


def test_a_callable_object_answers_and_autograd_is_checked_in_7_and_9_too():
    """From the review: an object with __call__, or a functools.partial, has no __name__, which the check read on
    every call (a right answer failed); and exercises 7 and 9, whose parts the check calls directly, let a
    torch.set_grad_enabled(False) through."""
    class Averager:  # one weight matrix per T, kept
        def __init__(self):
            self.weights = {}

        def __call__(self, x):
            return self.weights.setdefault(x.size(1), ANSWERS.causal_average(torch.eye(x.size(1))[None])[0]) @ x
    assert run(EXERCISES[2 - 1], answered(causal_average=Averager())).status == "passed"
    assert run(EXERCISES[5 - 1], answered(mlp=functools.partial(ANSWERS.mlp))).status == "passed"

    def schedule_off(it, warmup_iters, max_iters, lr, min_lr):
        torch.set_grad_enabled(False)
        return ANSWERS.learning_rate(it, warmup_iters, max_iters, lr, min_lr)

    class AppendOff(ANSWERS.KVCache):
        def append(self, layer, k, v):
            torch.set_grad_enabled(False)
            return super().append(layer, k, v)
    try:
        assert failed(7, learning_rate=schedule_off).what.startswith("learning_rate left autograd switched off")
        assert failed(9, KVCache=AppendOff).what.startswith("KVCache.append left autograd switched off")
    finally:
        torch.set_grad_enabled(True)


def test_values_rounded_to_half_precision_are_named():
    """The learner's float16 MLP and loss got the formula's hint, though the formula was right."""
    half_mlp = lambda x, c_fc, c_proj: (F.gelu(x.half() @ c_fc.T.half()) @ c_proj.T.half()).float()
    assert failed(5, mlp=half_mlp).hint.startswith("every value is one float16 can hold, and each is close")
    half_loss = lambda logits, targets: ANSWERS.cross_entropy(logits.half(), targets).float()
    assert failed(6, cross_entropy=half_loss).hint.startswith("every value is one float16 can hold")


def test_a_bigram_table_of_integers_or_of_numpy_is_named():
    """The learner's int32 table took smoothing 1 and truncated 0.5 to 0; a long one refused += 0.5; NumPy's is
    no tensor."""
    def counted(dtype, out_of_place=True):
        def bigram_probs(ids, vocab_size, smoothing=1.0):
            counts = torch.zeros(vocab_size, vocab_size, dtype=dtype).index_put_(
                (ids[:-1], ids[1:]), torch.ones(len(ids) - 1, dtype=dtype), accumulate=True)
            if out_of_place:
                counts = counts + torch.full_like(counts, smoothing)  # (full_like keeps the integer dtype: 0.5 -> 0)
            else:
                counts += smoothing
            counts = counts.float()
            return counts / counts.sum(dim=1, keepdim=True)
        return bigram_probs
    assert failed(1, bigram_probs=counted(torch.int32)).hint.startswith("the smoothing 0.5 became 0")
    assert failed(1, bigram_probs=counted(torch.long, out_of_place=False)).hint.startswith(
        "an integer tensor cannot take a float in place")
    assert failed(1, bigram_probs=lambda ids, V, smoothing=1.0: ANSWERS.bigram_probs(ids, V, smoothing).numpy()).what \
        .endswith("got ndarray (torch.from_numpy(a) makes one of a NumPy array)")


def test_an_append_that_changes_the_keys_it_was_given_is_named():
    """The learner's append zeroed k after storing it: the check then compared against the zeroed keys too."""
    class Zeroing(ANSWERS.KVCache):
        def append(self, layer, k, v):
            returned = super().append(layer, k, v)
            k.zero_()
            return returned
    assert failed(9, KVCache=Zeroing).what == "append changed the keys or values it was given, in place"


def test_a_block_that_makes_its_own_layer_norms_is_named():
    def fresh(x, attention, feed_forward, ln_1, ln_2):
        x = x + attention(F.layer_norm(x, x.shape[-1:]))
        return x + feed_forward(F.layer_norm(x, x.shape[-1:]))
    assert failed(5, block=fresh).what.startswith("the LayerNorms were made afresh")


def test_a_bigram_table_kept_from_an_earlier_call_is_named():
    kept = {}

    def bigram_probs(ids, vocab_size, smoothing=1.0):  # the pairs counted once, on the first call's ids
        if "counts" not in kept:
            kept["counts"] = torch.zeros(vocab_size, vocab_size).index_put_((ids[:-1], ids[1:]),
                                                                          torch.ones(len(ids) - 1), accumulate=True)
        counts = kept["counts"]
        return (counts + smoothing) / (counts + smoothing).sum(dim=1, keepdim=True)
    assert failed(1, bigram_probs=bigram_probs).hint.startswith("a table kept from an earlier call")


def test_averages_stacked_on_the_wrong_axis_are_named():
    stacked = lambda x: torch.stack([x[:, :t + 1].mean(dim=1) for t in range(x.size(1))])  # (T, B, C)
    assert failed(2, causal_average=stacked).what == "out came back (T, B, C), the batch and time axes swapped"


def test_a_weight_kept_from_an_earlier_call_is_named_when_it_gets_no_gradient():
    transposed = {}

    def mlp(x, c_fc, c_proj):  # the learner's cache of c_fc.T, made in the check's first, gradient-free call
        w = transposed.setdefault("c_fc", c_fc.T)
        return F.gelu(x @ w) @ c_proj.T
    assert failed(5, mlp=mlp).hint.endswith("and no copy of it (its .T, say) kept from an earlier call")


def test_the_baby_gpt_read_under_autocast_is_named():
    """The learner's bfloat16 autocast gave probabilities right to 3 digits, and a hint about the bits' order."""
    def autocast(model):  # the logits in bfloat16, the softmax in float32
        idx = torch.tensor([[(i >> 2) & 1, (i >> 1) & 1, i & 1] for i in range(8)])
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            logits, _ = model(idx)
        return logits[:, -1].float().softmax(dim=-1)
    assert failed(10, transition_probs=autocast).hint.startswith("right to about 3 digits: the model ran in lower")
    bfloat16 = lambda model: torch.autocast("cpu", dtype=torch.bfloat16)(ANSWERS.transition_probs)(model).float()
    assert failed(10, transition_probs=bfloat16).hint.startswith("every value is one bfloat16 can hold")


def test_an_output_in_half_precision_is_told_how_it_got_there():
    """The learner's float16 weights in exercise 2 were told that .double() makes float64."""
    def half(x):
        T = x.size(1)
        weights = torch.tril(torch.ones(T, T, dtype=torch.float16))
        return (weights / weights.sum(dim=1, keepdim=True)) @ x.half()
    result = failed(2, causal_average=half)
    assert "expected dtype float32, got float16" in result.what and ".half() or dtype=torch.float16" in result.hint


def test_positions_that_read_their_values_on_the_meta_device_are_told_why():
    """A learner's print in positions met the check's meta device, and was told about a raise of their own."""
    class Printing(ANSWERS.KVCache):
        def positions(self, T, device=None):
            positions = super().positions(T, device)
            print("new positions:", positions.tolist())
            return positions
    result = failed(9, KVCache=Printing)
    assert result.what.startswith("positions(3, device=meta): it raised NotImplementedError: ")
    assert result.hint.startswith("torch's NotImplementedError, not the blank's")
    assert "a print shows none" in result.hint

    class Asking(ANSWERS.KVCache):  # an `if` on a value: torch's RuntimeError, which no blank raises
        def positions(self, T, device=None):
            positions = super().positions(T, device)
            if positions[0] != self.length:
                raise ValueError("off")
            return positions
    result = failed(9, KVCache=Asking)
    assert result.what.startswith("positions(3, device=meta): it raised RuntimeError: ")
    assert result.hint.startswith("the check asks for positions on the meta device")

    class Shown(ANSWERS.KVCache):  # what the hint says passes does
        def positions(self, T, device=None):
            positions = super().positions(T, device)
            print("new positions:", positions)
            return positions
    assert run(EXERCISES[8], answered(KVCache=Shown)).status == "passed"


def test_the_mistakes_of_an_eighteenth_learner_are_named():
    """A scatter in exercise 8 was given exercise 6's gather hint, with its targets; torch.stack in place of torch.cat
    in exercise 9 got no hint; nn.CrossEntropyLoss in exercise 6 was told it called F.cross_entropy."""
    def scattered(logits, temperature=1.0, top_k=None, top_p=None):
        if temperature == 0:  # (B, V) and an index of (B,): one axis short
            return torch.zeros_like(logits).scatter_(1, logits.argmax(dim=-1), 1.0)
        return ANSWERS.next_char_probs(logits, temperature, top_k, top_p)
    hint = failed(8, next_char_probs=scattered).hint
    assert hint.startswith("gather's (and scatter's) index needs as many axes as the input") and "targets" not in hint

    def one_hot_by_scatter(logits, targets):  # in exercise 6 as well: its gather hint is for a line with gather
        picked = (torch.zeros_like(logits).scatter_(-1, targets, 1.0) * logits).sum(-1)
        return (logits.exp().sum(-1).log() - picked).mean()
    assert failed(6, cross_entropy=one_hot_by_scatter).hint == hint

    class Stacked(ANSWERS.KVCache):
        def append(self, layer, k, v):
            if self.k[layer] is None:
                self.k[layer], self.v[layer] = k, v
            else:
                self.k[layer] = torch.stack([self.k[layer], k], dim=2)
                self.v[layer] = torch.stack([self.v[layer], v], dim=2)
            return self.k[layer], self.v[layer]
    result = failed(9, KVCache=Stacked)
    assert "stack expects each tensor to be equal size" in result.what
    assert result.hint.startswith("torch.stack puts its tensors side by side on a new axis")

    def with_the_module(logits, targets):
        return torch.nn.CrossEntropyLoss()(logits.flatten(0, 1), targets.flatten())
    assert failed(6, cross_entropy=with_the_module).what.startswith("it calls nn.CrossEntropyLoss, which")
    assert torch.nn.CrossEntropyLoss()(torch.zeros(1, 2), torch.zeros(1, dtype=torch.long)) > 0  # and it is back


def test_the_mistakes_of_an_eighth_learner_in_exercise_3_are_named():
    """A head in float16 cast back to float32 was told to softmax over dim=-1; sqrt(hs) rounded down, that it wrote
    hs ** 1/2 alone; a (T, T) bool mask indexing the (B, T, T) scores got no hint."""
    def head(x, key, query, value, low=False, root=math.sqrt, index=False):
        if low:
            x, key, query, value = x.half(), key.half(), query.half(), value.half()
        q, k, v = x @ query, x @ key, x @ value
        scores = q @ k.transpose(-2, -1) / root(k.size(-1))
        mask = torch.ones(x.size(1), x.size(1), dtype=torch.bool).tril()
        if index:
            scores[~mask] = float("-inf")
        weights = F.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        return (weights @ v).float(), weights.float()
    assert failed(3, attention_head=functools.partial(head, low=True)).hint.startswith("every value is one float16")
    for rounded in (math.isqrt, lambda hs: int(hs ** 0.5)):
        assert "rounded down" in failed(3, attention_head=functools.partial(head, root=rounded)).hint
    result = failed(3, attention_head=functools.partial(head, index=True))
    assert "IndexError" in result.what and result.hint.startswith("a (T, T) mask used as an index")
    one_hot = lambda logits, targets: -(F.one_hot(targets, logits.size(-1)) * torch.log(  # 0 * log(0): nan
        torch.exp(logits - logits.max(-1, keepdim=True).values) /
        torch.exp(logits - logits.max(-1, keepdim=True).values).sum(-1, keepdim=True))).sum(-1).mean()
    assert failed(6, cross_entropy=one_hot).hint.startswith("a probability rounded to 0")  # no m shared, but nan


def test_a_max_shared_by_the_rows_whose_exp_overflows_is_named():
    """The mean of the rows' maxes as everyone's m: nan, where a hint told the learner not to take a softmax's log."""
    def cross_entropy(logits, targets):
        m = logits.max(dim=-1, keepdim=True).values.mean()
        logsumexp = m + torch.exp(logits - m).sum(dim=-1).log()  # (B, T)
        return (logsumexp - logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)).mean()
    assert failed(6, cross_entropy=cross_entropy).hint.startswith("nan: exp(x - m) overflowed")


def test_parts_of_5_and_6_right_at_one_size_only_fail_at_a_second():
    """An MLP that reshaped to the check's 16 rows passed `check 5`, and failed only in `train 5`."""
    def mlp(x, c_fc, c_proj):
        return (F.gelu(x.reshape(16, -1) @ c_fc.T) @ c_proj.T).reshape(2, 8, -1)
    result = failed(5, mlp=mlp)
    assert result.what.startswith("mlp (B, T, C) for B = 1, T = 5: it raised RuntimeError") and \
        result.hint.startswith("it is right at one size only")
    block = lambda x, *parts: ANSWERS.block(x.reshape(2, 8, 16), *parts)
    assert failed(5, block=block).what.startswith("block (B, T, C) for B = 1, T = 5")
    loss = lambda logits, targets: ANSWERS.cross_entropy(logits.view(2, 5, 7), targets.view(2, 5))
    assert failed(6, cross_entropy=loss).what.startswith("the loss for B = 3, T = 4, V = 9")
