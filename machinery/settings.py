"""Where a run's values come from, and the checks that refuse impossible ones (sample.py's too).

A run's values are layered, in increasing priority: the dataclass default (config.TrainConfig,
model.GPTConfig), the preset (or the checkpoint's config when resuming), the command line.
check_config then refuses impossible values with an error that says what to use instead,
before they turn into a traceback deep inside torch.
"""

import argparse
import importlib.util
import math
import os
import shlex
import sys
import typing
from contextlib import nullcontext
from dataclasses import asdict, fields
from pathlib import Path

import torch

from config import DECAYS, PRESETS, TrainConfig
from machinery.checkpoint import (BIGRAM_FIELDS, RESUMED, added_since, best_is_the_last_state, copy_best_to_latest,
                                  damaged, holds_a_run, lacks, load_checkpoint, runs_inside,
                                  saved_model_config, way_around)
from machinery.cli import (SEEDS, ArgumentParser, UserError, add_flags, check_count, closest, flag_type,
                           pick_device, refuse_stray_bytes, unless_a_typo)
from machinery.data import how_to_prepare, is_prepared, load_data, load_vocab, make_dir
from machinery.bookkeeping import block_work, refuse_if_training, refuse_to_overwrite
from model import ACTIVATIONS, MLP, POSITIONS, GPTConfig


# ----------------------------------------------------------------------------
# The layers: a preset (or a checkpoint's config), then the flags


def default_preset(device_name):
    """The preset a run without --preset gets: the GPU recipe on CUDA, the laptop one elsewhere."""
    cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    return "shakespeare" if cuda else "shakespeare-cpu"


def preset_shown(argv):
    """A first look at --preset and --device, so that --help can show the values they bring
    (here, not in train.py, because bench.speed's --help shows them too).
    -> (the preset whose values are the defaults, whether --preset named it)"""
    first = ArgumentParser(add_help=False)
    first.add_argument("--preset")
    first.add_argument("--device", default="auto")
    try:
        known = first.parse_known_args(argv)[0]
    except UserError:  # (a mistake here is the full parser's to report)
        known = argparse.Namespace(preset=None, device="auto")
    named = known.preset in PRESETS
    shown = known.preset if named else default_preset(known.device)
    check_preset(shown)  # (--help shows its values)
    return shown, named


def check_preset(name):
    """A preset is a plain dict, so a key with a typo (nlayer) would be skipped without a word, and a value
    of the wrong type ("2") would fail deep inside: check each as its --flag would be checked."""
    hints = {**typing.get_type_hints(TrainConfig, include_extras=True),
             **typing.get_type_hints(GPTConfig, include_extras=True)}
    hints.pop("vocab_size")  # (it comes from the data)
    where, named = f"config.PRESETS['{name}']", choices()
    for key, value in PRESETS[name].items():
        if key not in hints:
            guess = closest(key, hints)
            raise UserError(f"{where} has {key!r}, which is not a setting — " + (
                f"did you mean {guess!r}?" if guess else "`python train.py --help` lists them"))
        owner = "config.TrainConfig" if hasattr(TrainConfig, key) else "model.GPTConfig"
        kind = flag_type(hints[key], f"{owner}.{key}")[0]
        fits = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))  # (True is an int too)
        fits = fits or (kind is float and type(value) is int) or (value is None and is_optional(hints[key]))
        if not fits:
            default = getattr(TrainConfig, key, getattr(GPTConfig, key, None))
            example = kind() if default is None else default  # (--compile's default, None, is no example of a bool)
            raise UserError(f"{where} gives {key} the {type(value).__name__} {value!r}, but its type is "
                            f"{kind.__name__} — e.g. {key}={example!r}")
        if key in named and value not in named[key]:
            raise UserError(f"{where} gives {key} {value!r}, which is not one of: {', '.join(named[key])} — "
                            f"fix it in config.py")


def is_optional(hint):
    """Annotated[Optional[bool], "help"] -> True: None is a value too (--compile's: the device decides)."""
    return type(None) in typing.get_args(hint.__origin__)


def split_config(values):
    """{all fields} -> (TrainConfig, GPTConfig)."""
    def pick(cls):
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})
    return pick(TrainConfig), pick(GPTConfig)


EVALUATION = ("batch_size", "eval_iters", "seed")  # what picks the windows an evaluation scores


