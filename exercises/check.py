"""The checker: each exercise against the repo's own code, and against properties that need no
reference (shapes, causality, gradients reaching every weight, attention rows summing to 1, the
same text with and without a cache). A known mistake gets a hint that names it.

A check takes the module that holds the learner's functions (exercises.exNN_name, or a stand-in
with the same names, as the tests give it) and returns nothing when all is well; it raises
Failure(what went wrong, hint) otherwise. NotImplementedError, which each blank raises, means "not
started", or for an exercise of two parts with one written, "not finished".
"""

import ast
import importlib
import inspect
import math
import numbers
import re
import shlex
import signal
import sys
import textwrap
import threading
import traceback
import warnings
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import NamedTuple

# python exercises/check.py (the imports below need python -m), or python -m exercises.check: the commands
# are exercises/__main__.py's
if not __package__ or __name__ == "__main__":
    command = shlex.join(["python", "-m", "exercises", "check", *sys.argv[1:]])
    print(f"error: exercises/check.py is not a command of its own — from the repo's folder: {command}",
          file=sys.stderr)
    sys.exit(2)

import torch
import torch.nn.functional as F

import train
from config import TrainConfig
from engine.decode import forward_cached
from engine.sampling import keep_top_k, keep_top_p
from lessons.babygpt import CONFIG as BABY, next_bit_probs
from machinery.cli import dtype_name
from model import GPT, Block, CausalSelfAttention, GPTConfig


class Failure(Exception):
    def __init__(self, what, hint=""):
        super().__init__(what)
        self.what, self.hint = what, hint


class Exercise(NamedTuple):
    number: int
    title: str
    module: str    # exercises.<module>: the file the learner edits
    check: object  # check(module) -> None, or raises Failure
    parts: tuple  # the names of its blanks, the functions the learner writes (a method: Class.method), in the
    # order the check tries them


def shape_mismatch(got, shape):
    """None if got is a tensor of this shape; else what it is instead."""
    if got is None:
        return "expected a tensor, got None: does the function end without a `return`?"
    if not torch.is_tensor(got):
        kind = "tuple" if isinstance(got, LogitsAndLoss) else type(got).__name__  # (LogitsAndLoss: the check's own)
        numpy = " (torch.from_numpy(a) makes one of a NumPy array)" if kind == "ndarray" else ""
        return f"expected a tensor, got {'torch.return_types.' if is_values_and_indices(got) else ''}{kind}{numpy}"
    if len(shape) > 1 and shape[0] == 1 and tuple(got.shape) == tuple(shape[1:]):
        return f"expected shape {tuple(shape)}, got {tuple(got.shape)}: the batch's axis of 1 dropped (by a squeeze()?)"
    if tuple(got.shape) != tuple(shape):
        return f"expected shape {tuple(shape)}, got {tuple(got.shape)}"
    return None


def first_mismatch(got, expected, atol=1e-5, rtol=1e-4, worst=False, where=None):
    """None if got matches expected; else where, and how: the shape, or the first element that differs
    (worst: the one that differs most, where the first may differ by a hair). where(index) names the element
    (a schedule's step, say), in place of its index."""
    if message := shape_mismatch(got, expected.shape):
        return message
    got, expected = got.detach().double(), expected.detach().double()
    bad = ~torch.isclose(got, expected, atol=atol, rtol=rtol)  # nan counts as bad
    if not bad.any():
        return None
    if worst:  # (a nan counts as the largest gap)
        gap = (got - expected).abs().nan_to_num(math.inf)
        at = tuple((gap == gap.max()).nonzero()[0].tolist())
    else:
        at = tuple(bad.nonzero()[0].tolist())
    return f"at {where(at) if where else at}: expected {expected[at].item():.6g}, got {got[at].item():.6g}"


def expect(got, expected, what, hint="", dtype=False, **tolerance):
    """got must match expected (and, with dtype, be of its dtype: a model part's output goes on into the GPT)."""
    if dtype and torch.is_tensor(got) and got.dtype != expected.dtype:
        made = {torch.float64: ".double(), dtype=torch.float64 or a NumPy array make float64",
                torch.float16: ".half() or dtype=torch.float16 makes float16",
                torch.bfloat16: ".bfloat16() or dtype=torch.bfloat16 makes bfloat16"}.get(got.dtype, "")
        raise Failure(f"{what}: expected dtype {dtype_name(expected.dtype)}, got {dtype_name(got.dtype)}",
                      f"keep the input's dtype (float32){': ' + made if made else ''}, or the GPT's next layer "
                      f"refuses it")
    if message := first_mismatch(got, expected, **tolerance):
        low = rounded_to_16_bits(got, expected)
        raise Failure(f"{what}: {message}", f"every value is one {low} can hold, and each is close: a step in {low} "
                      f"(torch.autocast, .half(), .bfloat16(), dtype={low}) rounded them to about 3 digits; compute "
                      f"in the input's dtype" if low else hint)


def rounded_to_16_bits(got, expected):
    """Whether got is expected computed in half precision: every value one float16 (or bfloat16) holds exactly,
    where expected's are not, and all within 2%. -> the dtype's name, or None"""
    if not (torch.is_tensor(got) and got.dtype in (torch.float32, torch.float64) and got.shape == expected.shape):
        return None
    got, expected = got.detach(), expected.detach().to(got.dtype)
    if not torch.allclose(got, expected, rtol=2e-2, atol=1e-2):
        return None
    held = lambda t, low: torch.equal(t, t.to(low).to(t.dtype))  # (nan never equals itself: a nan is not held)
    # bfloat16 first: one in float16's range is a float16 too
    return next((dtype_name(low) for low in (torch.bfloat16, torch.float16)
                 if held(got, low) and not held(expected, low)), None)


def matches(got, expected):
    return first_mismatch(got, expected) is None


def call(fn, *args, **kwargs):
    """fn(*args, **kwargs), on copies of the tensors given. -> its result. A learner's function that
    changed an input in place fails here, by name: the caller's tensor would change under it; so does
    one that returns nothing (every exercise's function returns something)."""
    copies = [a.clone() if torch.is_tensor(a) else a for a in args]
    called = getattr(fn, "__name__", type(fn).__name__)  # (an object with __call__, or a functools.partial, has none)
    grad = torch.is_grad_enabled()
    result = fn(*copies, **kwargs)
    autograd_kept(called, grad)
    names = list(inspect.signature(fn).parameters)
    for name, given, copy in zip(names, args, copies):
        if torch.is_tensor(given) and not torch.equal(given, copy):
            raise Failure(f"{called} changed its input {name} in place", f"work on a new tensor: `{name} = "
                          f"{name} + ...` makes one, where `{name} += ...` (or -=, /=, or a method ending in _) writes "
                          f"into the caller's")
    if result is None:
        raise Failure(f"{called} returned None", "does it end without a `return`?")
    return result


def autograd_kept(name, was_on):
    """A learner's function must leave autograd as it found it: torch.set_grad_enabled(False) in it (or a
    no_grad() entered and never left) switches gradients off for every caller after it, training too."""
    if was_on and not torch.is_grad_enabled():
        raise Failure(f"{name} left autograd switched off when it returned (torch.set_grad_enabled(False), or a "
                      f"no_grad() entered and never left)", "for the whole program: training after it gets no "
                      "gradients; read without a graph inside `with torch.no_grad():`, which switches it back on at "
                      "its end")


MAX_HINT = "x.max(dim) returns (values, indices): take .values (x.max(dim, keepdim=True).values)"


def is_values_and_indices(got):
    return type(got).__module__ == "torch.return_types"  # what x.max(dim), x.min(dim), x.sort() return


def expect_shape(got, shape, what, hint=""):
    """got must be a tensor of this shape (before a check that would index it). hint is for a tensor of another
    shape: what is no tensor gets its own (not_a_tensor_hint)."""
    if message := shape_mismatch(got, shape):
        raise Failure(f"{what}: {message}", hint if torch.is_tensor(got) else not_a_tensor_hint(got))


def not_a_tensor_hint(got):
    """What to do where a tensor was asked for; "" where the message says enough (None: no return; a number)."""
    if isinstance(got, LogitsAndLoss):  # the model's (logits, loss), as it came
        return TUPLE_HINT
    if is_values_and_indices(got):  # x.max(dim)'s
        return MAX_HINT
    if isinstance(got, (tuple, list)):  # exercise 3's (out, weights), carried on, say
        return "return one tensor, as the docstring says"
    return ""


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


SIZE_HINT = ("it is right at one size only: take every size from the inputs' shapes (T = x.size(1), hs = "
             "k.size(-1) or C // n_head), not a number written in or a matrix kept from an earlier call, so that the "
             "GPT can call it at any size")


AVERAGE_SIZE_HINT = ("it is right at one size only: make the weights from this call's T = x.size(1), not from a "
                     "number written in or a matrix kept from an earlier call")
HEAD_SIZE_HINT = ("it is right at one size only: take every size from the inputs' shapes (T = x.size(1), hs = "
                  "k.size(-1)), not a number written in or worked out from C, nor a matrix kept from an earlier call, "
                  "so that the GPT can call it at any size")


def at_another_size(what, fn, *args, hint=SIZE_HINT):
    """fn(*args) at a second size, once the first passed: a size written into the code (a 7 for T, a 4 for hs)
    fails here, by name, where it would break in training. -> the result"""
    try:
        return call(fn, *args)
    except Failure:
        raise
    except Exception as e:  # (a tensor of the written-in size that does not fit, usually)
        raise Failure(f"{what}: {raised(e)}", hint) from None


@contextmanager
def hinting(pattern, hint, on_line=""):
    """An error of the learner's code whose message matches pattern (raised by a line of theirs that matches
    on_line) fails with this hint, one that names the mistake where the message alone could mean many (the generic
    hints are error_hint's)."""
    try:
        yield
    except Exception as e:
        theirs = last_frame(e, lambda path: "torch" not in path.parts)  # the line that called into torch
        line = getattr(theirs, "line", "") or ""
        if isinstance(e, Failure) or not re.search(pattern, str(e)) or not re.search(on_line, line):
            raise
        raise Failure(raised(e), hint) from None


# ----------------------------------------------------------------------------
# 1-2: counting, averaging


def bigram_counts(ids, vocab_size, smoothing, gap=1):
    """(V, V): how often j follows i (gap characters later), plus smoothing: counted with bincount, not the
    learner's way."""
    pairs = torch.bincount(ids[:-gap] * vocab_size + ids[gap:], minlength=vocab_size ** 2)
    return pairs.view(vocab_size, vocab_size).double() + smoothing


def bigram_reference(ids, vocab_size, smoothing=1.0):
    """Exercise 1's table, the repo's way: the pairs counted, each row divided by its sum. (V, V)"""
    counts = bigram_counts(ids, vocab_size, smoothing)
    return counts / counts.sum(dim=1, keepdim=True)


KEEPDIM = ("a divisor of shape (V,) (or (T,)), as x.sum(dim=1) gives, lines up with the last axis, the columns: "
           "make it a column, (V, 1), one per row: x.sum(dim=1, keepdim=True), or [:, None]")


def counted_short(m, error, vocab_size):
    """Whether error is a view of a bincount that stopped at the largest pair it saw, short of V * V (bincount
    called in the learner's file, in bigram_probs or a helper of theirs; a comment that names it does not count)."""
    size = re.search(r"is invalid for input of size (\d+)", str(error))
    try:
        tree = ast.parse(inspect.getsource(inspect.getmodule(m.bigram_probs) or m.bigram_probs))
    except (OSError, TypeError, SyntaxError):  # (no source to read: a function made at run time)
        return False
    called = any(isinstance(node, ast.Attribute) and node.attr == "bincount" or
                 isinstance(node, ast.Name) and node.id == "bincount" for node in ast.walk(tree))
    return bool(size) and int(size.group(1)) < vocab_size ** 2 and called


def check_bigram(m):
    ids = torch.randint(5, (400,), generator=seeded())  # ids 0 .. 4 of a vocabulary of 6: the last never seen
    try:
        got = call(m.bigram_probs, ids, 6, smoothing=1.0)
    except RuntimeError as e:
        if not counted_short(m, e, 6):
            raise
        raise Failure(raised(e), "torch.bincount's result ends at the largest value it counted (here the last id "
                      "never occurs, so its pairs are missing): give it minlength=vocab_size ** 2") from None
    counts, expected = bigram_counts(ids, 6, 1.0), bigram_reference(ids, 6)
    if matches(got, counts / counts.sum(dim=0, keepdim=True)):
        raise Failure("the columns sum to 1, not the rows", "normalise each row: divide by counts.sum(dim=1, "
                      "keepdim=True), so that row i is the distribution of what follows i")
    expect_shape(got, (6, 6), "probs (V, V) for vocab_size 6", "one row and one column per character of the "
                 "vocabulary, seen in ids or not: torch.zeros(vocab_size, vocab_size)")
    if not got.is_floating_point():
        raise Failure(f"probs (V, V): expected floating-point probabilities, got {dtype_name(got.dtype)}", "integer "
                      "counts, not divided, or divided with // (which floors them to 0): count in floats (torch.zeros "
                      "makes them) and divide with /")
    if any(matches(base ** got, expected) for base in (math.e, 2, 10)):
        raise Failure("these are log-probabilities", "return the probabilities themselves, the counts divided by "
                      "their row's sum, with no log: the log comes later, in the loss")
    if matches(got, counts.softmax(dim=1)):
        raise Failure("the counts went through a softmax", "softmax takes exp first, so a pair seen 10 times is "
                      "e^9 times likelier than one seen once, not 10 times: divide the counts by their row's sum")
    bare = bigram_counts(ids, 6, 0.0)
    if matches(got[:5], (bare / bare.sum(dim=1, keepdim=True))[:5]):  # (row 5 has no counts at all)
        raise Failure("no smoothing was added", "add `smoothing` to every count before dividing")
    if matches(got, counts / counts.sum(dim=1)):  # (V, V) / (V,): the sums line up with the columns
        raise Failure("column j was divided by row j's sum, not each row by its own", KEEPDIM)
    if matches(got, counts.T / counts.T.sum(dim=1, keepdim=True)):
        raise Failure("row i holds what comes before i, not after it: the pairs are the wrong way round",
                      "count (ids[:-1], ids[1:]): each character i, then the j that follows it")
    if matches(got, torch.div(counts, counts.sum(dim=1, keepdim=True), rounding_mode="floor")):
        raise Failure("every probability is 0", "divided with //? It floors each probability, all below 1, to 0: "
                      "divide with /")
    if matches(got, expected.T):
        raise Failure("row i holds what comes before i: the table is transposed", "row i, column j: how often j "
                      "follows i, each row divided by its own sum; return it as it is, not its .T")
    for end, short in (("last", ids[:-1]), ("first", ids[1:])):  # a pair left out at either end
        short = bigram_counts(short, 6, 1.0)
        if matches(got, short / short.sum(dim=1, keepdim=True)):
            raise Failure(f"the {end} pair was not counted", "a text of N characters has N - 1 pairs, (ids[i], "
                          "ids[i + 1]) for i from 0 to N - 2: range(len(ids) - 1), or ids[:-1] with ids[1:]")
    around = bigram_counts(torch.cat([ids, ids[:1]]), 6, 1.0)  # torch.roll's pair: the last, then the first
    if matches(got, around / around.sum(dim=1, keepdim=True)):
        raise Failure("one pair too many: the last character followed by the first", "torch.roll(ids, -1) wraps "
                      "around; the text ends at its last character: ids[:-1] with ids[1:]")
    apart = bigram_counts(ids, 6, 1.0, gap=2)
    if matches(got, apart / apart.sum(dim=1, keepdim=True)):
        raise Failure("the pairs are two characters apart", "a bigram is a character and the very next one: "
                      "ids[:-1] with ids[1:]")
    once = (bare > 0).double() + 1.0  # what counts[ids[:-1], ids[1:]] += 1 gives: a repeated pair counts once
    if matches(got, once / once.sum(dim=1, keepdim=True)):
        raise Failure("each pair was counted once, however often it occurs",
                      "an indexed `counts[i, j] += 1` adds once per distinct (i, j), not once per repeat: "
                      "use counts.index_put_((i, j), ones, accumulate=True), torch.bincount, or a loop")
    expect(got.sum(dim=1), torch.ones(6), "the sum of each row",
           "each row is a distribution: divide the counts of row i by their sum")
    expect(got, expected, "probs (V, V)", "row i, column j: (the count of i "
           "followed by j, plus smoothing), divided by its row's sum")
    got = call(m.bigram_probs, ids, 6, smoothing=0.5)
    # (rows 0 .. 4: row 5, never seen, is 0 / 0 without smoothing)
    truncated = torch.is_tensor(got) and got.shape == (6, 6) and matches(got[:5], bigram_reference(ids, 6, 0.0)[:5])
    expect(got, bigram_reference(ids, 6, 0.5), "probs (V, V) with smoothing 0.5",
           "the smoothing 0.5 became 0: an integer table (dtype=torch.int32 or long) truncates it; count in floats "
           "(torch.zeros' default)" if truncated else "add the `smoothing` given, not a fixed 1, to a table counted "
           "at this call, not one kept from an earlier call")
    # 0 then 0 about 33,000 times, 0 then 1 and 1 then 0 about 2,100: tiny-shakespeare's commonest pair occurs 27,643
    # times, and 133 of its pairs over 2,048
    ids = torch.tensor([0] * 33000 + [1, 0] * 2100)
    got = call(m.bigram_probs, ids, 2, smoothing=1.0)
    kept = torch.is_tensor(got) and got.shape == (6, 6)  # the earlier calls' vocabulary: a table kept from them
    expect(got, bigram_reference(ids, 2), "probs (V, V) of pairs repeated thousands of times", "a table kept from an "
           "earlier call (a global, a cache): make each call's from its own ids and vocab_size" if kept else "count "
           "in float32 (torch.zeros' default) or int64: in a smaller type a count wraps around (uint8 past 255, "
           "int16 past 32,767) or stops growing (bfloat16 past 256, float16 past 2,048)")


