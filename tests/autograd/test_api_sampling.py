"""sort, argsort, topk, multinomial, randperm and Generator (issue 15): torch parity of values
and indices (ties as torch's stable sort), gradients of the sorted values (float64
gradcheck), torch's errors, and statistical tests of the samplers with fixed seeds (chi-square
at p = 0.001: they fail when the distribution is wrong, and pass with these seeds).

The cuda twins of these checks (kernels in the simulator) are tests/cuda/test_cuda_sorting.py.
"""
import numpy as np
import pytest

import tinygradattn as tga
from helpers import check_raises_like_torch

torch = pytest.importorskip("torch")

# chi-square critical values at p = 0.001 by degrees of freedom
CHI2_999 = {1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47, 5: 20.52}


def chi2(counts, expected):
    counts, expected = np.asarray(counts, float), np.asarray(expected, float)
    return float(((counts - expected) ** 2 / expected).sum())


def tied(shape, seed=0, dtype=np.float32):
    """Small integers as floats: many ties, so the tie order is tested too."""
    return np.random.default_rng(seed).integers(0, 4, shape).astype(dtype)


# ---- sort / argsort / topk: torch parity --------------------------------------------------
SORT_CASES = [((7,), -1), ((3, 5), 1), ((3, 5), 0), ((2, 3, 11), 1), ((1,), 0), ((4, 1), 1),
              ((0, 3), 1), ((3, 0), 1), ((), 0)]


@pytest.mark.parametrize("shape,dim", SORT_CASES)
@pytest.mark.parametrize("descending", [False, True])
def test_sort_matches_torch_stable(shape, dim, descending):
    a = tied(shape)
    got = tga.tensor(a).sort(dim, descending)
    want = torch.sort(torch.tensor(a), dim=dim, descending=descending, stable=True)
    np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
    np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
    assert got.indices.dtype == tga.int64 and got.values.dtype == tga.float32
    v, i = got                                  # unpacks like torch.return_types.sort
    assert v is got.values and i is got.indices


def test_sort_nan_inf_and_int_and_bool_like_torch():
    a = np.array([[3., np.nan, -np.inf, 1., np.nan, np.inf, -0.0, 0.0]])
    for desc in (False, True):
        got = tga.sort(tga.tensor(a), descending=desc)
        want = torch.sort(torch.tensor(a), descending=desc, stable=True)
        np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
        np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
    ints = np.array([5, -2, 7, -2, 0], dtype=np.int64)
    got = tga.tensor(ints).sort(descending=True)
    assert got.values.tolist() == [7, 5, 0, -2, -2] and got.indices.tolist() == [2, 0, 4, 1, 3]
    bools = tga.tensor([True, False, True]).sort()
    assert bools.values.dtype == tga.bool and bools.values.tolist() == [False, True, True]
    assert bools.indices.tolist() == [1, 0, 2]


def test_argsort_and_free_functions():
    a = tied((4, 6), seed=1)
    want = torch.argsort(torch.tensor(a), dim=0, descending=True, stable=True).numpy()
    np.testing.assert_array_equal(tga.argsort(tga.tensor(a), dim=0, descending=True).numpy(),
                                  want)
    np.testing.assert_array_equal(tga.tensor(a).argsort(stable=True).numpy(),
                                  torch.tensor(a).argsort(stable=True).numpy())


def test_sort_of_non_contiguous_input():
    a = np.random.default_rng(2).standard_normal((5, 7)).astype(np.float32)
    x = tga.tensor(a).T[1:, ::2]                # transposed and sliced: (6, 3) strided view
    got = x.sort(0)
    want = torch.tensor(a).T[1:, ::2].sort(0)
    np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
    np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("shape,dim,k", [((7,), 0, 3), ((3, 5), 1, 5), ((3, 5), 0, 2),
                                         ((2, 3, 4), 1, 1), ((3, 4), 1, 0), ((), 0, 1)])
def test_topk_matches_torch(shape, dim, k, largest):
    # distinct values: torch's choice among ties is unspecified
    a = np.random.default_rng(3).permutation(max(int(np.prod(shape)), 1)).astype(np.float32)
    a = a[:int(np.prod(shape))].reshape(shape)
    got = tga.topk(tga.tensor(a), k, dim, largest)
    want = torch.topk(torch.tensor(a), k, dim, largest)
    np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
    np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())


