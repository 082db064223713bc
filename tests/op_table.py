"""Every op, listed once: how to call it (the same lambda serves tinygradattn and torch: it gets
the library module first), its inputs and their domains, whether it is differentiable, and
which `Function` classes of tinygradattn.ops it exercises (test_ops.py fails when a Function
appears in no entry).

Input specs: a shape tuple is a float input drawn from `domain` (helpers.DOMAINS); a numpy
array is passed as given (int / bool arrays are never differentiated).
"""
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Op:
    name: str
    fn: object                    # fn(lib, *tensors) with lib = tinygradattn or torch
    inputs: list
    domain: object = "real"
    covers: tuple = ()            # Function class names this entry exercises
    grad: bool = True
    tol: str = "elementwise"
    gradcheck: object = None      # None: helpers decide by size
    torch_fn: object = None       # fn(torch, *tensors) where the call differs
    tags: tuple = field(default_factory=tuple)


OPS = []


def op(name, fn, inputs, **kw):
    OPS.append(Op(name, fn, list(inputs), **kw))


_rng = np.random.default_rng(1234)
BOOL_34 = _rng.random((3, 4)) > 0.5
BOOL_4 = np.array([True, False, True, False])
BOOL_31 = np.array([[True], [False], [True]])

# ---- binary arithmetic: same shapes, broadcasting pairs, Python scalars on either side -------
BINARY = {
    "add": (lambda L, a, b: a + b, ("Add",), ("real", "real")),
    "sub": (lambda L, a, b: a - b, ("Sub",), ("real", "real")),
    "mul": (lambda L, a, b: a * b, ("Mul",), ("real", "real")),
    "div": (lambda L, a, b: a / b, ("Div",), ("real", "nonzero")),
    "pow": (lambda L, a, b: a ** b, ("Pow",), ("positive", "small")),
    "maximum": (lambda L, a, b: L.maximum(a, b), ("Maximum",), ("distinct", "distinct")),
    "minimum": (lambda L, a, b: L.minimum(a, b), ("Minimum",), ("distinct", "distinct")),
}
PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 1, 4), (3, 1)),
         ((1,), (2, 3)), ((), (2, 3)), ((5,), ())]
for _name, (_fn, _covers, _dom) in BINARY.items():
    for _sa, _sb in PAIRS:
        op(f"{_name}{_sa}{_sb}", _fn, [_sa, _sb], domain=list(_dom), covers=_covers)

# to another device and back: the gradient flows back across both copies (cuda here is the
# GPU or numba's simulator, which tests/conftest.py turns on)
op("to_cuda_and_back", lambda L, a: (a.to("cuda") * 2).to("cpu"), [(3, 4)],
   torch_fn=lambda L, a: a * 2, covers=("ToDevice",))
op("add_scalar_right", lambda L, a: a + 2.5, [(3, 4)], covers=("Add",))
op("add_scalar_left", lambda L, a: 2.5 + a, [(3, 4)], covers=("Add",))
op("add_int_scalar", lambda L, a: a + 3, [(3, 4)], covers=("Add",))
op("sub_scalar_right", lambda L, a: a - 1.5, [(3, 4)], covers=("Sub",))
op("sub_scalar_left", lambda L, a: 1.5 - a, [(3, 4)], covers=("Sub",))
op("mul_scalar_right", lambda L, a: a * -3.0, [(3, 4)], covers=("Mul",))
op("mul_scalar_left", lambda L, a: 2 * a, [(3, 4)], covers=("Mul",))
op("div_scalar_right", lambda L, a: a / 4.0, [(3, 4)], covers=("Div",))
op("div_scalar_left", lambda L, a: 2.0 / a, [(3, 4)], domain="nonzero", covers=("Div",))
op("pow_scalar_exponent", lambda L, a: a ** 3, [(3, 4)], covers=("Pow",))
op("pow_half", lambda L, a: a ** 0.5, [(3, 4)], domain="positive", covers=("Pow",))
op("pow_negative_exponent", lambda L, a: a ** -2.0, [(3, 4)], domain="nonzero", covers=("Pow",))
op("pow_scalar_base", lambda L, a: 2.0 ** a, [(3, 4)], covers=("Pow",))
op("maximum_scalar", lambda L, a: L.maximum(a, L.tensor(0.25)), [(3, 4)], domain="distinct",
   covers=("Maximum",))
# ties: each side gets half the gradient (as in PyTorch; the finite difference agrees)
_TIE_A = np.array([[0.5, -1.0, 2.0], [0.25, 0.25, -3.0]])
_TIE_B = np.array([[0.5, 1.0, 2.0], [0.25, -0.25, -1.0]])
op("maximum_ties", lambda L, a, b: L.maximum(a, b), [_TIE_A, _TIE_B], covers=("Maximum",))
op("minimum_ties", lambda L, a, b: L.minimum(a, b), [_TIE_A, _TIE_B], covers=("Minimum",))
op("mul_then_sum_broadcast", lambda L, a, b: (a * b).sum(-1), [(3, 4), (4,)],
   covers=("Mul", "Sum"), tol="reduction")

# ---- unary -------------------------------------------------------------------------------------
UNARY = {
    "neg": (lambda L, x: -x, "real", ("Neg",)),
    "exp": (lambda L, x: x.exp(), "real", ("Exp",)),
    "log": (lambda L, x: x.log(), "positive", ("Log",)),
    "sqrt": (lambda L, x: x.sqrt(), "positive", ("Sqrt",)),
    "tanh": (lambda L, x: x.tanh(), "real", ("Tanh",)),
    "sigmoid": (lambda L, x: x.sigmoid(), "real", ("Sigmoid",)),
    "relu": (lambda L, x: x.relu(), "distinct", ("Relu",)),
    "abs": (lambda L, x: x.abs(), "distinct", ("Abs",)),
    "abs_builtin": (lambda L, x: abs(x), "distinct", ("Abs",)),
    "erf": (lambda L, x: x.erf(), "real", ("Erf",)),
    "clamp_both": (lambda L, x: x.clamp(-0.5, 0.5), "distinct", ("Clamp",)),
    "clamp_min": (lambda L, x: x.clamp(min=-0.3), "distinct", ("Clamp",)),
    "clamp_max": (lambda L, x: x.clamp(max=0.2), "distinct", ("Clamp",)),
    "free_exp": (lambda L, x: L.exp(x), "real", ("Exp",)),
    "free_log": (lambda L, x: L.log(x), "positive", ("Log",)),
    "free_sqrt": (lambda L, x: L.sqrt(x), "positive", ("Sqrt",)),
    "free_tanh": (lambda L, x: L.tanh(x), "real", ("Tanh",)),
    "free_sigmoid": (lambda L, x: L.sigmoid(x), "real", ("Sigmoid",)),
    "free_relu": (lambda L, x: L.relu(x), "distinct", ("Relu",)),
    "free_abs": (lambda L, x: L.abs(x), "distinct", ("Abs",)),
    "free_erf": (lambda L, x: L.erf(x), "real", ("Erf",)),
    "free_clamp": (lambda L, x: L.clamp(x, -0.5, 0.5), "distinct", ("Clamp",)),
}
for _name, (_fn, _dom, _covers) in UNARY.items():
    op(_name, _fn, [(3, 4)], domain=_dom, covers=_covers)
    op(f"{_name}_3d", _fn, [(2, 3, 5)], domain=_dom, covers=_covers)
