"""Bad inputs raise PyTorch's exception type (checked against torch where it is installed) with
the shapes at fault in the message; hard numerics (huge logits, -inf masks) give no NaN."""
import re

import numpy as np
import pytest

import tinygradattn as tga

from helpers import check_raises_like_torch


def F(L):
    return L.nn.functional


def shapes(*shape_list):
    """A regex requiring each shape, in either order, as '(2, 3)' or '[2, 3]'."""
    def pat(s):
        inner = r",\s*".join(str(n) for n in s) + ("," if len(s) == 1 else "")
        return r"[\(\[]" + inner + r"?[\)\]]"
    return "".join(f"(?=[\\s\\S]*{pat(s)})" for s in shape_list)


# (id, call(L), expected type, message regex); each call gets tinygradattn, then torch
CASES = [
    ("matmul_misaligned", lambda L: L.ones(2, 3) @ L.ones(4, 5), RuntimeError,
     shapes((2, 3), (4, 5))),
    ("matmul_misaligned_1d", lambda L: L.ones(3) @ L.ones(4), RuntimeError,
     shapes((3,), (4,))),
    ("matmul_misaligned_batched", lambda L: L.ones(2, 3, 4) @ L.ones(2, 5, 6), RuntimeError,
     shapes((2, 3, 4), (2, 5, 6))),
    ("matmul_batch_broadcast", lambda L: L.ones(2, 3, 4) @ L.ones(3, 4, 5), RuntimeError,
     r"2.*3|3.*2"),
    ("matmul_0d", lambda L: L.ones(()) @ L.ones(3), RuntimeError, None),
    ("matmul_f32_f64", lambda L: L.ones(2, 3) @ L.ones(3, 2, dtype=L.float64), RuntimeError,
     r"(?i)float.*double|double.*float|float32.*float64|float64.*float32"),
    ("broadcast_add", lambda L: L.ones(2, 3) + L.ones(4, 3), RuntimeError, r"3|4"),
    ("broadcast_mul_shapes", lambda L: L.ones(2, 3) * L.ones(2), RuntimeError, r"2.*3|3.*2"),
    ("broadcast_where", lambda L: L.where(L.ones(2, 3) > 0, L.ones(2, 3), L.ones(4, 1)),
     RuntimeError, None),
    ("requires_grad_int", lambda L: L.tensor([1, 2], requires_grad=True), RuntimeError,
     r"floating point"),
    ("requires_grad_int_method", lambda L: L.arange(3).requires_grad_(), RuntimeError,
     r"floating point"),
    ("ce_target_out_of_range", lambda L: F(L).cross_entropy(L.ones(2, 3), L.tensor([0, 3])),
     IndexError, r"3"),
    ("ce_target_negative", lambda L: F(L).cross_entropy(L.ones(2, 3), L.tensor([0, -5])),
     IndexError, r"-5"),
    ("nll_target_out_of_range", lambda L: F(L).nll_loss(L.ones(2, 3), L.tensor([7, 0])),
     IndexError, r"7"),
    ("ce_batch_mismatch", lambda L: F(L).cross_entropy(L.ones(2, 3), L.tensor([0, 1, 2])),
     ValueError, r"2.*3|3.*2"),
    ("dim_sum", lambda L: L.ones(2, 3).sum(2), IndexError, r"range"),
    ("dim_sum_negative", lambda L: L.ones(2, 3).sum(-3), IndexError, r"range"),
    ("dim_sum_tuple", lambda L: L.ones(2, 3).sum((0, 5)), IndexError, r"range"),
    ("dim_mean", lambda L: L.ones(2, 3).mean(4), IndexError, None),
    ("dim_softmax", lambda L: L.ones(2, 3).softmax(2), IndexError, None),
    ("dim_log_softmax", lambda L: L.ones(2, 3).log_softmax(-3), IndexError, None),
    ("dim_max", lambda L: L.ones(2, 3).max(2), IndexError, None),
    ("dim_argmax", lambda L: L.ones(2, 3).argmax(2), IndexError, None),
    ("dim_var", lambda L: L.ones(2, 3).var(3), IndexError, None),
    ("dim_logsumexp", lambda L: L.ones(2, 3).logsumexp(2), IndexError, None),
    ("dim_transpose", lambda L: L.ones(2, 3).transpose(0, 2), IndexError, None),
    ("dim_unsqueeze", lambda L: L.ones(2, 3).unsqueeze(3), IndexError, None),
    ("dim_squeeze", lambda L: L.ones(2, 3).squeeze(2), IndexError, None),
    ("dim_flatten", lambda L: L.ones(2, 3).flatten(0, 2), IndexError, None),
    ("dim_cat", lambda L: L.cat([L.ones(2, 3), L.ones(2, 3)], 2), IndexError, None),
    ("dim_stack", lambda L: L.stack([L.ones(2, 3), L.ones(2, 3)], 3), IndexError, None),
    ("dim_size", lambda L: L.ones(2, 3).size(2), IndexError, None),
    ("dim_split", lambda L: L.ones(2, 3).split(1, 2), IndexError, None),
    ("dim_duplicate", lambda L: L.ones(2, 3).sum((0, 0)), RuntimeError, r"multiple"),
    ("permute_not_permutation", lambda L: L.ones(2, 3).permute(0, 0), RuntimeError, None),
    ("reshape_numel", lambda L: L.ones(3, 4).reshape(5, 2), RuntimeError,
     r"\[5, 2\].*12"),
    ("reshape_infer_numel", lambda L: L.ones(3, 4).reshape(5, -1), RuntimeError, r"12"),
    ("reshape_two_inferred", lambda L: L.ones(3, 4).view(-1, -1), RuntimeError, None),
    ("expand_bad", lambda L: L.ones(2, 3).expand(4, 3), RuntimeError, r"4.*2|2.*4"),
    ("split_sizes", lambda L: L.ones(2, 3).split([1, 1], dim=1), RuntimeError, r"3"),
    ("item_many", lambda L: L.ones(2).item(), RuntimeError, r"2"),
    ("bool_ambiguous", lambda L: bool(L.ones(2)), RuntimeError, r"ambiguous"),
    ("float_many", lambda L: float(L.ones(3)), ValueError, None),
    ("int_many", lambda L: int(L.ones(3)), ValueError, None),
    ("cat_mismatch", lambda L: L.cat([L.ones(2, 3), L.ones(2, 4)], 0), RuntimeError,
     r"3.*4|4.*3"),
    ("cat_ndim_mismatch", lambda L: L.cat([L.ones(2, 3), L.ones(3)], 0), RuntimeError, None),
    ("cat_empty", lambda L: L.cat([], 0), ValueError, None),
    ("stack_empty", lambda L: L.stack([], 0), RuntimeError, None),
    ("stack_mismatch", lambda L: L.stack([L.ones(2, 3), L.ones(3, 2)]), RuntimeError,
     r"\[2, 3\].*\[3, 2\]"),
    ("ce_bad_reduction", lambda L: F(L).cross_entropy(L.ones(2, 3), L.tensor([0, 1]),
                                                      reduction="avg"), ValueError, r"avg"),
    ("mse_bad_reduction", lambda L: F(L).mse_loss(L.ones(2), L.ones(2), reduction="avg"),
     ValueError, r"avg"),
    ("nll_bad_reduction", lambda L: F(L).nll_loss(L.ones(2, 3), L.tensor([0, 1]),
                                                  reduction="avg"), ValueError, r"avg"),
    ("dropout_p_negative", lambda L: F(L).dropout(L.ones(3), -0.1), ValueError, r"-0.1"),
    ("dropout_p_above_one", lambda L: F(L).dropout(L.ones(3), 1.5), ValueError, r"1.5"),
    ("embedding_out_of_range", lambda L: F(L).embedding(L.tensor([0, 5]), L.ones(5, 2)),
     IndexError, r"range"),
    ("embedding_negative", lambda L: F(L).embedding(L.tensor([-1]), L.ones(5, 2)),
     IndexError, r"range"),
    ("embedding_float_indices", lambda L: F(L).embedding(L.ones(2), L.ones(5, 2)),
     RuntimeError, None),
    ("layer_norm_shape", lambda L: F(L).layer_norm(L.ones(2, 3, 4), (5,)), RuntimeError,
     r"5"),
    ("layer_norm_weight_shape", lambda L: F(L).layer_norm(L.ones(2, 3), (3,), L.ones(4)),
     RuntimeError, r"4"),
    ("linear_mismatch", lambda L: F(L).linear(L.ones(2, 3), L.ones(5, 4)), RuntimeError,
     shapes((2, 3), (5, 4)) + r"|2x3.*5x4"),
    ("sdpa_mismatch", lambda L: F(L).scaled_dot_product_attention(
        L.ones(2, 3, 4), L.ones(2, 5, 3), L.ones(2, 5, 4)), RuntimeError, None),
    ("mse_shape_mismatch", lambda L: F(L).mse_loss(L.ones(2, 3), L.ones(3, 2)), RuntimeError,
     None),
    ("where_int_condition", lambda L: L.where(L.tensor([1, 0]), L.ones(2), L.zeros(2)),
     RuntimeError, r"bool"),
    ("masked_fill_int_mask", lambda L: L.ones(2).masked_fill(L.tensor([1, 0]), 0.0),
     RuntimeError, r"bool"),
    ("gelu_bad_approximate", lambda L: F(L).gelu(L.ones(2), approximate="fast"),
     RuntimeError, None),
    ("ce_label_smoothing_range", lambda L: F(L).cross_entropy(
        L.ones(2, 3), L.tensor([0, 1]), label_smoothing=1.5), RuntimeError, r"1.5"),
    ("nll_float_target", lambda L: F(L).nll_loss(L.ones(2, 3), L.ones(2)), RuntimeError, None),
    ("mean_of_int", lambda L: L.tensor([1, 2]).mean(), RuntimeError, None),
    ("clamp_no_bounds", lambda L: L.ones(3).clamp(), RuntimeError, None),
    ("index_out_of_range", lambda L: L.ones(2, 3)[5], IndexError, r"5"),
    ("index_float", lambda L: L.ones(2, 3)[1.5], IndexError, None),
    ("index_too_many", lambda L: L.ones(2, 3)[0, 0, 0], IndexError, None),
    ("len_0d", lambda L: len(L.tensor(5.0)), TypeError, None),
    ("numpy_requires_grad", lambda L: L.ones(2, requires_grad=True).numpy(), RuntimeError,
     r"detach"),
    ("ragged_list", lambda L: L.tensor([[1, 2], [3]]), ValueError, None),
    ("negative_size", lambda L: L.zeros(-1, 2), RuntimeError, None),
    ("max_of_empty", lambda L: L.ones(0).max(), RuntimeError, None),
    ("backward_non_scalar", lambda L: (L.ones(2, requires_grad=True) * 2).backward(),
     RuntimeError, r"scalar"),
]


