"""Look inside a forward pass (temporary shim)."""

from model import trace_shapes


def print_shapes(model, x, y):
    """One batch through the model, every tensor's shape printed."""
    cfg = model.config
    B, T = x.shape
    print(f"B={B} batch, T={T} time, C={cfg.n_embd} channels, nh={cfg.n_head} heads, "
          f"hs={cfg.n_embd // cfg.n_head} head size, S=T keys, V={cfg.vocab_size} vocabulary")
    for line in trace_shapes(model, x, y):
        print(line)
    return 0
