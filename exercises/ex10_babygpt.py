"""Exercise 10: the baby GPT's transition probabilities.

With two characters (0 and 1) and a context of 3, a GPT is always in one of 2**3 = 8 states,
and all it does is give each state a probability for the next bit: it is a Markov chain
(lessons/babygpt.py, docs/lessons.md). Read that chain off a model.

Check it: python -m exercises check 10
"""

import torch


def transition_probs(model):
    """model: a GPT with vocab_size 2 and block_size 3: model(idx), idx a long tensor (B, T) of ids, returns
    (logits, loss), logits (B, T, 2) (loss is None without targets).
    -> (8, 2): row i is the state whose 3 bits are i in binary ('000', '001', ..., '111'; '001' is the
       ids [0, 0, 1], the first bit first), and its
       two numbers are the probabilities of the next bit being 0 and 1: the softmax of the
       logits at the last of the 3 positions.
    Leave the model as it was given, in its mode (train or eval: a model.eval() here is undone with
    model.train(was_training), not model.train()), its dtype and its weights' requires_grad: lessons/babygpt.py
    reads the chain in the middle of training."""
    raise NotImplementedError("exercise 10 is yours to write: the 8 states as a (8, 3) batch of ids, one forward, "
                              "the softmax at the last position. The repo's is lessons/babygpt.py's next_bit_probs")


if __name__ == "__main__":  # run by itself (python exercises/ex10_babygpt.py), it says how to check it
    print("to check it: python -m exercises check 10")
