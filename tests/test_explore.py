"""lessons/plot.py explore: one self-contained HTML page with the model's attention and next-character
probabilities for a prompt. The tests read the numbers back out of the page."""

import json
import math
import re
import shutil
import subprocess

import pytest
import torch
import torch.nn.functional as F

from lessons import plot
from machinery.checkpoint import load_model
from machinery.cli import run_cli
from model import GPT, GPTConfig

PROMPT = "KING HENRY:\nThe"


def page_data(html):
    """The JSON the page carries, read back the way the browser does: the script tag's text, and no
    Infinity or NaN in it (Python reads them; the browser's JSON.parse fails on them)."""
    found = re.findall(r'<script id="data" type="application/json">(.*?)</script>', html, flags=re.S)
    assert len(found) == 1

    def not_json(name):
        raise AssertionError(f"{name} is not JSON: the page's JSON.parse would fail")
    return json.loads(found[0], parse_constant=not_json)


def reference_attention(model, idx):
    """Every layer's attention weights (nh, T, T), computed here from the weights, step by step,
    without model.py's attention code or lessons/inside.py: its own hooks catch what goes into each attention."""
    inputs = []
    hooks = [block.attn.register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
             for block in model.transformer.h]
    with torch.no_grad():
        model(idx)
    for h in hooks:
        h.remove()
    cfg, T = model.config, idx.size(1)
    nh, hs = cfg.n_head, cfg.n_embd // cfg.n_head
    weights = []
    for block, x in zip(model.transformer.h, inputs):
        q, k, _ = block.attn.c_attn(x).split(cfg.n_embd, dim=2)
        q, k = (t.view(1, T, nh, hs).transpose(1, 2) for t in (q, k))  # (1, nh, T, hs)
        if cfg.qk_norm:
            q, k = (t / t.pow(2).mean(-1, keepdim=True).add(torch.finfo(t.dtype).eps).sqrt() for t in (q, k))
        if cfg.position == "rotary":  # pair (i, i + hs/2) turned by position x 10000^(-2i/hs)
            angle = torch.arange(T)[:, None] * 10000.0 ** (-torch.arange(0, hs, 2) / hs)  # (T, hs/2)
            def turn(t):
                a, b = t[..., :hs // 2], t[..., hs // 2:]
                return torch.cat((a * angle.cos() - b * angle.sin(), a * angle.sin() + b * angle.cos()), dim=-1)
            q, k = turn(q), turn(k)
        scores = q @ k.transpose(-2, -1) / math.sqrt(hs)
        scores = scores.masked_fill(torch.ones(T, T).triu(1).bool(), float("-inf"))
        weights.append(F.softmax(scores, dim=-1)[0])  # (nh, T, T)
    return weights


def one_layer_gpt(chars, block_size):
    """An untrained GPT of one layer and one head, 8 wide, reading chars, in eval mode."""
    return GPT(GPTConfig(vocab_size=len(chars), block_size=block_size, n_layer=1, n_head=1, n_embd=8)).eval()


def test_the_page_holds_the_models_attention_and_probabilities(run_dir, tmp_path, capsys):
    page = tmp_path / "page.html"
    assert plot.main(["explore", "--out_dir", str(run_dir), "--prompt", PROMPT, "--save", str(page)]) == 0
    assert "no network needed" in capsys.readouterr().out
    data = page_data(page.read_text(encoding="utf-8"))

    model, ckpt, _ = load_model(None, run_dir)
    model.eval()
    chars = ckpt["vocab"]["chars"]
    idx = torch.tensor([[chars.index(c) for c in PROMPT]])
    assert data["prompt"] == list(PROMPT) and data["chars"] == chars
    expected = reference_attention(model, idx)
    assert len(data["attention"]) == model.config.n_layer
    for layer, weights in enumerate(expected):
        assert len(data["attention"][layer]) == model.config.n_head
        for head in range(model.config.n_head):
            for t in range(len(PROMPT)):
                row = data["attention"][layer][head][t]  # the keys 0 .. t; the rest is the masked future
                assert len(row) == t + 1
                torch.testing.assert_close(torch.tensor(row), weights[head, t, :t + 1], atol=1e-4, rtol=0)
    with torch.no_grad():
        probs = F.softmax(model(idx)[0][0], dim=-1)  # (T, V)
    # the page turns logits into bars with softmax(logits / temperature); at temperature 1:
    torch.testing.assert_close(F.softmax(torch.tensor(data["logits"]), dim=-1), probs, atol=1e-4, rtol=0)
    assert data["iter"] == ckpt["iter"] and len(data["embedding"]["points"]) == len(chars)


def test_the_page_loads_nothing_from_the_network(run_dir, tmp_path):
    page = tmp_path / "page.html"
    assert plot.main(["explore", "--out_dir", str(run_dir), "--prompt", PROMPT, "--save", str(page)]) == 0
    html = page.read_text(encoding="utf-8")
    for loader in ("src=", "href=", "<link", "url(", "@import", "fetch(", "xmlhttprequest", "import(", "websocket",
                   "sendbeacon", "<iframe", "<img", "<object", "<embed"):
        assert loader not in html.lower(), loader
    # the one address in it is the SVG namespace, a name that createElementNS needs and never fetches
    assert set(re.findall(r"https?://[^\s\"'`)]+", html)) == {"http://www.w3.org/2000/svg"}
    assert html.count('"attention":') == 1  # the data is in the page once, in its script tag


def test_a_prompt_that_could_end_the_script_tag_stays_data():
    chars = sorted(set("</script>ab\n"))
    model = one_layer_gpt(chars, 16)
    ckpt = {"vocab": {"chars": chars}, "iter": 0, "best_val_loss": 9.0, "train_config": {"out_dir": "out/x"}}
    prompt = "a</script>b"
    source = "runs/</script>/x.pt"  # the prompt goes in one character at a time; a path goes in whole
    html = plot.explore_page(plot.explore_data(model, ckpt, prompt, source))
    assert html.count("</script>") == 2  # the data's own script tag and the code's
    assert page_data(html)["prompt"] == list(prompt) and page_data(html)["checkpoint"] == source


def test_a_model_of_other_text_writes_its_own_prompt(run_dir, tmp_path, capsys):
    """The test corpus has no ',', so the default prompt cannot be read: with no --prompt, the
    model writes one from a newline (as long as its block), the same every time, and says so."""
    chars = load_model(run_dir / "best.pt")[1]["vocab"]["chars"]
    assert "," in plot.PROMPT and "," not in chars
    prompts = []
    for name in ("a.html", "b.html"):
        assert run_cli(plot.main, ["explore", "--out_dir", str(run_dir), "--save", str(tmp_path / name)]) == 0
        prompt = "".join(page_data((tmp_path / name).read_text(encoding="utf-8"))["prompt"])
        assert capsys.readouterr().out.startswith(f"prompt: {prompt!r}, written by the model")
        prompts.append(prompt)
    assert prompts[0] == prompts[1] and len(prompts[0]) == 16
    assert prompts[0][0] == "\n" and set(prompts[0]) <= set(chars)


def test_the_default_prompt_is_kept_only_where_the_model_can_read_it(capsys):
    chars = sorted(set(plot.PROMPT))
    model = one_layer_gpt(chars, 64)
    assert plot.pick_prompt(None, model, chars) == plot.PROMPT
    model = one_layer_gpt(chars, 16)
    prompt = plot.pick_prompt(None, model, chars)  # all its characters, but a block too short for it
    assert len(prompt) == 16 and prompt[0] == "\n" and set(prompt) <= set(chars)
    assert plot.pick_prompt("", model, chars) == ""  # one given is kept, even empty (prompt_ids refuses it)


def test_a_prompt_exactly_as_long_as_the_block_is_kept():
    chars = sorted(set(plot.PROMPT))
    model = one_layer_gpt(chars, len(plot.PROMPT))
    assert plot.pick_prompt(None, model, chars) == plot.PROMPT


def test_the_page_names_the_run_it_shows(run_dir, tmp_path):
    """The page's data names the checkpoint file, its block size, step and best val loss, and holds the
    embedding map."""
    page = tmp_path / "page.html"
    assert plot.main(["explore", "--out_dir", str(run_dir), "--prompt", PROMPT, "--save", str(page)]) == 0
    data = page_data(page.read_text(encoding="utf-8"))
    model, ckpt, source = load_model(None, run_dir)
    assert data["checkpoint"] == str(source) == str(run_dir / "best.pt")
    assert data["block_size"] == model.config.block_size == 16 and data["iter"] == ckpt["iter"]
    assert data["best_val_loss"] == round(ckpt["best_val_loss"], 4)
    points, share = plot.pca_2d(model.transformer.wte.weight.detach().float())
    torch.testing.assert_close(torch.tensor(data["embedding"]["points"]), points, atol=1e-4, rtol=0)
    assert data["embedding"]["share"] == pytest.approx(share)


def test_the_page_of_a_checkpoint_goes_beside_it(run_dir, tmp_path, monkeypatch):
    """With --checkpoint, explore.html goes beside that file, not into --out_dir (out/, by default)."""
    run = tmp_path / "elsewhere"
    shutil.copytree(run_dir, run)
    monkeypatch.chdir(tmp_path)
    assert run_cli(plot.main, ["explore", "--checkpoint", str(run / "best.pt"), "--prompt", PROMPT]) == 0
    assert (run / "explore.html").is_file() and not (tmp_path / "out").exists()


def test_explore_needs_no_matplotlib(run_dir, tmp_path, monkeypatch):
    def no_matplotlib():
        raise AssertionError("explore asked for matplotlib")
    monkeypatch.setattr(plot, "pyplot", no_matplotlib)
    page = tmp_path / "p.html"
    assert plot.main(["explore", "--out_dir", str(run_dir), "--prompt", PROMPT, "--save", str(page)]) == 0


def test_default_page_goes_beside_the_run(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    assert run_cli(plot.main, ["explore", "--out_dir", str(run), "--prompt", PROMPT]) == 0
    assert (run / "explore.html").is_file()


def test_a_real_browser_draws_the_models_probabilities(run_dir, tmp_path):
    """Where Chromium is installed (not in CI): the page's own JavaScript, run by the browser,
    shows the bars that softmax(logits / temperature) gives in PyTorch."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no Chromium here")
    page = tmp_path / "page.html"
    assert plot.main(["explore", "--out_dir", str(run_dir), "--prompt", PROMPT, "--save", str(page)]) == 0
    model, ckpt, _ = load_model(None, run_dir)
    model.eval()
    idx = torch.tensor([[ckpt["vocab"]["chars"].index(c) for c in PROMPT]])
    with torch.no_grad():
        logits = model(idx)[0][0, 5]  # (V,): after "KING H"
    for temperature in (0.3, 1.0, 2.0):
        dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                              f"file://{page}#at=5&temperature={temperature}"],
                             capture_output=True, text=True, timeout=60).stdout
        shown = [float(p) for p in re.findall(r'<span class="p">([0-9.]+)%', dom)]
        expected = (100 * F.softmax(logits / temperature, dim=-1)).topk(10).values.tolist()
        assert len(shown) == 10
        assert all(abs(a - b) <= 0.051 for a, b in zip(shown, expected)), (temperature, shown, expected)


# A stand-in for the little of the DOM that explore.html's script touches: enough to run it in Node
# and read back what it would show (the Chromium test above does it for real, where Chromium is).
# As in a browser, asking for an element the page does not have is an error. What it does not
# check: the canvases draw nothing (the attention maps go unread), no hover, click or slider
# handler ever fires, and the embedding map's SVG is not read.
DOM = r"""
const fs = require("fs");
const html = fs.readFileSync(process.argv[2], "utf8");
const [data, code] = [...html.matchAll(/<script[^>]*>([\s\S]*?)<\/script>/g)].map(m => m[1]);
class El {
  constructor() {
    this.children = []; this.style = {}; this.dataset = {}; this.found = {}; this.textContent = ""; this.className = "";
    this.html = "";
  }
  appendChild(c) {
    if (c.parentNode) c.parentNode.children.splice(c.parentNode.children.indexOf(c), 1);
    c.parentNode = this; this.children.push(c); return c;
  }
  querySelector(s) {  // "canvas" or ".name": only what this element's innerHTML made
    if (!this.html.includes(s === "canvas" ? "<canvas" : `class="${s.slice(1)}"`)) {
      throw new Error(`querySelector("${s}") finds nothing`);
    }
    if (!this.found[s]) this.found[s] = new El();
    return this.found[s];
  }
  setAttribute(k, v) { this[k] = v; }
  getContext() { return { fillRect() {}, strokeRect() {} }; }
  set innerHTML(h) { this.html = h; this.children = []; this.found = {}; }
  get innerHTML() { return this.html; }
}
const byId = {};
const document = {
  getElementById(id) {
    if (!html.includes(`id="${id}"`)) throw new Error(`the page has no element with id "${id}"`);
    if (!byId[id]) {
      const given = id === "data" ? { textContent: data } : id === "temperature" ? { value: "1" } : {};
      byId[id] = Object.assign(new El(), given);
    }
    return byId[id];
  },
  querySelectorAll(s) {  // a copy: a browser's list does not change under its loop
    return [...document.getElementById({ "#prompt span": "prompt", ".map": "maps", "#emb text": "emb" }[s]).children];
  },
  createElement: () => new El(),
  createElementNS: () => new El(),
};
const location = { hash: "#" + process.argv[3] };
eval(code);
const text = id => document.getElementById(id).textContent;
console.log(JSON.stringify({
  title: text("title"), about: text("about"), barsTitle: text("bars-title"), note: text("next-note"),
  temperature: text("temperature-value"),
  bars: document.getElementById("bars").children.map(b => ({
    char: b.found[".char"].textContent, next: b.className === "bar next",
    percent: Number(/class="p">([0-9.]+)%/.exec(b.html)[1]) })),
  prompt: document.getElementById("prompt").children.map(s => ({
    background: s.style.background, at: s.className === "at" })),
}));
"""


def run_page(page, link):
    """explore.html's script, run by Node with the DOM stand-in above, at the link's #... -> what it shows."""
    node = shutil.which("node") or pytest.skip("no Node here")
    script = page.parent / "dom.js"
    script.write_text(DOM)
    p = subprocess.run([node, str(script), str(page), link], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def shaded(shown):
    """The weights the prompt's colours stand for, up to the character read at (shade(w) is
    rgb(255 - 225w, ...), and the characters after it have none)."""
    colours = [s["background"] for s in shown["prompt"]]
    at = colours.index("none") if "none" in colours else len(colours)
    assert all(c == "none" for c in colours[at:])
    return [(255 - float(re.match(r"rgb\(([-0-9.e]+),", c).group(1))) / 225 for c in colours[:at]]


def test_the_pages_script_shows_the_models_numbers(run_dir, tmp_path):
    """The bars are softmax(logits / temperature), the 10 likeliest, the prompt's real next character green;
    the prompt is coloured by the picked head's weights up to the character read at; the heading says what
    the model is."""
    page = tmp_path / "page.html"
    assert plot.main(["explore", "--out_dir", str(run_dir), "--prompt", PROMPT, "--save", str(page)]) == 0
    model, ckpt, _ = load_model(None, run_dir)
    chars, cfg = ckpt["vocab"]["chars"], model.config
    data = page_data(page.read_text(encoding="utf-8"))
    logits = torch.tensor(data["logits"], dtype=torch.float64)  # (T, V)
    for at, temperature in ((5, 0.3), (5, 1.0), (11, 2.0)):
        shown = run_page(page, f"at={at}&temperature={temperature}")
        probs = F.softmax(logits[at] / temperature, dim=-1).tolist()
        top = sorted(range(len(chars)), key=lambda i: -probs[i])[:10]  # (a stable sort, as the page's)
        assert [b["char"] for b in shown["bars"]] == [plot.label(chars[i]) for i in top]
        assert all(abs(b["percent"] - 100 * probs[i]) <= 0.051 for b, i in zip(shown["bars"], top))
        assert [b["next"] for b in shown["bars"]] == [chars[i] == PROMPT[at + 1] for i in top]
        assert shown["note"].startswith(f"In the prompt, {plot.label(PROMPT[at + 1])} comes next")
        assert shown["note"].endswith(f"the model gives it {100 * probs[chars.index(PROMPT[at + 1])]:.1f}%.")
        assert shown["temperature"] == f"{temperature:.2f}"
        assert shaded(shown) == pytest.approx(data["attention"][0][0][at])  # layer 0, head 0: the page's first
        assert [s["at"] for s in shown["prompt"]] == [t == at for t in range(len(PROMPT))]
        assert shown["barsTitle"] == f'What comes after "{PROMPT[:at + 1][-12:]}"'.replace("\n", "⏎")
    assert shown["about"] == (f"{cfg.n_layer} layers x {cfg.n_head} heads, {len(chars)} characters, block size "
                              f"{cfg.block_size}; trained {ckpt['iter']} steps, best val loss "
                              f"{round(ckpt['best_val_loss'], 4)}.")
    assert shown["title"] == f"What {run_dir / 'best.pt'} sees in a prompt"
    for layer, head in ((1, 0), (0, 1)):  # a link can pick the head that colours the prompt
        picked = run_page(page, f"at=9&layer={layer}&head={head}")
        assert shaded(picked) == pytest.approx(data["attention"][layer][head][9])
    last = run_page(page, "at=999")  # past the end: the last character
    assert [s["at"] for s in last["prompt"]] == [False] * (len(PROMPT) - 1) + [True]
    assert last["note"] == "The end of the prompt: this is what the model would write next."


def tiny_page(tmp_path, chars, prompt, best_val_loss=1.5, block_size=8):
    """explore.html for an untrained one-layer model of chars, saved by a run at iteration 3."""
    model = one_layer_gpt(chars, block_size)
    ckpt = {"vocab": {"chars": chars}, "iter": 3, "best_val_loss": best_val_loss, "train_config": {"out_dir": "out/x"}}
    page = tmp_path / "page.html"
    page.write_text(plot.explore_page(plot.explore_data(model, ckpt, prompt, "out/x/latest.pt")), encoding="utf-8")
    return page


def test_a_run_stopped_before_its_first_evaluation_gets_a_page(tmp_path):
    """(Stopped before its first evaluation after the start.) Its checkpoint's best val loss is inf, which JSON
    cannot hold: the page says there is none yet."""
    page = tiny_page(tmp_path, list("\nab"), "ab\nab", best_val_loss=math.inf)
    assert page_data(page.read_text(encoding="utf-8"))["best_val_loss"] is None
    assert run_page(page, "at=0")["about"].endswith("trained 3 steps, no best val loss yet.")


def test_the_page_shows_a_tab_as_backslash_t(tmp_path):
    """As plot.label does: a tab is invisible, and would look like a space."""
    chars = list("\t\nab")
    shown = run_page(tiny_page(tmp_path, chars, "a\tb"), "at=2")
    assert sorted(bar["char"] for bar in shown["bars"]) == sorted(plot.label(c) for c in chars)
    assert shown["barsTitle"] == 'What comes after "a\\tb"'


def test_the_page_s_heading_keeps_a_character_beyond_16_bits_whole(tmp_path):
    """Found by a hunt for the lessons' bugs: the last 12 characters were cut from the joined string, whose
    JavaScript length counts an emoji as 2, so the heading began with half of one."""
    chars = list("abcdefghijklm\U0001F600")
    shown = run_page(tiny_page(tmp_path, chars, "a\U0001F600bcdefghijklm", block_size=16), "at=12")
    assert shown["barsTitle"] == 'What comes after "\U0001F600bcdefghijkl"'
