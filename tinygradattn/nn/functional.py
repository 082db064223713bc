"""torch.nn.functional's names, composed from Tensor ops, or fused Functions where it pays.

linear and gelu_mlp (ops/linear.py), layer_norm, cross_entropy (class-index targets) and
gelu run fused kernels (ops/fused.py). Their twins composed of plain Tensor ops are in
`nn/reference.py` (the test oracles, and the reading reference); `_linear_composed` and
`_sdpa_composed` stay here because the library takes them (a broadcast bias, dropout on).

Every function checks its arguments and raises PyTorch's exception type with the shapes at
fault in the message.
"""
import math
import numbers
import warnings

from .. import dtypes
from ..creation import arange, full, ones, rand
from ..creation import tensor as _tensor
from ..ops.fused import CrossEntropy, CrossEntropyMean, Gelu, LayerNorm
from ..ops.linear import GeluMLP, Linear
from ..ops.loss import BinaryCrossEntropy, BinaryCrossEntropyWithLogits
from ..autograd.grad_mode import is_grad_enabled as _is_grad_enabled
from ..ops.attention import QKVAttention, ScaledDotProductAttention
from ..ops.patterns import gelu_mlp_of_parts as _gelu_mlp_of_parts
from ..ops.patterns import packed_qkv as _packed_qkv
from ..ops.elementwise import Silu
from ..tensor import Tensor, cat, where
from ..tensor_args import _check_int_arg

_REDUCTIONS = ("none", "mean", "sum")


def _check_tensor(name, arg, value):
    if not isinstance(value, Tensor):
        raise TypeError(f"{name}(): argument '{arg}' must be Tensor, not {type(value).__name__}")


def _reduce(loss, reduction, name):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{name}: {reduction!r} is not a valid value for reduction "
                     f"(expected one of {_REDUCTIONS})")


def linear(input, weight, bias=None):
    """y = input @ weight.T + bias (torch.nn.functional.linear).

    One fused op (ops/linear.py: the bias added inside the GEMM, batch dims folded into its
    rows); a bias of another shape that broadcasts, or mixed dtypes, take the composed form.

    Args: input (*, in_features); weight (out_features, in_features); bias (out_features,).

    Example:
        >>> import tinygradattn as tga
        >>> x, w = tga.ones(2, 3), tga.ones(4, 3)
        >>> tga.nn.functional.linear(x, w, tga.tensor([0.0, 1.0, 2.0, 3.0])).tolist()
        [[3.0, 4.0, 5.0, 6.0], [3.0, 4.0, 5.0, 6.0]]
    """
    _check_tensor("linear", "input", input)
    _check_tensor("linear", "weight", weight)
    if weight.ndim != 2 or input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise RuntimeError(f"linear: input {tuple(input.shape)} and weight "
                           f"{tuple(weight.shape)} do not match (expected input (*, "
                           f"{weight.shape[-1] if weight.ndim else '?'}))")
    if _linear_fuses(input, weight, bias):
        if _FUSION[0] and input.grad_fn is not None:    # gelu(linear(x)) from their nodes?
            out = _gelu_mlp_of_parts(input, weight, bias)   # then one GeluMLP node from x
            if out is not None:
                return out
        return Linear.apply(input, weight, bias)
    return _linear_composed(input, weight, bias)


def linear_residual(input, weight, bias, residual):
    """residual + linear(input, weight, bias) as one op (not a torch function): the residual
    is added to each finished stripe of the product inside the GEMM (a transformer block's
    skip connection), not in a pass of its own. residual: (*, out_features), input's shape
    but the last dim; other shapes or dtypes run as linear, then +."""
    for arg, value in (("input", input), ("weight", weight), ("residual", residual)):
        _check_tensor("linear_residual", arg, value)
    if (weight.ndim == 2 and input.ndim >= 1 and input.shape[-1] == weight.shape[1]
            and _linear_fuses(input, weight, bias)
            and _residual_fuses(input, weight.shape[0], residual)):
        return Linear.apply(input, weight, bias, residual)
    return residual + linear(input, weight, bias)


def _residual_fuses(input, n_out, residual):
    """A residual the fused ops add inside their GEMM: input's dtype, shaped like the output
    (*, n_out)."""
    return (residual.dtype == input.dtype
            and tuple(residual.shape) == tuple(input.shape[:-1]) + (n_out,))


def _linear_fuses(input, weight, bias):
    """The fused op takes one float dtype and a (out_features,) bias Tensor, or no bias."""
    if not input.is_floating_point() or input.dtype != weight.dtype:
        return False                            # the composed form raises torch's error
    return bias is None or (isinstance(bias, Tensor) and bias.dtype == input.dtype
                            and tuple(bias.shape) == (weight.shape[0],))


def _linear_composed(input, weight, bias=None):
    """linear from Tensor ops (matmul, then add; any broadcastable bias): the fused op's
    oracle, and the path for what it does not take."""
    out = input @ weight.T
    return out if bias is None else out + bias


def relu(input):
    _check_tensor("relu", "input", input)
    return input.relu()


def tanh(input):
    """torch.nn.functional.tanh."""
    _check_tensor("tanh", "input", input)
    return input.tanh()