op("sigmoid_large", lambda L, x: (x * 60.0).sigmoid(), [(4, 5)], covers=("Sigmoid",))
op("exp_0d", lambda L, x: x.exp(), [()], covers=("Exp",))
op("cast_to_float64", lambda L, x: x.double() * 3.0, [(3, 4)], covers=("Cast",))
op("cast_roundtrip", lambda L, x: (x.double() * 2.0).float(), [(3, 4)], covers=("Cast",),
   gradcheck=False)

# ---- where / masked_fill -----------------------------------------------------------------------
op("where_same_shape", lambda L, c, a, b: L.where(c, a, b), [BOOL_34, (3, 4), (3, 4)],
   covers=("Where",))
op("where_broadcast", lambda L, c, a, b: L.where(c, a, b), [BOOL_31, (3, 4), (4,)],
   covers=("Where",))
op("where_scalar_other", lambda L, c, a: L.where(c, a, 0.0), [BOOL_34, (3, 4)],
   covers=("Where",))
op("masked_fill", lambda L, m, x: x.masked_fill(m, -2.0), [BOOL_34, (3, 4)], covers=("Where",))
op("masked_fill_broadcast", lambda L, m, x: x.masked_fill(m, 1.5), [BOOL_4, (3, 4)],
   covers=("Where",))
op("masked_fill_-inf_softmax", lambda L, m, x: x.masked_fill(m, float("-inf")).softmax(-1),
   [BOOL_4, (3, 4)], covers=("Where", "Softmax"))
op("tril", lambda L, x: x.tril(), [(4, 5)], covers=("Where",))
op("tril_diag", lambda L, x: x.tril(1), [(2, 4, 4)], covers=("Where",))
op("triu_diag", lambda L, x: x.triu(-1), [(4, 3)], covers=("Where",))

# ---- comparisons and other non-differentiable ops ------------------------------------------------
for _cname, _cfn in {"lt": lambda L, a, b: a < b, "le": lambda L, a, b: a <= b,
                     "gt": lambda L, a, b: a > b, "ge": lambda L, a, b: a >= b,
                     "eq": lambda L, a, b: a == b, "ne": lambda L, a, b: a != b}.items():
    op(f"compare_{_cname}", _cfn, [_TIE_A, _TIE_B], grad=False)
op("compare_scalar", lambda L, a: a > 0.0, [(3, 4)], grad=False)
op("compare_broadcast", lambda L, a, b: a < b, [(3, 4), (4,)], grad=False)
op("argmax", lambda L, x: x.argmax(), [(3, 4)], domain="distinct", grad=False)
op("argmax_dim", lambda L, x: x.argmax(1), [(3, 4)], domain="distinct", grad=False)
op("argmax_dim_keepdim", lambda L, x: x.argmax(0, keepdim=True), [(3, 4)], domain="distinct",
   grad=False)
op("argmin_dim", lambda L, x: x.argmin(-1), [(3, 4)], domain="distinct", grad=False)
op("any", lambda L, m: m.any(), [BOOL_34], grad=False)
op("any_dim", lambda L, m: m.any(1), [BOOL_34], grad=False)
op("all_dim", lambda L, m: m.all(0), [BOOL_34], grad=False)
op("sum_bool", lambda L, m: m.sum(), [BOOL_34], grad=False)

# ---- reductions ----------------------------------------------------------------------------------
_DIMS = [None, 0, 1, -1, (0, 2), (-1, -3), (0, 1, 2)]
for _d in _DIMS:
    for _keep in (False, True):
        op(f"sum_dim{_d}_keep{_keep}", lambda L, x, d=_d, k=_keep: x.sum(d, keepdim=k)
           if d is not None else x.sum(), [(2, 3, 4)], covers=("Sum",), tol="reduction")
        op(f"mean_dim{_d}_keep{_keep}", lambda L, x, d=_d, k=_keep: x.mean(d, keepdim=k)
           if d is not None else x.mean(), [(2, 3, 4)], covers=("Mean",), tol="reduction")
op("sum_0d", lambda L, x: x.sum(), [()], covers=("Sum",))
op("free_sum", lambda L, x: L.sum(x, 1), [(3, 4)], covers=("Sum",))
op("free_mean", lambda L, x: L.mean(x, 0), [(3, 4)], covers=("Mean",))
for _d in [None, 0, -1, (0, 1)]:
    for _corr in (0, 1):
        for _keep in (False, True):
            _dim_kw = {} if _d is None else {"dim": _d}
            op(f"var_dim{_d}_corr{_corr}_keep{_keep}",
               lambda L, x, kw=_dim_kw, c=_corr, k=_keep: x.var(**kw, keepdim=k, correction=c),
               [(3, 4, 2)], covers=("Sub", "Mul", "Sum", "Mean", "Div"), tol="reduction")
            op(f"std_dim{_d}_corr{_corr}_keep{_keep}",
               lambda L, x, kw=_dim_kw, c=_corr, k=_keep: x.std(**kw, keepdim=k, correction=c),
               [(3, 4, 2)], covers=("Sqrt",), tol="reduction")
op("max_overall", lambda L, x: x.max(), [(3, 4)], domain="distinct", covers=("MaxMin",))
op("min_overall", lambda L, x: x.min(), [(3, 4)], domain="distinct", covers=("MaxMin",))
# two tied maxima share the gradient evenly (torch's max()), which the finite difference sees
_TIE2 = np.array([[1.0, 3.0, -2.0], [3.0, 0.5, 0.0]])
op("max_overall_two_ties", lambda L, x: x.max(), [_TIE2], covers=("MaxMin",))
op("min_overall_two_ties", lambda L, x: x.min(), [-_TIE2], covers=("MaxMin",))
for _d in (0, 1, -1):
    for _keep in (False, True):
        op(f"max_dim{_d}_keep{_keep}", lambda L, x, d=_d, k=_keep: x.max(d, keepdim=k),
           [(3, 4, 5)], domain="distinct", covers=("MaxMin",))
        op(f"min_dim{_d}_keep{_keep}", lambda L, x, d=_d, k=_keep: x.min(d, keepdim=k),
           [(3, 4, 5)], domain="distinct", covers=("MaxMin",))
op("max_dim_values", lambda L, x: x.max(dim=1).values * 2.0, [(3, 4)], domain="distinct",
   covers=("MaxMin",))
op("max_dim_indices", lambda L, x: x.max(dim=0).indices, [(3, 4)], domain="distinct",
   grad=False)
op("max_of_two_tensors", lambda L, a, b: a.max(b), [(3, 4), (3, 4)],
   domain=("distinct", "distinct"), covers=("Maximum",))
for _d in (0, 1, -1):
    for _keep in (False, True):
        op(f"logsumexp_dim{_d}_keep{_keep}", lambda L, x, d=_d, k=_keep: x.logsumexp(d, k),
           [(3, 4, 5)], covers=("Exp", "Log", "Sum"), tol="reduction")
op("logsumexp_tuple_dim", lambda L, x: x.logsumexp((0, 2)), [(3, 4, 5)], tol="reduction")
op("logsumexp_large", lambda L, x: (x * 1000.0).logsumexp(1), [(3, 4)], tol="reduction")
op("free_logsumexp", lambda L, x: L.logsumexp(x, 0), [(3, 4)], tol="reduction")