def check_averaging(m):
    x = torch.randn(2, 6, 3, generator=seeded())
    expected = torch.stack([x[:, :t + 1].mean(dim=1) for t in range(6)], dim=1)  # (B, T, C), the slow way
    got = call(m.causal_average, x)
    if torch.is_tensor(got) and got.shape == (6, 2, 3) and matches(got.transpose(0, 1), expected):
        raise Failure("out came back (T, B, C), the batch and time axes swapped", "torch.stack(outs) stacks the T "
                      "outputs on a new first axis: torch.stack(outs, dim=1) puts them on the time axis, (B, T, C)")
    if torch.is_tensor(got) and got.shape == x.shape:
        tril = torch.tril(torch.ones(6, 6))
        if matches(got, (tril / tril.sum(dim=1)) @ x):  # (T, T) / (T,): column s divided by s + 1
            raise Failure("column s was divided by row s's sum, not each row by its own", KEEPDIM)
        if got[:, 0].isnan().all() and not got[:, 1:].isnan().any():
            raise Failure("position 0's output is nan: 0 / 0, an average of nothing",
                          "position t averages x[:, 0 .. t], itself included: torch.tril's diagonal 0 (its default), "
                          "not -1")
        if not got[:, 0].isfinite().any() and matches(got[:, 1:], x.cumsum(dim=1)[:, 1:] / torch.arange(1, 6)[:, None]):
            raise Failure("position 0's output is inf or nan: a division by 0", "position t averages t + 1 positions, "
                          "and torch.arange(T) counts from 0: divide by torch.arange(1, T + 1)")
        if matches(got, x.mean(dim=1, keepdim=True).expand_as(x)):
            raise Failure("every position averages all T positions, the future too",
                          "no causal mask, or one filled with 0 before a softmax: weigh the past only, "
                          "torch.tril(torch.ones(T, T)) with each row divided by its sum; with a softmax, fill the "
                          "future with float('-inf') (exp(-inf) = 0): exp(0) = 1 still weighs the future; "
                          "masked_fill returns a new tensor, so keep it: wei = wei.masked_fill(...)")
        weights = tril / tril.sum(dim=1, keepdim=True)  # (T, T): row t averages 0 .. t
        if matches(got, weights.T @ x):  # (x^T @ weights)^T
            raise Failure("position t averages t .. T - 1, the future: the weights were applied from the other side",
                          "out = wei @ x, (T, T) @ (B, T, C): row t of wei weighs the positions for output t; x^T @ "
                          "wei, transposed back, weighs them with wei's columns")
        peek = torch.tril(torch.ones(6, 6), diagonal=1)
        if matches(got, peek / peek.sum(dim=1, keepdim=True) @ x):
            raise Failure("position t averages 0 .. t + 1, one position of the future", ATTENTION_HINTS["peek"])
        later = x.clone()
        later[:, 3:] += 10.0  # change positions 3.. : outputs 0..2 must not move
        if not matches(call(m.causal_average, later)[:, :3], got[:, :3]):
            raise Failure("an earlier position's output changed when a later input did",
                          "the future leaks in, with no causal mask or one that lets it through: the weights must "
                          "be lower-triangular (torch.tril, not triu), and a softmax gives a 0 the weight exp(0) = 1: "
                          "fill the future with float('-inf')")
        if matches(got, tril @ x / 6):
            raise Failure("every row was divided by T", "row t averages t + 1 positions: divide it by t + 1")
        if matches(got, tril / tril.sum(dim=0, keepdim=True) @ x):
            raise Failure("each column of the weights sums to 1, not each row", "row t weighs the positions for "
                          "output t: divide each row by its own sum, wei.sum(dim=1, keepdim=True), or take the "
                          "softmax over dim=-1")
    expect(got, expected, "out (B, T, C)", "out[:, t] is x[:, :t + 1].mean(dim=1)", dtype=True)
    # T = 11: longer than the first call's 6 (weights kept from it would not do) and the video's block_size of 8
    x = torch.randn(1, 11, 2, generator=seeded(1))
    expect(at_another_size("out (B, T, C) for T = 11", m.causal_average, x, hint=AVERAGE_SIZE_HINT), x.cumsum(dim=1)
           / torch.arange(1, 12)[:, None], "out (B, T, C) for T = 11", AVERAGE_SIZE_HINT)
    # then T = 4, shorter than any before: weights kept from the longest call, and only ever grown, would not do
    expect(at_another_size("out (B, T, C) for T = 4, after T = 11", m.causal_average, x[:, :4], hint=AVERAGE_SIZE_HINT),
           x[:, :4].cumsum(dim=1) / torch.arange(1, 5)[:, None], "out (B, T, C) for T = 4, after T = 11",
           AVERAGE_SIZE_HINT)
    carries_gradient(call(m.causal_average, x.requires_grad_()), "out (B, T, C)", "x")  # (in a GPT, x is learned)


# ----------------------------------------------------------------------------
# 3-5: attention, the block


def weights_reference(att, mask=True, dim=-1, after=False, fill=float("-inf"), diagonal=0, flip=False):
    """The scores att (..., T, T) -> the attention weights: the future masked, then the softmax. The
    flags make the known mistakes (diagonal 1: tril's diagonal moved, so that t sees t + 1; flip: the
    past masked instead of the future, as masked_fill(triu(...) == 0) does)."""
    future = ~torch.ones(att.size(-1), att.size(-1), dtype=torch.bool).tril(diagonal)
    if flip:
        future = future.T
    if mask and not after:
        att = att.masked_fill(future, fill)
    att = F.softmax(att, dim=dim)
    if after:  # the future zeroed after the softmax: the rows no longer sum to 1
        att = att.masked_fill(future, 0.0)
    return att


def scaled(att, hs, C, scale=True):
    """The scores att / sqrt(hs); the flags make the known mistakes (False: not scaled; "C": by the
    width of x; "T": by the number of positions; "B": by the batch size; "times": multiplied by sqrt(hs); "hs":
    divided by hs itself; "pow": by hs ** 1/2 unbracketed, hs then 2; "pow_paren": by (hs ** 1/2), hs / 2)."""
    if scale == "times":
        return att * math.sqrt(hs)
    if scale == "hs":
        return att / hs
    if scale == "pow":
        return att / hs ** 1 / 2
    if scale == "pow_paren":
        return att / (hs ** 1 / 2)
    if scale == "B":
        return att / math.sqrt(att.size(0))
    if scale == "T":
        return att / math.sqrt(att.size(-1))
    return att / math.sqrt(C if scale == "C" else hs) if scale else att


def head_reference(x, key, query, value, scale=True, order=False, **weights_mistake):
    """One head the slow, written-out way; the flags make the known mistakes (order: k @ q^T; scale:
    scaled's; the others: weights_reference's)."""
    q, k, v = x @ query, x @ key, x @ value  # (B, T, hs) each
    if order:
        q, k = k, q
    att = scaled(q @ k.transpose(-2, -1), k.size(-1), x.size(-1), scale)  # (B, T, T)
    att = weights_reference(att, **weights_mistake)
    return att @ v, att


# ** comes before / in Python, so hs ** 1/2 is hs / 2, and a / hs ** 1/2 is a / hs / 2
POW_HINT = ("hs ** 1/2 is (hs ** 1) / 2, half of hs, not its square root: ** binds before /, so write hs ** 0.5 or "
            "math.sqrt(hs) (and scores / hs ** 1/2 divides by hs, then by 2)")
# exercise 3's second size, hs = 2, where hs / 2 and the square root rounded down are both 1
ROUNDED = ("; or the square root was rounded down, as math.isqrt(hs) and int(hs ** 0.5) do: at hs = 4 that is 2, "
           "right, at hs = 2 it is 1, where sqrt(2) = 1.41")

ATTENTION_HINTS = {
    "mask": "no causal mask: position t must not see positions after it; set the scores of s > t to -inf before "
            "the softmax (torch.tril, masked_fill: a 0 there still gets the weight exp(0) = 1); masked_fill returns "
            "a new tensor, so keep it: att = att.masked_fill(...)",
    "dim": "softmax over the wrong axis: it must run over the keys (dim=-1), so that each row of the weights "
           "sums to 1",
    "scale": "no 1/sqrt(hs) scaling: divide the scores by sqrt(head size) before the softmax, or the softmax "
             "saturates as hs grows",
    "zero": "the future's scores were set to 0, not -inf: exp(0) = 1, so the softmax still gives the future "
            "weight; masked_fill(..., float('-inf'))",
    "scale_C": "scaled by sqrt(C), the width of x: the scores sum over a head's hs channels, so divide them by "
               "sqrt(hs), the head size (k.size(-1))",
    "scale_T": "scaled by sqrt(T), the number of positions (q.size(1)): the scores sum over a head's hs channels, so "
               "divide them by sqrt(hs), the head size, the last axis (k.size(-1))",
    "times": "the scores were multiplied by sqrt(hs): divide them by it, so that they stay about 1 in size "
             "whatever the head size",
    "across": "every position but the last is nan: the softmax ran across another axis than the keys' (the heads in "
              "exercise 4, or the batch), where a masked score meets only other -inf's, and the softmax of all -inf "
              "is nan; it must run over the keys, dim=-1",
    "heads": "scaled by sqrt(n_head), the number of heads (2 here, as is sqrt(hs) rounded down, int(hs ** 0.5)): "
             "divide the scores by math.sqrt(hs), the head size (k.size(-1)), the number of products each one sums",
    "scale_B": "scaled by sqrt(B), the batch size (x.size(0)): the scores sum over a head's hs channels, so divide "
               "them by sqrt(hs), the head size, the last axis (k.size(-1))",
    "pow": POW_HINT,
    "pow_paren": POW_HINT,
    "late": "the scaling belongs on the scores, before the softmax: softmax(q @ k^T / sqrt(hs)), not after it",
    "root": "the scores were divided by hs, the head size: divide them by its square root, math.sqrt(hs) (a sum "
            "of hs products of size about 1 is about sqrt(hs) in size)",
    "flip": "the mask is the wrong way round: it hides the past and keeps the future; mask where "
            "torch.tril(...) == 0, the s > t part, not where triu(...) == 0",
    "kq": "the scores are k @ q^T, the transpose of q @ k^T: row t must hold query t against every key, "
          "q @ k.transpose(-2, -1); or q and k swapped: the arguments come key first, (x, key, query, value), so "
          "k = x @ key and q = x @ query",
    "after": "the future is masked after the softmax: fill the future's scores with -inf before it, so that the "
             "softmax shares all the weight among the past",
    "join": "the heads were joined without moving the head axis back: (B, nh, T, hs) reshaped straight to "
            "(B, T, C) mixes positions; y.transpose(1, 2) first, to (B, T, nh, hs)",
    "peek": "the mask lets position t see t + 1: keep the keys s <= t, torch.tril's diagonal 0 (its default), "
            "not 1",
    "nan": "position 0's output is nan: every one of its scores was masked, and the softmax of all -inf is nan; "
           "position t sees the keys 0 .. t, itself included: torch.tril's diagonal 0 (its default), not -1",
    "proj": "c_proj is an nn.Linear's weight, (out, in): apply it as y @ c_proj.T, as nn.Linear does",
    "no_proj": "c_proj left out: the joined heads go through it last, y @ c_proj.T, as in model.py's "
               "CausalSelfAttention: it mixes what the heads found",
    "qvk": "v and k swapped: c_attn's output holds q, k and v in that order, q, k, v = (x @ c_attn.T).split(C, dim=2)",
    "order": "q and k swapped: c_attn's output holds q, k and v in that order, q, k, v = (x @ c_attn.T).split(C, "
             "dim=2), and the scores are q @ k^T, not k @ q^T",
    "times_inf": "every position's output is nan: every score was -inf, or a nan came in, as 0 * float('-inf') "
                 "gives in a mask made by multiplying by -inf; masked_fill(mask, float('-inf')) sets the masked "
                 "scores alone",
    "present": "the last position's output is nan: every one of its scores was masked, as the mask hides the past "
               "and the present and keeps the future; mask where torch.tril(...) == 0, not where it is 1"}

# where the causality check fails with no named mistake: besides the mask, a view that mixed positions
MIXED = ("; or positions mixed by a view or reshape: k^T is k.transpose(-2, -1), while k.view(B, hs, T) "
         "keeps the memory's order and mixes positions")


# the same, where the weights themselves are causal: the mask is there, so the leak is elsewhere
MIXED_ONLY = ("the weights hide the future, yet the output leaks it: positions mixed by a view or reshape; k^T is "
              "k.transpose(-2, -1), while k.view(B, hs, T) keeps the memory's order and mixes positions")

# for a function called twice on the same input (dropout draws a new mask each time)
RANDOM_HINT = ("no dropout here (the video's Head has it): the GPT applies its own dropout outside this function, "
               "as a module that evaluation switches off, and the check compares without it")


def same_each_call(fn, first, what, hint=RANDOM_HINT):
    """A second call of fn() must give what the first did: a random draw (dropout) in the learner's code fails here,
    by name, before its changing output is blamed on a mask or a softmax."""
    again = fn()
    # (a nan in both calls counts as the same: what the nan means is told later)
    if torch.is_tensor(first) and torch.is_tensor(again) and first.shape == again.shape and \
            not matches(again.nan_to_num(), first.nan_to_num()):
        raise Failure(f"{what}: two calls on the same input gave different outputs", hint)


def attention_hint(got, mistakes):
    """Which known mistake got shows, tried in turn: mistakes is {name: what the output would be then}."""
    if torch.is_tensor(got) and got.dim() == 3:  # (B, T, ...): position 0 alone nan is tril's diagonal -1
        rows = got.isnan().any(dim=-1)  # (B, T)
        if rows[:, 0].all() and not rows[:, 1:].any():  # (no mistake's output matches a nan: it is told apart here)
            return ATTENTION_HINTS["nan"]
        if rows[:, -1].all() and not rows[:, :-1].any():  # the last alone: only the future was kept
            return ATTENTION_HINTS["present"]
        if rows[:, :-1].all() and not rows[:, -1].any():  # all but the last, which has no future to mask
            return ATTENTION_HINTS["across"]
        if rows.all():
            return ATTENTION_HINTS["times_inf"]
    return next((ATTENTION_HINTS[name] for name, wrong in mistakes.items() if matches(got, wrong)), "")


