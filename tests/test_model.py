"""model.py against independent truths: SDPA, hand counts, causality, and learning."""

import functools
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import model as model_module
from lessons.inside import recorded, watch
from model import GPT, GPTConfig
from machinery import settings
from machinery.bookkeeping import count_params


def tiny(**kw):
    return GPTConfig(**{**dict(block_size=16, vocab_size=11, n_layer=2, n_head=2, n_embd=16), **kw})


# the speed levers (each off in the classic recipe), alone and together
LEVERS = [dict(position="rotary"), dict(qk_norm=True), dict(activation="relu2"),
          dict(position="rotary", qk_norm=True, activation="relu2", bias=True)]
LEVER_IDS = ["+".join(f"{k}={v}" for k, v in d.items()) for d in LEVERS]


# and a fork's new position scheme (the two here are classic's and one of the LEVERS)
NEW_POSITIONS = [dict(position=p) for p in model_module.POSITIONS if p not in ("learned", "rotary")]


@pytest.mark.parametrize("levers", [{}] + LEVERS + NEW_POSITIONS,
                         ids=["classic"] + LEVER_IDS + [f"position={d['position']}" for d in NEW_POSITIONS])
@pytest.mark.parametrize("attention", ["sdpa", "manual"])
def test_causal(attention, levers):
    """Changing the token at t never changes the logits before t (and does change them at t)."""
    torch.manual_seed(0)
    model = GPT(tiny(attention=attention, **levers)).eval()
    idx = torch.randint(11, (2, 16))
    logits, _ = model(idx)
    for t in (0, 5, 15):
        changed = idx.clone()
        changed[:, t] = (changed[:, t] + 1) % 11
        logits2, _ = model(changed)
        assert torch.equal(logits[:, :t], logits2[:, :t])
        assert not torch.allclose(logits[:, t], logits2[:, t])


@pytest.mark.parametrize("B, T, n_head, n_embd", [(1, 1, 1, 8), (2, 7, 2, 16), (3, 32, 4, 32), (2, 64, 8, 64)])
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("position", model_module.POSITIONS)  # a fork's new scheme, too
def test_written_out_attention_equals_sdpa(B, T, n_head, n_embd, mode, position):
    """Same weights, both attention paths: same outputs and same gradients (float64)."""
    torch.manual_seed(0)
    cfg = tiny(block_size=64, n_head=n_head, n_embd=n_embd, dropout=0.0, position=position)
    sdpa = GPT(cfg).double()
    manual = GPT(GPTConfig(**{**cfg.__dict__, "attention": "manual"})).double()
    manual.load_state_dict(sdpa.state_dict())
    idx, targets = torch.randint(11, (B, T)), torch.randint(11, (B, T))
    results = []
    for model in (sdpa, manual):
        model.train(mode == "train")
        logits, loss = model(idx, targets)
        loss.backward()
        results.append((logits, [p.grad for p in model.parameters()]))
    (logits_a, grads_a), (logits_b, grads_b) = results
    torch.testing.assert_close(logits_a, logits_b, rtol=1e-10, atol=1e-10)
    for ga, gb in zip(grads_a, grads_b):
        torch.testing.assert_close(ga, gb, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("attention", ["sdpa", "manual"])
def test_dropout_only_in_training(attention):
    torch.manual_seed(0)
    model = GPT(tiny(dropout=0.5, attention=attention))
    idx = torch.randint(11, (2, 16))
    model.train()
    assert not torch.equal(model(idx)[0], model(idx)[0])  # a fresh mask each call
    model.eval()
    assert torch.equal(model(idx)[0], model(idx)[0])


# where dropout acts: a module's name (its ending), or the number the fused kernel takes (attn.dropout_p)
DROPOUT_SITES = {"embeddings": "transformer.drop", "attention's output": "attn.resid_dropout",
                 "the MLP's output": "mlp.dropout", "written-out attention's weights": "attn.attn_dropout",
                 "fused attention's weights": "attn.dropout_p"}


@pytest.mark.parametrize("site", DROPOUT_SITES)
def test_each_dropout_site_drops_on_its_own(site):
    """With every other site off, this one alone must make two training passes differ: a site dropped
    from the forward pass would hide behind the others in the test above."""
    fused = site.startswith("fused")
    torch.manual_seed(0)
    model = GPT(tiny(dropout=0.5, attention="sdpa" if fused else "manual"))
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Dropout) and not name.endswith(DROPOUT_SITES[site]):
            module.p = 0.0
    if not fused:
        for block in model.transformer.h:
            block.attn.dropout_p = 0.0
    idx = torch.randint(11, (2, 16))
    model.train()
    assert not torch.equal(model(idx)[0], model(idx)[0]), f"no dropout on {site}"


