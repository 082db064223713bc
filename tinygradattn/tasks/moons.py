"""Two moons: a 2-D toy classification task, and a small MLP trained on it with our autograd.

Sits above the public API only (tensors, `no_grad`, `nn.functional`): no numpy, no
backend. There is no nn.Module or optimizer yet, so the model is a list of raw parameter
tensors and Adam is written out by hand on their `.grad`.

    >>> from tinygradattn.tasks.moons import train_moons
    >>> metrics = train_moons(steps=300, log=lambda s: None)
    >>> metrics["test_acc"] >= 0.97
    True
"""
import math
import time

import tinygradattn.nn.functional as F
from tinygradattn.autograd import no_grad
from tinygradattn.creation import manual_seed, rand, randn, zeros_like
from tinygradattn.tensor import cat, where


def make_moons(n, noise=0.1):
    """n points of two interleaving half circles, from tga's global generator.

    Returns x (n, 2) float32 and y (n,) int64 in {0, 1}. Class 0 is the upper moon
    (cos t, sin t), class 1 the lower one (1 - cos t, 0.5 - sin t), t uniform on [0, pi],
    plus Gaussian noise of std `noise` (sklearn.datasets.make_moons with random angles).
    """
    g = randn(n, 2)                                                 # (n, 2)
    r = (g * g).sum(1, keepdim=True).clamp(min=1e-12).sqrt()         # (n, 1)
    # a normalised Gaussian pair is uniform on the circle; |sin| folds it onto the upper half
    cos_t, sin_t = g[:, 0:1] / r, (g[:, 1:2] / r).abs()              # (n, 1), (n, 1)
    upper = cat([cos_t, sin_t], dim=1)                               # (n, 2)
    lower = cat([1.0 - cos_t, 0.5 - sin_t], dim=1)                   # (n, 2)
    is_lower = rand(n) < 0.5                                         # (n,) bool
    x = where(is_lower.unsqueeze(1), lower, upper) + noise * randn(n, 2)
    return x, is_lower.long()


def init_mlp(sizes):
    """Weights (out, in) and biases (out,) for each layer, torch.nn.Linear's default init:
    uniform on [-1/sqrt(in), 1/sqrt(in)]."""
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / math.sqrt(fan_in)
        w = (rand(fan_out, fan_in) * 2 - 1) * bound
        b = (rand(fan_out) * 2 - 1) * bound
        params += [w.requires_grad_(), b.requires_grad_()]
    return params


def mlp(params, x):
    """x (N, in) -> logits (N, out): linear, tanh, ..., linear."""
    n_layers = len(params) // 2
    for i in range(n_layers):
        x = F.linear(x, params[2 * i], params[2 * i + 1])
        if i < n_layers - 1:
            x = x.tanh()
    return x


class Adam:
    """Hand-written Adam (torch.optim.Adam's update, no weight decay) until tga.optim lands."""

    def __init__(self, params, lr=1e-2, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = [zeros_like(p) for p in params]
        self.v = [zeros_like(p) for p in params]
        self.t = 0

    def step(self):
        b1, b2 = self.betas
        self.t += 1
        with no_grad():
            for p, m, v in zip(self.params, self.m, self.v):
                g = p.grad
                m[...] = b1 * m + (1 - b1) * g
                v[...] = b2 * v + (1 - b2) * g * g
                m_hat = m / (1 - b1 ** self.t)
                v_hat = v / (1 - b2 ** self.t)
                p[...] = p - self.lr * m_hat / (v_hat.sqrt() + self.eps)

    def zero_grad(self):
        for p in self.params:
            p.grad = None


def accuracy(params, x, y):
    with no_grad():
        return float((mlp(params, x).argmax(1) == y).float().mean())


def train_moons(steps=300, hidden=32, lr=0.02, seed=0, n_train=1000, n_test=1000, noise=0.1,
                log=print):
    """Train a 2 -> hidden -> hidden -> 2 tanh MLP on two moons, full batch, with Adam.

    Returns {"train_acc", "test_acc", "loss", "steps", "seconds"}; the test set is drawn
    separately and never trained on. Progress goes through `log` (a print-like callable).
    """
    manual_seed(seed)
    x_train, y_train = make_moons(n_train, noise)
    x_test, y_test = make_moons(n_test, noise)
    params = init_mlp([2, hidden, hidden, 2])
    opt = Adam(params, lr=lr)
    every = max(steps // 10, 1)
    start = time.perf_counter()
    loss = float("nan")
    for step in range(1, steps + 1):
        loss_t = F.cross_entropy(mlp(params, x_train), y_train)
        opt.zero_grad()
        loss_t.backward()
        opt.step()
        loss = float(loss_t)
        if step % every == 0 or step == steps:
            log(f"step {step:5d}/{steps}  loss {loss:.4f}  "
                f"train acc {accuracy(params, x_train, y_train):.3f}")
    seconds = time.perf_counter() - start
    metrics = {"train_acc": accuracy(params, x_train, y_train),
               "test_acc": accuracy(params, x_test, y_test),
               "loss": loss, "steps": steps, "seconds": seconds}
    log(f"moons: train acc {metrics['train_acc']:.3f}  test acc {metrics['test_acc']:.3f}  "
        f"({steps} steps, {seconds:.1f} s)")
    return metrics
