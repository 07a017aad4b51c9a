"""Train with your part: model.py's GPT with a learner's attention, block or loss in place of its
own, or trained on the learner's learning-rate schedule; or, for the sampler, trained once and
then written with the learner's sampling and the repo's.

Nothing in model.py changes: after the GPT is built, each block's attention (or the block itself,
or the GPT's forward, for the loss) gets a forward that calls the learner's function on the
model's own weights and outputs. The GPT's weights, their initialisation, the batches and the
seed are the repo's, so the learner's run and the repo's differ in the learner's arithmetic
alone: a right answer trains to the repo's val loss, to float rounding.
"""

import math
import shlex
import sys
import time

# python exercises/plug.py (the imports below need python -m), or python -m exercises.plug: the commands
# are exercises/__main__.py's
if not __package__ or __name__ == "__main__":
    command = shlex.join(["python", "-m", "exercises", "train", *(sys.argv[1:] or ["--help"])])
    print(f"error: exercises/plug.py is not a command of its own — from the repo's folder: {command}",
          file=sys.stderr)
    sys.exit(2)

import numpy as np
import torch

from config import TrainConfig
from exercises.check import EXERCISES, bigram_reference, probs_reference, raised
from lessons.buildup import sample_text, train_rung
from machinery.cli import UserError
from machinery.settings import check_fits
from model import GPTConfig, build_model, lm_loss
from prepare import decode, encode, start_char


def split_heads_weights(attn):
    """c_attn's weight (3C, C) -> one head's key, query, value as (C, hs) matrices (n_head 1)."""
    w_q, w_k, w_v = attn.c_attn.weight.split(attn.c_attn.weight.size(1), dim=0)  # 3 x (C, C)
    return w_k.T, w_q.T, w_v.T  # x @ key is x @ w_k.T: what c_attn does for k


def plugs(module):
    """exercise number -> plug(model): the learner's function in place of the repo's part."""
    def plain(inputs, named):
        """What a block or its attention gets besides x (a KV cache, rotary angles, whatever a fork
        adds) must all be None: the exercises train with learned positions and no KV cache."""
        given = [v for v in (*inputs, *named.values()) if v is not None]
        assert not given, "the exercises train with learned positions, and no KV cache"

    def head(model):  # 3: one head; c_attn's weight gives its key, query, value, and c_proj still follows
        for block in model.transformer.h:
            attn = block.attn
            def forward(x, *inputs, attn=attn, **named):
                plain(inputs, named)
                out, _ = module.attention_head(x, *split_heads_weights(attn))
                return attn.resid_dropout(attn.c_proj(out))
            attn.forward = forward

    def multihead(model):  # 4
        for block in model.transformer.h:
            attn = block.attn
            def forward(x, *inputs, attn=attn, **named):
                plain(inputs, named)
                y = module.multi_head_attention(x, attn.c_attn.weight, attn.c_proj.weight, attn.n_head)
                return attn.resid_dropout(y)
            attn.forward = forward

    def block(model):  # 5: the block and its MLP
        for blk in model.transformer.h:
            def feed_forward(h, blk=blk):  # the learner's MLP, on the block's own weights
                return blk.mlp.dropout(module.mlp(h, blk.mlp.c_fc.weight, blk.mlp.c_proj.weight))

            def forward(x, *inputs, blk=blk, feed_forward=feed_forward, **named):
                plain(inputs, named)
                return module.block(x, blk.attn, feed_forward, blk.ln_1, blk.ln_2)
            blk.forward = forward

    def loss(model):  # 6: the learner's cross-entropy of the GPT's own logits, for training
        gpt_forward = model.forward
        def forward(idx, targets=None, **named):
            logits, _ = gpt_forward(idx, **named)  # (B, T, V)
            if targets is None:
                return logits, None
            # trained on theirs; measured, in eval mode, by the repo's, so that the val losses compare
            return logits, module.cross_entropy(logits, targets) if model.training else lm_loss(logits, targets)
        model.forward = forward

    return {3: head, 4: multihead, 5: block, 6: loss}


def schedule(module):
    """Exercise 7: the learner's learning rate at each step, in train_rung's form: schedule(it, cfg)."""
    def learning_rate(it, cfg):
        args = (it, cfg.warmup_iters, cfg.max_iters, cfg.lr, cfg.min_lr)
        lr = module.learning_rate(*args)
        try:
            if math.isfinite(float(lr)) and float(lr) >= 0:
                return float(lr)
        except (TypeError, ValueError):  # (None, a string, a tensor of several numbers)
            pass
        raise ValueError(f"learning_rate{args} returned {lr!r}, not a learning rate (a number, 0 or more)")
    return learning_rate


BIGRAM = 1  # the exercise whose part is counted, not trained: the table itself
SAMPLER = 8  # the exercise whose part writes, not trains
SAMPLING = {"temperature": 0.8, "top_k": 20, "top_p": 0.9}  # every step of exercise 8 at work


def write_with(model, chars, device, next_char_probs, length=100, seed=0):
    """What the model writes when each character is drawn from next_char_probs(the last position's
    logits (1, V), **SAMPLING): length characters after a newline, from a seeded generator, so
    that two samplers that agree write the same text."""
    model.eval()
    idx = torch.tensor([encode(start_char(chars), chars)], device=device)  # (1, 1)
    generator = torch.Generator(device).manual_seed(seed)
    with torch.no_grad():
        for _ in range(length):
            logits, _ = model(idx[:, -model.config.block_size:])  # (1, T, V)
            probs = next_char_probs(logits[:, -1], **SAMPLING)  # (1, V)
            idx = torch.cat((idx, torch.multinomial(probs, 1, generator=generator)), dim=1)
    return decode(idx[0, 1:].tolist(), chars)


