"""Train a small MLP on the two-moons toy dataset with tinygradattn's autograd.

    python examples/mlp_moons.py [--steps 500] [--seed 0]

Everything is raw tensors: the parameters are leaf tensors with requires_grad=True, the
forward pass is a few tensor ops, `loss.backward()` fills each `.grad`, and the update is
plain SGD with momentum written out by hand: every step of training in view. The same job
with `nn.Sequential` and `optim.Adam` is `tinygradattn.tasks.moons` (`tinygradattn train
--task moons`).
"""
import argparse
import math
import time

import tinygradattn as tga
import tinygradattn.nn.functional as F
from tinygradattn.tasks.moons import make_moons


def linear_params(fan_in, fan_out):
    """torch.nn.Linear's default init: uniform on [-1/sqrt(fan_in), 1/sqrt(fan_in)]."""
    bound = 1.0 / math.sqrt(fan_in)
    w = ((tga.rand(fan_out, fan_in) * 2 - 1) * bound).requires_grad_()   # (out, in)
    b = ((tga.rand(fan_out) * 2 - 1) * bound).requires_grad_()           # (out,)
    return w, b


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    tga.manual_seed(args.seed)

    # ---- data: 1000 points to train on, 1000 held out -----------------------------------
    x_train, y_train = make_moons(1000, noise=0.1)      # (1000, 2) float32, (1000,) int64
    x_test, y_test = make_moons(1000, noise=0.1)

    # ---- model: 2 -> hidden -> hidden -> 2, ReLU ------------------------------------------
    w1, b1 = linear_params(2, args.hidden)
    w2, b2 = linear_params(args.hidden, args.hidden)
    w3, b3 = linear_params(args.hidden, 2)
    params = [w1, b1, w2, b2, w3, b3]

    def model(x):                                       # x: (N, 2) -> logits (N, 2)
        h = F.relu(F.linear(x, w1, b1))                 # (N, hidden)
        h = F.relu(F.linear(h, w2, b2))                 # (N, hidden)
        return F.linear(h, w3, b3)

    def accuracy(x, y):
        with tga.no_grad():
            return float((model(x).argmax(dim=1) == y).float().mean())

    # ---- training loop: full batch, SGD with momentum -------------------------------------
    velocity = [tga.zeros_like(p) for p in params]
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        loss = F.cross_entropy(model(x_train), y_train)
        for p in params:
            p.grad = None
        loss.backward()
        with tga.no_grad():                             # the update is not part of the graph
            for p, v in zip(params, velocity):
                v[...] = 0.9 * v + p.grad               # torch.optim.SGD(momentum=0.9)
                p[...] = p - args.lr * v
        if step % 100 == 0 or step == 1:
            print(f"step {step:4d}  loss {float(loss):.4f}  "
                  f"train acc {accuracy(x_train, y_train):.3f}")
    seconds = time.perf_counter() - start

    print(f"train accuracy {accuracy(x_train, y_train):.4f}  "
          f"test accuracy {accuracy(x_test, y_test):.4f}  ({args.steps} steps, {seconds:.1f} s)")


if __name__ == "__main__":
    main()
