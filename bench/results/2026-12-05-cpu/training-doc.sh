# The figures of docs/training.md and docs/multi-gpu.md: a small text learned by heart and the printed command
# that avoids it, a finished run trained longer, another small text (Python's json package) with and without
# dropout, and one run against two torchrun processes. Times: /usr/bin/time's wall clock of each whole command.
# Run from the repo root of a CPU-only machine (GNU time), with a copy of tiny-shakespeare at input.txt, or its
# path as $1: bash bench/results/2026-12-05-cpu/training-doc.sh [input.txt]
set -eo pipefail
text=${1:-input.txt}
out=/tmp/training-doc; rm -rf $out; mkdir -p $out
[ -f data/shakespeare/vocab.json ] || python prepare.py --input "$text" > /dev/null  # (the logged run had it)
timed() {  # timed COMMAND...: its evaluation lines, best val and notes, then its wall time
    /usr/bin/time -o $out/time -f "whole command: %e s" "$@" 2>/dev/null | grep -E "^iter|^best val|^note"
    cat $out/time
}
echo "## a small text: the first 50,000 characters"
head -c 50000 "$text" > $out/small.txt
python prepare.py --input $out/small.txt --out_dir $out/data/small | tail -2
echo "## the preset's own command"
timed python train.py --data_dir $out/data/small --out_dir $out/small-preset
echo "## the printed command, evaluating every 50 steps"
timed python train.py --data_dir $out/data/small --out_dir $out/small-printed --max_iters 300 --eval_interval 50 --dropout 0.1
for variant in "200 0.0" "200 0.2" "400 0.2"; do
    set -- $variant
    echo "## --max_iters $1 --eval_interval 50 --dropout $2"
    timed python train.py --data_dir $out/data/small --out_dir $out/small-$1-$2 --max_iters $1 --eval_interval 50 --dropout $2
done
echo "## training longer: python train.py, then python train.py --resume --max_iters 1600"
timed python train.py --out_dir $out/long
timed python train.py --out_dir $out/long --resume --max_iters 1600
echo "## Python's json package: $(python -c 'import json, os; print(os.path.dirname(json.__file__))')/*.py"
cat "$(python -c 'import json, os; print(os.path.dirname(json.__file__))')"/*.py > $out/json-source.txt
python -c "import sys; t = open(sys.argv[1]).read(); print(f'{len(t):,} characters, {len(set(t))} distinct')" $out/json-source.txt
python prepare.py --input $out/json-source.txt --out_dir $out/data/json-source > /dev/null
for dropout in 0.0 0.2; do
    echo "## --max_iters 300 --dropout $dropout"
    timed python train.py --data_dir $out/data/json-source --out_dir $out/json-$dropout --max_iters 300 --dropout $dropout
done
echo "## one process against two torchrun processes (gloo), the same global batch"
tiny="--device cpu --n_layer 2 --n_head 2 --n_embd 32 --block_size 32 --batch_size 8 --grad_accum 2 --max_iters 20
      --eval_interval 10 --eval_iters 4 --warmup_iters 2"
timed python train.py $tiny --out_dir $out/one
timed torchrun --standalone --nproc_per_node=2 train.py $tiny --out_dir $out/two
