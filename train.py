"""Train the character-level GPT on data written by prepare.py.

    python train.py                                  # best device found, its default preset
    python train.py --device cuda                    # the GPU recipe, bf16 autocast, compiled
    python train.py --preset shakespeare-cpu --max_iters 3000 --dropout 0.1 --out_dir out/long
    python train.py --resume                         # carry on from out/latest.pt
    python train.py --preset bigram --out_dir out/bigram   # the baseline: a table of character pairs
    python train.py --trace_shapes                   # print each tensor's shape in one forward pass
    torchrun --standalone --nproc_per_node=4 train.py --device cuda --grad_accum 4   # 4 GPUs, DDP

DDP (DistributedDataParallel): one process per GPU, each with a copy of the model and its own batches; backward
averages their gradients, so every copy takes the same step.

Every field of TrainConfig (config.py) and GPTConfig (model.py) is a --flag (but vocab_size,
which comes from the data). A value comes from, in increasing priority: the dataclass default,
the preset (or the checkpoint's config when resuming), the command line.

Files in --out_dir: latest.pt (written at every evaluation after iteration 0 and, in a single process, on Ctrl-C,
for --resume), best.pt (the best validation loss so far, for sample.py), log.csv, and train.lock (one run at a time).

Read it top to bottom: the batch, the learning-rate schedule, one training step, evaluation,
then the run: setup() builds it and main() is the training loop (cfg, throughout: config.py's
TrainConfig). The bookkeeping around them (settings, checkpoints, the log, Ctrl-C, several
processes, the optimizers) is in machinery/.
"""

import math
import sys
import time
from contextlib import nullcontext

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from config import DECAYS
from machinery.bookkeeping import (Run, StopOnCtrlC, append_log, describe, extension_note, finish, nan_error,
                                   note_a_slowdown, open_log, print_settings, read_steps, save_on_ctrl_c,
                                   tokens_per_iter)
from machinery.checkpoint import make_checkpoint, restore_checkpoint, save_checkpoint
from machinery.cli import pick_device, run_cli
from machinery.ddp import (all_reduce_on_device, init_distributed, launched_processes, nan_anywhere, share_batch,
                           wrap_ddp)
from machinery.optim import configure_groups, make_optimizer, set_lr, step_unless
from machinery.settings import load_settings, mark_step, parse_train_args, precision, split_config
from model import build_model


# ----------------------------------------------------------------------------
# Data


def get_batch(data, batch_size, block_size, generator, device, rank=0, world_size=1):
    """Random windows of the text: y is x shifted left by one, the next character at each step.
    data: one split's ids, the .bin file prepare.py wrote, mapped from disk as a numpy array (np.memmap, by
    machinery/data.py's load_data; uint16, or uint32 for a vocabulary past 65,536 characters).

    With several processes (DDP; rank: this one's number, 0 .. world_size - 1), each one draws the
    windows of all of them from the same generator and keeps row rank of that (world_size, B) draw:
    together they use exactly the batches that one process would draw in turn, and every generator
    stays in the same state.
    """
    # a window is block_size + 1 ids (x, and y one further); every process's starts, drawn alike in each
    starts = torch.randint(len(data) - block_size, (world_size, batch_size), generator=generator)  # (world_size, B)
    starts = starts[rank]  # (B,): this process's row (in one process, the only row)
    offsets = starts[:, None] + torch.arange(block_size + 1)  # (B, T+1): indices of each window
    # int64, the type cross_entropy's targets must have (the bins hold uint16 or uint32)
    windows = torch.from_numpy(data[offsets.numpy()].astype(np.int64))  # (B, T+1), one gather
    x, y = windows[:, :-1].contiguous(), windows[:, 1:].contiguous()  # (B, T) each
    if device.type == "cuda":  # page-locked memory lets the copy overlap with compute
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)


# ----------------------------------------------------------------------------
# The learning-rate schedule, one training step, and evaluation


