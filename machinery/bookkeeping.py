"""A training run's bookkeeping: its state (Run), its start-up lines, log.csv, Ctrl-C and nan steps.

train.py's loop calls these; none of them is the lesson (the batch, the schedule, the step,
evaluation and the loop are train.py's own).
"""

import csv
import errno
import math
import os
import shlex
import shutil
import signal
import time
import weakref
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.distributed as dist
from tqdm import tqdm

from config import PRESETS, TrainConfig
from machinery.checkpoint import (BIGRAM_FIELDS, LOG_HEADER, best_is_the_last_state, copy_best_to_latest, holds_a_run,
                                  log_rows, make_checkpoint, remove_stale_temp_files, save_checkpoint,
                                  written_by_train_py)
from machinery.cli import UserError, dtype_name, refuse_a_run_folder_gone, write_atomically
from model import GPTConfig

try:
    import fcntl  # the kernel's file locks: claim_out_dir
except ImportError:  # Windows has none
    fcntl = None

def trim_log(path, last_iter, redone=None):
    """Drop log rows past the checkpoint we resume from: that work is being redone. A last row
    cut short goes too (checkpoint.log_rows); any other line that is not a row is refused. The log as
    it was is kept as log.prev.csv (or .prev2, ...), unless the one row it drops is redone, the resume's
    next evaluation, which it writes again (a kill between a row and its save); a latest.pt put back from
    a backup, or a resume with other settings, drops rows it may never write again. -> the kept file's path, or
    None"""
    header = LOG_HEADER.split(",")
    try:
        rows_header, rows = log_rows(path)
    except UnicodeDecodeError:  # (train.py writes ASCII only): say which line
        for number, line in enumerate(Path(path).read_bytes().split(b"\n"), start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                raise UserError(f"{path} line {number} holds bytes that are not text, so train.py did not write "
                                f"it — fix or delete that line, then resume") from None
        raise
    if rows_header and rows_header != header:  # (a first row taken for the header would be lost)
        raise UserError(f"{path} line 1 is not train.py's header, {LOG_HEADER} — put that line back first, then "
                        f"resume")
    for number, row in rows:
        if not (len(row) == len(header) and row[0].isdigit()):
            raise UserError(f"{path} line {number} is not a row train.py wrote ({','.join(row)[:40]!r}) — "
                            f"fix or delete that line, then resume")
    kept = [header] + [row for _, row in rows if int(row[0]) <= last_iter]
    before = None
    dropped = [int(row[0]) for _, row in rows if int(row[0]) > last_iter]
    if dropped and dropped != [redone]:
        before = free_name(Path(path))
        shutil.copyfile(path, before)
    write_atomically(path, lambda f: f.write("".join(",".join(r) + "\n" for r in kept).encode()))
    return before


def free_name(log_path):
    """log.prev.csv beside log_path, or log.prev2.csv, ...: the first name not taken."""
    n = 1
    while (kept := log_path.with_name("log.prev.csv" if n == 1 else f"log.prev{n}.csv")).exists():
        n += 1
    return kept


class EvaluationCut(Exception):
    """The first Ctrl-C in an evaluation (StopOnCtrlC.cutting)."""


class StopOnCtrlC:
    """The first Ctrl-C asks the loop to stop after the current step; a second one forces it.
    In an evaluation (but the run's last) the first stops it at once: it only measures, and the
    resume measures again (a busy CPU's can take minutes). A SIGTERM (what kill, timeout and job
    schedulers send first) is a first Ctrl-C too; a second one ends the process, as SIGTERM does.

    Not under torchrun (enabled=False): the processes could stop at different steps
    and wait for each other forever, so there Ctrl-C or a SIGTERM stops them all at once, and
    --resume goes on from the last evaluation.
    """
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, run=None, enabled=True):
        self.run, self.enabled = run, enabled  # run: for the command that goes on, after a forced stop
        self.requested = False
        self.signum = signal.SIGINT  # the signal that asked: save_on_ctrl_c's exit status is 128 + its number
        self.cuttable = False  # within cutting(): the first Ctrl-C raises EvaluationCut

    def __enter__(self):
        if self.enabled:
            self.previous = {signum: signal.signal(signum, self.handle) for signum in self.SIGNALS}
        return self

    def handle(self, signum, frame):
        self.requested, self.signum = True, signum
        self.restore()  # the second stops at once: Ctrl-C's KeyboardInterrupt, or SIGTERM's own end
        if self.cuttable:
            self.cuttable = False
            raise EvaluationCut
        by = "" if signum == signal.SIGINT else f"{signal.Signals(signum).name}: "
        tqdm.write(f"{by}stopping after this step (or the run's last evaluation; Ctrl-C again to stop at once)...")

    def restore(self):
        for signum, handler in self.previous.items():  # (None: one set outside Python, which a signal had ended)
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    @contextmanager
    def cutting(self, allowed=True):
        """A block (an evaluation) that the first Ctrl-C ends at once, where allowed; ended so, the code after the
        block runs, and self.requested says why. -> whether to begin it: not after a Ctrl-C came already (in the
        step before it)."""
        self.cuttable = allowed and self.enabled
        try:
            yield not (self.cuttable and self.requested)
        except EvaluationCut:
            pass
        finally:
            self.cuttable = False

    def __exit__(self, kind, error, traceback):
        if not self.enabled:
            return
        self.restore()
        if kind is KeyboardInterrupt and self.requested and self.run is not None:  # the second Ctrl-C: nothing saved
            raise KeyboardInterrupt(stopped_at_once(self.run)) from None  # (run_cli prints it after "interrupted")


