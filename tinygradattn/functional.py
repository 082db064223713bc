"""torch-style free functions (tga.exp(x), tga.sum(x, 1), ...): each calls the Tensor method."""
import numbers

from .tensor import Tensor, write_out


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

# more of torch's elementwise math and reductions
sin = _method("sin")
cos = _method("cos")
rsqrt = _method("rsqrt")
floor = _method("floor")
ceil = _method("ceil")
round = _method("round")
sign = _method("sign")
isnan = _method("isnan")
isinf = _method("isinf")
isfinite = _method("isfinite")
max = _method("max")
min = _method("min")
all = _method("all")
any = _method("any")
cumsum = _method("cumsum")
prod = _method("prod")
norm = _method("norm")
sort = _method("sort")
argsort = _method("argsort")
topk = _method("topk")
multinomial = _method("multinomial")
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


def pow(input, exponent):
    """input ** exponent elementwise (torch.pow): a Tensor on either side, the other a Tensor
    or a number.

        >>> import tinygradattn as tga
        >>> tga.pow(2, tga.tensor([1., 3.]))
        tensor([2., 8.])
    """
    if isinstance(input, Tensor):
        return input.pow(exponent)
    if isinstance(exponent, Tensor) and isinstance(input, numbers.Number) and \
            not isinstance(input, complex):
        return exponent.__rpow__(input)
    raise TypeError(f"pow() received an invalid combination of arguments: got "
                    f"({type(input).__name__}, {type(exponent).__name__}); one of them must be "
                    "a Tensor, the other a Tensor or a number")


# ---- torch.add / sub / mul with torch's keywords (alpha=, out=) -----------------------------
def _check_input(name, input):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be Tensor, not {type(input).__name__}")


def add(input, other, *, alpha=1, out=None):
    """input + alpha * other (torch.add); out= as torch's."""
    _check_input("add", input)
    return write_out(input + (other if alpha == 1 else other * alpha), out, "add")


def sub(input, other, *, alpha=1, out=None):
    """input - alpha * other (torch.sub); out= as torch's."""
    _check_input("sub", input)
    return write_out(input - (other if alpha == 1 else other * alpha), out, "sub")


def mul(input, other, *, out=None):
    """input * other (torch.mul, torch.multiply); out= as torch's."""
    _check_input("mul", input)
    return write_out(input * other, out, "mul")


multiply = mul