PINNED = ("this test pins the `shakespeare` preset to nanoGPT's recipe on purpose, so that its numbers stay "
          "comparable: to try another nonlinearity or MLP, add it to model.ACTIVATIONS and pick it with "
          "--activation NAME (README, \"Hack it\"), which leaves this preset as it is; to change the recipe "
          "itself, change the numbers here too")


def test_gpt2_small_parameter_count():
    cfg = GPTConfig(block_size=1024, vocab_size=50257, n_layer=12, n_head=12, n_embd=768, bias=True)
    with torch.device("meta"):  # shapes only: no memory, no time
        model = GPT(cfg)
    assert count_params(model) == 124_439_808, PINNED
    assert count_params(model, non_embedding=True) == 124_439_808 - 1024 * 768, PINNED


@pytest.mark.parametrize("bias", [False, True])
def test_parameter_count_by_hand(bias):
    L, C, V, T = 6, 384, 65, 256  # the shakespeare preset
    # weights: qkv 3C², attention out C², MLP 4C² + 4C²; then ln_1 and ln_2 (weight, maybe bias),
    # and with bias: qkv 3C, attention out C, MLP 4C + C
    per_block = 12 * C * C + (2 * 2 * C + 3 * C + C + 4 * C + C if bias else 2 * C)
    expected = V * C + T * C + L * per_block + (2 * C if bias else C)
    with torch.device("meta"):
        model = GPT(GPTConfig(block_size=T, vocab_size=V, n_layer=L, n_head=6, n_embd=C, bias=bias))
    assert count_params(model) == expected, PINNED
    if not bias:
        assert round(count_params(model, non_embedding=True) / 1e6, 2) == 10.65, PINNED  # nanoGPT's figure


def test_head_is_tied_and_init_follows_gpt2():
    torch.manual_seed(0)
    cfg = GPTConfig(block_size=64, vocab_size=65, n_layer=8, n_head=4, n_embd=256, bias=True)
    model = GPT(cfg)
    assert model.lm_head.weight is model.transformer.wte.weight
    for name, p in model.named_parameters():
        if name.endswith("c_proj.weight"):
            expected = 0.02 / math.sqrt(2 * cfg.n_layer)
        elif name.endswith("c_attn.weight") or name.endswith("c_fc.weight") or "wte" in name or "wpe" in name:
            expected = 0.02
        elif "ln" in name and name.endswith("weight"):
            assert torch.all(p == 1)
            continue
        elif name.endswith("bias"):
            assert torch.all(p == 0), name
            continue
        else:
            pytest.fail(f"a parameter this test does not know: {name} (it knows wte, wpe, c_attn, c_fc, c_proj, "
                        f"ln_* and biases) — after renaming a layer in model.py, rename it here too")
        assert abs(p.std().item() - expected) < 0.1 * expected, name


def test_logits_shape_is_always_full():
    model = GPT(tiny())
    idx = torch.randint(11, (3, 9))
    logits, loss = model(idx)
    assert logits.shape == (3, 9, 11) and loss is None
    logits, loss = model(idx, idx)
    assert logits.shape == (3, 9, 11) and loss.shape == ()


def test_untrained_loss_is_near_uniform():
    torch.manual_seed(0)
    model = GPT(tiny(vocab_size=65))
    idx, targets = torch.randint(65, (8, 16)), torch.randint(65, (8, 16))
    _, loss = model(idx, targets)
    assert abs(loss.item() - math.log(65)) < 0.1


def test_overfits_one_batch():
    torch.manual_seed(0)
    model = GPT(tiny(n_embd=32))
    idx = torch.randint(11, (4, 17))
    x, y = idx[:, :-1], idx[:, 1:]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    for _ in range(150):
        _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05


def test_generate_shapes_and_context_crop():
    torch.manual_seed(0)
    model = GPT(tiny()).eval()
    idx = torch.randint(11, (2, 5))
    lengths = []  # the context each step reads: it grows to block_size, then stays there (the oldest drop out)
    model.register_forward_pre_hook(lambda module, args: lengths.append(args[0].size(1)))
    out = model.generate(idx, max_new_tokens=40)  # well past block_size 16
    assert out.shape == (2, 45) and torch.equal(out[:, :5], idx)
    assert out.min() >= 0 and out.max() < 11
    assert lengths == list(range(5, 16)) + [16] * 29


