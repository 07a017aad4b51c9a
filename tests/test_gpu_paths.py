"""The logic of the CUDA paths, checked on a CPU: gradient accumulation under every compile
mode, the nan guard's skip decided on the device (fused AdamW and Muon), bf16 detection,
the GPU random states on resume, and a change of dtype on resume. tests/test_cuda.py runs
the same paths on a real GPU."""

import pytest
import torch
import torch._dynamo

from machinery import checkpoint
import config
from machinery import optim
import train
from conftest import TINY
from model import GPT, GPTConfig
from machinery import settings

CPU = torch.device("cpu")


def tiny_model():
    torch.manual_seed(0)
    return GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=16, dropout=0.0))


def gradients_of_two_steps(compile_mode, device=CPU):
    """Two train_steps of 3 micro-batches each -> for each step, the .grad tensors the optimizer saw."""
    model = tiny_model().to(device)
    cfg = config.TrainConfig(optimizer="adamw", grad_clip=0.0, compile_mode=compile_mode or "default")
    optimizer = optim.make_optimizer(model, cfg, device)
    seen = []
    optimizer.step = lambda: seen.append([p.grad.clone() for p in model.parameters()])
    stepped = model if compile_mode is None else torch.compile(model, mode=compile_mode)
    scaler = torch.amp.GradScaler(device.type, enabled=False)
    batches = torch.Generator().manual_seed(1)
    before_backward = []  # the .grad tensors in place before the first backward

    def next_batch():
        if not before_backward:
            before_backward.extend(p.grad for p in model.parameters())
        x = torch.randint(11, (4, 9), generator=batches).to(device)
        return x[:, :-1], x[:, 1:]

    for _ in range(2):
        train.train_step(stepped, optimizer, scaler, next_batch, 1e-3, cfg, train.nullcontext(), 3, device=device)
    # the same buffers throughout, so backward added into them rather than handing over its own
    assert all(g is not None and g is p.grad for g, p in zip(before_backward, model.parameters(), strict=True))
    return seen


@pytest.mark.parametrize("mode", ["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"])
def test_accumulated_gradients_are_the_same_under_each_compile_mode(mode):
    """Under CUDA graphs a .grad that backward created would live in the graph's memory, and the next
    micro-batch would overwrite it; make_optimizer gives every weight a .grad of its own (keep_grads_outside_graphs)."""
    eager = gradients_of_two_steps(None)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = gradients_of_two_steps(mode)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # it really was compiled
    for step_eager, step_compiled in zip(eager, compiled, strict=True):
        for a, b in zip(step_eager, step_compiled, strict=True):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)
    assert not torch.equal(eager[0][0], eager[1][0])  # each step starts from zeroed gradients


# ----------------------------------------------------------------------------
# The nan guard's skip, decided on the device


def one_step(optimizer_kind, found_inf):
    """One step of a fresh model with gradients in place -> (weights before, weights after, optimizer)."""
    model = tiny_model()
    x = torch.randint(11, (2, 8), generator=torch.Generator().manual_seed(2))
    model(x, x)[1].backward()
    params = [p for p in model.parameters() if p.dim() == 2]
    optimizer = (optim.Muon(params, lr=0.02, weight_decay=0.1) if optimizer_kind == "muon"
                 else torch.optim.AdamW(params, lr=1e-3, fused=True))
    before = [p.detach().clone() for p in params]
    if found_inf is not None:
        optimizer.found_inf = torch.tensor(found_inf)
    optimizer.step()
    return before, [p.detach().clone() for p in params], optimizer


@pytest.mark.parametrize("kind", ["muon", "fused-adamw"])
def test_an_optimizer_told_found_inf_skips_on_the_device(kind):
    """What step_unless hands a fused AdamW or Muon on a GPU: 1.0 skips the step, 0.0 takes it."""
    before, after, optimizer = one_step(kind, 1.0)
    assert all(torch.equal(a, b) for a, b in zip(before, after))  # nothing moved
    if kind == "muon":
        assert all(not s["momentum"].any() for s in optimizer.state.values())  # nor did the momentum
    else:
        assert all(s["step"].item() == 0 for s in optimizer.state.values())  # nor the step count
    _, taken, _ = one_step(kind, 0.0)
    _, plain, _ = one_step(kind, None)  # the plain step
    assert not torch.equal(taken[0], before[0])
    for a, b in zip(taken, plain):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("muon", [False, True])
