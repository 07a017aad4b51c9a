# The run behind docs/lessons.md's pictures, and what its attention map says: the CPU default with an
# evaluation every 50 steps, then layer 0's heads on the map's prompt: each head's average weight on the
# character itself (the diagonal) and on the one before (the diagonal below it).
# Run from the repo root of a CPU-only machine, with the text prepared and matplotlib installed:
#   bash bench/results/2026-12-05-cpu/pictures.sh
set -e
run=out/pictures2  # the folder docs/lessons.md names, which the pictures' titles show
if [ -e $run ]; then echo "$run exists: move it aside first" >&2; exit 1; fi
python train.py --out_dir $run --eval_interval 50 2>/dev/null | grep -E "^iter|best val"
python - "$run" <<'PY'
import sys
import torch
from lessons.inside import attention_weights
from machinery.checkpoint import load_model
model, ckpt, _ = load_model(out_dir=sys.argv[1])
chars = ckpt["vocab"]["chars"]
prompt = "ROMEO:\nBut soft, what light"
idx = torch.tensor([[chars.index(c) for c in prompt]])
att = attention_weights(model.eval(), idx)[0][0]  # layer 0: (nh, T, T)
for h in range(att.size(0)):
    print(f"layer 0, head {h}: itself {att[h].diagonal().mean():.2f}, the one before "
          f"{att[h].diagonal(-1).mean():.2f}")
PY
# docs/loss.png, attention.png and embeddings.png (copied there from $run)
python -m lessons.plot loss --out_dir $run
python -m lessons.plot attention --out_dir $run
python -m lessons.plot embeddings --out_dir $run
