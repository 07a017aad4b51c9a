#!/usr/bin/env bash
# docs/speed.md's "What made it fast on a CPU", rerun on the presets as they are now, alone on the machine:
#   bash bench/results/2026-12-06-xeon/cpu-levers.sh > bench/results/2026-12-06-xeon/cpu-levers.log 2>&1
set -u
cd "$(dirname "$0")/../../.."
run() { echo "\$ $*"; /usr/bin/time -f "(wall %e s)" "$@" 2>&1 | grep -vE "^(training|model) settings:"; echo; }
date -u; grep -m1 "model name" /proc/cpuinfo; nproc
python -c "import torch; print('torch', torch.__version__)"; git log -1 --format="code: %h"; echo

echo "== 1. One change at a time to cpu-speedrun: val loss after its 250 steps (one run each)"
levers=("" "--optimizer adamw" "--position learned" "--qk_norm false" "--activation relu2"
        "--lr 2e-3 --min_lr 2e-4 --muon_lr 0.01")
for change in "${levers[@]}"; do
  run python -m bench.speed train --preset cpu-speedrun --target 0.01 --eval_interval 125 --warmup 1 $change
done

echo "== 2. Depth: cpu-speedrun with 4, 3 and 2 layers (2: the preset), to val 1.886, evaluated every 25 steps"
for layers in 4 3 2; do
  run python -m bench.speed train --preset cpu-speedrun --target 1.886 --eval_interval 25 --warmup 1 --n_layer $layers
done

echo "== 3. shakespeare-cpu's step: eager float32, compiled, bf16 autocast; 20 timed steps each, 3 alternating rounds"
for round in 1 2 3; do
  run python -m bench.speed train --preset shakespeare-cpu --steps 20
  run python -m bench.speed train --preset shakespeare-cpu --steps 20 --compile true
  run python -m bench.speed train --preset shakespeare-cpu --steps 20 --dtype bfloat16
done
echo "== 4. The compile's warm-up with an empty compile cache (a first --compile), then with the cache it filled"
cache=$(mktemp -d)  # TORCHINDUCTOR_CACHE_DIR: a new folder, empty for the first run
for state in cold warm; do
  echo "(the compile cache: $state)"; TORCHINDUCTOR_CACHE_DIR=$cache run python -m bench.speed train --preset shakespeare-cpu --steps 20 --compile true
done
rm -rf "$cache"
date -u
