# Alternating: the cpu-speedrun preset as it was (an evaluation every 25 steps), and with --eval_interval 50,
# 3 rounds, each run timed by bench.suite's run_job (its script_line: from the start to the last line).
# From the repo root: PYTHONPATH=. python bench/results/2026-12-04-cpu/eval-attempt/alternate.py OUT DATA_DIR
# (as it ran, OUT was /tmp/ev and DATA_DIR /tmp/cpub/data, and the preset still had eval_interval=25)
import sys

from bench import suite

out, data_dir = sys.argv[1], sys.argv[2]
for r in range(1, 4):
    for name, extra in (("preset", []), ("eval50", ["--eval_interval", "50"])):
        argv = ["train.py", "--preset", "cpu-speedrun", "--device", "cpu", "--data_dir", data_dir,
                "--out_dir", f"{out}/{name}-{r}", *extra]
        code, seconds, lines = suite.run_job(argv, f"{out}/{name}-{r}.log", 300)
        print(f"== {name}-{r} (exit {code}, {seconds:.1f} s): python {' '.join(argv)}")
        print(*(f"   {line}" for line in lines), sep="\n", flush=True)
