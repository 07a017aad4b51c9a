"""Train the character-level GPT on data written by prepare.py.

    python train.py                                  # best device found, its default preset
    python train.py --device cuda                    # the GPU recipe, bf16 autocast, compiled
    python train.py --preset shakespeare-cpu --max_iters 500 --dropout 0.1
    python train.py --resume                         # carry on from out/latest.pt
    python train.py --preset bigram --out_dir out/bigram   # the baseline: a table of character pairs
    python train.py --trace_shapes                   # print each tensor's shape in one forward pass
    torchrun --standalone --nproc_per_node=4 train.py --device cuda --grad_accum 4   # 4 GPUs, DDP

Every field of TrainConfig (config.py) and GPTConfig (model.py) is a --flag (but vocab_size,
which comes from the data). A value comes from, in increasing priority: the dataclass default,
the preset (or the checkpoint's config when resuming), the command line.

Files in --out_dir: latest.pt (written at every evaluation after iteration 0 and on Ctrl-C, for
--resume), best.pt (the best validation loss so far, for sample.py) and log.csv.

Under torchrun, each process trains on its share of every step's batch through
DistributedDataParallel; only process 0 writes files and prints.

Read it top to bottom: the command line, the precision, the batch, the learning-rate
schedule, one training step, evaluation, several processes, the log and Ctrl-C, and then
the run itself: setup() builds it and main() is the training loop. The settings and presets
are in config.py, the optimizers in optim.py, the checkpoint format in checkpoint.py, the
command-line plumbing in cli.py.
"""

import math
import os
import shlex
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from checkpoint import log_rows, make_checkpoint, remove_stale_temp_files, restore_checkpoint, save_checkpoint
from cli import ArgumentParser, UserError, add_flags, pick_device, run_cli, write_atomically
from config import PRESETS, TrainConfig, build_config, check_config, preset_shown, split_config
from model import GPTConfig, build_model, trace_shapes
from optim import configure_groups, make_optimizer, set_lr, step_unless
from prepare import load_data


LOG_HEADER = "iter,train_loss,val_loss,lr,tokens_per_sec,elapsed_s"


# ----------------------------------------------------------------------------
# The command line: --preset, --resume, --trace_shapes, and a flag for every config field


def parse_args(argv):
    """Return (preset name or None, resume flag, trace flag, {field: value} for the flags given)."""
    shown, named = preset_shown(argv)
    parser = ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=f"Presets: {', '.join(PRESETS)}. The defaults above are those of preset {shown}"
               + ("" if named else ", which a run without --preset gets on this machine "
                  "(shakespeare on CUDA, shakespeare-cpu elsewhere)")
               + "; `--preset NAME --help` shows another's. With --resume, the run's own values are the defaults.")
    parser.add_argument("--preset", choices=PRESETS, help="a named recipe (default: shakespeare "
                        "on CUDA, shakespeare-cpu elsewhere); flags given after it override it")
    parser.add_argument("--resume", action="store_true", help="continue the run saved in out_dir/latest.pt")
    parser.add_argument("--trace_shapes", action="store_true",
                        help="run one batch through the model, print every tensor's shape, and stop (no training)")
    add_flags(parser, TrainConfig, preset=shown, preset_values=PRESETS[shown])
    # (no --vocab_size: the vocabulary comes from the data)
    add_flags(parser, GPTConfig, skip={"vocab_size"}, preset=shown, preset_values=PRESETS[shown])
    args = vars(parser.parse_args(argv))
    preset, resume, trace = args.pop("preset"), args.pop("resume"), args.pop("trace_shapes")
    return preset, resume, trace, args


# ----------------------------------------------------------------------------
# Precision


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
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name not in dtypes:
        raise UserError(f"--dtype {name!r} is unknown — use auto, float32, bfloat16 or float16")
    if dtypes[name] == torch.bfloat16 and device.type == "cuda" and not native_bf16:
        raise UserError("this GPU has no native bfloat16 (it would be emulated, slowly) — use --dtype float16")
    return dtypes[name]


