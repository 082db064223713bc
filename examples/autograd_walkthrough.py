"""Reverse-mode autograd on one neuron, step by step.

    python examples/autograd_walkthrough.py

The expression: a neuron with weight w and bias b, one input x and a squared-error loss,

    z = w * x + b        a = tanh(z)        L = (a - t) ** 2

The forward pass records each op; `L.backward()` walks the graph from L back to the leaves
applying the chain rule. We print every intermediate, every gradient, and check them against
the derivation by hand and against gradcheck (central finite differences in float64).
"""
import math

import tinygradattn as tga


def op_name(grad_fn):
    """The name of the op that made a tensor (grad_fn is its Function, or a node for it)."""
    return getattr(grad_fn, "__name__", type(grad_fn).__name__)


def neuron_loss(w, b, x, t):
    z = w * x + b
    a = z.tanh()
    return (a - t) ** 2


def main():
    x, t = 2.0, 0.5                                    # a fixed input and target
    w = tga.tensor(0.3, requires_grad=True)            # the two parameters: leaf tensors
    b = tga.tensor(-0.1, requires_grad=True)

    print("forward: each op makes a new tensor that remembers the op (its grad_fn)")
    z = w * x + b
    a = z.tanh()
    L = (a - t) ** 2
    for name, v in (("z = w*x + b", z), ("a = tanh(z)", a), ("L = (a - t)^2", L)):
        print(f"  {name:14s} = {float(v): .6f}   grad_fn: {op_name(v.grad_fn)}")
    for v in (z, a):
        v.retain_grad()                                # keep .grad on non-leaves, to print it

    print("\nbackward: L.backward() fills .grad with dL/d(tensor)")
    L.backward()

    # the chain rule by hand
    dL_da = 2 * (float(a) - t)                         # L = (a - t)^2
    dL_dz = dL_da * (1 - math.tanh(float(z)) ** 2)     # a = tanh(z), tanh' = 1 - tanh^2
    dL_dw = dL_dz * x                                  # z = w x + b
    dL_db = dL_dz * 1.0
    rows = (("dL/da", a.grad, dL_da, "2 (a - t)"),
            ("dL/dz", z.grad, dL_dz, "dL/da * (1 - a^2)"),
            ("dL/dw", w.grad, dL_dw, "dL/dz * x"),
            ("dL/db", b.grad, dL_db, "dL/dz * 1"))
    for name, got, want, how in rows:
        ok = math.isclose(float(got), want, rel_tol=1e-5, abs_tol=1e-7)
        print(f"  {name} = {float(got): .6f}   by hand {how:18s} = {want: .6f}   "
              f"{'ok' if ok else 'MISMATCH'}")
        assert ok, f"{name}: autograd {float(got)} vs hand derivation {want}"

    print("\ngradcheck: the same gradients against central differences, in float64")
    w64 = tga.tensor(0.3, dtype=tga.float64, requires_grad=True)
    b64 = tga.tensor(-0.1, dtype=tga.float64, requires_grad=True)
    passed = tga.autograd.gradcheck(lambda w_, b_: neuron_loss(w_, b_, x, t), (w64, b64))
    print(f"  gradcheck(neuron_loss, (w, b)) -> {passed}")
    assert passed
    print("\nall gradients agree")


if __name__ == "__main__":
    main()