def build_config(preset, resume, overrides):
    """Layer the config: dataclass defaults < preset (or the checkpoint's) < command line.
    -> (all fields, the checkpoint to resume or None, lines that say where they came from)"""
    out_dir_given = overrides.get("out_dir", TrainConfig.out_dir)
    out_dir = Path(out_dir_given)
    ckpt, notes = None, []
    if resume:
        if out_dir.is_file():  # --out_dir out/run/latest.pt: the file, given to the flag for a folder
            fix = f"use --out_dir {shlex.quote(str(out_dir.parent))}" if holds_a_run(out_dir.parent, ["latest.pt"]) \
                else "give --out_dir the run's folder"
            raise UserError(f"--out_dir {out_dir} is a file, not a run's folder — {fix}")
        nothing = "there is nothing to resume; run without --resume"
        if runs := runs_inside(out_dir, ["latest.pt"]):  # (prepare.py's next command trains into out/NAME)
            nothing = f"give --out_dir a run in it ({runs}), or run without --resume"
        if (out_dir / "best.pt").is_file():  # latest.pt deleted, or a save that failed in between
            nothing = f"only best.pt is there; to resume from it, copy it: {copy_best_to_latest(out_dir)}"
        resumable = lambda folder: holds_a_run(folder, ["latest.pt"])  # what --resume reads

        path = out_dir / "latest.pt"
        # a run killed between its first two saves: best.pt holds its last state (copied to latest.pt once the
        # resume is under way: machinery/checkpoint.py's latest_from_best)
        if not path.exists() and best_is_the_last_state(out_dir):
            path = out_dir / "best.pt"
        ckpt = load_checkpoint(path, lambda: unless_a_typo(out_dir, "--out_dir", resumable, nothing))
        if missing := lacks(ckpt, RESUMED):  # (cut out to share the weights, say: sampling needs none of them)
            raise UserError(f"{path} has no {missing} as train.py saves it, which a resume needs (edited by "
                            f"hand?) — {way_around(path)}")
        saved = ckpt["optimizer"].get("optimizers", [ckpt["optimizer"]])  # one state, or AdamW's and Muon's
        if "numpy" not in ckpt["rng"] or any("kind" not in g for s in saved for g in s["param_groups"]):
            raise UserError(f"{path} was written by an earlier version of this repo, before the optimizer "
                            f"groups and random states it needs to resume — start a new run (sample.py still reads "
                            f"it)")
        if key := damaged(ckpt):
            raise UserError(f"{path}'s {key} is not as train.py saves it (edited by hand?) — {way_around(path)}")
        saved_model_config(ckpt, path)  # refuses a setting that model.py no longer has
        values = {**ckpt["train_config"], **ckpt["model_config"]}
        # the run goes on in the folder it was read from, even if it was trained in another (then moved)
        values["out_dir"] = out_dir_given
        # a fork's decay, removed since: a new --max_iters (or --warmup_iters) would go on down it from where the
        # run was (extend_schedule)
        decay, max_iters = values.get("decay", TrainConfig.decay), overrides.get("max_iters", values["max_iters"])
        warmup = overrides.get("warmup_iters", values["warmup_iters"])
        lengthened = max_iters != values["max_iters"] or warmup != values["warmup_iters"]
        if decay not in DECAYS and ("decay" not in overrides or lengthened):
            finished = ckpt["iter"] >= values["max_iters"]  # (then only a new --max_iters trains it on)
            runs_own = f"--max_iters, {values['max_iters']}" + (
                f", and --warmup_iters, {values['warmup_iters']}" if warmup != values["warmup_iters"] else "")
            other = "" if finished else (f", or resume with another --decay ({', '.join(DECAYS)}) and the run's "
                                         f"{runs_own}")
            raise UserError(f"{path} was trained with --decay {decay!r}, which config.DECAYS no longer has — put "
                            f"it back there{other} (a new --max_iters or --warmup_iters goes on down it)")
        # extend_schedule reads the run's own decay (edited since, perhaps) to find where it was, whatever --decay says
        if decay in DECAYS and lengthened:
            check_decay(decay)
        # the command the run was started with, plus --resume, works: its preset is only checked against
        # the run (where no flag of the command overrides it); the run keeps its own training values.
        # A preset's model is what it spells out over GPTConfig's defaults (classic-cpu's positions: learned)
        implied = {}
        if preset:
            check_preset(preset)
            implied = {k: v for k, v in asdict(GPTConfig()).items() if k != "vocab_size"}
            implied["optimizer"] = TrainConfig.optimizer
        given = {**implied, **PRESETS.get(preset, {}), **overrides}
        model_keys = BIGRAM_FIELDS if values.get("model") == "bigram" else ckpt["model_config"]  # (a table's few)

        def origin(k):  # where the command's value came from: one the user never typed is the preset's, or a default
            if k in overrides:
                return "given"
            if k in PRESETS.get(preset, {}):
                return f"preset {preset}"
            return "TrainConfig's default" if k == "optimizer" else "GPTConfig's default"

        fixed = [f"{k}={values[k]} ({origin(k)}: {v})" for k, v in given.items() if k in values and values[k] != v
                 and ((k in model_keys and k not in ("dropout", "attention")) or k == "optimizer")]
        if fixed:
            raise UserError(f"the checkpoint has {', '.join(fixed)}; its weights (and optimizer state) belong "
                            f"to that setup — resume with the preset and flags the run was started with, or "
                            f"with --resume and --out_dir alone")
        source = f"resuming {path} at iteration {ckpt['iter']}" + (f", preset {preset}" if preset else "")
        # training settings may change: the optimizer keeps its state, the schedule follows the new values
        notes += [f"note: --{k} changes from {values[k]} (the checkpoint's) to {v}" + (
                  "; evaluations now score other windows than the run's best val loss did" if k in EVALUATION else "")
                  for k, v in overrides.items() if k in values and values[k] != v]
        for config in (TrainConfig, GPTConfig):  # a setting gained since: its default may change the run
            if added := added_since(ckpt, overrides, config):
                notes.append(f"note: {path} was {added} — if the run had other values, give them as flags: the "
                             f"checkpoints this resume saves keep the values it trains with")
    else:
        preset = preset or default_preset(overrides.get("device", "auto"))
        check_preset(preset)
        values = dict(PRESETS[preset])
        source = f"preset {preset}"
    values.update(overrides)
    given = ", ".join(f"--{k} {v}" for k, v in overrides.items())
    return values, ckpt, "\n".join([f"config: {source}" + (f", with {given}" if given else "")] + notes)


