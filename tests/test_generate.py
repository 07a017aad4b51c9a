"""Generation: the KV-cache path against the naive one, and the sampling filters on hand-made numbers."""

import math

import pytest
import torch
import torch.nn.functional as F

import model as model_module
from engine.cuda_graph import GraphedStep, StaticKVCache
from engine.decode import cache_gap, forward_cached, generate_cached, stream
from engine.kv_cache import KVCache
from engine.sampling import keep_top_k, keep_top_p, sample_next
from model import GPT, GPTConfig, causal_mask


def make_model(attention="sdpa", block_size=16, n_head=2, n_embd=16, vocab_size=11, seed=0):
    torch.manual_seed(seed)
    cfg = GPTConfig(block_size=block_size, vocab_size=vocab_size, n_layer=2, n_head=n_head, n_embd=n_embd,
                    attention=attention)
    return GPT(cfg).eval()


def seeded(seed=7):
    return torch.Generator().manual_seed(seed)


def test_causal_mask():
    assert causal_mask(3, 3).tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    assert causal_mask(2, 4).tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]  # the last 2 of 4 positions
    assert causal_mask(1, 5).all()  # one new position sees everything before it


@pytest.mark.parametrize("attention", ["sdpa", "manual"])
@pytest.mark.parametrize("B, T, chunks, n_head, n_embd", [(1, 16, [16], 1, 8), (2, 16, [5, 1, 10], 2, 16),
                                                          (3, 12, [1] * 12, 4, 32), (2, 9, [4, 5], 2, 8)])
def test_cached_logits_equal_full_forward(attention, B, T, chunks, n_head, n_embd):
    """Feeding the text through the cache in chunks gives the logits of one full forward."""
    model = make_model(attention, n_head=n_head, n_embd=n_embd)
    idx = torch.randint(11, (B, T))
    full, _ = model(idx)
    cache, pieces, start = KVCache(model.config, B), [], 0
    for size in chunks:
        logits = forward_cached(model, idx[:, start:start + size], cache)
        pieces.append(logits)
        start += size
    assert cache.length == T
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=1e-5, atol=1e-5)
    assert cache_gap(model) < 1e-5  # sample.py's check (machinery/settings.py): rounding's, far below its 1e-3


def test_the_cache_gap_of_a_change_the_cache_misses_is_the_logits_own_size():
    """Each position given the one before it, outside attention (the cache feeds each new character alone), and a
    sliding window of 10 where manual attention makes its own mask (a cached step passes the cache's): changes the
    cache misses, which sample.py then refuses. The window shows only past position 10: the check covers a whole
    window, block_size (it covered 8 positions, and passed a window of 16 in a block of 64)."""
    model = make_model("manual")  # block_size 16
    forward = model_module.Block.forward

    def shifted(self, x, *rest):
        return forward(self, x + F.pad(x, (0, 0, 1, 0))[:, :-1], *rest)  # x (B, T, C), plus x one position back

    causal = model_module.causal_mask

    def windowed(T_q, T_k, device=None):  # query i sees keys i - 9 .. i only
        return causal(T_q, T_k, device).triu(diagonal=T_k - T_q - 9)
    for where, name, change in ((model_module.Block, "forward", shifted), (model_module, "causal_mask", windowed)):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(where, name, change)
            assert cache_gap(model) > 0.01, name
    assert cache_gap(model) < 1e-5


@pytest.mark.parametrize("attention", ["sdpa", "manual"])
@pytest.mark.parametrize("B, prompt_len, block_size", [(1, 1, 16), (3, 5, 16), (2, 8, 32)])
@pytest.mark.parametrize("sampling", [dict(temperature=0), dict(temperature=1.0),
                                      dict(temperature=0.7, top_k=4), dict(temperature=1.3, top_p=0.8)],
                         ids=["greedy", "t1", "topk", "topp"])
