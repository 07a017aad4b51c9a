# The 25 matrix-vector products of one decoding step of the shakespeare-shape model, in several forms.
import time

import torch
import torch.nn.functional as F

torch.manual_seed(0)
shapes = [(1152, 384), (384, 384), (1536, 384), (384, 1536)] * 6 + [(65, 384)]
Ws = [torch.randn(o, i) for o, i in shapes]
WTs = [w.t().contiguous() for w in Ws]
x384 = torch.randn(1, 384); x1536 = torch.randn(1, 1536)
def inp(w): return x384 if w.shape[1] == 384 else x1536
def bench(name, fn, reps=200):
    for _ in range(20): fn()
    ts = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(reps): fn()
        ts.append((time.perf_counter() - t) / reps * 1e3)
    print(f"{name}: {sorted(ts)[2]:.3f} ms per step of 25 matmuls")
for threads in (2, 1):
    torch.set_num_threads(threads)
    print("threads", threads)
    bench("F.linear", lambda: [F.linear(inp(w), w) for w in Ws])
    bench("mv", lambda: [torch.mv(w, inp(w)[0]) for w in Ws])
    bench("x @ WT (contig)", lambda: [inp(w) @ wt for w, wt in zip(Ws, WTs)])
    allw = torch.cat([w.reshape(-1) for w in Ws])
    bench("sum of all weights", lambda: allw.sum())
torch.set_num_threads(2)
print("more, 2 threads")
Wb = [w.bfloat16() for w in Ws]; WTb = [w.t().contiguous() for w in Wb]
xb384, xb1536 = x384.bfloat16(), x1536.bfloat16()
def inpb(w): return xb384 if w.shape[1] == 384 else xb1536
bench("bf16 F.linear", lambda: [F.linear(inpb(w), w) for w in Wb])
bench("bf16 x @ WT", lambda: [inpb(w) @ wt for w, wt in zip(Wb, WTb)])
x2 = {384: torch.randn(2, 384), 1536: torch.randn(2, 1536)}
bench("M=2 x @ WT", lambda: [x2[w.shape[1]] @ wt for w, wt in zip(Ws, WTs)])
bench("M=2 F.linear", lambda: [F.linear(x2[w.shape[1]], w) for w in Ws])
bench("(W * x).sum", lambda: [(w * inp(w)).sum(1) for w in Ws])
