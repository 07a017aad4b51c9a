"""Exercises: write a part of the GPT yourself, check it against the repo's own, train with it.

    python -m exercises check          # every exercise: passed, failed (with what and a hint), not started
                                       # or not finished (a part still to write); so does python -m exercises
    python -m exercises check 3        # one of them (or several: check 1 2 3; ex03 or 03 names 3 too)
    python -m exercises train 4        # a short CPU training with your part in model.py's GPT, beside the repo's
                                       # (3 to 5: attention, the block; 6: the loss; 7: the schedule;
                                       # 8: the repo's GPT trained once, then written with your sampler;
                                       # 1: your bigram table, counted, scored and written with)

Each exercise is one file, exercises/exNN_*.py, with a function (or two) whose body says
NotImplementedError: replace it with yours. The answers are the repo's own code, which each
file names (docs/exercises.md).
"""

import argparse
import importlib
import re
import shlex
import sys
from pathlib import Path

if not __package__:  # run as a file (python exercises/__main__.py): the imports below need python -m
    command = shlex.join(["python", "-m", "exercises", *sys.argv[1:]])
    print(f"error: run it as a module, from the repo's folder — {command}", file=sys.stderr)
    sys.exit(2)

from machinery.cli import ArgumentParser, HelpFormatter, UserError, check_count, refuse_an_old_torch, run_cli
from machinery.data import DEFAULT_DATA_DIR, is_default_data_dir, load_data


def exercise_numbers(text):
    """'3', '03', 'ex03', 'exercises/ex03_head.py' or '3,4' -> [3] or [3, 4]: a file's name works as its number."""
    pattern = r"(?:.*[/\\])?ex(\d+)(?:_\w*)?(?:\.py)?|([+-]?\d+)"  # a file's name (any folder, any case), or a number
    found = [re.fullmatch(pattern, part.strip(), flags=re.IGNORECASE) for part in text.split(",")]
    if not all(found):
        raise argparse.ArgumentTypeError(f"{text!r} is not an exercise's number, such as 3 or ex03")
    return [int(match.group(1) or match.group(2)) for match in found]


def exercises_asked(numbers):
    """The exercises with these numbers, in that order (none: all of them)."""
    from exercises.check import EXERCISES
    for number in numbers:
        if not 1 <= number <= len(EXERCISES):
            raise UserError(f"there is no exercise {number} — give 1 to {len(EXERCISES)}")
    return [EXERCISES[number - 1] for number in dict.fromkeys(numbers)] or EXERCISES  # each once, in order


def check(numbers):
    """Print a table of results -> 0 if every exercise asked for passed, else 1."""
    from exercises.check import run
    results = [(exercise, run(exercise)) for exercise in exercises_asked(numbers)]
    print(f"{'':>3}  {'exercise':<32}  result")
    for exercise, result in results:
        status = result.status if result.status in ("passed", "failed") else (
            f"{result.status} (exercises/{exercise.module}.py)")  # not started, or not finished: where to write
        print(f"{exercise.number:>3}  {exercise.title:<32}  {status}{': ' + result.what if result.what else ''}")
        if result.hint:
            print(f"{'':>3}  {'':<32}  hint: {result.hint}")
    passed = sum(r.status == "passed" for _, r in results)
    print(f"{passed} of {len(results)} passed")
    print(next_step(results))
    return 0 if passed == len(results) else 1