def later_changed(x):
    """x (B, T, ...) with its positions from 4 on changed: what positions 0 .. 3 must not see."""
    later = x.clone()
    later[:, 4:] += 3.0
    return later


def check_causal(fn, x, hint, what=""):
    """fn(x) at positions < 4 must not change when x changes at positions >= 4 (fn's output: the shape checked).
    what: the case, where it is not the first."""
    # (a nan where it was counts as no change)
    if not matches(fn(later_changed(x))[:, :4].nan_to_num(), fn(x)[:, :4].nan_to_num()):
        raise Failure(f"{what}{': ' if what else ''}an earlier position's output changed when a later input did", hint)


def check_sharp(fn, x, expected, what):
    """fn(x) for scores of a few hundred, as sharp attention in a trained model can have: a finite mask lets the
    future in here, and an exp taken before the row's max is subtracted overflows (where the max is the whole
    tensor's, a later input moves it, and the earlier positions' output changes too: the overflow is named then)."""
    got = fn(x)
    overflowed = any(not out.isfinite().all() for out in (got, fn(later_changed(x))) if torch.is_tensor(out))
    check_causal(fn, x, OVERFLOW_HINT if overflowed else FINITE_MASK_HINT, what)
    expect(got, expected, what, OVERFLOW_HINT)


def check_head(m):
    x = torch.randn(2, 7, 8, generator=seeded())
    # scaled as a trained layer's are (std 1/sqrt(C)), so that the softmax is not one-hot and each mistake shows
    key, query, value = (torch.randn(8, 4, generator=seeded(i)) / math.sqrt(8) for i in (1, 2, 3))
    got = call(m.attention_head, x, key, query, value)
    if not (isinstance(got, (tuple, list)) and len(got) == 2):
        raise Failure("it must return (out, weights)", "return both: the output and the attention weights")
    out, weights = got
    if all(torch.is_tensor(t) for t in got) and (out.shape, weights.shape) == ((2, 7, 7), (2, 7, 4)):
        raise Failure("out and weights came back in the other order", "return (out, weights), out first")
    expect_shape(out, (2, 7, 4), "out (B, T, hs)", "out = weights @ v: (B, T, T) @ (B, T, hs)")
    expect_shape(weights, (2, 7, 7), "weights (B, T, T)", "one row per query, one column per key")
    again = call(m.attention_head, x, key, query, value)  # (dropout may be on the way to out only)
    same_each_call(lambda: again[1], weights, "weights (B, T, T)")
    same_each_call(lambda: again[0], out, "out (B, T, hs)")
    expected_out, expected_weights = head_reference(x, key, query, value)
    flags = {"mask": {"mask": False}, "dim": {"dim": -2}, "scale": {"scale": False}, "after": {"after": True},
             "zero": {"fill": 0.0}, "scale_C": {"scale": "C"}, "peek": {"diagonal": 1}, "times": {"scale": "times"},
             "root": {"scale": "hs"}, "flip": {"flip": True}, "kq": {"order": True}, "scale_T": {"scale": "T"},
             "scale_B": {"scale": "B"}, "pow": {"scale": "pow"}}  # (no "pow_paren": hs / 2 = sqrt(hs) at hs 4)
    mistakes = {name: head_reference(x, key, query, value, **flag)[0] for name, flag in flags.items()}
    hint = attention_hint(out, mistakes)
    if rounded_to_16_bits(weights, expected_weights):  # a softmax in 16 bits: its rows miss 1 by the rounding
        expect(weights, expected_weights, "weights (B, T, T)")  # (which expect names)
    sums = weights.sum(dim=-1)  # (B, T)
    if not hint and any(matches(sums, torch.full((2, 7), f)) for f in (0.5, 2.0)):  # (hs = 4: 1/sqrt(hs), sqrt(hs))
        hint = ATTENTION_HINTS["late"]
    expect(sums, torch.ones(2, 7), "the sum of each row of the weights", hint or
           "each row of weights must sum to 1: the softmax runs over the keys (dim=-1), after the mask")
    if matches(weights, expected_weights) and matches(out, weights.transpose(-2, -1) @ (x @ value)):
        raise Failure("out is the weights' transpose times the values: each position gathers the later ones'",
                      "out = weights @ v, (B, T, T) @ (B, T, hs): row t of the weights weighs the values for "
                      "position t")
    leak = MIXED_ONLY if (weights.triu(diagonal=1) == 0).all() else ATTENTION_HINTS["mask"] + MIXED
    check_causal(lambda x: call(m.attention_head, x, key, query, value)[0], x, hint or leak)
    # the weights first: where they are wrong, out is too, and the mistake is in them
    expect(weights, expected_weights, "weights (B, T, T)", hint or "weights = the softmax over the keys of the "
           "masked, scaled scores q @ k^T / sqrt(hs)", dtype=True)
    if matches(weights, expected_weights) and any(matches(out, weights @ (x @ w)) for w in (key, query)):
        raise Failure("out is the weights times the keys or the queries, not the values", "each position passes on "
                      "its value: v = x @ value, out = weights @ v")
    expect(out, expected_out, "out (B, T, hs)", hint or "out = weights @ v", dtype=True)
    gradients_reach(lambda w: call(m.attention_head, x, *w)[0], [key, query, value], ["key", "query", "value"])
    # scores up to 240; then q = -k, where each query's score for its own key is negative (row 0's: -309 and -565):
    # row 0 sees only that key, so a future filled with -100 (masked_fill) outscores it
    for sharp in ((key * 10, query * 10, value), (key * 10, -key * 10, value)):
        check_sharp(lambda x, sharp=sharp: call(m.attention_head, x, *sharp)[0], x, head_reference(x, *sharp)[0],
                    "out (B, T, hs) for scores of a few hundred")
    # T = 11: past the video's block_size of 8, which a learner may write in as its tril buffer's size; hs = 2, where
    # the first size's was C / 2
    x, weights = torch.randn(1, 11, 6, generator=seeded(4)), [torch.randn(6, 2, generator=seeded(i)) for i in (5, 6, 7)]
    def out_at(what, x):  # out alone, at this size (the first of a pair, where one came back)
        got = at_another_size(what, m.attention_head, x, *weights, hint=HEAD_SIZE_HINT)
        return got[0] if isinstance(got, (tuple, list)) else got
    what = "out (B, T, hs) for T = 11, hs = 2"
    out = out_at(what, x)
    halved = matches(out, head_reference(x, *weights, scale="pow_paren")[0])  # (hs ** 1/2 bracketed: hs / 2)
    expect(out, head_reference(x, *weights)[0], what, POW_HINT + ROUNDED if halved else HEAD_SIZE_HINT)
    what = "out (B, T, hs) for T = 4, after T = 11"  # shorter than any before: a mask kept, and only ever grown
    expect(out_at(what, x[:, :4]), head_reference(x[:, :4], *weights)[0], what, HEAD_SIZE_HINT)


FINITE_MASK_HINT = ("the future leaks in once the scores are large: a finite mask, -100 added to the future's scores "
                    "or written over them, is outweighed by scores of a few hundred, or outscores every score of a "
                    "row whose own lie far below it; masked_fill(..., float('-inf')) hides the future whatever the "
                    "scores")
OVERFLOW_HINT = ("exp of scores this large gives inf, or 0 / 0, and then nan: take out of each row's scores, before "
                 "exp, the max of those the mask leaves (not of the future's, nor of the whole tensor), which changes "
                 "nothing in the softmax (F.softmax does it)")


def carries_gradient(out, what, to="the weights"):
    """out must be in autograd's graph: training follows it back to the weights."""
    if not (torch.is_tensor(out) and out.requires_grad):
        raise Failure(f"{what} carries no gradient back to {to}", "compute it with tensor operations only "
                      "(no torch.no_grad, .detach(), .item() or .numpy()), so that training can reach them")


def gradients_reach(fn, weights, names):
    """Every weight must get a gradient from fn(weights).sum(): each one is used."""
    weights = [w.clone().requires_grad_() for w in weights]
    out = fn(weights)
    carries_gradient(out, "the output")
    for g, name in zip(gradients(out.pow(2).sum(), weights, lambda: fn(weights).pow(2).sum()), names):
        if g is None or (g == 0).all(dim=-1).any():
            raise Failure(f"part of {name} gets no gradient", f"every part of {name} must be used (every head, "
                          f"every channel), and stay in the graph: no .detach() or torch.no_grad() on its way")


def expect_gradients(fn, reference, inputs, what, hint):
    """The gradients of fn().pow(2).sum() with respect to inputs ({name: tensor}) must be those of reference()."""
    out = fn()
    carries_gradient(out, f"{what}: the output")
    got = gradients(out.pow(2).sum(), list(inputs.values()), lambda: fn().pow(2).sum())
    expected = torch.autograd.grad(reference().pow(2).sum(), list(inputs.values()))
    for name, g, e in zip(inputs, got, expected):
        if g is None:
            raise Failure(f"{what}: {name} gets no gradient", f"{name} must be used, and stay in the graph: no "
                          f".detach() or torch.no_grad() on its way, and no copy of it (its .T, say) kept from an "
                          f"earlier call")
        expect(g, e, f"{what}: the gradient of its output with respect to {name}", hint)


INPLACE_HINT = ("write x = x + ..., a new tensor, rather than x += ... (or -=, /=, x[...] = or a method ending in _), "
                "which changes the one backward saved")


def gradients(out, inputs, again):
    """torch.autograd.grad(out, inputs) for a scalar out, None for an input not used. again() makes out anew: where
    an in-place operation broke the backward pass, it runs once more under autograd's anomaly mode, which records
    where each operation ran, to name the learner's line that saved the tensor."""
    try:
        return torch.autograd.grad(out, inputs, allow_unused=True)
    except RuntimeError as e:
        if "modified by an inplace operation" not in str(e):
            raise
    with warnings.catch_warnings(record=True) as caught, torch.autograd.detect_anomaly(check_nan=False):
        warnings.simplefilter("always")  # (its report of where the failing operation ran comes as a warning)
        with suppress(RuntimeError):
            torch.autograd.grad(again(), inputs, allow_unused=True)
    ran = re.findall(r'File "(.+?)", line (\d+)', "\n".join(str(w.message) for w in caught))
    theirs = [(Path(file).name, line) for file, line in ran if learners(Path(file))]
    at = f" at line {theirs[-1][1]} of {theirs[-1][0]}" if theirs else ""
    raise Failure(f"training's backward pass failed: a tensor it saved{at} was then changed in place", INPLACE_HINT)


def multihead_reference(x, c_attn, c_proj, n_head, scale=True, order=False, join=True, proj=False,
                        **weights_mistake):
    """model.py's CausalSelfAttention, written out with the given weights; the flags make the known
    mistakes (order: q and k swapped, "qvk": k and v; join=False: no transpose back; proj: c_proj without .T,
    "none": left out; scale "nh": by sqrt(n_head), "late": the weights by sqrt(hs), after the softmax; the others:
    scaled's and weights_reference's)."""
    B, T, C = x.shape
    hs = C // n_head
    q, k, v = (x @ c_attn.T).split(C, dim=2)
    if order == "qvk":  # read as q, v, k
        k, v = v, k
    elif order:  # read as k, q, v
        q, k = k, q
    q, k, v = (t.view(B, T, n_head, hs).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
    att = q @ k.transpose(-2, -1)  # (B, nh, T, T)
    att = att / math.sqrt(n_head) if scale == "nh" else scaled(att, hs, C, scale != "late" and scale)
    y = weights_reference(att, **weights_mistake) @ v  # (B, nh, T, hs)
    y = y / math.sqrt(hs) if scale == "late" else y
    y = (y.transpose(1, 2) if join else y).reshape(B, T, C)
    return y if proj == "none" else y @ (c_proj if proj else c_proj.T)


HEADS_APART = ("the heads reached c_proj apart, hs channels each: join them side by side first, on the last "
               "axis, to (B, T, C): torch.cat(heads, dim=-1) for a list of (B, T, hs), y.transpose(1, 2).reshape(B, "
               "T, C) for (B, nh, T, hs); a cat on another axis (dim=1 is time) stacks them instead")


def check_multihead(m):
    # hs = 6: not n_head, nor sqrt(C), so that a scaling by either is told apart from the right one
    config = GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=4, n_embd=24, attention="manual")
    torch.manual_seed(0)
    attn = CausalSelfAttention(config).eval()  # the repo's own, with its own weights
    x = torch.randn(2, 8, 24, generator=seeded())
    c_attn, c_proj = attn.c_attn.weight.detach(), attn.c_proj.weight.detach()
    with hinting(r"mat1 and mat2 shapes cannot be multiplied \(\d+x6 and 24x24\)", HEADS_APART):  # hs wide, c_proj
        got = call(m.multi_head_attention, x, c_attn, c_proj, 4)
    expect_shape(got, (2, 8, 24), "out (B, T, C)", "join the heads back: (B, nh, T, hs) -> (B, T, nh * hs), "
                 "then c_proj")
    same_each_call(lambda: call(m.multi_head_attention, x, c_attn, c_proj, 4), got, "out (B, T, C)")
    flags = {"mask": {"mask": False}, "dim": {"dim": -2}, "scale": {"scale": False}, "join": {"join": False},
             "zero": {"fill": 0.0}, "scale_C": {"scale": "C"}, "peek": {"diagonal": 1}, "proj": {"proj": True},
             "order": {"order": True}, "after": {"after": True}, "times": {"scale": "times"},
             "root": {"scale": "hs"}, "heads": {"scale": "nh"}, "flip": {"flip": True}, "no_proj": {"proj": "none"},
             "qvk": {"order": "qvk"}, "scale_T": {"scale": "T"}, "late": {"scale": "late"},
             "scale_B": {"scale": "B"}, "pow": {"scale": "pow"}, "pow_paren": {"scale": "pow_paren"}}
    mistakes = {name: multihead_reference(x, c_attn, c_proj, 4, **flag) for name, flag in flags.items()}
    hint = attention_hint(got, mistakes)
    check_causal(lambda x: call(m.multi_head_attention, x, c_attn, c_proj, 4), x, hint or
                 f"{ATTENTION_HINTS['mask']}; or positions mixed when the heads were split or joined (view and "
                 f"transpose(1, 2) move the head axis, not reshape alone)")
    with torch.no_grad():
        expected = attn(x)  # model.py's CausalSelfAttention itself
    expect(got, expected, "out (B, T, C), against model.py's CausalSelfAttention", hint or
           "each head h reads channels h*hs .. (h+1)*hs of q, k and v; join the heads back in order", dtype=True)
    gradients_reach(lambda w: call(m.multi_head_attention, x, w[0], w[1], 4), [c_attn, c_proj], ["c_attn", "c_proj"])
    x, c_attn, c_proj = (torch.randn(*shape, generator=seeded(i)) / 3 for i, shape in enumerate(((1, 11, 12), (36, 12),
                                                                                                 (12, 12))))
    what = "out (B, T, C) for T = 11, C = 12, n_head 2"
    expect(at_another_size(what, m.multi_head_attention, x, c_attn, c_proj, 2),
           multihead_reference(x, c_attn, c_proj, 2), what, SIZE_HINT)
    # hs = 4, where both sizes above have 6, and T = 11 > C = 8: a head size written in, or a mask made C by C, fails
    narrow = [torch.randn(*shape, generator=seeded(i)) / 3 for i, shape in enumerate(((1, 11, 8), (24, 8), (8, 8)))]
    what = "out (B, T, C) for T = 11, C = 8, n_head 2"
    expect(at_another_size(what, m.multi_head_attention, *narrow, 2), multihead_reference(*narrow, 2), what, SIZE_HINT)
    short = [narrow[0][:, :4], *narrow[1:]]  # T = 4, shorter than any before: a mask kept, and only ever grown
    what = "out (B, T, C) for T = 4, after T = 11"
    expect(at_another_size(what, m.multi_head_attention, *short, 2), multihead_reference(*short, 2), what, SIZE_HINT)
    # scores of a few hundred; then q = -k (c_attn's rows: q, k, v), as in check_head (row 0's own: -101 and -167)
    q_rows, k_rows, v_rows = (c_attn * 20).split(12)
    for sharp in (torch.cat([q_rows, k_rows, v_rows]), torch.cat([-k_rows, k_rows, v_rows])):
        check_sharp(lambda x, sharp=sharp: call(m.multi_head_attention, x, sharp, c_proj, 2), x,
                    multihead_reference(x, sharp, c_proj, 2), "out (B, T, C) for scores of a few hundred")


