"""Look inside a forward pass, with PyTorch's own mechanism: forward hooks.

    python -m lessons.inside             # follow one batch through a small GPT, shape by shape
    python train.py --trace_shapes       # the same for your own config and data

A forward hook on a module runs each time the module does, and sees what went in and what
came out. The whole idea, on its own:

    handle = model.lm_head.register_forward_hook(lambda module, inputs, output: print(output.shape))
    model(idx)       # prints torch.Size([B, T, V]) as the head runs
    handle.remove()

model.py's modules have names (transformer.h.0.attn.c_attn, ...), and where a value
has no module of its own, it passes through a probe: an nn.Identity named hook_* that changes
nothing, as TransformerLens's HookPoint does. watch() hooks the places listed in PLACES and
records what each one sees, in the order the forward pass gets there.
"""

import re
import shlex
import sys
from collections import Counter
from contextlib import contextmanager

import torch

if not __package__:  # run as a file (python lessons/inside.py): the imports below need python -m
    command = shlex.join(["python", "-m", "lessons.inside", *sys.argv[1:]])
    print(f"error: run it as a module, from the repo's folder — {command}", file=sys.stderr)
    sys.exit(2)

from machinery.cli import ArgumentParser, run_cli
from model import GPT, CausalSelfAttention, GPTConfig

# Where to look: (the module's name, as a pattern; its input, its output, or "loss", the model's second output;
# the label; the axes of the value; whether the config has this place). The labels with a "{...}" take the config's
# values; the MLP's "{width}" is its hidden width in units of C, as the tensor has it (a fork may widen it).
# q_norm and drop run in every config (nn.Identity without qk-norm; drop, after the embeddings, always), hence their
# conditions; the rotary probes fire only when rotary is used.
PLACES = [
    (r"transformer\.wte", "in", "idx", "B, T", None),
    (r"transformer\.wte", "out", "token embedding wte(idx)", "B, T, C", None),
    (r"transformer\.wpe", "out", "position embedding wpe(pos)", "T, C", None),
    # tok + pos has no module of its own: the dropout after it reads the sum (rotary adds no positions to x)
    (r"transformer\.drop", "in", "x = tok + pos", "B, T, C", lambda c: c.position == "learned"),
    (r"hook_rotary", "out", "rotary angles for attention: cos (sin too)", "T, hs/2", None),
    (r".*\.attn\.c_attn", "out", "attn: c_attn(x), q k v side by side", "B, T, 3C", None),
    (r".*\.attn\.hook_q", "out", "attn: q, split into heads", "B, nh, T, hs", None),
    (r".*\.attn\.hook_k", "out", "attn: k, split into heads", "B, nh, T, hs", None),
    (r".*\.attn\.hook_v", "out", "attn: v, split into heads", "B, nh, T, hs", None),
    (r".*\.attn\.q_norm", "out", "attn: qk-norm(q), unit RMS per head (k too)", "B, nh, T, hs", lambda c: c.qk_norm),
    (r".*\.attn\.hook_rot_q", "out", "attn: rotary(q), turned by position (k too)", "B, nh, T, hs", None),
    (r".*\.attn\.hook_scores", "out", "attn: scores q @ k^T / sqrt(hs)", "B, nh, T, S", None),
    (r".*\.attn\.hook_mask", "out", "attn: causal mask", "T, S", None),
    (r".*\.attn\.hook_weights", "out", "attn: weights, softmax(scores)", "B, nh, T, S", None),
    (r".*\.attn\.hook_mix", "out", "attn: weights @ v", "B, nh, T, hs", None),
    (r".*\.attn\.c_proj", "in", "attn: heads joined again", "B, T, C", None),
    (r".*\.mlp\.act", "out", "mlp: {activation}(c_fc(x))", "B, T, {width}", None),  # 4C in model.py
    (r"transformer\.h\.\d+", "out", "block output", "B, T, C", None),
    (r"lm_head", "out", "logits = lm_head(ln_f(x))", "B, T, V", None),
    (r"table", "in", "idx", "B, T", None),
    (r"table", "out", "logits = table[idx]", "B, T, V", None),
    (r"", "loss", "loss", "a number: mean over B*T", None),  # the model's own output: (logits, loss)
]
# the attention weights' label, by which lessons/plot.py finds them among the records
WEIGHTS_LABEL = next(label for pattern, _, label, _, _ in PLACES if pattern.endswith("hook_weights"))


@contextmanager
def watch(model, places=PLACES):
    """`with watch(model) as records: model(idx)` -> records fills with (label, axes, tensor) as the
    forward pass reaches each place. Attention is written out meanwhile (its scores and weights
    exist only there; the fused kernel never makes them), and the hooks are removed afterwards."""
    records, handles = [], []

    def hook_for(wanted):
        """A forward hook that records, for each (side, label, axes) wanted at its module, that side's tensor."""
        def hook(module, inputs, output):
            for side, label, axes in wanted:
                value = seen(side, inputs, output)
                if value is not None:
                    width = f"{value.size(-1) / model.config.n_embd:g}C" if "{width}" in axes else ""
                    records.append((label.format(**vars(model.config)), axes.format(width=width), value.detach()))
        return hook

    for name, module in model.named_modules():
        wanted = [(side, label, axes) for pattern, side, label, axes, has in places
                  if re.fullmatch(pattern, name) and (has is None or has(model.config))]
        if wanted:
            handles.append(module.register_forward_hook(hook_for(wanted)))
    with written_out(model):
        try:
            yield records
        finally:
            for handle in handles:
                handle.remove()