def sigmoid(input):
    """torch.nn.functional.sigmoid: 1 / (1 + exp(-x))."""
    _check_tensor("sigmoid", "input", input)
    return input.sigmoid()


def silu(input, inplace=False):
    """x * sigmoid(x) (torch.nn.functional.silu). NOTE: inplace=True is accepted for torch's
    signature but the result is computed out of place (as nn.ReLU)."""
    _check_tensor("silu", "input", input)
    if not input.is_floating_point():
        raise NotImplementedError(f"silu: not implemented for '{input.dtype.name}' tensors, "
                                  "only floating point ones")
    return Silu.apply(input)


def gelu(input, approximate="none"):
    """GELU: x * Phi(x) exactly ("none", with erf) or with torch's tanh form ("tanh")."""
    _check_tensor("gelu", "input", input)
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    if not input.is_floating_point():
        raise RuntimeError(f"gelu: expected a floating point input, got {input.dtype.name}")
    return Gelu.apply(input, approximate)


def gelu_mlp(input, fc_weight, fc_bias, proj_weight, proj_bias, approximate="none",
             residual=None):
    """linear(gelu(linear(input, fc_weight, fc_bias), approximate), proj_weight, proj_bias)
    as one op: a transformer's MLP (not a torch function); plus residual when given.

    GELU is applied inside the first GEMM (float32) and its derivative inside the second
    one's backward GEMM, instead of in passes of their own over the hidden activations; the
    residual (shaped like the output) is added inside the second GEMM. Arguments and errors
    as linear and gelu; what the fused op does not take (mixed dtypes, biases or a residual of
    another shape) runs as linear, gelu, linear (, +).
    """
    for arg, value in (("input", input), ("fc_weight", fc_weight),
                       ("proj_weight", proj_weight)):
        _check_tensor("gelu_mlp", arg, value)
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    if (fc_weight.ndim == 2 and proj_weight.ndim == 2 and input.ndim >= 1
            and input.shape[-1] == fc_weight.shape[1]
            and proj_weight.shape[1] == fc_weight.shape[0]
            and _linear_fuses(input, fc_weight, fc_bias)
            and _linear_fuses(input, proj_weight, proj_bias)):
        if residual is None:
            return GeluMLP.apply(input, fc_weight, fc_bias, proj_weight, proj_bias, approximate)
        _check_tensor("gelu_mlp", "residual", residual)
        if _residual_fuses(input, proj_weight.shape[0], residual):
            return GeluMLP.apply(input, fc_weight, fc_bias, proj_weight, proj_bias, approximate,
                                 residual)
    y = linear(gelu(linear(input, fc_weight, fc_bias), approximate), proj_weight, proj_bias)
    return y if residual is None else residual + y


def softmax(input, dim):
    _check_tensor("softmax", "input", input)
    return input.softmax(dim)


def log_softmax(input, dim):
    _check_tensor("log_softmax", "input", input)
    return input.log_softmax(dim)


def _classes_last(input, target, name):
    """(N, C, d1, ...) logits and (N, d1, ...) targets -> (N', C) and (N',)."""
    if input.ndim == 0:
        raise ValueError(f"{name}: input must have at least 1 dimension, got a 0-d tensor")
    if input.ndim == 1:
        return input.unsqueeze(0), target.reshape(1) if target.ndim == 0 else target
    if target.shape[0] != input.shape[0]:
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target "
                         f"batch_size ({target.shape[0]}).")
    if input.ndim > 2:
        C = input.shape[1]
        if tuple(target.shape) != (input.shape[0],) + tuple(input.shape[2:]):
            raise RuntimeError(f"{name}: target shape {tuple(target.shape)} does not match "
                               f"input {tuple(input.shape)} without its class dim")
        input = input.permute(0, *range(2, input.ndim), 1).reshape(-1, C)
        target = target.reshape(-1)
    return input, target


def _check_class_target(name, target, logits):
    """target must be int64 class indices, one per row of logits (N, C)."""
    N = logits.shape[0]
    if target.dtype != dtypes.int64:
        raise RuntimeError(f"{name}: expected target of dtype int64 (class indices), got "
                           f"{target.dtype.name}")
    if target.ndim != 1 or target.shape[0] != N:
        raise ValueError(f"{name}: target {tuple(target.shape)} does not match input "
                         f"{tuple(logits.shape)} (expected ({N},))")


def _pick(logp, target, ignore_index, name):
    """logp[i, target[i]] for each row, 0 where target == ignore_index; and the valid mask."""
    N, C = logp.shape
    _check_class_target(name, target, logp)
    valid = target != ignore_index
    bad = ((target < 0) | (target >= C)) & valid
    if bad.any():
        raise IndexError(f"Target {int(target[bad][0])} is out of bounds "
                         f"(number of classes {C}).")
    safe = where(valid, target, 0)
    picked = logp[arange(N, device=logp.device), safe]                    # (N,)
    return picked * valid.to(logp.dtype), valid


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log likelihood of class indices (torch.nn.functional.nll_loss). weight (C,)
    scales each class's terms; 'mean' then divides by the weight of the non-ignored targets."""
    _check_tensor("nll_loss", "input", input)
    _check_tensor("nll_loss", "target", target)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    logp, target = _classes_last(input, target, "nll_loss")
    if weight is not None:
        _check_reduction(reduction, "nll_loss")
        weight = _class_weight(weight, logp, "nll_loss")
        loss, w = _weighted_nll(logp, target, weight, ignore_index, "nll_loss")
        if reduction == "mean":
            return loss.sum() / w.sum()
        return _reduce(loss.reshape(_target_shape(input, target)), reduction, "nll_loss")
    picked, valid = _pick(logp, target, ignore_index, "nll_loss")
    loss = -picked
    if reduction == "mean":
        return loss.sum() / valid.sum().to(loss.dtype)      # over non-ignored targets
    return _reduce(loss.reshape(_target_shape(input, target)), reduction, "nll_loss")


