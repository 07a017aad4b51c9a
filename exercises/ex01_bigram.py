"""Exercise 1: the bigram model, by counting.

The video starts with the simplest language model: the next character depends on the current
one only. Its table of scores can be learned (train.py --preset bigram, model.py's Bigram), or
simply counted, which is what you do here.

Check it: python -m exercises check 1
Score it on the val split, and write with it: python -m exercises train 1
"""

import torch


def bigram_probs(ids, vocab_size, smoothing=1.0):
    """The table of next-character probabilities, counted from a text.

    ids: (N,) long tensor, the text as character ids (0 .. vocab_size - 1).
    -> probs (V, V), V = vocab_size: row i is the distribution of the character that follows
       character i. Count how often each pair (i, j) follows one after the other in ids, add
       `smoothing` to every count (so that no pair has probability 0), and divide each row by
       its sum, so that every row sums to 1.
    """
    raise NotImplementedError("exercise 1 is yours to write: count the pairs (ids[:-1], ids[1:]) into a (V, V) "
                              "table. The video's bigram; the repo counts its own in exercises/check.py's "
                              "bigram_counts (model.py's Bigram learns one instead)")


if __name__ == "__main__":  # run by itself (python exercises/ex01_bigram.py), it says how to check it
    print("to check it: python -m exercises check 1")
