"""The CUDA paths on a real GPU: bf16 and fp16 training, torch.compile, CUDA graphs, SDPA's
flash kernel, the KV cache. Skipped where there is no GPU (as in CI); on a GPU machine run
    python -m pytest tests/test_cuda.py
Each test starts with dynamo reset: after 8 compiles in one process dynamo stops compiling
and runs eagerly, and "compiled" would quietly mean eager.
"""

import functools

import pytest
import torch
import torch._dynamo
from torch.nn.attention import SDPBackend, sdpa_kernel

from machinery import checkpoint
import sample
import train
from conftest import TINY
from engine.cuda_graph import StaticKVCache
from engine.decode import generate_cached
from model import GPT, GPTConfig, POSITIONS
from test_generate import half_window_reference
from test_gpu_paths import gradients_of_two_steps

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CUDA = [a if a != "cpu" else "cuda" for a in TINY]  # the tiny config, on the GPU


@pytest.fixture(autouse=True)
def fresh_dynamo_and_exact_float32():
    """A fresh dynamo and counters for each test; precision() (machinery/settings.py) turns on TF32,
    which these tests want off."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    yield
    torch.set_float32_matmul_precision("highest")


def compiled_graphs():
    return torch._dynamo.utils.counters["stats"]["unique_graphs"]


@pytest.fixture
def graph_replays(monkeypatch):
    """Counts CUDA graph replays (torch.compile's CUDA graph trees call CUDAGraph.replay)."""
    replays = []
    original = torch.cuda.CUDAGraph.replay
    monkeypatch.setattr(torch.cuda.CUDAGraph, "replay", lambda graph: replays.append(1) or original(graph))
    return replays


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
def test_trains_compiled_on_the_gpu_and_samples_on_the_cpu(args, data_dir, tmp_path, capsys, graph_replays):
    out = tmp_path / "o"
    assert train.main(CUDA + ["--data_dir", str(data_dir), "--out_dir", str(out), "--max_iters", "40",
                              "--eval_interval", "20", "--eval_iters", "4"] + args) == 0
    printed = capsys.readouterr().out
    dtype = "float16" if "float16" in args else "bfloat16"  # on CUDA the default is bf16
    assert f"dtype: {dtype}, compile: True" in printed
    assert compiled_graphs() >= 1  # compiled for real, not eager after dynamo's recompile limit
    if "reduce-overhead" in args:
        assert len(graph_replays) >= 40  # at least one replay per step
    losses = [float(line.split("val loss ")[1]) for line in printed.splitlines() if line.startswith("iter ")]
    assert losses[-1] < losses[0] - 0.3  # learned something (on a CPU, float32: 3.77 -> 3.28 for the classic)
    ckpt = checkpoint.load_checkpoint(out / "best.pt", "")
    assert all(v.dtype == torch.float32 for v in ckpt["model"].values())  # autocast leaves the weights float32
    if dtype == "float16":  # GradScaler scaled the loss, and most of the 40 steps were taken
        last = checkpoint.load_checkpoint(out / "latest.pt", "")
        assert last["scaler"] and last["scaler"]["scale"] > 1
        assert min(s["step"].item() for s in last["optimizer"]["state"].values()) >= 30
    assert sample.main(["--checkpoint", str(out / "best.pt"), "--device", "cpu", "--max_new_tokens", "30",
                        "--seed", "1"]) == 0


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_a_cpu_run_resumes_on_the_gpu(optimizer, data_dir, tmp_path):
    """The GPU's fused AdamW takes the CPU run's optimizer state and trains on
    (optim.load_state; test_gpu_paths.py checks the logic on a CPU)."""
    common = ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "o"), "--optimizer", optimizer]
    assert train.main(TINY + common) == 0
    assert train.main(CUDA + common + ["--resume", "--max_iters", "20", "--compile", "false"]) == 0


# float32 on purpose (TF32 would blur the comparison), so PyTorch's hint to turn TF32 on does not apply
@pytest.mark.filterwarnings("ignore:TensorFloat32 tensor cores")
def test_gradient_accumulation_under_cuda_graphs_equals_eager(graph_replays):
    """The bug this guards against: backward's .grad living in a CUDA graph's memory, which the
    next micro-batch's replay overwrites (see optim.keep_grads_outside_graphs)."""
    eager = gradients_of_two_steps(None, torch.device("cuda"))
    graphed = gradients_of_two_steps("reduce-overhead", torch.device("cuda"))
    assert compiled_graphs() >= 1 and graph_replays
    for step_eager, step_graphed in zip(eager, graphed, strict=True):
        for a, b in zip(step_eager, step_graphed, strict=True):
            torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-5)


