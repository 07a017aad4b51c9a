"""Build the GPT up one idea at a time, as the video "Let's build GPT: from scratch, in code,
spelled out" does, and measure what each idea buys.

    python -m lessons.buildup                  # the 11 rungs on tiny-shakespeare: minutes on 2 CPU cores
    python -m lessons.buildup --quick          # every rung for a few steps: does it all run? (seconds)
    python -m lessons.buildup --device cuda    # on a GPU, at the video's sizes (the default there)

Rung 1 is a bigram table. Rung 2 is model.py's GPT with every part switched off but the
embeddings and the head, and each rung after it switches one more part on (GPTConfig's
n_layer, n_head, mlp, residual, layer_norm), as the video does: with a head of its own and
each layer's PyTorch initialisation, the video's choices. Rungs 9 and 10 then make GPT-2's
two changes (tie_head, init), and rung 11 adds dropout and scale: the classic GPT (learned
positions, AdamW: what the shakespeare preset trains, at smaller sizes on a CPU). So the
ladder runs the code you read in model.py, nothing else.

Each rung trains from scratch, rungs 1 to 10 on the same batches, and they are scored on the same
val windows (train.py's estimate_loss), so their rows compare like with like; rung 11 reads a
longer context, and so other, longer windows, which is part of its "scale". The table prints as it
goes, then the text each rung generates (a 70-character sample); the rows (losses, sizes,
seconds) go to <out_dir>/ladder.csv and, with matplotlib installed, a picture, ladder.png
(out_dir: out/buildup/<sizes>, so a --quick run never overwrites a real one; another text's climb goes to
out/buildup/<its data folder's name>-<sizes>).
"""

import csv
import io
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

if not __package__:  # run as a file (python lessons/buildup.py): the imports below need python -m
    command = shlex.join(["python", "-m", "lessons.buildup", *sys.argv[1:]])
    print(f"error: run it as a module, from the repo's folder — {command}", file=sys.stderr)
    sys.exit(2)

from machinery.cli import (ArgumentParser, HelpFormatter, UserError, parse_seed, pick_device, refuse_to_write_over,
                           run_cli)
from config import TrainConfig
from model import GPTConfig, build_model
from machinery.optim import make_optimizer
from machinery.data import is_default_data_dir, load_data
from machinery.settings import check_fits, pick_dtype, precision
from prepare import decode, encode, start_char
from lessons.plot import MATPLOTLIB_PNG, pyplot, save, save_png
from train import estimate_loss, get_batch, lr_at, train_step
from machinery.bookkeeping import busy_cpu_note, count_params
from machinery.checkpoint import first_line_of


@dataclass
class Sizes:
    """The sizes of one ladder: the small model of rungs 2-10, the full one of rung 11, and training."""
    block_size: int      # rungs 1-10: context length
    n_embd: int          # rungs 2-10: width
    n_head: int          # rung 4 on: heads per block
    n_layer: int         # rung 6 on: blocks
    full: dict           # rung 11: the GPT's sizes and dropout
    batch_size: int      # rungs 1-10
    full_batch_size: int  # rung 11
    steps: int           # training steps of rungs 1-10
    full_steps: int      # of rung 11
    lr: float            # AdamW's peak lr for rungs 2-10 (warmup, then cosine to a tenth)
    full_lr: float       # for rung 11
    eval_iters: int      # val (and train) batches that score each rung


