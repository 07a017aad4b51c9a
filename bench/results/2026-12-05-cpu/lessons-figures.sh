# The figures of docs/lessons.md outside the ladder: the bigram preset, the best a table can do, the
# signal through rungs 4 to 7 at initialisation (the snippet docs/lessons.md gives), t/h pair
# frequencies, and the baby GPT. Run from the repo root of a CPU-only machine (GNU time), with the text prepared:
#   bash bench/results/2026-12-05-cpu/lessons-figures.sh
set -e
out=/tmp/lessons-figures; rm -rf $out; mkdir -p $out
echo "## python train.py --preset bigram --out_dir $out/bigram (time: /usr/bin/time, the whole command)"
/usr/bin/time -o $out/time -f "whole command: %e s" python train.py --preset bigram --out_dir $out/bigram 2>/dev/null \
    | grep -E "best val|iter .*val"
cat $out/time
echo "## a table by counting: the train pairs + 0.1 each, rows normalised, scored on every val pair"
python - <<'PY'
import json, numpy as np
vocab = json.load(open("data/shakespeare/vocab.json"))
V = vocab["vocab_size"]
dtype = np.dtype(vocab.get("dtype", "uint16"))
train, val = (np.fromfile(f"data/shakespeare/{s}.bin", dtype=dtype).astype(np.int64) for s in ("train", "val"))
counts = np.bincount(train[:-1] * V + train[1:], minlength=V * V).reshape(V, V) + 0.1
logp = np.log(counts / counts.sum(axis=1, keepdims=True))
print(f"val loss of the counted table: {-logp[val[:-1], val[1:]].mean():.4f}")
PY
echo "## how often h follows t, and t follows h, in the whole text"
python - <<'PY'
import json, numpy as np
vocab = json.load(open("data/shakespeare/vocab.json"))
chars = vocab["chars"]
ids = np.concatenate([np.fromfile(f"data/shakespeare/{s}.bin", dtype=np.dtype(vocab.get("dtype", "uint16")))
                      for s in ("train", "val")]).astype(np.int64)
t, h = chars.index("t"), chars.index("h")
after_t, after_h = ids[1:][ids[:-1] == t], ids[1:][ids[:-1] == h]
print(f"P(h | t) = {(after_t == h).mean():.3f}, P(t | h) = {(after_h == t).mean():.3f}")
PY
echo "## the signal snippet of docs/lessons.md"
python -c "import re; print(re.search(r'\`\`\`python\n(import dataclasses.*?)\`\`\`', open('docs/lessons.md').read(), re.S)[1])" \
    > $out/snippet.py
python - < $out/snippet.py  # (from stdin, so that the repo's folder is on the path)
echo "## /usr/bin/time python -m lessons.babygpt --dot $out/baby.dot"
/usr/bin/time -f "whole command: %e s" python -m lessons.babygpt --dot $out/baby.dot 2>&1
echo "## OMP_NUM_THREADS=1 python -m lessons.babygpt --dot $out/baby1.dot (the same sums in another order)"
OMP_NUM_THREADS=1 python -m lessons.babygpt --dot $out/baby1.dot | grep "^state"