def _target_shape(input, target):
    if input.ndim == 1:
        return ()
    return (input.shape[0],) + tuple(input.shape[2:])


def _class_weight(weight, logp, name):
    """weight (C,) in logp's dtype, after torch's shape check."""
    _check_tensor(name, "weight", weight)
    C = logp.shape[1]
    if weight.ndim != 1 or weight.shape[0] != C:
        raise RuntimeError(f"{name}: weight tensor should be defined either for all {C} classes "
                           f"or no classes but got weight tensor of shape: "
                           f"{list(weight.shape)}")
    return weight.to(logp.dtype)


def _weighted_nll(logp, target, weight, ignore_index, name):
    """-weight[t] logp[i, t] per row (N,), and the row weights weight[t] (N,); 0 where the
    target is ignore_index."""
    picked, valid = _pick(logp, target, ignore_index, name)
    w = weight[where(valid, target, 0)] * valid.to(logp.dtype)                # (N,)
    return -picked * w, w


def _weighted_cross_entropy(logits, target, weight, ignore_index, reduction, eps, shape):
    """torch's class-weighted cross-entropy, composed (the fused kernels take no weights):
    (1 - eps) weighted nll + eps / C * -(sum_c weight_c logp_c); 'mean' divides both by the
    weight of the non-ignored targets."""
    C = logits.shape[1]
    logp = logits.log_softmax(1)                                               # (N, C)
    weight = _class_weight(weight, logp, "cross_entropy")
    loss, w = _weighted_nll(logp, target, weight, ignore_index, "cross_entropy")
    if eps > 0:
        smooth = -(logp * weight).sum(1) * (target != ignore_index).to(logp.dtype)   # (N,)
        loss = loss * (1 - eps) + smooth * (eps / C)
    if reduction == "mean":
        return loss.sum() / w.sum()
    return _reduce(loss.reshape(shape), reduction, "cross_entropy")


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """Cross-entropy of logits against class indices or class probabilities.

    With label_smoothing e, the target distribution is (1 - e) one-hot + e / C, as in
    torch.nn.functional.cross_entropy; 'mean' divides by the number of non-ignored targets.
    Args: input (N, C) or (N, C, d1, ...) or (C,); target (N,) / (N, d1, ...) int64 indices,
    or float probabilities shaped like input; weight (C,) scales each class (then 'mean'
    divides by the weight of the non-ignored targets, as torch; probability targets divide
    by N). Arguments in torch's order.
    """
    _check_tensor("cross_entropy", "input", input)
    _check_tensor("cross_entropy", "target", target)
    if not input.is_floating_point():
        raise RuntimeError(f"cross_entropy: expected a floating point input, got "
                           f"{input.dtype.name}")
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got "
                         f"{label_smoothing}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"cross_entropy: {reduction!r} is not a valid value for reduction")
    if target.is_floating_point():
        return _cross_entropy_probs(input, target, reduction, label_smoothing, weight)
    logits, flat_target = _classes_last(input, target, "cross_entropy")
    _check_class_target("cross_entropy", flat_target, logits)
    if weight is not None:
        return _weighted_cross_entropy(logits, flat_target, weight, ignore_index, reduction,
                                       label_smoothing, _target_shape(input, flat_target))
    if reduction == "mean":                                 # over non-ignored targets
        return CrossEntropyMean.apply(logits, flat_target, ignore_index, label_smoothing)
    loss = CrossEntropy.apply(logits, flat_target, ignore_index, label_smoothing)   # (N,)
    return _reduce(loss.reshape(_target_shape(input, flat_target)), reduction, "cross_entropy")


