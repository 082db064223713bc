"""CUDA random numbers (tinygradattn/cuda/random.py): Philox4x32-10 against Random123's
known answers, the device's draws bit for bit against the host reference of the same
counters, the distributions' moments on 10^4 draws, state save / restore, seeds, randint's
bounds. Runs in numba's CUDA simulator (tests/conftest.py): sizes stay small.
"""
import json
import math

import numpy as np
import pytest

from tinygradattn.backend import get_backend
from tinygradattn.cuda.random import Philox, host_blocks, philox4x32_10

cuda = get_backend("cuda")
U = np.uint64

# Random123's kat_vectors, philox4x32 with 10 rounds: counter (4 words), key (2) -> output (4)
KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
    ((0xffffffff,) * 4, (0xffffffff,) * 2, (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
    ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
     (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1)),           # the digits of pi
]


@pytest.mark.parametrize("counter,key,expected", KNOWN_ANSWERS)
def test_philox4x32_10_known_answers(counter, key, expected):
    words = philox4x32_10(*(U(c) for c in counter), *(U(k) for k in key))
    assert tuple(int(w) for w in words) == expected
    arrays = philox4x32_10(*(np.full(3, c, np.uint64) for c in counter + key))   # vectorised
    assert all((a == e).all() for a, e in zip(arrays, expected))


def test_host_blocks_split_the_counter_and_key():
    seed = 0x299f31d0_a4093822
    offset = (0x85a308d3 << 32) | 0x243f6a88
    w = host_blocks(seed, offset, 1)
    assert tuple(int(v) for v in w[0]) == tuple(int(v) for v in philox4x32_10(
        U(0x243f6a88), U(0x85a308d3), U(0), U(0), U(0xa4093822), U(0x299f31d0)))


