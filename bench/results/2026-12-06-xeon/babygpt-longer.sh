#!/usr/bin/env bash
# docs/lessons.md's baby GPT trained for the default 300 steps, then for 1000: the states seen in training sharpen
# further, the unseen ones drift. Run from the repo's folder: bash bench/results/2026-12-06-xeon/babygpt-longer.sh
set -euo pipefail
echo "# $(date -u), $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores;" \
     "PyTorch $(python -c 'import torch; print(torch.__version__)'); commit $(git rev-parse --short HEAD)"
for steps in 300 1000; do
    echo "\$ python -m lessons.babygpt --steps $steps --dot \$TMPDIR/babygpt.dot"
    python -m lessons.babygpt --steps "$steps" --dot "${TMPDIR:-/tmp}/babygpt.dot" | sed -n '3,13p'
done