def test_generate_top_k_1_is_greedy():
    torch.manual_seed(0)
    model = GPT(tiny()).eval()
    idx = torch.randint(11, (2, 3))
    out = model.generate(idx, max_new_tokens=20, top_k=1)
    expected = idx
    for _ in range(20):  # the reference: argmax of the last position, context cropped by hand
        logits, _ = model(expected[:, -16:])
        expected = torch.cat([expected, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, expected)


def test_generate_is_deterministic_given_the_seed():
    model = GPT(tiny()).eval()
    idx = torch.zeros(3, 1, dtype=torch.long)
    torch.manual_seed(7)
    a = model.generate(idx, 30, temperature=1.5, top_k=5)
    torch.manual_seed(7)
    b = model.generate(idx, 30, temperature=1.5, top_k=5)
    torch.manual_seed(8)
    c = model.generate(idx, 30, temperature=1.5, top_k=5)
    assert torch.equal(a, b) and not torch.equal(a, c)


# ----------------------------------------------------------------------------
# Speed levers (their causality is tested with test_causal above)


@pytest.mark.parametrize("levers", LEVERS, ids=LEVER_IDS)
def test_levers_agree_between_attention_paths(levers):
    torch.manual_seed(0)
    sdpa = GPT(tiny(**levers)).double().eval()
    manual = GPT(tiny(attention="manual", **levers)).double().eval()
    manual.load_state_dict(sdpa.state_dict())
    idx = torch.randint(11, (3, 16))
    torch.testing.assert_close(manual(idx)[0], sdpa(idx)[0])


def test_rotary_scores_depend_only_on_distance():
    """q.k after rotation is the same for positions (m, n) and (m + s, n + s)."""
    torch.manual_seed(0)
    cfg = tiny(position="rotary", n_head=1, n_embd=16)
    cos, sin = model_module.rotary_angles(cfg)
    q, k = torch.randn(16, dtype=torch.float64), torch.randn(16, dtype=torch.float64)

    def score(m, n):
        qm = model_module.apply_rotary(q.view(1, 1, 1, 16), cos[m:m + 1].double(), sin[m:m + 1].double())
        kn = model_module.apply_rotary(k.view(1, 1, 1, 16), cos[n:n + 1].double(), sin[n:n + 1].double())
        return (qm * kn).sum().item()

    assert score(3, 1) == pytest.approx(score(10, 8), rel=1e-5)
    assert score(3, 1) != pytest.approx(score(3, 2), rel=1e-3)  # but it does depend on the distance
    rotated = model_module.apply_rotary(q.view(1, 1, 1, 16), cos[5:6].double(), sin[5:6].double())
    assert rotated.norm().item() == pytest.approx(q.norm().item())  # a rotation keeps lengths


def test_rotary_angles_are_the_paper_s():
    """Pair i turns by position * 10000^(-2i/hs): the other tests only see that angles grow with
    the position, which any base would give (and a checkpoint trained with one base reads wrong with another)."""
    cos, sin = model_module.rotary_angles(tiny(position="rotary", n_head=1, n_embd=8))  # hs 8: 4 pairs
    theta = torch.tensor([1.0, 10000 ** -0.25, 10000 ** -0.5, 10000 ** -0.75])
    for position in (1, 3):  # angles under pi, so that atan2 gives them back unwrapped
        torch.testing.assert_close(torch.atan2(sin[position], cos[position]), position * theta)
    assert torch.equal(cos[0], torch.ones(4)) and torch.equal(sin[0], torch.zeros(4))  # position 0: no turn


def test_positions_reach_the_attention():
    """With one character repeated, only the positions tell the inputs apart. Learned positions
    make the outputs differ along the window; rotary ones turn q and k both (one alone would not
    do), so in the model itself a score depends only on the distance between query and key.
    (A new scheme needs a check of its own: one that only biases the scores, as ALiBi, leaves a
    repeated character's outputs all equal, since every value is the same.)"""
    repeated = torch.zeros(1, 12, dtype=torch.long)
    torch.manual_seed(0)
    logits, _ = GPT(tiny()).eval()(repeated)  # (1, 12, V)
    assert not torch.allclose(logits[0, 0], logits[0, 5])
    rotary = GPT(tiny(position="rotary", n_layer=1, n_head=1)).eval()
    with torch.no_grad(), watch(rotary) as records:
        rotary(repeated)
    scores = recorded(records, "attn: scores q @ k^T / sqrt(hs)")[0][0, 0]  # (T, S) of the one head
    assert scores[5, 3].item() == pytest.approx(scores[9, 7].item(), rel=1e-4)  # both 2 apart
    assert scores[5, 3].item() != pytest.approx(scores[5, 4].item(), rel=1e-3)


@pytest.mark.parametrize("position", model_module.POSITIONS)  # a fork's new scheme, too
def test_every_position_scheme_tells_orders_apart(position):
    """One layer of attention alone sees a set: shuffle the characters before the last one, and without
    positions its logits stay the same. Every scheme must change them (an ALiBi bias that is worked out
    but never reaches the attention would not). Whether a scheme computes what it should is a test of
    its own, as test_positions_reach_the_attention is for these two. (One layer: in a second, each
    earlier character's vector already depends on what came before it, so the mask alone leaks order.)"""
    torch.manual_seed(0)
    idx = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6, 5, 3]])
    shuffled = torch.cat([idx[:, :-1].flip(1), idx[:, -1:]], dim=1)  # the same characters, the same last one
    model = GPT(tiny(position=position, n_layer=1)).double().eval()
    last = lambda x: model(x)[0][0, -1]  # (V,)
    assert not torch.allclose(last(idx), last(shuffled)), (
        f"position={position}: a shuffled order gives one layer the same last logits, so the scheme never reaches "
        f"the attention (a scheme of no positions at all fails here by design: order is then only what the mask "
        f"leaks, from a second layer on; for such a scheme, skip it here with pytest.skip)")
    if position == "learned":  # the premise: with the positions' vectors all 0, order is lost
        with torch.no_grad():
            model.transformer.wpe.weight.zero_()
        torch.testing.assert_close(last(idx), last(shuffled))