def stopped_at_once(run):
    """What a second Ctrl-C leaves, for "interrupted ...": the run goes on from its last checkpoint, if it has one."""
    if not holds_a_run(run.out_dir):
        return f"at iteration {run.iter}, before any checkpoint — start the run again"
    return f"at iteration {run.iter}, without saving — go on from the last checkpoint with: {resume_command(run)}"


def resume_command(run):
    threads = f"OMP_NUM_THREADS={run.threads_advised} " if run.threads_advised else ""  # (as the note said)
    return f"{threads}python train.py --resume --out_dir {shlex.quote(str(run.out_dir))}"


def save_on_ctrl_c(run, pending, bar, signum=signal.SIGINT):
    """The training loop's answer to a Ctrl-C (or a SIGTERM): the steps still on the device read, latest.pt
    saved, and the command that goes on printed. -> 128 + the signal's number, the exit status of a program the
    signal stopped: 130 for Ctrl-C, 143 for SIGTERM"""
    read_steps(run, pending)
    save_checkpoint(run.out_dir / "latest.pt", make_checkpoint(run))
    bar.close()
    cut = " (in its evaluation, which the resume does first)" if run.owed_evaluation else ""
    by = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"  # (a job's log then says why)
    print(f"stopped{by} at iteration {run.iter}{cut}; saved {run.out_dir / 'latest.pt'} — continue with: "
          f"{resume_command(run)}")
    return 128 + signum


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
    scaler: object              # torch.amp.GradScaler, for float16 (not named: PyTorch 2.1 lacks it, and an
                                # older PyTorch must get as far as run_cli's check of its version)
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
    fastest: float = 0.0                 # tokens/s: the fastest window an evaluation saw (note_a_slowdown)
    threads_advised: Optional[int] = None  # OMP_NUM_THREADS, where a busy-CPU note named it (save_on_ctrl_c)
    # (lr, tokens/s) for the evaluation due before the next step: a new run's, of the untrained model, or one that a
    # Ctrl-C cut short (saved with the checkpoint, so the resume does it); None once it is done
    owed_evaluation: Optional[tuple] = (0.0, 0.0)

    @property
    def out_dir(self):
        return Path(self.cfg.out_dir)

    def say(self, *args, **kwargs):
        if self.rank == 0:  # only process 0 talks and writes
            print(*args, **kwargs)