# ---- softmax / log_softmax ---------------------------------------------------------------------
for _shape in [(3, 4), (2, 3, 5)]:
    for _d in range(-1, len(_shape)):
        op(f"softmax{_shape}_dim{_d}", lambda L, x, d=_d: x.softmax(d), [_shape],
           covers=("Softmax",), tol="reduction")
        op(f"log_softmax{_shape}_dim{_d}", lambda L, x, d=_d: x.log_softmax(d), [_shape],
           covers=("LogSoftmax",), tol="reduction")
op("softmax_1d", lambda L, x: x.softmax(0), [(7,)], covers=("Softmax",), tol="reduction")
op("softmax_outliers", lambda L, x: (x * 30.0).softmax(-1), [(4, 9)], covers=("Softmax",),
   tol="reduction")
op("log_softmax_outliers", lambda L, x: (x * 30.0).log_softmax(-1), [(4, 9)],
   covers=("LogSoftmax",), tol="reduction")
op("softmax_wide_row", lambda L, x: x.softmax(-1), [(3, 67)], covers=("Softmax",),
   tol="reduction")
op("softmax_noncontiguous", lambda L, x: x.transpose(0, 1).softmax(-1), [(5, 3)],
   covers=("Softmax", "Permute"), tol="reduction")
op("free_softmax", lambda L, x: L.softmax(x, 1), [(3, 4)], covers=("Softmax",),
   tol="reduction")
op("free_log_softmax", lambda L, x: L.log_softmax(x, 0), [(3, 4)], covers=("LogSoftmax",),
   tol="reduction")

# ---- matmul --------------------------------------------------------------------------------------
MATMUL_SHAPES = [
    ((7,), (7,)), ((7,), (7, 5)), ((5, 7), (7,)), ((3, 4), (4, 5)), ((2, 3, 4), (4, 5)),
    ((4,), (2, 4, 3)), ((2, 3, 4), (4,)), ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (3, 4, 2)),
    ((1, 1), (1, 1)), ((1, 7), (7, 1)), ((7, 1), (1, 13)), ((13, 67), (67, 7)),
    ((2, 7, 13), (1, 13, 3)),
]
for _sa, _sb in MATMUL_SHAPES:
    op(f"matmul{_sa}@{_sb}", lambda L, a, b: a @ b, [_sa, _sb], covers=("MatMul",),
       tol="matmul")
op("matmul_free", lambda L, a, b: L.matmul(a, b), [(3, 4), (4, 2)], covers=("MatMul",),
   tol="matmul")
op("matmul_method", lambda L, a, b: a.matmul(b), [(3, 4), (4, 2)], covers=("MatMul",),
   tol="matmul")
op("matmul_a_transposed", lambda L, a, b: a.T @ b, [(4, 3), (4, 5)], covers=("MatMul",),
   tol="matmul")
op("matmul_b_transposed", lambda L, a, b: a @ b.T, [(3, 4), (5, 4)], covers=("MatMul",),
   tol="matmul")
op("matmul_both_transposed", lambda L, a, b: a.mT @ b.mT, [(2, 4, 3), (2, 5, 4)],
   covers=("MatMul",), tol="matmul")
op("matmul_sliced_step", lambda L, a, b: a[:, ::2] @ b[1:, :], [(3, 8), (5, 6)],
   covers=("MatMul", "Index"), tol="matmul")
op("matmul_expanded", lambda L, a, b: a.expand(3, 2, 4) @ b, [(2, 4), (3, 4, 5)],
   covers=("MatMul", "Expand"), tol="matmul")
op("matmul_big_tile_edges", lambda L, a, b: a @ b, [(130, 257), (257, 65)],
   covers=("MatMul",), tol="matmul", gradcheck=False)
op("matmul_big_batched_transposed", lambda L, a, b: a @ b.mT, [(2, 33, 70), (2, 17, 70)],
   covers=("MatMul",), tol="matmul", gradcheck=False)
op("matmul_gradcheck_odd", lambda L, a, b: a @ b, [(1, 13), (13, 7)], covers=("MatMul",),
   tol="matmul")

# ---- linear (one fused op: the bias inside the GEMM; tests/nn/test_linear.py has the rest) -----
_F_LINEAR = lambda L, *xs: L.nn.functional.linear(*xs)                    # noqa: E731
op("linear", _F_LINEAR, [(5, 7), (3, 7), (3,)], covers=("Linear",), tol="matmul")
op("linear_3d_input", _F_LINEAR, [(2, 3, 4), (5, 4), (5,)], covers=("Linear",), tol="matmul")
op("linear_no_bias", _F_LINEAR, [(4, 6), (1, 6)], covers=("Linear",), tol="matmul")
op("linear_1d_input", _F_LINEAR, [(6,), (4, 6), (4,)], covers=("Linear",), tol="matmul")
op("linear_transposed_input", lambda L, x, w, b: L.nn.functional.linear(x.mT, w, b),
   [(2, 5, 3), (4, 5), (4,)], covers=("Linear", "Permute"), tol="matmul")
op("linear_big_tile_edges", _F_LINEAR, [(3, 43, 129), (33, 129), (33,)], covers=("Linear",),
   tol="matmul", gradcheck=False)
op("linear_empty_rows", _F_LINEAR, [(0, 4), (3, 4), (3,)], covers=("Linear",))
op("linear_empty_features", _F_LINEAR, [(2, 0), (3, 0), (3,)], covers=("Linear",))


def _torch_gelu_mlp(torch, x, w1, b1, w2, b2, approximate="none"):
    F = torch.nn.functional
    return F.linear(F.gelu(F.linear(x, w1, b1), approximate=approximate), w2, b2)


op("gelu_mlp", lambda L, *xs: L.nn.functional.gelu_mlp(*xs), [(4, 5), (6, 5), (6,), (3, 6), (3,)],
   covers=("GeluMLP",), tol="matmul", torch_fn=_torch_gelu_mlp)
op("linear_residual", lambda L, x, w, b, r: L.nn.functional.linear_residual(x, w, b, r),
   [(2, 3, 5), (4, 5), (4,), (2, 3, 4)], covers=("Linear",), tol="matmul",
   torch_fn=lambda torch, x, w, b, r: r + torch.nn.functional.linear(x, w, b))
op("gelu_mlp_residual",
   lambda L, x, w1, b1, w2, b2, r: L.nn.functional.gelu_mlp(x, w1, b1, w2, b2, residual=r),
   [(4, 5), (6, 5), (6,), (3, 6), (3,), (4, 3)], covers=("GeluMLP",), tol="matmul",
   torch_fn=lambda torch, x, w1, b1, w2, b2, r: r + _torch_gelu_mlp(torch, x, w1, b1, w2, b2))
op("gelu_mlp_tanh_3d", lambda L, *xs: L.nn.functional.gelu_mlp(*xs, approximate="tanh"),
   [(2, 3, 5), (7, 5), (7,), (4, 7), (4,)], covers=("GeluMLP",), tol="matmul",
   torch_fn=lambda torch, *xs: _torch_gelu_mlp(torch, *xs, approximate="tanh"))

# user code recognised as a fused op (ops/patterns.py): as written, through either library
op("linear_of_gelu", lambda L, x, w1, b1, w2, b2: L.nn.functional.linear(
    L.nn.functional.gelu(L.nn.functional.linear(x, w1, b1)), w2, b2),
   [(2, 3, 5), (7, 5), (7,), (4, 7), (4,)], covers=("GeluMLPOfParts",), tol="matmul")