def trained_on(ckpt):
    """What to resume with, where the data given is not the run's: the --data_dir the run was trained on, where it
    still holds the run's text (the checkpoint has it as given, relative to the folder the run started in: read from
    here), else the run's text, prepared again into a folder of its own."""
    then = ckpt["train_config"]["data_dir"]
    try:
        vocab = load_vocab(then)
    except UserError:  # gone, or never prepared as seen from here
        vocab = {}
    run_vocab = ckpt["vocab"]
    if vocab.get("chars") == run_vocab["chars"] and vocab.get("source_sha256") == run_vocab.get("source_sha256"):
        return f"resume with the --data_dir it was trained on ({shlex.quote(then)})"
    return f"prepare the run's text ({run_vocab.get('source') or '?'}) into a folder of its own and resume with it"


def load_settings(preset, resume, overrides, new_run=True, training=True):
    """A run's settings, checked, with its data: the layers of build_config, the data they name, and
    every check that can fail before the first step. new_run: refuse an out_dir that holds a run;
    training: refuse a resume with nothing left to train.
    -> (TrainConfig, GPTConfig, vocab, {"train": ids, "val": ids}, the checkpoint or None, the summary: where the
    values came from, then any notes, a line each)"""
    # another train.py in out_dir now: said first, before "nothing to resume" (a run that has not saved yet) and
    # before the start-up lines (with a busy-CPU note, the busy CPU being that run's), not at open_log's lock.
    # Process 0 alone looks: two that looked at once would each find the other's look. (A run that writes there:
    # new or resumed; bench.speed's and --trace_shapes' write nothing)
    if training and (new_run or resume) and os.environ.get("RANK", "0") == "0":
        refuse_if_training(overrides.get("out_dir", TrainConfig.out_dir))
    values, ckpt, summary = build_config(preset, resume, overrides)
    data_dir = values.get("data_dir", TrainConfig.data_dir)
    if ckpt is not None and "data_dir" not in overrides and not is_prepared(data_dir):
        # (a relative path is as the run was given it: from the folder it was started in)
        started = "" if Path(data_dir).is_absolute() else " (a path from the folder the run was started in)"
        raise UserError(f"the run in {values.get('out_dir', TrainConfig.out_dir)} was trained on --data_dir "
                        f"{shlex.quote(data_dir)}{started}, which holds no prepared data now — resume from that "
                        f"folder, or with --data_dir NEW_PLACE if the data moved, or prepare the run's text "
                        f"({ckpt['vocab'].get('source') or '?'}) again: {how_to_prepare(data_dir, ckpt['vocab'])}")
    # (a new run only: --trace_shapes and bench.speed write nothing, and a run begun so before this check resumes)
    if training and new_run and Path(values.get("out_dir", TrainConfig.out_dir)).resolve() == Path(data_dir).resolve():
        raise UserError(f"--out_dir and --data_dir are the same folder, {data_dir}: the run's files would mix with the "
                        f"data's — give the run a folder of its own, e.g. --out_dir out/NAME")
    vocab, splits = load_data(data_dir)
    if ckpt is not None and ckpt["vocab"]["chars"] != vocab["chars"]:
        raise UserError(f"{values['data_dir']} has a different vocabulary from the checkpoint — "
                        f"{trained_on(ckpt)}, or train a new run with another --out_dir")
    if ckpt is not None and ckpt["vocab"].get("source_sha256") != vocab.get("source_sha256"):
        then = ckpt["vocab"].get("source") or "?"
        then += ", as it was then: it has been edited since" if then == vocab.get("source") else ""
        raise UserError(f"{values['data_dir']} was prepared from another text than the checkpoint's ({then}) — "
                        f"{trained_on(ckpt)}, or train a new run with another --out_dir")
    values["vocab_size"] = vocab["vocab_size"]
    cfg, mcfg = split_config(values)
    check_config(cfg, mcfg)
    check_fits(mcfg, pick_device(cfg.device))  # (a device this machine lacks is told before the run's checks)
    if ckpt is not None and training and cfg.max_iters <= ckpt["iter"]:
        raise UserError(f"the run in {cfg.out_dir} is at iteration {ckpt['iter']} and --max_iters is "
                        f"{cfg.max_iters}, so there is nothing to train — to train on, give a larger one, e.g. "
                        f"--max_iters {2 * ckpt['iter']} (the learning rate goes on from where the run was)")
    for split in ("val", "train"):  # (prepare.py's train is 9 times val: short only where a file was edited)
        if len(splits[split]) <= mcfg.block_size:
            raise UserError(f"{Path(cfg.data_dir) / f'{split}.bin'} has {len(splits[split]):,} tokens, not more than "
                            f"block_size {mcfg.block_size} — use a longer text or a smaller --block_size")
    if new_run:  # last, so that a mistake in the flags is told first, not after a change of --out_dir
        refuse_to_overwrite(Path(cfg.out_dir), preset)
    return cfg, mcfg, vocab, splits, ckpt, summary