TRAINABLE = (BIGRAM, 3, 4, 5, 6, 7, SAMPLER)


def configs(number, vocab_size, steps=2000, eval_iters=200):
    """The ladder's small sizes (lessons/buildup.py, the video's): 3 blocks, 32 wide, block 8, 4 heads
    (one for exercise 3). Attention written out, as the learner's is, so that the arithmetic is alike."""
    mcfg = GPTConfig(block_size=8, vocab_size=vocab_size, n_layer=3, n_head=1 if number == 3 else 4, n_embd=32,
                     dropout=0.0, attention="manual")
    cfg = TrainConfig(device="cpu", compile=False, seed=1337, batch_size=32, max_iters=steps, lr=1e-3,
                      min_lr=1e-4, warmup_iters=min(100, steps // 10), eval_iters=eval_iters)
    return mcfg, cfg


def check_trainable(number):
    if number not in TRAINABLE:
        what = f"exercise {number} is checked, not trained with" if 1 <= number <= len(EXERCISES) else (
            f"there is no exercise {number}")
        raise UserError(f"{what} — train with exercises {', '.join(map(str, TRAINABLE))} (the bigram table, "
                        f"attention, multi-head attention, the block, the loss, the schedule, the sampler)")


def train_both(number, module, data, steps=2000, eval_iters=200):
    """Train the repo's GPT and the same GPT with the learner's part, on the same batches and seed.
    data: (vocab, splits), from machinery.data.load_data. -> [(who, val loss, train seconds, sampled text)]"""
    check_trainable(number)
    vocab, splits = data
    mcfg, cfg = configs(number, vocab["vocab_size"], steps, eval_iters)
    device = torch.device("cpu")
    rows = []
    threads = torch.get_num_threads()
    # models this small train about as fast on one thread as on two, and 4.6x faster when another program
    # keeps the cores busy (bench/results/2026-12-05-cpu/exercise-threads.log): a learner may train meanwhile
    torch.set_num_threads(1)
    try:
        if number == SAMPLER:
            return write_both(module, vocab["chars"], mcfg, cfg, splits, device)
        parts = plugs(module)
        yours = {"plug": parts[number]} if number in parts else {"schedule": schedule(module)}
        for who, part in (("the repo's", {}), ("yours", yours)):
            try:
                model, losses, seconds, _ = train_rung(mcfg, cfg, splits, device, desc=who, **part)
                text = sample_text(model, vocab["chars"], device)  # (a part may train, and fail at another T)
            except (Exception, SystemExit) as e:  # (an exit() left in your code ended the command, saying nothing)
                if not part:  # the repo's own code: a bug of the repo's, with its traceback
                    raise
                raise UserError(f"exercise {number} passed its check, but in the GPT with your part {raised(e)} — "
                                f"fix what it names, then check and train again") from None
            rows.append((who, losses["val"], seconds, text))
    finally:
        torch.set_num_threads(threads)
    return rows


def count_both(module, data):
    """Exercise 1: the bigram table counted from the train split, by the repo's count and by the learner's; each
    scored on every pair of the val split, and written with as model.py's Bigram's table (its log: the scores whose
    softmax gives it back). -> [(who, val loss, seconds of counting, written text)], as train_both's"""
    vocab, splits = data
    V, chars = vocab["vocab_size"], vocab["chars"]
    # a text of very many distinct characters: a V x V table that cannot fit, refused as train.py refuses it
    check_fits(GPTConfig(model="bigram", vocab_size=V), torch.device("cpu"))
    train, val = (torch.from_numpy(splits[split].astype(np.int64)) for split in ("train", "val"))  # (N,) each
    rows = []
    for who, count in (("the repo's", bigram_reference), ("yours", module.bigram_probs)):
        start = time.perf_counter()
        try:
            probs = count(train, V, smoothing=1.0).double()  # (V, V): the check's smoothing, not a default of yours
            seconds = time.perf_counter() - start
            val_loss = -probs[val[:-1], val[1:]].log().mean().item()  # the mean over the pairs (i, j) of -log p(j | i)
            model = build_model(GPTConfig(model="bigram", vocab_size=V))
            with torch.no_grad():
                model.table.weight.copy_(probs.log())
        except (Exception, SystemExit) as e:  # (a table of the check's size only, say)
            if who == "the repo's":
                raise
            raise UserError(f"exercise {BIGRAM} passed its check, but on the prepared text {raised(e)} — fix "
                            f"what it names, then check and train again") from None
        rows.append((who, val_loss, seconds, sample_text(model, chars, torch.device("cpu"))))
    return rows


def write_both(module, chars, mcfg, cfg, splits, device):
    """Exercise 8: the repo's GPT trained once, then written with the repo's sampling and with the learner's.
    -> [(who, val loss, train seconds, written text)], as train_both's (the loss and seconds the same)"""
    def yours(model):
        try:
            return write_with(model, chars, device, module.next_char_probs)
        except (Exception, SystemExit) as e:
            raise UserError(f"exercise {SAMPLER} passed its check, but writing with your sampler {raised(e)} — fix "
                            f"what it names, then check and train again") from None
    yours(build_model(mcfg).to(device))  # a few characters from an untrained GPT first: a sampler that breaks, at once
    model, losses, seconds, _ = train_rung(mcfg, cfg, splits, device, desc="the repo's")
    return [("the repo's", losses["val"], seconds, write_with(model, chars, device, probs_reference)),
            ("yours", losses["val"], seconds, yours(model))]
