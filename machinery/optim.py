"""The optimizers: AdamW with weight decay on the weight matrices only, and Muon, which
orthogonalizes each update of the blocks' matrices, stepped together as one.

Each parameter group has a "kind" (decay, no_decay or muon) that says how the training
config's settings apply to it: its weight decay, its betas, and how its learning rate
relates to the schedule's (set_lr). Also here: how a step is skipped without waiting for
the GPU (step_unless), and why every weight keeps its own .grad (keep_grads_outside_graphs).
"""

import torch

from model import Block


def make_optimizer(model, cfg, device):
    """AdamW; weight decay on the 2-D weight matrices (and embeddings), not on biases or LayerNorms.
    With --optimizer muon, the blocks' weight matrices go to Muon instead.

    Each parameter group has a "kind" (decay, no_decay or muon), which says how the
    settings apply to it (configure_groups)."""
    params = [p for p in model.parameters() if p.requires_grad]
    in_blocks = {id(p) for block in model.modules() if isinstance(block, Block) for p in block.parameters()}
    muon = [p for p in params if cfg.optimizer == "muon" and p.dim() == 2 and id(p) in in_blocks]
    in_muon = {id(p) for p in muon}
    rest = [p for p in params if id(p) not in in_muon]
    groups = [{"params": [p for p in rest if p.dim() >= 2], "kind": "decay"},
              {"params": [p for p in rest if p.dim() < 2], "kind": "no_decay"}]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, fused=device.type == "cuda")
    if muon:
        optimizer = Optimizers(optimizer, Muon([{"params": muon, "kind": "muon"}]))
    configure_groups(optimizer, cfg)
    keep_grads_outside_graphs(optimizer)
    return optimizer


def configure_groups(optimizer, cfg):
    """Put the config's optimizer settings into every parameter group (also after a resume,
    when they may have changed)."""
    for group in optimizer.param_groups:
        group["weight_decay"] = 0.0 if group["kind"] == "no_decay" else cfg.weight_decay
        if group["kind"] == "muon":
            group["lr_scale"] = cfg.muon_lr / cfg.lr  # Muon's lr is muon_lr where AdamW's is lr
        else:
            group["betas"] = (cfg.beta1, cfg.beta2)


# how an optimizer runs on this device (fused kernels on a GPU), not what it has learned
IMPLEMENTATION = ("fused", "foreach", "capturable")


def load_state(optimizer, state):
    """optimizer.load_state_dict(state), for a run that may have moved between a CPU and a GPU.

    The saved groups carry the saving device's IMPLEMENTATION flags, and loading would put
    them in place of this optimizer's: a CPU run resumed on a GPU would step its fused AdamW
    as an unfused one, which refuses step_unless's found_inf. So this optimizer's own flags
    replace the saved ones first (loading reads them to place the step counts)."""
    if isinstance(optimizer, Optimizers):  # AdamW and Muon, a state each
        pairs = zip(optimizer.optimizers, state["optimizers"])
    else:
        pairs = [(optimizer, state)]
    for opt, saved in pairs:
        here = {k: opt.defaults[k] for k in IMPLEMENTATION if k in opt.defaults}
        opt.load_state_dict({**saved, "param_groups": [{**g, **here} for g in saved["param_groups"]]})


