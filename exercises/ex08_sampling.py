"""Exercise 8: choosing the next character: temperature, top-k and top-p.

The model gives a score per character. Dividing them by a temperature sharpens (below 1) or
flattens (above 1) the softmax; top-k keeps only the k likeliest characters; top-p keeps the
fewest likeliest ones whose probabilities add up to at least p (the nucleus). What is left is
renormalised, and the next character is drawn from it.

Check it: python -m exercises check 8
Write with it: python -m exercises train 8
"""

import torch


def next_char_probs(logits, temperature=1.0, top_k=None, top_p=None):
    """logits (B, V) -> probs (B, V), the distribution the next character is drawn from.

    temperature 0: all the probability on the likeliest character (greedy; where several tie, on any
    one). Otherwise softmax of logits / temperature, restricted first to the top_k likeliest (if
    top_k is given; a top_k of V or more keeps them all, and characters tied with the k-th are kept
    too), then, renormalised, to its nucleus (if top_p is given): sort those probabilities in
    decreasing order and keep each character while the probabilities before it add up to less than
    top_p (so the likeliest one always stays); renormalise what is kept. Top-p keeps the fewest: unlike
    top-k, it does not keep every character tied at its edge, only as many as it needs, those the sort
    puts first (the check takes any of them).
    """
    raise NotImplementedError("exercise 8 is yours to write: temperature, then top-k, then top-p, then "
                              "renormalise. The repo's is engine/sampling.py")


if __name__ == "__main__":  # run by itself (python exercises/ex08_sampling.py), it says how to check it
    print("to check it: python -m exercises check 8")