@pytest.mark.filterwarnings("ignore::UserWarning")    # torch's mse_loss size warning
@pytest.mark.parametrize("call,expected,match", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_raises_like_torch(call, expected, match):
    check_raises_like_torch(call, call, expected, match)


def test_matmul_message_names_both_shapes():
    with pytest.raises(RuntimeError) as info:
        tga.ones(2, 3) @ tga.ones(4, 5)
    msg = str(info.value)
    assert "(2, 3)" in msg and "(4, 5)" in msg, msg


def test_broadcast_message_names_both_shapes():
    with pytest.raises(RuntimeError) as info:
        tga.ones(2, 3) + tga.ones(4, 3)
    msg = str(info.value)
    assert "(2, 3)" in msg and "(4, 3)" in msg, msg


def test_cat_message_names_both_shapes():
    with pytest.raises(RuntimeError) as info:
        tga.cat([tga.ones(2, 3), tga.ones(2, 4)], 0)
    msg = str(info.value)
    assert "(2, 3)" in msg and "(2, 4)" in msg, msg


def test_shapes_regex_helper():
    assert re.search(shapes((2, 3), (4, 5)), "shapes (4, 5) and [2, 3]")
    assert not re.search(shapes((2, 3), (4, 5)), "shapes (4, 5) only")


# ---- numerics that must not produce NaN ----------------------------------------------------------
HUGE = np.array([[1e30, -1e30, 0.0, 1e30], [-1e30, -1e30, -1e30, 5.0]], dtype=np.float32)


def _finite_forward_backward(fn, x):
    t = tga.tensor(x, requires_grad=True)
    out = fn(t)
    assert np.isfinite(out.detach().numpy()).all(), out
    out.backward(tga.ones(*out.shape))
    assert np.isfinite(t.grad.numpy()).all(), t.grad
    return out.detach().numpy()


def test_softmax_of_huge_logits_has_no_nan():
    out = _finite_forward_backward(lambda t: t.softmax(-1), HUGE)
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(out[0], [0.5, 0.0, 0.0, 0.5])


def test_log_softmax_of_huge_logits_has_no_nan():
    out = _finite_forward_backward(lambda t: t.log_softmax(-1)[:, 0], HUGE)
    np.testing.assert_allclose(out, [-np.log(2.0), -(1e30 + 5.0)], rtol=1e-6)


def test_cross_entropy_of_huge_logits_has_no_nan():
    t = tga.tensor(HUGE, requires_grad=True)
    loss = tga.nn.functional.cross_entropy(t, tga.tensor([0, 3]))
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(t.grad.numpy()).all()
    assert loss.item() == pytest.approx(np.log(2.0) / 2, rel=1e-5)


def test_logsumexp_of_huge_logits_is_finite():
    out = tga.tensor(HUGE).logsumexp(1).numpy()
    np.testing.assert_allclose(out, [1e30, 5.0], rtol=1e-6)


MASK = np.array([[False, True, False, True], [True, True, True, False]])


def test_softmax_with_minus_inf_masked_entries_has_no_nan():
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    out = _finite_forward_backward(
        lambda t: t.masked_fill(tga.tensor(MASK), float("-inf")).softmax(-1), x)
    assert (out[MASK] == 0).all()
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-6)