def precision(cfg, device):
    """-> (dtype, the autocast context for the forward pass, whether to compile)."""
    dtype = pick_dtype(cfg.dtype, device)
    if dtype == torch.float16 and cfg.optimizer == "muon":
        raise UserError("--optimizer muon does not work with float16's loss scaling — use --dtype bfloat16")
    if device.type == "cuda":  # TF32: float32 matmuls on tensor cores, about 10 mantissa bits
        torch.set_float32_matmul_precision("high")  # (only on CUDA: it also loosens oneDNN's CPU matmuls)
    autocast = nullcontext() if dtype == torch.float32 else torch.autocast(device.type, dtype=dtype)
    return dtype, autocast, cfg.compile if cfg.compile is not None else device.type == "cuda"


# ----------------------------------------------------------------------------
# Data


def get_batch(data, batch_size, block_size, generator, device, rank=0, world_size=1):
    """Random windows of the text: y is x shifted left by one, the next character at each step.

    With several processes, each one draws the windows of all of them from the same
    generator and keeps its own row: together they use exactly the batches that one
    process would draw in turn, and every generator stays in the same state.
    """
    starts = torch.randint(len(data) - block_size, (world_size, batch_size), generator=generator)[rank]  # (B,)
    offsets = starts[:, None] + torch.arange(block_size + 1)  # (B, T+1): indices of each window
    windows = torch.from_numpy(data[offsets.numpy()].astype(np.int64))  # (B, T+1), one gather
    x, y = windows[:, :-1].contiguous(), windows[:, 1:].contiguous()  # (B, T) each
    if device.type == "cuda":  # page-locked memory lets the copy overlap with compute
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)


# ----------------------------------------------------------------------------
# The learning-rate schedule, one training step, and evaluation


def lr_at(it, cfg, extended_at=None):
    """Linear warmup to cfg.lr, then a cosine decay to cfg.min_lr at the last step."""
    if it < cfg.warmup_iters and extended_at is None:
        return cfg.lr * (it + 1) / (cfg.warmup_iters + 1)
    return cfg.min_lr + decay_left(it, cfg, extended_at) * (cfg.lr - cfg.min_lr)


def decay_left(it, cfg, extended_at=None):
    """Where the cosine decay is at step it: 1 at its start (lr), 0 at its end (min_lr).

    extended_at (iteration, decay_left there): the run was resumed at that iteration with
    a new max_iters. Restarting the schedule would throw the learning rate back up and undo
    what the run had learned, so the decay goes on from where it was, down to 0 at the new
    last step. A finished run was at 0 already, so its extension trains on at min_lr."""
    start, height = extended_at or (cfg.warmup_iters, 1.0)
    progress = (it - start) / max(1, cfg.max_iters - start)  # 0 -> 1
    return height * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def uses_cuda_graphs(cfg):
    """Whether torch.compile records CUDA graphs: those modes replay each step's kernels from one launch."""
    return cfg.compile_mode in ("reduce-overhead", "max-autotune")


