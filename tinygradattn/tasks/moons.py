"""Two moons: a 2-D toy classification task, and a small MLP trained on it with our autograd.

Sits above the public API only (tensors, `nn`, `optim`): no numpy, no backend. The loop is
written out (forward, loss, backward, step) rather than run by the Trainer, so that it reads
as the smallest complete training program.

    >>> from tinygradattn.tasks.moons import train_moons
    >>> metrics = train_moons(steps=300, log=lambda s: None)
    >>> metrics["test_acc"] >= 0.97
    True
"""
import time

from tinygradattn import nn, optim
from tinygradattn.autograd import no_grad
from tinygradattn.creation import manual_seed, rand, randn
from tinygradattn.nn import functional as F
from tinygradattn.tensor import cat, where


def make_moons(n, noise=0.1):
    """n points of two interleaving half circles, from tga's global generator.

    Returns x (n, 2) float32 and y (n,) int64 in {0, 1}. Class 0 is the upper moon
    (cos t, sin t), class 1 the lower one (1 - cos t, 0.5 - sin t), t uniform on [0, pi],
    plus Gaussian noise of std `noise` (sklearn.datasets.make_moons with random angles).
    """
    g = randn(n, 2)                                             # (n, 2)
    r = (g * g).sum(1, keepdim=True).clamp(min=1e-12).sqrt()         # (n, 1)
    # a normalised Gaussian pair is uniform on the circle; |sin| folds it onto the upper half
    cos_t, sin_t = g[:, 0:1] / r, (g[:, 1:2] / r).abs()              # (n, 1), (n, 1)
    upper = cat([cos_t, sin_t], dim=1)                           # (n, 2)
    lower = cat([1.0 - cos_t, 0.5 - sin_t], dim=1)               # (n, 2)
    is_lower = rand(n) < 0.5                                     # (n,) bool
    x = where(is_lower.unsqueeze(1), lower, upper) + noise * randn(n, 2)
    return x, is_lower.long()


def make_mlp(sizes):
    """Linear, Tanh, ..., Linear over the widths in `sizes` (torch.nn.Linear's default init)."""
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i > 0:
            layers.append(nn.Tanh())
        layers.append(nn.Linear(fan_in, fan_out))
    return nn.Sequential(*layers)


def accuracy(model, x, y):
    with no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def train_moons(steps=300, hidden=32, lr=0.02, seed=0, n_train=1000, n_test=1000, noise=0.1,
                log=print, device="cpu"):
    """Train a 2 -> hidden -> hidden -> 2 tanh MLP on two moons, full batch, with Adam.

    Returns {"train_acc", "test_acc", "loss", "steps", "seconds"}; the test set is drawn
    separately and never trained on. Progress goes through `log` (a print-like callable).
    """
    manual_seed(seed)
    x_train, y_train = (t.to(device) for t in make_moons(n_train, noise))
    x_test, y_test = (t.to(device) for t in make_moons(n_test, noise))
    model = make_mlp([2, hidden, hidden, 2]).to(device)
    opt = optim.Adam(model.parameters(), lr=lr)
    every = max(steps // 10, 1)
    start = time.perf_counter()
    loss = float("nan")
    for step in range(1, steps + 1):
        loss_t = F.cross_entropy(model(x_train), y_train)
        opt.zero_grad()
        loss_t.backward()
        opt.step()
        loss = float(loss_t)
        if step % every == 0 or step == steps:
            log(f"step {step:5d}/{steps}  loss {loss:.4f}  "
                f"train acc {accuracy(model, x_train, y_train):.3f}")
    seconds = time.perf_counter() - start
    metrics = {"train_acc": accuracy(model, x_train, y_train),
               "test_acc": accuracy(model, x_test, y_test),
               "loss": loss, "steps": steps, "seconds": seconds}
    log(f"moons: train acc {metrics['train_acc']:.3f}  test acc {metrics['test_acc']:.3f}  "
        f"({steps} steps, {seconds:.1f} s)")
    return metrics