def test_topk_ties_take_the_lower_index_and_nan_is_largest():
    x = tga.tensor([1., 3., 2., 3., float("nan"), 2.])
    assert x.topk(3).indices.tolist() == [4, 1, 3]
    assert x.topk(3, largest=False).indices.tolist() == [0, 2, 5]
    assert x.topk(2, sorted=False).indices.tolist() == [4, 1]


# ---- gradients ------------------------------------------------------------------------------
def test_sort_and_topk_gradients_gradcheck():
    a = np.random.default_rng(4).permutation(24).reshape(2, 3, 4) * 0.5   # distinct, spaced
    x = tga.tensor(a, dtype=tga.float64, requires_grad=True)
    assert tga.autograd.gradcheck(lambda t: t.sort(1, descending=True).values, (x,))
    assert tga.autograd.gradcheck(lambda t: t.topk(2, dim=-1).values, (x,))
    assert tga.autograd.gradcheck(lambda t: t.transpose(0, 2).topk(1, 0, False).values, (x,))


def test_topk_gradient_scatters_to_the_chosen_positions_like_torch():
    a = tied((3, 6), seed=5)
    w = np.random.default_rng(6).standard_normal((3, 2)).astype(np.float32)
    x = tga.tensor(a, requires_grad=True)
    (x.topk(2, dim=1).values * tga.tensor(w)).sum().backward()
    t = torch.tensor(a, requires_grad=True)
    torch.sort(t, dim=1, descending=True, stable=True).values[:, :2].mul(
        torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())
    assert tga.tensor([1.0, 2.0]).sort().values.grad_fn is None     # no graph without grad


# ---- errors ---------------------------------------------------------------------------------
def test_sort_and_topk_errors_like_torch():
    check_raises_like_torch(lambda m: m.tensor([1., 2.]).sort(dim=1),
                            lambda m: m.tensor([1., 2.]).sort(dim=1), IndexError, "range")
    check_raises_like_torch(lambda m: m.tensor([1., 2., 3.]).topk(4),
                            lambda m: m.tensor([1., 2., 3.]).topk(4), RuntimeError, "k out")
    check_raises_like_torch(lambda m: m.tensor([1., 2., 3.]).topk(-1),
                            lambda m: m.tensor([1., 2., 3.]).topk(-1), RuntimeError, "k out")


@pytest.mark.parametrize("probs,n,replacement,error,match", [
    ([-1., 2.], 1, False, RuntimeError, "element < 0"),
    ([float("nan"), 2.], 1, True, RuntimeError, "nan"),
    ([float("inf"), 2.], 1, False, RuntimeError, "inf"),
    ([[1., 1.], [0., 0.]], 1, True, RuntimeError, "sum of probabilities"),
    ([1., 2.], 3, False, RuntimeError, "without replacement"),
    ([1., 2.], 0, True, RuntimeError, "n_sample <= 0"),
    ([[[1., 2.]]], 1, True, RuntimeError, "1 or 2 dim"),
    (1.0, 1, True, RuntimeError, "1 or 2 dim"),
    ([1, 2], 1, True, RuntimeError, "floating-point"),
])
def test_multinomial_errors_like_torch(probs, n, replacement, error, match):
    check_raises_like_torch(lambda m: m.tensor(probs).multinomial(n, replacement),
                            lambda m: m.tensor(probs).multinomial(n, replacement), error, match)


# ---- multinomial: shapes and statistics -------------------------------------------------------
def test_multinomial_shapes_dtype_and_seed():
    p = tga.tensor([[1., 2., 3.], [3., 0., 1.]])
    assert p.multinomial(5, True).shape == (2, 5)
    assert tga.multinomial(p[0], 2).shape == (2,)
    assert p.multinomial(2).dtype == tga.int64
    assert tga.ones(0, 3).multinomial(2).shape == (0, 2)
    tga.manual_seed(7)
    a = p.multinomial(9, True).tolist()
    tga.manual_seed(7)
    assert p.multinomial(9, True).tolist() == a
    assert 1 not in [j for j in p[1].multinomial(50, True).tolist()]     # zero weight: never


