#!/usr/bin/env bash
# nanoGPT's shakespeare_char recipe, run from your own checkout of nanoGPT, to measure against:
#
#   bash bench/nanogpt.sh CHECKOUT WORKDIR DEVICE TEXT [nanoGPT's --key=value flags...]
#
# It copies CHECKOUT into WORKDIR (your checkout is left as it is), puts TEXT where nanoGPT's
# data/shakespeare_char/prepare.py looks for its input (so it downloads nothing), prepares it,
# and trains with config/train_shakespeare_char.py, the log in WORKDIR/nanogpt.log.
# `python -m bench.suite --jobs anchor --anchor CHECKOUT` runs it for you.
set -euo pipefail
src=${1:?CHECKOUT}; work=${2:?WORKDIR}; device=${3:?DEVICE}; text=${4:?TEXT}; shift 4
if [ ! -f "$src/train.py" ] || [ ! -f "$src/data/shakespeare_char/prepare.py" ]; then
  echo "error: $src is not a nanoGPT checkout (no train.py, data/shakespeare_char/prepare.py) —" \
       "git clone https://github.com/karpathy/nanoGPT and give its folder" >&2
  exit 2
fi
mkdir -p "$work"
cp -r "$src"/. "$work"/
cp "$text" "$work/data/shakespeare_char/input.txt"
cd "$work"
python data/shakespeare_char/prepare.py > prepare.log
echo "nanogpt.sh: prepared the data in $work; nanoGPT's train.py starts"  # (bench.suite times from here)
# nanoGPT reads its settings as --key=value overrides on top of the config file
python train.py config/train_shakespeare_char.py --device="$device" "$@" 2>&1 | tee nanogpt.log