def lr_at(it, cfg, extended_at=None):
    """Linear warmup to cfg.lr, then a decay (a cosine, unless --decay says otherwise) that reaches
    cfg.min_lr at step max_iters, as nanoGPT's does (the last step taken, max_iters - 1, is a hair above).
    Why not the video's constant lr: the first steps' gradients come from random weights, and AdamW's running
    averages of them are still noisy, so small steps are safer there; at the end, small steps settle into a
    minimum that large ones would bounce around. extended_at (skip it on a first read) is None, except in a run
    whose max_iters (or warmup_iters) a --resume changed at its warmup's end or later: then it is (the step it began
    at, decay_left there), and the decay goes on from there to min_lr at the new max_iters (extend_schedule)."""
    if it < cfg.warmup_iters and extended_at is None:
        return cfg.lr * (it + 1) / (cfg.warmup_iters + 1)
    return cfg.min_lr + decay_left(it, cfg, extended_at) * (cfg.lr - cfg.min_lr)


def decay_left(it, cfg, extended_at=None):
    """Where the decay is at step it: 1 at its start (lr), 0 at its end (min_lr). Its shape is
    config.DECAYS[cfg.decay]: by default nanoGPT's cosine, 0.5 * (1 + cos(pi * progress)).
    extended_at: only for a run resumed with a new max_iters or warmup_iters (see extend_schedule)."""
    start, height = extended_at or (cfg.warmup_iters, 1.0)  # as a run starts: from the warmup's end, at full height
    progress = (it - start) / max(1, cfg.max_iters - start)  # 0 -> 1 (below 0 inside the warmup)
    return height * DECAYS[cfg.decay](min(max(progress, 0.0), 1.0))


def train_step(model, optimizer, scaler, get_micro_batch, lr, cfg, autocast, micro_steps, no_sync=nullcontext,
               device=None, check_finite=True):
    """One optimizer step: set the lr; forward and backward on each of micro_steps micro-batches, their gradients
    averaged; clip; step; zero the gradients. -> (this process's mean loss, whether every process's was finite), as
    tensors on the device, so that the host need not wait for the device to read them.

    get_micro_batch() -> (x, y), the next micro-batch. micro_steps: cfg.grad_accum in one process; under DDP, this
    process's share of them, or all of them with fewer rows each (machinery/ddp.py's share_batch). autocast: the
    context the forward runs in (bf16 or fp16 on a GPU; in float32 it does nothing: setup says how it is chosen).

    The rest is safety: a nan or inf loss (in any process) means the gradients are garbage, so the step is
    skipped and the weights never see them. scaler (GradScaler) does nothing unless the dtype is float16: it
    scales the loss up so that small gradients do not round to 0, and may skip a step whose gradients overflowed
    (it adjusts its scale and goes on). check_finite=False is for `python -m bench.speed train --nan_check false`
    only."""
    set_lr(optimizer, lr)  # into every group: AdamW's as it is, Muon's scaled by muon_lr / lr (machinery/optim.py)
    total = torch.zeros((), device=device)
    for micro in range(micro_steps):
        x, y = get_micro_batch()  # (B, T) each: ids, and the ids one position on
        # DDP averages the gradients over the processes during backward; that is only
        # needed once, on the last micro-batch: before it, no_sync just accumulates
        with no_sync() if micro < micro_steps - 1 else nullcontext():
            mark_step(cfg)  # (for CUDA graphs only: machinery/settings.py)
            with autocast:
                _, loss = model(x, y)
            # dividing by micro_steps makes the summed gradients an average over the micro-batches
            scaler.scale(loss / micro_steps).backward()
        total = total + loss.detach()  # a new tensor: a CUDA graph's own output is overwritten next replay
    found_inf = nan_anywhere(total, check_finite)  # 1 if a loss in any process was nan or inf: no process steps
    # fp16 and a nan: skip the step here, or GradScaler would take the nan for an overflow and halve its scale
    # (this .item() makes the host wait for the device at every step: a cost of fp16 alone, a GPU without bf16)
    if scaler.is_enabled() and found_inf.item():
        optimizer.zero_grad(set_to_none=False)
        return total / micro_steps, found_inf == 0
    if cfg.grad_clip > 0:  # cap the gradient's length: one unlucky batch cannot throw the weights far
        scaler.unscale_(optimizer)  # clip the true gradients, not the loss-scaled ones
        params = [p for group in optimizer.param_groups for p in group["params"]]  # the weights it updates
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
    if scaler.is_enabled():
        scaler.step(optimizer)  # skips the step if fp16 gradients overflowed
        scaler.update()
    else:  # the update: optimizer.step(), unless a loss was nan or inf (machinery/optim.py: without waiting)
        step_unless(optimizer, found_inf)
    # zeroed in place, never None: a new .grad would live in a CUDA graph's memory (machinery/optim.py)
    optimizer.zero_grad(set_to_none=False)
    return total / micro_steps, found_inf == 0


