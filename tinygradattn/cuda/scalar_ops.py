"""The scalar functions the elementwise kernels apply, one per primitive, as factories of the
element type T (a numpy scalar type): each returns a plain Python function that numba
compiles as a device function. Constants are made with T(...), so a float32 kernel does
float32 arithmetic only (a bare 0.5 is a float64 in numba and drags the expression to it).
"""
import math

import numpy as np


# ---- unary -------------------------------------------------------------------------------
def neg(T):
    return lambda x: -x


def exp(T):
    return lambda x: math.exp(x)


def log(T):
    return lambda x: math.log(x)


def sqrt(T):
    return lambda x: math.sqrt(x)


def tanh(T):
    return lambda x: math.tanh(x)


def erf(T):
    return lambda x: math.erf(x)


def sin(T):
    inf = T(math.inf)
    # NaN for +-inf and NaN as given (x - x): the simulator's math.sin raises on them
    return lambda x: math.sin(x) if abs(x) < inf else x - x


def cos(T):
    inf = T(math.inf)
    return lambda x: math.cos(x) if abs(x) < inf else x - x


# ---- rounding (floats only; integer tensors never reach these) --------------------------------
def _integral_above(T):
    """The magnitude from which every value of T is an integer (2^52, or 2^23 in float32)."""
    return T(2.0 ** (np.finfo(T).nmant))


def floor(T):
    big = _integral_above(T)
    # NOTE: math.floor is floorf / floor on a GPU but returns a Python int in the simulator,
    # which inf and NaN cannot be: those (and all big values, integers already) pass through
    return lambda x: T(math.floor(x)) if abs(x) < big else x


def ceil(T):
    big = _integral_above(T)
    return lambda x: T(math.ceil(x)) if abs(x) < big else x


def round_(T):
    """Round half to even (torch.round): x - floor(x) is exact below 2^52 (2^23)."""
    big, half, one, two = _integral_above(T), T(0.5), T(1), T(2)

    def f(x):
        if not abs(x) < big:
            return x
        r = T(math.floor(x))
        d = x - r                                           # in [0, 1), exact
        odd = r - two * T(math.floor(r * half)) != 0
        return r + one if (d > half or (d == half and odd)) else r
    return f


def sigmoid(T):
    one = T(1)

    def f(x):
        z = math.exp(-abs(x))                   # exp of a non-positive number: no overflow
        return one / (one + z) if x >= 0 else z / (one + z)
    return f


def relu(T):
    zero = T(0)
    return lambda x: x if x > zero else (x if x != x else zero)    # NaN stays NaN


def abs_(T):
    return lambda x: abs(x)


def sign(T):
    one, zero = T(1), T(0)
    return lambda x: one if x > zero else (-one if x < zero else x)    # 0, -0, NaN as given


def logical_not(T):
    zero = T(0)
    return lambda x: x == zero


def identity(T):
    return lambda x: x


def to_bool(T):
    zero = T(0)
    return lambda x: x != zero


# ---- GELU (torch's two forms) ------------------------------------------------------------
def gelu(T, approximate):
    """x * Phi(x), Phi by erf ('none') or torch's tanh form ('tanh')."""
    half, one = T(0.5), T(1)
    if approximate == "tanh":
        k0, k1 = T(math.sqrt(2 / math.pi)), T(0.044715)
        return lambda x: half * x * (one + math.tanh(k0 * (x + k1 * x * x * x)))
    inv_sqrt2 = T(1 / math.sqrt(2))
    return lambda x: half * x * (one + math.erf(x * inv_sqrt2))


def gelu_grad(T, approximate):
    """d gelu / dx."""
    half, one = T(0.5), T(1)
    if approximate == "tanh":
        k0, k1, k3 = T(math.sqrt(2 / math.pi)), T(0.044715), T(3 * 0.044715)

        def f(x):
            t = math.tanh(k0 * (x + k1 * x * x * x))
            return half * (one + t) + half * x * (one - t * t) * k0 * (one + k3 * x * x)
        return f
    inv_sqrt2, inv_sqrt2pi = T(1 / math.sqrt(2)), T(1 / math.sqrt(2 * math.pi))
    neg_half = T(-0.5)
    return lambda x: (half * (one + math.erf(x * inv_sqrt2))
                      + x * inv_sqrt2pi * math.exp(neg_half * x * x))


# ---- binary ------------------------------------------------------------------------------
def add(T):
    return lambda a, b: a + b


def sub(T):
    return lambda a, b: a - b


def mul(T):
    return lambda a, b: a * b


def div(T):
    return lambda a, b: a / b


def pow_(T):
    if np.dtype(T).kind == "f":
        return lambda a, b: math.pow(a, b)
    one, zero = T(1), T(0)

    def ipow(a, b):                 # integers: by squaring; a negative exponent gives 0
        if b < zero:
            return one if a == one else (zero if a != -one else (one if b % 2 == 0 else -one))
        r = one
        while b > zero:
            if b & one:
                r *= a
            a *= a
            b >>= one
        return r
    return ipow


def maximum(T):
    return lambda a, b: a if (a > b or a != a) else b       # NaN wins, as numpy


def minimum(T):
    return lambda a, b: a if (a < b or a != a) else b


def eq(T):
    return lambda a, b: a == b


def ne(T):
    return lambda a, b: a != b


def lt(T):
    return lambda a, b: a < b


def le(T):
    return lambda a, b: a <= b


def gt(T):
    return lambda a, b: a > b


def ge(T):
    return lambda a, b: a >= b


def logical_and(T):
    zero = T(0)
    return lambda a, b: a != zero and b != zero


def logical_or(T):
    zero = T(0)
    return lambda a, b: a != zero or b != zero


UNARY = {"neg": neg, "exp": exp, "log": log, "sqrt": sqrt, "tanh": tanh, "erf": erf,
         "sin": sin, "cos": cos, "floor": floor, "ceil": ceil, "round": round_,
         "sigmoid": sigmoid, "relu": relu, "abs": abs_, "sign": sign,
         "logical_not": logical_not, "identity": identity, "to_bool": to_bool}
BINARY = {"add": add, "sub": sub, "mul": mul, "div": div, "pow": pow_, "maximum": maximum,
          "minimum": minimum, "eq": eq, "ne": ne, "lt": lt, "le": le, "gt": gt, "ge": ge,
          "logical_and": logical_and, "logical_or": logical_or}
COMPARISONS = ("eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or")
FLOAT_ONLY = ("exp", "log", "sqrt", "tanh", "erf", "sigmoid", "div", "sin", "cos", "floor", "ceil",
              "round")
