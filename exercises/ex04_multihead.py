"""Exercise 4: multi-head attention, as model.py lays out its weights.

n_head heads side by side, each of head size hs = C // n_head: one Linear (c_attn) makes the
queries, keys and values of all heads at once, each head attends on its own, and their outputs,
joined side by side again, go through one more Linear (c_proj).

Check it: python -m exercises check 4
Train a GPT with it: python -m exercises train 4
"""

import torch


def multi_head_attention(x, c_attn, c_proj, n_head):
    """Causal multi-head self-attention.

    x: (B, T, C). c_attn: (3C, C), an nn.Linear's weight: x @ c_attn.T is (B, T, 3C), the queries,
    keys and values side by side (in that order). c_proj: (C, C): the output projection, applied
    as y @ c_proj.T. n_head divides C.
    -> (B, T, C): for each head, causal attention of its q, k, v (hs channels each: head h has
       channels h*hs .. (h+1)*hs of each of q, k and v), the heads joined back to (B, T, C), then c_proj.
       Its softmax holds for scores in the hundreds too, as exercise 3's. No dropout here: the GPT
       applies its own, outside this function.
    """
    raise NotImplementedError("exercise 4 is yours to write: split c_attn's output into q, k, v, each into n_head "
                              "heads (view, then transpose to (B, nh, T, hs)), attend, join, project. The "
                              "video's MultiHeadAttention; the repo's is model.py's CausalSelfAttention")


if __name__ == "__main__":  # run by itself (python exercises/ex04_multihead.py), it says how to check it
    print("to check it: python -m exercises check 4")