@contextmanager
def written_out(model):
    """Every attention layer of model written out (attention="manual") until the block ends, then as it was: the
    scores and weights exist only there; the fused kernel never makes them."""
    attentions = [m for m in model.modules() if isinstance(m, CausalSelfAttention)]
    kept = [m.attention for m in attentions]
    for m in attentions:
        m.attention = "manual"
    try:
        yield
    finally:
        for m, attention in zip(attentions, kept):
            m.attention = attention


def seen(side, inputs, output):
    """What a hook sees on one side of its module: "in", the first input; "loss", the model's second
    output; "out", the output (of a probe that passes a pair on, rotary's cos and sin: the cos)."""
    if side == "in":
        value = inputs[0]
    elif side == "loss":
        value = output[1]
    else:
        value = output
    return value[0] if isinstance(value, tuple) else value


def recorded(records, label):
    """The tensors recorded under label, in order: for a place inside a block, one per layer."""
    return [tensor for name, _, tensor in records if name == label]


@torch.no_grad()
def attention_weights(model, idx):
    """idx (B, T) -> each layer's attention weights, (B, nh, T, T), in a list."""
    with watch(model) as records:
        model(idx)
    return recorded(records, WEIGHTS_LABEL)


@torch.no_grad()
def trace_shapes(model, idx, targets=None):
    """Run one forward pass -> lines "label  shape  (axes)". Each label appears once, with how
    often it repeats: every block makes the same shapes."""
    with watch(model) as records:
        model(idx, targets)
    counts = Counter(label for label, _, _ in records)
    label_width = max(len(label) for label, _, _ in records)  # the columns fit the longest label and shape
    shape_width = max(len(str(tuple(tensor.shape))) for _, _, tensor in records)
    lines, shown = [], set()
    for label, axes, tensor in records:
        if label not in shown:
            shown.add(label)
            repeat = f"  x {counts[label]}, once per block" if counts[label] > 1 else ""
            lines.append(f"{label:<{label_width}}  {str(tuple(tensor.shape)):<{shape_width}}  ({axes}){repeat}")
    return lines


def print_shapes(model, x, y):
    """x, y (B, T): one batch through the model, every tensor's shape printed. -> 0"""
    cfg, (B, T) = model.config, x.shape
    gpt = "" if cfg.model == "bigram" else (f"C={cfg.n_embd} channels, nh={cfg.n_head} heads, "  # (a table has none)
                                            f"hs={cfg.n_embd // cfg.n_head} head size, S=T keys, ")
    print(f"B={B} batch, T={T} time, {gpt}V={cfg.vocab_size} vocabulary")
    if gpt and cfg.attention != "manual":  # (written_out, above: the fused kernel makes no scores to show)
        print(f"(attention written out for this pass, as attention=manual does, so that its scores and weights show; "
              f"the model's own is {cfg.attention})")
    for line in trace_shapes(model, x, y):
        print(line)
    return 0


def print_run_shapes(run, get_batch):
    """train.py --trace_shapes: one training batch of the run's settings through the run's model,
    every shape printed (get_batch is train.py's, handed in: train.py imports this module). -> 0"""
    if run.rank != 0:  # under torchrun each process has the same shapes: one table says it
        return 0
    # B: the rows of one process's micro-batch (under torchrun, machinery/ddp.py's share_batch says how many)
    x, y = get_batch(run.splits["train"], run.rows, run.mcfg.block_size,
                     torch.Generator().manual_seed(run.cfg.seed), run.device)
    return print_shapes(run.raw_model, x, y)


def main(argv=None):
    """Follow one batch through a small GPT, shape by shape. The sizes differ from each other on
    purpose, so each number in a shape names one axis; only S, the number of keys, equals T,
    because without a KV cache the keys are the same T positions as the queries (with one, S is
    the cached positions plus T)."""
    ArgumentParser(description="Follow one batch through a small GPT and print every tensor's shape, with its "
                               "axes. (train.py --trace_shapes does it for your own config.)").parse_args(argv)
    config = GPTConfig(block_size=8, vocab_size=65, n_layer=2, n_head=4, n_embd=48)
    B = 3  # (not 2: "x 2, once per block" counts the 2 layers)
    torch.manual_seed(0)
    idx = torch.randint(config.vocab_size, (B, config.block_size))  # (B, T): a batch of character ids
    # random ids stand in for the characters that follow: only the shapes matter here
    targets = torch.randint(config.vocab_size, (B, config.block_size))  # (B, T)
    return print_shapes(GPT(config), idx, targets)


if __name__ == "__main__":
    sys.exit(run_cli(main))
