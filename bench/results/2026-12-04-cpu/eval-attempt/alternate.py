# alternating: the cpu-speedrun preset as it is, and with an evaluation every 50 steps instead of 25
import sys, time
sys.path.insert(0, "/work/main")
from bench import suite
out = sys.argv[1]
for r in range(1, 4):
    for name, extra in (("preset", []), ("eval50", ["--eval_interval", "50"])):
        argv = ["train.py", "--preset", "cpu-speedrun", "--device", "cpu", "--data_dir", "/tmp/cpub/data",
                "--out_dir", f"{out}/{name}-{r}", *extra]
        code, seconds, lines = suite.run_job(argv, f"{out}/{name}-{r}.log", 300)
        print(f"== {name}-{r} (exit {code}, {seconds:.1f} s): python {' '.join(argv)}")
        print(*(f"   {l}" for l in lines), sep="\n", flush=True)
