"""Direct tests of the Cython kernels in tinygradattn._core against numpy oracles.

GEMM: every micro-kernel set this CPU runs (avx512 / avx2 / generic), float32 and float64,
1 and 2 threads, sizes around the micro-tile (MR, NR) and cache blocks (KC, MC, NC), strided /
transposed / broadcast operands, and gemm vs gemm_naive; the same with a bias row added inside
the GEMM, and with the epilogues (the output multiplied by an array; GELU and its
derivative). Column sum: against float64 sums, bit-identical for any thread count. Softmax
family: outliers, -inf entries, all -inf rows, huge logits. Error cases raise with the shapes in the
message.
"""
import numpy as np
import pytest

from tinygradattn import _core
from tinygradattn.backend import isa as backend_isa


# Tolerances per dtype, relative to the size of the result (GEMM sums K products).
GEMM_RTOL = {np.float32: 2e-5, np.float64: 1e-12}


DTYPES = [np.float32, np.float64]


THREADS = [1, 2]


# micro-tiles (MR, NR) per ISA and dtype, as in _gemm_kernel.h; blocks as in _core.pyx
TILES = {
    "avx512": {np.float32: (12, 32), np.float64: (12, 16)},
    "avx2": {np.float32: (6, 16), np.float64: (6, 8)},
    "generic": {np.float32: (4, 8), np.float64: (4, 4)},
}


KC = {np.float32: 256, np.float64: 128}


MT_MAX = {np.float32: 1024, np.float64: 1024}   # rows of A packed per task (1 MiB / (KC x 4|8))


NC_MAX = {np.float32: 512, np.float64: 512}     # columns of B packed per block (512 KiB)


pytestmark = pytest.mark.usefixtures("core_threads_on_small_work")


@pytest.fixture(params=backend_isa.isas("gemm"))
def isa(request):
    """Run the test with each micro-kernel set the CPU supports, then restore the default."""
    backend_isa.set_isa("gemm", request.param)
    yield request.param
    backend_isa.set_isa("gemm", "auto")


def rng_for(*key):
    return np.random.default_rng(abs(hash(key)) % (2**32))


def oracle_gemm(a, b):
    """float64 numpy matmul of (Bt, M, K) @ (Bt, K, N)."""
    return np.matmul(a.astype(np.float64), b.astype(np.float64))


def assert_gemm_close(out, a, b, dtype):
    ref = oracle_gemm(a, b)
    # each entry is a K-term sum: scale the error by sum_k |a||b|, the rounding bound's size
    scale = np.matmul(np.abs(a).astype(np.float64), np.abs(b).astype(np.float64)) + 1e-30
    err = np.abs(out - ref) / scale
    if err.size:
        where = np.unravel_index(np.argmax(err), err.shape)
        assert err.max() <= GEMM_RTOL[dtype], (
            f"{np.dtype(dtype).name}: max scaled error {err.max():.3g} at {where} "
            f"(out {out[where]!r}, ref {ref[where]!r}, shape {out.shape})")


def run_gemm(a, b, n_threads, dtype):
    out = np.full((a.shape[0], a.shape[1], b.shape[2]), np.nan, dtype=dtype)
    _core.gemm(out, a, b, n_threads)
    return out


