"""torch-style free functions (tga.exp(x), tga.sum(x, 1), ...): each calls the Tensor method."""
from .tensor import Tensor


def _method(name):
    def fn(input, *args, **kwargs):
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}(): argument 'input' must be Tensor, not "
                            f"{type(input).__name__}")
        return getattr(input, name)(*args, **kwargs)
    fn.__name__ = name
    fn.__doc__ = f"tga.{name}(input, ...) is input.{name}(...)."
    return fn


abs = _method("abs")
clamp = _method("clamp")
exp = _method("exp")
log = _method("log")
sqrt = _method("sqrt")
tanh = _method("tanh")
sigmoid = _method("sigmoid")
relu = _method("relu")
erf = _method("erf")
maximum = _method("maximum")
minimum = _method("minimum")
sum = _method("sum")
mean = _method("mean")
argmax = _method("argmax")
logsumexp = _method("logsumexp")
softmax = _method("softmax")
log_softmax = _method("log_softmax")
reshape = _method("reshape")
permute = _method("permute")
transpose = _method("transpose")
unsqueeze = _method("unsqueeze")
squeeze = _method("squeeze")
flatten = _method("flatten")
split = _method("split")
chunk = _method("chunk")
gather = _method("gather")
scatter = _method("scatter")
scatter_add = _method("scatter_add")
index_select = _method("index_select")
index_fill = _method("index_fill")
masked_fill = _method("masked_fill")
nonzero = _method("nonzero")
roll = _method("roll")
flip = _method("flip")
t = _method("t")
tril = _method("tril")
triu = _method("triu")
