"""OpenMP wait policy for our kernels; imported before any extension loads libgomp.

libgomp reads these once, when it is loaded. By default its idle threads spin for ~300,000
iterations (milliseconds) after each parallel region; when the cores are shared (another
process, PyTorch's or OpenBLAS's own thread pools in the same process, a test runner) the
spinning threads steal the cores the working ones need. Fully passive threads cost a
wake-up (~100 us here) on every parallel kernel instead. A short spin keeps most of both:
GPT training step on the 2-core machine (n_layer=4, n_embd=128, batch 12 x 64), in ms:

                      libgomp default   PASSIVE   PASSIVE + GOMP_SPINCOUNT=10000
    quiet machine           -             55.6          49.3
    load ~4                1304           157           217

A user's own settings win (setdefault).
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "10000")