def test_rotary_has_no_position_weights_and_relu2_squares():
    rotary = GPT(tiny(position="rotary"))
    assert "transformer.wpe.weight" not in rotary.state_dict()
    assert not any("rotary" in k for k in rotary.state_dict())  # the angles are not saved
    learned = GPT(tiny())
    assert count_params(learned) - count_params(rotary) == 16 * 16  # block_size x n_embd
    x = torch.tensor([-2.0, 0.0, 3.0])
    assert model_module.ReLUSquared()(x).tolist() == [0.0, 0.0, 9.0]


def test_an_unknown_lever_is_refused_not_read_as_another(monkeypatch):
    """Code that builds a GPTConfig by hand gets no command-line check, so the model checks too:
    'ReLU2' must not quietly become relu2, nor 'rope' rotary. (Names no fork would add: a fork that adds
    'relu' to ACTIVATIONS, as the README's Hack it says, keeps this test green.)"""
    with pytest.raises(AssertionError, match="activation must be one of gelu, relu2"):
        GPT(tiny(activation="ReLU2"))
    with pytest.raises(AssertionError, match="position must be"):
        GPT(tiny(position="rope"))
    with pytest.raises(AssertionError, match="init must be one of gpt2, pytorch"):  # not silently PyTorch's
        GPT(tiny(init="GPT-2"))
    with pytest.raises(AssertionError, match="model must be one of gpt, bigram"):  # build_model's gpt, for a typo
        model_module.build_model(tiny(model="bigam"))
    import config
    monkeypatch.setitem(model_module.ACTIVATIONS, "relu", torch.nn.ReLU)  # to try one: the comment above ACTIVATIONS
    assert isinstance(GPT(tiny(activation="relu")).transformer.h[0].mlp.act, torch.nn.ReLU)
    bigram = settings.split_config({**config.PRESETS["bigram"], "activation": "relu"})
    settings.check_config(*bigram)  # --activation relu passes the command line's check too


@pytest.mark.parametrize("name", list(model_module.ACTIVATIONS))
def test_every_activation_in_the_registry_builds_and_learns(name):
    """Each entry, a fork's too: the command line's check (inputs_per_output, a module made with nothing)
    passes, and the MLP it is in gives every position a gradient through c_fc."""
    settings.check_activation(tiny(activation=name))
    model = GPT(tiny(activation=name))
    logits, loss = model(torch.randint(0, 11, (2, 8)), torch.randint(0, 11, (2, 8)))
    loss.backward()
    c_fc = model.transformer.h[0].mlp.c_fc.weight
    assert logits.shape == (2, 8, 11) and torch.isfinite(loss) and c_fc.grad.abs().sum() > 0


