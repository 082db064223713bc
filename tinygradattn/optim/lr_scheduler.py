"""Learning-rate schedules (torch.optim.lr_scheduler): LRScheduler, StepLR, CosineAnnealingLR,
LambdaLR, and `warmup_cosine`, the warmup-then-cosine schedule a small GPT trains with.

A scheduler rewrites `group['lr']` of its optimizer's groups on each `step()` (call it after
`optimizer.step()`). As in torch: construction stores `initial_lr` in every group (the
`base_lrs`) and makes the first step (last_epoch 0); `state_dict()` is every attribute but
the optimizer, so a resumed run continues the same sequence.
"""
import math
import numbers
import types

from .optimizer import Optimizer


class LRScheduler:
    """Base class (torch.optim.lr_scheduler.LRScheduler): subclasses define get_lr().

    Args:
        optimizer: the optimizer whose groups' 'lr' this schedule sets.
        last_epoch: index of the last step taken; -1 starts a fresh schedule (and sets
            'initial_lr' in each group), a value >= 0 resumes one (the groups must hold
            'initial_lr' already).
    """

    def __init__(self, optimizer, last_epoch=-1):
        _check_optimizer(optimizer)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] "
                                   "when resuming scheduler with last_epoch >= 0")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._is_initial = True
        self._step_count = 0
        self.step()
        self._is_initial = False

    def get_lr(self):
        """The learning rates of the groups at self.last_epoch (subclasses define it)."""
        raise NotImplementedError

    def get_last_lr(self):
        """The learning rates the last step() set, one per group."""
        return self._last_lr

    def step(self, epoch=None):
        """Advance the schedule by one step (or jump to `epoch`, closed form where known)."""
        self._step_count += 1
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            values = (self._get_closed_form_lr() if hasattr(self, "_get_closed_form_lr")
                      else self.get_lr())
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        """Every attribute but the optimizer (torch's layout)."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)

    def _group_lrs(self):
        return [group["lr"] for group in self.optimizer.param_groups]


class StepLR(LRScheduler):
    """Multiply the learning rate by gamma every step_size steps (torch's StepLR).

    Example:
        >>> import tinygradattn as tga
        >>> from tinygradattn.optim import SGD
        >>> opt = SGD([tga.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = StepLR(opt, step_size=2, gamma=0.5)
        >>> lrs = []
        >>> for _ in range(5):
        ...     lrs.append(sched.get_last_lr()[0])
        ...     opt.step(); sched.step()
        >>> lrs
        [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        # a real number, as torch takes (step_size=epochs / 3 is common)
        self.step_size = _positive_int("StepLR", "step_size", step_size, numbers.Real)
        self.gamma = _real("StepLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._group_lrs()
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size)
                for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from the initial lr down to eta_min over T_max steps (torch's).

    Uses torch's recursive form (each lr from the previous one), so the sequence matches
    torch's to rounding; past T_max it climbs back up, as torch's does (no restarts).

        lr_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max = _positive_int("CosineAnnealingLR", "T_max", T_max, numbers.Real)
        self.eta_min = _real("CosineAnnealingLR", "eta_min", eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t, T = self.last_epoch, self.T_max
        if self._is_initial:
            return self._group_lrs()
        if self._step_count == 1 and t > 0:            # resumed at step t
            return [self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(t * math.pi / T)) / 2
                    for base_lr in self.base_lrs]
        if (t - 1 - T) % (2 * T) == 0:                  # at a trough: the ratio below is 0/0
            return [group["lr"] + (base_lr - self.eta_min) * (1 - math.cos(math.pi / T)) / 2
                    for base_lr, group in zip(self.base_lrs, self.optimizer.param_groups)]
        return [(1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
                * (group["lr"] - self.eta_min) + self.eta_min
                for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [self.eta_min + (base_lr - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base_lr in self.base_lrs]


class LambdaLR(LRScheduler):
    """lr = initial_lr * lr_lambda(step), one function or one per group (torch's LambdaLR).

    Example:
        >>> import tinygradattn as tga
        >>> from tinygradattn.optim import SGD
        >>> opt = SGD([tga.zeros(1, requires_grad=True)], lr=0.5)
        >>> sched = LambdaLR(opt, lambda step: 1 / (step + 1))
        >>> opt.step(); sched.step()
        >>> sched.get_last_lr()
        [0.25]
    """

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        _check_optimizer(optimizer)
        self.optimizer = optimizer
        if not isinstance(lr_lambda, (list, tuple)):
            self.lr_lambdas = [lr_lambda] * len(optimizer.param_groups)
        else:
            if len(lr_lambda) != len(optimizer.param_groups):
                raise ValueError(f"Expected {len(optimizer.param_groups)} lr_lambdas, but got "
                                 f"{len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        for fn in self.lr_lambdas:
            if not callable(fn):
                raise TypeError(f"LambdaLR: lr_lambda must be callable (or a list of them), "
                                f"got {type(fn).__name__}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base_lr * fn(self.last_epoch)
                for fn, base_lr in zip(self.lr_lambdas, self.base_lrs)]

    def state_dict(self):
        """As torch: plain functions and lambdas are not saved, callable objects' __dict__ is."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else fn.__dict__.copy()
                               for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        lambdas = state_dict.pop("lr_lambdas")
        self.__dict__.update(state_dict)
        for fn, saved in zip(self.lr_lambdas, lambdas):
            if saved is not None:
                fn.__dict__.update(saved)


class _WarmupCosine:
    """The multiplier of warmup_cosine: a picklable callable object, so LambdaLR saves it."""

    def __init__(self, warmup_steps, total_steps, min_ratio):
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.min_ratio = min_ratio

    def __call__(self, step):
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return self.min_ratio + (1 - self.min_ratio) * cosine


def warmup_cosine(optimizer, warmup_steps, total_steps, min_lr=0.0):
    """Linear warmup to each group's lr, then cosine decay to min_lr (a LambdaLR).

    With base lr B, W = warmup_steps and N = total_steps, the lr at step t (0-based, as
    get_last_lr() reports it before optimizer step t + 1) is

        B * (t + 1) / W                                               t < W
        min_lr + (B - min_lr) * (1 + cos(pi * (t - W) / (N - W))) / 2     W <= t <= N
        min_lr                                                        t > N

    so the first step already learns (B / W, not 0), the peak B is reached at t = W - 1 and
    t = W, and the schedule ends at min_lr. min_lr is absolute (for every group, as a ratio
    min_lr / B of that group's base lr). Not in torch; the usual GPT recipe.

    Example:
        >>> import tinygradattn as tga
        >>> from tinygradattn.optim import AdamW
        >>> opt = AdamW([tga.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = warmup_cosine(opt, warmup_steps=2, total_steps=4, min_lr=0.0)
        >>> lrs = []
        >>> for _ in range(5):
        ...     lrs.append(round(sched.get_last_lr()[0], 3))
        ...     opt.step(); sched.step()
        >>> lrs
        [0.5, 1.0, 1.0, 0.5, 0.0]
    """
    _check_optimizer(optimizer)
    if warmup_steps < 0 or total_steps < warmup_steps:
        raise ValueError(f"warmup_cosine: need 0 <= warmup_steps <= total_steps, got "
                         f"warmup_steps={warmup_steps}, total_steps={total_steps}")
    lambdas = []
    for group in optimizer.param_groups:
        base = group.get("initial_lr", group["lr"])
        if min_lr < 0 or (base > 0 and min_lr > base):
            raise ValueError(f"warmup_cosine: min_lr={min_lr} must be in [0, lr={base}]")
        lambdas.append(_WarmupCosine(warmup_steps, total_steps, min_lr / base if base else 0.0))
    return LambdaLR(optimizer, lambdas)


def _check_optimizer(optimizer):
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")


def _positive_int(cls, name, value, kind=numbers.Integral):
    """A step count: a positive int (or real, for kind=numbers.Real); torch divides by it, so
    0 is a ZeroDivisionError there."""
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"{cls}: {name} must be a positive number, got "
                        f"{type(value).__name__} {value!r}")
    if not value > 0:
        raise ValueError(f"{cls}: {name} must be positive, got {value}")
    return value


def _real(cls, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{cls}: {name} must be a number, got {type(value).__name__} "
                        f"{value!r}")
    return value
