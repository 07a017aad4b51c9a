"""The CUDA paths on a real GPU: bf16 and fp16 training, torch.compile, SDPA's fused kernels,
the KV cache. Skipped where there is no GPU (as in CI); on a GPU machine run them with
    python -m pytest tests/test_cuda.py
"""

import pytest
import torch

import sample
import train
from conftest import TINY
from model import GPT, GPTConfig

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CUDA = [a if a != "cpu" else "cuda" for a in TINY]  # the tiny config, on the GPU


@pytest.fixture(autouse=True)
def exact_float32():
    """train.precision turns on TF32 for the rest of the process; these tests want it off."""
    yield
    torch.set_float32_matmul_precision("highest")


def relative_error(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def make_model(**changes):
    torch.manual_seed(0)
    cfg = dict(block_size=64, vocab_size=65, n_layer=2, n_head=4, n_embd=128, dropout=0.0)
    return GPT(GPTConfig(**{**cfg, **changes})).cuda().eval()


@pytest.mark.parametrize("args", [[], ["--optimizer", "muon", "--position", "rotary", "--qk_norm"],
                                  ["--dtype", "float16", "--optimizer", "adamw"], ["--compile_mode", "reduce-overhead"],
                                  ["--compile_mode", "reduce-overhead", "--grad_accum", "2"]],
                         ids=["classic-bf16", "levers-bf16", "fp16-gradscaler", "cuda-graphs", "cuda-graphs-accum"])
def test_trains_compiled_on_the_gpu_and_samples_on_the_cpu(args, data_dir, tmp_path, capsys):
    out = tmp_path / "o"
    assert train.main(CUDA + ["--data_dir", str(data_dir), "--out_dir", str(out), "--max_iters", "40",
                              "--eval_interval", "20", "--eval_iters", "4"] + args) == 0
    printed = capsys.readouterr().out
    dtype = "float16" if "float16" in args else "bfloat16"  # on CUDA the default is bf16
    assert f"dtype: {dtype}, compile: True" in printed
    losses = [float(line.split("val loss ")[1]) for line in printed.splitlines() if line.startswith("iter ")]
    assert losses[-1] < losses[0] - 0.3  # learned something (on a CPU, float32: 3.77 -> 3.28 for the classic)
    ckpt = train.load_checkpoint(out / "best.pt", "")
    assert all(v.device.type == "cpu" and v.dtype == torch.float32 for v in ckpt["model"].values())
    assert sample.main(["--checkpoint", str(out / "best.pt"), "--device", "cpu", "--max_new_tokens", "30",
                        "--seed", "1"]) == 0


def test_compiled_model_matches_eager():
    model = make_model()
    idx = torch.randint(65, (4, 64), device="cuda")
    eager, _ = model(idx)
    compiled, _ = torch.compile(model)(idx)
    assert relative_error(compiled, eager) < 1e-4


@pytest.mark.parametrize("changes", [{}, dict(position="rotary", qk_norm=True)], ids=["classic", "levers"])
def test_fused_attention_in_bf16_agrees_with_the_written_out_one_in_float32(changes):
    """SDPA picks flash or memory-efficient kernels on a GPU; under bf16 autocast they must
    stay within bf16's rounding of the float32 reference."""
    sdpa, manual = make_model(attention="sdpa", **changes), make_model(attention="manual", **changes)
    idx = torch.randint(65, (4, 64), device="cuda")
    reference, _ = manual(idx)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        fast, _ = sdpa(idx)
    assert relative_error(fast, reference) < 2e-2


def test_kv_cache_gives_the_tokens_of_the_naive_path_on_the_gpu():
    model = make_model(position="rotary", qk_norm=True)
    idx = torch.randint(65, (3, 5), device="cuda")
    naive = model.generate(idx, 59, temperature=0)
    cached = model.generate_cached(idx, 59, temperature=0)
    assert torch.equal(naive, cached)
    seeded = [f(idx, 59, temperature=0.9, top_p=0.9, generator=torch.Generator("cuda").manual_seed(3))
              for f in (model.generate, model.generate_cached)]
    assert torch.equal(*seeded)
