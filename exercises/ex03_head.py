"""Exercise 3: one head of causal self-attention.

Each position makes a query (what it looks for), a key (what it offers) and a value (what it
passes on). Query t scores the keys of positions 0 .. t (q . k, scaled by 1/sqrt(head size)),
the softmax of those scores says how much of each value position t takes, and their weighted
sum is its output. Later positions are masked out: a character must not see the future.

Check it: python -m exercises check 3
Train a GPT with it: python -m exercises train 3
"""

import torch


def attention_head(x, key, query, value):
    """One causal self-attention head.

    x: (B, T, C). key, query, value (key first, as in the video's Head): (C, hs) weight matrices,
    hs the head size: k = x @ key, q = x @ query, v = x @ value, each (B, T, hs). (Here x @ W,
    where nn.Linear computes x @ W.T.)
    -> (out, weights): out (B, T, hs), the weighted average of the values; weights (B, T, T),
       softmax(q @ k^T / sqrt(hs)) with the future masked out (weights[b, t, s] = 0 for s > t),
       so that each row sums to 1, also for scores in the hundreds (F.softmax is; a softmax written
       out must take each row's max out before exp). No dropout here (the video's Head has it): the
       GPT applies its own, outside this function, and the check compares without it.
    """
    raise NotImplementedError("exercise 3 is yours to write: q, k, v, the scaled scores, the causal mask, the "
                              "softmax over the keys, then weights @ v. The video's Head; the repo's is "
                              "model.py's CausalSelfAttention.manual_attention")


if __name__ == "__main__":  # run by itself (python exercises/ex03_head.py), it says how to check it
    print("to check it: python -m exercises check 3")
