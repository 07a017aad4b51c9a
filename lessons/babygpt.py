"""The baby GPT: a GPT is a finite-state Markov chain.

    python -m lessons.babygpt                  # the chain before, after 50 steps and after 300; writes out/babygpt.dot
    python -m lessons.babygpt --steps 1000 --look_at 300   # longer: the seen states sharpen (111 stays split), the
                                                           # unseen drift

A Markov chain is a set of states with a probability on each arrow from one state to the
next, where the next step depends only on the state it is in, not on how it got there.
With two tokens (0 and 1) and a context of 3, the model can only ever be in one of
2**3 = 8 states, and all it does is give each state a probability for the next bit.
Sampling a bit moves the chain to the state shifted by one (from 101, a 1 drawn moves it to 011). So
this GPT *is* a Markov chain with 8 states and 16 arrows, and training moves the
numbers on the arrows. It trains on the 12 windows of one bit string, 111101111011110,
and shows the chain before training, after 50 steps and at the end. Look at the states
the windows never show (000, 001, 010, 100): the GPT still gives them confident arrows, learned
from the states it saw. And 111 is followed by 1 three times and by 0 three times, so its
arrow settles near 0.5.

The lesson and its setting are from Andrej Karpathy's note "GPT as a finite-state
Markov chain" (2023); the code is this repo's model.py.
"""

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

if not __package__:  # run as a file (python lessons/babygpt.py): the imports below need python -m
    command = shlex.join(["python", "-m", "lessons.babygpt", *sys.argv[1:]])
    print(f"error: run it as a module, from the repo's folder — {command}", file=sys.stderr)
    sys.exit(2)

from model import GPT, GPTConfig
from machinery.cli import (ArgumentParser, HelpFormatter, UserError, check_count, check_suffix, parse_seed,
                            refuse_to_write_over, run_cli, write_atomically)
from machinery.bookkeeping import busy_cpu_note, count_params

CONFIG = GPTConfig(block_size=3, vocab_size=2, n_layer=4, n_head=4, n_embd=16, bias=False)
BITS = "111101111011110"
STATES = [f"{i:03b}" for i in range(2 ** CONFIG.block_size)]  # "000" .. "111"
LR, WEIGHT_DECAY = 1e-3, 0.1  # AdamW's, full-batch


def windows(bits, context):
    """The bit string -> every (context, next bit) pair in it: X (N, context), Y (N,)."""
    ids = [int(b) for b in bits]
    X = torch.tensor([ids[i:i + context] for i in range(len(ids) - context)])
    Y = torch.tensor([ids[i + context] for i in range(len(ids) - context)])
    return X, Y


@torch.no_grad()
def next_bit_probs(model):
    """P(next bit = 1) for each of the 8 states, in the order of STATES -> (8,)."""
    X = torch.tensor([[int(b) for b in state] for state in STATES])  # (8, 3)
    logits, _ = model(X)  # (8, 3, 2)
    return F.softmax(logits[:, -1, :], dim=-1)[:, 1]  # the last position predicts the next bit


def last_position_loss(model, X, Y):
    """The loss on the last position, the one that sees the whole state: the chain's arrows leave whole states
    (train.py's loss scores every position, the earlier ones seeing fewer bits)."""
    logits, _ = model(X)  # (N, 3, 2): N windows of 3 bits, 2 scores each
    return F.cross_entropy(logits[:, -1, :], Y)


