"""The CUDA row sort (tinygradattn/cuda/sorting.py) and the multinomial kernel
(tinygradattn/cuda/random.py) in numba's CUDA simulator, against the CPU backend.

The simulator sorts tiles of 8 columns (SIM_TUNING's sort_tile): rows of 1, 7 (tile - 1), 8,
9 (tile + 1, one merge) and 33 (three merges) columns; values are small integers with NaN and
±inf, so ties, NaN order and the stable tiebreak are all exercised. The samplers get
chi-square tests at p = 0.001 with a fixed seed, as on the CPU
(tests/autograd/test_api_sampling.py). Every result must come without a host copy.
"""
import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn.backend import get_backend
from tinygradattn.cuda import sorting
from tinygradattn.cuda.launch import tuning

cpu = get_backend("cpu")
cuda = get_backend("cuda")

CHI2_999 = {2: 13.82, 3: 16.27}


def chi2(counts, expected):
    counts, expected = np.asarray(counts, float), np.asarray(expected, float)
    return float(((counts - expected) ** 2 / expected).sum())


def rows(shape, dtype, seed=0):
    a = np.random.default_rng(seed).integers(-3, 4, shape).astype(dtype)
    if a.dtype.kind == "f" and a.size > 3:
        a.flat[::5] = np.nan
        a.flat[1::7] = np.inf
        a.flat[2::11] = -np.inf
    return a


def test_simulator_tile_is_what_these_shapes_assume():
    assert tuning()["sort_tile"] == 8


@pytest.mark.parametrize("C", [1, 7, 8, 9, 33])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_sort_kernel_matches_cpu_stable_sort(C, dtype):
    a = rows((2, C), dtype, seed=C)
    x = cuda.from_host(a)
    for descending in (False, True):
        before = tga.cuda.copy_stats()
        values, indices = sorting.sort(x, descending)
        assert tga.cuda.copy_stats() == before, "sort copied to or from the host"
        want_v, want_i = cpu.sort(a, descending)
        np.testing.assert_array_equal(cuda.to_host(indices), want_i, f"C={C} {descending}")
        np.testing.assert_array_equal(cuda.to_host(values), want_v)
        assert values.dtype == np.dtype(dtype) and indices.dtype == np.int64


def test_sort_kernel_empty_and_errors():
    v, i = sorting.sort(cuda.from_host(np.zeros((0, 5), np.float32)))
    assert v.shape == (0, 5) and i.shape == (0, 5)
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        sorting.sort(cuda.from_host(np.zeros(5, np.float32)))
    with pytest.raises(TypeError, match="bool"):
        sorting.sort(cuda.from_host(np.zeros((1, 5), np.bool_)))


def test_tensor_sort_topk_on_cuda_views_and_gradient():
    a = rows((4, 9), np.float64, seed=3)
    a[np.isnan(a) | np.isinf(a)] = 0.5
    x_cpu = tga.tensor(a, requires_grad=True)
    x_gpu = tga.tensor(a, device="cuda", requires_grad=True)
    for x in (x_cpu, x_gpu):
        v, i = x.T[::2].topk(3, dim=1, largest=False)        # (5, 4) strided view, dim 1
        (v * v).sum().backward()
    np.testing.assert_array_equal(i.cpu().numpy(), x_cpu.T[::2].topk(3, 1, False).indices.numpy())
    np.testing.assert_array_equal(x_gpu.grad.cpu().numpy(), x_cpu.grad.numpy())
    s = tga.tensor([True, False, True], device="cuda").sort(descending=True)
    assert s.values.tolist() == [True, True, False] and s.indices.tolist() == [0, 2, 1]


def test_multinomial_with_replacement_on_cuda_follows_the_weights():
    w = np.array([1., 0., 2., 3., 4.], np.float32)
    before = tga.cuda.copy_stats()
    draws = tga.tensor(w, device="cuda").multinomial(2000, replacement=True)
    copies = tga.cuda.copy_stats()
    assert copies["host_to_device"] == before["host_to_device"] + 1      # the weights only
    assert copies["device_to_host"] == before["device_to_host"]
    counts = np.bincount(draws.cpu().numpy(), minlength=5)
    assert counts[1] == 0
    assert chi2(counts[w > 0], 2000 * w[w > 0] / w.sum()) < CHI2_999[3], counts


def test_multinomial_without_replacement_on_cuda():
    p = np.array([0.1, 0.2, 0.3, 0.4])
    draws = tga.tensor(np.tile(p, (200, 1)), device="cuda").multinomial(2).cpu().numpy()
    assert (draws[:, 0] != draws[:, 1]).all()
    first = np.bincount(draws[:, 0], minlength=4)
    assert chi2(first, 200 * p) < CHI2_999[3], first
    perms = tga.tensor(np.random.default_rng(1).random((3, 9)) + 0.1,
                       device="cuda").multinomial(9).cpu().numpy()
    assert all(sorted(r) == list(range(9)) for r in perms.tolist())
    zeros = tga.tensor([0., 5., 0., 1.], device="cuda").multinomial(4).tolist()
    assert sorted(zeros[:2]) == [1, 3]                   # zero weights after the others


@pytest.mark.parametrize("probs,match", [([1., -1.], "element < 0"),
                                         ([[1., 2.], [0., 0.]], "sum of probabilities")])
def test_multinomial_errors_on_cuda_raise_at_the_next_host_read(probs, match):
    out = tga.tensor(probs, device="cuda").multinomial(1, True)
    with pytest.raises(RuntimeError, match=match):
        out.cpu()
    assert tga.tensor([1., 2.], device="cuda").multinomial(1).shape == (1,)   # cleared


def test_randperm_and_generator_on_cuda():
    p = tga.randperm(11, device="cuda")
    assert p.device == "cuda" and sorted(p.tolist()) == list(range(11))
    g = tga.Generator("cuda").manual_seed(3)
    state = g.get_state()
    a = [tga.randperm(5, generator=g, device="cuda").tolist(),
         tga.tensor([1., 2.], device="cuda").multinomial(3, True, generator=g).tolist(),
         tga.rand(3, generator=g, device="cuda").tolist()]
    g.set_state(state)
    assert [tga.randperm(5, generator=g, device="cuda").tolist(),
            tga.tensor([1., 2.], device="cuda").multinomial(3, True, generator=g).tolist(),
            tga.rand(3, generator=g, device="cuda").tolist()] == a
    with pytest.raises(RuntimeError, match="device type for generator"):
        tga.rand(2, generator=tga.Generator(), device="cuda")