MLP_NONLINEARITIES = {"ReLU, the video's": F.relu,
                      "GELU's tanh approximation": lambda h: F.gelu(h, approximate="tanh"),
                      "GELU's sigmoid approximation": lambda h: h * torch.sigmoid(1.702 * h),
                      "SiLU": F.silu}


def dropped_out(got, expected):
    """Whether got is expected with dropout applied: some elements 0, the rest all scaled by one factor > 1."""
    zeros = (got == 0) & (expected != 0)
    kept = ~zeros & (expected.abs() > 1e-3)
    if not zeros.any() or not kept.any():
        return False
    ratio = got[kept] / expected[kept]
    return bool(ratio.min() > 1 and torch.allclose(ratio, ratio.mean().expand_as(ratio), rtol=1e-3))


# for the MLP and the block: dropout inside them (the video's FeedForward ends with it)
PART_DROPOUT_HINT = ("no dropout here: F.dropout drops whenever it is not told training=False; the GPT applies its "
                     "dropout itself, as a module that evaluation switches off, and the check compares without it")
# for the MLP or the block whose two calls differ: dropout, or weights (a part) made afresh at each call
MLP_RANDOM_HINT = (PART_DROPOUT_HINT + ". Or a weight made inside the function (nn.Linear(...), torch.randn): use "
                   "the weights given")
BLOCK_RANDOM_HINT = (PART_DROPOUT_HINT + ". Or a part made inside the function (nn.LayerNorm(...), nn.Linear(...)): "
                     "use the parts given")


def check_block(m):
    config = GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=4, n_embd=16, attention="manual")
    torch.manual_seed(0)
    blk = Block(config).eval()  # the repo's own
    with torch.no_grad():
        for seed, ln in enumerate((blk.ln_1, blk.ln_2)):  # fresh gains are all 1: ln_1 and ln_2 would be alike
            ln.weight.normal_(1.0, 0.5, generator=seeded(seed))
    x = torch.randn(2, 8, 16, generator=seeded())
    check_mlp(m, blk.mlp, x)  # whole, first: an exercise "not finished" with the block to write has a right MLP
    check_residual_block(m, blk, x)


# training runs backward through each part, so its gradients must be model.py's too: the values can match while an
# in-place `x += ...` breaks backward (a LayerNorm keeps its input for it), or a .detach() cuts a path
def check_mlp(m, mlp, x):
    c_fc, c_proj = mlp.c_fc.weight, mlp.c_proj.weight
    with torch.no_grad():
        got, expected = call(m.mlp, x, c_fc, c_proj), mlp(x)
        for name, other in MLP_NONLINEARITIES.items():  # (the exact GELU's output differs from each by 1e-5 or more)
            if matches(got, other(x @ c_fc.T) @ c_proj.T):
                raise Failure(f"mlp (B, T, C): the nonlinearity is {name}", "model.py's MLP uses nn.GELU(), the "
                              "exact GELU: F.gelu(h), with no approximate=")
        one_gelu = ("one GELU, between the two layers: x @ c_fc.T widens x to 4C, F.gelu bends it there, then "
                    "@ c_proj.T brings it back to C")
        for what, wrong, hint in (("GELU applied twice", F.gelu(F.gelu(x @ c_fc.T)) @ c_proj.T, one_gelu),
                                  ("GELU before c_fc, on x", F.gelu(x) @ c_fc.T @ c_proj.T, one_gelu),
                                  ("GELU after c_proj", F.gelu(x @ c_fc.T @ c_proj.T), one_gelu),
                                  ("no GELU", x @ c_fc.T @ c_proj.T, one_gelu),
                                  ("x added to the MLP's output", x + expected, "the MLP returns its update alone: "
                                   "the block adds it to x (the residual connection), once")):
            if matches(got, wrong):
                raise Failure(f"mlp (B, T, C): {what}", hint)
        if torch.is_tensor(got) and got.shape == x.shape and dropped_out(got, expected):
            raise Failure("mlp (B, T, C): some outputs are 0 and the others scaled up, as dropout does",
                          PART_DROPOUT_HINT)
        if not matches(got, expected):  # (a second call only then: none for a right one)
            same_each_call(lambda: call(m.mlp, x, c_fc, c_proj), got, "mlp (B, T, C)", MLP_RANDOM_HINT)
        expect(got, expected, "mlp (B, T, C), against model.py's MLP",
               "c_proj(gelu(c_fc(x))): x @ c_fc.T, F.gelu, then @ c_proj.T", dtype=True)
    x = x.clone().requires_grad_()
    expect_gradients(lambda: call(m.mlp, x, c_fc, c_proj), lambda: mlp(x), {"x": x, "c_fc": c_fc, "c_proj": c_proj},
                     "mlp", "c_proj(gelu(c_fc(x))), each step a new tensor")
    at_a_second_size("mlp", lambda x: call(m.mlp, x, c_fc, c_proj), mlp, x)


def at_a_second_size(name, fn, reference, x):
    """Exercise 5's part fn at B = 1, T = 5, after x's size: a B * T or a T written in (a reshape to 16 rows, say)
    fits the first size only, and would break in training."""
    x, what = torch.randn(1, 5, x.size(-1), generator=seeded(1)), f"{name} (B, T, C) for B = 1, T = 5"
    with torch.no_grad():
        expect(at_another_size(what, fn, x), reference(x), what, SIZE_HINT)


def check_residual_block(m, blk, x):
    attention, feed_forward = blk.attn, blk.mlp  # the repo's own parts, called as functions
    with torch.no_grad():
        got, expected = call(m.block, x, attention, feed_forward, blk.ln_1, blk.ln_2), blk(x)
        if not matches(got, expected):
            same_each_call(lambda: call(m.block, x, attention, feed_forward, blk.ln_1, blk.ln_2), got,
                           "block (B, T, C)", BLOCK_RANDOM_HINT)
        if torch.is_tensor(got) and got.shape == x.shape:
            post = blk.ln_1(x + attention(x))
            if matches(got, blk.ln_2(post + feed_forward(post))):
                raise Failure("the LayerNorms come after the sums (post-norm)", "pre-norm: each part reads "
                              "ln(x), and its result is added to x itself: x = x + attention(ln_1(x))")
            a = attention(blk.ln_1(x))  # (B, T, C): what attention adds to x
            if matches(got, feed_forward(blk.ln_2(a))):
                raise Failure("no residual connections", "add each part's result to x (x + f(ln(x))), "
                              "instead of replacing x with it")
            for missing, wrong in (("attention's", a + feed_forward(blk.ln_2(a))),  # x replaced by a, then added to
                                   ("the MLP's", feed_forward(blk.ln_2(x + a)))):  # x + a replaced by the MLP's
                if matches(got, wrong):
                    raise Failure(f"{missing} residual connection is missing", "both parts add their result to x: "
                                  "x = x + attention(ln_1(x)), then x = x + feed_forward(ln_2(x))")
            normed = blk.ln_1(x)  # x itself normalised: the stream carries ln_1(x) on, not x
            then = normed + attention(normed)
            stream_normed = then + feed_forward(blk.ln_2(then))
            stale = x + a + feed_forward(blk.ln_2(blk.ln_1(x)))  # the MLP reads ln_1(x) through ln_2, not x + a
            after = x + a
            ended_normed = blk.ln_2(after + feed_forward(blk.ln_2(after)))
            half = x + 0.5 * a
            half = half + 0.5 * feed_forward(blk.ln_2(half))
            plain = lambda h: F.layer_norm(h, h.shape[-1:])  # a LayerNorm made afresh: gains of 1, not ln_1's
            fresh = x + attention(plain(x))
            fresh = fresh + feed_forward(plain(fresh))
            for what, wrong, hint in (("x itself was normalised (x = ln_1(x)): the residual stream carries ln_1(x) "
                                       "on", stream_normed, "normalise a copy that the part reads, and add the "
                                       "result to x as it was: x = x + attention(ln_1(x))"),
                                      ("the MLP read the block's input normalised, not x after attention",
                                       stale, "the MLP reads x after attention's sum: x = x + attention(ln_1(x)), "
                                       "then x = x + feed_forward(ln_2(x)), with that new x"),
                                      ("the block's output went through ln_2", ended_normed, "the block returns x "
                                       "itself, after the two sums: each LayerNorm only feeds its part (the GPT "
                                       "has a final one of its own, ln_f, before the head)"),
                                      ("each part's result was scaled by 0.5", half, "add each part's result "
                                       "whole: x = x + attention(ln_1(x)), then x = x + feed_forward(ln_2(x))"),
                                      ("the LayerNorms were made afresh (F.layer_norm, or a new nn.LayerNorm), "
                                       "without ln_1's and ln_2's learned gains", fresh, "use the ln_1 and ln_2 "
                                       "given: they carry the block's gains, which training learns and a new "
                                       "LayerNorm lacks")):
                if matches(got, wrong):
                    raise Failure(what, hint)
            mlp_first = x + feed_forward(blk.ln_2(x))
            for what, wrong in (("attention and the MLP both read the block's input (a parallel block, GPT-J's)",
                                 x + a + feed_forward(blk.ln_2(x))),
                                ("the MLP read attention's output alone, not x with it added",
                                 x + a + feed_forward(blk.ln_2(a))),
                                ("the MLP came before attention", mlp_first + attention(blk.ln_1(mlp_first)))):
                if matches(got, wrong):
                    raise Failure(what, "one after the other: x = x + attention(ln_1(x)); then the MLP reads that "
                                  "new x, x = x + feed_forward(ln_2(x))")
        expect(got, expected, "block (B, T, C), against model.py's Block",
               "x = x + attention(ln_1(x)), then x = x + feed_forward(ln_2(x)): ln_1 before attention, ln_2 "
               "before the MLP", dtype=True)
    x = x.clone().requires_grad_()
    expect_gradients(lambda: call(m.block, x, attention, feed_forward, blk.ln_1, blk.ln_2), lambda: blk(x),
                     {"x": x, **dict(blk.named_parameters())}, "block", "x = x + attention(ln_1(x)), then "
                     "x = x + feed_forward(ln_2(x)): each sum a new tensor, every path in the graph")
    at_a_second_size("block", lambda x: call(m.block, x, attention, feed_forward, blk.ln_1, blk.ln_2), blk, x)


# ----------------------------------------------------------------------------
# 6-8: the loss, the schedule, sampling


@contextmanager
def forbidden(places, hint):
    """While the learner's code runs, each of places ({shown as: (owner, name)}) raises Failure:
    what the exercise asks them to write, they may not call."""
    saved = [(owner, name, vars(owner).get(name)) for owner, name in places.values()]

    def refusal(shown):
        def refuse(*args, **kwargs):
            raise Failure(f"it calls {shown}, which the exercise asks you to write yourself", hint)
        return refuse
    for shown, (owner, name) in places.items():
        setattr(owner, name, refusal(shown))
    try:
        yield
    finally:
        for owner, name, original in saved:
            if original is None:  # (inherited, as torch.Tensor's methods are)
                delattr(owner, name)
            else:
                setattr(owner, name, original)


LOSS_ITSELF = {"nn.CrossEntropyLoss": (torch.nn.CrossEntropyLoss, "forward"),
               "nn.LogSoftmax": (torch.nn.LogSoftmax, "forward"),
               "F.cross_entropy": (F, "cross_entropy"), "F.log_softmax": (F, "log_softmax"),
               "torch.log_softmax": (torch, "log_softmax"), ".log_softmax()": (torch.Tensor, "log_softmax"),
               "torch.logsumexp": (torch, "logsumexp"), ".logsumexp()": (torch.Tensor, "logsumexp"),
               "torch.special.logsumexp": (torch.special, "logsumexp"),
               "torch.special.log_softmax": (torch.special, "log_softmax"),
               "torch.logcumsumexp": (torch, "logcumsumexp"), ".logcumsumexp()": (torch.Tensor, "logcumsumexp")}


NO_GRADIENT = ("compute it with tensor operations only (no .item(), .detach(), torch.tensor(...), numpy or "
               "torch.no_grad), so that training can follow it back")


GATHERED = ("a (B, T) tensor met a (B, T, 1) one, which lines up as (1, B, T) against (B, T, 1): gather keeps the "
            "axis it gathered along, so logits.gather(-1, targets.unsqueeze(-1)) is (B, T, 1); .squeeze(-1) makes it "
            "(B, T), as a logsumexp over dim=-1 is")


FROM_TARGETS = ("it is right only when the targets name the last character: a width read off the targets "
                "(F.one_hot(targets) without num_classes, targets.max() + 1) is then too narrow; take it from the "
                "logits, F.one_hot(targets, num_classes=logits.size(-1)), or pick with gather")