def test_a_cpu_run_resumed_on_a_gpu_keeps_its_fused_step(muon):
    """A CPU run's optimizer state, loaded into the optimizer a GPU run builds (fused AdamW,
    which fused on the CPU too stands in for here): the GPU's flags stay, so step_unless's
    found_inf still skips on the device, instead of an unfused step refusing it."""
    cfg = config.TrainConfig(optimizer="muon" if muon else "adamw")
    model = tiny_model()
    saved = optim.make_optimizer(model, cfg, CPU)
    x = torch.randint(11, (2, 8), generator=torch.Generator().manual_seed(2))
    model(x, x)[1].backward()
    saved.step()
    gpu = optim.make_optimizer(model, cfg, torch.device("cuda"))  # builds nothing on the GPU: fused=True
    optim.load_state(gpu, saved.state_dict())
    parts = gpu.optimizers if muon else [gpu]  # AdamW first
    assert all(group["fused"] for group in parts[0].param_groups)
    before = [p.detach().clone() for p in model.parameters()]
    for opt in parts:
        opt.found_inf = torch.tensor(1.0)  # as step_unless hands it on a GPU: skip
    gpu.step()
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))
    back = optim.make_optimizer(model, cfg, CPU)  # and the other way: a GPU run resumed on a CPU
    optim.load_state(back, gpu.state_dict())
    assert not any(group["fused"] for group in (back.optimizers[0] if muon else back).param_groups)


def test_muon_keeps_nan_gradients_out_when_it_skips():
    model = tiny_model()
    params = [p for p in model.parameters() if p.dim() == 2]
    optimizer = optim.Muon(params, lr=0.02)
    for p in params:
        p.grad = torch.full_like(p, float("nan"))
    before = [p.detach().clone() for p in params]
    optimizer.found_inf = torch.tensor(1.0)
    optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(before, params))
    assert all(torch.isfinite(s["momentum"]).all() for s in optimizer.state.values())


# ----------------------------------------------------------------------------
# bf16: native only


def test_auto_dtype_takes_float16_where_bf16_would_be_emulated(monkeypatch):
    """A V100 or T4: PyTorch says bf16 works if emulation counts, and no if it does not."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    cuda = torch.device("cuda")
    assert settings.pick_dtype("auto", cuda) == torch.float16
    with pytest.raises(settings.UserError, match="no native bfloat16 .* use --dtype float16"):
        settings.pick_dtype("bfloat16", cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # an A100
    assert settings.pick_dtype("auto", cuda) == torch.bfloat16


# ----------------------------------------------------------------------------
# Random states on a GPU


def gpu_states(monkeypatch, saved_by):
    """Random states as `saved_by` GPU processes would save them; torch.cuda's setter records calls."""
    generator = torch.Generator().manual_seed(0)
    states = checkpoint.rng_states(generator)
    states["cuda"] = torch.tensor([0], dtype=torch.uint8)
    if saved_by > 1:
        states["torch_ranks"] = [torch.get_rng_state()] * saved_by
        states["cuda_ranks"] = [torch.tensor([rank], dtype=torch.uint8) for rank in range(saved_by)]
    restored = []
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: restored.append((int(state[0]), device)))
    return states, generator, restored


def test_each_gpu_process_restores_its_own_random_state(monkeypatch):
    states, generator, restored = gpu_states(monkeypatch, saved_by=4)
    for rank in range(4):
        assert checkpoint.set_rng_states(states, generator, rank, 4, torch.device("cuda", rank)) == []
    assert restored == [(rank, torch.device("cuda", rank)) for rank in range(4)]


def test_fewer_gpus_on_resume_is_a_note_not_a_traceback(monkeypatch):
    states, generator, restored = gpu_states(monkeypatch, saved_by=4)
    notes = checkpoint.set_rng_states(states, generator, 0, 1, torch.device("cuda", 0))
    assert notes == ["note: the run was saved by 4 process(es) and resumes in 1: only process 0 keeps its "
                     "dropout random state"]
    assert restored == [(0, torch.device("cuda", 0))]
    notes = checkpoint.set_rng_states(states, generator, 0, 1, CPU)  # no GPU at all
    assert "the run was saved on a GPU and resumes on cpu" in notes[-1]
    assert len(restored) == 1


def test_a_gpu_state_round_trips_where_there_is_a_gpu(monkeypatch):
    """rng_states asks for this process's GPU alone (get_rng_state_all would save every visible one)."""
    asked = []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: asked.append(device) or torch.tensor([7]))
    states = checkpoint.rng_states(torch.Generator(), torch.device("cuda", 1))
    assert asked == [torch.device("cuda", 1)] and int(states["cuda"][0]) == 7 and "cuda_ranks" not in states


# ----------------------------------------------------------------------------
# A change of dtype on resume