def refuse_to_overwrite(out_dir, preset=None):
    """A new run would write over the checkpoints of the run already in out_dir, or over a log.csv
    that train.py did not write. (One it wrote, without a checkpoint, open_log keeps under another name.)
    preset: the one named on the command line, if any: then the fix is most likely another out_dir."""
    for name in ("latest.pt", "best.pt"):
        if (out_dir / name).is_file():  # (a folder of that name: open_log refuses it)
            # --resume reads latest.pt: with best.pt alone (latest.pt deleted, say), a copy of it comes first, unless
            # best.pt is the run's last state (then the resume makes the copy)
            first = "" if name == "latest.pt" or best_is_the_last_state(out_dir) else \
                f"copy best.pt to latest.pt ({copy_best_to_latest(out_dir)}), then "
            fix = f"{first}add --resume to continue it, or choose a new --out_dir"
            if preset:  # another recipe, usually (the README's classic-cpu after the default), which --resume refuses
                free = Path(TrainConfig.out_dir) / preset
                e_g = "" if free.exists() else f" (e.g. --out_dir {shlex.quote(str(free))})"
                fix = (f"choose a new --out_dir for this --preset {preset} run{e_g}, or continue that one: "
                       f"{first}python train.py --resume --out_dir {shlex.quote(str(out_dir))}")
            raise UserError(f"{out_dir} already holds a run ({name}) — {fix}")
    log = out_dir / "log.csv"
    if log.is_file() and not written_by_train_py(log):
        raise UserError(f"{log} was not written by train.py, and a new run would write over it — move it away to "
                        f"keep it, or choose a new --out_dir")


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
    if "muon_lr" in overrides and cfg.optimizer == "adamw" and not resuming:
        print("note: --muon_lr is Muon's learning rate: with --optimizer adamw it changes nothing (--lr is AdamW's)")


def describe(run):
    """The start-up lines: where it runs, the model's size, the batch."""
    cfg, mcfg = run.cfg, run.mcfg
    run.say(f"device: {run.device}, dtype: {dtype_name(run.dtype)}, compile: {run.use_compile}"
            + (f", DDP over {dist.get_backend()}: {run.world_size} process{'es' * (run.world_size > 1)} x "
               f"{run.micro_steps} micro-batch(es) of {run.rows} rows per step" if dist.is_initialized() else ""))
    n = count_params(run.raw_model)
    if mcfg.model == "bigram":
        run.say(f"model: bigram, a {mcfg.vocab_size} x {mcfg.vocab_size} table, {n:,} parameters")
    else:
        # nanoGPT's count leaves the position embeddings out (rotary's are angles, not weights); said where it differs
        without = f"{count_params(run.raw_model, non_embedding=True) / 1e6:.2f}M"
        learned = "" if without == f"{n / 1e6:.2f}M" else f" ({without} without position embeddings)"
        run.say(f"model: {n / 1e6:.2f}M parameters{learned}, {mcfg.n_layer} layer{'s' * (mcfg.n_layer != 1)}, "
                f"{mcfg.n_head} head{'s' * (mcfg.n_head != 1)}, "
                f"{mcfg.n_embd} wide, block {mcfg.block_size}, vocab {mcfg.vocab_size}")
    run.say(f"tokens per iteration: {cfg.batch_size} x {mcfg.block_size} x {cfg.grad_accum} = "
            f"{tokens_per_iter(run):,}; iterations {run.iter} -> {cfg.max_iters}")
    times = times_the_cpu_default(cfg, mcfg, cfg.max_iters - run.iter)
    if run.device.type == "cpu" and mcfg.model == "gpt" and times > 20:  # a GPU preset tried on a laptop, usually
        minutes = 2 * times  # (the CPU default's 2 minutes on 2 cores)
        took = f"{minutes:.0f} minutes" if minutes < 120 else f"{minutes / 60:.0f} hours"
        wider = block_work(mcfg.n_layer, mcfg.n_embd) > block_work(CPU_DEFAULT["n_layer"], CPU_DEFAULT["n_embd"])
        run.say(f"note: this run is about {times:.0f} times the work of the CPU default, which takes 2 minutes on "
                f"2 cores: about {took} there (the progress bar estimates it here) — "
                + ("on a CPU, the shakespeare-cpu preset's model is the size to train" if wider else
                   "a smaller --max_iters trains for less"))
    # (said as the run starts: Ctrl-C saves it, and --resume goes on with the threads the note names)
    if run.device.type == "cpu":  # (said once is enough: note_a_slowdown says nothing after it)
        note, run.threads_advised = busy_cpu_note(torch.get_num_threads(), then="Ctrl-C and --resume it")
        if note:
            run.say(note)
    if note := evaluation_note(cfg, run.iter, owed=bool(run.owed_evaluation)):
        run.say(note)
    if cfg.max_iters <= cfg.warmup_iters and run.extended_at is None:  # a short try of a preset, usually
        run.say(f"note: the run's {cfg.max_iters} iterations (max_iters) end inside its {cfg.warmup_iters}-step "
                f"warmup (warmup_iters), so the learning rate never reaches its peak, lr={cfg.lr:g} — "
                f"add e.g. --warmup_iters {cfg.max_iters // 10}")