@pytest.mark.parametrize("entry", [torch.nn.functional.relu, torch.nn.ReLU()], ids=["function", "instance"])
def test_an_activation_entry_that_makes_no_module_is_refused_in_a_line(entry, monkeypatch, data_dir, tmp_path):
    """A hacker's slips: F.relu or nn.ReLU() in ACTIVATIONS failed deep in the forward pass, with a traceback."""
    import train
    from conftest import TINY
    from machinery.cli import UserError
    monkeypatch.setitem(model_module.ACTIVATIONS, "relu", entry)
    args = TINY + ["--activation", "relu", "--data_dir", str(data_dir), "--out_dir", str(tmp_path)]
    with pytest.raises(UserError, match=r"model.ACTIVATIONS\['relu'\] must make a module when called with "
                                        r"nothing, as nn.GELU does"):
        train.main(args)
    monkeypatch.setitem(model_module.ACTIVATIONS, "relu", functools.partial(torch.nn.GELU, approximate="tanh"))
    assert train.main(args + ["--max_iters", "2"]) == 0  # what makes a module is all the MLP asks


def test_a_gated_activation_that_does_not_say_so_is_refused_in_a_line(monkeypatch, data_dir, tmp_path):
    """torch's own nn.GLU halves its input: without inputs_per_output = 2 on its class, c_proj met half
    the width it expects, and the run stopped at its first evaluation in a shape error."""
    import train
    from conftest import TINY
    from machinery.cli import UserError

    class GLU(torch.nn.GLU):  # the same, saying so
        inputs_per_output = 2

    class CReLU(torch.nn.Module):  # twice as wide out as in: no inputs_per_output fixes that
        def forward(self, x):
            return torch.cat([F.relu(x), F.relu(-x)], dim=-1)

    class GroupSoftmax(torch.nn.Module):  # works on groups of 8 channels: a narrower trial input would break it
        def forward(self, x):
            return x.unflatten(-1, (-1, 8)).softmax(-1).flatten(-2)
    monkeypatch.setitem(model_module.ACTIVATIONS, "glu", torch.nn.GLU)
    args = TINY + ["--activation", "glu", "--data_dir", str(data_dir), "--out_dir", str(tmp_path / "o")]
    with pytest.raises(UserError, match=re.escape(  # (TINY: n_embd 32)
            "model.ACTIVATIONS['glu'] turns 128 inputs into 64 outputs, where the MLP's c_proj takes 128 (its "
            "inputs_per_output is 1) — a gated one (SwiGLU) says so on a class of yours, class GLU(nn.GLU): "
            "inputs_per_output = 2 (README: Hack it)")):
        train.main(args)
    assert not (tmp_path / "o").exists()
    with pytest.raises(UserError) as quoted:  # docs/errors.md quotes it for GPTConfig's 384 wide, word for word
        settings.check_activation(GPTConfig(activation="glu"))
    docs = " ".join((Path(__file__).parents[1] / "docs" / "errors.md").read_text(encoding="utf-8").split())
    assert f'"{quoted.value}" (for the 384-wide GPU preset)' in docs
    class SwiGLU(torch.nn.Module):  # a fork's own gated class, not saying so: told to say it on that class

        def forward(self, x):
            a, b = x.chunk(2, dim=-1)
            return F.silu(a) * b
    monkeypatch.setitem(model_module.ACTIVATIONS, "glu", SwiGLU)
    with pytest.raises(UserError, match=re.escape("— a gated one (SwiGLU) says so on its class, "
                                                  "inputs_per_output = 2 (README: Hack it)")):
        train.main(args)
    monkeypatch.setitem(model_module.ACTIVATIONS, "glu", CReLU)
    with pytest.raises(UserError, match=re.escape("turns 128 inputs into 256 outputs, where the MLP's c_proj takes "
                                                  "128 (its inputs_per_output is 1) — its output must be as wide "
                                                  "as c_proj's input")):
        train.main(args)
    for works in (GLU, GroupSoftmax):
        monkeypatch.setitem(model_module.ACTIVATIONS, "glu", works)
        assert train.main(args + ["--max_iters", "2", "--out_dir", str(tmp_path / works.__name__)]) == 0