@torch.no_grad()
def estimate_loss(model, splits, cfg, block_size, device, autocast, rank=0, world_size=1):
    """Mean loss over eval_iters random batches of windows per split, dropout off.

    The windows come from their own generator, seeded the same every time: every
    evaluation scores the same text, so two evaluations compare like with like,
    and the training batches do not depend on how often we evaluate. (The training batches
    use the same seed, so the train split's windows are those of the run's first steps: text
    the model has trained on, as a long run has all of train.bin, many times over.) Several
    processes share the eval_iters batches out and add up their results, so all
    of them get the number that one process would.
    """
    model.eval()
    out = {}
    for split, data in splits.items():
        generator = torch.Generator().manual_seed(cfg.seed)
        # summed on the device, so the host waits once per split, not once per batch (MPS has no float64)
        total = torch.zeros((), dtype=torch.float32 if device.type == "mps" else torch.float64, device=device)
        # a bar only for a slow evaluation (5 s on): a GPU preset's first one on a laptop takes many minutes
        rounds = tqdm(range(0, cfg.eval_iters, world_size), desc=f"evaluating {split}", leave=False, delay=5,
                      disable=rank != 0, mininterval=0.1 if sys.stderr.isatty() else 30)
        for round_start in rounds:  # one batch per process per round
            # drawn even when this process sits the round out, so that the generators stay in step
            x, y = get_batch(data, cfg.batch_size, block_size, generator, device, rank, world_size)
            if round_start + rank < cfg.eval_iters:
                mark_step(cfg)
                with autocast:
                    _, loss = model(x, y)
                total += loss
        out[split] = all_reduce_on_device(total).item() / cfg.eval_iters  # the processes ran eval_iters in all
    model.train()
    return out


# ----------------------------------------------------------------------------
# The run: setup() makes it, main() trains it


def setup(preset, resume, overrides, new_run=True, training=True):
    """Everything a run needs before its first step: its settings and data, the device, the
    model, the optimizer and, when resuming, the checkpoint's state (bench/ uses it too).
    new_run: refuse an out_dir that holds a run; training: refuse a resume with nothing left
    to train. -> Run"""
    # cfg: config.py's TrainConfig; mcfg: model.py's GPTConfig; splits: {"train", "val"} -> data for get_batch
    # (machinery/settings.py reads the flags and the checkpoint; machinery/data.py, the bins)
    cfg, mcfg, vocab, splits, ckpt, summary = load_settings(preset, resume, overrides, new_run, training)
    # rows: this process's sequences per micro-batch; micro_steps: its micro-batches per optimizer step.
    # Worked out before the processes meet, so that a refusal is the first thing a torchrun user sees
    micro_steps, rows = share_batch(cfg.batch_size, cfg.grad_accum, launched_processes())
    rank, world_size, device = init_distributed(pick_device(cfg.device))  # without torchrun: (0, 1, the device)
    if rank == 0:
        print_settings(summary, cfg, mcfg, overrides, resuming=ckpt is not None)
    # autocast: the forward in bf16 or fp16 (a GPU's default: bf16, or fp16 where it lacks bf16), the loss back in
    # float32 (lm_loss in model.py); in float32, the CPU default, it does nothing
    dtype, autocast, use_compile = precision(cfg, device)
    torch.manual_seed(cfg.seed + rank)  # dropout differs per process; DDP copies process 0's weights
    raw_model = build_model(mcfg).to(device)
    # fp16 has a narrow range: scale the loss up so small gradients do not round to zero
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    # AdamW, as in the video (weight decay on the 2-D weights only is nanoGPT's). --optimizer muon (the CPU
    # default's; not in the video): the blocks' matrices take momentum steps, each first made orthogonal (rescaled
    # to move the matrix about equally far in every direction it points), which gave a lower loss in the same steps
    # (docs/speed.md); the rest (the embeddings, the LayerNorms' gains, any biases, an untied head) stays on AdamW.
    # At --muon_lr; the progress bar's lr is AdamW's (machinery/optim.py)
    optimizer = make_optimizer(raw_model, cfg, device)
    # Run (machinery/bookkeeping.py): one run's state, these and what the loop counts (iter, best_val, last_saved).
    # model is what the loop calls: raw_model here, wrapped by DDP and torch.compile below; checkpoints save raw_model
    run = Run(cfg, mcfg, vocab, splits, device, rank, world_size, micro_steps, rows, dtype, autocast, use_compile,
              raw_model=raw_model, model=raw_model, no_sync=nullcontext, optimizer=optimizer, scaler=scaler,
              data_generator=torch.Generator().manual_seed(cfg.seed))  # the same in every process (get_batch)
    if not training:  # --trace_shapes: the model as built is all it needs
        return run
    if ckpt is not None:
        for note in restore_checkpoint(run, ckpt):
            run.say(note)
        extend_schedule(run, split_config(ckpt["train_config"])[0])  # [0]: the TrainConfig it was saved with
        configure_groups(run.optimizer, cfg)  # weight decay, betas, Muon's lr: these flags may have changed
    if dist.is_initialized():  # averages the gradients over the processes during backward
        wrap_ddp(run)
    if use_compile:
        run.model = torch.compile(run.model, mode=cfg.compile_mode)
    return run


