#!/usr/bin/env bash
# A GPU session's measurements in one command on a bare machine (first run on 2026-12-04, as
# docs/results/2026-12-04-h200/run.sh at commit 7a4b23a: now bench/results/2026-12-04-h200.md):
#
#   bash bench/session.sh OUT SECONDS                        # on the GPU
#   bash bench/session.sh OUT SECONDS --smoke --device cpu   # the same at toy sizes
#
# It reads the text from .gpu/input.txt and a nanoGPT checkout from .gpu/nanogpt (docs/speed.md says how),
# runs in a new folder under /tmp, writes its summaries into OUT (new or empty) and a tarball of every
# log, and ends within about SECONDS.
#   1. Warm-up, thrown away: 20 steps and one evaluation of the classic recipe and of the speedrun
#      fill the compile cache. Beside them, where nothing is timed, the GPU paths: tests/test_cuda.py, and torchrun
#      over NCCL, resumed in one process, sampled on the CPU.
#   2. Measured, one job at a time, in the order of JOBS, until the time is spent. By default,
#      runs from an empty compile cache (each its own).
# PHASE1=0 skips the first part, for a second command on the same, still warm machine; its JOBS are by
# default runs with the warm cache. Where that cache is empty (a machine started afresh), the warm-ups
# run first, or those runs would be cold.
set -uo pipefail
out=${1:?OUT folder}; budget=${2:?SECONDS}; shift 2
refuse() { echo "error: $1" >&2; exit 2; }
[ -z "$(ls -A "$out" 2>/dev/null)" ] || refuse "$out is not empty — give a new or empty folder for this command's output"
mkdir -p "$out" && out=$(cd "$out" && pwd) || refuse "cannot make $out — give a folder you can write"
cd "$(dirname "$0")/.."
[ -f .gpu/input.txt ] && [ -d .gpu/nanogpt ] \
  || refuse "no .gpu/input.txt or .gpu/nanogpt in $(pwd) — put the text and a nanoGPT checkout there (docs/speed.md)"
work=$(mktemp -d /tmp/session.XXXXXX)  # this command's runs: nothing of an earlier command's is read or packed
py=${PYTHON:-python3}
suite="$py -m bench.suite --anchor .gpu/nanogpt $*"
# the next measurements, in order (docs/speed.md, "The plan for the next GPU measurements")
phase1=${PHASE1:-1}
cold=speedrun-cold,classic-target-cold,speedrun-cold,classic-target-cold,speedrun-cold,classic-target-cold
warm=speedrun,classic-target,speedrun,classic-target,speedrun,classic-target,speedrun-one-thread
case $phase1 in 0|1) ;; *) refuse "PHASE1=$phase1 — give 1 (the default: warm-ups and GPU paths first) or 0";; esac
if [ "$phase1" = 1 ]; then jobs=${JOBS:-$cold}; else jobs=${JOBS:-$warm}; fi
warmups=$phase1
codes=""  # each suite command's exit status
if [ "$phase1" = 0 ]; then  # torch.compile's cache (PyTorch 2.4 has no cache_dir_utils: empty, so warmed)
  cache=${TORCHINDUCTOR_CACHE_DIR:-$($py -c 'from torch._inductor.runtime.cache_dir_utils import cache_dir
print(cache_dir())' 2>/dev/null)}
  if [ -z "$cache" ] || [ -z "$(ls -A "$cache" 2>/dev/null)" ]; then
    echo "note: the compile cache ${cache:-(not found)} is empty (a machine started afresh?): the warm-ups run first"
    warmups=1
  fi
fi
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 || true
  $py -c "import torch, platform
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'python', platform.python_version())"
  grep -m1 'model name' /proc/cpuinfo; echo "cpus: $(nproc)"
  sha256sum .gpu/input.txt
  git log -1 --format='code: %H %s' 2>/dev/null || true
  git status --short 2>/dev/null | head -20
} > "$out/machine.txt" 2>&1

if [ "$warmups" = 1 ]; then
  first=$((budget / 2 < 200 ? budget / 2 : 200))  # the first part's seconds: at most half of the command's
  if [ "$phase1" = 1 ]; then
    $suite --out_dir "$work/paths" --time_limit "$first" --jobs cuda-tests > "$out/1-cuda-tests.txt" 2>&1 &
    paths=$!
    $suite --out_dir "$work/ddp" --data_dir "$work/ddp-data" --input .gpu/input.txt --time_limit "$first" \
      --jobs ddp,resume,sample-on-cpu > "$out/1-ddp.txt" 2>&1 &
    ddp=$!
  fi
  $suite --out_dir "$work/bench" --input .gpu/input.txt --time_limit "$first" \
    --jobs classic-target-warmup,speedrun-warmup > "$out/1-warmup.txt" 2>&1
  codes="$codes $?"
  if [ "$phase1" = 1 ]; then
    wait $paths; codes="$codes $?"  # (here, not in a $(...): a subshell cannot wait for this shell's jobs)
    wait $ddp; codes="$codes $?"
  fi
  echo "phase 1 done at ${SECONDS} s"
fi

left=$((budget - SECONDS - 20))  # 20 s to pack the logs
if [ "$left" -lt 30 ]; then
  echo "note: ${left} s left, no time for the measured jobs — give a larger SECONDS" | tee "$out/2-measured.txt"
else
  echo "phase 2: ${left} s for ${jobs}"
  $suite --out_dir "$work/bench" --input .gpu/input.txt --time_limit "$left" --jobs "$jobs" 2>&1 \
    | tee "$out/2-measured.txt" \
    | grep -E '^(==|   (reached|did not|evaluation lines|nanoGPT step time|warm-up|error))'
  codes="$codes ${PIPESTATUS[0]}"
fi

tar czf "$out/logs.tar.gz" --exclude='*.pt' --exclude='*.bin' --exclude='*.pkl' -C "$work" . 2>/dev/null
echo "done at ${SECONDS} s"
# this command's lines only: the suite prints each job's head indented, its medians not; a job stopped by its
# limit, or never started, is named too
grep -hE '^ *== .*(median|passed|failed|exit [^0]|stopped at|not started)' "$out"/1-*.txt "$out/2-measured.txt" \
  2>/dev/null
grep -hE 'passed|failed|best val loss|DDP over' "$out"/1-cuda-tests.txt "$out"/1-ddp.txt 2>/dev/null
# a suite that refused to start (exit 2: its one-line error is in OUT) fails the command; a job that
# failed, or that the time limit stopped or left out (exit 1), is in the lines above
case " $codes " in *" 2 "*) echo "error: a suite command refused to start — its error is in $out" >&2; exit 2;; esac
exit 0