def usable_cores():
    """The cores this process may run on (taskset, or a container's cpuset, can allow fewer than the machine has)."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


def cores_busy(seconds=0.1):
    """How many of this process's usable cores other programs keep busy now: /proc/stat's time per
    core, over `seconds` in which this process sleeps. -> a float, or None where there is no
    /proc/stat (macOS, Windows)."""
    def busy_and_total():  # per core: (ticks busy, all ticks); busy = all but idle and iowait
        lines = Path("/proc/stat").read_text().splitlines()
        ticks = {int(line.split()[0][3:]): [int(t) for t in line.split()[1:9]]  # (guest time is in user already)
                 for line in lines if line.startswith("cpu") and line[3].isdigit()}
        return {core: (sum(t) - t[3] - t[4], sum(t)) for core, t in ticks.items()}
    try:
        before = busy_and_total()
        time.sleep(seconds)
        after = busy_and_total()
        return sum((after[c][0] - before[c][0]) / max(1, after[c][1] - before[c][1]) for c in usable_cores())
    except (OSError, ValueError, IndexError, KeyError):
        return None


def busy_cpu_note(threads, busy=None, cores=None, then="Ctrl-C and start it again"):
    """A note when other programs keep cores busy: PyTorch's threads (one per core) wait on the
    slowest, so beside a busy program fewer threads do better (docs/training.md, A busy CPU).
    busy, cores: the cores kept busy and those usable (default: this machine's, now); then: what to
    do with OMP_NUM_THREADS in front. -> (the note, the threads it names), or (None, None)"""
    if threads < 2 or "OMP_NUM_THREADS" in os.environ:  # one thread waits on no other; or chosen already
        return None, None
    busy = cores_busy() if busy is None else busy
    if busy is None:
        return None, None
    cores = cores or len(usable_cores())
    kept = math.floor(busy + 0.5)  # the cores kept busy, half a core and up counted as one
    idle = max(1, min(threads, cores - kept))  # as many threads as the busy cores leave room for
    if kept < 1 or idle >= threads:  # no core kept busy (a browser idles at a few percent), or room for all
        return None, None
    return (f"note: other programs keep {busy:.1f} of the {cores} cores busy, so PyTorch's {threads} threads wait "
            f"on them (beside one busy core of 2, a run took 3 to 6 times as long: docs/training.md, A busy CPU) — "
            f"{then} with OMP_NUM_THREADS={idle} in front"), idle


def note_a_slowdown(run, tokens_per_sec):
    """On a CPU, once a command: the busy-CPU note of the start-up, when a program that began later has slowed
    the run to under half its speed (the window before this evaluation, against the fastest before it). Not at the
    last evaluation: there is nothing left to resume."""
    fastest, run.fastest = run.fastest, max(run.fastest, tokens_per_sec)
    if (run.device.type != "cpu" or run.world_size > 1 or run.threads_advised or tokens_per_sec >= fastest / 2
            or run.iter >= run.cfg.max_iters):
        return  # (under torchrun, the other busy processes are the run's own)
    note, run.threads_advised = busy_cpu_note(torch.get_num_threads(), then="Ctrl-C and --resume it")
    if note:  # (None: no other program to blame, or OMP_NUM_THREADS chosen already)
        tqdm.write(f"note: this run has slowed from {fastest:,.0f} to {tokens_per_sec:,.0f} tokens/s: "
                   + note.removeprefix("note: "))


CPU_DEFAULT = PRESETS["shakespeare-cpu"]


def block_work(layers, width):
    """The blocks' work per token, up to a constant: each block's weights make about 12 x width²
    multiply-adds per token (attention's scores left out)."""
    return layers * width ** 2


def times_the_cpu_default(cfg, mcfg, steps):
    """How many times the work of the shakespeare-cpu preset's training this many steps is."""
    tokens = cfg.batch_size * cfg.grad_accum * mcfg.block_size * steps
    cpu = CPU_DEFAULT
    cpu_tokens = cpu["batch_size"] * cpu["grad_accum"] * cpu["block_size"] * cpu["max_iters"]
    return block_work(mcfg.n_layer, mcfg.n_embd) * tokens / (block_work(cpu["n_layer"], cpu["n_embd"]) * cpu_tokens)


def extension_note(run, lr, last):
    """What a resume with a new max_iters (or warmup_iters) does to the learning rate (train.py's extend_schedule,
    which has set run.extended_at): lr now, last at the new max_iters."""
    if not run.extended_at[1]:
        return (f"note: the run had finished its decay, so the new steps train at --min_lr, {lr:.2e} (--lr has no "
                f"effect here)")
    # (with the --lr and --min_lr given now: the same share of the way between them)
    share = f"{run.extended_at[1]:.0%}" if run.extended_at[1] >= 0.01 else "under 1%"
    at_end = "--min_lr" if math.isclose(last, run.cfg.min_lr) else f"{last:.2e}"  # (a decay that stays up)
    return (f"note: the learning rate goes on down the decay from where the run was, {share} of the way from "
            f"--min_lr up to --lr: {lr:.2e} now, {at_end} at iteration {run.cfg.max_iters}")


def evaluation_note(cfg, start, owed=None):
    """A note where evaluating will be more work than training, from step start on: a preset that keeps the
    dataclass's 200 evaluation batches for a few dozen steps, usually. An evaluation runs eval_iters batches of each
    split forward only, about a third of a training batch's work (which adds the backward pass; with Muon, a
    little more), so the estimate runs a little high; None below 1.5 times. owed: whether the run begins with an
    evaluation (a new run's, or one a Ctrl-C cut short: run.owed_evaluation); None: a new run's alone."""
    steps = cfg.max_iters - start
    if steps <= 0:
        return None
    owed = start == 0 if owed is None else owed
    # the one the run begins with, one every eval_interval steps, and the last step's
    evaluations = (owed + cfg.max_iters // cfg.eval_interval - start // cfg.eval_interval
                   + (cfg.max_iters % cfg.eval_interval != 0))
    times = evaluations * 2 * cfg.eval_iters / 3 / (steps * cfg.grad_accum)
    if times < 1.5:
        return None
    fewest = owed + 1  # the one it begins with, if any, and the last
    fixes = ["a larger --eval_interval evaluates less often"] if evaluations > fewest else []
    if cfg.eval_iters > CPU_DEFAULT["eval_iters"]:
        fixes.append(f"a smaller --eval_iters (the CPU default's is {CPU_DEFAULT['eval_iters']}) gives a rougher val "
                     f"loss sooner")
    if not fixes:  # a run of a few steps
        fixes.append("a smaller --eval_iters gives a rougher val loss sooner, a larger --max_iters more training")
    many = evaluations != 1
    return (f"note: this run's {evaluations} evaluation{'s' * many} of {cfg.eval_iters} batches per split "
            f"{'are' if many else 'is'} about {times:.0f} times the work of its {steps} training "
            f"step{'s' * (steps != 1)} — " + "; ".join(fixes))


def tokens_per_iter(run):
    return run.cfg.batch_size * run.mcfg.block_size * run.cfg.grad_accum


def open_log(run):
    """Make out_dir and log.csv (trimmed to the checkpoint on resume) before training: fail now,
    not after the first hour. On the way: refuse a folder where a checkpoint goes, take out_dir's lock
    (one run at a time), and remove the temp files of a run killed mid-save."""
    log_path = run.out_dir / "log.csv"
    if run.rank != 0:
        return
    for name in ("latest.pt", "best.pt"):  # a new run's, or a resumed one's: the first save would fail, an hour on
        if (run.out_dir / name).is_dir():
            raise UserError(f"{run.out_dir / name} is a folder, where train.py saves a checkpoint — move it away, or "
                            f"choose another --out_dir")
    try:
        run.out_dir.mkdir(parents=True, exist_ok=True)
        claim_out_dir(run)
        if run.last_saved is not None and log_path.exists():  # a resume (at iteration 0 too, after its evaluation)
            redone = min(run.iter - run.iter % run.cfg.eval_interval + run.cfg.eval_interval, run.cfg.max_iters)
            if before := trim_log(log_path, run.iter, redone):
                run.say(f"note: {log_path} had rows past iteration {run.iter}, where this resume goes on from: the "
                        f"log as it was is kept as {before}")
        else:
            keep_a_log_without_checkpoints(run, log_path)
            write_atomically(log_path, lambda f: f.write(f"{LOG_HEADER}\n".encode()))
    except IsADirectoryError as e:  # a log.csv or train.lock that is a folder: named (a rename names its target second)
        raise UserError(f"cannot write {e.filename2 or e.filename} ({e.strerror}) — move it away, or choose another "
                        f"--out_dir") from None
    except OSError as e:
        named = Path(e.filename) if e.filename else run.out_dir
        if named.parent == run.out_dir and named.name == "log.csv" and named.exists():
            # a resume's log.csv that this user may not read or write: another --out_dir would not resume the run
            # (a train.lock it may not open is no error: claim_out_dir trains on without the lock)
            raise UserError(f"cannot use {named} ({e.strerror}) — fix its permissions (chmod u+rw "
                            f"{shlex.quote(str(named))}), then run again") from None
        raise UserError(f"cannot write in {run.out_dir} ({e.strerror}) — choose another --out_dir") from None
    if removed := remove_stale_temp_files(run.out_dir):
        run.say(f"removed {removed} half-written temp file(s) in {run.out_dir}, left by a run that was killed "
                f"mid-save")


LOCKS = {}  # out_dir/train.lock -> [its one descriptor in this process, the live runs holding it]


def claim_out_dir(run):
    """One train.py at a time in an out_dir. A second, started beside the first (a --resume, or a new
    run before the first has saved), would write into the same log.csv and checkpoints. The lock on
    out_dir/train.lock is the kernel's: it ends with the process, however that ends. It is held by a
    process (lockf), which never shuts itself out, and it is let go when a descriptor of the file
    closes: so one per file, closed with the last run object (a test, a notebook) that holds it."""
    if fcntl is None:  # (Windows)
        return
    path = lock_path(run.out_dir)
    if path not in LOCKS:
        try:  # (O_NOFOLLOW: a link named train.lock would have the PID below written into the file it points to)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except PermissionError:  # another user's lock file in a folder we may write: train without a lock
            return
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
            raise UserError(f"{path} is a link, where train.py keeps its lock — move it away, or choose another "
                            f"--out_dir") from None
        try:
            locked = lock(fd, run.out_dir)
            held = os.pread(fd, 64, 0).strip()  # (at offset 0, where the process number below is written)
            if held and not held.isdigit():  # a file of the user's, not a lock (which holds a process's number)
                raise UserError(f"{path} is not a lock that train.py wrote, and it would write over it — move it "
                                f"away, or choose another --out_dir")
        except UserError:
            os.close(fd)
            raise
        if not locked:  # a file system without locks: train without one
            os.close(fd)
            return
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())  # whose lock it is, for the message above
        LOCKS[path] = [fd, 0]
    LOCKS[path][1] += 1
    weakref.finalize(run, let_go, path)


def lock(fd, out_dir):
    """Lock train.lock (open at fd) for this process. -> True, or False on a file system without locks.
    Where another process holds it: its line, whose lock it is and what to do, as a UserError."""
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as e:
        if e.errno not in (errno.EAGAIN, errno.EACCES):
            return False
    holder = os.read(fd, 20).decode(errors="replace").strip()  # (empty: a run starting at this moment)
    who = f"process {holder}" if holder else "one starting as this one did"
    raise UserError(f"another train.py ({who}) is training in {out_dir} — wait for it to end, or give "
                    f"this run another --out_dir")


def refuse_if_training(out_dir):
    """The lock's line where another process trains in out_dir now, before a run reads its settings (open_log's
    lock comes later). This process's own lock is left alone (closing a descriptor of its file would let it go)."""
    path = lock_path(out_dir)
    if fcntl is None or path in LOCKS or not path.is_file():
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    except OSError:  # (a link: claim_out_dir refuses it)
        return
    try:
        lock(fd, out_dir)  # free: ours for a moment, let go by the close below
    finally:
        os.close(fd)


def lock_path(out_dir):
    """out_dir/train.lock, its folder's path resolved (the same run's lock, however its --out_dir was written), but
    not the file's own: a link there is not followed."""
    return Path(out_dir).resolve() / "train.lock"


def let_go(path):
    LOCKS[path][1] -= 1
    if LOCKS[path][1] == 0:
        os.close(LOCKS.pop(path)[0])


def keep_a_log_without_checkpoints(run, log_path):
    """A new run in a folder whose log.csv has rows past iteration 0, but no checkpoint (a run stopped in
    its first save, or one whose checkpoints were deleted): that log goes to log.prev.csv (or .prev2, ...)."""
    try:
        rows = log_rows(log_path)[1] if log_path.is_file() else []
    except (ValueError, csv.Error):  # bytes that are not text: not a log to write over either
        rows = [(0, ["?"])]
    if all(row[0] == "0" for _, row in rows):
        return  # nothing, or only the untrained model's row: nothing to keep
    kept = free_name(log_path)
    log_path.rename(kept)
    run.say(f"kept the log of an earlier run in {run.out_dir}, which has no checkpoint, as {kept}")


def read_steps(run, pending):
    """The pending steps' losses and flags, in one wait for the device (not one per step, which
    also keeps the timing honest). Warn of each skipped step; too many in a row stop the run.
    -> the losses"""
    if not pending:
        return []
    losses = torch.stack([loss for _, loss, _ in pending]).tolist()
    finite = torch.stack([ok for _, _, ok in pending]).tolist()
    for (i, _, _), loss, ok in zip(pending, losses, finite):
        run.bad_steps = 0 if ok else run.bad_steps + 1
        if run.bad_steps and run.rank == 0:  # skipped already (train_step): the weights never saw it
            # (the loss is this process's: under torchrun, a finite one means another process's was not)
            what = f"the loss is {loss}" if not math.isfinite(loss) else "another process's loss is nan or inf"
            tqdm.write(f"warning: {what} at iteration {i}; the step was skipped "
                       f"({run.bad_steps} in a row, --max_nan_skips {run.cfg.max_nan_skips})")
        if run.bad_steps > run.cfg.max_nan_skips:
            raise nan_error(run, f"the loss was nan or inf for {run.bad_steps} steps in a row, up to iteration {i}")
    pending.clear()
    return losses


def nan_error(run, what):
    """The error that stops a run whose loss went nan or inf, naming the checkpoint to go back to,
    and learning rates to go on with (half: min_lr too, which may not be above lr; Muon's, which the blocks take)."""
    muon = f" --muon_lr {run.cfg.muon_lr / 2:g}" if run.cfg.optimizer == "muon" else ""
    fp16 = " (or --dtype bfloat16)" if run.dtype == torch.float16 else ""  # (bf16's range is float32's)
    lower = f"--lr {run.cfg.lr / 2:g} --min_lr {run.cfg.min_lr / 2:g}{muon}{fp16}"
    if run.last_saved is None:
        return UserError(f"{what}; no checkpoint was saved yet — start again with lower learning rates, e.g. {lower}")
    return UserError(f"{what}; the last good checkpoint is {run.out_dir / 'latest.pt'} (iteration "
                     f"{run.last_saved}) — resume from it with --resume and lower learning rates, e.g. {lower}")


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


def append_log(run, losses, lr, tokens_per_sec):
    """One row of log.csv for this evaluation."""
    log_path = run.out_dir / "log.csv"
    try:
        with open(log_path, "a") as f:
            f.write(f"{run.iter},{losses['train']:.6f},{losses['val']:.6f},{lr:.6g},{tokens_per_sec:.1f},"
                    f"{run.elapsed_before + time.perf_counter() - run.t_train:.2f}\n")
    except OSError as e:
        refuse_a_run_folder_gone(run.out_dir)
        raise UserError(f"cannot write {log_path} ({e.strerror}) — free some disk space or fix the "
                        f"permissions, then resume with --resume") from None


def finish(run, seconds):
    """The closing lines: the best val loss, a note if the run overfitted, the time, the checkpoints.
    Under DDP the processes then leave together."""
    run.say(f"best val loss {run.best_val:.4f} nats per char = {run.best_val / math.log(2):.4f} bits per char")
    if note := overfitting_note(run):
        run.say(note)
    run.say(f"wall time {seconds:.1f} s (evaluation {run.eval_seconds:.1f} s of it)")
    run.say(f"checkpoints: {run.out_dir / 'best.pt'} (best val, for sample.py), "
            f"{run.out_dir / 'latest.pt'} (for --resume)")
    if run.out_dir != Path(TrainConfig.out_dir):  # sample.py alone would read out/, another run's
        run.say(f"next: python sample.py --out_dir {shlex.quote(str(run.out_dir))}")
    if dist.is_initialized():  # leave together: process 0 may still be saving when the others finish,
        dist.barrier()         # and gloo can abort a process that tears down while a peer is busy
        dist.destroy_process_group()
        # and then not at once: with torch 2.13 on a busy 2-core machine, a small gloo + DDP script that
        # exited right here was aborted ("terminate called without an active exception") in 9 of 30
        # runs, and in none of 50 half a second later (tests/test_ddp.py's torchruns: 2 of about 100)
        time.sleep(0.5)


def count_params(model, non_embedding=False):
    """A model's parameters, counting the tied embedding once. non_embedding=True leaves out the
    position embedding, the convention behind the "10.65M" that nanoGPT prints for its Shakespeare model."""
    n = sum(p.numel() for p in model.parameters())  # parameters() yields a tied tensor once
    if non_embedding and "wpe" in getattr(model, "transformer", {}):  # (a Bigram has no transformer)
        n -= model.transformer.wpe.weight.numel()
    return n