def extend_schedule(run, before):
    """A resume with a new max_iters (or warmup_iters) goes on down the decay from where the run was:
    run.extended_at becomes (this iteration, decay_left here). Restarting the schedule would throw the
    learning rate back up and undo what the run had learned, so the decay goes on from where it was, down
    to min_lr at the new last step. A finished run was at min_lr already, so its extension trains on at it."""
    changed = run.cfg.max_iters != before.max_iters or run.cfg.warmup_iters != before.warmup_iters
    # (at the end of either warmup or past it; inside both, the new warmup goes on)
    if changed and run.iter > 0 and run.iter >= min(run.cfg.warmup_iters, before.warmup_iters):
        run.extended_at = (run.iter, decay_left(run.iter, before, run.extended_at))
        lr, last = (lr_at(it, run.cfg, run.extended_at) for it in (run.iter, run.cfg.max_iters))
        run.say(extension_note(run, lr, last))  # where on the decay it goes on (machinery/bookkeeping.py)


def next_batch(run):
    """This process's share of the next training micro-batch."""
    return get_batch(run.splits["train"], run.rows, run.mcfg.block_size, run.data_generator, run.device,
                     run.rank, run.world_size)


def evaluate(run, lr, tokens_per_sec, stop):
    """Measure both splits, log them, and, after iteration 0, save latest.pt (and best.pt when val improved).
    A Ctrl-C ends any evaluation but the run's last at once (stop.cutting): it is owed, and --resume does it."""
    t0 = time.perf_counter()
    run.owed_evaluation = (lr, tokens_per_sec)  # until it is done: saved with a Ctrl-C's latest.pt
    losses = None
    with stop.cutting(allowed=run.iter < run.cfg.max_iters) as begin:  # (machinery/bookkeeping.py)
        if begin:
            losses = estimate_loss(run.model, run.splits, run.cfg, run.mcfg.block_size, run.device, run.autocast,
                                   run.rank, run.world_size)
    run.eval_seconds += time.perf_counter() - t0
    if losses is None:  # cut short by a Ctrl-C, or not begun after one: the loop saves latest.pt, and stops
        return
    run.owed_evaluation = None
    bad = [f"{split} loss {loss}" for split, loss in losses.items() if not math.isfinite(loss)]
    if bad:  # the weights have gone bad: never save them
        raise nan_error(run, f"the evaluation at iteration {run.iter} gave {' and '.join(bad)}")
    if run.rank == 0:
        tqdm.write(f"iter {run.iter}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
        append_log(run, losses, lr, tokens_per_sec)
        note_a_slowdown(run, tokens_per_sec)  # on a CPU, a program started beside the run: machinery/bookkeeping.py
    run.last_losses = losses
    if run.iter == 0:  # the untrained model: nothing worth saving
        return
    is_best = losses["val"] < run.best_val  # the same in every process: the losses were summed over all
    if is_best:
        run.best_val, run.losses_at_best = losses["val"], losses
    state = make_checkpoint(run)  # every process: it gathers their random states
    # best first: killed between the two, a resume redoes this evaluation and both agree (or, at the first one,
    # with no latest.pt yet, resumes from best.pt: machinery/checkpoint.py's latest_from_best)
    if run.rank == 0:
        if is_best:
            save_checkpoint(run.out_dir / "best.pt", state)
        save_checkpoint(run.out_dir / "latest.pt", state)
    run.last_saved = run.iter


def main(argv=None):
    t_start = time.perf_counter()
    preset, resume, trace, overrides = parse_train_args(argv, __doc__.split("\n\n")[0])
    run = setup(preset, resume, overrides, new_run=not (resume or trace), training=not trace)
    if trace:  # a lesson (lessons/inside.py): one training batch through the model, every shape printed
        from lessons.inside import print_run_shapes
        return print_run_shapes(run, get_batch)
    cfg = run.cfg
    describe(run)  # the start-up lines: the device, the model's size, the batch
    open_log(run)  # log.csv (on a resume, cut back to the checkpoint's step), and train.lock: one run per folder
    run.t_train = time.perf_counter()
    bar = tqdm(total=cfg.max_iters, initial=run.iter, desc="train", dynamic_ncols=True, disable=run.rank != 0,
               mininterval=0.1 if sys.stderr.isatty() else 30)  # a log file needs no 10 redraws a second
    # every step's loss is kept, and whether it was finite, for read_steps; loss.item() on each would make the host
    # wait for the device at every step, so they wait here, on the device, to be read at each log and evaluation
    pending = []  # (iteration, loss, whether it was finite)
    try:
        with StopOnCtrlC(run, enabled=run.world_size == 1) as stop:  # (torchrun's Ctrl-C stops every process)
            if run.owed_evaluation:  # a new run's, of the untrained model (about ln(vocab_size)); or one cut short
                evaluate(run, *run.owed_evaluation, stop)
                bar.unpause()  # the bar's clock starts with the first step, not the evaluation before it
                bar.refresh()
            t_log, iter_log = time.perf_counter(), run.iter
            while run.iter < cfg.max_iters:
                if stop.requested:  # Ctrl-C or SIGTERM: save latest.pt, say how to go on (machinery/bookkeeping.py)
                    return save_on_ctrl_c(run, pending, bar, stop.signum)  # -> 130 (143 after a SIGTERM)

                # one step: the learning rate of the schedule, then forward, backward and update
                lr = lr_at(run.iter, cfg, run.extended_at)
                loss, finite = train_step(run.model, run.optimizer, run.scaler, lambda: next_batch(run), lr, cfg,
                                          run.autocast, run.micro_steps, run.no_sync, run.device)
                pending.append((run.iter, loss, finite))
                run.iter += 1
                bar.update(1)

                # once in a while: read the losses (on CUDA in bf16 or float32, the loop's one wait for the device;
                # read_steps also warns of each step skipped for a nan or inf loss, and stops the run when more
                # than --max_nan_skips come in a row), show them and the speed
                last = run.iter == cfg.max_iters
                if run.iter % cfg.log_interval == 0 or run.iter % cfg.eval_interval == 0 or last:
                    losses = read_steps(run, pending)
                    tokens_per_sec = (run.iter - iter_log) * tokens_per_iter(run) / (time.perf_counter() - t_log)
                    bar.set_postfix(loss=f"{losses[-1]:.4f}", lr=f"{lr:.2e}", tok_s=f"{tokens_per_sec:,.0f}",
                                    refresh=False)
                    # less often: evaluate, and save the checkpoints
                    if run.iter % cfg.eval_interval == 0 or last:
                        evaluate(run, lr, tokens_per_sec, stop)
                    t_log, iter_log = time.perf_counter(), run.iter
    finally:  # however the loop ends: an error's line must not land on the bar's
        bar.close()
    # the best val loss (in nats, as cross-entropy's natural log gives it, and in bits), the time, the checkpoints
    finish(run, time.perf_counter() - t_start)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))  # a UserError: one line, `error: ...`, and exit code 2 (machinery/cli.py)
