"""Issue 2's quick figures in one run: GEMM GFLOP/s (ours, numpy, torch; float32, 2 threads)
and per-op overhead against torch. `python -m benchmarks.quick_figures` (needs torch)."""
import timeit
import numpy as np
import tinygradattn as tga
import torch
from tinygradattn.backend.cpu import CPUBackend
tga.set_num_threads(2); torch.set_num_threads(2)
be = CPUBackend()
for n in (256, 1024):
    a = np.random.randn(n, n).astype(np.float32); b = np.random.randn(n, n).astype(np.float32)
    reps = 200 if n == 256 else 10
    ours = min(timeit.repeat(lambda: be.matmul(a, b), number=reps, repeat=7)) / reps
    nump = min(timeit.repeat(lambda: a @ b, number=reps, repeat=7)) / reps
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    tor = min(timeit.repeat(lambda: ta @ tb, number=reps, repeat=7)) / reps
    f = 2 * n ** 3 / 1e9
    print(f"GEMM {n}: ours {f/ours:.0f} GFLOP/s, numpy {f/nump:.0f}, torch {f/tor:.0f}")
x, y = tga.randn(2, 2), tga.randn(2, 2); tx, ty = torch.randn(2, 2), torch.randn(2, 2)
n = 20000
o = min(timeit.repeat(lambda: x + y, number=n, repeat=5)) / n * 1e6
t = min(timeit.repeat(lambda: tx + ty, number=n, repeat=5)) / n * 1e6
print(f"2x2 add: ours {o:.2f} us, torch {t:.2f} us, torch/ours {t/o:.2f}")
a, b = tga.randn(64, 64, requires_grad=True), tga.randn(64, 64, requires_grad=True)
ta, tb = torch.randn(64, 64, requires_grad=True), torch.randn(64, 64, requires_grad=True)
n = 2000
o = min(timeit.repeat(lambda: (a @ b).sum().backward(), number=n, repeat=5)) / n * 1e6
t = min(timeit.repeat(lambda: (ta @ tb).sum().backward(), number=n, repeat=5)) / n * 1e6
print(f"(a@b).sum().backward() 64x64: ours {o:.1f} us, torch {t:.1f} us, torch/ours {t/o:.2f}")
