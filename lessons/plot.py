"""Pictures of what a training run learned.

    python -m lessons.plot loss                                   # out/log.csv -> out/loss.png
    python -m lessons.plot attention --prompt "ROMEO:" --layer 0  # out/best.pt -> out/attention.png
    python -m lessons.plot embeddings                             # out/best.pt -> out/embeddings.png
    python -m lessons.plot explore --prompt "ROMEO:"              # out/best.pt -> out/explore.html, to play with

The pictures need matplotlib, an optional extra: pip install matplotlib. The explore page
needs nothing: it is one HTML file (explore.html, with the model's numbers filled in) that
any browser opens, offline. Each goes to --save (default: beside the checkpoint it draws,
or beside log.csv).
"""

import json
import math
import os
import re
import shlex
import string
import sys
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

if not __package__:  # run as a file (python lessons/plot.py): the imports below need python -m
    command = shlex.join(["python", "-m", "lessons.plot", *sys.argv[1:]])
    print(f"error: run it as a module, from the repo's folder — {command}", file=sys.stderr)
    sys.exit(2)

from lessons.inside import WEIGHTS_LABEL, attention_weights, recorded, watch
from model import Bigram
from machinery.cli import (ArgumentParser, UserError, check_suffix, refuse_stray_bytes, refuse_to_write_over, run_cli,
                           write_atomically)
from machinery.checkpoint import load_model, read_log
from prepare import decode, encode, start_char


def pyplot():
    """matplotlib.pyplot drawing into files only; a clear error when it is not installed."""
    os.environ["MPLBACKEND"] = "Agg"  # files only, whatever backend the environment names (a bad name fails the import)
    try:
        import matplotlib
    except ImportError:
        raise UserError("the pictures need matplotlib, an optional extra — pip install matplotlib") from None
    matplotlib.use("Agg")  # no window: straight to PNG
    import matplotlib.pyplot as plt
    return plt


def label(char):
    """A character as a readable tick label: the invisible ones get signs (as on the explore page)."""
    return {"\n": "⏎", " ": "␣", "\t": "\\t"}.get(char, char)


# what this script's own files hold near their start, which it may write over (a file of the user's, it refuses)
MATPLOTLIB_PNG = b"Software\x00Matplotlib"  # a PNG's metadata, as savefig writes it
EXPLORE_PAGE = b"python -m lessons.plot explore"  # explore.html's first comment


def save(path, write, flag="--save", mark=None, writer="lessons.plot"):
    """Write the file at path with write(f), atomically, making its folder; one line, naming the flag
    that chose the path, when it cannot. mark: what a file there already must hold for it to be replaced."""
    path = Path(path)
    if mark is not None:
        refuse_to_write_over(path, mark, writer, flag)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, write)
    except OSError as e:
        raise UserError(f"cannot write {path} ({e.strerror}) — choose another {flag}") from None
    print(f"wrote {path} ({path.stat().st_size / 1000:.0f} KB)")