def train(model, X, Y, steps, lr=LR, weight_decay=WEIGHT_DECAY, after_step=None):
    """Full-batch AdamW on all 12 windows at once (last_position_loss). after_step(n) is called
    after step n. Returns the loss of the model as it ends: after the last update."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    for step in range(1, steps + 1):
        loss = last_position_loss(model, X, Y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if after_step:
            after_step(step)
    with torch.no_grad():  # (each step's loss came before its update; 0 steps: the model as built)
        return last_position_loss(model, X, Y).item()


def to_dot(probs):
    """The chain as Graphviz text: a node per state, an arrow per (state, next bit) to
    the shifted state, labelled with its probability."""
    lines = ["digraph markov_chain {", "  rankdir=LR;"]
    lines += [f'  "{state}";' for state in STATES]
    for state, p1 in zip(STATES, probs.tolist()):
        for bit, p in (("0", 1 - p1), ("1", p1)):
            lines.append(f'  "{state}" -> "{state[1:] + bit}" [label="{p:.2f}", penwidth={0.5 + 3 * p:.2f}];')
    return "\n".join(lines + ["}"]) + "\n"


def parse_args(argv):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0],
                            formatter_class=HelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="training iterations (full batch)")
    parser.add_argument("--look_at", type=int, default=None, help="also show the chain after this many steps "
                        "(default 50, where Karpathy's note shows it, when --steps goes past it)")
    parser.add_argument("--seed", type=parse_seed, default=1337, help="seed for the initial weights")
    parser.add_argument("--dot", default="out/babygpt.dot", help="where to write the chain (Graphviz)")
    args = parser.parse_args(argv)
    check_count("--steps", args.steps, "e.g. --steps 300", least=0)  # (nor past MAX_COUNT: a run that would never end)
    if args.look_at is not None and not 0 <= args.look_at <= args.steps:
        raise UserError(f"--look_at {args.look_at} is outside the training's 0 to {args.steps} steps — give one of "
                        f"them, or leave it out")
    args.look_at = 50 if args.look_at is None else args.look_at
    check_suffix(args.dot, ".dot", "babygpt.dot", "--dot")
    refuse_to_write_over(args.dot, b"digraph markov_chain", "lessons.babygpt", "--dot")  # (to_dot's first line)
    png = Path(args.dot).with_suffix(".png")  # Graphviz draws it there: a .png without its .dot is not ours
    if png.exists() and not Path(args.dot).exists():
        raise UserError(f"{png} is there, and the chain's drawing (Graphviz's -o) would go over it — choose another "
                        f"--dot, or move {png} away")
    refuse_to_write_over(png, b"\x89PNG", "Graphviz", "--dot")  # (beside our .dot: a picture, at least)
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    model = GPT(CONFIG)
    X, Y = windows(BITS, CONFIG.block_size)
    print(f"baby GPT: {count_params(model):,} parameters; vocab {{0, 1}}, context {CONFIG.block_size}, "
          f"{CONFIG.n_layer} layers, {CONFIG.n_head} heads, {CONFIG.n_embd} wide, no bias")
    print(f"training on the {len(X)} windows of {BITS}: "
          + " ".join(f"{''.join(map(str, x.tolist()))}->{y}" for x, y in zip(X, Y.tolist())))
    # beside a program that keeps a core busy this takes several times as long, unless OMP_NUM_THREADS is lowered
    if note := busy_cpu_note(torch.get_num_threads())[0]:
        print(note)

    columns = {"before": next_bit_probs(model)}  # P(next=1) for each state, at each point shown

    def look(step):
        if step == args.look_at and 0 < step < args.steps:
            columns[f"after {step}"] = next_bit_probs(model)
    loss = train(model, X, Y, args.steps, after_step=look)
    columns[f"after {args.steps}"] = after = next_bit_probs(model)
    print(f"after {args.steps} steps of AdamW (lr {LR:g}, weight decay {WEIGHT_DECAY:g}): loss {loss:.4f}\n")
    seen = {"".join(map(str, x.tolist())) for x in X}
    print("P(next=1)  " + "".join(f"{name:>11}" for name in columns) + "   in training?")
    for i, state in enumerate(STATES):
        print(f"state {state}" + "".join(f"{p[i].item():11.3f}" for p in columns.values())
              + f"   {'yes' if state in seen else 'no'}")
    write_chain(Path(args.dot), after)
    return 0


def write_chain(dot, probs):
    """The trained chain (probs: P(next=1) of each state) as a Graphviz file at dot, drawn beside it as a .png
    where Graphviz is installed."""
    try:
        dot.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(dot, lambda f: f.write(to_dot(probs).encode()))
    except OSError as e:
        raise UserError(f"cannot write {dot} ({e.strerror}) — choose another --dot path") from None
    print(f"\nwrote the chain to {dot}")
    png = dot.with_suffix(".png")
    if shutil.which("dot"):  # Graphviz, if installed, draws it
        if subprocess.run(["dot", "-Tpng", not_an_option(dot), "-o", not_an_option(png)]).returncode != 0:
            raise UserError(f"Graphviz could not draw {dot} (see its message above) — the .dot file is fine")
        print(f"drew it as {png}")
    else:
        print(f"to draw it, install Graphviz and run: dot -Tpng {shlex.quote(not_an_option(dot))} -o "
              f"{shlex.quote(not_an_option(png))}")


def not_an_option(path):
    """A path as a command's argument: one that starts with a dash (--dot=-draft.dot) would be read as an option."""
    return f"./{path}" if str(path).startswith("-") else str(path)


if __name__ == "__main__":
    sys.exit(run_cli(main))
