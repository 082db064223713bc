"""OpenMP wait policy for our kernels; imported before any extension loads libgomp.

libgomp reads these once, when it is loaded. By default its idle threads spin for ~300,000
iterations (milliseconds) after each parallel region; when the cores are shared (another
process, PyTorch's or OpenBLAS's own thread pools in the same process, a test runner) the
spinning threads steal the cores the working ones need. Fully passive threads cost a
wake-up on every parallel kernel instead. A short spin (PASSIVE + GOMP_SPINCOUNT=10000)
keeps most of both (measured: benchmarks/README.md, "Why the kernels are shaped as they
are"). A user's own settings win (setdefault).
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "10000")
