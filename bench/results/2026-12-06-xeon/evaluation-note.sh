#!/usr/bin/env bash
# The evaluation note against a run: the shakespeare preset's recipe (the dataclass defaults, but its dropout) at
# 2 layers, 4 heads, 64 wide, 50 steps and 100 evaluation batches, on one thread. Run from the repo's folder, after
# python prepare.py. The note's estimate is on its "note: this run's" line; the run's own split, on "wall time".
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "# $(date -u), $(lscpu | grep -m1 'Model name' | sed 's/  */ /g'), $(nproc) cores; PyTorch $(python -c 'import torch; print(torch.__version__)'); commit $(git rev-parse --short HEAD)"
OMP_NUM_THREADS=1 python train.py --preset shakespeare --device cpu --n_layer 2 --n_head 4 --n_embd 64 --dropout 0 \
    --max_iters 50 --eval_iters 100 --out_dir "$out/run" 2>/dev/null | grep -E "^note: this run's|^wall time|^best val"
