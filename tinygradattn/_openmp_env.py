"""OpenMP wait policy for our kernels; imported before any extension loads libgomp.

libgomp reads OMP_WAIT_POLICY once, when it is loaded. By default its idle threads spin for a
while after each parallel region; when the cores are shared (another process, PyTorch's own
OpenMP pool in the same process, a test runner) the spinning threads steal the cores the
working ones need. Measured on the 2-core machine under load: one GPT training step took
1304 ms with the default policy and 157 ms with PASSIVE. A user's own setting wins.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