def _cross_entropy_probs(input, target, reduction, label_smoothing, weight=None):
    if tuple(target.shape) != tuple(input.shape):
        raise RuntimeError(f"cross_entropy: probability target {tuple(target.shape)} must have "
                           f"the input's shape {tuple(input.shape)}")
    dim = 0 if input.ndim == 1 else 1
    C = input.shape[dim]
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / C
    logp = input.log_softmax(dim)
    if weight is not None:                      # (C,) along the class dim
        weight = _class_weight(weight, logp if dim == 1 else logp.unsqueeze(0), "cross_entropy")
        logp = logp * weight.reshape(C, *([1] * (input.ndim - dim - 1)))
    loss = -(logp * target).sum(dim)
    if reduction == "mean" and input.ndim > 1:
        return loss.sum() / (loss.numel() if loss.numel() else float("nan"))
    return _reduce(loss, reduction, "cross_entropy")


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the trailing normalized_shape dims with the population variance."""
    normalized_shape = _layer_norm_check(input, normalized_shape, weight, bias)
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.dtype != input.dtype:
            raise RuntimeError(f"layer_norm: expected {name} of dtype {input.dtype.name} like "
                               f"input, got {p.dtype.name}")
    if not input.is_floating_point():
        raise RuntimeError(f"layer_norm: expected a floating point input, got {input.dtype.name}")
    C = math.prod(normalized_shape)
    if len(normalized_shape) == 1 and input.ndim >= 1:        # (*, C), (C,): one node, the
        return LayerNorm.apply(input, weight, bias, eps)       # kernel folds the leading dims
    N = math.prod(input.shape[:input.ndim - len(normalized_shape)])    # not -1: C may be 0
    x = input.reshape(N, C)                                                  # (N, C)
    w = None if weight is None else weight.reshape(C)
    b = None if bias is None else bias.reshape(C)
    return LayerNorm.apply(x, w, b, eps).reshape(input.shape)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """x / sqrt(mean(x^2 over the trailing normalized_shape dims) + eps) * weight
    (torch.nn.functional.rms_norm); eps None is torch.finfo(input.dtype).eps.

        >>> import tinygradattn as tga
        >>> tga.nn.functional.rms_norm(tga.tensor([[3., 4.]]), (2,))
        tensor([[0.8485, 1.1314]])
    """
    _check_tensor("rms_norm", "input", input)
    normalized_shape = _normalized_shape("rms_norm", normalized_shape)
    n = len(normalized_shape)
    if n > input.ndim or tuple(input.shape[input.ndim - n:]) != normalized_shape:
        raise RuntimeError(f"Given normalized_shape={list(normalized_shape)}, expected input "
                           f"with shape [*, {', '.join(map(str, normalized_shape))}], but got "
                           f"input of size {list(input.shape)}")
    if weight is not None and tuple(weight.shape) != normalized_shape:
        raise RuntimeError(f"Expected weight to be of same shape as normalized_shape, but got "
                           f"weight of shape {list(weight.shape)} and normalized_shape = "
                           f"{list(normalized_shape)}")
    if not input.is_floating_point():
        raise NotImplementedError(f"rms_norm: not implemented for '{input.dtype.name}' "
                                  "tensors, only floating point ones")
    if eps is None:
        eps = dtypes.finfo(input.dtype).eps
    dims = tuple(range(input.ndim - n, input.ndim))
    rstd = ((input * input).mean(dims, keepdim=True) + eps).rsqrt()        # (*, 1, ..., 1)
    out = input * rstd
    return out if weight is None else out * weight


def _normalized_shape(name, normalized_shape):
    """An int or a sequence of ints as a tuple (TypeError naming the argument otherwise)."""
    if isinstance(normalized_shape, numbers.Integral) and not isinstance(normalized_shape, bool):
        return (int(normalized_shape),)
    if isinstance(normalized_shape, str) or not hasattr(normalized_shape, "__iter__") or not all(
            isinstance(n, numbers.Integral) and not isinstance(n, bool)
            for n in normalized_shape):
        raise TypeError(f"{name}(): argument 'normalized_shape' must be tuple of ints, got "
                        f"{normalized_shape!r}")
    return tuple(normalized_shape)


def _layer_norm_check(input, normalized_shape, weight, bias):
    """normalized_shape as a tuple, after checking it and the affine shapes against input."""
    _check_tensor("layer_norm", "input", input)
    normalized_shape = _normalized_shape("layer_norm", normalized_shape)
    n = len(normalized_shape)
    if n == 0 or tuple(input.shape[input.ndim - n:]) != normalized_shape or n > input.ndim:
        raise RuntimeError(f"layer_norm: normalized_shape {list(normalized_shape)} does not "
                           f"match the trailing dims of input {tuple(input.shape)}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p.shape) != normalized_shape:
            raise RuntimeError(f"layer_norm: {name} of shape {tuple(p.shape)}, expected "
                               f"{normalized_shape}")
    return normalized_shape


def dropout(input, p=0.5, training=True):
    """Zero each element with probability p and scale the rest by 1 / (1 - p)."""
    _check_tensor("dropout", "input", input)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if not input.is_floating_point():
        raise RuntimeError(f"dropout: input must be floating point, got {input.dtype.name}")
    if p == 1.0:
        return input * 0.0
    keep = rand(*input.shape, dtype=input.dtype, device=input.device) >= p
    return input * keep.to(input.dtype) * (1.0 / (1.0 - p))


def embedding(input, weight):
    """Rows of weight (V, C) picked by integer indices input (*) -> (*, C)."""
    _check_tensor("embedding", "input", input)
    _check_tensor("embedding", "weight", weight)
    if input.dtype != dtypes.int64:
        raise RuntimeError(f"embedding: expected indices of dtype int64, got {input.dtype.name}")
    if weight.ndim != 2:
        raise RuntimeError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), "
                           f"got {tuple(weight.shape)}")
    V = weight.shape[0]
    # on the CPU the ids are checked here; on a GPU the gather kernel checks them itself (a
    # device-side check, raised at the next host read): reading them back would stall a step
    if input.device == "cpu" and input.numel() and (bool((input < 0).any()) or
                                                     bool((input >= V).any())):
        raise IndexError(f"embedding: index out of range in self (indices must be in [0, {V}), "
                         f"got min {int(input.min())} max {int(input.max())})")
    return weight[input]


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None):
    """softmax(q @ k^T * scale + mask) @ v over the last two dims.

    Args: query (..., T, D), key (..., S, D), value (..., S, Dv); attn_mask broadcastable to
    (..., T, S): bool (True = may attend) or float (added). scale defaults to 1/sqrt(D).
    Leading dims broadcast. With dropout_p == 0 (float32/float64, a mask that needs no grad) it
    runs the fused kernel (ops/attention.py), never forming the T x S weights; a row whose
    every key is masked then gives 0 with zero gradients, as torch 2.13 does on the CPU (the
    composed path, taken for dropout_p > 0, gives NaN there). The kernel reads q, k, v through
    their strides (heads transposed out of a (B, T, H, D) buffer are not copied) and lays the
    output out (B, T, H, Dv) as torch does, so ``out.transpose(1, 2).reshape(B, T, H * Dv)``
    is a view.
    """
    for arg, t in (("query", query), ("key", key), ("value", value)):
        _check_tensor("scaled_dot_product_attention", arg, t)
        if t.ndim < 2:
            raise RuntimeError(f"scaled_dot_product_attention: {arg} must have at least 2 dims, "
                               f"got {tuple(t.shape)}")
    T, D = query.shape[-2:]
    S = key.shape[-2]
    if key.shape[-1] != D or value.shape[-2] != S:
        raise RuntimeError(f"scaled_dot_product_attention: query {tuple(query.shape)}, key "
                           f"{tuple(key.shape)} and value {tuple(value.shape)} do not match")
    if is_causal and attn_mask is not None:
        raise RuntimeError("scaled_dot_product_attention: explicit attn_mask should not be set "
                           "when is_causal=True")
    if scale is None:      # D = 0: every score is 0 whatever the scale (torch: uniform weights)
        scale = 1.0 / math.sqrt(D) if D else 1.0
    if dropout_p > 0.0 or not _sdpa_fusable(query, key, value, attn_mask):
        return _sdpa_composed(query, key, value, attn_mask, dropout_p, is_causal, scale)
    if attn_mask is None and _FUSION[0] and _is_grad_enabled():
        qkv = _packed_qkv(query, key, value)      # q, k, v: views of one projection (B, T, 3C)?
        if qkv is not None:                      # then its node, and d(qkv) as one buffer
            B, H, T, D = query.shape
            y = QKVAttention.apply(qkv, H, bool(is_causal), float(scale))     # (B, T, C)
            return y.view(B, T, H, D).transpose(1, 2)                         # (B, H, T, D)
    Dv = value.shape[-1]
    batch = _sdpa_batch_shape(query, key, value, attn_mask)
    B, H = (math.prod(batch[:-1]), batch[-1]) if batch else (1, 1)    # leading dims -> (B, H)
    q = _sdpa_as_4d(query, batch, B, H)                               # (B, H, T, D)
    k = _sdpa_as_4d(key, batch, B, H)                                 # (B, H, S, D)
    v = _sdpa_as_4d(value, batch, B, H)                               # (B, H, S, Dv)
    mask = attn_mask
    if mask is not None and mask.ndim > 3 and len(batch) > 2:         # dims merged into B
        mask = _sdpa_as_4d(mask, batch, B, H)                         # (B, H, T|1, S|1)
    out = ScaledDotProductAttention.apply(q, k, v, mask, bool(is_causal), float(scale))
    return out if tuple(out.shape) == batch + (T, Dv) else out.reshape(*batch, T, Dv)


_FUSION = [True]


def set_fusion_enabled(enabled):
    """Turn on (the default) or off the recognition of fusable patterns in user code (not a
    torch function; ops/patterns.py). On, scaled_dot_product_attention of q, k, v cut out of
    one packed projection (split / chunk, view, transpose) runs as one QKVAttention node on
    the projection, and linear(gelu(linear(x))) as one GeluMLP node on x and the weights:
    the same numbers, a shorter backward. Off, every op records its own node, as written
    (for studying the graph, or comparing)."""
    _FUSION[0] = bool(enabled)


def is_fusion_enabled():
    return _FUSION[0]


def _sdpa_fusable(query, key, value, attn_mask):
    """One float32/float64 dtype for q, k, v and a mask that is bool or a float needing no grad."""
    if not query.dtype == key.dtype == value.dtype or query.dtype not in (dtypes.float32,
                                                                         dtypes.float64):
        return False
    if attn_mask is None:
        return True
    return attn_mask.dtype == dtypes.bool_ or (attn_mask.is_floating_point()
                                               and not attn_mask.requires_grad)


def _sdpa_batch_shape(query, key, value, attn_mask):
    """Leading dims of q, k, v (and the mask's beyond (T, S)) broadcast together."""
    T, S = query.shape[-2], key.shape[-2]
    shapes = [tuple(t.shape[:-2]) for t in (query, key, value)]
    if attn_mask is not None:
        mshape = (1,) * max(0, 2 - attn_mask.ndim) + tuple(attn_mask.shape)
        for got, want in zip(mshape[-2:], (T, S)):
            if got not in (1, want):
                raise RuntimeError(f"scaled_dot_product_attention: attn_mask "
                                   f"{tuple(attn_mask.shape)} cannot broadcast to the weights "
                                   f"(..., {T}, {S})")
        shapes.append(mshape[:-2])
    n = max(len(s) for s in shapes)
    batch = []
    for i in range(n):
        sizes = {s[i - n + len(s)] for s in shapes if i - n + len(s) >= 0} - {1}
        if len(sizes) > 1:
            raise RuntimeError(f"scaled_dot_product_attention: leading dims of query "
                               f"{tuple(query.shape)}, key {tuple(key.shape)}, value "
                               f"{tuple(value.shape)}"
                               + (f", attn_mask {tuple(attn_mask.shape)}" if attn_mask is not None
                                  else "") + " do not broadcast")
        batch.append(sizes.pop() if sizes else 1)
    return tuple(batch)


def _sdpa_as_4d(t, batch, B, H):
    """t expanded to batch + its last two dims, then viewed (B, H, rows, cols)."""
    t = t.expand(*batch, *t.shape[-2:]) if tuple(t.shape[:-2]) != batch else t
    shape4 = (B, H) + tuple(t.shape[-2:])
    return t if tuple(t.shape) == shape4 else t.reshape(*shape4)


def _sdpa_composed(query, key, value, attn_mask, dropout_p, is_causal, scale):
    """The composed twin (matmul, softmax, matmul): dropout_p > 0, and the fused kernel's oracle.

    Arguments as scaled_dot_product_attention, already checked, scale a number. NOTE: a fully
    masked row gives NaN here (softmax of all -inf); the fused path gives 0 as torch does.
    """
    T, S = query.shape[-2], key.shape[-2]
    scores = (query @ key.transpose(-2, -1)) * scale                        # (..., T, S)
    if is_causal:
        attn_mask = ones(T, S, dtype=dtypes.bool_, device=query.device).tril()
    if attn_mask is not None:
        if attn_mask.dtype == dtypes.bool_:
            scores = scores.masked_fill(attn_mask.logical_not(), float("-inf"))
        else:
            scores = scores + attn_mask
    weights = scores.softmax(-1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p)
    return weights @ value                                                  # (..., T, Dv)


# ---- issue 15: more losses, one_hot, pad (torch.nn.functional's) -----------------------------
def _legacy_reduction(size_average, reduce, reduction):
    """torch's deprecated size_average / reduce arguments, which override reduction when given."""
    if size_average is None and reduce is None:
        return reduction
    reduction = "none" if reduce is False else ("sum" if size_average is False else "mean")
    warnings.warn(f"size_average and reduce args will be deprecated, please use "
                  f"reduction='{reduction}' instead.", UserWarning, stacklevel=3)
    return reduction


def _check_reduction(reduction, name, allowed=_REDUCTIONS):
    if reduction not in allowed:
        raise ValueError(f"{name}: {reduction} is not a valid value for reduction "
                         f"(expected one of {allowed})")


def _broadcast_pair(input, target, name):
    """input and target broadcast together, warning as torch does when their sizes differ."""
    if tuple(input.shape) == tuple(target.shape):
        return input, target
    warnings.warn(f"{name}: Using a target size ({tuple(target.shape)}) that is different to "
                  f"the input size ({tuple(input.shape)}). This will likely lead to incorrect "
                  "results due to broadcasting. Please ensure they have the same size.",
                  UserWarning, stacklevel=3)
    shape = _broadcast_shapes(name, input.shape, target.shape)
    return input.expand(*shape), target.expand(*shape)


def _broadcast_shapes(name, sa, sb):
    n = max(len(sa), len(sb))
    sa, sb = (1,) * (n - len(sa)) + tuple(sa), (1,) * (n - len(sb)) + tuple(sb)
    for i, (a, b) in enumerate(zip(sa, sb)):
        if a != b and 1 not in (a, b):
            raise RuntimeError(f"{name}: the size of tensor a ({a}) must match the size of "
                               f"tensor b ({b}) at non-singleton dimension {i}")
    return tuple(max(a, b) if 0 not in (a, b) else 0 for a, b in zip(sa, sb))


def _pointwise_loss(loss, weight, reduction, name):
    """Reduce an elementwise loss; with weight (input's shape), 'mean' is sum(w l) / sum(w)."""
    if weight is None:
        return _reduce(loss, reduction, name)
    if tuple(weight.shape) != tuple(loss.shape):
        raise ValueError(f"{name}: Weights and input must have the same size (weight "
                         f"{tuple(weight.shape)}, input {tuple(loss.shape)}).")
    loss = loss * weight
    return loss.sum() / weight.sum() if reduction == "mean" else _reduce(loss, reduction, name)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """mean((input - target)^2) (torch.nn.functional.mse_loss): shapes broadcast (with
    torch's warning); weight, input's shape, scales each term ('mean': sum(w l) / sum(w))."""
    _check_tensor("mse_loss", "input", input)
    _check_tensor("mse_loss", "target", target)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "mse_loss")
    input, target = _broadcast_pair(input, target, "mse_loss")
    diff = input - target
    return _pointwise_loss(diff * diff, weight, reduction, "mse_loss")


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """mean(|input - target|) (torch.nn.functional.l1_loss); shapes and weight as mse_loss.
    The gradient at input == target is 0 (sign(0)), as torch's."""
    _check_tensor("l1_loss", "input", input)
    _check_tensor("l1_loss", "target", target)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "l1_loss")
    input, target = _broadcast_pair(input, target, "l1_loss")
    return _pointwise_loss((input - target).abs(), weight, reduction, "l1_loss")


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """KL(target || exp(input)) summed pointwise (torch.nn.functional.kl_div): input holds
    log-probabilities; target probabilities (log-probabilities with log_target=True).

    Pointwise: target (log target - input), 0 where target == 0 (torch's xlogy); 'batchmean'
    divides the sum by input.size(0) (the KL divergence of each row, averaged); 'mean' by the
    number of elements, with torch's warning.
    """
    _check_tensor("kl_div", "input", input)
    _check_tensor("kl_div", "target", target)
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce, reduction)
    elif reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the "
                      "support size.'batchmean' divides only by the batch size, and aligns with "
                      "the KL div math definition.'mean' will be changed to behave the same as "
                      "'batchmean' in the next major release.", UserWarning, stacklevel=2)
    _check_reduction(reduction, "kl_div", _REDUCTIONS + ("batchmean",))
    if log_target:
        loss = target.exp() * (target - input)
    else:
        positive = target > 0
        safe_log = where(positive, target, ones((), dtype=target.dtype,
                                                device=target.device)).log()
        loss = target * safe_log - target * input     # target log target: 0 where target == 0
    if reduction == "batchmean":
        total = loss.sum()
        return total / input.shape[0] if input.ndim else total
    return _reduce(loss, reduction, "kl_div")