SIZES = {
    # the video's sizes for rungs 1-10 (block 8, 32 wide, 4 heads, 3 blocks, batch 32, lr 1e-3, 5000
    # steps), where its story shows; then the full GPT at a CPU's size. Minutes on 2 CPU cores (README)
    "cpu": Sizes(block_size=8, n_embd=32, n_head=4, n_layer=3,
                 full=dict(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.1),
                 batch_size=32, full_batch_size=32, steps=5000, full_steps=1000, lr=1e-3, full_lr=5e-3,
                 eval_iters=200),
    # the video's: block 8, 32 wide, 4 heads, 3 blocks, batch 32, lr 1e-3; then 6 x 6 x 384, block 256,
    # dropout 0.2, batch 64, lr 3e-4; 5000 steps each. On a GPU.
    "video": Sizes(block_size=8, n_embd=32, n_head=4, n_layer=3,
                   full=dict(n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2),
                   batch_size=32, full_batch_size=64, steps=5000, full_steps=5000, lr=1e-3, full_lr=3e-4,
                   eval_iters=200),
    # for the tests: every rung runs, none learns much
    "quick": Sizes(block_size=16, n_embd=16, n_head=2, n_layer=2,
                   full=dict(n_layer=2, n_head=2, n_embd=32, block_size=32, dropout=0.1),
                   batch_size=8, full_batch_size=8, steps=20, full_steps=20, lr=3e-3, full_lr=3e-3,
                   eval_iters=4),
}

FULL = 11  # the last rung: the full GPT, at its own sizes
BIGRAM_LR = 0.03  # the bigram preset's, 30x the CPU rungs' lr: a table has no depth to upset


@dataclass
class Rung:
    short: str           # its label in the picture
    what: str            # what it adds, for the table
    config: GPTConfig
    why: str = ""        # why, where a rung can score worse than the one before (said in its row)


def ladder(sizes, vocab_size):
    """-> [Rung], each the one before plus one idea."""
    config = dict(vocab_size=vocab_size, block_size=sizes.block_size, n_embd=sizes.n_embd, dropout=0.0, bias=False)
    # (short label, what it adds, the GPTConfig fields that add it, why it may not help); each change lands on top of
    # every one before it: rung 3 keeps rung 2's switches (mlp off, ...) and changes n_layer and n_head alone
    ideas = [
        ("bigram", "bigram: a table of next-character scores", dict(model="bigram")),
        ("embeddings", "token + position embeddings, and a head",  # the video's head and initialisation
         dict(model="gpt", n_layer=0, mlp=False, residual=False, layer_norm=False, tie_head=False, init="pytorch"),
         "by its recipe, not its parts: it trains at the GPT rungs' lr, 1/30 of the table's (with the table's, it "
         "beats the table: docs/lessons.md); with no attention, each position still reads one character"),
        ("1 head", "one self-attention head", dict(n_layer=1, n_head=1)),
        # nh heads of C/nh channels each: together as many weights as the one head before, so the count stays
        ("heads", f"{sizes.n_head} heads, side by side", dict(n_head=sizes.n_head)),
        ("MLP", "a feed-forward layer (MLP) after attention", dict(mlp=True)),
        ("blocks", f"{sizes.n_layer} blocks, one on top of the other", dict(n_layer=sizes.n_layer),
         "as in the video: a deep stack without residual connections is hard to train; the next two rungs fix it"),
        ("residual", "residual connections", dict(residual=True)),
        ("LayerNorm", "LayerNorm before each part and the head", dict(layer_norm=True)),  # pre-norm
        ("tied head", "GPT-2: the head tied to the token embedding", dict(tie_head=True),
         "a GPT-2 change, not in the video: one matrix now both reads and writes characters, which a model this "
         "small seems to pay for (GPT-2 ties them to save weights)"),
        ("GPT-2 init", "GPT-2: its initialisation, N(0, 0.02)", dict(init="gpt2"),
         "a GPT-2 change, not in the video: it is made to keep deep stacks stable, and 3 blocks are not deep"),
        ("full GPT", f"dropout {sizes.full['dropout']} and scale: the full GPT", sizes.full),
    ]
    rungs = []
    for short, what, change, *why in ideas:
        config = {**config, **change}
        rungs.append(Rung(short, what, GPTConfig(**config), *why))
    return rungs


