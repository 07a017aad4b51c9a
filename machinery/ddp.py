"""Several processes: torchrun + DistributedDataParallel.

torchrun starts one process per GPU and sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and
MASTER_PORT; each process trains on its share of every step's batch, and DDP averages their
gradients during backward (docs/multi-gpu.md).
"""

import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from machinery.cli import UserError


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


def launched_processes():
    """How many processes torchrun started (its WORLD_SIZE), read before they meet. 1 without
    torchrun (no RANK), whatever WORLD_SIZE a shell has left set."""
    value = os.environ.get("WORLD_SIZE")
    if "RANK" not in os.environ or value is None:  # (RANK alone: init_distributed says what is missing)
        return 1
    if not value.isdecimal() or int(value) < 1:
        raise UserError(f"WORLD_SIZE is {value!r}, not a number of processes — start it with torchrun "
                        f"(docs/multi-gpu.md), or unset RANK and WORLD_SIZE to train in one process")
    return int(value)


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


def nan_anywhere(total, check_finite=True):
    """1.0 if the loss total is nan or inf in any process, else 0.0, a tensor on the device (read without a wait
    for it). The MAX over the processes makes them skip a step together. check_finite=False: always 0.0."""
    found = (~torch.isfinite(total)).float() if check_finite else torch.zeros((), device=total.device)
    return all_reduce_on_device(found, dist.ReduceOp.MAX)


def wrap_ddp(run):
    """run.model in DistributedDataParallel, which averages the gradients over the processes during
    backward; run.no_sync is then its "no gradient exchange yet" context, for gradient accumulation."""
    device = run.device
    run.model = DistributedDataParallel(run.raw_model, device_ids=[device.index] if device.type == "cuda" else None)
    # no buffer broadcast before each forward: the buffers are fixed tables (rotary's angles), and it would
    # cost a collective per forward, one a process that skips an evaluation batch never joins. (Set here,
    # not as the constructor's flag, which torch 2.13 deprecates, while older torch lacks its successor.)
    run.model.broadcast_buffers = False
    run.no_sync = run.model.no_sync