def train_step(model, optimizer, scaler, next_batch, lr, cfg, autocast, micro_steps, no_sync=nullcontext,
               device=None, check_finite=True):
    """One optimizer step over micro_steps micro-batches (cfg.grad_accum, shared out among
    the DDP processes) -> (the mean loss of the micro-batches, whether the step was taken),
    both as tensors on the device, so that the host need not wait for the device to get them.

    A nan or inf loss (in any process) means the gradients are garbage: the step is
    skipped, so the weights never see them. On a GPU the skip is decided on the device
    (step_unless); check_finite=False, for `bench.py train --nan_check false` only,
    measures what the check costs."""
    set_lr(optimizer, lr)
    total = torch.zeros((), device=device)
    for micro in range(micro_steps):
        x, y = next_batch()
        # DDP averages the gradients over the processes during backward; that is only
        # needed once, on the last micro-batch: before it, no_sync just accumulates
        with no_sync() if micro < micro_steps - 1 else nullcontext():
            if uses_cuda_graphs(cfg):  # a new step: the graphs may reuse the last step's output memory
                torch.compiler.cudagraph_mark_step_begin()
            with autocast:
                _, loss = model(x, y)
            # dividing by micro_steps makes the summed gradients an average over the micro-batches
            scaler.scale(loss / micro_steps).backward()
        total = total + loss.detach()  # a new tensor: a CUDA graph's own output is overwritten next replay
    found_inf = (~torch.isfinite(total)).float() if check_finite else torch.zeros((), device=device)
    # any process's nan skips the step in all of them; the max, as fused AdamW skips only on exactly 1
    found_inf = all_reduce_on_device(found_inf, dist.ReduceOp.MAX)
    if scaler.is_enabled() and found_inf.item():  # fp16: GradScaler's step waits for the device anyway
        optimizer.zero_grad(set_to_none=False)
        return total / micro_steps, found_inf == 0
    if cfg.grad_clip > 0:
        scaler.unscale_(optimizer)  # clip the true gradients, not the loss-scaled ones
        params = [p for group in optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
    if scaler.is_enabled():
        scaler.step(optimizer)  # skips the step if fp16 gradients overflowed
        scaler.update()
    else:
        step_unless(optimizer, found_inf)
    optimizer.zero_grad(set_to_none=False)  # zeroed in place: see optim.keep_grads_outside_graphs
    return total / micro_steps, found_inf == 0


@torch.no_grad()
def estimate_loss(model, splits, cfg, block_size, device, autocast, rank=0, world_size=1):
    """Mean loss over eval_iters random batches of windows per split, dropout off.

    The windows come from their own generator, seeded the same every time: every
    evaluation scores the same text, so two evaluations compare like with like,
    and the training batches do not depend on how often we evaluate. Several
    processes share the eval_iters batches out and add up their results, so all
    of them get the number that one process would.
    """
    model.eval()
    out = {}
    for split, data in splits.items():
        generator = torch.Generator().manual_seed(cfg.seed)
        # summed on the device, so the host waits once per split, not once per batch (MPS has no float64)
        total = torch.zeros((), dtype=torch.float32 if device.type == "mps" else torch.float64, device=device)
        for first in range(0, cfg.eval_iters, world_size):  # one batch per process per round
            x, y = get_batch(data, cfg.batch_size, block_size, generator, device, rank, world_size)
            if first + rank < cfg.eval_iters:
                if uses_cuda_graphs(cfg):
                    torch.compiler.cudagraph_mark_step_begin()
                with autocast:
                    _, loss = model(x, y)
                total += loss
        out[split] = all_reduce_on_device(total).item() / cfg.eval_iters  # the processes ran eval_iters in all
    model.train()
    return out


# ----------------------------------------------------------------------------
# Several processes: torchrun + DistributedDataParallel


def init_distributed(device):
    """Under torchrun (which sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT), join
    the other processes: NCCL between GPUs, gloo between CPU processes. -> (rank, world_size, device)"""
    if "RANK" not in os.environ:
        return 0, 1, device
    torchrun_sets = ("LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    if missing := [name for name in torchrun_sets if name not in os.environ]:  # RANK left over from elsewhere
        raise UserError(f"RANK is set, but not {', '.join(missing)}: this is not a torchrun launch — start it "
                        f"with torchrun (docs/multi-gpu.md), or unset RANK to train in one process")
    if device.type == "mps":
        raise UserError("torchrun with --device mps is not supported — use --device cuda or cpu")
    if device.type == "cuda":  # one GPU per process on each machine
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    # device_id: NCCL knows this process's GPU from the start (else its barrier guesses, and warns)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                            device_id=device if device.type == "cuda" else None)
    return dist.get_rank(), dist.get_world_size(), device


def share_batch(batch_size, grad_accum, world_size):
    """Share out each step's grad_accum micro-batches of batch_size rows among the processes,
    so that the global batch is what the config says, however many processes there are.
    -> (micro-batches per step, rows per micro-batch) for each process."""
    if grad_accum % world_size == 0:  # whole micro-batches each: 8 over 2 processes is 4 each
        return grad_accum // world_size, batch_size
    if batch_size % world_size == 0:  # each micro-batch's rows: 64 over 2 processes is 32 each
        return grad_accum, batch_size // world_size
    raise UserError(f"--grad_accum {grad_accum} micro-batches of --batch_size {batch_size} rows cannot "
                    f"be shared evenly among {world_size} processes — make --grad_accum or --batch_size a "
                    f"multiple of {world_size}")


def all_reduce_on_device(t, op=dist.ReduceOp.SUM):
    """A tensor -> its sum (or max) over all processes, staying on the device (unchanged in a
    single process)."""
    if dist.is_initialized():
        dist.all_reduce(t, op=op)  # in place, and every process receives the result
    return t


# ----------------------------------------------------------------------------
# The log and Ctrl-C


def trim_log(path, last_iter):
    """Drop log rows past the checkpoint we resume from: that work is being redone. A last row
    cut short goes too (checkpoint.log_rows); any other line that is not a row is refused."""
    header = LOG_HEADER.split(",")
    _, rows = log_rows(path)
    for number, row in rows:
        if not (len(row) == len(header) and row[0].isdigit()):
            raise UserError(f"{path} line {number} is not a row train.py wrote ({','.join(row)[:40]!r}) — "
                            f"fix or delete that line, then resume")
    kept = [header] + [row for _, row in rows if int(row[0]) <= last_iter]
    write_atomically(path, lambda f: f.write("".join(",".join(r) + "\n" for r in kept).encode()))


class StopOnCtrlC:
    """The first Ctrl-C asks the loop to stop after the current step; a second one forces it.

    Not under torchrun (enabled=False): the processes could stop at different steps
    and wait for each other forever, so there Ctrl-C stops them all at once, and
    --resume goes on from the last evaluation.
    """

    def __init__(self, enabled=True):
        self.enabled = enabled
        self.requested = False

    def __enter__(self):
        if self.enabled:
            self.previous = signal.signal(signal.SIGINT, self.handle)
        return self

    def handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self.previous)
        tqdm.write("stopping after this step (Ctrl-C again to stop at once)...")

    def __exit__(self, *exc):
        if self.enabled:
            signal.signal(signal.SIGINT, self.previous)


# ----------------------------------------------------------------------------
# The run: setup() makes it, main() trains it


@dataclass
class Run:
    """Everything a training run holds. setup() builds it, main() moves it forward step by
    step, and a checkpoint saves and restores it (checkpoint.make_checkpoint, restore_checkpoint)."""
    cfg: TrainConfig
    mcfg: GPTConfig
    vocab: dict
    splits: dict            # {"train": ids, "val": ids}, memory-mapped
    device: torch.device
    rank: int               # this process, of world_size (1 without torchrun)
    world_size: int
    micro_steps: int        # this process's micro-batches per step (share_batch)
    rows: int               # and the rows of each
    dtype: torch.dtype
    autocast: object        # the mixed-precision context for forward passes
    use_compile: bool
    raw_model: torch.nn.Module  # the model itself: what checkpoints save
    model: object               # what trains: raw_model, wrapped in DDP and/or compiled
    no_sync: object             # DDP's "no gradient exchange yet" context (nullcontext without DDP)
    optimizer: object
    scaler: torch.amp.GradScaler
    data_generator: torch.Generator  # draws the training batches; the same in every process
    iter: int = 0                    # steps done
    best_val: float = float("inf")
    last_losses: Optional[dict] = None   # this command's last evaluation, and
    losses_at_best: Optional[dict] = None  # its best one: {"train": ..., "val": ...}
    elapsed_before: float = 0.0      # training time of the runs this one resumes
    extended_at: Optional[tuple] = None  # see decay_left
    last_saved: Optional[int] = None     # the iteration of latest.pt, once there is one
    bad_steps: int = 0                   # nan/inf steps skipped in a row
    t_train: float = 0.0                 # when this process started training
    eval_seconds: float = 0.0

    @property
    def out_dir(self):
        return Path(self.cfg.out_dir)

    def say(self, *args, **kwargs):
        if self.rank == 0:  # only process 0 talks and writes
            print(*args, **kwargs)


def refuse_to_overwrite(out_dir):
    """A new run would write over the checkpoints of the run already in out_dir."""
    for name in ("latest.pt", "best.pt"):
        if (out_dir / name).exists():
            raise UserError(f"{out_dir} already holds a run ({name}) — add --resume to continue it, "
                            f"or choose a new --out_dir")


BIGRAM_FIELDS = ("model", "vocab_size", "block_size")  # the model settings a bigram uses (block_size: its batches)


def print_settings(summary, cfg, mcfg, overrides, resuming):
    """Where every value came from, and every value in effect (for a bigram, only the few it uses)."""
    print(summary)
    all_model = asdict(mcfg)
    model_values = {k: all_model[k] for k in BIGRAM_FIELDS} if mcfg.model == "bigram" else all_model
    for name, values in (("training", asdict(cfg)), ("model", model_values)):
        print(f"{name} settings: " + " ".join(f"{k}={v}" for k, v in values.items()))
    ignored = [f"--{k}" for k in overrides if k in all_model and k not in model_values]
    if ignored and not resuming:  # (a resume says what each flag changes)
        print(f"note: a bigram is a table, with no layers, heads or width: {' '.join(ignored)} "
              f"change{'s' if len(ignored) == 1 else ''} nothing")


def setup(preset, resume, overrides, new_run=True, training=True):
    """Config, data, device, model, optimizer and, when resuming, the checkpoint's state:
    everything a run needs before its first step (bench.py uses it too). new_run: refuse an
    out_dir that holds a run; training: refuse a resume with nothing left to train. -> Run"""
    values, ckpt, summary = build_config(preset, resume, overrides)
    vocab, splits = load_data(values.get("data_dir", TrainConfig.data_dir))
    if ckpt is not None and ckpt["vocab"]["chars"] != vocab["chars"]:
        raise UserError(f"{values['data_dir']} has a different vocabulary from the checkpoint — "
                        f"resume with the --data_dir it was trained on")
    if ckpt is not None and ckpt["vocab"].get("source_sha256") != vocab.get("source_sha256"):
        raise UserError(f"{values['data_dir']} was prepared from another text than the checkpoint's "
                        f"({ckpt['vocab'].get('source')}) — resume with the --data_dir it was trained on")
    values["vocab_size"] = vocab["vocab_size"]
    cfg, mcfg = split_config(values)
    check_config(cfg, mcfg)
    if ckpt is not None and training and cfg.max_iters <= ckpt["iter"]:
        raise UserError(f"the run in {cfg.out_dir} is at iteration {ckpt['iter']} and --max_iters is "
                        f"{cfg.max_iters}, so there is nothing to train — to train on, give a larger one, e.g. "
                        f"--max_iters {2 * ckpt['iter']} (the learning rate goes on from where the run was)")
    if len(splits["val"]) <= mcfg.block_size:
        raise UserError(f"{Path(cfg.data_dir) / 'val.bin'} has {len(splits['val']):,} tokens, not more than "
                        f"block_size {mcfg.block_size} — use a longer text or a smaller --block_size")
    if new_run:  # last, so that a mistake in the flags is told first, not after a change of --out_dir
        refuse_to_overwrite(Path(cfg.out_dir))

    # before the processes meet, so that a refusal is the first thing a torchrun user sees
    micro_steps, rows = share_batch(cfg.batch_size, cfg.grad_accum, int(os.environ.get("WORLD_SIZE", 1)))
    rank, world_size, device = init_distributed(pick_device(cfg.device))
    if rank == 0:
        print_settings(summary, cfg, mcfg, overrides, resuming=ckpt is not None)
    dtype, autocast, use_compile = precision(cfg, device)
    torch.manual_seed(cfg.seed + rank)  # dropout differs per process; DDP copies process 0's weights
    raw_model = build_model(mcfg).to(device)
    # fp16 has a narrow range: scale the loss up so small gradients do not round to zero
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    run = Run(cfg, mcfg, vocab, splits, device, rank, world_size, micro_steps, rows, dtype, autocast, use_compile,
              raw_model=raw_model, model=raw_model, no_sync=nullcontext,
              optimizer=make_optimizer(raw_model, cfg, device), scaler=scaler,
              data_generator=torch.Generator().manual_seed(cfg.seed))  # the same in every process (get_batch)
    if not training:  # --trace_shapes: the model as built is all it needs
        return run
    if ckpt is not None:
        for note in restore_checkpoint(run, ckpt):
            run.say(note)
        extend_schedule(run, TrainConfig(**ckpt["train_config"]))
        configure_groups(run.optimizer, cfg)  # these flags may have changed
    if dist.is_initialized():  # averages the gradients over the processes during backward
        run.model = DistributedDataParallel(raw_model, device_ids=[device.index] if device.type == "cuda" else None)
        # no buffer broadcast before each forward: the only buffers are rotary's fixed tables, and it would
        # cost a collective per forward, one a process that skips an evaluation batch never joins. (Set here,
        # not as the constructor's flag, which torch 2.13 deprecates, while older torch lacks its successor.)
        run.model.broadcast_buffers = False
        run.no_sync = run.model.no_sync
    if use_compile:
        run.model = torch.compile(run.model, mode=cfg.compile_mode)
    return run


def extend_schedule(run, before):
    """A resume with a new max_iters goes on down the decay from where the run was (decay_left)."""
    if run.cfg.max_iters != before.max_iters and run.iter > run.cfg.warmup_iters:
        run.extended_at = (run.iter, decay_left(run.iter, before, run.extended_at))
        run.say(f"note: the learning rate goes on from {lr_at(run.iter, run.cfg, run.extended_at):.2e}, where the "
                f"run " + (f"was, down to --min_lr at iteration {run.cfg.max_iters}" if run.extended_at[1]
                           else "ended: --min_lr"))


def describe(run):
    """The start-up lines: where it runs, the model's size, the batch."""
    cfg, mcfg = run.cfg, run.mcfg
    run.say(f"device: {run.device}, dtype: {str(run.dtype).removeprefix('torch.')}, compile: {run.use_compile}"
            + (f", DDP over {dist.get_backend()}: {run.world_size} process{'es' * (run.world_size > 1)} x "
               f"{run.micro_steps} micro-batch(es) of {run.rows} rows per step" if dist.is_initialized() else ""))
    n = run.raw_model.num_params()
    if mcfg.model == "bigram":
        run.say(f"model: bigram, a {mcfg.vocab_size} x {mcfg.vocab_size} table, {n:,} parameters")
    else:
        learned = "" if mcfg.position == "rotary" else (  # rotary positions are angles, not weights
            f" ({run.raw_model.num_params(non_embedding=True) / 1e6:.2f}M without position embeddings)")
        run.say(f"model: {n / 1e6:.2f}M parameters{learned}, {mcfg.n_layer} layer{'s' * (mcfg.n_layer != 1)}, "
                f"{mcfg.n_head} head{'s' * (mcfg.n_head != 1)}, "
                f"{mcfg.n_embd} wide, block {mcfg.block_size}, vocab {mcfg.vocab_size}")
    run.say(f"tokens per iteration: {cfg.batch_size} x {mcfg.block_size} x {cfg.grad_accum} = "
            f"{tokens_per_iter(run):,}; iterations {run.iter} -> {cfg.max_iters}")
    if cfg.max_iters <= cfg.warmup_iters and run.extended_at is None:  # a short try of a preset, usually
        run.say(f"note: --max_iters {cfg.max_iters} ends inside the {cfg.warmup_iters}-step warmup, so the "
                f"learning rate never reaches --lr {cfg.lr:g} — add e.g. --warmup_iters {cfg.max_iters // 10}")


def tokens_per_iter(run):
    return run.cfg.batch_size * run.mcfg.block_size * run.cfg.grad_accum


def next_batch(run):
    """This process's share of the next training micro-batch."""
    return get_batch(run.splits["train"], run.rows, run.mcfg.block_size, run.data_generator, run.device,
                     run.rank, run.world_size)


def open_log(run):
    """Make out_dir and log.csv (trimmed to the checkpoint on resume) before training: fail now,
    not after the first hour."""
    log_path = run.out_dir / "log.csv"
    if run.rank != 0:
        return
    try:
        run.out_dir.mkdir(parents=True, exist_ok=True)
        if run.iter > 0 and log_path.exists():
            trim_log(log_path, run.iter)
        else:
            write_atomically(log_path, lambda f: f.write(f"{LOG_HEADER}\n".encode()))
    except OSError as e:
        raise UserError(f"cannot write in {run.out_dir} ({e.strerror}) — choose another --out_dir") from None
    if removed := remove_stale_temp_files(run.out_dir):
        run.say(f"removed {removed} half-written temp file(s) in {run.out_dir}, left by a run that was killed "
                f"mid-save")


def read_steps(run, pending):
    """The pending steps' losses and flags, in one wait for the device (not one per step, which
    also keeps the timing honest). Warn of each skipped step; too many in a row stop the run.
    -> the losses"""
    if not pending:
        return []
    losses = torch.stack([loss for _, loss, _ in pending]).tolist()
    taken = torch.stack([ok for _, _, ok in pending]).tolist()
    for (i, _, _), loss, ok in zip(pending, losses, taken):
        run.bad_steps = 0 if ok else run.bad_steps + 1
        if run.bad_steps and run.rank == 0:  # skipped already (train_step): the weights never saw it
            tqdm.write(f"warning: the loss is {loss} at iteration {i}; the step was skipped "
                       f"({run.bad_steps} in a row, --max_nan_skips {run.cfg.max_nan_skips})")
        if run.bad_steps > run.cfg.max_nan_skips:
            raise nan_error(run, f"the loss was nan or inf for {run.bad_steps} steps in a row, up to iteration {i}")
    pending.clear()
    return losses


def nan_error(run, what):
    """The error that stops a run whose loss went nan or inf, naming the checkpoint to go back to."""
    if run.last_saved is None:
        return UserError(f"{what}; no checkpoint was saved yet — start again with a lower --lr "
                         f"(or --dtype bfloat16 on a GPU)")
    return UserError(f"{what}; the last good checkpoint is {run.out_dir / 'latest.pt'} (iteration "
                     f"{run.last_saved}) — resume from it with --resume and a lower --lr (or --dtype bfloat16 "
                     f"on a GPU)")


def evaluate(run, lr, tokens_per_sec):
    """Measure both splits, log them, and save latest.pt (and best.pt when val improved)."""
    t0 = time.perf_counter()
    losses = estimate_loss(run.model, run.splits, run.cfg, run.mcfg.block_size, run.device, run.autocast,
                           run.rank, run.world_size)
    run.eval_seconds += time.perf_counter() - t0
    bad = [f"{split} loss {loss}" for split, loss in losses.items() if not math.isfinite(loss)]
    if bad:  # the weights have gone bad: never save them
        raise nan_error(run, f"the evaluation at iteration {run.iter} gave {' and '.join(bad)}")
    if run.rank == 0:
        tqdm.write(f"iter {run.iter}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
        log_path = run.out_dir / "log.csv"
        try:
            with open(log_path, "a") as f:
                f.write(f"{run.iter},{losses['train']:.6f},{losses['val']:.6f},{lr:.6g},{tokens_per_sec:.1f},"
                        f"{run.elapsed_before + time.perf_counter() - run.t_train:.2f}\n")
        except OSError as e:
            raise UserError(f"cannot write {log_path} ({e.strerror}) — free some disk space or fix the "
                            f"permissions, then resume with --resume") from None
    run.last_losses = losses
    if run.iter == 0:  # the untrained model: nothing worth saving
        return
    is_best = losses["val"] < run.best_val  # the same in every process: the losses were summed over all
    if is_best:
        run.losses_at_best = losses
    run.best_val = min(run.best_val, losses["val"])
    state = make_checkpoint(run)  # every process: it gathers their random states
    if run.rank == 0:  # best first: killed between the two, a resume redoes this evaluation and both agree
        if is_best:
            save_checkpoint(run.out_dir / "best.pt", state)
        save_checkpoint(run.out_dir / "latest.pt", state)
    run.last_saved = run.iter


def overfitting_note(run):
    """A note if this command's last evaluation found the val loss clearly above its best one
    while the train loss went on falling. Within one command every evaluation scores the same
    windows, so the rise is the model's doing, not the luck of a draw."""
    best, last = run.losses_at_best, run.last_losses
    if best is None or last["val"] <= 1.02 * best["val"] or last["train"] >= best["train"]:
        return None
    return (f"note: the val loss ended at {last['val']:.4f}, {last['val'] / best['val'] - 1:.0%} above its best, "
            f"while the train loss went on falling: the model has begun to learn its training text by heart "
            f"(overfitting). best.pt keeps the best; for what helps, see docs/training.md")


def print_shapes(run):
    """--trace_shapes: one training batch through the model, every tensor's shape printed."""
    cfg, mcfg = run.cfg, run.mcfg
    x, y = get_batch(run.splits["train"], cfg.batch_size, mcfg.block_size, torch.Generator().manual_seed(cfg.seed),
                     run.device)
    print(f"B={cfg.batch_size} batch, T={mcfg.block_size} time, C={mcfg.n_embd} channels, "
          f"nh={mcfg.n_head} heads, hs={mcfg.n_embd // mcfg.n_head} head size, S=T keys, "
          f"V={mcfg.vocab_size} vocabulary")
    for line in trace_shapes(run.raw_model, x, y):
        print(line)
    return 0


def main(argv=None):
    t_start = time.perf_counter()
    preset, resume, trace, overrides = parse_args(argv)
    run = setup(preset, resume, overrides, new_run=not (resume or trace), training=not trace)
    if trace:
        return print_shapes(run)
    cfg = run.cfg
    describe(run)
    open_log(run)
    run.t_train = time.perf_counter()
    if run.iter == 0:
        evaluate(run, lr=0.0, tokens_per_sec=0.0)  # the untrained model: about ln(vocab_size)
    bar = tqdm(total=cfg.max_iters, initial=run.iter, desc="train", dynamic_ncols=True, disable=run.rank != 0,
               mininterval=0.1 if sys.stderr.isatty() else 30)  # a log file needs no 10 redraws a second
    t_log, iter_log = time.perf_counter(), run.iter
    pending = []  # (iteration, loss, whether the step was taken), still on the device: read_steps
    try:
        with StopOnCtrlC(enabled=run.world_size == 1) as stop:
            while run.iter < cfg.max_iters:
                if stop.requested:  # Ctrl-C: save where we are, and say how to go on
                    read_steps(run, pending)
                    save_checkpoint(run.out_dir / "latest.pt", make_checkpoint(run))
                    bar.close()
                    print(f"stopped at iteration {run.iter}; saved {run.out_dir / 'latest.pt'} — continue with: "
                          f"python train.py --resume --out_dir {shlex.quote(str(run.out_dir))}")
                    return 130

                # one step: the learning rate of the schedule, then forward, backward and update
                lr = lr_at(run.iter, cfg, run.extended_at)
                loss, taken = train_step(run.model, run.optimizer, run.scaler, lambda: next_batch(run), lr, cfg,
                                         run.autocast, run.micro_steps, run.no_sync, run.device)
                pending.append((run.iter, loss, taken))
                run.iter += 1
                bar.update(1)

                # once in a while: read the losses (the one wait for the device), show them and the speed
                last = run.iter == cfg.max_iters
                if run.iter % cfg.log_interval == 0 or run.iter % cfg.eval_interval == 0 or last:
                    losses = read_steps(run, pending)
                    tokens_per_sec = (run.iter - iter_log) * tokens_per_iter(run) / (time.perf_counter() - t_log)
                    bar.set_postfix(loss=f"{losses[-1]:.4f}", lr=f"{lr:.2e}", tok_s=f"{tokens_per_sec:,.0f}",
                                    refresh=False)
                    # less often: evaluate, and save the checkpoints
                    if run.iter % cfg.eval_interval == 0 or last:
                        evaluate(run, lr, tokens_per_sec)
                    t_log, iter_log = time.perf_counter(), run.iter
    finally:  # however the loop ends: an error's line must not land on the bar's
        bar.close()

    run.say(f"best val loss {run.best_val:.4f} nats per char = {run.best_val / math.log(2):.4f} bits per char")
    if note := overfitting_note(run):
        run.say(note)
    run.say(f"wall time {time.perf_counter() - t_start:.1f} s (evaluation {run.eval_seconds:.1f} s of it)")
    run.say(f"checkpoints: {run.out_dir / 'best.pt'} (best val, for sample.py), "
            f"{run.out_dir / 'latest.pt'} (for --resume)")
    if dist.is_initialized():  # leave together: process 0 may still be saving when the others finish,
        dist.barrier()         # and gloo can abort a process that tears down while a peer is busy
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