def _sdpa_of_split(L, x, w):
    """nanoGPT's attention: q, k, v split out of one projection, 2 heads, causal."""
    B, T, C = x.shape
    q, k, v = (t.view(B, T, 2, C // 2).transpose(1, 2)
               for t in L.nn.functional.linear(x, w).split(C, dim=2))
    y = L.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    return y.transpose(1, 2).reshape(B, T, C)


op("sdpa_of_split_projection", _sdpa_of_split, [(2, 5, 6), (18, 6)], covers=("QKVAttention",),
   tol="matmul")


# ---- shape ops -----------------------------------------------------------------------------------
op("reshape", lambda L, x: x.reshape(2, 6), [(3, 4)], covers=("Reshape",))
op("reshape_tuple", lambda L, x: x.reshape((4, 3)), [(3, 4)], covers=("Reshape",))
op("reshape_infer", lambda L, x: x.reshape(-1), [(3, 4)], covers=("Reshape",))
op("reshape_infer_mid", lambda L, x: x.reshape(2, -1, 2), [(3, 4)], covers=("Reshape",))
op("reshape_of_transposed", lambda L, x: x.T.reshape(12), [(3, 4)],
   covers=("Reshape", "Permute"))
op("view", lambda L, x: x.view(4, 3), [(3, 4)], covers=("Reshape",))
op("free_reshape", lambda L, x: L.reshape(x, (6, 2)), [(3, 4)], covers=("Reshape",))
op("permute", lambda L, x: x.permute(2, 0, 1), [(2, 3, 4)], covers=("Permute",))
op("permute_negative", lambda L, x: x.permute(-1, 0, -2), [(2, 3, 4)], covers=("Permute",))
op("free_permute", lambda L, x: L.permute(x, (1, 2, 0)), [(2, 3, 4)], covers=("Permute",))
op("transpose", lambda L, x: x.transpose(0, 2), [(2, 3, 4)], covers=("Permute",))
op("transpose_negative", lambda L, x: x.transpose(-1, -2), [(2, 3, 4)], covers=("Permute",))
op("free_transpose", lambda L, x: L.transpose(x, 0, 1), [(2, 3)], covers=("Permute",))
op("T_2d", lambda L, x: x.T, [(3, 4)], covers=("Permute",))
op("mT", lambda L, x: x.mT, [(2, 3, 4)], covers=("Permute",))
op("unsqueeze0", lambda L, x: x.unsqueeze(0), [(3, 4)], covers=("Reshape",))
op("unsqueeze_last", lambda L, x: x.unsqueeze(-1), [(3, 4)], covers=("Reshape",))
op("unsqueeze_mid", lambda L, x: x.unsqueeze(1), [(3, 4)], covers=("Reshape",))
op("free_unsqueeze", lambda L, x: L.unsqueeze(x, 2), [(3, 4)], covers=("Reshape",))
op("squeeze_all", lambda L, x: x.squeeze(), [(3, 1, 4, 1)], covers=("Reshape",))
op("squeeze_dim", lambda L, x: x.squeeze(1), [(3, 1, 4, 1)], covers=("Reshape",))
op("squeeze_dim_not_one", lambda L, x: x.squeeze(0), [(3, 1, 4, 1)], covers=("Reshape",))
op("squeeze_negative", lambda L, x: x.squeeze(-1), [(3, 1, 4, 1)], covers=("Reshape",))
op("squeeze_tuple", lambda L, x: x.squeeze((1, 3)), [(3, 1, 4, 1)], covers=("Reshape",))
op("free_squeeze", lambda L, x: L.squeeze(x, 1), [(3, 1, 4)], covers=("Reshape",))
op("expand", lambda L, x: x.expand(3, 4), [(3, 1)], covers=("Expand",))
op("expand_new_dims", lambda L, x: x.expand(2, 3, 4), [(1, 4)], covers=("Expand",))
op("expand_minus_one", lambda L, x: x.expand(-1, 5), [(3, 1)], covers=("Expand",))
op("expand_tuple", lambda L, x: x.expand((2, 3)), [(3,)], covers=("Expand",))
op("expand_as", lambda L, x, y: x.expand_as(y) * y, [(1, 4), (3, 4)],
   covers=("Expand", "Mul"))
op("flatten", lambda L, x: x.flatten(), [(2, 3, 4)], covers=("Reshape",))
op("flatten_start", lambda L, x: x.flatten(1), [(2, 3, 4)], covers=("Reshape",))
op("flatten_range", lambda L, x: x.flatten(0, 1), [(2, 3, 4)], covers=("Reshape",))
op("free_flatten", lambda L, x: L.flatten(x, 1, -1), [(2, 3, 4)], covers=("Reshape",))
op("contiguous_of_transposed", lambda L, x: x.transpose(0, 1).contiguous(), [(3, 4)],
   covers=("Contiguous", "Permute"))
op("contiguous_then_view", lambda L, x: x.T.contiguous().view(-1), [(3, 4)],
   covers=("Contiguous", "Reshape"))
op("clone", lambda L, x: x.clone(), [(3, 4)], covers=("Clone",))
op("clone_of_expanded", lambda L, x: x.expand(3, 4).clone() * 2.0, [(4,)],
   covers=("Clone", "Expand"))
op("split_int", lambda L, x: x.split(2, dim=1), [(3, 5)], covers=("Index",))
op("split_sizes", lambda L, x: x.split([1, 3], dim=1), [(3, 4)], covers=("Index",))
op("split_dim0", lambda L, x: x.split(2), [(5, 2)], covers=("Index",))
op("free_split", lambda L, x: L.split(x, 3, 0), [(5, 2)], covers=("Index",))
op("chunk", lambda L, x: x.chunk(2, dim=0), [(5, 3)], covers=("Index",))
op("chunk_last", lambda L, x: x.chunk(3, -1), [(2, 7)], covers=("Index",))
op("free_chunk", lambda L, x: L.chunk(x, 2, 1), [(2, 4)], covers=("Index",))

# ---- cat / stack ---------------------------------------------------------------------------------
op("cat_dim0", lambda L, a, b: L.cat([a, b]), [(2, 3), (4, 3)], covers=("Cat",))
op("cat_dim1", lambda L, a, b, c: L.cat([a, b, c], dim=1), [(2, 3), (2, 1), (2, 4)],
   covers=("Cat",))
op("cat_negative_dim", lambda L, a, b: L.cat((a, b), -1), [(2, 3, 1), (2, 3, 2)],
   covers=("Cat",))
op("cat_same_tensor_twice", lambda L, a: L.cat([a, a * 2.0], 0), [(2, 3)], covers=("Cat",))
op("cat_single", lambda L, a: L.cat([a], 0), [(2, 3)], covers=("Cat",))
op("cat_skips_1d_empty", lambda L, a, b: L.cat([a, b, a], -1), [(2, 3), (0,)], covers=("Cat",))
op("stack_dim0", lambda L, a, b: L.stack([a, b]), [(2, 3), (2, 3)], covers=("Cat", "Reshape"))
op("stack_dim1", lambda L, a, b, c: L.stack([a, b, c], 1), [(2, 3), (2, 3), (2, 3)],
   covers=("Cat",))
op("stack_last", lambda L, a, b: L.stack([a, b], dim=-1), [(2, 3), (2, 3)], covers=("Cat",))

# ---- indexing ------------------------------------------------------------------------------------
_IDX = {
    "int": lambda L, x: x[1],
    "negative_int": lambda L, x: x[-1],
    "two_ints": lambda L, x: x[1, 2],
    "slice": lambda L, x: x[1:3],
    "slice_step": lambda L, x: x[::2],
    "slice_negative_bounds": lambda L, x: x[-3:-1, 1:],
    "slice_2d_step": lambda L, x: x[:, 1::2],
    "none": lambda L, x: x[None],
    "none_middle": lambda L, x: x[:, None, 1:],
    "ellipsis": lambda L, x: x[..., 1],
    "ellipsis_slice": lambda L, x: x[..., 1:3, :],
    "int_then_slice": lambda L, x: x[2, :, ::2],
    "int_array_repeated": lambda L, x: x[L.tensor([0, 2, 0, 0])],
    "list_repeated": lambda L, x: x[[1, 1, 3]],
    "int_array_negative": lambda L, x: x[L.tensor([-1, 0, -1])],
    "int_array_dim1": lambda L, x: x[:, L.tensor([3, 3, 0])],
    "int_array_pairs_repeated": lambda L, x: x[L.tensor([0, 2, 0]), L.tensor([1, 1, 1])],
    "int_array_2d": lambda L, x: x[L.tensor([[0, 1], [1, 0]])],
    "int_array_with_slice": lambda L, x: x[L.tensor([2, 0]), 1:3],
    "bool_mask_full": lambda L, x: x[L.tensor(_MASK_45)],
    "bool_mask_rows": lambda L, x: x[L.tensor(_MASK_4)],
}
_MASK_45 = np.random.default_rng(7).random((4, 5)) > 0.4
_MASK_4 = np.array([True, False, True, True])
for _name, _fn in _IDX.items():
    _shape = (4, 5) if _name != "int_then_slice" else (4, 3, 6)
    op(f"getitem_{_name}", _fn, [_shape], covers=("Index",))
op("getitem_3d_ellipsis_none", lambda L, x: x[..., None, 0], [(2, 3, 4)], covers=("Index",))
op("getitem_iter", lambda L, x: L.stack(list(x)), [(3, 2)], covers=("Index",))

# ---- along a dim: gather, scatter, index_select, index_fill; nonzero, roll, flip, repeat, mm -----
_G_34 = np.array([[0, 3], [1, 1], [2, 0]])                   # (3, 2) into dim 1 of (3, 4): repeats
_G_DIM0 = np.array([[3, 0], [1, 3]])                          # (2, 2) into dim 0 of (4, 3)
_G_3D = np.random.default_rng(3).integers(0, 5, (2, 3, 4))    # into dim -1 of (2, 3, 5)
_S_UNIQUE = np.array([[0, 4], [1, 2], [3, 0]])                # (3, 2) into dim 1 of (3, 5)
_S_DIM0 = np.array([[2, 0, 1, 1]])                            # (1, 4) into dim 0 of (3, 4)
_SEL = np.array([2, 0, 2, 1])
op("gather_dim1_repeats", lambda L, x, i: x.gather(1, i), [(3, 4), _G_34], covers=("Gather",))
op("gather_dim0_smaller_index", lambda L, x, i: x.gather(0, i), [(4, 3), _G_DIM0],
   covers=("Gather",))
op("gather_3d_negative_dim", lambda L, x, i: x.gather(-1, i), [(2, 3, 5), _G_3D],
   covers=("Gather",))
op("gather_transposed_input", lambda L, x, i: x.T.gather(1, i), [(4, 3), _G_34],
   covers=("Gather", "Permute"))
op("gather_transposed_index", lambda L, x, i: x.gather(1, i.T), [(3, 4), _G_34.T.copy()],
   covers=("Gather",))
op("gather_empty_index", lambda L, x, i: x.gather(1, i), [(3, 4), np.zeros((3, 0), np.int64)],
   covers=("Gather",))
op("gather_0d_index", lambda L, x, i: x.gather(0, i), [(3,), np.array(1)], covers=("Gather",))
op("gather_0d_input", lambda L, x, i: x.gather(0, i), [(), np.array([0, 0])], covers=("Gather",))
op("scatter_0d_input", lambda L, x, i, s: x.scatter(0, i, s), [(), np.array([0]), (1,)],
   covers=("Scatter",))
op("scatter_add_0d_src", lambda L, x, i, s: x.scatter_add(0, i, s), [(3,), np.array(2), ()],
   covers=("Scatter",))
op("free_gather", lambda L, x, i: L.gather(x, 1, i), [(3, 4), _G_34], covers=("Gather",))
# src larger than index: its other elements are not read (gradient 0; torch's own backward
# fails on this shape, so torch runs the sliced src)
op("scatter_src_larger_than_index", lambda L, x, i, s: x.scatter(1, i, s),
   [(3, 5), _S_UNIQUE, (4, 3)], covers=("Scatter",),
   torch_fn=lambda L, x, i, s: x.scatter(1, i, s[:3, :2]))
op("scatter_value", lambda L, x, i: x.scatter(1, i, 2.5), [(3, 5), _S_UNIQUE],
   covers=("Scatter",))
op("scatter_value_keyword", lambda L, x, i: x.scatter(0, i, value=-1.0), [(3, 4), _S_DIM0[:, :3]],
   covers=("Scatter",))
op("free_scatter", lambda L, x, i, s: L.scatter(x, 1, i, s), [(3, 5), _S_UNIQUE, (3, 2)],
   covers=("Scatter",))
op("scatter_add_repeats", lambda L, x, i, s: x.scatter_add(0, i, s), [(3, 4), _S_DIM0, (2, 4)],
   covers=("Scatter",), torch_fn=lambda L, x, i, s: x.scatter_add(0, i, s[:1]))
op("scatter_add_dim1_repeats", lambda L, x, i, s: x.scatter_add(1, i, s),
   [(3, 4), _G_34, (3, 2)], covers=("Scatter",))
op("free_scatter_add", lambda L, x, i, s: L.scatter_add(x, -1, i, s), [(2, 3, 5), _G_3D,
   (2, 3, 4)], covers=("Scatter",))
op("scatter_sliced_src", lambda L, x, i, s: x.scatter(1, i, s[:, ::2]), [(3, 5), _S_UNIQUE, (3, 3)],
   covers=("Scatter", "Index"))
op("scatter_add_of_transposed", lambda L, x, i, s: x.T.scatter_add(1, i, s.T),
   [(4, 3), _G_34, (2, 3)], covers=("Scatter", "Permute"))
op("index_select_dim0_repeats", lambda L, x, i: x.index_select(0, i), [(3, 4), _SEL],
   covers=("Gather",))
op("index_select_dim1", lambda L, x, i: x.index_select(1, i), [(2, 4, 3), _SEL],
   covers=("Gather",))
op("index_select_0d_index", lambda L, x, i: x.index_select(-1, i), [(3, 4), np.array(3)],
   covers=("Gather",))
op("free_index_select", lambda L, x, i: L.index_select(x, 0, i), [(3, 2), _SEL[:2]],
   covers=("Gather",))
op("index_fill_negative_index", lambda L, x, i: x.index_fill(1, i, -2.0),
   [(3, 4), np.array([-1, 0, -1])], covers=("Where",))
op("free_index_fill", lambda L, x, i: L.index_fill(x, 0, i, 0.5), [(3, 4), np.array([2])],
   covers=("Where",))
op("free_masked_fill", lambda L, m, x: L.masked_fill(x, m, 3.0), [BOOL_34, (3, 4)],
   covers=("Where",))
op("masked_fill_tensor_value", lambda L, m, x, v: x.masked_fill(m, v * 2.0),
   [BOOL_4, (3, 4), ()], covers=("Where",))
op("index_fill_tensor_value", lambda L, x, i, v: x.index_fill(0, i, v),
   [(3, 4), np.array([0, 2]), ()], covers=("Where",))
op("nonzero", lambda L, m: m.nonzero(), [BOOL_34], grad=False)
op("nonzero_as_tuple", lambda L, m: m.nonzero(as_tuple=True), [BOOL_34], grad=False)
op("nonzero_float", lambda L, x: (x > 0.0).float().nonzero(), [(2, 3, 4)], grad=False)
op("free_nonzero", lambda L, m: L.nonzero(m), [BOOL_4], grad=False)
op("where_condition_only", lambda L, m: L.where(m), [BOOL_34], grad=False)
op("where_two_numbers", lambda L, m: L.where(m, 1.0, 0.0), [BOOL_34], grad=False)
op("roll_one_dim", lambda L, x: x.roll(1, 1), [(3, 4)], covers=("Cat", "Index"))
op("roll_two_dims_negative", lambda L, x: x.roll((-1, 5), (0, -1)), [(3, 4)], covers=("Cat",))
op("roll_flattened", lambda L, x: x.roll(5), [(3, 4)], covers=("Cat", "Reshape"))
op("roll_zero_shift", lambda L, x: x.roll(4, 1), [(3, 4)], covers=("Clone",))
op("free_roll", lambda L, x: L.roll(x, 2, 0), [(5, 2)], covers=("Cat",))
op("flip_dim0", lambda L, x: x.flip(0), [(3, 4)], covers=("Index", "Clone"))
op("flip_two_dims", lambda L, x: x.flip(0, 2), [(2, 3, 4)], covers=("Index", "Clone"))
op("flip_transposed", lambda L, x: x.T.flip((-1,)), [(3, 4)], covers=("Index", "Clone"))
op("free_flip", lambda L, x: L.flip(x, (1,)), [(3, 4)], covers=("Index", "Clone"))
op("flip_dims_keyword", lambda L, x: L.flip(x, dims=[0, 1]), [(3, 4)], covers=("Index",))
op("t_2d", lambda L, x: x.t(), [(3, 4)], covers=("Permute",))
op("t_1d", lambda L, x: x.t() * 2.0, [(4,)], covers=("Mul",))
op("free_t", lambda L, x: L.t(x), [(2, 5)], covers=("Permute",))
op("repeat", lambda L, x: x.repeat(2, 3), [(3, 4)], covers=("Reshape", "Expand"))
op("repeat_new_dims", lambda L, x: x.repeat(2, 1, 3), [(3, 2)], covers=("Reshape", "Expand"))
op("repeat_ones_tuple", lambda L, x: x.repeat((1, 1)), [(3, 2)], covers=("Reshape",))
op("repeat_zero", lambda L, x: x.repeat(0, 2), [(3, 2)], covers=("Reshape",))
op("free_mm", lambda L, a, b: L.mm(a, b), [(3, 4), (4, 5)], covers=("MatMul",), tol="matmul")
op("mm_method_transposed", lambda L, a, b: a.mm(b.t()), [(3, 4), (5, 4)], covers=("MatMul",),
   tol="matmul")
op("free_bmm", lambda L, a, b: L.bmm(a, b), [(2, 3, 4), (2, 4, 5)], covers=("MatMul",),
   tol="matmul")
op("bmm_method", lambda L, a, b: a.bmm(b.mT), [(3, 1, 4), (3, 2, 4)], covers=("MatMul",),
   tol="matmul")
op("free_tril", lambda L, x: L.tril(x, -1), [(3, 4)], covers=("Where",))
op("free_triu", lambda L, x: L.triu(x), [(2, 4, 3)], covers=("Where",))

# ---- zero-size tensors (shapes with 0, where meaningful) -----------------------------------------
op("empty_add_broadcast", lambda L, a, b: a + b, [(0, 3), (3,)], covers=("Add",))
op("empty_mul_to_empty", lambda L, a, b: a * b, [(2, 0, 3), (2, 1, 3)], covers=("Mul",))
op("empty_sum_all", lambda L, x: x.sum(), [(0, 3)], covers=("Sum",))
op("empty_sum_dim", lambda L, x: x.sum(0), [(0, 3)], covers=("Sum",))
op("empty_matmul_rows", lambda L, a, b: a @ b, [(0, 4), (4, 3)], covers=("MatMul",))
op("empty_matmul_inner", lambda L, a, b: a @ b, [(3, 0), (0, 2)], covers=("MatMul",))
op("empty_softmax", lambda L, x: x.softmax(-1), [(0, 4)], covers=("Softmax",))
op("empty_cat", lambda L, a, b: L.cat([a, b], 0), [(0, 3), (2, 3)], covers=("Cat",))
op("empty_getitem_slice", lambda L, x: x[2:2], [(4, 3)], covers=("Index",))
op("empty_reshape", lambda L, x: x.reshape(3, 0), [(0, 3)], covers=("Reshape",))
op("getitem_0d_int_tensor", lambda L, x: x[L.tensor(1)], [(3, 2)], covers=("Index",))
op("matmul_same_tensor_twice", lambda L, x: x @ x, [(4, 4)], covers=("MatMul",), tol="matmul")
op("mul_same_tensor_twice", lambda L, x: x * x, [(3, 4)], covers=("Mul",))

# ---- fused nn.functional ops (each a Function with its own kernel) ------------------------------
_TARGET_5 = np.array([0, 3, 6, 2, 6])
op("fused_layer_norm", lambda L, x, w, b: L.nn.functional.layer_norm(x, (7,), w, b),
   [(5, 7), (7,), (7,)], covers=("LayerNorm",), tol="composite")
op("fused_layer_norm_3d_no_affine", lambda L, x: L.nn.functional.layer_norm(x, (3, 4)),
   [(2, 3, 4)], covers=("LayerNorm",), tol="composite")
op("fused_cross_entropy", lambda L, x, t: L.nn.functional.cross_entropy(x, t),
   [(5, 7), _TARGET_5], covers=("CrossEntropyMean",), tol="composite")
op("fused_cross_entropy_smoothing_ignore",
   lambda L, x, t: L.nn.functional.cross_entropy(x, t, ignore_index=6, label_smoothing=0.1),
   [(5, 7), _TARGET_5], covers=("CrossEntropyMean",), tol="composite")
op("fused_cross_entropy_sum",
   lambda L, x, t: L.nn.functional.cross_entropy(x, t, ignore_index=6, reduction="sum"),
   [(5, 7), _TARGET_5], covers=("CrossEntropy",), tol="composite")
op("fused_gelu", lambda L, x: L.nn.functional.gelu(x), [(3, 5)], covers=("Gelu",))
op("fused_gelu_tanh", lambda L, x: L.nn.functional.gelu(x, approximate="tanh"), [(3, 5)],
   covers=("Gelu",))
op("fused_sdpa_causal",
   lambda L, q, k, v: L.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True),
   [(2, 2, 5, 4), (2, 2, 5, 4), (2, 2, 5, 3)], covers=("ScaledDotProductAttention",),
   tol="composite")
