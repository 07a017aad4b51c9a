# A busy CPU: train.py's cpu-speedrun for 60 steps, idle and beside one process spinning a core, with the default
# threads and with OMP_NUM_THREADS=1, 3 alternating rounds. Each figure: /usr/bin/time's wall clock of the whole
# command (Python's start, the set-up, 60 steps, one evaluation of 5 batches, the checkpoint).
# Run from the repo root of a CPU-only machine (GNU time), with the text prepared:
#   bash bench/results/2026-12-05-cpu/busy-train.sh
trap 'kill $spinner 2>/dev/null' EXIT  # (a failed run must not leave the spinner spinning)
run() {  # run NAME [env...]
    rm -rf /tmp/busy-run
    /usr/bin/time -f "$1: %e s" env "${@:2}" python train.py --preset cpu-speedrun --max_iters 60 --eval_interval 60 \
        --eval_iters 5 --out_dir /tmp/busy-run > /dev/null 2> /tmp/busy-err || { cat /tmp/busy-err; exit 1; }
    tail -1 /tmp/busy-err
}
for round in 1 2 3; do
    echo "## round $round"
    run "idle, default threads"
    run "idle, OMP_NUM_THREADS=1" OMP_NUM_THREADS=1
    python -c 'while True: pass' & spinner=$!
    sleep 1
    run "busy, default threads"
    run "busy, OMP_NUM_THREADS=1" OMP_NUM_THREADS=1
    kill $spinner
done