def check_cross_entropy(m):
    logits = torch.randn(2, 5, 7, generator=seeded())
    targets = torch.randint(7, (2, 5), generator=seeded(1))
    expected = F.cross_entropy(logits.view(-1, 7), targets.view(-1))
    big = logits * 1000  # exp(1000) overflows float32, and a probability of exp(-1000) rounds to 0
    high = logits + 1000  # overflows too, but no probability is tiny: only a missing max fails here
    low = logits - 1000  # every exp underflows to 0 unless each row's max, below 0 here too, comes out first
    with forbidden(LOSS_ITSELF, "logsumexp of each row (its max m + log(sum(exp(x - m)))), minus the target's logit"):
        with hinting(r"\((2|5)\) must match the size of tensor b \((5|2)\) at non-singleton dimension 1", GATHERED,
                     on_line="gather"), \
             hinting(r"Index tensor must have the same number of dimensions", "gather's index needs the input's "
                     "number of dimensions: logits.gather(-1, targets.unsqueeze(-1)) is (B, T, 1), then .squeeze(-1) "
                     "(logits flattened to (B*T, V) take targets.view(-1, 1))", on_line="gather"):
            got, got_big = call(m.cross_entropy, logits, targets), call(m.cross_entropy, big, targets)
        got_high, got_low = call(m.cross_entropy, high, targets), call(m.cross_entropy, low, targets)
    if torch.is_tensor(got) and got.dim() == 0:
        summed = F.cross_entropy(logits.view(-1, 7), targets.view(-1), reduction="sum")
        if matches(got, summed):
            raise Failure("the sum over the positions, not the mean", "divide by the number of positions, B*T")
        against = f"the loss, against F.cross_entropy: expected {expected.item():.6g}, got {got.item():.6g}"
        if matches(got, expected * 5):  # a sum over each sequence, then the mean over the batch
            raise Failure(f"{against}, T = 5 times too much", "a sum over the T axis before the mean, or the sum "
                          "divided by len(targets), which is B: the mean over all B*T positions, .mean() of the (B, T) "
                          "losses, or the sum / targets.numel()")
        if matches(got, expected / 7):  # the sum divided by logits.numel(), B*T*V
            raise Failure(f"{against}, V = 7 times too little", "the sum divided by logits.numel(), B*T*V: divide "
                          "by the number of positions, B*T, targets.numel()")
        if matches(got, expected * 2):  # the mean over each sequence, then the sum over the batch
            raise Failure(f"{against}, B = 2 times too much", "a sum over the batch axis: the mean over all B*T "
                          "positions, .mean() of the (B, T) losses")
        if matches(got, -expected):
            raise Failure(f"{against}: the sign is flipped", "the loss is logsumexp(logits) - logits[target], "
                          "minus the log-probability of the target, so that it is 0 or more and falls as it improves")
        if matches(got, expected / math.log(2)):
            raise Failure(f"{against}: in bits, not nats", "use exp and the natural log (torch.exp, torch.log), not "
                          "exp2 and log2: F.cross_entropy's loss is in nats, and so is every loss the repo prints")
        for shifted in ((logits[:, :-1], targets[:, 1:]), (logits[:, 1:], targets[:, :-1])):  # a shift of their own
            if matches(got, F.cross_entropy(shifted[0].reshape(-1, 7), shifted[1].reshape(-1))):
                raise Failure(f"{against}: each position scored against another position's target", "targets[b, t] "
                              "is already the character after position t (get_batch shifted it): compare logits[b, t] "
                              "with targets[b, t], with no shift of your own")
        if matches(got, expected - logits.max(dim=-1).values.mean()):
            raise Failure(against,
                          "each row's largest logit m was taken out of the exp but not added back: "
                          "logsumexp(x) = m + log(sum(exp(x - m)))")
        # logits[..., targets]: (B, T, B, T), every target's logit at every position, not one per position
        if matches(got, torch.logsumexp(logits, dim=-1).mean() - logits[..., targets].mean()):
            raise Failure("each position's loss took the logits of every target, not of its own",
                          "one logit per position, the one its own target names: "
                          "logits.gather(-1, targets.unsqueeze(-1)) (B, T, 1)")
    if isinstance(got, numbers.Real):  # (a tensor's .item(): the number is right, but training cannot follow it)
        raise Failure(f"the loss is a number ({type(got).__name__}), not a tensor", NO_GRADIENT)
    expect(got, expected, "the loss, against F.cross_entropy", "mean over positions of logsumexp(logits) - "
           "logits[target]")
    expect(got_high, F.cross_entropy(high.view(-1, 7), targets.view(-1)), "the loss of large logits (+ 1000)",
           "exp overflows: subtract each row's largest logit before exp (log-sum-exp), which changes nothing in "
           "the softmax")
    expect(got_low, F.cross_entropy(low.view(-1, 7), targets.view(-1)), "the loss of logits far below 0 (- 1000)",
           "every exp underflows to 0, and log(0) = -inf: subtract each row's largest logit, whatever its sign (not "
           "clamped at 0), so that the largest exp is exp(0) = 1")
    one_max = big.max()  # for the whole tensor: a row far below it has every exp(x - m) = 0, and log(0) = -inf
    if matches(got_big, (one_max + torch.exp(big - one_max).sum(dim=-1).log() -
                         big.gather(-1, targets.unsqueeze(-1)).squeeze(-1)).mean()):
        raise Failure(f"the loss of very large logits (x 1000): {got_big.item():.6g}", "m must be each row's max, "
                      "logits.max(dim=-1, keepdim=True).values: with one max for the whole tensor, a row far below "
                      "it has every exp(x - m) = 0")
    # nan, where one row alone is right: an exp overflowed in a row above an m that several rows share (their maxes'
    # mean, say); one row alone shares it with none (the log of a softmax is nan there too: 0 * log(0), one-hot)
    overflowed = torch.is_tensor(got_big) and got_big.isnan().any() and matches(
        call(m.cross_entropy, big[:1, :1], targets[:1, :1]), F.cross_entropy(big[0, :1], targets[0, :1]))
    expect(got_big, F.cross_entropy(big.view(-1, 7), targets.view(-1)), "the loss of very large logits (x 1000)",
           "nan: exp(x - m) overflowed where x is far above m, an m shared by several rows (their maxes' mean, say): "
           "m must be each row's own max, logits.max(dim=-1, keepdim=True).values" if overflowed else
           "a probability rounded to 0, and log(0) = -inf: never take the log of a softmax; the loss is "
           "logsumexp(logits) - logits[target], with the max taken out and added back")
    mine, theirs = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    got = call(m.cross_entropy, theirs, targets)  # (training follows the loss back to the logits)
    if not got.requires_grad:
        raise Failure("the loss carries no gradient back to the logits", NO_GRADIENT)
    F.cross_entropy(mine.view(-1, 7), targets.view(-1)).backward()
    grad = gradients(got, [theirs], lambda: call(m.cross_entropy, theirs, targets))[0]
    if grad is None:  # (a new tensor made from the loss's value: it needs a gradient, but not from the logits)
        raise Failure("the loss carries no gradient back to the logits", NO_GRADIENT)
    expect(grad, mine.grad, "the gradient of the loss with respect to the logits", "(softmax(logits) - "
           "one_hot(targets)) / (B*T): a part of the loss cut from the graph (.detach()) changes it (the max taken "
           "out may be detached: it cancels)")
    # the targets above name the last character, 6; these never do: a width read off them is one short
    fewer, what = targets.clamp(max=5), "the loss for targets that never name the last character"
    expect(at_another_size(what, m.cross_entropy, logits, fewer, hint=FROM_TARGETS),
           F.cross_entropy(logits.view(-1, 7), fewer.view(-1)), what, FROM_TARGETS)
    # a second size: a B, T or V written in (a view to 10 rows of 7, say) fits the first only
    logits, targets = torch.randn(3, 4, 9, generator=seeded(2)), torch.randint(9, (3, 4), generator=seeded(3))
    what = "the loss for B = 3, T = 4, V = 9"
    expect(at_another_size(what, m.cross_entropy, logits, targets), F.cross_entropy(logits.view(-1, 9),
           targets.view(-1)), what, SIZE_HINT)


def cosine(progress, lr, min_lr):
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (lr - min_lr)


SCHEDULE_MISTAKES = {  # the decay at step it of cfg's schedule as a mistake makes it -> (what, hint)
    lambda it, c: cosine((it - c.warmup_iters) / (c.max_iters - c.warmup_iters), c.lr, 0.0):
        ("the decay ends at 0, not at min_lr", "min_lr + 0.5 * (1 + cos(pi * progress)) * (lr - min_lr): the "
         "cosine spans lr - min_lr, on top of min_lr"),
    lambda it, c: cosine((it - c.warmup_iters) / (c.max_iters - 1 - c.warmup_iters), c.lr, c.min_lr):
        ("the decay reaches min_lr one step early, at max_iters - 1", "progress = (it - warmup_iters) / "
         "(max_iters - warmup_iters): nanoGPT's, which reaches 1 at step max_iters, one past the last"),
    lambda it, c: cosine(it / c.max_iters, c.lr, c.min_lr):
        ("the cosine counts from step 0, not from the end of the warmup", "progress starts at 0 where the warmup "
         "ends: (it - warmup_iters) / (max_iters - warmup_iters)"),
    lambda it, c: cosine((it - c.warmup_iters) / (c.max_iters - c.warmup_iters) / math.pi, c.lr, c.min_lr):
        ("the decay never gets near min_lr: cos(progress), without pi", "cos(pi * progress) falls from 1 to -1 as "
         "progress goes from 0 to 1; cos(progress) only to 0.54"),
    lambda it, c: cosine(1 - (it - c.warmup_iters) / (c.max_iters - c.warmup_iters), c.lr, c.min_lr):
        ("the decay runs backwards: from min_lr up to lr after the warmup", "0.5 * (1 + cos(pi * progress)) is 1 at "
         "progress 0 and 0 at 1, and it scales lr - min_lr on top of min_lr; with 1 - cos, or lr and min_lr "
         "swapped, it runs the other way"),
    lambda it, c: c.min_lr + (1 + math.cos(math.pi * (it - c.warmup_iters) / (c.max_iters - c.warmup_iters))) * (
            c.lr - c.min_lr):
        ("the decay starts at twice lr - min_lr: the 0.5 left out", "0.5 * (1 + cos(pi * progress)) goes from 1 "
         "to 0; without the 0.5, 1 + cos goes from 2 to 0"),
    lambda it, c: c.min_lr + math.cos(math.pi / 2 * (it - c.warmup_iters) / (c.max_iters - c.warmup_iters)) * (
            c.lr - c.min_lr):
        ("the decay is a quarter of a cosine, cos(pi / 2 * progress)", "0.5 * (1 + cos(pi * progress)): a half "
         "cosine, flat at both ends, from lr down to min_lr"),
    lambda it, c: c.lr - (c.lr - c.min_lr) * (it - c.warmup_iters) / (c.max_iters - c.warmup_iters):
        ("the decay is a straight line, not a cosine", "min_lr + 0.5 * (1 + cos(pi * progress)) * (lr - min_lr): "
         "flat at first, steepest in the middle, flat again at the end"),
    lambda it, c: c.lr:
        ("the learning rate never decays after the warmup", "no decay written after the warmup, or a progress that "
         "stays 0: `//` rounds (it - warmup_iters) // (max_iters - warmup_iters) down to 0; divide with /"),
    lambda it, c: cosine((it - c.warmup_iters) / c.max_iters, c.lr, c.min_lr):
        ("the decay stops short of min_lr: progress divided by max_iters", "the decay lasts max_iters - "
         "warmup_iters steps: progress = (it - warmup_iters) / (max_iters - warmup_iters)"),
    lambda it, c: cosine((it - c.warmup_iters) / (c.max_iters - c.warmup_iters), c.lr + c.min_lr, c.min_lr):
        ("the decay starts at lr + min_lr: the cosine spans lr, on top of min_lr", "the cosine spans lr - min_lr: "
         "min_lr + 0.5 * (1 + cos(pi * progress)) * (lr - min_lr) falls from lr to min_lr"),
    lambda it, c: max(c.min_lr, cosine((it - c.warmup_iters) / (c.max_iters - c.warmup_iters), c.lr, 0.0)):
        ("the decay is cut off at min_lr, not laid on top of it", "min_lr + 0.5 * (1 + cos(pi * progress)) * (lr - "
         "min_lr): the whole cosine, from lr down to min_lr, not a cosine to 0 held up at min_lr"),
}
FROM_ZERO = ("the warmup starts at 0: step 0's learning rate is 0", "a step at lr 0 does not move the weights: the "
             "warmup is lr * (it + 1) / (warmup_iters + 1), as the docstring says")
WARMUP_MISTAKES = {  # the warmup at step it, as a mistake makes it -> (what, hint)
    lambda it, c: c.lr * it / c.warmup_iters: FROM_ZERO,
    lambda it, c: c.lr * it / (c.warmup_iters + 1): FROM_ZERO,
    lambda it, c: c.lr * (it + 1) / c.warmup_iters:
        ("the warmup reaches lr a step early, at step warmup_iters - 1", "lr * (it + 1) / (warmup_iters + 1): the "
         "last warmup step is just under lr, and the decay starts from lr at step warmup_iters"),
    lambda it, c: c.min_lr + (c.lr - c.min_lr) * (it + 1) / (c.warmup_iters + 1):
        ("the warmup climbs from min_lr, not from near 0", "lr * (it + 1) / (warmup_iters + 1): small steps while "
         "the weights are random; min_lr is where the decay ends"),
}


def one_number(v):
    """Whether v is one number, as float() reads it: a Python or NumPy number, a 0-d array, a tensor of one element
    (not a string)."""
    if isinstance(v, (str, bytes)):
        return False
    try:
        float(v)
    except (TypeError, ValueError):  # (None, a list, an array or tensor of several numbers)
        return False
    return True


def at_step(its):
    """first_mismatch's where for a schedule computed at the steps its: the step, not the list's index."""
    return lambda at: f"step {its[at[0]]}"


def check_schedule(m):
    cfg = TrainConfig(lr=1e-3, min_lr=1e-4, warmup_iters=10, max_iters=110)
    its = list(range(110))
    expected = torch.tensor([train.lr_at(it, cfg) for it in its])
    grad = torch.is_grad_enabled()
    values = [m.learning_rate(it, 10, 110, 1e-3, 1e-4) for it in its]
    autograd_kept("learning_rate", grad)
    if not all(one_number(v) for v in values):
        at, wrong = next((it, v) for it, v in zip(its, values) if not one_number(v))
        # at some steps only: a step no branch covers, as `if it < warmup_iters ... elif it > warmup_iters` leaves one
        some = any(one_number(v) for v in values)
        step = f" at step {at} (warmup_iters 10, max_iters 110)" if some else ""
        if wrong is None:
            raise Failure(f"learning_rate returned None{step}, not a number", "is there a branch with no `return` for "
                          "this step? < and > leave out the step where they meet" if some else "does it end without "
                          "a `return`?")
        kind = type(wrong).__name__ + (f" of shape {tuple(wrong.shape)}" if hasattr(wrong, "shape") else "")
        raise Failure(f"learning_rate returned a {kind}{step}, not a number", "return one number: the learning rate "
                      "of step it")
    got = torch.tensor([float(v) for v in values])
    for shift in (1, -1):
        shifted = torch.tensor([train.lr_at(max(0, it + shift), cfg) for it in its])
        if matches(got, shifted):
            raise Failure(f"the schedule is {'ahead of' if shift > 0 else 'behind'} the repo's by one step",
                          "off by one step: step 0 already takes lr * 1 / (warmup_iters + 1), and the cosine "
                          "starts at step warmup_iters with lr itself")
    if matches(got, torch.full_like(got, 1e-3)):
        raise Failure("the learning rate is lr at every step, the video's constant", "warm up, then decay, as the "
                      "docstring says: small steps while the weights are random, small ones again at the end")
    exact = dict(rtol=1e-6, atol=1e-9)  # the mistakes below differ from the schedule by as little as 2e-7
    if first_mismatch(got, expected, **exact):  # wrong: is it a mistake with a name?
        for mistakes, in_warmup in ((SCHEDULE_MISTAKES, False), (WARMUP_MISTAKES, True)):  # (the rest kept right)
            for mistake, (what, hint) in mistakes.items():
                wrong = torch.tensor([mistake(it, cfg) if (it < cfg.warmup_iters) == in_warmup else
                                      expected[it].item() for it in its])
                if not first_mismatch(got, wrong, **exact):
                    raise Failure(what, hint)
    expect(got, expected, "the learning rate at steps 0 .. 109 (lr 1e-3, min_lr 1e-4, warmup 10, max 110)",
           "warmup: lr * (it + 1) / (warmup_iters + 1); then min_lr + 0.5 * (1 + cos(pi * progress)) * "
           "(lr - min_lr)", worst=True, where=at_step(its), **exact)
    cfg = TrainConfig(lr=6e-4, min_lr=6e-5, warmup_iters=100, max_iters=2000)  # exercises train's, but its lr
    its, what = range(0, 2000, 7), "the learning rate of warmup 100, max 2000, lr 6e-4, min_lr 6e-5"
    hint = ("it is right for one set of numbers only: use the arguments given (warmup_iters, max_iters, lr, "
            "min_lr), not numbers written in, nor values kept from an earlier call, or rounded")
    got = at_another_size(what, lambda: torch.tensor([float(m.learning_rate(it, 100, 2000, 6e-4, 6e-5))
                                                      for it in its]), hint=hint)
    expect(got, torch.tensor([train.lr_at(it, cfg) for it in its]), what, hint, worst=True, where=at_step(its),
           **exact)
    cfg = TrainConfig(lr=1e-3, min_lr=3e-4, warmup_iters=5, max_iters=50)  # min_lr not lr / 10, as above and in nanoGPT
    got = torch.tensor([float(m.learning_rate(it, 5, 50, 1e-3, 3e-4)) for it in range(50)])
    expect(got, torch.tensor([train.lr_at(it, cfg) for it in range(50)]), "the learning rate of warmup 5, max 50, "
           "lr 1e-3, min_lr 3e-4", "the decay ends at the min_lr given (here not lr / 10)", worst=True,
           where=at_step(range(50)), **exact)


# the probs check's hint where no particular mistake is recognised
PROBS_HINT = "temperature divides the logits; top-k, then top-p, cut; the softmax of what is left sums to 1"


def probs_reference(logits, temperature, top_k, top_p):
    if temperature == 0:
        return F.one_hot(logits.argmax(dim=-1), logits.size(-1)).to(logits.dtype)
    logits = logits / temperature
    if top_k is not None:
        logits = keep_top_k(logits, top_k)
    if top_p is not None:
        logits = keep_top_p(logits, top_p)
    return F.softmax(logits, dim=-1)


def top_p_dropping(logits, temperature, top_k, dropped, unsort=True):
    """probs_reference's top-p with another rule: dropped(ordered) -> which of the probabilities, sorted in
    decreasing order, go; unsort=False leaves that mask in sorted order. -> the renormalised probabilities"""
    probs = probs_reference(logits, temperature, top_k, None)
    ordered, order = probs.sort(dim=-1, descending=True)
    drop = dropped(ordered)
    kept = probs.masked_fill(drop.scatter(-1, order, drop) if unsort else drop, 0.0)
    return kept / kept.sum(dim=-1, keepdim=True)