op("fused_sdpa_cross_float_mask",
   lambda L, q, k, v, m: L.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m),
   [(1, 2, 3, 4), (1, 2, 6, 4), (1, 2, 6, 4), (3, 6)], covers=("ScaledDotProductAttention",),
   tol="composite")


def _qkv_attention_split(L, qkv, n_head, is_causal):
    """The composed spelling of qkv_attention (torch's): split, heads, sdpa, heads merged."""
    B, T, E3 = qkv.shape
    heads = [t.reshape(B, T, n_head, -1).transpose(1, 2) for t in qkv.split(E3 // 3, dim=2)]
    y = L.nn.functional.scaled_dot_product_attention(*heads, is_causal=is_causal)
    return y.transpose(1, 2).reshape(B, T, E3 // 3)


for _causal in (False, True):
    op(f"fused_qkv_attention{'_causal' if _causal else ''}",
       lambda L, qkv, c=_causal: L.nn.attention.qkv_attention(qkv, 2, is_causal=c),
       [(2, 5, 18)], covers=("QKVAttention",), tol="composite",
       torch_fn=lambda torch, qkv, c=_causal: _qkv_attention_split(torch, qkv, 2, c))

# ---- more of torch's elementwise math and reductions (sin ... norm) ------------------------------
_HALVES = np.array([[0.5, 1.5, 2.5, -0.5], [-1.5, -2.5, 3.5, 0.49], [2.51, -0.51, 0.0, -3.0]])
_NONFINITE = np.array([[1.0, np.nan, -np.inf], [np.inf, -0.0, 2.5]])
_ZEROS_IN_ROWS = np.array([[1.5, 0.0, -2.0, 0.5], [0.0, 3.0, 0.0, 1.25], [0.75, -1.0, 2.0, 1.5]])
_ZERO_ROW = np.array([[0.0, 0.0, 0.0], [0.5, -1.5, 2.0]])
_INT_34 = np.arange(-5, 7).reshape(3, 4)
_INF = float("inf")
op("sin", lambda L, x: x.sin(), [(3, 4)], covers=("Sin",))
op("cos", lambda L, x: x.cos(), [(3, 4)], covers=("Cos",))
op("rsqrt", lambda L, x: x.rsqrt(), [(3, 4)], domain="positive", covers=("Rsqrt",))
op("free_sin_3d", lambda L, x: L.sin(x), [(2, 3, 5)], covers=("Sin",))
op("free_cos_noncontiguous", lambda L, x: L.cos(x.T), [(4, 3)], covers=("Cos", "Permute"))
op("free_rsqrt_3d", lambda L, x: L.rsqrt(x), [(2, 3, 5)], domain="positive", covers=("Rsqrt",))
op("floor", lambda L, x: (x * 3.0).floor(), [(3, 4)], covers=("Floor",))
op("ceil", lambda L, x: (x * 3.0).ceil(), [(3, 4)], covers=("Ceil",))
op("round", lambda L, x: (x * 3.0).round(), [(3, 4)], covers=("Round",))
op("free_floor_ceil_round", lambda L, x: L.floor(x * 2.0) + L.ceil(x) * L.round(x * 5.0),
   [(2, 3, 5)], covers=("Floor", "Ceil", "Round"))
op("round_halves_to_even", lambda L, x: x.round(), [_HALVES], covers=("Round",),
   gradcheck=False)
op("floor_ceil_halves", lambda L, x: x.floor() * 10.0 + x.ceil(), [_HALVES],
   covers=("Floor", "Ceil"), gradcheck=False)
op("round_decimals", lambda L, x: x.round(decimals=2), [(3, 4)], covers=("Round",))
op("round_negative_decimals", lambda L, x: (x * 1000.0).round(decimals=-2), [(3, 4)],
   covers=("Round",))
op("floor_round_int", lambda L, x: x.floor() + x.round() * x.ceil(), [_INT_34], grad=False)
op("sign", lambda L, x: x.sign() * x, [(3, 4)], domain="distinct", covers=("Sign", "Mul"))
op("free_sign_zeros", lambda L, x: L.sign(x), [_ZERO_ROW], covers=("Sign",),
   gradcheck=False)                                    # sign jumps at 0: no finite difference
op("sign_int", lambda L, x: L.sign(x), [_INT_34], grad=False)
op("isnan_isinf_isfinite", lambda L, x: (x.isnan(), L.isinf(x), L.isfinite(x), L.isnan(x)),
   [_NONFINITE], grad=False)
op("isfinite_int", lambda L, x: (L.isfinite(x), x.isinf(), x.isnan()), [_INT_34], grad=False)
op("free_pow_tensors", lambda L, a, b: L.pow(a, b), [(3, 4), (4,)],
   domain=("positive", "small"), covers=("Pow",))
op("free_pow_scalar_exponent", lambda L, a: L.pow(a, 3), [(3, 4)], covers=("Pow",))
op("free_pow_scalar_base", lambda L, a: L.pow(2.5, a), [(3, 4)], covers=("Pow",))
op("F_silu", lambda L, x: L.nn.functional.silu(x), [(3, 4)], covers=("Silu",))
op("F_silu_large", lambda L, x: L.nn.functional.silu(x * 40.0), [(2, 3, 5)], covers=("Silu",))
op("nn_SiLU_noncontiguous", lambda L, x: L.nn.SiLU()(x.T), [(5, 3)], covers=("Silu",))
op("F_tanh_sigmoid", lambda L, x: L.nn.functional.tanh(x) + L.nn.functional.sigmoid(x),
   [(3, 4)], covers=("Tanh", "Sigmoid"))
op("F_rms_norm", lambda L, x, w: L.nn.functional.rms_norm(x, (4,), w), [(3, 4), (4,)],
   tol="composite")
op("F_rms_norm_eps_3d", lambda L, x: L.nn.functional.rms_norm(x, (3, 4), eps=1e-3),
   [(2, 3, 4)], covers=("Rsqrt", "Mean"), tol="composite")
op("free_max_min_overall", lambda L, x: L.max(x) - L.min(x), [(3, 4)], domain="distinct",
   covers=("MaxMin",))
op("free_max_dim", lambda L, x: L.max(x, 1), [(3, 4)], domain="distinct", covers=("MaxMin",))
op("free_min_dim_keepdim", lambda L, x: L.min(x, 0, keepdim=True), [(3, 4)], domain="distinct",
   covers=("MaxMin",))
op("free_max_values_indices", lambda L, x: L.max(x, dim=-1).values * L.min(x, -1).indices,
   [(2, 3, 5)], domain="distinct", covers=("MaxMin",))
op("free_max_min_of_two", lambda L, a, b: L.max(a, b) + L.min(a, b), [(3, 4), (4,)],
   domain=("distinct", "distinct"), covers=("Maximum", "Minimum"))
op("free_all_any_dims", lambda L, m: (L.all(m), L.any(m), L.all(m, 1), L.any(m, dim=0),
                                       L.any(m, (0, 1)), L.all(m, -1, keepdim=True)),
   [BOOL_34], grad=False)
op("all_any_float", lambda L, x: (x.all(), x.any(1), L.all(x, 0)), [_ZEROS_IN_ROWS],
   grad=False)
op("cumsum_dim0", lambda L, x: x.cumsum(0), [(3, 4)], covers=("Cumsum",), tol="reduction")
op("cumsum_last", lambda L, x: x.cumsum(-1), [(2, 3, 7)], covers=("Cumsum",), tol="reduction")
op("free_cumsum_mid", lambda L, x: L.cumsum(x, 1), [(2, 5, 3)], covers=("Cumsum",),
   tol="reduction")
op("cumsum_noncontiguous", lambda L, x: x.transpose(0, 2).cumsum(1), [(4, 3, 2)],
   covers=("Cumsum", "Permute"), tol="reduction")
op("cumsum_0d", lambda L, x: x.cumsum(0), [()], covers=("Cumsum",))
op("cumsum_empty", lambda L, x: x.cumsum(0), [(0, 3)], covers=("Cumsum",))
op("cumsum_dtype", lambda L, x: x.cumsum(0, dtype=L.float64), [(5,)], covers=("Cumsum",),
   tol="reduction")
op("cumsum_int_bool", lambda L, x, m: (x.cumsum(1), L.cumsum(m, 0)), [_INT_34, BOOL_34],
   grad=False)
op("prod_all", lambda L, x: x.prod(), [(3, 4)], covers=("Prod",), tol="reduction")
op("prod_dim", lambda L, x: x.prod(1), [(2, 3, 4)], covers=("Prod",), tol="reduction")
op("free_prod_keepdim", lambda L, x: L.prod(x, -1, keepdim=True), [(3, 5)], covers=("Prod",),
   tol="reduction")
op("prod_noncontiguous", lambda L, x: x.T.prod(0), [(4, 3)], covers=("Prod",), tol="reduction")
op("prod_zeros_dim", lambda L, x: x.prod(1), [_ZEROS_IN_ROWS], covers=("Prod",),
   tol="reduction")
op("prod_zeros_dim0", lambda L, x: x.prod(0, True), [_ZEROS_IN_ROWS], covers=("Prod",),
   tol="reduction")
op("prod_zeros_all", lambda L, x: x[1:].prod() + x[0].prod() + x[2:].prod(), [_ZEROS_IN_ROWS],
   covers=("Prod",), tol="reduction")
op("prod_empty", lambda L, x: (x.prod(), x.prod(0)), [(0, 3)], covers=("Prod",))
op("prod_int_bool_dtype", lambda L, x, m, y: (x.prod(1), m.prod(), L.prod(y, dtype=L.float64)),
   [_INT_34, BOOL_34, (3, 2)], grad=False)
op("norm", lambda L, x: x.norm(), [(3, 4)], covers=("VectorNorm",), tol="reduction")
op("norm_dim", lambda L, x: x.norm(dim=1), [(3, 4)], covers=("VectorNorm",), tol="reduction")
op("norm_fro_dims_keepdim", lambda L, x: x.norm("fro", dim=(0, 2), keepdim=True), [(2, 3, 4)],
   covers=("VectorNorm",), tol="reduction")
op("free_norm_p1", lambda L, x: L.norm(x, p=1, dim=0), [(3, 4)], domain="distinct",
   covers=("VectorNorm",), tol="reduction")
op("norm_inf", lambda L, x: x.norm(p=_INF, dim=-1, keepdim=True), [(3, 4)], domain="distinct",
   covers=("VectorNorm",), tol="reduction")
op("norm_minus_inf", lambda L, x: x.norm(p=-_INF), [(3, 4)], domain="distinct",
   covers=("VectorNorm",), tol="reduction")
op("norm_inf_ties", lambda L, x: x.norm(p=_INF, dim=1), [_TIE2], covers=("VectorNorm",),
   tol="reduction")
op("norm_p0", lambda L, x: x.norm(p=0, dim=1), [_ZEROS_IN_ROWS], covers=("VectorNorm",),
   tol="reduction")
op("norm_p3", lambda L, x: x.norm(p=3, dim=(0, 1)), [(2, 3, 4)], covers=("VectorNorm",),
   tol="reduction")
op("norm_p_half", lambda L, x: x.norm(p=0.5, dim=0), [(3, 4)], domain="nonzero",
   covers=("VectorNorm",), tol="reduction")
op("norm_p1_5", lambda L, x: x.norm(p=1.5), [(3, 4)], domain="nonzero", covers=("VectorNorm",),
   tol="reduction")
op("norm_zero_row", lambda L, x: (x.norm(dim=1), x.norm(p=3, dim=1), x.norm(p=0.5, dim=1)),
   [_ZERO_ROW], covers=("VectorNorm",), tol="reduction")
op("norm_noncontiguous_dtype", lambda L, x: x.T.norm(dim=0, dtype=L.float64), [(4, 3)],
   covers=("VectorNorm",), tol="reduction")
op("linalg_vector_norm", lambda L, x: L.linalg.vector_norm(x, 3, dim=-1), [(3, 4)],
   covers=("VectorNorm",), tol="reduction")
op("linalg_vector_norm_default_keepdim", lambda L, x: L.linalg.vector_norm(x, keepdim=True),
   [(2, 3)], covers=("VectorNorm",), tol="reduction")
# ---- sorting: the sorted values carry the gradient back to where they came from --------------
op("sort_values_dim1_desc", lambda L, x: L.sort(x, 1, True).values, [(3, 5)], domain="distinct",
   covers=("SortedValues",))
op("sort_values_dim0_noncontiguous", lambda L, x: x.T.sort(0).values, [(4, 3)],
   domain="distinct", covers=("SortedValues",))
op("topk_values", lambda L, x: L.topk(x, 2, dim=-1).values, [(2, 3, 5)], domain="distinct",
   covers=("SortedValues",))
op("topk_values_smallest_dim0", lambda L, x: x.topk(2, 0, largest=False).values, [(4, 3)],
   domain="distinct", covers=("SortedValues",))
# ---- issue 15: losses and padding of nn.functional (tests/nn/test_api_losses.py has the rest) --
_PROB = lambda rng, shape, slot: rng.uniform(0.05, 0.95, shape)        # noqa: E731
# (torch does not differentiate pos_weight: a constant here; its gradient is gradchecked in
# tests/nn/test_api_losses.py)
op("bce_with_logits_pos_weight",
   lambda L, x, t: L.nn.functional.binary_cross_entropy_with_logits(
       x, t, pos_weight=L.tensor([0.5, 1.0, 2.0, 3.0], dtype=x.dtype, device=x.device)),
   [(3, 4), (3, 4)], domain=["real", _PROB], covers=("BinaryCrossEntropyWithLogits",),
   tol="composite")
op("bce_with_logits_none",
   lambda L, x, t: L.nn.functional.binary_cross_entropy_with_logits(x * 4.0, t,
                                                                    reduction="none"),
   [(2, 5), (2, 5)], domain=["real", _PROB], covers=("BinaryCrossEntropyWithLogits",))
op("bce_sum", lambda L, x, t: L.nn.functional.binary_cross_entropy(x, t, reduction="sum"),
   [(3, 4), (3, 4)], domain=[_PROB, _PROB], covers=("BinaryCrossEntropy",), tol="composite")
op("kl_div_batchmean",
   lambda L, x, t: L.nn.functional.kl_div(x.log_softmax(-1), t, reduction="batchmean"),
   [(3, 5), (3, 5)], domain=["real", _PROB], covers=("LogSoftmax", "Where"), tol="composite")
op("l1_loss_mean", lambda L, x, t: L.nn.functional.l1_loss(x, t), [(3, 4), (3, 4)],
   domain="distinct", covers=("Abs",), tol="composite")
op("pad_constant_2d", lambda L, x: L.nn.functional.pad(x, (1, 2, 0, 1), value=0.5),
   [(2, 3, 4)], covers=("Cat",))
op("pad_crop_and_pad", lambda L, x: L.nn.functional.pad(x, (-1, 2)), [(3, 4)],
   covers=("Index", "Cat"))