def next_step(results):
    """The line that ends check's table: the first exercise to write or fix, else what comes after."""
    from exercises.check import EXERCISES
    from exercises.plug import BIGRAM, SAMPLER, TRAINABLE
    for exercise, result in results:
        again = f"then: python -m exercises check {exercise.number}"
        if result.status == "failed":
            return f"next: fix exercise {exercise.number} (above: what went wrong), {again}"
        if result.status == "not started":
            return (f"next: in exercises/{exercise.module}.py, write {' and '.join(exercise.parts)} in place of "
                    f"the `raise NotImplementedError(...)` (docs/exercises.md), {again}")
        if result.status == "not finished":
            return f"next: write the part left in exercises/{exercise.module}.py, {again}"
    trainable = sorted(exercise.number for exercise, _ in results if exercise.number in TRAINABLE)
    if len(results) == len(EXERCISES):  # all ten pass: each of those that can is worth a run
        return (f"next: all {len(EXERCISES)} pass; train with yours, each in turn: python -m exercises train N, N "
                f"one of {', '.join(map(str, TRAINABLE))}")
    if trainable:  # (1 is a table, counted; 8 is the sampler: the repo's GPT writes with it)
        what = {SAMPLER: "write with your sampler", BIGRAM: "score your table and write with it"}.get(
            trainable[0], "train the GPT with yours")
        return f"next: {what}: python -m exercises train {trainable[0]}"
    checked = {exercise.number for exercise, _ in results}
    following = [number for number in range(min(checked), len(EXERCISES) + 1) if number not in checked]
    if following:  # the first one not checked after the first one checked
        return f"next: exercise {following[0]}, in exercises/{EXERCISES[following[0] - 1].module}.py"
    return "next: every exercise at once: python -m exercises check"


def train(number, data_dir, steps=2000):
    from exercises.check import run
    from exercises.plug import BIGRAM, SAMPLER, check_trainable, count_both, train_both
    refuse_an_old_torch()  # (run_cli's check ran before torch was imported; this trains through train.py)
    check_trainable(number)
    exercise = exercises_asked([number])[0]
    result = run(exercise)
    if result.status != "passed":
        why = f"{result.status}: {result.what}" if result.what else result.status  # (not started has no what)
        raise UserError(f"exercise {number} does not pass yet ({why}) — make it pass first: "
                        f"python -m exercises check {number}")
    module = importlib.import_module(f"exercises.{exercise.module}")  # (loaded by the check)
    data = load_data(data_dir)  # refused here, before a line is printed
    if number == SAMPLER:
        return write(module, data, data_dir, steps)
    if number == BIGRAM:
        splits = data[1]
        print(f"counting the bigram table of {data_dir}'s train split ({len(splits['train']):,} characters) twice, "
              f"with the repo's count and with yours (smoothing 1); then scoring each on the val split's "
              f"{len(splits['val']):,} characters and writing with it as model.py's Bigram's table")
        rows, doing = count_both(module, data), "counting"
    else:
        print(f"training model.py's GPT twice on {data_dir}, the same batches and seed: with the repo's code for "
              f"exercise {number} ({exercise.title}) and with yours (3 blocks, 32 wide, block 8, {steps} steps, on "
              f"the CPU)")
        rows, doing = train_both(number, module, data, steps), "training"  # (an error in yours: one line)
    for who, val, seconds, text in rows:
        print(f"{who:>10}: val loss {val:.4f}, {seconds:.1f} s of {doing}; it writes: {text!r}")
    gap = round(rows[1][1] - rows[0][1], 4) or 0.0  # (-0.0 is false: a gap under 5e-5 prints as +0.0000)
    same = abs(gap) <= 1e-4  # float rounding: the same sums, added up in another order
    verdict = ("the same, to float rounding (about 1e-4 or less)" if same else
               "more than float rounding (about 1e-4 or less): yours computes something else")
    print(f"difference: {gap:+.4f}: {verdict}")
    if number == BIGRAM:  # (another text's run beside the default's out/bigram, not refused by it)
        out_dir = "out/bigram" if is_default_data_dir(data_dir) else f"out/{Path(data_dir).resolve().name}-bigram"
        from machinery.checkpoint import holds_a_run  # (train.py refuses a folder that holds one)
        how = (f"{out_dir} holds one already (the README's first lesson trains it): python sample.py --out_dir "
               f"{shlex.quote(out_dir)}" if holds_a_run(out_dir) else f"python train.py --preset bigram --data_dir "
               f"{shlex.quote(str(data_dir))} --out_dir {shlex.quote(out_dir)}")
        print(f"model.py's Bigram learns such a table by gradient descent instead: {how}")
    return 0


