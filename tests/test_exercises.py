"""The exercises: untouched, each says "not started"; answered with the repo's own code, each
passes and trains to the repo's own loss; each named mistake fails with the hint that names it."""

import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from exercise_answers import ANSWERS
from exercises.check import EXERCISES, head_reference, run
from exercises.plug import train_both

ROOT = Path(__file__).resolve().parents[1]


def answered(**changes):
    """The answers, with some functions swapped for wrong ones."""
    return SimpleNamespace(**{**vars(ANSWERS), **changes})


def test_untouched_every_exercise_is_not_started_and_the_command_says_so_without_a_traceback():
    p = subprocess.run([sys.executable, "-m", "exercises", "check"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 1 and "Traceback" not in p.stderr + p.stdout
    assert p.stdout.count("not started (exercises/ex") == len(EXERCISES) == 10
    assert p.stdout.strip().endswith("0 of 10 passed")


@pytest.mark.parametrize("exercise", EXERCISES, ids=[e.module for e in EXERCISES])
def test_the_repos_own_code_passes(exercise):
    assert run(exercise, ANSWERS).status == "passed"


@pytest.mark.parametrize("number", [3, 4, 5])
def test_training_with_the_repos_own_part_gives_the_repos_own_loss(number, data_dir):
    """The same batches, seed and weights: the plugged-in answer trains to the repo's val loss, to
    float rounding (a few steps here; `python -m exercises train N` runs 2000)."""
    (_, repo, _, _), (_, yours, _, text) = train_both(number, ANSWERS, data_dir, steps=30, eval_iters=4)
    assert abs(yours - repo) < 1e-4 and math.isfinite(repo) and repo < 4.0 and text


def test_training_with_a_wrong_part_gives_another_loss(data_dir):
    def unscaled(x, c_attn, c_proj, n_head):  # a wrong answer that still trains
        return ANSWERS.multi_head_attention(x * 2.0, c_attn, c_proj, n_head)
    (_, repo, _, _), (_, yours, _, _) = train_both(4, answered(multi_head_attention=unscaled), data_dir, steps=30,
                                                   eval_iters=4)
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
    result = failed(6, cross_entropy=lambda logits, targets: F.cross_entropy(logits.reshape(-1, logits.size(-1)),
                                                                                 targets.reshape(-1)) * 2)
    assert result.what.startswith("the loss, against F.cross_entropy: at (): expected ") and result.hint
    def naive(logits, targets):  # right, until exp overflows
        probs = torch.exp(logits) / torch.exp(logits).sum(dim=-1, keepdim=True)
        return -torch.log(probs.gather(-1, targets[..., None])).mean()
    naive = failed(6, cross_entropy=naive)
    assert "very large logits" in naive.what and "log-sum-exp" in naive.hint
    shape = failed(1, bigram_probs=lambda ids, vocab_size, smoothing=1.0: torch.ones(vocab_size))
    assert "expected shape (5, 5), got (5,)" in shape.what
    raised = failed(10, transition_probs=lambda model: model.nope)
    assert raised.what.startswith("it raised AttributeError")


def test_train_refuses_what_it_cannot_train(capsys):
    from exercises.__main__ import main
    from machinery.cli import UserError
    with pytest.raises(UserError, match="exercise 7 is not started — make it pass first"):
        main(["train", "7"])
    with pytest.raises(UserError, match="there is no exercise 11 — give 1 to 10"):
        main(["check", "11"])
    from exercises.plug import train_both as both
    with pytest.raises(UserError, match="exercise 7 is not a model part"):
        both(7, ANSWERS, "nowhere")


def test_the_mistakes_a_learner_met_are_named_too():
    """Four more, found by trying the exercises as a learner: the mask after the softmax, top-p
    that counts the character itself, the row's max not added back, a cache that keeps nothing."""
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

    class Forgetting(ANSWERS.KVCache):  # concatenates, but never stores: self.k stays empty
        def append(self, layer, k, v):
            if self.k[layer] is None:
                return k, v
            return torch.cat((self.k[layer], k), dim=2), torch.cat((self.v[layer], v), dim=2)
    result = failed(9, KVCache=Forgetting)
    assert "second call" in result.what and "append keeps what it is given" in result.hint