@pytest.mark.parametrize("dtype", [tga.float32, tga.float64])
def test_multinomial_with_replacement_follows_the_weights(dtype):
    w = np.array([1., 0., 2., 3., 4.])                  # unnormalised; column 1 never drawn
    draws = tga.tensor(w, dtype=dtype).multinomial(5000, replacement=True).numpy()
    counts = np.bincount(draws, minlength=5)
    assert counts[1] == 0
    keep = w > 0
    expected = 5000 * w[keep] / w.sum()
    assert chi2(counts[keep], expected) < CHI2_999[3], counts


def test_multinomial_without_replacement_first_and_second_draws():
    """Row-wise draws of 2 from p: the first ~ p, the second j ~ sum_i p_i p_j / (1 - p_i)."""
    p = np.array([0.1, 0.2, 0.3, 0.4])
    n = 4000
    draws = tga.tensor(np.tile(p, (n, 1)) * 7.0).multinomial(2).numpy()   # scale: unnormalised
    assert (draws[:, 0] != draws[:, 1]).all()
    first = np.bincount(draws[:, 0], minlength=4)
    assert chi2(first, n * p) < CHI2_999[3], first
    second_p = np.array([sum(p[i] * p[j] / (1 - p[i]) for i in range(4) if i != j)
                         for j in range(4)])
    second = np.bincount(draws[:, 1], minlength=4)
    assert chi2(second, n * second_p) < CHI2_999[3], second
    uniform = np.full(4, n / 4)
    assert chi2(first, uniform) > CHI2_999[3]           # the test can tell p from uniform


def test_multinomial_without_replacement_never_repeats():
    w = tga.rand(6, 9) + 0.01
    draws = w.multinomial(9).numpy()                    # every column: a permutation
    assert all(sorted(row) == list(range(9)) for row in draws.tolist())
    zeros = tga.tensor([0., 5., 0., 1.]).multinomial(4).tolist()
    assert sorted(zeros[:2]) == [1, 3] and sorted(zeros) == [0, 1, 2, 3]   # zeros come last


# ---- randperm and Generator ---------------------------------------------------------------------
def test_randperm():
    for n in (0, 1, 2, 13):
        p = tga.randperm(n)
        assert p.dtype == tga.int64 and sorted(p.tolist()) == list(range(n))
    assert tga.randperm(4, dtype=tga.float32).dtype == tga.float32
    check_raises_like_torch(lambda m: m.randperm(-1), lambda m: m.randperm(-1), RuntimeError,
                            "negative")
    firsts = np.bincount([tga.randperm(3)[0].item() for _ in range(600)], minlength=3)
    assert chi2(firsts, [200, 200, 200]) < CHI2_999[2], firsts


def test_generator_is_independent_and_reproducible():
    g = tga.Generator()
    assert g.initial_seed() == torch.Generator().initial_seed()
    assert g.manual_seed(5) is g and g.initial_seed() == 5
    a = tga.rand(4, generator=g).tolist()
    state = g.get_state()
    b = [tga.randn(3, generator=g).tolist(), tga.randint(0, 9, (5,), generator=g).tolist(),
         tga.randperm(6, generator=g).tolist(),
         tga.tensor([1., 2., 3.]).multinomial(4, True, generator=g).tolist()]
    assert g.set_state(state) is g
    assert [tga.randn(3, generator=g).tolist(), tga.randint(0, 9, (5,), generator=g).tolist(),
            tga.randperm(6, generator=g).tolist(),
            tga.tensor([1., 2., 3.]).multinomial(4, True, generator=g).tolist()] == b
    tga.manual_seed(0)                                  # the global generator: untouched
    glob = tga.rand(4).tolist()
    tga.manual_seed(0)
    tga.rand(4, generator=tga.Generator().manual_seed(1))
    assert tga.rand(4).tolist() == glob
    assert tga.rand(4, generator=tga.Generator().manual_seed(5)).tolist() == a
    s = g.seed()
    assert isinstance(s, int) and g.initial_seed() == s


def test_generator_errors():
    with pytest.raises(RuntimeError, match="device type for generator"):
        tga.tensor([1., 2.]).multinomial(1, generator=_FakeCudaGenerator())
    with pytest.raises(TypeError, match="Generator"):
        tga.rand(2, generator=object())
    with pytest.raises(RuntimeError, match="unknown device"):
        tga.Generator("tpu")


class _FakeCudaGenerator(tga.Generator):
    def __init__(self):                                 # a cuda generator without cuda
        self.device, self._impl, self._initial_seed = "cuda", None, 0