def top_p_counting_itself(logits, temperature, top_k, top_p):
    """The common top-p mistake: keep a character while the mass up to and including it is under p,
    which drops the likeliest one whenever it alone is above p."""
    return top_p_dropping(logits, temperature, top_k, lambda ordered: ordered.cumsum(dim=-1) >= top_p)


def top_p_stopping_short(logits, temperature, top_k, top_p):
    """Another: keep a character while the mass up to and including it is at most p, the likeliest always: this
    drops the one that carries the mass past p, which the nucleus keeps."""
    return top_p_dropping(logits, temperature, top_k,
                          lambda ordered: (ordered.cumsum(dim=-1) > top_p) & (torch.arange(ordered.size(-1)) > 0))


def top_p_reaching(logits, temperature, top_k, top_p):
    """Top-p that keeps a character while the mass before it is at most p (<=, where the docstring has <): the
    nucleus of Hugging Face's sampler, which also keeps a character that the ones before it bring to p exactly."""
    return top_p_dropping(logits, temperature, top_k, lambda ordered: ordered.cumsum(dim=-1) - ordered > top_p)


def top_p_down_the_batch(logits, temperature, top_k, top_p):
    """Top-p whose running sum ran down the batch (cumsum(dim=0)), not along each row: with the rule right, and
    counting the character itself too. -> [the probabilities of each]"""
    return [top_p_dropping(logits, temperature, top_k, lambda ordered: ordered.cumsum(dim=0) - ordered >= top_p),
            top_p_dropping(logits, temperature, top_k, lambda ordered: ordered.cumsum(dim=0) >= top_p)]


def top_p_row_0s(logits, temperature, top_k, top_p):
    """Top-p that cuts row 0's nucleus from every row, as code written for a batch of 1 does (the ids to drop found
    in row 0, then logits[:, ids] = -inf)."""
    probs = probs_reference(logits, temperature, top_k, None)  # (B, V)
    ordered, order = probs.sort(dim=-1, descending=True)
    drop = (ordered.cumsum(dim=-1) - ordered >= top_p)[0]  # (V,): row 0's, in sorted order
    drop[0] = False
    kept = probs.masked_fill(drop.scatter(-1, order[0], drop), 0.0)  # (B, V): one (V,) mask for every row
    return kept / kept.sum(dim=-1, keepdim=True)


def top_p_unsorted(logits, temperature, top_k, top_p):
    """Another: the nucleus found in sorted order, but its mask applied to the logits in the vocabulary's order."""
    return top_p_dropping(logits, temperature, top_k, lambda ordered: ordered.cumsum(dim=-1) - ordered >= top_p,
                          unsort=False)


def sums_the_logits(m):
    """Whether m's top-p ran its sum over the sorted logits, not over their probabilities: on logits that add up to
    p far sooner than their probabilities do, it keeps what that sum would (two of five, where the nucleus keeps
    four)."""
    logits = torch.tensor([[0.5, 0.4, 0.3, 0.2, 0.1]])  # probabilities 0.24 .. 0.16: the nucleus of 0.75 keeps 4
    try:
        got = call(m.next_char_probs, logits, temperature=1.0, top_k=None, top_p=0.75)
    except Exception:  # (an error here is not what the failing case met: that case's own message stands)
        return False
    return torch.is_tensor(got) and matches(got, F.pad(F.softmax(logits[:, :2], dim=-1), (0, 3)))  # (1, 5)


def top_p_first(logits, temperature, top_k, top_p):
    logits = logits / temperature
    return probs_reference(keep_top_p(logits, top_p) if top_p is not None else logits, 1.0, top_k, None)


def temperature_last(logits, temperature, top_k, top_p):
    return probs_reference(probs_reference(logits, 1.0, top_k, top_p).log(), temperature, None, None)


def temperature_times(logits, temperature, top_k, top_p):
    return probs_reference(logits, 1 / temperature, top_k, top_p)


def temperature_twice(logits, temperature, top_k, top_p):
    """Top-p that measures its nucleus on logits divided by the temperature once more: softmax(logits / T) taken
    of logits that were divided by T already."""
    logits = keep_top_k(logits / temperature, top_k) if top_k is not None else logits / temperature
    if top_p is not None:
        logits = logits.masked_fill(keep_top_p(logits / temperature, top_p).isinf(), float("-inf"))
    return F.softmax(logits, dim=-1)


ORDER_HINTS = {  # a step out of order, or done the other way round -> what it says
    top_p_first: "top-p measured the mass of the whole distribution (done before top-k, top-k skipped where top-p is "
                 "given, or top-p run on top-k's probabilities before they were renormalised): cut to the top_k first, "
                 "renormalise what is left, and take the nucleus of that",
    temperature_last: "the temperature came after the cuts: divide the logits by it first, so that it changes "
                      "which characters top-p keeps",
    temperature_times: "the logits were multiplied by the temperature: divide them by it, so that one below 1 "
                       "sharpens the distribution and one above 1 flattens it"}


def check_sampling(m):
    five = torch.tensor([[2.0, 0.5, 1.0, -1.0, 0.0], [0.1, 0.2, 3.0, 0.4, 0.3]])
    three = torch.tensor([[0.4, 0.35, 0.25]]).log()  # where the order matters (below)
    close = torch.tensor([[1.0, 1.0005, 0.999]])  # greedy: [0, 1, 0]; temperature 1e-3 instead: [0.33, 0.55, 0.12]
    tied = torch.tensor([[2.0, 1.0, 0.0, 1.0]])  # top_k 2 keeps 3: the 2nd and the 4th tie
    even = torch.zeros(1, 4)  # 0.25 each, exactly: top_p 0.5 keeps 2 (before the 3rd, 0.5 is not under 0.5)
    top_tie = torch.tensor([[1.0, 3.0, 3.0, 0.0]])  # greedy: all on the 2nd or on the 3rd, not half on each
    steps = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    cases = [(five, 1.0, None, None), (five, 0.5, None, None), (five, 2.0, None, None), (five, 0, None, None),
             (five, 1.0, 2, None), (five, 1.0, None, 0.75), (five, 0.7, 3, 0.6), (five, 1.0, None, 0.3),
             (five, 1.0, 9, None),  # top_k above V keeps every character
             (three, 1.0, 2, 0.5),  # top-k, then top-p of what is left: [1, 0, 0]; top-p first: [0.53, 0.47, 0]
             (three, 0.5, None, 0.45),  # the temperature first, then the cut: [1, 0, 0]; the other way: two kept
             (close, 0, None, None), (tied, 1.0, 2, None), (even, 1.0, None, 0.5), (top_tie, 0, None, None),
             (steps, 0.5, None, 0.9)]  # at T 0.5, 0.88 and 0.12: a second division by T keeps the first alone
    for logits, temperature, top_k, top_p in cases:
        got = call(m.next_char_probs, logits, temperature=temperature, top_k=top_k, top_p=top_p)
        expected = probs_reference(logits, temperature, top_k, top_p)
        case = f"temperature {temperature}, top_k {top_k}, top_p {top_p}"
        fits = torch.is_tensor(got) and got.shape == expected.shape  # (B, V): the mistakes below can be told apart
        if logits is even and fits and matches(got.sort(dim=-1).values, expected.sort(dim=-1).values):
            continue  # (which 2 of the 4 tied characters stay is up to the sort's order)
        # a cut at the nucleus's smallest probability (probs >= it) keeps all 4
        if logits is even and fits and matches(got, torch.full_like(expected, 0.25)):
            raise Failure(f"probs, {case}: every character tied at top-p's edge kept", "top-p keeps the fewest: of "
                          "the characters tied at its edge, only as many as reach p stay (two of four at 0.25 for p "
                          "0.5), whichever the sort puts first; top-k, not top-p, keeps every tie")
        if temperature == 0 and fits and got.is_floating_point():
            top = logits == logits.max(dim=-1, keepdim=True).values
            one_hot = ((got == 0) | (got == 1)).all() and matches(got.sum(dim=-1), torch.ones(len(got)))
            if one_hot and top[got == 1].all():
                continue  # (of characters tied for the top, greedy may take any one)
            if ((got > 0).sum(dim=-1) > 1).any() and top[got > 0].all():  # (every character given some is a top)
                raise Failure(f"probs, {case}: the probability on several characters tied for the top", "greedy "
                              "gives all of it to one character, also where several tie: F.one_hot(logits.argmax("
                              "dim=-1), V) (argmax takes the first of them)")
        if top_p is not None and fits and not matches(got, expected) and sums_the_logits(m):
            raise Failure(f"probs, {case}: top-p's running sum was taken over the logits", "the nucleus is a share "
                          "of the probability: sort the probabilities (softmax of the logits), not the logits, and "
                          "add those up")
        if top_p is not None and temperature not in (0, 1) and fits and not matches(got, expected) and \
                matches(got, temperature_twice(logits, temperature, top_k, top_p)):
            raise Failure(f"probs, {case}: top-p's nucleus measured with the temperature applied twice", "top-p "
                          "measured the probabilities with the temperature applied twice: the logits are divided by "
                          "it already, so take the nucleus of softmax(logits) as they are")
        if top_p is not None and fits and len(logits) > 1 and not matches(got, expected) and any(
                matches(got, wrong) for wrong in top_p_down_the_batch(logits, temperature, top_k, top_p)):
            raise Failure(f"probs, {case}: top-p's running sum ran down the batch", "add up each row's sorted "
                          "probabilities along its characters, cumsum(dim=-1): dim=0 runs across the batch's rows")
        if top_p is not None and fits and len(logits) > 1 and not matches(got, expected) and \
                matches(got, top_p_row_0s(logits, temperature, top_k, top_p)):
            raise Failure(f"probs, {case}: row 0's nucleus was cut from every row", "each row has a nucleus of its "
                          "own: keep the mask (B, V), one row per row of logits, and map it back with each row's own "
                          "order, mask.scatter(-1, order, mask)")
        if top_k is not None and top_p is not None and fits and not matches(got, expected) and \
                not matches(got, top_p_first(logits, temperature, top_k, top_p)) and any(
                matches(got, probs_reference(logits, temperature, *cut)) for cut in ((top_k, None), (None, top_p))):
            raise Failure(f"probs, {case}: only one of top-k and top-p cut", "with both given, both cut: top-k, then "
                          "top-p of what top-k kept (an if for each, not an if and an elif)")
        if top_p is not None and fits and \
                matches(got, top_p_reaching(logits, temperature, top_k, top_p)) and not matches(got, expected):
            raise Failure(f"probs, {case}: a character kept where the probabilities before it add up to p exactly",
                          "keep each character while the probabilities before it add up to less than p (<, not <=): "
                          "with four at 0.25 and p 0.5, two stay")
        if temperature and fits and not matches(got, expected) and \
                matches(got.sort(dim=-1).values, expected.sort(dim=-1).values):
            raise Failure(f"probs, {case}: the right probabilities, in another order", "each column is a character: "
                          "put what you kept back in the vocabulary's order, e.g. sorted.scatter(-1, order, kept)")
        if top_p is not None and temperature and fits and \
                matches(got, top_p_unsorted(logits, temperature, top_k, top_p)) and not matches(got, expected):
            raise Failure(f"probs, {case}: top-p's mask is in sorted order", "the mask was found on the sorted "
                          "probabilities: map it back to the vocabulary's order, mask.scatter(-1, order, mask) "
                          "(order from the sort), before applying it to the logits")
        if top_p is not None and fits and \
                matches(got, top_p_stopping_short(logits, temperature, top_k, top_p)) and not matches(got, expected):
            raise Failure(f"probs, {case}: the character that carries the mass past p was dropped", "keep each "
                          "character while the probabilities before it (not up to and including it) add up to less "
                          "than p: the one that crosses p stays, so what is kept holds at least p")
        if top_p is not None and fits:
            top = logits.argmax(dim=-1)
            if matches(got, top_p_counting_itself(logits, temperature, top_k, top_p)) or \
                    not (got.gather(1, top[:, None]) > 0).all():  # (0, or nan where nothing was kept)
                raise Failure(f"{case}: the likeliest character got probability 0", "top-p that drops the "
                              "likeliest character: keep each character while the probabilities before it add up "
                              "to less than p, so the likeliest always stays, even when it alone is above p")
        if top_k is not None and top_p is None and fits and \
                ((got > 0).sum(dim=-1) == top_k).all() and ((expected > 0).sum(dim=-1) > top_k).any():
            raise Failure(f"probs, {case}: exactly {top_k} kept, where another character ties with the k-th",
                          "keep every character whose logit is at least the k-th largest (torch.topk(...).values"
                          "[:, [-1]]): which of the tied ones torch.topk or a sort picks is chance")
        kept, keeps = ((got > 0).sum(dim=-1), (expected > 0).sum(dim=-1)) if fits else (None, None)
        if top_k is not None and top_k < logits.size(-1) and top_p is None and fits and temperature and \
                (kept == logits.size(-1)).all() and not matches(got, expected) and \
                not matches(got, F.softmax(logits / temperature, dim=-1)):  # (a -100 fill is right: exp(-100) ~ 0)
            raise Failure(f"probs, {case}: every character kept some probability, where top_k {top_k} keeps "
                          f"{keeps.tolist()}", "the logits past the k-th were set to a number the softmax still "
                          "weighs (0 is a logit like any other): set them to float('-inf'), whose exp is 0")
        if top_k is not None and top_p is None and fits and (kept != keeps).any() and \
                not matches(got, expected):  # (k - 1 or k + 1, say; a dropped one at 1e-44, from a -100 fill, is right)
            raise Failure(f"probs, {case}: {kept.tolist()} characters kept in the rows, where top_k {top_k} keeps "
                          f"{keeps.tolist()}", "the k likeliest of each row stay: every character whose logit is at "
                          "least its row's k-th largest, torch.topk(logits, k, dim=-1).values[:, [-1]] (the last of "
                          "the k, not its neighbour; one cut per row, not one for the batch; topk counts from the "
                          "largest, kthvalue and an ascending sort from the smallest)")
        wrong_orders = [(hint, order(logits, temperature, top_k, top_p)) for order, hint in ORDER_HINTS.items()
                        if temperature]  # (greedy has no order)
        hint = next((hint for hint, wrong in wrong_orders if not matches(wrong, expected) and matches(got, wrong)),
                    PROBS_HINT)
        if temperature == 0 and torch.is_tensor(got) and got.shape == (len(logits), 1, logits.size(-1)):
            hint = ("greedy's one-hot has an axis too many: argmax(dim=-1, keepdim=True) is (B, 1), and its one-hot "
                    "(B, 1, V); take argmax(dim=-1), (B,), whose one-hot is (B, V)")
        elif temperature == 0 and torch.is_tensor(got) and got.shape[-1] != logits.size(-1):
            hint = ("temperature 0 is greedy: a (B, V) distribution with all of it on the likeliest character "
                    "(F.one_hot(argmax, V).to(logits.dtype)), not the character's id")
        elif temperature == 0 and torch.is_tensor(got) and got.is_floating_point() and got.isnan().any():
            hint = ("temperature 0 is greedy, not a division by 0: return a one-hot on the likeliest character, "
                    "F.one_hot(logits.argmax(dim=-1), V).to(logits.dtype)")
        elif temperature == 0 and fits and \
                not ((got == 0) | (got == 1)).all():  # (a one-hot on the wrong character gets the plain hint)
            hint = ("temperature 0 is greedy: all of the probability on the likeliest character, exactly (a small "
                    "temperature in its place is not greedy where two scores are close), "
                    "F.one_hot(logits.argmax(dim=-1), V).to(logits.dtype)")
        elif temperature == 0 and fits and matches(got, (logits == logits.max()).to(got.dtype)):
            hint = ("greedy took one max for the whole batch, so a row without it got nothing: take each row's, "
                    "F.one_hot(logits.argmax(dim=-1), V).to(logits.dtype)")
        elif torch.is_tensor(got) and got.shape[-1] == 1:
            hint = "return the (B, V) probabilities, not a drawn character: the caller draws (torch.multinomial)"
        elif fits and (got < 0).any():
            hint = "probabilities, not log-probabilities: a softmax, not a log_softmax"
        elif fits and temperature not in (0, 1) and matches(got, F.softmax(logits, dim=-1) / temperature):
            hint = (f"the temperature divided the probabilities (the rows sum to 1/T = {1 / temperature:g}): divide "
                    f"the logits by it, before the softmax")
        elif fits and temperature not in (0, 1) and matches(got, probs_reference(logits, 1.0, top_k, top_p)):
            hint = ("the temperature changed nothing: divide the logits by it, before the softmax (probabilities "
                    "divided by it are the same once renormalised)")
        elif fits and len(got) > 1 and not matches(got.sum(dim=-1), torch.ones(len(got))) and \
                matches(got.sum(dim=0), torch.ones(got.size(-1))):
            hint = "each column sums to 1, not each row: the softmax runs over the characters, dim=-1 (dim=0 is B)"
        elif fits and got.is_floating_point() and \
                not matches(got.sum(dim=-1), torch.ones(got.size(0))) and hint == PROBS_HINT \
                and matches(got / got.sum(dim=-1, keepdim=True), expected):  # (right, but for the scale)
            hint = (f"the rows sum to {got.sum(dim=-1).min().item():.2f}, not 1: renormalise what is kept, the "
                    f"softmax of the kept logits (the others at -inf), or divide by the kept sum")
        expect(got, expected, f"probs, {case}", hint)
        if not got.is_floating_point():  # (greedy's one-hot too: torch.multinomial draws from floats only)
            raise Failure(f"probs, {case}: expected floating-point probabilities, got {dtype_name(got.dtype)}",
                          "F.one_hot makes integers: F.one_hot(argmax, V).to(logits.dtype) for greedy")