def test_the_activation_check_reads_the_mlps_widths_from_model_py(monkeypatch):
    """A fork that narrows the MLP to 2 x n_embd is checked against its own widths, not the 4 x n_embd of the
    MLP as shipped: the numbers the refusal gives are the fork's, and a gated activation that says so passes."""
    from machinery.cli import UserError

    class Narrow(model_module.MLP):
        def __init__(self, config):
            super().__init__(config)
            inputs, C = getattr(self.act, "inputs_per_output", 1), config.n_embd
            self.c_fc, self.c_proj = torch.nn.Linear(C, inputs * 2 * C), torch.nn.Linear(2 * C, C)

    class GLU(torch.nn.GLU):
        inputs_per_output = 2
    monkeypatch.setattr(settings, "MLP", Narrow)
    for name, made in (("glu", torch.nn.GLU), ("swiglu", GLU)):
        monkeypatch.setitem(model_module.ACTIVATIONS, name, made)
    with pytest.raises(UserError, match=re.escape("turns 64 inputs into 32 outputs, where the MLP's c_proj takes 64 ")):
        settings.check_activation(GPTConfig(n_embd=32, activation="glu"))
    settings.check_activation(GPTConfig(n_embd=32, activation="swiglu"))


def test_the_activation_check_passes_an_mlp_whose_layers_were_renamed(monkeypatch):
    """It reads c_fc's and c_proj's widths: a fork that renamed them got an AttributeError from every train.py
    command, a new run's too. Such an MLP is left to its first step, which says whether its widths fit."""
    class Renamed(torch.nn.Module):
        def __init__(self, config):
            super().__init__()
            self.fc_in, self.fc_out = torch.nn.Linear(config.n_embd, 64), torch.nn.Linear(64, config.n_embd)
    monkeypatch.setattr(settings, "MLP", Renamed)
    settings.check_activation(GPTConfig(n_embd=32))


def test_classic_shape_is_unchanged_by_the_levers():
    """The `shakespeare` preset's model: the same parameter names and count as nanoGPT's. Each assert
    says first why it is there, for a forker whose change to the MLP lands here."""
    import config
    model = GPT(settings.split_config(config.PRESETS["shakespeare"])[1])
    keys = list(model.state_dict())
    assert keys[:2] == ["transformer.wte.weight", "transformer.wpe.weight"] and len(keys) == 2 + 6 * 6 + 2, PINNED
    assert count_params(model) == 10_745_088 and count_params(model, non_embedding=True) == 10_646_784, PINNED
    assert isinstance(model.transformer.h[0].mlp.act, torch.nn.GELU), PINNED
    assert isinstance(model.transformer.h[0].attn.q_norm, torch.nn.Identity), PINNED  # no qk-norm


class SwiGLU(torch.nn.Module):
    """silu(a) * b over the two halves of its input: the README's "Hack it" example of a gated activation."""
    inputs_per_output = 2

    def forward(self, x):
        a, b = x.chunk(2, dim=-1)
        return torch.nn.functional.silu(a) * b


def test_a_gated_activation_is_one_entry_of_the_registry(monkeypatch, data_dir, tmp_path, capsys):
    """As a forker adds SwiGLU: one class and one entry of ACTIVATIONS. c_fc widens to feed it two
    inputs per output, the MLP trains through train.py, and --help and the start-up line name it."""
    monkeypatch.setitem(model_module.ACTIVATIONS, "swiglu", SwiGLU)
    model = GPT(tiny(activation="swiglu"))
    mlp = model.transformer.h[0].mlp
    assert mlp.c_fc.weight.shape == (2 * 4 * 16, 16) and mlp.c_proj.weight.shape == (16, 4 * 16), (
        "the MLP builds its nonlinearity from ACTIVATIONS[config.activation], and widens c_fc by its "
        "inputs_per_output: one written into MLP.__init__ (nn.ReLU()) ignores --activation, yet each run is "
        "saved under --activation's name (README: Hack it)")
    logits, loss = model(torch.zeros(2, 8, dtype=torch.long), torch.zeros(2, 8, dtype=torch.long))
    loss.backward()
    assert logits.shape == (2, 8, 11) and mlp.c_fc.weight.grad.abs().sum() > 0
    import train
    from conftest import TINY
    with pytest.raises(SystemExit):
        train.main(["--help"])
    assert re.search(r"one of: gelu, relu2(, \w+)*, swiglu\b", " ".join(capsys.readouterr().out.split()))
    assert train.main(TINY + ["--data_dir", str(data_dir), "--out_dir", str(tmp_path / "o"), "--activation",
                              "swiglu"]) == 0
    assert "activation=swiglu" in capsys.readouterr().out