def test_compiled_model_matches_eager():
    model = make_model()
    idx = torch.randint(65, (4, 64), device="cuda")
    eager, _ = model(idx)
    compiled, _ = torch.compile(model)(idx)
    assert compiled_graphs() >= 1
    assert relative_error(compiled, eager) < 1e-4


@pytest.mark.parametrize("changes", [{}, dict(position="rotary", qk_norm=True)], ids=["classic", "levers"])
def test_flash_attention_in_bf16_trains_and_agrees_with_the_written_out_one_in_float32(changes):
    """Only the flash kernel is allowed here, so this fails rather than falls back if training's
    is_causal attention cannot take it; under bf16 autocast it must stay within bf16's rounding
    of the float32 reference."""
    sdpa, manual = make_model(attention="sdpa", **changes), make_model(attention="manual", **changes)
    idx = torch.randint(65, (4, 64), device="cuda")
    reference, _ = manual(idx)
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION), torch.autocast("cuda", dtype=torch.bfloat16):
        fast, _ = sdpa(idx)
        sdpa.train()
        _, loss = sdpa(idx, idx)
        loss.backward()  # the flash kernel's backward too
    assert relative_error(fast, reference) < 2e-2
    assert all(torch.isfinite(p.grad).all() for p in sdpa.parameters())


def test_kv_cache_gives_the_tokens_of_the_naive_path_on_the_gpu():
    model = make_model(position="rotary", qk_norm=True)
    idx = torch.randint(65, (3, 5), device="cuda")
    naive = model.generate(idx, 59, temperature=0)
    cached = generate_cached(model, idx, 59, temperature=0)
    assert torch.equal(naive, cached)
    # model.generate has no top-p (the engine's sampler has): the same loop with it, as test_generate.py's
    seeded = [f(idx, 59, temperature=0.9, top_p=0.9, generator=torch.Generator("cuda").manual_seed(3))
              for f in (functools.partial(half_window_reference, model), functools.partial(generate_cached, model))]
    assert torch.equal(*seeded)


@pytest.mark.parametrize("position", POSITIONS)  # a new name too, as in test_generate.py
@pytest.mark.parametrize("batch", [1, 3])
def test_the_cuda_graph_decode_gives_the_tokens_of_the_kv_cache(position, batch, graph_replays):
    """GraphedStep records one decoding step and replays it: the same tokens as the KV cache's
    eager steps, greedy and sampled, within block_size and past it (150 > 64: two resets)."""
    model = make_model(position=position, qk_norm=position == "rotary")
    idx = torch.randint(65, (batch, 5), device="cuda")
    for options in (dict(temperature=0), dict(temperature=0.9, top_p=0.9)):
        cached, graphed = [generate_cached(model, idx, 150, generator=torch.Generator("cuda").manual_seed(3),
                                                 cuda_graph=cuda_graph, **options) for cuda_graph in (False, True)]
        assert torch.equal(cached, graphed)
    assert len(graph_replays) >= 2 * 150  # recorded and replayed, not run eagerly


def test_sample_uses_the_cuda_graph_on_the_gpu_and_writes_what_the_plain_path_does(run_dir, capsys, graph_replays):
    args = ["--out_dir", str(run_dir), "--device", "cuda", "--max_new_tokens", "40"]
    for num_samples in ("1", "2"):  # streamed, and generated as a batch
        assert sample.main(args + ["--num_samples", num_samples]) == 0
        graphed = capsys.readouterr().out
        assert graph_replays
        graph_replays.clear()
        assert sample.main(args + ["--num_samples", num_samples, "--cuda_graph", "false"]) == 0
        assert capsys.readouterr().out == graphed and not graph_replays


def test_sample_in_bfloat16_replays_a_bfloat16_graph(run_dir, capsys, graph_replays, monkeypatch):
    """--dtype bfloat16 on the GPU: the weights and the static cache in bf16, each step one replay."""
    caches = []
    init = StaticKVCache.__init__
    monkeypatch.setattr(StaticKVCache, "__init__", lambda cache, *a: caches.append(cache) or init(cache, *a))
    args = ["--out_dir", str(run_dir), "--device", "cuda", "--max_new_tokens", "40", "--prompt", "ROMEO:",
            "--num_samples", "1", "--dtype", "bfloat16"]
    assert sample.main(args) == 0
    text = capsys.readouterr().out.split("----------------\n", 1)[1]
    assert text.startswith("ROMEO:") and len(text) == len("ROMEO:") + 40 + 1
    assert len(graph_replays) >= 40 and [c.k.dtype for c in caches] == [torch.bfloat16]
