"""Row kernels (being written)."""


def softmax_fwd(*args, **kwargs):
    raise NotImplementedError("cuda softmax_fwd: not written yet")


def softmax_bwd(*args, **kwargs):
    raise NotImplementedError("cuda softmax_bwd: not written yet")


def log_softmax_fwd(*args, **kwargs):
    raise NotImplementedError("cuda log_softmax_fwd: not written yet")


def log_softmax_bwd(*args, **kwargs):
    raise NotImplementedError("cuda log_softmax_bwd: not written yet")


def layer_norm_fwd(*args, **kwargs):
    raise NotImplementedError("cuda layer_norm_fwd: not written yet")


def layer_norm_bwd(*args, **kwargs):
    raise NotImplementedError("cuda layer_norm_bwd: not written yet")


def cross_entropy_fwd(*args, **kwargs):
    raise NotImplementedError("cuda cross_entropy_fwd: not written yet")


def cross_entropy_bwd(*args, **kwargs):
    raise NotImplementedError("cuda cross_entropy_bwd: not written yet")

