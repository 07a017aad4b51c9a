#!/usr/bin/env bash
# A GPU session's measurements in one command on a bare machine (first run on 2026-12-04, as
# docs/results/2026-12-04-h200/run.sh at commit 7a4b23a: now bench/results/2026-12-04-h200.md):
#
#   bash bench/session.sh OUT SECONDS                        # on the GPU
#   bash bench/session.sh OUT SECONDS --smoke --device cpu   # the same at toy sizes
#
# It reads the text from .gpu/input.txt and a nanoGPT checkout from .gpu/nanogpt (docs/speed.md says how),
# writes its summaries into OUT and a tarball of every log, and ends within about SECONDS.
#   1. Warm-up, thrown away: nanoGPT's recipe and ours for 20 steps each, and one speedrun, fill the
#      compile cache. Beside them, where nothing is timed, the GPU paths: tests/test_cuda.py, and
#      torchrun over NCCL, resumed in one process, sampled on the CPU.
#   2. Measured, one job at a time, in the order of JOBS, until the time is spent.
# PHASE1=0 skips the first part (a second command on the same, still warm machine).
set -uo pipefail
out=${1:?OUT folder}; budget=${2:?SECONDS}; shift 2
py=${PYTHON:-python3}
suite="$py -m bench.suite --anchor .gpu/nanogpt $*"
# the next measurements, in order (docs/speed.md, "The plan for the next GPU measurements")
jobs=${JOBS:-speedrun-cold,classic-target-cold,speedrun-cold,classic-target-cold,speedrun-cold,classic-target-cold,\
speedrun,speedrun-one-thread,classic-target,speedrun,speedrun-one-thread,classic-target}
mkdir -p "$out"

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

if [ "${PHASE1:-1}" = 1 ]; then
  $suite --out_dir /tmp/paths --time_limit 200 --jobs cuda-tests > "$out/1-cuda-tests.txt" 2>&1 &
  $suite --out_dir /tmp/ddp --data_dir /tmp/ddp-data --input .gpu/input.txt --time_limit 200 \
    --jobs ddp,resume,sample-on-cpu > "$out/1-ddp.txt" 2>&1 &
  $suite --out_dir /tmp/bench --input .gpu/input.txt --time_limit 200 \
    --jobs anchor-warmup,classic-warmup,speedrun > "$out/1-warmup.txt" 2>&1
  wait
  echo "phase 1 done at ${SECONDS} s"
fi

left=$((budget - SECONDS - 20))  # 20 s to pack the logs
echo "phase 2: ${left} s for ${jobs}"
$suite --out_dir /tmp/bench --input .gpu/input.txt --time_limit "$left" --jobs "$jobs" 2>&1 \
  | tee "$out/2-measured.txt" \
  | grep -E '^(==|   (reached|did not|evaluation lines|nanoGPT step time|warm-up|error))'

tar czf "$out/logs.tar.gz" --exclude='*.pt' --exclude='*.bin' --exclude='*.pkl' -C /tmp bench paths ddp 2>/dev/null
echo "done at ${SECONDS} s"
grep -hE '^== .*(median|passed|failed|exit [^0])' /tmp/paths/summary.txt /tmp/ddp/summary.txt \
  "$out/2-measured.txt" || true
grep -hE 'passed|failed|best val loss|DDP over' /tmp/paths/summary.txt /tmp/ddp/summary.txt || true
