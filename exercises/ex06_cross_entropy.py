"""Exercise 6: the loss, cross-entropy from logits.

The model's scores for the next character (logits) become probabilities through a softmax; the
loss is the mean, over every position, of -log(the probability it gave the character that
really came next). Written out, -log softmax(x)[target] = log(sum(exp(x))) - x[target]: compute
that, never the log of a probability, which can round to 0 (and log(0) = -inf). Exponentials of
large scores overflow, so take each row's largest score m out first and add it back:
log(sum(exp(x))) = m + log(sum(exp(x - m))).

Check it: python -m exercises check 6
Train a GPT with it: python -m exercises train 6
"""

import torch


def cross_entropy(logits, targets):
    """logits (B, T, V), targets (B, T) of ids -> a 0-dim tensor: the mean over the B*T positions
    of logsumexp(logits) - logits[target] (that is, -log softmax(logits)[target]). Without
    F.cross_entropy (or nn.CrossEntropyLoss), log_softmax, logsumexp or logcumsumexp. targets[b, t]
    is already the character after position t (get_batch shifted it): compare logits[b, t] with it,
    with no shift of your own. At each position, pick the logit its own target names: torch.gather
    along the last axis does it."""
    raise NotImplementedError("exercise 6 is yours to write: log-sum-exp minus the target's logit, averaged. "
                              "The repo's is model.py's lm_loss (with F.cross_entropy)")


if __name__ == "__main__":  # run by itself (python exercises/ex06_cross_entropy.py), it says how to check it
    print("to check it: python -m exercises check 6")