# ----------------------------------------------------------------------------
# 9-10: the KV cache, the baby GPT


def check_kv_cache(m):
    grad = torch.is_grad_enabled()
    cache = m.KVCache(2)
    for layer in range(2):  # 5 positions cached, as a forward of 5 characters leaves them (B 2, nh 3, hs 4)
        cache.k[layer], cache.v[layer] = torch.zeros(2, 3, 5, 4), torch.zeros(2, 3, 5, 4)
    cache.length = 5  # (the caller moved length on)
    positions = cache.positions(3)
    autograd_kept("KVCache.positions", grad)
    if torch.is_tensor(positions) and positions.tolist() == [0, 1, 2]:
        raise Failure("with 5 positions cached, positions(3) gave [0, 1, 2]", "a cache that forgets its "
                      "position: the new characters come after the cached ones, at length, length + 1, ...")
    if cache.length != 5:
        raise Failure(f"positions(3) moved length on, from 5 to {cache.length}", "positions only says where the "
                      "new characters go; the caller moves length on after the forward (engine/decode.py's "
                      "forward_cached)")
    expect(positions, torch.arange(5, 8), "positions(3) with 5 positions cached", "positions 0 .. length - 1 are "
           "cached, so the new ones are length .. length + T - 1: torch.arange(length, length + T)")
    if positions.is_floating_point():
        raise Failure(f"positions(3) gave {dtype_name(positions.dtype)} numbers", "positions index the position "
                      "embedding, which takes integers: torch.arange(start, end, device=device) makes them")
    try:
        elsewhere = cache.positions(3, device=torch.device("meta"))  # (a device with no data: any machine has it)
    except Exception as e:  # (torch raises NotImplementedError for a meta tensor's data: not the file's own raise)
        if "meta" not in str(e):
            raise
        torchs = "torch's NotImplementedError, not the blank's: " if isinstance(e, NotImplementedError) else ""
        raise Failure(f"positions(3, device=meta): {raised(e)}", f"{torchs}the check asks for positions on the meta "
                      "device, which keeps shapes but no numbers: make the tensor there, and leave its values alone "
                      "(a .tolist(), an .item(), .numpy() or an `if` on it reads them; a print shows none, and "
                      "passes)") from None
    if not (torch.is_tensor(elsewhere) and elsewhere.device.type == "meta"):
        raise Failure("positions(3, device) made its tensor on another device than the one given", "make it "
                      "there, torch.arange(..., device=device): on a GPU, positions on the CPU would not do")
    cache = m.KVCache(2)
    # (B, nh, T, hs) with B = 3: the keys alone, returned for the pair, do not unpack into two
    k1, v1, k2, v2 = (torch.randn(3, 2, n, 4, generator=seeded(i)) for i, n in enumerate((5, 5, 1, 1)))
    given = [t.clone() for t in (k1, v1, k2, v2)]  # (the caller's k and v go on into attention after append)
    first = cache.append(0, k1, v1)  # (told below, after a None from every call)
    autograd_kept("KVCache.append", grad)
    if cache.length != 0:
        raise Failure(f"append moved length on, from 0 to {cache.length}", "the caller moves length on, once "
                      "every layer has appended (engine/decode.py's forward_cached): append only keeps k and v")
    cache.append(1, -k1, -v1)  # the other layer's, which must not mix with layer 0's
    cache.length = 5  # as the caller moves it on after a forward
    returned = cache.append(0, k2, v2)
    pair = "it returns all the keys and all the values so far: return self.k[layer], self.v[layer]"
    if returned is None:
        raise Failure("append returned None, not the pair (keys, values)", f"does it end without a `return`? {pair}")
    if first is None:
        raise Failure("append returned None on a layer's first call, not the pair (keys, values)", "return in every "
                      f"branch, the first call's (where the layer's slot is empty) too: {pair}")
    if not all(torch.equal(t, kept) for t, kept in zip((k1, v1, k2, v2), given)):
        raise Failure("append changed the keys or values it was given, in place", "the caller goes on with them: "
                      "store them (or a torch.cat of them) and leave them as they came: no k.zero_(), k += ..., or "
                      "other method ending in _ on them")
    if not isinstance(returned, (tuple, list, torch.Tensor)) or len(returned) != 2:  # (a stack of the two will do)
        shape = f" of shape {tuple(returned.shape)}" if torch.is_tensor(returned) else ""
        raise Failure(f"append returned a {type(returned).__name__}{shape}, not the pair (keys, values)", pair)
    keys, values = returned
    if all(torch.is_tensor(t) for t in returned) and matches(keys, torch.cat((v1, v2), dim=2)) and \
            matches(values, torch.cat((k1, k2), dim=2)):
        raise Failure("append returned the values for the keys and the keys for the values", "keys first: "
                      "self.k[layer] takes k, self.v[layer] takes v, and append returns (self.k[layer], "
                      "self.v[layer])")
    append_hint = ("append keeps what it is given (self.k[layer] = the keys so far, then this step's after them, "
                   "on the time axis, dim 2) and returns all of them; each layer its own, self.k[layer]")
    expect(keys, torch.cat((k1, k2), dim=2), "the keys append returns on its second call", append_hint)
    expect(values, torch.cat((v1, v2), dim=2), "the values append returns on its second call", append_hint)
    cache.length = 6
    keys = cache.append(0, k1[:, :, :1], v1[:, :, :1])[0]  # a third call: the second's keys must be kept too
    if torch.is_tensor(keys) and matches(keys, torch.cat((k1, k1[:, :, :1]), dim=2)):
        raise Failure("append's third call returned the first call's keys and its own: the second's were not kept",
                      "keep what append joins, self.k[layer] = torch.cat(...), then return self.k[layer]: joined "
                      "and returned but not stored, each step's keys are gone by the next")
    expect(keys, torch.cat((k1, k2, k1[:, :, :1]), dim=2), "the keys append returns on its third call", append_hint)
    keys = m.KVCache(2).append(0, k2, v2)[0]  # a new cache's first append: only what it was given
    if torch.is_tensor(keys) and keys.shape != k2.shape:
        raise Failure(f"a new cache's first append returned {keys.size(2)} positions, not its own 1: another cache's "
                      f"keys came with it", "keep the keys on the cache itself (self.k = [None] * n_layer in "
                      "__init__), not on the class: a class attribute is shared by every cache")
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=16, vocab_size=11, n_layer=2, n_head=2, n_embd=16)).eval()
    idx = torch.randint(11, (2, 4), generator=seeded())
    expected = model.generate(idx, 12, temperature=0)  # the whole context every step: no cache
    cache, out = m.KVCache(2), idx
    with torch.no_grad():
        full, _ = model(idx)
        first = forward_cached(model, idx, cache)  # the prompt: its keys and values go into the cache
        expect(first, full, "the logits of the prompt, through the cache", "append returns all the keys and "
               "values so far: the cached ones first, then this step's")
        logits = first
        for _ in range(12):
            context = logits[:, -1].argmax(dim=-1, keepdim=True)  # (B, 1): greedy, as generate at temperature 0
            out = torch.cat((out, context), dim=1)
            logits = forward_cached(model, context, cache)  # one new character; the rest comes from the cache
    expect(out, expected, "the characters generated with the cache, against model.generate without one",
           "each step feeds only the newest character; its attention reads the cached keys and values")
    cache = m.KVCache(2)  # a prompt in two pieces: T > 1 new positions after cached ones, as append's docstring allows
    what = "the logits of 9 characters fed as 5, then 4, through the cache"
    hint = "append keeps the cached keys and adds this step's after them, however many positions each has"
    with torch.no_grad():
        pieces = at_another_size(what, lambda: torch.cat((forward_cached(model, out[:, :5], cache),
                                                          forward_cached(model, out[:, 5:9], cache)), dim=1), hint=hint)
        expect(pieces, model(out[:, :9])[0], what, hint)


TUPLE_HINT = "model(idx) returns a tuple, (logits, loss): logits, _ = model(idx)"


def as_typed(index):
    """An index as it was written: (slice(None), -1) -> ':, -1'."""
    return ", ".join(":" if part == slice(None) else repr(part) for part in (
        index if isinstance(index, tuple) else (index,)))


class LogitsAndLoss(tuple):
    """What the GPT returns, (logits, loss), as exercise 10's check hands it over: taken for the logits
    (indexed as a tensor is, or a tensor's method called on it), it fails with the hint that says so."""

    def __getitem__(self, index):
        if isinstance(index, int):  # model(idx)[0]: the logits, rightly
            return super().__getitem__(index)
        raise Failure(f"model(idx)'s output was indexed as a tensor ([{as_typed(index)}])", TUPLE_HINT)

    def __getattr__(self, name):  # (only for names a tuple lacks: .softmax, .shape, ...)
        raise Failure(f"model(idx)'s output was used as a tensor (.{name})", TUPLE_HINT)


MODE_HINT = ("leave the model in the mode it came in: the caller chose it, and a switch outlasts your function (a "
             "model switched to train mode evaluates with its dropout on; one left in eval mode trains on without "
             "it). The repo's next_bit_probs switches nothing; to switch anyway, put the mode back: was_training = "
             "model.training, then model.eval(), and at the end model.train(was_training)")


def mode_kept(model, training):
    """model, given in train mode (training) or eval mode, must come back in it, every part of it."""
    modes = {part.training for part in model.modules()}
    if modes != {training}:
        given, left = ("train", "eval") if training else ("eval", "train")
        whom = "the model" if len(modes) == 1 else "part of the model"
        raise Failure(f"transition_probs left {whom} in {left} mode; it was given in {given} mode", MODE_HINT)


def check_babygpt(m):
    first = None
    # two models: probabilities kept from the first call (a global, a cache) would not fit both; the second in train
    # mode, as lessons/babygpt.py reads its chain during training (BABY has no dropout: the probabilities are alike)
    for seed, training in ((0, False), (1, True)):
        torch.manual_seed(seed)
        model = GPT(BABY).train(training)
        handle = model.register_forward_hook(lambda module, inputs, output: LogitsAndLoss(output))
        grad = torch.is_grad_enabled()
        try:
            got = m.transition_probs(model)
        except TypeError as e:  # a torch function given the tuple: "... must be Tensor, not LogitsAndLoss"
            if "LogitsAndLoss" not in str(e):
                raise
            raise Failure(raised(e).replace("LogitsAndLoss", "tuple"), TUPLE_HINT) from None
        finally:
            handle.remove()
        autograd_kept("transition_probs", grad)
        if {p.dtype for p in model.parameters()} != {torch.float32}:  # (model.double() converts the model in place)
            dtype = dtype_name(next(model.parameters()).dtype)
            raise Failure(f"transition_probs converted the caller's model to {dtype}", "leave the model as it "
                          "came: .double(), .half() and .to(dtype) convert it in place, and training goes on with it "
                          "in float32; convert what it returns instead, if anything")
        with torch.no_grad():
            ones = next_bit_probs(model)  # (8,): the repo's P(next bit = 1)
        expect_shape(got, (8, 2), "probs (8, 2)", "one row per state, one column per next bit")
        if first is not None and matches(got, first):
            raise Failure("probs (8, 2): a second model, of other weights, got the first one's probabilities",
                          "read them off the model given, at each call: keep nothing from one call to the next")
        expect(got.sum(dim=1), torch.ones(8), "the sum of each row", "probabilities are a softmax of the logits, "
               "run over the 2 next-bit scores (dim=-1 of the logits (B, T, 2)), at the last position")
        expected = torch.stack((1 - ones, ones), dim=1)  # (8, 2)
        close = torch.is_tensor(got) and torch.allclose(got.detach().float(), expected, rtol=1e-2, atol=1e-3)
        expect(got, expected, "probs (8, 2), against lessons/babygpt.py", "right to about 3 digits: the model ran "
               "in lower precision (torch.autocast, .half(), bfloat16); run it as it is, in float32" if close else
               "state i's bits are i in binary, the first bit first ('001' is [0, 0, 1]); read the softmax at "
               "the last position")
        mode_kept(model, training)
        if not all(p.requires_grad for p in model.parameters()):
            raise Failure("transition_probs left the model's weights with requires_grad=False", "leave the weights as "
                          "they came: model.requires_grad_(False) outlasts your function, and training could no "
                          "longer change them; to read the model without building a graph, use with torch.no_grad():")
        first = got.detach().clone()


EXERCISES = [
    Exercise(1, "the bigram table, by counting", "ex01_bigram", check_bigram, ("bigram_probs",)),
    Exercise(2, "the averaging trick", "ex02_averaging", check_averaging, ("causal_average",)),
    Exercise(3, "one attention head", "ex03_head", check_head, ("attention_head",)),
    Exercise(4, "multi-head attention", "ex04_multihead", check_multihead, ("multi_head_attention",)),
    Exercise(5, "the MLP and the residual block", "ex05_block", check_block, ("mlp", "block")),
    Exercise(6, "cross-entropy from logits", "ex06_cross_entropy", check_cross_entropy, ("cross_entropy",)),
    Exercise(7, "warmup and cosine decay", "ex07_schedule", check_schedule, ("learning_rate",)),
    Exercise(8, "temperature, top-k, top-p", "ex08_sampling", check_sampling, ("next_char_probs",)),
    Exercise(9, "generation with a KV cache", "ex09_kv_cache", check_kv_cache,
             ("KVCache.positions", "KVCache.append")),
    Exercise(10, "the baby GPT's transitions", "ex10_babygpt", check_babygpt, ("transition_probs",)),
]


class Result(NamedTuple):
    status: str   # "passed", "failed", "not started" or "not finished"
    what: str = ""
    hint: str = ""


def part_of(module, name):
    """module's function of that name (Class.method for a method), or None."""
    for attribute in name.split("."):
        module = getattr(module, attribute, None)
    return module


def statements(fn):
    """fn's statements after its docstring, and the line of its file where its source starts; (None, None)
    where there is no source to read."""
    try:
        lines, start = inspect.getsourcelines(inspect.unwrap(fn))
        body = ast.parse(textwrap.dedent("".join(lines))).body[0].body
    except (OSError, TypeError, SyntaxError, IndexError, AttributeError):
        return None, None
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    return body, start


def untouched(fn):
    """Whether fn is still the blank the file came with: nothing but (a docstring and) raise NotImplementedError."""
    body, _ = statements(fn)
    return body is not None and len(body) == 1 and isinstance(body[0], ast.Raise) and \
        "NotImplementedError" in ast.unparse(body[0])