def write(module, data, data_dir, steps):
    """Exercise 8: one GPT, written with the repo's sampling and with the learner's, from the same seed."""
    from exercises.plug import SAMPLER, SAMPLING, train_both
    sampling = ", ".join(f"{name} {value}" for name, value in SAMPLING.items())
    print(f"training model.py's GPT once on {data_dir} (3 blocks, 32 wide, block 8, {steps} steps, on the CPU), then "
          f"writing with the repo's sampling and with yours ({sampling}; the same seed)")
    (_, val, seconds, repos), (_, _, _, yours) = train_both(SAMPLER, module, data, steps)
    print(f"val loss {val:.4f}, {seconds:.1f} s of training")
    print(f"the repo's writes: {repos!r}\n     yours writes: {yours!r}")
    print("the same text: yours draws as the repo's does" if yours == repos else
          "different text: from the same seed, yours draws from other probabilities")
    return 0


def no_command(argv):
    """Exercises' numbers given without check or train (python -m exercises 3) are refused with the command that
    checks them, and the one that trains with one that can be; anything else is left to argparse."""
    from exercises.plug import TRAINABLE
    flags = next((i for i, arg in enumerate(argv) if arg.startswith("-")), len(argv))  # (train's: --steps 20, say)
    named = argv[:flags]
    try:
        numbers = [number for arg in named for number in exercise_numbers(arg)]
    except argparse.ArgumentTypeError:
        return
    train = (f" (or, to train with it: python -m exercises train {shlex.join(argv)})"
             if len(numbers) == 1 and numbers[0] in TRAINABLE else "")
    raise UserError(f"a command comes before the exercise — python -m exercises check {shlex.join(named)}{train}")


def main(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="{check,train}")
    c = commands.add_parser("check", help="check one exercise, several, or all (the default)",
                            formatter_class=HelpFormatter)
    c.add_argument("numbers", type=exercise_numbers, nargs="*", metavar="number",
                   help="the exercises' numbers, e.g. 3, 03 or ex03 (default: all)")
    t = commands.add_parser("train", formatter_class=HelpFormatter, help="train model.py's GPT with your part, "
                            "beside the repo's own (8: the repo's GPT, written with your sampler; 1: your "
                            "bigram table, counted)")
    t.usage = "%(prog)s [-h] [--data_dir DATA_DIR] [--steps STEPS] number"  # (one: several are refused, by name)
    t.add_argument("numbers", type=exercise_numbers, nargs="*", metavar="number", help="1 (the bigram table: "
                   "counted, not trained), 3 (a head), 4 (multi-head attention), 5 (the block), 6 (the loss), 7 "
                   "(the schedule) or 8 (the sampler)")
    t.add_argument("--data_dir", default=DEFAULT_DATA_DIR, help="prepared data (python prepare.py)")
    t.add_argument("--steps", type=int, default=2000, help="training steps of each model (fewer: a quicker, rougher "
                                                          "comparison; exercise 1 counts, and takes no steps)")
    argv = sys.argv[1:] if argv is None else argv
    if argv and not argv[0].startswith("-") and argv[0] not in ("check", "train"):  # a number with no command, say
        no_command(argv)
    args = parser.parse_args(argv)
    if args.command in ("check", None):  # (python -m exercises alone: check them all)
        return check([number for numbers in getattr(args, "numbers", []) for number in numbers])
    numbers = [number for numbers in args.numbers for number in numbers]
    if not numbers:
        from exercises.plug import TRAINABLE
        given = shlex.join(argv[argv.index("train") + 1:])  # (its flags, --steps 20 say)
        raise UserError(f"train needs the exercise to train with — one of {', '.join(map(str, TRAINABLE))}: "
                        f"python -m exercises train 4{' ' + given if given else ''}, say")
    if len(numbers) > 1:  # (train 3 4, or train 3,4: a run each, one after the other)
        given = [f"--{name} {shlex.quote(str(getattr(args, name)))}" for name, default in
                 (("data_dir", DEFAULT_DATA_DIR), ("steps", 2000)) if getattr(args, name) != default]
        raise UserError(f"train takes one exercise, not {len(numbers)} — train with each in turn, first: "
                        f"{' '.join(['python -m exercises train', str(numbers[0])] + given)}")
    check_count("--steps", args.steps, fix="give 10 or more (2000 by default)", least=10)
    return train(numbers[0], args.data_dir, args.steps)


if __name__ == "__main__":
    sys.exit(run_cli(main))