def _uniform_reference(words, dtype):
    w = words.astype(np.uint64).ravel()
    if dtype == np.float32:
        return (w >> U(8)).astype(np.float32) * np.float32(2.0 ** -24)
    pairs = w.reshape(-1, 2)
    u53 = ((pairs[:, 0] >> U(5)) << U(26)) | (pairs[:, 1] >> U(6))
    return u53.astype(np.float64) * 2.0 ** -53


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5), (2, 2, 2)])
def test_rand_is_the_philox_stream_bit_for_bit(dtype, shape):
    g = Philox(0x1234_5678_9abc_def0)
    g.set_state({"seed": 0x1234_5678_9abc_def0, "offset": 41})
    got = cuda.to_host(g.rand(shape, dtype))
    per = 4 if dtype == np.float32 else 2
    n = math.prod(shape)
    n_blocks = -(-n // per)
    expected = _uniform_reference(host_blocks(0x1234_5678_9abc_def0, 41, n_blocks), dtype)[:n]
    assert got.dtype == dtype and got.shape == shape
    np.testing.assert_array_equal(got.ravel(), expected)
    assert g.get_state()["offset"] == 41 + n_blocks


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_randn_is_box_muller_of_the_stream(dtype):
    g = Philox(7)
    n = 9
    got = cuda.to_host(g.randn((n,), dtype))
    per = 4 if dtype == np.float32 else 2
    u = _uniform_reference(host_blocks(7, 0, -(-n // per)), dtype).astype(np.float64)
    u1, u2 = u[0::2], u[1::2]
    r = np.sqrt(-2 * np.log(1 - u1))
    z = np.stack([r * np.cos(2 * np.pi * u2), r * np.sin(2 * np.pi * u2)], 1).ravel()[:n]
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(got, z, **tol)
    assert got.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rand_moments_of_10k_draws(dtype):
    g = Philox(2024)
    x = cuda.to_host(g.rand((100, 100), dtype)).astype(np.float64)
    assert x.min() >= 0 and x.max() < 1
    n = x.size                           # bounds: 5 standard errors
    assert abs(x.mean() - 0.5) < 5 * math.sqrt(1 / 12 / n)
    assert abs(x.var() - 1 / 12) < 5 * math.sqrt(1 / 180 / n)      # Var((U - 1/2)^2) = 1/180
    hist = np.histogram(x, bins=10, range=(0, 1))[0]                   # each bin 1000 +- 30
    assert np.all(np.abs(hist - n / 10) < 5 * math.sqrt(n * 0.1 * 0.9))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_randn_moments_of_10k_draws(dtype):
    g = Philox(99)
    z = cuda.to_host(g.randn((10_000,), dtype)).astype(np.float64)
    n = z.size
    assert np.isfinite(z).all()
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1) < 5 * math.sqrt(2 / n)
    assert abs(np.mean(z ** 3)) < 5 * math.sqrt(15 / n)                # skewness 0
    assert abs(np.mean(z ** 4) - 3) < 5 * math.sqrt(96 / n)            # kurtosis 3
    within = np.mean(np.abs(z) < 1)                                     # 0.6827
    assert abs(within - 0.682689) < 5 * math.sqrt(0.6827 * 0.3173 / n)


def test_state_is_json_and_restoring_it_reproduces_the_draws():
    cuda.manual_seed(123)
    cuda.rand((5,), np.float32)
    state = json.loads(json.dumps(cuda.get_rng_state()))
    a = [cuda.to_host(cuda.rand((3, 3), np.float64)), cuda.to_host(cuda.randn((6,), np.float32)),
         cuda.to_host(cuda.randint(0, 10, (4,)))]
    cuda.set_rng_state(state)
    b = [cuda.to_host(cuda.rand((3, 3), np.float64)), cuda.to_host(cuda.randn((6,), np.float32)),
         cuda.to_host(cuda.randint(0, 10, (4,)))]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    cuda.manual_seed(123)                                   # the seed alone restarts the stream
    first = cuda.to_host(cuda.rand((5,), np.float32))
    cuda.manual_seed(123)
    np.testing.assert_array_equal(cuda.to_host(cuda.rand((5,), np.float32)), first)


def test_draws_move_on_and_seeds_differ():
    g = Philox(1)
    a, b = cuda.to_host(g.rand((64,), np.float32)), cuda.to_host(g.rand((64,), np.float32))
    assert not np.array_equal(a, b)
    c = cuda.to_host(Philox(2).rand((64,), np.float32))
    assert not np.array_equal(a, c)
    assert Philox(-1).get_state()["seed"] == 2 ** 64 - 1           # seeds taken mod 2^64
    assert Philox(None).get_state()["seed"] != Philox(None).get_state()["seed"]


def test_randint_bounds_and_coverage():
    g = Philox(5)
    x = cuda.to_host(g.randint(-3, 4, (7, 11)))
    assert x.dtype == np.int64 and x.shape == (7, 11)
    assert x.min() >= -3 and x.max() < 4
    assert set(np.unique(x)) == set(range(-3, 4))
    big = cuda.to_host(g.randint(-2 ** 62, 2 ** 62, (5,)))
    assert (big >= -2 ** 62).all() and (big < 2 ** 62).all()
    assert cuda.to_host(g.randint(9, 10, (3,))).tolist() == [9, 9, 9]
    w = host_blocks(5, 0, 1)[0].astype(object)                        # bit for bit
    u64 = [(int(w[0]) << 32) | int(w[1]), (int(w[2]) << 32) | int(w[3])]
    first = cuda.to_host(Philox(5).randint(-3, 4, (2,)))
    assert first.tolist() == [-3 + u % 7 for u in u64]


def test_empty_shapes_and_bad_arguments():
    g = Philox(0)
    assert cuda.to_host(g.rand((0, 3), np.float32)).shape == (0, 3)
    assert g.get_state()["offset"] == 0
    assert cuda.to_host(g.randn((), np.float64)).shape == ()
    with pytest.raises(TypeError, match="dtype"):
        g.rand((2,), np.int64)
    with pytest.raises(ValueError, match="low >= high"):
        g.randint(3, 3, (2,))
    with pytest.raises(ValueError, match="seed"):
        g.set_state({"seed": -1, "offset": 0})
    with pytest.raises(ValueError, match="seed"):
        g.set_state([1, 2])