def _check_same_size(input, target, name, message):
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(message.format(target=_torch_size(target), input=_torch_size(input)))


def _torch_size(t):
    return f"torch.Size({list(t.shape)})"


def _weighted(loss, weight, name):
    """loss * weight, weight broadcast to loss's shape (and no further), as torch expands it."""
    if weight is None:
        return loss
    if _broadcast_shapes(name, loss.shape, weight.shape) != tuple(loss.shape):
        raise RuntimeError(f"{name}: output with shape {list(loss.shape)} doesn't match the "
                           f"broadcast shape {list(_broadcast_shapes(name, loss.shape, weight.shape))}")
    return loss * weight


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    """-w (t log x + (1 - t) log(1 - x)), logs clamped at -100 (torch's
    binary_cross_entropy). input: probabilities in [0, 1] (checked on the CPU: reading them
    back from a GPU would stall it); target: input's shape; weight broadcasts to it."""
    _check_tensor("binary_cross_entropy", "input", input)
    _check_tensor("binary_cross_entropy", "target", target)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "binary_cross_entropy")
    _check_same_size(input, target, "binary_cross_entropy",
                     "Using a target size ({target}) that is different to the input size "
                     "({input}) is deprecated. Please ensure they have the same size.")
    if not input.is_floating_point() or target.dtype != input.dtype:
        raise RuntimeError(f"binary_cross_entropy: expected floating input and target of one "
                           f"dtype, got {input.dtype.name} and {target.dtype.name}")
    # written so that NaN fails the range check too, as in torch
    if input.device == "cpu" and input.numel() and \
            not bool(((input >= 0) & (input <= 1)).all()):
        raise RuntimeError("all elements of input should be between 0 and 1")
    loss = _weighted(BinaryCrossEntropy.apply(input, target), weight, "binary_cross_entropy")
    return _reduce(loss, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    """binary_cross_entropy(sigmoid(input), target) computed from the logits without
    overflow (torch.nn.functional.binary_cross_entropy_with_logits): (1 - t) x + l
    softplus(-x), l = 1 + (pos_weight - 1) t. pos_weight (e.g. (C,)) weighs the positive
    term and broadcasts against input; weight rescales each element."""
    _check_tensor("binary_cross_entropy_with_logits", "input", input)
    _check_tensor("binary_cross_entropy_with_logits", "target", target)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    _check_same_size(input, target, "binary_cross_entropy_with_logits",
                     "Target size ({target}) must be the same as input size ({input})")
    if not input.is_floating_point() or target.dtype != input.dtype:
        raise RuntimeError(f"binary_cross_entropy_with_logits: expected floating input and "
                           f"target of one dtype, got {input.dtype.name} and "
                           f"{target.dtype.name}")
    if pos_weight is not None:
        _weighted(input, pos_weight, "binary_cross_entropy_with_logits")   # shape check only
    loss = BinaryCrossEntropyWithLogits.apply(input, target, pos_weight)
    loss = _weighted(loss, weight, "binary_cross_entropy_with_logits")
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def one_hot(tensor, num_classes=-1):
    """(*) int64 class indices -> (*, num_classes) int64 with a 1 at each index
    (torch.nn.functional.one_hot); num_classes=-1 takes max + 1. Indices are checked on the
    CPU (on a GPU only when num_classes is inferred, which reads the max back anyway)."""
    _check_tensor("one_hot", "tensor", tensor)
    if tensor.dtype != dtypes.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    if num_classes == -1:
        if tensor.numel() == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(tensor.max()) + 1
        check = True
    else:
        check = tensor.device == "cpu"
    if check and tensor.numel():
        if int(tensor.min()) < 0:
            raise RuntimeError("Class values must be non-negative.")
        if int(tensor.max()) >= num_classes:
            raise RuntimeError("Class values must be smaller than num_classes.")
    classes = arange(num_classes, device=tensor.device)                    # (C,)
    return (tensor.unsqueeze(-1) == classes).long()                        # (*, C)


_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(input, pad, mode="constant", value=None):
    """Pad (or, with negative amounts, crop) the last len(pad) // 2 dims (torch's F.pad):
    pad = (left, right) of the last dim, then (left, right) of the one before, ...
    Differentiable in every mode.

    Modes: 'constant' (value, default 0; any rank); 'reflect' (mirrored, the edge not
    repeated; each pad smaller than its dim), 'replicate' (the edge repeated), 'circular'
    (wrapped; each pad at most its dim): as torch, these pad the last 1, 2 or 3 dims of an
    input with one or two more dims (2-D or 3-D input for 2 numbers, ...), negative amounts
    cropping first.
    """
    _check_tensor("pad", "input", input)
    try:
        pad = [_check_int_arg("pad", "pad", p) for p in pad]    # 0-d int Tensors too, as torch
    except TypeError:
        raise TypeError(f"pad(): argument 'pad' must be tuple of ints, got {tuple(pad)!r}") \
            from None
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    if len(pad) // 2 > input.ndim:
        raise RuntimeError(f"Padding length should be less than or equal to two times the input "
                           f"dimension but got padding length {len(pad)} and input of dimension "
                           f"{input.ndim}")
    if mode not in _PAD_MODES:
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if mode != "constant":
        k = len(pad) // 2
        if k not in (1, 2, 3) or input.ndim not in (k + 1, k + 2):
            raise NotImplementedError(
                f"Padding size {len(pad)} is not supported for {input.ndim}D input tensor. "
                "Supported combinations for non-constant padding: 2D or 3D input with "
                "padding size 2, 3D or 4D with 4, 4D or 5D with 6")
    value = 0 if value is None else value
    out = input
    for i in range(len(pad) // 2):
        d = input.ndim - 1 - i
        if mode == "constant":
            out = _pad_dim(out, d, pad[2 * i], pad[2 * i + 1], value)
        else:
            out = _pad_dim_indexed(out, d, pad[2 * i], pad[2 * i + 1], mode, input.shape)
    return out


def _pad_dim_indexed(x, d, before, after, mode, input_shape):
    """Dim d of x cropped by the negative amounts, then extended by picking its own slices:
    mirrored, edge or wrapped indices, through index_select (its gradient adds the copies
    back up)."""
    n = x.shape[d]
    if mode == "reflect" and (before >= n or after >= n):
        raise RuntimeError(f"Argument #4: Padding size should be less than the corresponding "
                           f"input dimension, but got: padding ({before}, {after}) at dimension "
                           f"{d} of input {list(input_shape)}")
    if mode == "circular" and (before > n or after > n):
        raise RuntimeError("Padding value causes wrapping around more than once.")
    if n == 0:
        raise RuntimeError(f"pad: mode={mode!r} needs a non-empty dimension {d}, got input "
                           f"{list(input_shape)}")
    start, stop = max(-before, 0), n - max(-after, 0)
    if stop - start <= 0:
        raise RuntimeError(f"pad: the padding ({before}, {after}) of dimension {d} (size {n}) "
                           "crops it to nothing")
    if start or stop != n:
        x = x[(slice(None),) * d + (slice(start, stop),)]
    m = stop - start
    lo, hi = max(before, 0), max(after, 0)
    if not lo and not hi:
        return x
    if mode == "reflect":
        pick = [abs(i) if i < 0 else (2 * (m - 1) - i if i >= m else i)
                for i in range(-lo, m + hi)]
    elif mode == "replicate":
        pick = [min(max(i, 0), m - 1) for i in range(-lo, m + hi)]
    else:
        pick = [i % m for i in range(-lo, m + hi)]
    return x.index_select(d, _tensor(pick, device=x.device))


def _pad_dim(x, d, before, after, value):
    """x with `before` / `after` value-filled slices added on dim d (negative: cropped)."""
    n = x.shape[d]
    start, stop = max(-before, 0), n - max(-after, 0)
    if stop - start < 0 or n + before + after < 0:
        raise RuntimeError(f"pad: the padding ({before}, {after}) of dimension {d} (size {n}) "
                           "gives a negative size")
    if start or stop != n:
        x = x[(slice(None),) * d + (slice(start, stop),)]
    parts = []
    for amount in (max(before, 0), max(after, 0)):
        shape = list(x.shape)
        shape[d] = amount
        parts.append(full(tuple(shape), value, dtype=x.dtype, device=x.device) if amount else None)
    pieces = [p for p in (parts[0], x, parts[1]) if p is not None]
    return pieces[0] if len(pieces) == 1 else cat(pieces, d)