def first_line(fn):
    """The line number, in its file, of fn's first statement after its docstring (None if unknown)."""
    body, start = statements(fn)
    return start + body[0].lineno - 1 if body else None


def not_implemented(exercise, module, error):
    """A NotImplementedError -> not started (every part as it came), not finished (the parts still to write
    named), or failed: raised by a part the learner wrote (its raise line left below their code), or by
    something else."""
    tb = error.__traceback__
    while tb.tb_next is not None:  # down to the frame of the raise
        tb = tb.tb_next
    where = tb.tb_frame.f_code
    parts = {name: part_of(module, name) for name in exercise.parts}
    # (unwrapped: a part under a decorator, @torch.no_grad(), is called through the decorator's own function)
    raised_in = next((name for name, fn in parts.items() if getattr(inspect.unwrap(fn), "__code__", None) is where),
                     None)
    blanks = [name for name, fn in parts.items() if untouched(fn)]
    if raised_in in blanks:
        if len(blanks) == len(parts):
            return Result("not started")
        written = next(name for name in parts if name not in blanks)  # (two parts at most)
        checked = exercise.parts.index(written) < exercise.parts.index(raised_in)  # (checked in parts' order)
        return Result("not finished", f"{' and '.join(blanks)} still to write ({written} "
                      + ("passed its check)" if checked else f"is checked once {raised_in} is written)"))
    if raised_in and "is yours to write" not in str(error):  # a raise of the learner's own: a case left for later
        return Result("failed", f"{raised_in} raised NotImplementedError{f': {error}' if str(error) else ''}",
                      "a raise of yours ran: the check tries every case the docstring names, so write the one it "
                      "stands in for")
    if raised_in and first_line(parts[raised_in]) == tb.tb_lineno:  # the file's raise first, the learner's below
        return Result("failed", f"{raised_in} still raises NotImplementedError", "delete the `raise "
                      "NotImplementedError(...)` line that came with the file: your code below it never runs")
    if raised_in:
        return Result("failed", f"{raised_in} still raises NotImplementedError", "delete the `raise "
                      "NotImplementedError(...)` line that came with the file: your code above it never returns")
    return Result("failed", f"it raised NotImplementedError: {error}")


def run(exercise, module=None):
    """Check one exercise -> Result. module: the learner's functions, by default their file, imported
    here so that a file that does not load is a failure too. An error in the learner's code is a
    failure, said in one line."""
    seen = []  # the shapes of the tensors of 3 axes or more the learner's code took .T of
    grad = torch.is_grad_enabled()  # a file's torch.set_grad_enabled(False) is global: its own check meets it, no other
    dtype = torch.get_default_dtype()  # so is its torch.set_default_dtype(torch.float64)
    try:
        with time_limit(LIMIT):
            module = module or load(exercise)
            with watching_T(seen):
                exercise.check(module)
    except TookTooLong as e:
        return Result("failed", f"still running after {LIMIT} s of computing{in_their_file(e)}", "a loop that never "
                      "ends? Each check takes well under a second: see that the loop's condition changes")
    except NotImplementedError as e:
        return not_implemented(exercise, module, e)
    except Failure as f:
        return Result("failed", f.what, f.hint)
    except SyntaxError as e:  # (raised by the import, before any of the file's lines runs)
        where = f"line {e.lineno} of " if e.lineno else ""  # (none for a NUL byte: the file is not text)
        return Result("failed", f"it does not load: SyntaxError: {e.msg} ({where}{exercise.module}.py)",
                      "fix the line, or the one before it" if e.lineno else "save it again as text, in UTF-8")
    except ModuleNotFoundError as e:
        if e.name != f"exercises.{exercise.module}":  # (a module the learner's file imports)
            return Result("failed", raised(e), error_hint(e, bool(seen)))
        name = f"exercises/{exercise.module}.py"
        if (Path(sys.modules["exercises"].__path__[0]) / f"{exercise.module}.py").is_dir():
            return Result("failed", f"{name} is a folder, not the exercise's file", f"move the folder away, then put "
                          f"the file back as it came, with git checkout {name}, and write your answer in it")
        return Result("failed", f"{name} is not there", f"put it back as it came, with git checkout {name}, and "
                      "write your answer in it")
    except AttributeError as e:
        renamed = module is not None and getattr(e, "obj", None) is module  # (the check names each function)
        return Result("failed", raised(e), f"keep the name the file gives it, {e.name}: the check calls it by that "
                      f"name" if renamed else error_hint(e))
    except Exception as e:  # the learner's code raised
        return Result("failed", raised(e), error_hint(e, bool(seen)))
    except SystemExit as e:  # an exit() left from debugging: it would end the whole check, silently
        return Result("failed", f"it called exit(){in_their_file(e)}", "take it out: print what you want to see, "
                      "and let the function return")
    finally:
        torch.set_grad_enabled(grad)
        torch.set_default_dtype(dtype)
    return Result("passed")


def load(exercise):
    """The learner's file, imported. A NUL byte in it (a file saved as UTF-16, say) is a SyntaxError from Python
    3.11 on, and a ValueError in 3.10: a SyntaxError here too, so that run says it as one."""
    try:
        module = importlib.import_module(f"exercises.{exercise.module}")
    except ValueError as e:
        if "null bytes" in str(e):
            raise SyntaxError(str(e)) from None
        raise
    if getattr(module, "__file__", None) is None:  # a folder of its name, the file gone: Python imports the folder
        raise ModuleNotFoundError(f"no exercises/{exercise.module}.py", name=f"exercises.{exercise.module}")
    return module


LIMIT = 10  # seconds of CPU time: every check takes well under one


class TookTooLong(BaseException):  # (not an Exception: the learner's `except Exception` must not swallow it)
    pass


@contextmanager
def time_limit(seconds):
    """Raise TookTooLong in the code running once it has computed for `seconds`: a loop that never ends fails,
    with its line, where it would hang. CPU time, not the clock's: a breakpoint() or input() waiting for the
    learner uses none. Only where there is a timer signal, in the main thread (not on Windows)."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise TookTooLong
    handler = signal.signal(signal.SIGVTALRM, stop)
    timer = signal.setitimer(signal.ITIMER_VIRTUAL, seconds)  # (the timer before: put back afterwards)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, *timer)
        signal.signal(signal.SIGVTALRM, handler)


def raised(error):
    """An error from the learner's code, in one line: what, and where in their file (or, where it came from the
    repo's code, which line of it, and that what the learner's code gave it is the likely cause)."""
    return f"it raised {type(error).__name__}: {error}{in_their_file(error) or in_the_repo(error)}"


REPO = Path(__file__).resolve().parents[1]


def last_frame(error, wanted):
    """The last frame of error's traceback whose file wanted(Path) accepts, or None."""
    return next((f for f in reversed(traceback.extract_tb(error.__traceback__)) if wanted(Path(f.filename))), None)


def in_the_repo(error):
    """' (in model.py line N, on what your code gave it)': the last line of the repo's own code (not the checker's,
    the tests' or torch's) that error passed through, or ''. Exercise 9's cache is called from model.py, say."""
    frame = last_frame(error, lambda path: path.is_relative_to(REPO) and
                       path.relative_to(REPO).parts[0] not in ("exercises", "tests"))
    if frame is None:
        return ""
    return f" (in {Path(frame.filename).relative_to(REPO).as_posix()} line {frame.lineno}, on what your code gave it)"


def learners(path):
    """Whether the file at path is one of the learner's: exercises/exNN_name.py."""
    return path.parent.name == "exercises" and path.name.startswith("ex")


def in_their_file(error):
    """' (line N of exNN_name.py)': the last line of the learner's file that error passed through, or ''."""
    frame = last_frame(error, learners)
    return f" (line {frame.lineno} of {Path(frame.filename).name})" if frame else ""


SHAPE_ERRORS = (r"size of tensor|shapes cannot be multiplied|must match the size|expanded size|mat1 and mat2|"
                r"Expected size for|is invalid for input of size|[Dd]imension out of range")


@contextmanager
def watching_T(seen):
    """While the learner's code runs, a .T of a tensor of more than 2 dimensions is noted in seen: it reverses
    all of them, where attention wants the last two swapped (and torch warns only once a process)."""
    original = torch.Tensor.T

    def noted(tensor):
        if tensor.dim() > 2:
            seen.append(tuple(tensor.shape))
        with warnings.catch_warnings():  # torch's warning would name this file, as if the check were wrong
            warnings.simplefilter("ignore")
            return original.__get__(tensor)
    torch.Tensor.T = property(noted)
    try:
        yield seen
    finally:
        del torch.Tensor.T  # (inherited: the base class's comes back)


WHERE_THE_INPUT_IS = ("make new tensors where the input is, device=x.device (or the model's: "
                      "next(model.parameters()).device)")

ERROR_HINTS = {  # (the error's type, a pattern of its message) -> a hint
    (RuntimeError, r"view size is not compatible"): "after a transpose, or on a piece that chunk or split cut from "
        "the last axis, the memory is no longer in the view's order: .reshape(...), or .contiguous().view(...); to "
        "split heads, view to (B, T, nh, hs), then transpose(1, 2) (straight to (B, nh, T, hs) mixes positions "
        "with heads)",
    (RuntimeError, r"Index tensor must have the same number of dimensions"): "gather's (and scatter's) index needs "
        "as many axes as the input: print both shapes; an index one axis short takes a last axis of 1, "
        ".unsqueeze(-1) (and .squeeze(-1) what gather returns)",
    (RuntimeError, r"stack expects each tensor to be equal size"): "torch.stack puts its tensors side by side on a "
        "new axis, so they must be the same shape: torch.cat joins them along an axis they have (dim=): print their "
        "shapes; in (B, nh, T, hs), time is dim=2",
    (TypeError, r"torch\.return_types\.(max|min)"): MAX_HINT,
    (RuntimeError, r"selected index k out of range"): "top_k may be as large as the vocabulary, or larger: "
        "then every character stays (if top_k >= V, skip the cut)",
    (RuntimeError, r"same dtype|expected scalar type"): "two dtypes met in one operation: make every tensor in the "
        "input's dtype (dtype=x.dtype, or .to(x.dtype)); .double(), NumPy arrays and integer tensors (torch.arange, "
        "dtype=torch.long) are others",
    (RuntimeError, r"modified by an inplace operation"): INPLACE_HINT,
    (ValueError, r"values to unpack"): "the names on the left and the values on the right differ in number: print "
        "what was unpacked (a tensor unpacks along its first axis); split(C, dim=2) cuts pieces of C each (q, k, v), "
        "chunk(3, dim=2) cuts 3 pieces",
    (TypeError, r"expected Tensor as element \d+ in argument \d+, but got NoneType"): "torch.cat (or stack) was "
        "given None: a function that ends without a `return` gives None, and so does a slot not filled yet (a KV "
        "cache's, before its first append: there, store k as it is, if self.k[layer] is None: self.k[layer] = k)",
    (RuntimeError, r"'indices' to have one of the following scalar types"): "ids index an embedding's rows, so they "
        "must be integers: make them with dtype=torch.long (torch.tensor of Python ints is long already)",
    # ("larger": PyTorch 2.4's words)
    (RuntimeError, r"upper bound and (lower|larger) bound inconsistent"): "torch.arange(start, end) counts up from "
        "start to end - 1: the end must not come before the start (T positions from length: torch.arange(length, "
        "length + T))",
    (RuntimeError, r"masked_fill_? only supports boolean masks"): "masked_fill's mask says where to fill, True or "
        "False: a mask of 0s and 1s (torch.tril(torch.ones(T, T))) becomes one by a comparison, == 0 for the future",
    (RuntimeError, r"where expected condition to be a boolean tensor"): "torch.where's condition says which to take, "
        "True or False: a mask of 0s and 1s (torch.tril(torch.ones(T, T))) becomes one by a comparison, == 1 for "
        "the past and present",
    (RuntimeError, r"Boolean value of Tensor with more than one value is ambiguous"): "a tensor of several numbers is "
        "neither true nor false: to ask whether a slot is filled, test it with `is None` (if self.k[layer] is None)",
    (RuntimeError, r"Sizes of tensors must match except in dimension"): "torch.cat needs its tensors to match on "
        "every axis but the one it joins (dim=): print their shapes; in (B, nh, T, hs), time is dim=2",
    (RuntimeError, r"Can't call numpy\(\) on Tensor that requires grad"): "stay with torch's operations: NumPy is "
        "outside autograd's graph, so training could not follow your output back to what made it",
    (TypeError, r"tuple of ints,? ?(but got|not) float|found element of type float"): "a size must be an integer, "
        "and / gives a float (24 / 4 is 6.0): C // n_head, or int(...)",
    (RuntimeError, r"result type Float can't be cast to the desired output type"): "an integer tensor cannot take "
        "a float in place (counts += 0.5): count in floats (torch.zeros' default), or add out of place, counts + "
        "smoothing, which makes a float tensor",
    (ValueError, r"expected sequence of length \d+ at dim"): "torch.tensor was given rows of different lengths: "
        "every row needs as many numbers (bin(1) is '0b1', bin(5) '0b101': format(i, '03b') pads to 3 bits)",
    (TypeError, r"__init__\(\) missing \d+ required positional argument"): "keep the signature the file gives "
        "(KVCache(n_layer)): its callers pass what its docstring says, no more",
    (IndexError, r"shape of the mask \[\d+, \d+\] at index \d+ does not match"): "a (T, T) mask used as an "
        "index lines up with the first axes of the scores, the batch's (and the heads'), not the last two: "
        "scores[..., ~mask] = float('-inf'), or scores.masked_fill(~mask, float('-inf')), which broadcasts over the "
        "others",
    (IndexError, r"indexing tensors could not be broadcast together"): "index tensors pair up element by element, "
        "after broadcasting against each other: torch.arange(B)[:, None] (B, 1), torch.arange(T) (T,) and targets "
        "(B, T) make (B, T); or logits.gather(-1, targets.unsqueeze(-1))",
    # a CPU build says the first; a CUDA build (pip's on Linux) on a machine without an NVIDIA GPU, the second
    (Exception, r"Torch not compiled with CUDA|Found no NVIDIA driver"): f"a device written in: "
        f"{WHERE_THE_INPUT_IS}, so that the code runs on any machine",
    (RuntimeError, r"Expected all tensors to be on the same device"): f"tensors on two devices met: "
        f"{WHERE_THE_INPUT_IS}",
    (AttributeError, r"'tuple' object has no attribute"): "a tuple where a tensor was wanted: split and chunk give "
        "a tuple of tensors (q, k, v = (x @ c_attn.T).split(C, dim=2)), so does a function that returns two values, "
        "and " + TUPLE_HINT}


def error_hint(error, transposed_3d=False):
    """For an error a learner often meets, what to do; for shapes that do not line up, how to find out why;
    "" for any other error. transposed_3d: the learner's code took .T of a tensor of 3 axes or more."""
    known = (hint for (kind, pattern), hint in ERROR_HINTS.items()
             if isinstance(error, kind) and re.search(pattern, str(error)))
    if hint := next(known, None):
        return hint
    if not (isinstance(error, RuntimeError) and re.search(SHAPE_ERRORS, str(error))):
        return ""
    hint = ("the shapes do not line up: print each tensor's .shape before that line, and compare with the docstring's; "
            "a size written in as a number (T = 8, say) fits one size only: take it from the input (T = x.size(1))")
    if transposed_3d:  # the likeliest cause, where the code did it: first
        hint = (".T on a tensor of 3 axes or more reverses them all: transpose(-2, -1) swaps the last two; then "
                + hint)
    if "must match the size" in str(error):  # broadcasting: often a reduction that dropped its axis, or the wrong one
        hint += ("; a max, sum or mean over an axis (dim=-1) drops that axis unless keepdim=True, and over the wrong "
                 "axis (dim=1 of a (B, T, ...) tensor is T) it drops the wrong one")
    if "mat1 and mat2" in str(error):  # a 2-D weight on the wrong side, or the wrong way round
        hint += ("; (a, n) @ (n, b): the inner sizes must agree; a weight given as (in, out) is used as x @ w, an "
                 "nn.Linear's, (out, in), as x @ w.T")
    return hint