def test_gemm_isa_selection():
    isas = backend_isa.isas("gemm")
    assert "generic" in isas
    assert backend_isa.isa("gemm") == isas[0]      # the default is the fastest supported
    with pytest.raises(ValueError, match="cannot run 'sse9'"):
        backend_isa.set_isa("gemm", "sse9")
    assert backend_isa.isa("gemm") == isas[0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
def test_gemm_tile_edges(isa, dtype, n_threads):
    """M, N around the micro-tile (1, MR-1, MR, MR+1, ...), K small, prime and > KC; edge
    panels of MR/2 and MR/2 + 1 rows (the half-height kernel and the full one), read in place
    (one K block) or packed (K > KC)."""
    mr, nr = TILES[isa][dtype]
    ms = sorted({1, mr // 2, mr // 2 + 1, mr - 1, mr, mr + 1, mr + mr // 2, mr + mr // 2 + 1,
                 2 * mr + 1})
    ns = sorted({1, nr - 1, nr, nr + 1, 2 * nr + 3})
    rng = rng_for("edges", isa, dtype, n_threads)
    for m in ms:
        for n in ns:
            for k in (1, 7, KC[dtype] + 1):
                if m * n * k > 30000 and (m, n) != (ms[-1], ns[-1]):
                    continue
                a = rng.standard_normal((2, m, k)).astype(dtype)
                b = rng.standard_normal((2, k, n)).astype(dtype)
                assert_gemm_close(run_gemm(a, b, n_threads, dtype), a, b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_edge_panel_in_place_gives_the_same_bits(isa, dtype):
    """With one K block, an edge panel of row-major a is computed in place by a kernel moved
    up over the panel above (recomputing some of its rows): every row must have the bits it
    gets when computed alone (a row's sum does not depend on its panel), with a bias and
    the mul / add epilogues too."""
    mr, nr = TILES[isa][dtype]
    rng = rng_for("edge in place", isa, dtype)
    k, n = 29, 2 * nr + 3
    for m in (mr + 1, mr + mr // 2 + 1, 2 * mr - 1, 3 * mr + 2):
        a = rng.standard_normal((2, m, k)).astype(dtype)
        b = rng.standard_normal((2, k, n)).astype(dtype)
        bias = rng.standard_normal(n).astype(dtype)
        mul = rng.standard_normal((2, m, n)).astype(dtype)
        add = rng.standard_normal((2, m, n)).astype(dtype)
        whole = run_gemm_mul(a, b, bias, mul, 1, dtype, add)
        for i in range(m):                              # each row as a one-row product
            row = run_gemm_mul(np.ascontiguousarray(a[:, i:i + 1]), b, bias,
                               np.ascontiguousarray(mul[:, i:i + 1]), 1, dtype,
                               np.ascontiguousarray(add[:, i:i + 1]))
            np.testing.assert_array_equal(whole[:, i:i + 1], row, err_msg=f"m={m} row {i}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
def test_gemm_blocks(isa, dtype, n_threads):
    """Shapes crossing the MT, NC and KC blocks, M too short to split, and primes."""
    rng = rng_for("blocks", isa, dtype, n_threads)
    shapes = [(MT_MAX[dtype] + 1, 5, 2 * KC[dtype] + 3), (13, NC_MAX[dtype] + 1, 29),
              (127, 509, 253), (3, 2 * NC_MAX[dtype] + 7, 11)]
    for m, n, k in shapes:
        a = rng.standard_normal((1, m, k)).astype(dtype)
        b = rng.standard_normal((1, k, n)).astype(dtype)
        assert_gemm_close(run_gemm(a, b, n_threads, dtype), a, b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
def test_gemm_weight_grad_shapes(isa, dtype, n_threads):
    """A Linear's dW = dout.T @ x at K = 768 tokens (dout.T read in place), for the M / N
    splits the planner chooses between (N split at 128 x 512, M split otherwise)."""
    rng = rng_for("dW", isa, dtype, n_threads)
    for out_f, in_f in [(128, 512), (512, 128), (128, 128), (65, 128)]:
        dout = rng.standard_normal((1, 768, out_f)).astype(dtype)
        x = rng.standard_normal((1, 768, in_f)).astype(dtype)
        a = dout.transpose(0, 2, 1)
        assert_gemm_close(run_gemm(a, x, n_threads, dtype), a, x, dtype)


def test_gemm_task_grid_balances_threads():
    """Two threads: M = 128 is 11 panels of 12 (6 + 5), so with N = 512 (8 + 8 panels of 32)
    the split is along N; with N = 128 (2 + 2 panels) it stays along M, as do even splits."""
    if backend_isa.isa("gemm") != "avx512":
        pytest.skip("the grid depends on the micro-tile; written for avx512's 12 x 32")
    assert _core._gemm_task_grid(128, 512, 768, 2)[2:] == (1, 2)
    assert _core._gemm_task_grid(128, 128, 768, 2)[2:] == (2, 1)
    assert _core._gemm_task_grid(768, 512, 128, 2)[2:] == (2, 1)
    assert _core._gemm_task_grid(512, 128, 768, 2)[2:] == (2, 1)
    assert _core._gemm_task_grid(128, 512, 768, 1)[2:] == (1, 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
def test_gemm_large_parallel(dtype, n_threads):
    """Big enough to use the threads and several blocks on every axis."""
    rng = rng_for("large", dtype, n_threads)
    a = rng.standard_normal((1, 300, 520)).astype(dtype)
    b = rng.standard_normal((1, 520, 610)).astype(dtype)
    assert_gemm_close(run_gemm(a, b, n_threads, dtype), a, b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
def test_gemm_batched(dtype, n_threads):
    rng = rng_for("batched", dtype, n_threads)
    a = rng.standard_normal((5, 33, 17)).astype(dtype)
    b = rng.standard_normal((5, 17, 41)).astype(dtype)
    assert_gemm_close(run_gemm(a, b, n_threads, dtype), a, b, dtype)
    # attention's q @ k^T: M = 64 ends in a 4-row panel (half-height kernel, w in place)
    a = rng.standard_normal((6, 64, 32)).astype(dtype)
    b = rng.standard_normal((6, 32, 64)).astype(dtype)
    assert_gemm_close(run_gemm(a, b, n_threads, dtype), a, b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
def test_gemm_strided_operands(isa, dtype, n_threads):
    """Transposed, sliced, negative-stride and broadcast (batch stride 0) views, no copies."""
    rng = rng_for("strided", isa, dtype, n_threads)
    m, n, k, bt = 29, 45, 70, 3
    base_a = rng.standard_normal((bt, k, m)).astype(dtype)
    base_b = rng.standard_normal((bt, n, k)).astype(dtype)
    views = {
        "a.T, b.T": (base_a.transpose(0, 2, 1), base_b.transpose(0, 2, 1)),
        "sliced": (rng.standard_normal((bt, 2 * m, 3 * k)).astype(dtype)[:, ::2, ::3],
                   rng.standard_normal((2 * bt, k, 2 * n)).astype(dtype)[::2, :, 1::2]),
        "reversed": (base_a.transpose(0, 2, 1)[:, ::-1, ::-1], base_b.transpose(0, 2, 1)[::-1]),
        "broadcast a": (np.broadcast_to(base_a[0].T, (bt, m, k)), base_b.transpose(0, 2, 1)),
        "broadcast b": (base_a.transpose(0, 2, 1), np.broadcast_to(base_b[1].T, (bt, k, n))),
    }
    for name, (a, b) in views.items():
        assert a.shape == (bt, m, k) and b.shape == (bt, k, n), name
        assert_gemm_close(run_gemm(a, b, n_threads, dtype), a, b, dtype)


def test_gemm_default_threshold_and_threads():
    """Default thresholds (small work stays on one thread) and n_threads < 1 (the default)."""
    _core._set_tuning(min_flops_per_thread=4194304.0)
    rng = rng_for("threshold")
    for shape in [(1, 8, 8, 8), (2, 64, 96, 80), (1, 300, 200, 100)]:
        bt, m, n, k = shape
        a = rng.standard_normal((bt, m, k)).astype(np.float32)
        b = rng.standard_normal((bt, k, n)).astype(np.float32)
        for n_threads in (0, -1, 1, 2, 7):
            assert_gemm_close(run_gemm(a, b, n_threads, np.float32), a, b, np.float32)


def test_gemm_read_only_inputs():
    a = np.ones((1, 3, 4), np.float32)
    b = np.ones((1, 4, 5), np.float32)
    a.flags.writeable = False
    b.flags.writeable = False
    out = np.empty((1, 3, 5), np.float32)
    _core.gemm(out, a, b, 1)
    np.testing.assert_array_equal(out, 4.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_empty_shapes(dtype):
    # K == 0: the empty sum, out is zero-filled (overwriting whatever was there)
    out = np.full((2, 3, 4), np.nan, dtype)
    _core.gemm(out, np.empty((2, 3, 0), dtype), np.empty((2, 0, 4), dtype), 2)
    np.testing.assert_array_equal(out, 0.0)
    out = np.full((2, 3, 4), np.nan, dtype)
    _core.gemm_naive(out, np.empty((2, 3, 0), dtype), np.empty((2, 0, 4), dtype))
    np.testing.assert_array_equal(out, 0.0)
    # Bt, M or N == 0: nothing to do
    for a_shape, b_shape in [((0, 3, 4), (0, 4, 5)), ((2, 0, 4), (2, 4, 5)),
                             ((2, 3, 4), (2, 4, 0))]:
        out = np.empty((a_shape[0], a_shape[1], b_shape[2]), dtype)
        _core.gemm(out, np.ones(a_shape, dtype), np.ones(b_shape, dtype), 2)
        _core.gemm_naive(out, np.ones(a_shape, dtype), np.ones(b_shape, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_matches_naive(isa, dtype):
    rng = rng_for("naive", isa, dtype)
    a = rng.standard_normal((2, 23, 31)).astype(dtype)
    b = rng.standard_normal((2, 19, 31)).astype(dtype).transpose(0, 2, 1)  # (2, 31, 19) view
    fast = run_gemm(a, b, 2, dtype)
    slow = np.empty_like(fast)
    _core.gemm_naive(slow, a, b)
    assert_gemm_close(slow, a, b, dtype)
    np.testing.assert_allclose(fast, slow, rtol=100 * GEMM_RTOL[dtype], atol=1e-5
                               if dtype == np.float32 else 1e-12)


def test_gemm_exact_small_integers():
    """Integer-valued operands: every path must give the exact result."""
    a = np.arange(2 * 13 * 9, dtype=np.float32).reshape(2, 13, 9) % 7 - 3
    b = np.arange(2 * 9 * 35, dtype=np.float32).reshape(2, 9, 35) % 5 - 2
    out = np.empty((2, 13, 35), np.float32)
    for isa_name in backend_isa.isas("gemm"):
        backend_isa.set_isa("gemm", isa_name)
        try:
            _core.gemm(out, a, b, 2)
        finally:
            backend_isa.set_isa("gemm", "auto")
        np.testing.assert_array_equal(out, a @ b, err_msg=isa_name)


def test_gemm_nonfinite_propagates():
    a = np.ones((1, 4, 3), np.float64)
    b = np.ones((1, 3, 5), np.float64)
    a[0, 1, 2] = np.nan
    b[0, 0, 4] = np.inf
    out = np.empty((1, 4, 5))
    _core.gemm(out, a, b, 1)
    ref = a @ b
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    np.testing.assert_array_equal(out[np.isfinite(ref)], ref[np.isfinite(ref)])


@pytest.mark.parametrize("fn", [_core.gemm, _core.gemm_naive])
def test_gemm_errors(fn):
    args = (1,) if fn is _core.gemm else ()
    f32 = np.float32

    def call(out, a, b):
        fn(out, a, b, *args)

    with pytest.raises(ValueError, match=r"a \(2, 3, 4\) and b \(2, 5, 6\) are not aligned "
                                         r"\(4 != 5\)"):
        call(np.empty((2, 3, 6), f32), np.ones((2, 3, 4), f32), np.ones((2, 5, 6), f32))
    with pytest.raises(ValueError, match=r"out \(2, 3, 7\) should be \(2, 3, 6\)"):
        call(np.empty((2, 3, 7), f32), np.ones((2, 3, 4), f32), np.ones((2, 4, 6), f32))
    with pytest.raises(ValueError, match="batch"):
        call(np.empty((2, 3, 6), f32), np.ones((2, 3, 4), f32), np.ones((3, 4, 6), f32))
    with pytest.raises(ValueError, match="3-D"):
        call(np.empty((3, 6), f32), np.ones((3, 4), f32), np.ones((4, 6), f32))
    with pytest.raises(TypeError, match="out float32, a float64, b float32"):
        call(np.empty((1, 3, 6), f32), np.ones((1, 3, 4)), np.ones((1, 4, 6), f32))
    with pytest.raises(TypeError, match="float32 or float64"):
        call(np.empty((1, 3, 6), np.int64), np.ones((1, 3, 4), np.int64),
             np.ones((1, 4, 6), np.int64))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        call(np.empty((1, 3, 6), f32), [[[1.0]]], np.ones((1, 4, 6), f32))
    with pytest.raises(ValueError, match="C-contiguous"):
        call(np.empty((1, 6, 3), f32).transpose(0, 2, 1), np.ones((1, 3, 4), f32),
             np.ones((1, 4, 6), f32))
    ro = np.empty((1, 3, 6), f32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        call(ro, np.ones((1, 3, 4), f32), np.ones((1, 4, 6), f32))
    a = np.ones((1, 3, 3), f32)
    with pytest.raises(ValueError, match="overlaps"):
        call(a, a, np.ones((1, 3, 3), f32))


def run_gemm_bias(a, b, bias, n_threads, dtype):
    out = np.full((a.shape[0], a.shape[1], b.shape[2]), np.nan, dtype=dtype)
    _core.gemm(out, a, b, n_threads, bias=bias)
    return out


def assert_gemm_bias_close(out, a, b, bias, dtype, mul=None, add=None):
    """out == (a @ b + bias) * mul + add (bias None: 0, mul None: 1, add None: 0), the error
    scaled by (sum_k |a||b| + |bias|) |mul| + |add| (the rounding bound)."""
    bias64 = 0.0 if bias is None else bias.astype(np.float64)
    mul64 = 1.0 if mul is None else mul.astype(np.float64)
    add64 = 0.0 if add is None else add.astype(np.float64)
    ref = (oracle_gemm(a, b) + bias64) * mul64 + add64
    scale = (np.matmul(np.abs(a).astype(np.float64), np.abs(b).astype(np.float64))
             + np.abs(bias64)) * np.abs(mul64) + np.abs(add64) + 1e-30
    err = np.abs(out - ref) / scale
    if err.size:
        where = np.unravel_index(np.argmax(err), err.shape)
        assert err.max() <= GEMM_RTOL[dtype], (
            f"{np.dtype(dtype).name}: max scaled error {err.max():.3g} at {where} "
            f"(out {out[where]!r}, ref {ref[where]!r}, shape {out.shape})")


def run_gemm_mul(a, b, bias, mul, n_threads, dtype, add=None):
    out = np.full((a.shape[0], a.shape[1], b.shape[2]), np.nan, dtype=dtype)
    _core.gemm(out, a, b, n_threads, bias=bias, mul=mul, add=add)
    return out


@pytest.mark.parametrize("epilogue", ["bias", "mul", "add", "mul+add"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
def test_gemm_bias_tile_edges(isa, dtype, n_threads, epilogue):
    """Bias inside the GEMM: M, N around the micro-tile (the last NR panel's bias is padded),
    K = 0 (bias alone), 1, prime and > KC (bias only in the first K block); row-major and
    transposed operands (packed, direct_a and direct_b paths), half-height edge panels.
    The mul and add epilogues on each finished MR-row stripe (the last, partial one
    included; after the last K block only), with a bias for odd K and without for even."""
    mr, nr = TILES[isa][dtype]
    ms = sorted({1, mr // 2, mr - 1, mr, mr + 1, mr + mr // 2, mr + mr // 2 + 1, 2 * mr + 1})
    ns = sorted({1, nr - 1, nr, nr + 1, 2 * nr + 3})
    rng = rng_for("bias edges", isa, dtype, n_threads, epilogue)
    for m in ms:
        for n in ns:
            for k in (0, 1, 7, KC[dtype] + 1):
                if m * n * k > 30000 and (m, n) != (ms[-1], ns[-1]):
                    continue
                bias = rng.standard_normal(n).astype(dtype) * 4
                if epilogue != "bias" and k % 2 == 0:
                    bias = None
                mul = (rng.standard_normal((2, m, n)).astype(dtype) if "mul" in epilogue
                       else None)
                add = (rng.standard_normal((2, m, n)).astype(dtype) * 3 if "add" in epilogue
                       else None)
                a = rng.standard_normal((2, m, k)).astype(dtype)
                b = rng.standard_normal((2, k, n)).astype(dtype)
                b_t = rng.standard_normal((2, n, k)).astype(dtype).transpose(0, 2, 1)
                a_t = rng.standard_normal((2, k, m)).astype(dtype).transpose(0, 2, 1)
                for x, w in ((a, b), (a, b_t), (a_t, b)):
                    out = run_gemm_mul(x, w, bias, mul, n_threads, dtype, add)
                    assert_gemm_bias_close(out, x, w, bias, dtype, mul, add)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
def test_gemm_bias_blocks(isa, dtype, n_threads):
    """Bias across the MT, NC and KC blocks and split tasks; the GPT's Linear shapes."""
    rng = rng_for("bias blocks", isa, dtype, n_threads)
    shapes = [(MT_MAX[dtype] + 1, 5, 2 * KC[dtype] + 3), (13, NC_MAX[dtype] + 1, 29),
              (127, 509, 253), (3, 2 * NC_MAX[dtype] + 7, 11), (96, 384, 128), (96, 128, 512)]
    for m, n, k in shapes:
        a = rng.standard_normal((1, m, k)).astype(dtype)
        w = rng.standard_normal((1, n, k)).astype(dtype).transpose(0, 2, 1)   # x @ weight.T
        bias = rng.standard_normal(n).astype(dtype)
        assert_gemm_bias_close(run_gemm_bias(a, w, bias, n_threads, dtype), a, w, bias, dtype)


class _SubArray(np.ndarray):
    """An ndarray subclass: gemm's C fast path declines it, the checked path runs."""


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_bias_paths_agree(isa, dtype):
    """Fast path, checked path and gemm_naive give the same numbers; bias None == no bias."""
    rng = rng_for("bias paths", isa, dtype)
    a = rng.standard_normal((2, 23, 31)).astype(dtype)
    b = rng.standard_normal((2, 19, 31)).astype(dtype).transpose(0, 2, 1)   # (2, 31, 19)
    bias = rng.standard_normal(19).astype(dtype)
    fast = run_gemm_bias(a, b, bias, 2, dtype)
    checked = np.full_like(fast, np.nan)
    _core.gemm(checked.view(_SubArray), a.view(_SubArray), b, 2, bias=bias.view(_SubArray))
    np.testing.assert_array_equal(fast, checked)
    slow = np.empty_like(fast)
    _core.gemm_naive(slow, a, b, bias=bias)
    assert_gemm_bias_close(slow, a, b, bias, dtype)
    np.testing.assert_allclose(fast, slow, rtol=100 * GEMM_RTOL[dtype], atol=1e-5
                               if dtype == np.float32 else 1e-12)
    np.testing.assert_array_equal(run_gemm_bias(a, b, None, 2, dtype), run_gemm(a, b, 2, dtype))


def test_gemm_bias_exact_small_integers():
    """Integer-valued operands and bias: every ISA gives the exact result."""
    a = np.arange(2 * 13 * 9, dtype=np.float32).reshape(2, 13, 9) % 7 - 3
    b = np.arange(2 * 9 * 35, dtype=np.float32).reshape(2, 9, 35) % 5 - 2
    bias = np.arange(35, dtype=np.float32) - 17
    out = np.empty((2, 13, 35), np.float32)
    for isa_name in backend_isa.isas("gemm"):
        backend_isa.set_isa("gemm", isa_name)
        try:
            _core.gemm(out, a, b, 2, bias=bias)
        finally:
            backend_isa.set_isa("gemm", "auto")
        np.testing.assert_array_equal(out, a @ b + bias, err_msg=isa_name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_bias_empty_shapes(dtype):
    bias = np.arange(4, dtype=dtype)
    for fn in (_core.gemm, _core.gemm_naive):       # K == 0: every row is the bias
        out = np.full((2, 3, 4), np.nan, dtype)
        fn(out, np.empty((2, 3, 0), dtype), np.empty((2, 0, 4), dtype), bias=bias)
        np.testing.assert_array_equal(out, np.broadcast_to(bias, (2, 3, 4)))
    out = np.empty((2, 0, 4), dtype)                # no rows: nothing to do
    _core.gemm(out, np.ones((2, 0, 5), dtype), np.ones((2, 5, 4), dtype), bias=bias)
    out = np.empty((1, 3, 0), dtype)                # N == 0: an empty bias
    _core.gemm(out, np.ones((1, 3, 5), dtype), np.ones((1, 5, 0), dtype),
               bias=np.empty(0, dtype))


@pytest.mark.parametrize("fn", [_core.gemm, _core.gemm_naive])
def test_gemm_bias_errors(fn):
    f32 = np.float32
    out = np.empty((1, 3, 6), f32)
    a = np.ones((1, 3, 4), f32)
    b = np.ones((1, 4, 6), f32)

    def call(bias, out=out):
        fn(out, a, b, bias=bias)

    with pytest.raises(ValueError, match=r"bias \(5,\) should be \(6,\) for out \(1, 3, 6\)"):
        call(np.ones(5, f32))
    with pytest.raises(ValueError, match=r"bias \(1, 6\) should be \(6,\)"):
        call(np.ones((1, 6), f32))
    with pytest.raises(TypeError, match="bias dtype float64 differs from out's float32"):
        call(np.ones(6))
    with pytest.raises(TypeError, match="bias must be a numpy.ndarray or None, got list"):
        call([1.0] * 6)
    with pytest.raises(ValueError, match=r"bias \(6,\) must be C-contiguous"):
        call(np.ones(12, f32)[::2])
    big = np.zeros((1, 4, 6), f32)                  # bias inside out: would be overwritten
    with pytest.raises(ValueError, match="bias .* overlaps out"):
        fn(big[:, :3], a, b, bias=big[0, 2])
    with pytest.raises(ValueError, match="overlaps out"):
        call(out[0, 0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
def test_gemm_mul_blocks(isa, dtype, n_threads):
    """mul across the MT, NC and KC blocks and split tasks; the GPT MLP's dx product."""
    rng = rng_for("mul blocks", isa, dtype, n_threads)
    shapes = [(MT_MAX[dtype] + 1, 5, 2 * KC[dtype] + 3), (13, NC_MAX[dtype] + 1, 29),
              (127, 509, 253), (3, 2 * NC_MAX[dtype] + 7, 11), (96, 512, 128)]
    for m, n, k in shapes:
        a = rng.standard_normal((1, m, k)).astype(dtype)
        w = rng.standard_normal((1, k, n)).astype(dtype)          # dout @ weight
        mul = rng.standard_normal((1, m, n)).astype(dtype)
        assert_gemm_bias_close(run_gemm_mul(a, w, None, mul, n_threads, dtype), a, w, None,
                               dtype, mul)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_mul_paths_agree(isa, dtype):
    """Fast and checked paths give the same numbers (mul, add); mul of ones == no mul;
    K == 0."""
    rng = rng_for("mul paths", isa, dtype)
    a = rng.standard_normal((2, 23, 31)).astype(dtype)
    b = rng.standard_normal((2, 19, 31)).astype(dtype).transpose(0, 2, 1)   # (2, 31, 19)
    bias = rng.standard_normal(19).astype(dtype)
    mul = rng.standard_normal((2, 23, 19)).astype(dtype)
    add = rng.standard_normal((2, 23, 19)).astype(dtype)
    fast = run_gemm_mul(a, b, bias, mul, 2, dtype, add)
    checked = np.full_like(fast, np.nan)
    _core.gemm(checked.view(_SubArray), a.view(_SubArray), b, 2, bias=bias,
               mul=mul.view(_SubArray), add=add.view(_SubArray))
    np.testing.assert_array_equal(fast, checked)
    np.testing.assert_array_equal(run_gemm_mul(a, b, bias, np.ones_like(mul), 2, dtype),
                                  run_gemm_bias(a, b, bias, 2, dtype))
    out = np.full((2, 3, 4), np.nan, dtype)                  # K == 0: bias times mul
    mul0 = rng.standard_normal((2, 3, 4)).astype(dtype)
    _core.gemm(out, np.empty((2, 3, 0), dtype), np.empty((2, 0, 4), dtype), bias=bias[:4],
               mul=mul0)
    np.testing.assert_array_equal(out, bias[:4] * mul0)


def test_gemm_mul_errors():
    f32 = np.float32
    out = np.empty((1, 3, 6), f32)
    a = np.ones((1, 3, 4), f32)
    b = np.ones((1, 4, 6), f32)

    def call(mul, out=out):
        _core.gemm(out, a, b, mul=mul)

    with pytest.raises(ValueError, match=r"mul \(1, 3, 5\) should be \(1, 3, 6\) for out "
                                         r"\(1, 3, 6\)"):
        call(np.ones((1, 3, 5), f32))
    with pytest.raises(TypeError, match="mul dtype float64 differs from out's float32"):
        call(np.ones((1, 3, 6)))
    with pytest.raises(TypeError, match="mul must be a numpy.ndarray or None, got list"):
        call([[1.0] * 6] * 3)
    with pytest.raises(ValueError, match="must be C-contiguous"):
        call(np.ones((1, 6, 3), f32).transpose(0, 2, 1))
    with pytest.raises(ValueError, match="overlaps out"):
        call(out)
    with pytest.raises(ValueError, match=r"add \(1, 3, 5\) should be \(1, 3, 6\)"):
        _core.gemm(out, a, b, add=np.ones((1, 3, 5), f32))
    with pytest.raises(ValueError, match="add .* overlaps out"):
        _core.gemm(out, a, b, add=out)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("n_threads", THREADS)
def test_gemm_gelu_epilogue_tile_edges(isa, n_threads, approximate):
    """gelu on each finished stripe (float32): the same bits as the GEMM, then gelu_fwd;
    M, N around the micro-tile, K = 0 (gelu of the bias), 1, prime, > KC; the three layouts;
    blocks of MT and NC."""
    from tinygradattn import _elementwise
    mr, nr = TILES[isa][np.float32]
    ms = sorted({1, mr // 2, mr - 1, mr, mr + 1, mr + mr // 2 + 1, 2 * mr + 1})
    ns = sorted({1, nr - 1, nr, nr + 1, 2 * nr + 3})
    rng = rng_for("gelu edges", isa, n_threads, approximate)
    f32 = np.float32
    cases = [(m, n, k) for m in ms for n in ns for k in (0, 1, 7, KC[f32] + 1)
             if m * n * k <= 30000] + [(MT_MAX[f32] + 1, 5, 3), (13, NC_MAX[f32] + 1, 29)]
    for m, n, k in cases:
        bias = rng.standard_normal(n).astype(f32) if k % 2 else None
        a = rng.standard_normal((2, m, k)).astype(f32)
        b = rng.standard_normal((2, k, n)).astype(f32)
        b_t = rng.standard_normal((2, n, k)).astype(f32).transpose(0, 2, 1)
        a_t = rng.standard_normal((2, k, m)).astype(f32).transpose(0, 2, 1)
        for x, w in ((a, b), (a, b_t), (a_t, b)):
            h = run_gemm_bias(x, w, bias if bias is not None else np.zeros(n, f32),
                              n_threads, f32)
            want_y, want_g = np.empty_like(h), np.empty_like(h)
            _elementwise.gelu_fwd(want_y.reshape(-1), h.reshape(-1), approximate == "tanh", 1,
                            want_g.reshape(-1))
            y, g = np.full_like(h, np.nan), np.full_like(h, np.nan)
            _core.gemm(y, x, w, n_threads, bias=bias, gelu=approximate, grad=g)
            np.testing.assert_array_equal(y, want_y, err_msg=f"gelu(out) {(m, n, k)}")
            np.testing.assert_array_equal(g, want_g, err_msg=f"gelu'(out) {(m, n, k)}")


def test_gemm_gelu_epilogue_errors():
    f32 = np.float32
    out, grad = np.empty((1, 3, 6), f32), np.empty((1, 3, 6), f32)
    a, b = np.ones((1, 3, 4), f32), np.ones((1, 4, 6), f32)
    with pytest.raises(ValueError, match="gelu must be None, 'none' or 'tanh', got 'erf'"):
        _core.gemm(out, a, b, gelu="erf", grad=grad)
    with pytest.raises(TypeError, match="gelu epilogue is float32 only, got float64"):
        _core.gemm(out.astype(np.float64), a.astype(np.float64), b.astype(np.float64),
                   gelu="none", grad=grad.astype(np.float64))
    with pytest.raises(ValueError, match="gelu needs grad"):
        _core.gemm(out, a, b, gelu="none")
    with pytest.raises(ValueError, match="pass mul / add or gelu, not both"):
        _core.gemm(out, a, b, gelu="none", grad=grad, mul=np.ones_like(out))
    with pytest.raises(ValueError, match=r"grad \(1, 3, 5\) should be \(1, 3, 6\)"):
        _core.gemm(out, a, b, gelu="tanh", grad=np.empty((1, 3, 5), f32))
    with pytest.raises(ValueError, match="grad .* overlaps out"):
        _core.gemm(out, a, b, gelu="tanh", grad=out)
    big = np.ones((1, 3, 8), f32)
    with pytest.raises(ValueError, match="grad .* overlaps a"):
        _core.gemm(out, big[:, :, :4], b, gelu="tanh",
                   grad=big.reshape(-1)[:18].reshape(1, 3, 6))


COLSUM_SHAPES = [(1, 1), (1, 7), (7, 1), (63, 5), (64, 64), (65, 65), (129, 130), (200, 3),
                 (300, 257)]


def assert_colsum_close(got, x, dtype):
    """got == x.sum(0), the error scaled by sum_i |x| (float32: two-level sums, ~100 ulps)."""
    ref = x.astype(np.float64).sum(axis=0)
    scale = np.abs(x).astype(np.float64).sum(axis=0) + 1e-30
    err = np.abs(got - ref) / scale
    limit = 1e-5 if dtype == np.float32 else 1e-13
    assert err.max(initial=0.0) <= limit, (
        f"{np.dtype(dtype).name}: max scaled error {err.max():.3g} at {err.argmax()}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", COLSUM_SHAPES)
def test_column_sum(dtype, shape):
    """Matches the float64 sum; bit-identical for 1, 2 and 3 threads (fixed row chunks)."""
    x = rng_for("colsum", dtype, shape).standard_normal(shape).astype(dtype) * 10
    outs = []
    for n_threads in (1, 2, 3):
        out = np.full(shape[1], np.nan, dtype)
        _core.column_sum(out, x, n_threads)
        assert_colsum_close(out, x, dtype)
        outs.append(out)
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_column_sum_empty_and_nonfinite(dtype):
    out = np.full(5, np.nan, dtype)
    _core.column_sum(out, np.empty((0, 5), dtype), 2)          # no rows: zeros, as np.sum
    np.testing.assert_array_equal(out, 0.0)
    _core.column_sum(np.empty(0, dtype), np.empty((4, 0), dtype), 2)
    x = np.ones((130, 3), dtype)
    x[5, 0] = np.nan
    x[100, 1] = np.inf
    out = np.empty(3, dtype)
    _core.column_sum(out, x, 2)
    assert np.isnan(out[0]) and out[1] == np.inf and out[2] == 130


def test_column_sum_errors():
    f32 = np.float32
    with pytest.raises(ValueError, match=r"out \(4,\) should be \(3,\) for x \(5, 3\)"):
        _core.column_sum(np.empty(4, f32), np.ones((5, 3), f32))
    with pytest.raises(ValueError, match="x must be 2-D"):
        _core.column_sum(np.empty(3, f32), np.ones(3, f32))
    with pytest.raises(ValueError, match=r"x \(3, 5\) must be C-contiguous"):
        _core.column_sum(np.empty(5, f32), np.ones((5, 3), f32).T)
    with pytest.raises(TypeError, match="out float64, x float32"):
        _core.column_sum(np.empty(3), np.ones((5, 3), f32))
    x = np.ones((5, 3), f32)
    with pytest.raises(ValueError, match="overlaps"):
        _core.column_sum(x[0], x)