# ----------------------------------------------------------------------------
# The checks: settings that cannot work, refused with what to use instead


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}  # and auto: pick_dtype


def registries():
    """The registries (model.py's, config.DECAYS) -> {setting: its names}: a new entry there is a
    valid flag value at once, and --help lists it (add_flags's choices)."""
    return {"position": tuple(POSITIONS), "activation": tuple(ACTIVATIONS), "decay": tuple(DECAYS)}


def choices():
    """The settings that name one of a few choices -> their valid values (check_config refuses others)."""
    return {"attention": ("sdpa", "manual"), "model": ("gpt", "bigram"), "optimizer": ("adamw", "muon"),
            "init": ("gpt2", "pytorch"), "compile_mode": COMPILE_MODES, "dtype": ("auto", *DTYPES)} | registries()


# a learning rate of 1e300 overflows float32 in the optimizer; below this, AdamW's step size, lr / (1 - beta1 ** step),
# and Muon's, a few times lr, stay well inside it, and no learning rate this large trains
MAX_LR = 1e6


def check_config(cfg, mcfg):
    """Catch impossible settings before they turn into a traceback deep inside torch."""
    gpt = mcfg.model == "gpt"  # a bigram is a table: the GPT's sizes do not apply to it
    for name in ("batch_size", "grad_accum", "max_iters", "eval_interval", "eval_iters", "log_interval",
                 "block_size") + (("n_layer", "n_head", "n_embd") if gpt else ()):
        value = getattr(cfg if hasattr(cfg, name) else mcfg, name)
        check_count(f"--{name}", value, fix="give a positive number")
    if not 0 <= mcfg.dropout < 1:
        raise UserError(f"--dropout {mcfg.dropout} is outside [0, 1) — use e.g. 0.0 or 0.2")
    for name, allowed in choices().items():
        value = getattr(cfg if hasattr(cfg, name) else mcfg, name)
        if value not in allowed:
            raise UserError(f"--{name} {value!r} is unknown — use {', '.join(allowed[:-1])} or {allowed[-1]}")
    check_decay(cfg.decay)
    if gpt:
        check_heads(mcfg)
        check_activation(mcfg)
    if cfg.max_nan_skips < 0:
        raise UserError(f"--max_nan_skips {cfg.max_nan_skips} must be 0 or more — e.g. 3")
    positive = ("lr",) + (("muon_lr",) if cfg.optimizer == "muon" else ())
    for name in positive + ("min_lr", "warmup_iters", "weight_decay", "grad_clip"):
        value = getattr(cfg, name)
        in_range = value > 0 if name in positive else value >= 0
        if not (in_range and value < math.inf):  # nan fails both comparisons
            lowest = "above 0" if name in positive else "0 or more"
            finite = " and finite" if isinstance(value, float) else ""
            raise UserError(f"--{name} is {value}, but it must be {lowest}{finite} — e.g. the preset's value, "
                            f"which --help shows")
    for name in positive:  # (MAX_LR, above: else a traceback deep in torch)
        if getattr(cfg, name) > MAX_LR:
            raise UserError(f"--{name} is {getattr(cfg, name):g}, above {MAX_LR:g}, far past any learning rate that "
                            f"trains — e.g. the preset's value, which --help shows")
    if cfg.min_lr > cfg.lr:  # the "decay" would climb from lr to min_lr
        raise UserError(f"--min_lr {cfg.min_lr:g} is above --lr {cfg.lr:g} — give a lower --min_lr too, e.g. "
                        f"--min_lr {cfg.lr / 10:g} (a tenth, as every preset's)")
    if cfg.seed not in SEEDS:
        raise UserError(f"--seed {cfg.seed} does not fit in 64 bits, as PyTorch's generators need — e.g. --seed 1337")
    for name in ("beta1", "beta2"):  # the decay rates of AdamW's running averages
        if not 0 <= getattr(cfg, name) < 1:
            raise UserError(f"--{name} {getattr(cfg, name)} is outside [0, 1) — "
                            f"e.g. --{name} {getattr(TrainConfig, name)}")