def set_lr(optimizer, lr):
    """The schedule's lr for this step into every group: AdamW's groups take it as it is,
    Muon's scaled to its own size (lr_scale, see configure_groups)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


def keep_grads_outside_graphs(optimizer):
    """Give every parameter a .grad of its own before its first backward (make_optimizer does it
    once); train_step zeroes it in place after each step, never sets it to None.

    Without one, backward hands the parameter the gradient tensor it computed, and under
    CUDA graphs that tensor lives in the graph's memory, which the next micro-batch's replay
    overwrites before adding to it: gradient accumulation fails (PyTorch stops with "accessing
    gradient tensor output of CUDAGraphs that has been overwritten"). With a .grad in place,
    backward adds into it instead."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.grad is None:
                p.grad = torch.zeros_like(p)


def step_unless(optimizer, found_inf):
    """optimizer.step(), unless found_inf (a 0-dim tensor on the device) is nonzero.

    To read found_inf, the host must wait for the GPU to finish the step's work. Fused
    AdamW and Muon need not: they read it on the device and skip by themselves (the way
    GradScaler skips an overflowed fp16 step). On a CPU there is nothing to wait for."""
    for opt in getattr(optimizer, "optimizers", [optimizer]):
        if found_inf.device.type != "cpu" and (opt.defaults.get("fused") or isinstance(opt, Muon)):
            opt.found_inf = found_inf  # the attribute fused AdamW's step reads, as GradScaler sets it
            opt.step()
            del opt.found_inf
        elif not found_inf.item():
            opt.step()


def orthogonalize(G, steps=5):
    """G (..., m, n) -> roughly U Vᵀ, where G = U S Vᵀ: the same directions, the singular values
    pulled together near 1. A Newton-Schulz iteration does it with matmuls only. Dividing by the
    Frobenius norm first puts the singular values in (0, 1]; the quintic's coefficients (Jordan
    et al. 2024) trade exactness for speed: five steps take any of them from 0.01 to 1 into about
    0.7 to 1.1, not to 1 itself (smaller ones stay smaller). Leading dimensions are a batch:
    several matrices of one shape at once."""
    a, b, c = 3.4445, -4.7750, 2.0315
    X = G / (G.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    tall = X.size(-2) > X.size(-1)
    if tall:  # work with the smaller Gram matrix X Xᵀ
        X = X.mT
    for _ in range(steps):
        A = X @ X.mT
        X = a * X + (b * A + c * A @ A) @ X
    return X.mT if tall else X


class Muon(torch.optim.Optimizer):
    """MomentUm Orthogonalized by Newton-Schulz, for weight matrices (Jordan et al. 2024).

    SGD with Nesterov momentum, except that the update is orthogonalized first: a raw
    gradient is dominated by a few directions, and Muon moves the weight about the same
    amount in every direction the gradient points to. Weight decay is decoupled, as in AdamW.

    Matrices of the same shape (every block's attention projection, say) are stacked and
    orthogonalized together: the same arithmetic as one at a time, in a few large matmuls
    instead of many small ones, which is what a GPU wants.
    """

    def __init__(self, params, lr=0.02, momentum=0.95, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        # found_inf, when step_unless sets it: a 0-dim tensor on the device, nonzero for a step
        # to skip. It enters the arithmetic as a factor, so the host never waits to learn it
        found_inf = getattr(self, "found_inf", None)
        keep = None if found_inf is None else (found_inf == 0).to(torch.float32)  # 1: step, 0: skip
        for group in self.param_groups:
            lr, momentum = group["lr"], group["momentum"]
            by_shape = {}
            for p in group["params"]:
                if p.grad is not None:
                    by_shape.setdefault(p.shape, []).append(p)
            for (rows, cols), params in by_shape.items():
                ahead = []
                for p in params:
                    state = self.state[p]
                    if "momentum" not in state:
                        state["momentum"] = torch.zeros_like(p)
                    buf = state["momentum"]
                    grad, blend = p.grad, 1 - momentum
                    if keep is not None:  # a skipped step leaves buf as it was, and no nan gets in
                        grad, blend = torch.where(keep > 0, grad, 0.0), blend * keep
                    buf.lerp_(grad, blend)  # buf = momentum * buf + (1 - momentum) * grad
                    ahead.append(grad.lerp(buf, momentum))  # Nesterov: look one step ahead
                update = orthogonalize(torch.stack(ahead))  # (n, rows, cols): n matrices at once
                # tall: an orthogonal update's rows are short (mean norm² cols/rows), so scale them up
                scale = max(1.0, rows / cols) ** 0.5
                for p, u in zip(params, update):
                    if keep is None:
                        p.mul_(1 - lr * group["weight_decay"])
                        p.add_(u, alpha=-lr * scale)
                    else:  # the same, times keep: a skipped step changes nothing
                        p.mul_(1 - lr * group["weight_decay"] * keep)
                        p.sub_(u * (lr * scale * keep))


class Optimizers:
    """Several optimizers stepped as one (here AdamW and Muon), with one state_dict."""

    def __init__(self, *optimizers):
        self.optimizers = optimizers

    @property
    def param_groups(self):
        return [group for opt in self.optimizers for group in opt.param_groups]

    def step(self):
        for opt in self.optimizers:
            opt.step()

    def zero_grad(self, set_to_none=True):
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def state_dict(self):
        return {"optimizers": [opt.state_dict() for opt in self.optimizers]}

    def load_state_dict(self, state):
        for opt, s in zip(self.optimizers, state["optimizers"]):
            opt.load_state_dict(s)
