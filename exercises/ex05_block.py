"""Exercise 5: the MLP, and the pre-LayerNorm residual block.

After attention lets positions talk to each other, an MLP lets each one think on its own:
widen 4x, a nonlinearity (GELU), project back. A block puts the two together, each reading a
LayerNorm of the residual stream and adding its result back to it (x + f(ln(x))): the residual
path lets gradients flow straight down to every block.

Check it: python -m exercises check 5
Train a GPT with it: python -m exercises train 5
"""

import torch
import torch.nn.functional as F


def mlp(x, c_fc, c_proj):
    """x (B, T, C); c_fc (4C, C) and c_proj (C, 4C), nn.Linear weights.
    -> (B, T, C): c_proj applied to gelu(c_fc applied to x) (a Linear's weight w applies as x @ w.T; the
    exact GELU, F.gelu's default, not its tanh approximation).
    No dropout: the GPT applies its own, as a module that evaluation switches off."""
    raise NotImplementedError("exercise 5 is yours to write: widen with c_fc, GELU, back with c_proj. The video's "
                              "FeedForward (with ReLU); the repo's is model.py's MLP")


def block(x, attention, feed_forward, ln_1, ln_2):
    """A pre-LayerNorm transformer block.

    x (B, T, C). attention, feed_forward, ln_1, ln_2: functions (B, T, C) -> (B, T, C).
    -> (B, T, C): first x plus attention of ln_1 of x, then that plus feed_forward of ln_2 of it.
    """
    raise NotImplementedError("exercise 5 is yours to write: two residual steps, x = x + f(ln(x)). The video's "
                              "Block; the repo's is model.py's Block")


if __name__ == "__main__":  # run by itself (python exercises/ex05_block.py), it says how to check it
    print("to check it: python -m exercises check 5")