def test_cached_generate_equals_naive_within_block_size(attention, B, prompt_len, block_size, sampling):
    model = make_model(attention, block_size=block_size)
    idx = torch.randint(11, (B, prompt_len))
    n = block_size - prompt_len  # fills the window exactly, never past it
    if "top_p" in sampling:  # model.generate has no top-p (the engine's sampler has): the same loop with it
        naive = half_window_reference(model, idx, n, generator=seeded(), **sampling)
    else:
        naive = model.generate(idx, n, generator=seeded(), **sampling)
    cached = generate_cached(model, idx, n, generator=seeded(), **sampling)
    assert cached.shape == (B, block_size)
    assert torch.equal(naive, cached)


def half_window_reference(model, idx, max_new_tokens, **sampling):
    """The past-block_size strategy of engine.decode.stream, written the slow, obvious way: the model
    reads idx[:, start:] in full each step, and when that would exceed block_size, start
    jumps so that only the last half window is left."""
    block_size, keep = model.config.block_size, max(1, model.config.block_size // 2)
    start = max(0, idx.size(1) - block_size)
    for _ in range(max_new_tokens):
        if idx.size(1) - start > block_size:
            start = idx.size(1) - keep
        logits, _ = model(idx[:, start:])
        idx = torch.cat((idx, sample_next(logits[:, -1], **sampling)), dim=1)
    return idx


@pytest.mark.parametrize("attention", ["sdpa", "manual"])
@pytest.mark.parametrize("block_size, prompt_len", [(16, 3), (15, 1), (8, 20)], ids=["even", "odd", "long-prompt"])
@pytest.mark.parametrize("temperature", [0, 1.0])
def test_past_block_size_matches_the_reference(attention, block_size, prompt_len, temperature):
    model = make_model(attention, block_size=block_size)
    idx = torch.randint(11, (2, prompt_len))
    n = 3 * block_size
    reference = half_window_reference(model, idx, n, temperature=temperature, generator=seeded())
    cached = generate_cached(model, idx, n, temperature=temperature, generator=seeded())
    assert cached.shape == (2, prompt_len + n)
    assert torch.equal(reference, cached)


def test_long_generation_keeps_the_cache_size_fixed(monkeypatch):
    """3x block_size tokens: the cache is allocated once, at 2 x n_layer x B x block_size x n_embd."""
    model = make_model(block_size=16, n_embd=16)
    allocations, lengths = [], []
    append = KVCache.append

    def spy(self, layer, k, v):
        first = self.k is None
        result = append(self, layer, k, v)
        if first:
            allocations.append(self.k.numel() + self.v.numel())
        lengths.append(result[0].size(2))
        return result

    monkeypatch.setattr(KVCache, "append", spy)
    out = generate_cached(model, torch.zeros(3, 1, dtype=torch.long), 48, temperature=0)
    assert out.shape == (3, 49)
    assert allocations == [2 * 2 * 3 * 16 * 16]
    assert max(lengths) == 16 and min(lengths) == 1


def test_stream_yields_one_column_per_step():
    model = make_model()
    idx = torch.randint(11, (2, 3))
    columns = list(stream(model, idx, 5, temperature=0))
    assert len(columns) == 5 and all(c.shape == (2,) for c in columns)
    assert torch.equal(torch.stack(columns, dim=1), generate_cached(model, idx, 5, temperature=0)[:, 3:])
    assert list(stream(model, idx, 0)) == []


def test_same_seed_same_tokens():
    model = make_model()
    idx = torch.zeros(2, 1, dtype=torch.long)
    a = generate_cached(model, idx, 40, generator=seeded(1))
    b = generate_cached(model, idx, 40, generator=seeded(1))
    c = generate_cached(model, idx, 40, generator=seeded(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_temperature_zero_is_argmax():
    logits = torch.tensor([[0.1, 3.0, 2.9, -1.0], [5.0, 0.0, 0.0, 4.0]])
    assert sample_next(logits, temperature=0).tolist() == [[1], [0]]


def test_temperature_sharpens_before_top_p_cuts():
    """Dividing by 0.5 squares the probabilities (then renormalises): 0.5 and 0.3 become 0.685 and
    0.247. The cut sees those, so top-p 0.6 keeps the likeliest alone (on the raw scores it kept two)."""
    logits = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    sharpened = torch.bincount(sample_next(logits.expand(20000, 4), temperature=0.5, generator=seeded()).flatten(),
                               minlength=4)
    assert math.isclose(sharpened[0] / 20000, 0.25 / 0.365, abs_tol=0.02)  # 0.5² / (0.5² + 0.3² + 0.15² + 0.05²)
    cut = sample_next(logits.expand(2000, 4), temperature=0.5, top_p=0.6, generator=seeded())
    assert cut.eq(0).all()


def test_bf16_logits_are_drawn_from_a_float32_softmax():
    """sample.py --dtype bfloat16 gives bf16 logits: divided by the temperature and softmaxed in bf16, some of
    these 2,000 draws would differ from the float32 ones (its 8-bit mantissa rounds the probabilities)."""
    torch.manual_seed(0)
    logits = (3 * torch.randn(2000, 65)).bfloat16()  # (B, V)
    in_float32 = sample_next(logits.float(), temperature=0.7, generator=seeded())
    assert torch.equal(sample_next(logits, temperature=0.7, generator=seeded()), in_float32)
    in_bf16 = torch.multinomial(F.softmax(logits / 0.7, dim=-1), 1, generator=seeded())
    assert not torch.equal(in_bf16, in_float32)  # (10 of them, on the Intel Xeon VM of 2026-12-06)


def kept(logits):
    return [torch.isfinite(row).nonzero().flatten().tolist() for row in logits]


def test_top_k_keeps_exactly_the_k_best():
    logits = torch.tensor([[0.1, 3.0, 2.0, -1.0, 0.5], [4.0, 3.0, 2.0, 1.0, 0.0]])
    assert kept(keep_top_k(logits, 1)) == [[1], [0]]
    assert kept(keep_top_k(logits, 3)) == [[1, 2, 4], [0, 1, 2]]
    assert kept(keep_top_k(logits, 5)) == kept(keep_top_k(logits, 99)) == [[0, 1, 2, 3, 4]] * 2
    assert torch.equal(keep_top_k(logits, 3)[0, [1, 2, 4]], logits[0, [1, 2, 4]])  # the kept scores unchanged


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([[0.05, 0.5, 0.15, 0.3], [0.25, 0.25, 0.25, 0.25]])  # sorted: 0.5, 0.3, 0.15, 0.05
    logits = probs.log()
    assert kept(keep_top_p(logits, 0.4))[0] == [1]  # the likeliest alone reaches 0.4
    assert kept(keep_top_p(logits, 1e-50))[0] == [1]  # p rounds to 0 in float32: the likeliest still stays
    assert kept(keep_top_p(logits, 0.75))[0] == [1, 3]  # 0.5 + 0.3
    assert kept(keep_top_p(logits, 0.85))[0] == [1, 2, 3]  # 0.5 + 0.3 + 0.15
    assert kept(keep_top_p(logits, 0.99))[0] == [0, 1, 2, 3]
    assert kept(keep_top_p(logits, 1.0)) == [[0, 1, 2, 3]] * 2
    assert [len(kept(keep_top_p(logits, p))[1]) for p in (0.2, 0.4, 0.6, 0.9)] == [1, 2, 3, 4]  # ties: count
    assert [len(kept(keep_top_p(logits, p))[1]) for p in (0.25, 0.5, 0.75)] == [1, 2, 3]  # reaching p exactly is enough


def test_top_k_cuts_before_top_p():
    """Of 0.4, 0.35, 0.25: top-k 2 keeps 0.4 and 0.35, renormalised to 0.53 and 0.47, so top-p 0.5
    keeps the first alone. In the other order, top-p 0.5 would keep both, and top-k 2 both again."""
    logits = torch.tensor([[0.4, 0.35, 0.25]]).log().expand(200, 3)
    assert (sample_next(logits, top_k=2, top_p=0.5, generator=seeded()) == 0).all()


def test_top_p_renormalises_what_it_keeps():
    logits = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    counts = torch.bincount(sample_next(logits.expand(20000, 4), top_p=0.75, generator=seeded()).flatten(),
                            minlength=4)
    assert counts[2] == counts[3] == 0
    assert math.isclose(counts[0] / 20000, 0.5 / 0.8, abs_tol=0.02)


@pytest.mark.parametrize("attention", ["sdpa", "manual"])
@pytest.mark.parametrize("position", model_module.POSITIONS)  # a scheme added to model.py is tested here at once
def test_every_position_scheme_continues_from_the_cache(attention, position):
    """Positions go on from the cache's length: chunked cached logits equal one full forward, and
    greedy generation with and without the cache agrees (here with the levers QK-norm and ReLU² on)."""
    torch.manual_seed(0)
    cfg = GPTConfig(block_size=16, vocab_size=11, n_layer=2, n_head=2, n_embd=16, attention=attention,
                    position=position, qk_norm=True, activation="relu2")
    model = GPT(cfg).eval()
    idx = torch.randint(11, (2, 16))
    full, _ = model(idx)
    cache, pieces, start = KVCache(cfg, 2), [], 0
    for size in (5, 1, 10):
        pieces.append(forward_cached(model, idx[:, start:start + size], cache))
        start += size
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=1e-5, atol=1e-5)
    prompt = idx[:, :3]
    assert torch.equal(model.generate(prompt, 13, temperature=0), generate_cached(model, prompt, 13, temperature=0))


@pytest.mark.parametrize("attention", ["sdpa", "manual"])
@pytest.mark.parametrize("position", model_module.POSITIONS)
@pytest.mark.parametrize("prompt_len, n", [(3, 13), (3, 50), (20, 10)], ids=["within", "past", "long-prompt"])
def test_the_cuda_graph_step_gives_the_tokens_of_the_kv_cache(attention, position, prompt_len, n):
    """cuda_graph=True off a GPU runs the step it would record (GraphedStep: a StaticKVCache that
    reads every slot through a mask, the prompt fed one character at a time) eagerly. Its
    arithmetic must give the KV cache's tokens, within block_size and past it; test_cuda.py
    checks the recorded graph on a GPU."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=16, vocab_size=11, n_layer=2, n_head=2, n_embd=16, attention=attention,
                          position=position, qk_norm=position == "rotary")).eval()
    idx = torch.randint(11, (2, prompt_len))
    cached = generate_cached(model, idx, n, temperature=1.0, generator=seeded())
    stepped = generate_cached(model, idx, n, temperature=1.0, generator=seeded(), cuda_graph=True)
    assert torch.equal(cached, stepped)
    # and the logits themselves, step by step along that text: equal to float rounding
    context = cached[:, -model.config.block_size:]
    step = GraphedStep(model, 2)
    with torch.inference_mode():
        for t in range(1, context.size(1) + 1):
            torch.testing.assert_close(step(context[:, t - 1:t]), model(context[:, :t])[0][:, -1],
                                       rtol=1e-5, atol=1e-5)


def test_the_cuda_graph_step_of_a_bigram_gives_its_tokens():
    """A bigram has no keys or values to cache: the step only counts positions."""
    torch.manual_seed(0)
    model = model_module.Bigram(GPTConfig(model="bigram", vocab_size=11, block_size=16)).eval()
    with torch.no_grad():
        model.table.weight.normal_()  # (a fresh bigram is uniform: any path would pass)
    idx = torch.randint(11, (2, 3))
    cached = generate_cached(model, idx, 40, generator=seeded())
    assert torch.equal(cached, generate_cached(model, idx, 40, generator=seeded(), cuda_graph=True))


def test_a_cache_past_block_size_is_refused():
    """Positions past block_size have no meaning (learned ones: no row; rotary: angles never trained): a
    programming error in the caller, so an assert."""
    cache = KVCache(make_model(block_size=8).config, 1)
    cache.length = 6
    assert cache.positions(2).tolist() == [6, 7]
    with pytest.raises(AssertionError, match="9 positions, but the model knows only block_size 8"):
        cache.positions(3)


def test_a_graph_of_a_training_or_hooked_model_is_refused():
    """A recorded graph would freeze dropout's mask, or a hook's records, into every replay."""
    with pytest.raises(AssertionError, match="in eval mode, unhooked"):
        GraphedStep(make_model().train(), 1)
    hooked = make_model()
    hooked.lm_head.register_forward_hook(lambda *args: None)
    with pytest.raises(AssertionError, match="in eval mode, unhooked"):
        GraphedStep(hooked, 1)


def test_the_static_cache_hides_the_slots_not_written_yet():
    """The StaticKVCache's mask: slot s is visible at position pos when s <= pos. A slot after
    pos holds garbage (the last window's keys, or zeros), and must not count."""
    model = make_model(block_size=8)
    cache = StaticKVCache(model.config, 1, torch.device("cpu"), torch.float32)
    cache.pos.fill_(2)
    assert cache.mask(1).tolist() == [[True, True, True, False, False, False, False, False]]
    # fill every slot with large garbage (finite: 0 x nan would be nan even where masked out);
    # a slot that leaked into attention would move the logits far
    cache.k.copy_(100 * torch.randn_like(cache.k))
    cache.v.copy_(100 * torch.randn_like(cache.v))
    for position, token in enumerate([3, 1, 4]):
        cache.pos.fill_(position)
        cache.length = position
        logits, _ = model(torch.tensor([[token]]), cache=cache)
    torch.testing.assert_close(logits[0, -1], model(torch.tensor([[3, 1, 4]]))[0][0, -1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attention", ["sdpa", "manual"])
def test_a_fresh_static_cache_has_no_nan_to_leak_through_its_mask(attention, monkeypatch):
    """Its unwritten slots are zeros, not empty memory: a nan there comes through the mask (0 x nan is nan).
    In deterministic mode, torch fills empty memory with nan, as a GPU's reused memory may hold it."""
    monkeypatch.setattr(torch.utils.deterministic, "fill_uninitialized_memory", True)  # (the default, made sure of)
    model = make_model(attention=attention, block_size=8)
    was = torch.are_deterministic_algorithms_enabled()
    try:
        torch.use_deterministic_algorithms(True)
        cache = StaticKVCache(model.config, 1, torch.device("cpu"), torch.float32)
        for position, token in enumerate([3, 1, 4]):
            cache.pos.fill_(position)
            cache.length = position
            logits, _ = model(torch.tensor([[token]]), cache=cache)
    finally:
        torch.use_deterministic_algorithms(was)
    torch.testing.assert_close(logits[0, -1], model(torch.tensor([[3, 1, 4]]))[0][0, -1], rtol=1e-5, atol=1e-5)


def test_the_cuda_graph_step_reads_a_whole_prompt_character_by_character():
    """A prompt of several characters in one call: the logits after its last, as the model gives them. (Sampled
    tokens hardly tell: an untrained model's logits are so flat that a wrong context rarely changes a draw.)"""
    model = make_model()
    prompt = torch.tensor([[2, 9, 3, 5], [7, 1, 0, 2]])
    step = GraphedStep(model, 2)
    with torch.inference_mode():
        torch.testing.assert_close(step(prompt), model(prompt)[0][:, -1], rtol=1e-5, atol=1e-5)
        more = torch.tensor([[4, 4], [6, 8]])  # and a second piece after it, from the cache
        whole = torch.cat((prompt, more), dim=1)
        torch.testing.assert_close(step(more), model(whole)[0][:, -1], rtol=1e-5, atol=1e-5)
