# The figures of docs/errors.md's "sizes too big for the memory" and docs/lessons.md's th/ht counts: each
# command as the docs give it, its one line of stderr kept. The refusals depend on the model's shape, not its
# weights, so one step of `python train.py` (the CPU default's shape) stands in for the finished run. Run from
# the repo root, with the text prepared (python prepare.py):
#   bash bench/results/2026-12-06-xeon/doc-figures.sh
out=/tmp/doc-figures; rm -rf $out; mkdir -p $out
python train.py --max_iters 1 --warmup_iters 0 --out_dir $out/run > /dev/null 2>&1 || exit 1
said() {  # the command, then its exit code and the last line of its stderr
    echo "\$ $*"
    "$@" > /dev/null 2> $out/err
    echo "exit $?: $(tail -1 $out/err)"
}
echo "## machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), memory: $(free -b | awk '/Mem:/ {print $2}') bytes"
echo "## sizes too big for the memory (docs/errors.md); out/best.pt there is $out/run/best.pt here"
said python train.py --batch_size 100000000 --out_dir $out/big
said python train.py --n_layer 48 --n_embd 4096 --n_head 32 --out_dir $out/wide
said python sample.py --out_dir $out/run --num_samples 100000000
said python -m bench.speed sample --checkpoint $out/run/best.pt --batch_size 100000 --max_new_tokens 10
said python -m bench.score $out/run/best.pt --batch_size 10000000
echo "## how often th and ht occur in the text (docs/lessons.md): train.bin and val.bin, decoded, are the text"
python - <<'PY'
import json, numpy as np
vocab = json.load(open("data/shakespeare/vocab.json"))
ids = np.concatenate([np.fromfile(f"data/shakespeare/{s}.bin", dtype=np.dtype(vocab.get("dtype", "uint16")))
                      for s in ("train", "val")])
text = "".join(vocab["chars"][i] for i in ids)
print(f"{len(text):,} characters; text.count('th') = {text.count('th'):,}, text.count('ht') = {text.count('ht'):,}")
PY