def test_resuming_in_float16_after_float32_and_back(data_dir, tmp_path, capsys):
    args = TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "o"), "--optimizer", "adamw"]
    assert train.main(args + ["--max_iters", "4"]) == 0
    assert train.main(args + ["--resume", "--max_iters", "8", "--dtype", "float16"]) == 0
    assert "note: float16's loss scale starts afresh" in capsys.readouterr().out
    ckpt = checkpoint.load_checkpoint(tmp_path / "o" / "latest.pt", "")
    assert ckpt["iter"] == 8 and ckpt["scaler"]["scale"] > 1  # it scaled the loss
    assert train.main(args + ["--resume", "--max_iters", "12", "--dtype", "float32"]) == 0
    assert checkpoint.load_checkpoint(tmp_path / "o" / "latest.pt", "")["iter"] == 12


def test_without_triton_a_gpu_trains_uncompiled_and_says_so(monkeypatch, capsys):
    """torch.compile on a GPU writes Triton kernels: without Triton (Windows, often) the default
    trains eagerly with a note, and an explicit --compile true is a one-line error."""
    monkeypatch.setattr(settings, "has_triton", lambda: False)
    monkeypatch.setattr(settings, "has_cpp_compiler", lambda: True)
    cuda = torch.device("cuda")
    assert settings.use_compile(config.TrainConfig(), cuda) is False
    assert "note: no Triton here, so torch.compile is off" in capsys.readouterr().out
    with pytest.raises(settings.UserError, match="--compile true on a GPU needs Triton"):
        settings.use_compile(config.TrainConfig(compile=True), cuda)
    assert settings.use_compile(config.TrainConfig(compile=True), torch.device("cpu"))  # the CPU needs no Triton
    monkeypatch.setattr(settings, "has_triton", lambda: True)
    assert settings.use_compile(config.TrainConfig(), cuda) and not capsys.readouterr().out
    assert settings.use_compile(config.TrainConfig(compile=False), cuda) is False  # --compile false is kept on a GPU


def test_a_compile_cache_folder_that_cannot_be_written_is_one_line(tmp_path, monkeypatch):
    """TORCHINDUCTOR_CACHE_DIR at a path that cannot be a folder: a traceback from inside the compiler."""
    monkeypatch.setattr(settings, "has_cpp_compiler", lambda: True)
    (tmp_path / "a-file").write_text("")
    for cache, why in ((tmp_path / "a-file", "File exists"), (tmp_path / "a-file" / "in-it", "Not a directory")):
        monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(cache))
        with pytest.raises(settings.UserError, match=f"^cannot make the folder {cache} \\({why}\\) — point "
                                                     f"TORCHINDUCTOR_CACHE_DIR at a folder torch.compile can write its "
                                                     f"kernels in, or unset it$"):
            settings.use_compile(config.TrainConfig(compile=True), torch.device("cpu"))
        assert settings.use_compile(config.TrainConfig(), torch.device("cpu")) is False  # not compiling: not looked at
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "new" / "cache"))  # one it can make: made
    assert settings.use_compile(config.TrainConfig(compile=True), torch.device("cpu"))
    assert (tmp_path / "new" / "cache").is_dir()


def test_without_a_cpp_compiler_compile_on_a_cpu_is_one_line(monkeypatch):
    """torch.compile builds a CPU's kernels with a C++ compiler: without one (a Mac without Xcode's tools, say),
    the first step failed deep inside the compiler. Here torch looks for one that does not exist."""
    inductor_config = pytest.importorskip("torch._inductor.config")
    if settings.has_cpp_compiler() is None:  # (PyTorch 2.4's cpp_builder has no get_cpp_compiler)
        pytest.skip("this PyTorch has no way to ask for its C++ compiler")
    monkeypatch.delenv("TORCH_INDUCTOR_INSTALL_GXX", raising=False)
    # (inductor's own patch, not monkeypatch's: under PyTorch 2.14 the latter's undo left cpp.cxx unset, and a
    # later test's compile check failed in an AttributeError)
    ours = inductor_config.cpp.cxx
    with inductor_config.patch({"cpp.cxx": (None, "/no/such/g++")}):
        assert settings.has_cpp_compiler() is False
        with pytest.raises(settings.UserError, match="--compile on a CPU needs a C\\+\\+ compiler, and torch.compile "
                           "finds none .* — install one, or leave out --compile"):
            settings.use_compile(config.TrainConfig(compile=True), torch.device("cpu"))
        assert settings.use_compile(config.TrainConfig(), torch.device("cpu")) is False  # off by default: not asked
    assert inductor_config.cpp.cxx == ours