def training_config(sizes, number, seed, device):
    """The TrainConfig (config.py) for rung number (1-11): AdamW, warmup, cosine decay to a tenth of the lr, weight
    decay 0.1 on the matrices (0 for rung 1's table); the rest TrainConfig's defaults (beta2 0.99, gradients clipped
    at 1)."""
    if number == 1:
        lr = BIGRAM_LR
    elif number == FULL:
        lr = sizes.full_lr
    else:
        lr = sizes.lr
    steps = sizes.full_steps if number == FULL else sizes.steps
    # train.py's choice (bf16 on a GPU that has it), but float32 rather than fp16: the gradients of rung 6's first
    # attention (at most 1.9e-5, docs/lessons.md) lie below fp16's normal numbers (6.1e-5), and the loss scaling
    # that rescues them may skip steps, so the rungs would no longer train alike
    dtype = "float32" if pick_dtype("auto", device) == torch.float16 else "auto"
    # compile=False: compiling 11 different models would take longer than it saves
    return TrainConfig(device=str(device), dtype=dtype, compile=False,
                       seed=seed, batch_size=sizes.full_batch_size if number == FULL else sizes.batch_size,
                       max_iters=steps, lr=lr, min_lr=lr / 10, warmup_iters=min(100, steps // 10),
                       # rung 1 without decay, which would pull the table's scores towards 0: flatter than the counts
                       weight_decay=0.0 if number == 1 else 0.1, eval_iters=sizes.eval_iters)


def train_rung(mcfg, cfg, splits, device, plug=None, desc="train", schedule=lr_at):
    """Train one rung from scratch -> (the model, {"train": loss, "val": loss}, training seconds,
    steps skipped for a nan or inf loss). plug(model), if given, changes the model before it
    trains (the exercises put a learner's part in place of the repo's); schedule(it, cfg): the
    learning rate at step it (a learner's, in exercise 7). desc: the progress bar's label."""
    torch.manual_seed(cfg.seed)  # the same seed for every rung: the differences are the ideas'
    model = build_model(mcfg).to(device)
    if plug is not None:
        plug(model)
    optimizer = make_optimizer(model, cfg, device)
    # bf16 on a GPU that has it, else float32 (_: whether to compile, off in training_config)
    dtype, autocast, _ = precision(cfg, device)
    # train_step takes a GradScaler; it is on only for a float16 cfg, which training_config never gives
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    generator = torch.Generator().manual_seed(cfg.seed)  # the same batches for every rung

    def get_micro_batch():  # the whole batch: one micro-batch a step (micro_steps=1 below)
        return get_batch(splits["train"], cfg.batch_size, mcfg.block_size, generator, device)

    t0 = time.perf_counter()
    # a tensor on the device: reading a count back every step would make the loop wait for a GPU at every step
    skipped = torch.zeros((), dtype=torch.long, device=device)
    steps = tqdm(range(cfg.max_iters), desc=desc, leave=False, dynamic_ncols=True,  # gone when done: a row follows
                 disable=not sys.stderr.isatty())  # (in a log, a bar that is never cleared clutters each row)
    for it in steps:
        _, finite = train_step(model, optimizer, scaler, get_micro_batch, schedule(it, cfg), cfg, autocast,
                               micro_steps=1, device=device)
        skipped += ~finite
    skipped = skipped.item()  # wait for the device: a GPU runs behind the Python loop
    seconds = time.perf_counter() - t0
    return model, estimate_loss(model, splits, cfg, mcfg.block_size, device, autocast), seconds, skipped


SAMPLE_LENGTH = 70  # characters each rung writes


def sample_text(model, chars, device, length=SAMPLE_LENGTH, seed=0):
    """What the rung writes: length characters after prepare.start_char (a newline, where the text has one),
    sampled at temperature 1."""
    model.eval()
    start = torch.tensor([encode(start_char(chars), chars)], device=device)  # (1, 1)
    ids = model.generate(start, length, generator=torch.Generator(device).manual_seed(seed))  # (1, 1 + length)
    return decode(ids[0, 1:].tolist(), chars)  # (the sample, without its start character)


def row(number, what, params, losses, seconds, note):
    return (f"{number:>4}  {what:<46} {params:>10,}  {losses['train']:>6.4f}  {losses['val']:>6.4f}  "
            f"{seconds:>6.1f} s  {note}")


SAME = 0.005  # nats: val losses closer than this are "no better"; the last digits move from one CPU to another


def note_for(number, val, before, skipped=0, why=""):
    """Say so where a rung did not help at these sizes, rather than hide it, and why if the ladder knows."""
    notes = [f"{skipped} steps skipped for a nan or inf loss"] if skipped else []
    if before is None or not val >= before - SAME:  # the first rung, a rung that helped (or a nan: no verdict)
        return "; ".join(notes)
    if val < before + SAME:
        verdict = f"no better than rung {number - 1} at these sizes"
    else:
        verdict = f"worse than rung {number - 1} at these sizes"
    notes.insert(0, f"{verdict}, {why}" if why else verdict)
    return "; ".join(notes)


def draw(results, path, quick=False):
    """The val loss of each rung, as bars (needs matplotlib; without it, say so and go on)."""
    try:
        plt = pyplot()
    except UserError:
        print("no picture: it needs matplotlib, an optional extra (pip install matplotlib)")
        return
    fig, ax = plt.subplots(figsize=(8, 4))
    vals = [r["val"] for r in results]
    ax.bar(range(1, len(vals) + 1), vals, color=["tab:gray"] + ["tab:blue"] * (len(vals) - 2) + ["tab:red"])
    for i, v in enumerate(vals, start=1):
        ax.annotate(f"{v:.2f}", (i, v), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(1, len(vals) + 1), [r["short"] for r in results], rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, max(vals) + 0.3)  # from 0: bars that start higher would exaggerate the differences
    ax.set_ylabel("val loss (nats per character)")
    ax.set_title("the GPT, built up one idea at a time: val loss after each rung" +
                 (" (--quick: toy sizes, the losses mean nothing)" if quick else ""), fontsize=10 if quick else None)
    ax.grid(axis="y", alpha=0.3)
    save_png(fig, path, "--out_dir")


COLUMNS = ["rung", "what", "params", "train", "val", "seconds", "note"]  # ladder.csv's


def write_csv(results, path):
    """One row per rung: what it adds, its size, its losses and its training time."""
    table = io.StringIO()
    writer = csv.DictWriter(table, COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(results)
    save(path, lambda f: f.write(table.getvalue().encode()), "--out_dir")


def refuse_to_write_over_other_files(out_dir):
    """A ladder.csv, or a ladder.png without one, that an earlier climb did not write is not replaced; nor is a
    ladder.png beside a climb's csv that matplotlib did not draw."""
    csv_path, png_path = out_dir / "ladder.csv", out_dir / "ladder.png"
    if csv_path.exists():  # a climb's begins with its header (a folder of that name cannot be read: not ours)
        other = None if (first_line_of(csv_path) or "").strip() == ",".join(COLUMNS) else csv_path
    else:  # a climb's picture lies beside its ladder.csv
        other = png_path if png_path.exists() else None
    if other:
        raise UserError(f"{other} was not written by lessons.buildup, and a climb would replace it — choose "
                        f"another --out_dir")
    refuse_to_write_over(png_path, MATPLOTLIB_PNG, "matplotlib", "--out_dir")  # beside a csv of ours


def climb(rungs, sizes, splits, chars, device, args):
    """Train the rungs one after the other, printing a row for each as it is done.
    -> (a dict per rung, what each rung writes)"""
    print(f"{'rung':>4}  {'what it adds':<46} {'parameters':>10}  {'train':>6}  {'val':>6}  {'time':>8}")
    results, samples, before = [], [], None
    for number, rung in enumerate(rungs, start=1):
        cfg = training_config(sizes, number, args.seed, device)
        model, losses, seconds, skipped = train_rung(rung.config, cfg, splits, device, desc=f"rung {number}")
        # (--quick's losses mean nothing: no rung is said to be worse than another)
        note = note_for(number, losses["val"], None if args.quick else before, skipped, rung.why)
        params = count_params(model)
        print(row(number, rung.what, params, losses, seconds, note), flush=True)
        results.append(dict(rung=number, short=rung.short, what=rung.what, params=params,
                            train=losses["train"], val=losses["val"], seconds=seconds, note=note))
        samples.append(sample_text(model, chars, device, seed=args.seed))
        before = losses["val"]
    return results, samples


def parse_args(argv):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    parser.add_argument("--data_dir", default=TrainConfig.data_dir, help="prepared data (python prepare.py)")
    parser.add_argument("--out_dir", help="where ladder.csv and ladder.png go (default: out/buildup/<sizes>, or "
                        "for other data than data/shakespeare, out/buildup/<its folder's name>-<sizes>)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--sizes", choices=["auto", "cpu", "video"], default="auto",
                        help="the ladder's sizes: cpu (about 5.5 minutes on 2 cores) or video (the video's, "
                             "for a GPU); auto picks video on CUDA, cpu elsewhere")
    parser.add_argument("--quick", action="store_true",
                        help="toy sizes and 20 steps a rung, in place of --sizes: a check that every rung runs")
    parser.add_argument("--seed", type=parse_seed, default=1337, help="the same for every rung")
    return parser.parse_args(argv)


def sizes_named(args, device):
    """Which of SIZES the climb uses: --quick's, --sizes', or by default the video's on a GPU, the CPU's elsewhere."""
    if args.quick:
        return "quick"
    if args.sizes == "auto":
        return "video" if device.type == "cuda" else "cpu"
    return args.sizes


def check_out_dir(out_dir):
    """out_dir made, writable, and without another program's ladder files: found out now, not after the climb."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out_dir).close()
    except OSError as e:
        raise UserError(f"cannot write in {out_dir} ({e.strerror}) — choose another --out_dir") from None
    refuse_to_write_over_other_files(out_dir)


def main(argv=None):
    args = parse_args(argv)
    if args.quick and args.sizes != "auto":  # --quick's toy sizes take --sizes' place: one of them would be ignored
        raise UserError(f"--quick and --sizes {args.sizes} both given — --quick climbs at toy sizes: drop one of "
                        f"them")
    device = pick_device(args.device)
    name = sizes_named(args, device)
    sizes = SIZES[name]
    vocab, splits = load_data(args.data_dir)
    rungs = ladder(sizes, vocab["vocab_size"])
    for rung in rungs:  # refused now, not after the rungs before it have trained (a huge vocabulary: the bigram)
        check_fits(rung.config, device)
    longest = max(rung.config.block_size for rung in rungs)
    if len(splits["val"]) <= longest:
        raise UserError(f"{args.data_dir} has too little val text for block_size {longest} — prepare a longer text")
    # another text's climb goes beside the default's, named after its folder: neither replaces the other
    prefix = "" if is_default_data_dir(args.data_dir) else f"{Path(args.data_dir).resolve().name}-"
    out_dir = Path(args.out_dir or f"out/buildup/{prefix}{name}")
    check_out_dir(out_dir)

    print(f"device: {device}, sizes: {name} (rungs 1-10: block {sizes.block_size}, {sizes.steps} steps of batch "
          f"{sizes.batch_size}; 2-10: {sizes.n_embd} wide; rung {FULL}: {sizes.full_steps} steps)")
    if name == "quick":
        print("quick: toy sizes and a few steps, to check that every rung runs; the losses mean nothing yet")
    if device.type == "cpu" and (note := busy_cpu_note(torch.get_num_threads())[0]):
        print(note)
    results, samples = climb(rungs, sizes, splits, vocab["chars"], device, args)
    start = start_char(vocab["chars"])  # a newline, unless the text has none
    print(f"\nwhat each rung writes ({SAMPLE_LENGTH} characters after {start!r}, temperature 1):")
    for number, text in enumerate(samples, start=1):
        print(f"{number:>4}  {text!r}")
    total = sum(r["seconds"] for r in results)
    print(f"\ntraining time {total:.1f} s in all; val {results[0]['val']:.4f} (bigram) -> "
          f"{results[-1]['val']:.4f} (the full GPT) nats per character")
    write_csv(results, out_dir / "ladder.csv")
    draw(results, out_dir / "ladder.png", quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
