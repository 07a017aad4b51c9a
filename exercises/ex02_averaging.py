"""Exercise 2: the averaging trick.

Before attention, the video shows how a position can gather what came before it, and nothing
after it: position t's output is the average of the inputs at positions 0 .. t. Done with a
loop it is slow; done as one matrix multiply by a lower-triangular matrix of weights, it is one
operation, and it is exactly the shape attention will have (weights @ values).

Check it: python -m exercises check 2
"""

import torch


def causal_average(x):
    """x (B, T, C) -> (B, T, C): out[b, t] is the mean of x[b, 0], ..., x[b, t]. (B: the batch's
    sequences, T: the positions (time), C: the channels each position carries.)

    Build a (T, T) matrix of weights whose row t holds 1 / (t + 1) at columns 0 .. t and 0 after
    them (torch.tril helps), and multiply: weights @ x, broadcast over the batch. In torch's operations
    only: in a GPT, x is learned, and training follows the output back to it.
    """
    raise NotImplementedError("exercise 2 is yours to write: a (T, T) lower-triangular matrix of weights, each row "
                              "summing to 1, times x. The video's 'mathematical trick in self-attention'; "
                              "model.py's manual_attention does the same with learned weights")


if __name__ == "__main__":  # run by itself (python exercises/ex02_averaging.py), it says how to check it
    print("to check it: python -m exercises check 2")
