"""Exercise 7: the learning-rate schedule, warmup then cosine decay.

The video trains at one learning rate; nanoGPT, and this repo, warm up linearly for a few steps
(large early updates to random weights can blow up), then decay along a cosine to min_lr.

Check it: python -m exercises check 7
Train a GPT with it: python -m exercises train 7
"""

import math


def learning_rate(it, warmup_iters, max_iters, lr, min_lr):
    """The learning rate at step it (0, 1, ..., max_iters - 1).

    Warmup, for it < warmup_iters: lr * (it + 1) / (warmup_iters + 1), so that step 0 already
    moves a little and the last warmup step is just under lr. After it: with progress =
    (it - warmup_iters) / (max_iters - warmup_iters), from 0 to just under 1 (it would be 1 at
    step max_iters, one past the last), the learning rate is
    min_lr + 0.5 * (1 + cos(pi * progress)) * (lr - min_lr).
    """
    raise NotImplementedError("exercise 7 is yours to write: a linear warmup, then the cosine. The repo's is "
                              "train.py's lr_at")


if __name__ == "__main__":  # run by itself (python exercises/ex07_schedule.py), it says how to check it
    print("to check it: python -m exercises check 7")