def save_png(fig, path, flag="--save"):
    """Write fig as a PNG, over a PNG that matplotlib drew (an earlier run's, or yours). Characters the font has no
    glyph for (CJK, emoji) are drawn as boxes: one note says which, where matplotlib would warn once per character."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        save(path, lambda f: fig.savefig(f, format="png", dpi=100, bbox_inches="tight"), flag, MATPLOTLIB_PNG,
             "matplotlib")
    boxes = set()
    for w in caught:
        if glyph := re.match(r"Glyph (\d+) .*missing from (current )?font", str(w.message)):
            boxes.add(chr(int(glyph.group(1))))
        else:  # any other warning goes on, through the user's own filters
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if boxes:
        print(f"note: the font has no glyph for {len(boxes)} character(s), drawn as boxes: "
              f"{' '.join(sorted(boxes))}", file=sys.stderr)


def plot_loss(args, plt):
    iters, train, val = read_log(Path(args.out_dir) / "log.csv")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(iters, train, marker="o", markersize=3, label="train")
    ax.plot(iters, val, marker="o", markersize=3, label="val")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss (nats per character)")
    best = min(range(len(val)), key=val.__getitem__)
    shown = args.out_dir.encode("utf-8", "surrogateescape").decode("utf-8", "replace")  # (a Latin-1 name's byte: �)
    ax.set_title(f"the train and val loss of {shown} (best val {val[best]:.4f}, at iteration {iters[best]})",
                 parse_math=False, fontsize=10)  # (parse_math: a path may hold $...$)
    ax.grid(alpha=0.3)
    ax.legend()
    save_png(fig, args.save or Path(args.out_dir) / "loss.png")
    if iters[-1] == 0:  # stopped before its first evaluation after the start: --eval_interval is not the cause
        # (a Ctrl-C or a kill's SIGTERM saves latest.pt, to resume from; a kill -9 saves nothing: start again)
        again = (f"python train.py --resume --out_dir {shlex.quote(str(args.out_dir))}"
                 if (Path(args.out_dir) / "latest.pt").is_file() else "start it again with the command that began it")
        print(f"note: log.csv holds only iteration 0's evaluation, of the untrained model — the curve goes on at the "
              f"run's next evaluation: let it train on (if it was stopped: {again})", file=sys.stderr)
    elif len(iters) < 4:  # a short run, or a long --eval_interval: a straight line says little
        print(f"note: log.csv holds {len(iters)} evaluation(s), so the curve has as many points — for more, train "
              f"again, into a new --out_dir, with a smaller --eval_interval (e.g. {max(1, iters[-1] // 10)})",
              file=sys.stderr)


def load_gpt(args):
    """The checkpoint's GPT (not a bigram: it has no attention or embeddings to show), the
    checkpoint, and the file it came from."""
    model, ckpt, path = load_model(args.checkpoint, args.out_dir)
    model.eval()
    if isinstance(model, Bigram):
        raise UserError(f"{path} holds a bigram model, which has no attention and no embeddings to draw — "
                        "give a GPT's run with --out_dir or --checkpoint (python train.py trains one)")
    return model, ckpt, path


PROMPT = "ROMEO:\nBut soft, what light"


def pick_prompt(prompt, model, chars):
    """--prompt, or else PROMPT; where the model cannot read PROMPT (a model of your own text may
    lack its characters, a small one its length), it writes its own: a newline and up to 39
    characters (seeded: the same every time)."""
    if prompt is not None:
        refuse_stray_bytes(prompt)
        return prompt
    if set(PROMPT) <= set(chars) and len(PROMPT) <= model.config.block_size:
        return PROMPT
    start = torch.tensor([encode(start_char(chars), chars)])  # (1, 1)
    ids = model.generate(start, min(40, model.config.block_size) - 1, generator=torch.Generator().manual_seed(0))
    prompt = decode(ids[0].tolist(), chars)
    print(f"prompt: {prompt!r}, written by the model (it cannot read the default: other characters, or too "
          f"long); give your own with --prompt")
    return prompt


def prompt_ids(prompt, chars, cfg):
    """The prompt -> its ids (1, T), if the model can read it whole."""
    if not 0 < len(prompt) <= cfg.block_size:
        best = " (about 40 read best)" if cfg.block_size >= 40 else ""  # (a picture of more is hard to read)
        raise UserError(f"the prompt has {len(prompt)} characters, and the model reads 1 to {cfg.block_size} "
                        f"characters at once (its block_size) — give a prompt of that length{best}")
    return torch.tensor([encode(prompt, chars)])


def plot_attention(args, plt):
    model, ckpt, path = load_gpt(args)
    chars = ckpt["vocab"]["chars"]
    cfg = model.config
    if not 0 <= args.layer < cfg.n_layer:
        raise UserError(f"--layer {args.layer} does not exist: the model has layers 0 .. {cfg.n_layer - 1} — give "
                        f"one of them")
    prompt = pick_prompt(args.prompt, model, chars)
    idx = prompt_ids(prompt, chars, cfg)  # (1, T)
    att = attention_weights(model, idx)[args.layer][0]  # (nh, T, T), one layer's
    T = att.size(-1)
    att = att.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("nan"))  # the masked future: grey
    colours = plt.get_cmap("viridis").with_extremes(bad="lightgrey")  # (nan is "bad")
    ticks = [label(c) for c in prompt]
    cols = math.ceil(math.sqrt(cfg.n_head))  # a near-square grid
    rows = -(-cfg.n_head // cols)  # ceiling division
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.6 * rows), squeeze=False)
    for h, ax in enumerate(axes.flat):
        if h >= cfg.n_head:
            ax.axis("off")
            continue
        image = ax.imshow(att[h].numpy(), cmap=colours, vmin=0, vmax=1)
        ax.set_title(f"layer {args.layer}, head {h}", fontsize=9)
        ax.set_xticks(range(len(ticks)), ticks, fontsize=7)
        ax.set_yticks(range(len(ticks)), ticks, fontsize=7)
    fig.supxlabel("looks at (key)")
    fig.supylabel("reading at (query)")
    fig.colorbar(image, ax=axes, shrink=0.6, label="attention weight (each row sums to 1; grey: the future, masked)")
    save_png(fig, args.save or path.parent / "attention.png")  # beside the checkpoint


def pca_2d(X):
    """Points (N, C) -> (N, 2) along their two directions of greatest variance, and the
    share of the variance each of the two explains."""
    X = X - X.mean(dim=0)  # PCA is about spread around the centre
    _, S, Vh = torch.linalg.svd(X, full_matrices=False)  # S (k,), Vh (k, C), k = min(N, C); rows of Vh: directions
    points, share = X @ Vh[:2].T, S[:2] ** 2 / (S ** 2).sum()  # (N, C) @ (C, 2) -> (N, 2); the two shares
    # a vocabulary of one character: one direction, and no spread to share (0 / 0)
    return F.pad(points, (0, 2 - points.size(1))), F.pad(share.nan_to_num(0.0), (0, 2 - share.size(0))).tolist()


def plot_embeddings(args, plt):
    model, ckpt, path = load_gpt(args)
    chars = ckpt["vocab"]["chars"]
    points, share = pca_2d(model.transformer.wte.weight.detach().float())  # (V, 2)
    # the explore page's colours
    groups = [("lower case", string.ascii_lowercase, "tab:blue"), ("upper case", string.ascii_uppercase, "tab:purple")]
    fig, ax = plt.subplots(figsize=(8, 8))  # room for 65 labels, fewer of them on top of each other
    for i, c in enumerate(chars):
        color = next((colour for _, members, colour in groups if c in members), "tab:gray")
        ax.annotate(label(c), points[i].tolist(), color=color, fontsize=9, ha="center", va="center")
    ax.set_xlim(points[:, 0].min() - 0.1, points[:, 0].max() + 0.1)
    ax.set_ylim(points[:, 1].min() - 0.1, points[:, 1].max() + 0.1)
    ax.set_xlabel(f"principal component 1 ({share[0]:.0%} of the variance)")
    ax.set_ylabel(f"principal component 2 ({share[1]:.0%})")
    ax.set_title("character embeddings (blue: lower case, purple: upper case, grey: the rest)", fontsize=10)
    save_png(fig, args.save or path.parent / "embeddings.png")


def rounded(x, digits=4):
    """Nested lists of floats, rounded to digits places: the page shows no more, and is smaller for it."""
    return [rounded(v, digits) for v in x] if isinstance(x, list) else round(x, digits)


def explore_data(model, ckpt, prompt, source):
    """Everything the explore page shows for prompt, from one forward pass: the attention
    weights of every layer and head, the next-character scores at every position, and the
    embedding map. source: the checkpoint file, to name on the page. -> a dict, ready for JSON"""
    chars, cfg = ckpt["vocab"]["chars"], model.config
    idx = prompt_ids(prompt, chars, cfg)  # (1, T)
    with torch.no_grad(), watch(model) as records:
        logits, _ = model(idx)  # (1, T, V)
    # per layer, head and query position t: its weights on the keys 0 .. t (the rest is masked: 0)
    attention = [[[row[:t + 1] for t, row in enumerate(head.tolist())] for head in weights[0]]
                 for weights in recorded(records, WEIGHTS_LABEL)]  # each (1, nh, T, T)
    points, share = pca_2d(model.transformer.wte.weight.detach().float())  # (V, 2)
    best = ckpt["best_val_loss"]  # inf before the first evaluation after the start: the page says so
    return dict(prompt=list(prompt), chars=chars, block_size=cfg.block_size, iter=ckpt["iter"],
                best_val_loss=round(best, 4) if math.isfinite(best) else None, checkpoint=str(source),
                attention=rounded(attention), logits=rounded(logits[0].tolist()),  # logits: the page applies
                embedding=dict(points=rounded(points.tolist()), share=share))    # the temperature itself


DATA_TAG = '<script id="data" type="application/json"></script>'  # in explore.html, where the data goes


def explore_page(data):
    """explore.html with data (explore_data's) in its data tag -> the page, one string."""
    template = (Path(__file__).parent / "explore.html").read_text(encoding="utf-8")
    assert template.count(DATA_TAG) == 1, "explore.html must have exactly one empty data tag"
    # a "<" in the JSON (a prompt with "</script>") could end the script tag early; \u003c is the same JSON
    data = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")  # (NaN is no JSON)
    return template.replace(DATA_TAG, DATA_TAG.replace("><", f">{data}<"))


def write_explore(args):
    model, ckpt, source = load_gpt(args)
    prompt = pick_prompt(args.prompt, model, ckpt["vocab"]["chars"])
    page = explore_page(explore_data(model, ckpt, prompt, source))
    save(args.save or source.parent / "explore.html", lambda f: f.write(page.encode("utf-8")),  # beside the checkpoint
         mark=EXPLORE_PAGE)
    print("open it in a browser: no network needed")


def parse_args(argv):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="{loss,attention,embeddings,explore}")
    for name, help in (("loss", "train and val loss over the iterations, from log.csv"),
                       ("attention", "one heatmap per head: where each character looks, for a prompt"),
                       ("embeddings", "the learned character embeddings, projected to 2-D by PCA"),
                       ("explore", "a page to play with: attention, next-character bars with a temperature "
                                   "slider, and the embeddings, for a prompt (one HTML file, no network)")):
        p = commands.add_parser(name, help=help, description=help)
        # (None: out; given beside --checkpoint, one of the two would be ignored, and load_model refuses them)
        p.add_argument("--out_dir", default="out" if name == "loss" else None,
                       help="the training run to draw (default: out)")
        ext = "html" if name == "explore" else "png"
        beside = "log.csv" if name == "loss" else "the checkpoint"
        p.add_argument("--save", help=f"the {ext.upper()} file to write (default: {name}.{ext} beside {beside})")
        if name != "loss":
            p.add_argument("--checkpoint", help="a checkpoint file or run folder to use instead of <out_dir>/best.pt")
        if name in ("attention", "explore"):
            p.add_argument("--prompt", help=f"the text to look at (default: {PROMPT!r}, or one the model writes "
                                            f"where it cannot read that)")
        if name == "attention":
            p.add_argument("--layer", type=int, default=0, help="which block's attention, 0 the first (default: 0)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.save is not None:
        kind = ".html" if args.command == "explore" else ".png"
        check_suffix(args.save, kind, args.command + kind, "--save")
    if args.command == "explore":  # a page, not a picture: no matplotlib needed
        write_explore(args)
        return 0
    plt = pyplot()
    {"loss": plot_loss, "attention": plot_attention, "embeddings": plot_embeddings}[args.command](args, plt)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
