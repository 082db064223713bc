"""Optimizer steps (being written)."""


def sgd_step(*args, **kwargs):
    raise NotImplementedError("cuda sgd_step: not written yet")


def adam_step(*args, **kwargs):
    raise NotImplementedError("cuda adam_step: not written yet")


def foreach_mul_(*args, **kwargs):
    raise NotImplementedError("cuda foreach_mul_: not written yet")

