# prepare.py's command for a small text, before and after it asked for --eval_iters: the first 50,000 characters
# of tiny-shakespeare, the printed command with the preset's 50 evaluation batches and with 10, alternating, two
# rounds. Times: /usr/bin/time's wall clock of each whole command. Run from the repo root of a CPU-only machine
# (GNU time), with a copy of tiny-shakespeare at input.txt, or its path as $1:
#   bash bench/results/2026-12-05-cpu/small-text-eval.sh [input.txt]
set -eo pipefail
text=${1:-input.txt}
out=/tmp/small-text-eval; rm -rf $out; mkdir -p $out
head -c 50000 "$text" > $out/small.txt
python prepare.py --input $out/small.txt --out_dir $out/data/small | tail -1
for round in 1 2; do
    for eval_iters in 50 10; do
        echo "## round $round: --eval_iters $eval_iters"
        /usr/bin/time -o $out/time -f "whole command: %e s" python train.py --data_dir $out/data/small \
            --out_dir $out/run-$round-$eval_iters --max_iters 300 --eval_interval 75 --eval_iters $eval_iters \
            --dropout 0.1 2>/dev/null | grep -E "^iter|^best val|^wall"
        cat $out/time
    done
done