def test_log_softmax_with_minus_inf_masked_entries_has_no_nan_in_unmasked():
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    t = tga.tensor(x, requires_grad=True)
    out = t.masked_fill(tga.tensor(MASK), float("-inf")).log_softmax(-1)
    o = out.detach().numpy()
    assert np.isfinite(o[~MASK]).all() and (o[MASK] == -np.inf).all()
    # only the unmasked entries feed the loss, as after masked attention
    out.masked_fill(tga.tensor(MASK), 0.0).sum().backward()
    assert np.isfinite(t.grad.numpy()).all()


def test_logsumexp_of_all_minus_inf_row_is_minus_inf_not_nan():
    x = tga.tensor([[float("-inf")] * 3, [0.0, 1.0, 2.0]])
    out = x.logsumexp(1).numpy()
    assert out[0] == -np.inf and np.isfinite(out[1])


def test_attention_with_partially_masked_rows_has_no_nan():
    F_ = tga.nn.functional
    q = tga.randn(1, 2, 3, 4, requires_grad=True)
    k = tga.randn(1, 2, 5, 4, requires_grad=True)
    v = tga.randn(1, 2, 5, 4, requires_grad=True)
    mask = tga.tensor([[True, False, False, False, False], [True, True, False, False, False],
                       [False, False, False, False, True]])
    out = F_.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out.sum().backward()
    for t in (out.detach(), q.grad, k.grad, v.grad):
        assert np.isfinite(t.numpy()).all()
    # the first query attends to key 0 only
    np.testing.assert_allclose(out.detach().numpy()[0, :, 0], v.detach().numpy()[0, :, 0],
                               rtol=1e-6)