def check_fits(mcfg, device):
    """A model far too big for the machine is refused before it is built: built, it would fill the
    memory one layer at a time, for minutes, until the system stopped it with no message of ours.
    Training needs 16 bytes a weight (the weight, its gradient and AdamW's two moments, in float32);
    the count is the GPT's leading terms (an MLP 4 times as wide, the embeddings), the check loose."""
    V = mcfg.vocab_size
    if mcfg.model == "bigram":  # a V x V table: a text of many distinct characters makes it huge
        weights, what = V ** 2, f"a bigram of {V:,} characters is a table of {V:,} x {V:,} weights"
        fix = (f"use a text of fewer distinct characters, or train a GPT on this one (its embeddings grow as "
               f"{V:,} x n_embd)")
    else:
        weights = 12 * block_work(mcfg.n_layer, mcfg.n_embd) + (V + mcfg.block_size) * mcfg.n_embd
        what = f"a model of {mcfg.n_layer} layers {mcfg.n_embd} wide has about {weights / 1e9:,.1f} billion weights"
        fix = "use a smaller --n_layer or --n_embd"
    memory, where = memory_of(device)
    if 16 * weights > memory:
        raise UserError(f"{what}, and training them takes about {16 * weights / 1e9:,.0f} GB, more than {where} "
                        f"{memory / 1e9:,.0f} GB — {fix}")


