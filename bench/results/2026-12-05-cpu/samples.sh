# The samples quoted in the README (the CPU default's) and in docs/lessons.md (the bigram's): each model
# trained as the README says, then `python sample.py` with its defaults (seed 1337). Run from the repo root of a
# CPU-only machine, with the text prepared:  bash bench/results/2026-12-05-cpu/samples.sh
set -e
out=/tmp/samples; rm -rf $out
echo "# $(date -u), $(lscpu | grep -m1 'Model name' | sed 's/ \+/ /g'), $(nproc) cores; PyTorch $(python -c 'import torch; print(torch.__version__)'); commit $(git rev-parse --short HEAD)"
echo "## python train.py --out_dir $out/gpt (its last lines), then python sample.py --out_dir $out/gpt"
python train.py --out_dir $out/gpt 2>/dev/null | grep -E "best val|wall time"
python sample.py --out_dir $out/gpt 2>&1
echo "## python train.py --preset bigram --out_dir $out/bigram (its last lines), then python sample.py --out_dir $out/bigram --num_samples 1 --max_new_tokens 200"
python train.py --preset bigram --out_dir $out/bigram 2>/dev/null | grep -E "best val|wall time"
python sample.py --out_dir $out/bigram --num_samples 1 --max_new_tokens 200 2>&1