def memory_of(device):
    """-> (bytes, "this GPU's" or "this machine's"): the GPU's memory on CUDA, else the machine's (inf where
    it cannot be read, as on Windows)."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory, "this GPU's"
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "this machine's"
    return math.inf, ""


def forward_bytes(mcfg):
    """About the bytes one row's forward pass holds at once, in float32: a block's activations (16 x n_embd a
    position) and its attention scores (n_head x block_size), and the logits (vocab_size). A bigram's are its
    logits alone."""
    per_position = mcfg.vocab_size + (16 * mcfg.n_embd + mcfg.n_head * mcfg.block_size if mcfg.model == "gpt" else 0)
    return 4 * mcfg.block_size * per_position


def sample_bytes(mcfg, length, dtype, text_bytes):
    """About the bytes one sample of `length` characters holds while it is generated: the KV cache (keys and
    values of every layer, block_size positions, in the weights' dtype; a bigram has none), a forward's
    activations, and its text (text_bytes a character)."""
    cache = 2 * mcfg.n_layer * mcfg.block_size * mcfg.n_embd * dtype.itemsize if mcfg.model == "gpt" else 0
    return text_bytes * length + cache + forward_bytes(mcfg)


def refuse_past_memory(flag, count, of, each, device, otherwise):
    """flag's count of things of `each` bytes, held at once, past the memory: the system would stop the process
    without a word, so it is refused first. of: what they are, as the line says it; otherwise: the fix when not
    even one fits."""
    memory, where = memory_of(device)
    if count * each > memory:
        fewer = int(memory // each) // 2  # (half: the model and Python need room too)
        fix = f"give {flag} {fewer:,} or fewer" if fewer >= 1 else otherwise
        raise UserError(f"{flag} {count:,} {of} take about {count * each / 1e9:,.0f} GB at once, more than {where} "
                        f"{memory / 1e9:,.0f} GB — {fix}")


def check_samples_fit(mcfg, args, length, dtype, device):
    """sample.py's batch is generated at once: far too many samples would fill the memory. A streamed sample's
    text is printed as it comes; the others' is kept, an id in a tensor and in a Python list (about 44 bytes)."""
    streamed = args.num_samples == 1 and not args.no_cache
    each = sample_bytes(mcfg, length, dtype, text_bytes=0 if streamed else 44)
    refuse_past_memory("--num_samples", args.num_samples, f"of {length:,} characters", each, device,
                       otherwise="give a smaller --max_new_tokens")


def check_decay(name):
    """config.DECAYS[name](progress) is the share of lr - min_lr left at that point of the decay: a fork's entry
    that does not start at 1, or leaves [0, 1], would train at an lr above --lr or below --min_lr without a word.
    (It may stay above 0, a flat lr: an extension's note then says where it ends.)"""
    shape = DECAYS[name]
    for progress in (i / 20 for i in range(21)):
        share = shape(progress)
        if not (math.isclose(share, 1.0) if progress == 0 else 0 <= share <= 1):
            must = "1 there (the lr, as the warmup ends)" if progress == 0 else "from 0 (min_lr) to 1 (lr)"
            raise UserError(f"config.DECAYS['{name}'] gives {share:g} at progress {progress:g}, but a decay gives "
                            f"the share of lr - min_lr left: {must} — fix it in config.py")


def check_activation(mcfg):
    """The MLP calls ACTIVATIONS[name]() to make its nonlinearity: a fork's new entry must make a module
    that way (nn.GELU does, and so does functools.partial(nn.GELU, approximate="tanh")), and hand
    c_proj the width it takes (4 x n_embd, as model.py's MLP has it)."""
    name = mcfg.activation
    try:
        made = ACTIVATIONS[name]()
    except TypeError:  # F.gelu wants its input, and so does an instance, nn.GELU()
        made = None
    if not isinstance(made, torch.nn.Module):
        raise UserError(f"model.ACTIVATIONS['{name}'] must make a module when called with nothing, as nn.GELU does "
                        f"(not a function, F.gelu, nor an instance, nn.GELU()) — the MLP makes one per block")
    # c_fc gives it inputs_per_output x c_proj's width: a gated one that does not say so (nn.GLU) would fail
    # at the first step, in a shape error inside c_proj (an error in the fork's own code still traces back)
    with torch.device("meta"):  # (shapes only: no memory, no initialisation)
        mlp = MLP(mcfg)  # the widths model.py gives it, also where a fork has changed them
    if not all(isinstance(getattr(mlp, name, None), torch.nn.Linear) for name in ("c_fc", "c_proj")):
        return  # a fork's MLP of other layers (renamed, say): its first step says whether the widths fit
    inputs, given, hidden = getattr(made, "inputs_per_output", 1), mlp.c_fc.out_features, mlp.c_proj.in_features
    with torch.no_grad():
        width = made(torch.zeros(2, 2, given)).shape[-1]  # (B, T, inputs x 4C) -> (B, T, 4C) in the MLP
    if width != hidden:
        gated = width < given and given % width == 0  # (it keeps one output of every few)
        theirs = type(made).__module__.startswith("torch.")  # (PyTorch's nn.GLU: say it on a class of yours)
        on = f"a class of yours, class {type(made).__name__}(nn.{type(made).__name__}): " if theirs else "its class, "
        fix = (f"a gated one (SwiGLU) says so on {on}inputs_per_output = {given // width} (README: "
               f"Hack it)" if gated else "it keeps every input: leave inputs_per_output out" if width == given
               else "its output must be as wide as c_proj's input")
        raise UserError(f"model.ACTIVATIONS['{name}'] turns {given} inputs into {width} outputs, where the "
                        f"MLP's c_proj takes {hidden} (its inputs_per_output is {inputs}) — {fix}")


def check_heads(mcfg):
    """n_head must divide n_embd into heads, and rotary positions, which turn a head's channels in
    pairs, need an even head size. The error suggests the nearest head count and width that work."""
    pair = 2 if mcfg.position == "rotary" else 1
    unit = mcfg.n_head * pair  # n_embd must be a multiple of this
    if mcfg.n_embd % unit == 0:
        return
    # the head counts h that fit (h * pair divides n_embd), from n_embd's divisors: a loop over every h up to the one
    # asked for would take a minute for --n_head 1000000000
    divisors = {d for i in range(1, math.isqrt(mcfg.n_embd) + 1) if mcfg.n_embd % i == 0 for d in (i, mcfg.n_embd // i)}
    heads = [d // pair for d in divisors if d % pair == 0 and d // pair <= 2 * mcfg.n_head]
    fix = (f"--n_head {min(heads, key=lambda h: (abs(h - mcfg.n_head), -h))} or " if heads else "") + \
        f"--n_embd {max(1, round(mcfg.n_embd / unit)) * unit}"
    if mcfg.n_embd % mcfg.n_head:
        raise UserError(f"n_embd {mcfg.n_embd} is not divisible by n_head {mcfg.n_head} — pick sizes where it is, "
                        f"e.g. {fix}")
    raise UserError(f"rotary positions turn a head's channels in pairs, so the head size must be even, but n_embd "
                    f"{mcfg.n_embd} / n_head {mcfg.n_head} is {mcfg.n_embd // mcfg.n_head} — e.g. {fix}, "
                    f"or --position learned")


# ----------------------------------------------------------------------------
# train.py's command line, and the precision a run computes in


def parse_train_args(argv, description=None):
    """train.py's command line: --preset, --resume, --trace_shapes, and a flag for every config
    field. -> (preset name or None, resume flag, trace flag, {field: value} for the flags given)"""
    shown, named = preset_shown(argv)
    parser = ArgumentParser(
        description=description,
        epilog=f"Presets: {', '.join(PRESETS)}. The defaults above are those of preset {shown}"
               + ("" if named else ", which a run without --preset gets on this machine "
                  "(shakespeare on CUDA, shakespeare-cpu elsewhere)")
               + "; `--preset NAME --help` shows another's. With --resume, a flag left out keeps the run's own value, "
                 "not the default above.")
    parser.add_argument("--preset", choices=PRESETS, help="a named recipe (default: shakespeare "
                        "on CUDA, shakespeare-cpu elsewhere); other flags, before or after it, override it")
    parser.add_argument("--resume", action="store_true", help="continue the run saved in out_dir/latest.pt, with "
                        "its saved settings: the defaults below are a new run's (a flag given still changes --lr "
                        "and the like)")
    parser.add_argument("--trace_shapes", action="store_true",
                        help="run one batch through the model, print every tensor's shape, and stop (no training)")
    add_flags(parser, TrainConfig, preset=shown, preset_values=PRESETS[shown], choices=registries())
    # (no --vocab_size: the vocabulary comes from the data)
    add_flags(parser, GPTConfig, skip={"vocab_size"}, preset=shown, preset_values=PRESETS[shown],
              choices=registries())
    args = vars(parser.parse_args(argv))
    preset, resume, trace = args.pop("preset"), args.pop("resume"), args.pop("trace_shapes")
    return preset, resume, trace, args


def pick_dtype(name, device):
    """'auto' -> bf16 on CUDA where the GPU has it, fp16 on older GPUs, float32 elsewhere.

    Small models on a CPU run slower under bf16 autocast than in float32: the
    casts cost more than the faster matmuls save. You can still ask for it.
    """
    # native only: by default PyTorch also counts bf16 that older GPUs (V100, T4) emulate slowly
    native_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)
    if name == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if native_bf16 else torch.float16
    if name not in DTYPES:
        raise UserError(f"--dtype {name!r} is unknown — use auto, float32, bfloat16 or float16")
    if DTYPES[name] == torch.bfloat16 and device.type == "cuda" and not native_bf16:
        raise UserError("this GPU has no native bfloat16 (it would be emulated, slowly) — use --dtype float16")
    return DTYPES[name]


def precision(cfg, device):
    """-> (dtype, the autocast context for the forward pass, whether to compile)."""
    dtype = pick_dtype(cfg.dtype, device)
    if dtype == torch.float16 and cfg.optimizer == "muon":
        raise UserError("--optimizer muon does not work with float16's loss scaling — use --dtype bfloat16")
    if device.type == "cuda":  # TF32: float32 matmuls on tensor cores, about 10 mantissa bits
        torch.set_float32_matmul_precision("high")  # (only on CUDA: it also loosens oneDNN's CPU matmuls)
    autocast = nullcontext() if dtype == torch.float32 else torch.autocast(device.type, dtype=dtype)
    return dtype, autocast, use_compile(cfg, device)


def use_compile(cfg, device):
    """--compile, or by default on CUDA. On a GPU, torch.compile writes its kernels in Triton: a machine
    without it (Windows, most often) would fail at the first step with a long traceback from inside
    the compiler, so here the default trains eagerly with a note, and --compile true is refused."""
    wanted = cfg.compile if cfg.compile is not None else device.type == "cuda"
    if wanted:
        check_compile_cache()
    if wanted and device.type == "cpu" and has_cpp_compiler() is False:  # (a Mac without Xcode's tools, say)
        raise UserError("--compile on a CPU needs a C++ compiler, and torch.compile finds none (g++, clang++ on "
                        "a Mac, or the one $CXX names) — install one, or leave out --compile to train without "
                        "compiling")
    if not wanted or device.type != "cuda" or has_triton():
        return wanted
    if cfg.compile:
        raise UserError("--compile true on a GPU needs Triton, which this Python lacks — pip install triton "
                        "(triton-windows on Windows), or leave out --compile to train without compiling")
    print("note: no Triton here, so torch.compile is off (pip install triton for it; training works without it)")
    return False


def check_compile_cache():
    """TORCHINDUCTOR_CACHE_DIR, where torch.compile keeps what it built: one it cannot make or write would fail
    deep inside the compiler (at its first use: on a CPU, its look for a C++ compiler)."""
    cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    fix = "point TORCHINDUCTOR_CACHE_DIR at a folder torch.compile can write its kernels in, or unset it"
    if cache:
        make_dir(cache, fix)  # (a file in the way, say, or a path in a read-only file system)
        if not os.access(cache, os.W_OK | os.X_OK):
            raise UserError(f"cannot write in the folder {cache} — {fix}")


def mark_step(cfg):
    """Where torch.compile records CUDA graphs (GPU only: a step's hundreds of small GPU operations, the kernels,
    recorded once, then replayed with one call from the CPU instead of one call each), tell it that a new step
    begins: the graphs may then reuse the last step's output memory. Nothing in any other mode."""
    if cfg.compile_mode in ("reduce-overhead", "max-autotune"):
        torch.compiler.cudagraph_mark_step_begin()


def has_triton():
    return importlib.util.find_spec("triton") is not None


def has_cpp_compiler():
    """Whether torch.compile finds the C++ compiler it builds a CPU's kernels with; None where this
    PyTorch has no way to ask. Without one it would fail at the first step, deep inside the compiler."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler
    except ImportError:
        return None
    try:
        get_cpp_compiler()  # runs `g++ --version` (or $CXX's, clang++ on a Mac)
    except RuntimeError:  # torch._inductor.exc.InvalidCxxCompiler
        return False
    return True


# ----------------------------------------------------------------------------
# sample.py's flags


def check_sample_flags(args):
    """sample.py's values that cannot work, the pairs of flags that contradict each other, and
    --cuda_graph off a GPU (last, so that a flag's mistake is told before a missing GPU)."""
    check_count("--num_samples", args.num_samples)
    if args.max_new_tokens < 0:  # (no upper bound here: a length past the memory is check_samples_fit's refusal)
        raise UserError(f"--max_new_tokens {args.max_new_tokens} must be at least 0 — fix the flag")
    if not (args.temperature == 0 or 1e-4 <= args.temperature <= 1e4):  # also catches nan; 1e-45 would overflow
        raise UserError(f"--temperature {args.temperature} must be 0 (greedy) or from 1e-4 to 1e4 — try 0.8")
    if args.top_k is not None and args.top_k < 1:
        raise UserError(f"--top_k {args.top_k} must be at least 1 — or leave it out to use all characters")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise UserError(f"--top_p {args.top_p} must be above 0 and at most 1 — try 0.9")
    if args.prompt is not None:
        refuse_stray_bytes(args.prompt)
    if args.prompt is not None and args.prompt_file is not None:
        raise UserError("--prompt and --prompt_file both given — use one of them")
    if args.top_p is not None and args.no_cache:
        raise UserError("--top_p is the KV-cache path's (engine/sampling.py), and --no_cache turns that path off — "
                        "give one of them")
    if args.cuda_graph and args.no_cache:
        raise UserError("--cuda_graph replays the KV-cache path's step, and --no_cache turns that path off — "
                        "give one of them")
    device = pick_device(args.device)  # (sample.py picks it again: a check here, not the choice)
    if args.cuda_graph and device.type != "cuda":
        raise UserError(f"--cuda_graph needs a CUDA GPU, and this runs on {device.type} — leave the flag out")


def check_the_cache(gap):
    """The KV cache (engine/) computes only each new character's keys, values and MLP, and passes attention a mask of
    its own; a change to model.py that mixes positions elsewhere (a token shift) or masks them its own way (a sliding
    window) would then sample other text than the model's, without a word. gap: engine/decode.py's cache_gap, on the
    CPU in float32 (before --dtype), where rounding makes it about 1e-6."""
    if not gap <= 1e-3:  # (nan too)
        raise UserError(f"the KV cache's logits differ from the model's own by {gap:.1%} of their size: model.py "
                        "computes something the cache does not follow (a token shift outside attention, a mask of "
                        "attention's own) — sample with --no_cache, or make engine/ follow the change")


def note_a_greedy_start(args, prompt, start, chars):
    """--temperature 0 from the one character a sample starts from when given no prompt (start: a newline): the
    likeliest next one can be the same again and again, as the CPU default's model writes newline after newline,
    a sample that looks empty. --help says so; few read it. Said after every error, as a note, on stderr."""
    if args.temperature == 0 and args.max_new_tokens > 0 and prompt == start:
        # an example the model can read: another text's vocabulary may lack ROMEO:'s letters
        example = "ROMEO:" if set("ROMEO:") <= set(chars) else next((c for c in chars if not c.isspace()), start)
        print(f"note: --temperature 0 takes the likeliest character every time, and after {start!r} alone that can "
              f"be {start!r} again and again, an empty-looking sample — give a --prompt, e.g. --prompt "
              f"{shlex.quote(example)}", file=sys.stderr)
