"""The cuda device as a user meets it: moving tensors and modules, errors, the allocator,
host copies, save / load; and the elementwise kernels against numpy on odd shapes and views.
Runs on numba's CUDA simulator (tests/conftest.py) or a GPU (TGA_TEST_REAL_GPU=1)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn.backend import get_backend

pytestmark = pytest.mark.usefixtures("cuda_device")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(code, **env):
    """code in a fresh interpreter with env changed (value None: unset); (rc, out + err)."""
    full = dict(os.environ)
    for k, v in env.items():
        if v is None:
            full.pop(k, None)
        else:
            full[k] = v
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full,
                       cwd=ROOT, timeout=300)
    return p.returncode, p.stdout + p.stderr


# ---- moving data -------------------------------------------------------------------------
def test_to_cuda_and_back_keeps_values_and_dtype():
    for dtype in (tga.float32, tga.float64, tga.int64, tga.bool):
        x = tga.tensor([[1, 0, 3], [4, 5, 0]]).to(dtype)
        y = x.cuda()
        assert y.device == "cuda" and y.dtype == dtype and y.shape == (2, 3)
        np.testing.assert_array_equal(y.cpu().numpy(), x.numpy())
        assert y.to("cuda") is y and x.to("cpu") is x


def test_gradient_flows_back_across_devices():
    x = tga.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = (x.to("cuda") * x.cuda()).sum().cpu()          # two copies of x, each differentiable
    y.backward()
    assert x.grad.device == "cpu"
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.detach().numpy())


def test_cuda_leaf_gets_a_cuda_grad():
    w = tga.randn(3, 4, device="cuda", requires_grad=True)
    (w * w).sum().backward()
    assert w.grad.device == "cuda"
    np.testing.assert_allclose(w.grad.cpu().numpy(), 2 * w.detach().cpu().numpy(), rtol=1e-6)


def test_module_to_cuda_moves_parameters_in_place():
    lin = tga.nn.Linear(3, 2)
    w = lin.weight
    assert lin.to("cuda") is lin and lin.weight is w and w.device == "cuda"
    assert all(p.device == "cuda" for p in lin.parameters())
    out = lin(tga.ones(5, 3, device="cuda"))
    assert out.device == "cuda" and out.shape == (5, 2)


def test_mixing_devices_names_the_op_and_both_devices():
    a, b = tga.ones(3), tga.ones(3, device="cuda")
    with pytest.raises(RuntimeError, match=r"Add: expected all tensors on the same device, "
                                           r"found cpu and cuda"):
        a + b
    with pytest.raises(RuntimeError, match="gradient on device cpu"):
        b.requires_grad_().sum().backward(tga.tensor(1.0))


def test_a_0d_cpu_tensor_joins_a_cuda_op_as_in_torch():
    x = tga.tensor([1.0, 5.0], device="cuda")
    y = tga.maximum(x, tga.tensor(2.0))
    assert y.device == "cuda" and y.tolist() == [2.0, 5.0]


def test_save_and_load_with_map_location(tmp_path):
    path = tmp_path / "t.safetensors"
    tga.save({"w": tga.arange(6.0).reshape(2, 3).cuda(), "c": tga.ones(2)}, path)
    back = tga.load(path)
    assert back["w"].device == "cuda" and back["c"].device == "cpu"     # where they were
    on_cpu = tga.load(path, map_location="cpu")
    assert on_cpu["w"].device == "cpu"
    np.testing.assert_array_equal(on_cpu["w"].numpy(), np.arange(6.0).reshape(2, 3))
    assert tga.load(path, map_location="cuda")["c"].device == "cuda"
    with pytest.raises(TypeError, match="map_location"):
        tga.load(path, map_location=3)


# ---- data stays on the device -------------------------------------------------------------
def test_ops_make_no_host_copies_until_asked():
    x = tga.randn(4, 5, device="cuda", requires_grad=True)
    before = tga.cuda.copy_stats()
    y = ((x * 2.5 + 1).exp() / 3 - x.maximum(0.0)).tanh()
    y.backward(tga.ones(4, 5, device="cuda"))
    assert tga.cuda.copy_stats() == before
    y.detach().numpy()
    after = tga.cuda.copy_stats()
    assert after["device_to_host"] == before["device_to_host"] + 1
    assert after["host_to_device"] == before["host_to_device"]


def test_implicit_numpy_conversion_is_refused():
    x = tga.ones(3, device="cuda")
    with pytest.raises(TypeError, match="implicitly"):
        np.asarray(x._data)


def test_the_allocator_reuses_blocks_in_a_steady_loop():
    x = tga.randn(33, 17, device="cuda")
    for _ in range(2):                       # warm-up: every bucket the loop needs exists
        ((x * 2).exp() + x).numpy()
    stats = tga.cuda.memory_stats()
    for _ in range(3):
        ((x * 2).exp() + x).numpy()
    after = tga.cuda.memory_stats()
    assert after["device_allocs"] == stats["device_allocs"]
    assert after["cache_hits"] > stats["cache_hits"]
    tga.cuda.empty_cache()
    assert tga.cuda.memory_stats()["held_bytes"] <= after["held_bytes"]


def test_allocator_buckets():
    from tinygradattn.cuda.allocator import bucket_elements
    assert bucket_elements(1, 4) == 128                 # 512 bytes at least
    assert bucket_elements(1000, 4) == 1024
    big = bucket_elements(3_000_001, 4)
    assert 3_000_001 <= big <= 3_000_001 * 1.125


# ---- errors --------------------------------------------------------------------------------
def test_no_gpu_and_no_simulator_gives_one_clear_error():
    code = ("import tinygradattn as tga\n"
            "try:\n    tga.zeros(2, device='cuda')\n"
            "except RuntimeError as e:\n    print('ERR', e)\n"
            "print('avail', tga.cuda.is_available(), tga.cuda.device_count())")
    rc, out = _run(code, NUMBA_ENABLE_CUDASIM=None)
    if "ERR" not in out:
        pytest.skip("this machine has a usable GPU")
    assert rc == 0 and "Traceback" not in out, out
    assert "device 'cuda' is not available" in out and "pip install" in out
    assert "avail False 0" in out


def test_cli_reports_a_missing_cuda_in_one_line_with_exit_code_2(tmp_path):
    p = subprocess.run([sys.executable, "-m", "tinygradattn", "train", "--task", "moons",
                        "--device", "cuda", "--steps", "1", "--out", str(tmp_path)],
                       capture_output=True, text=True, cwd=ROOT, timeout=300,
                       env={k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"})
    if p.returncode == 0:
        pytest.skip("this machine has a usable GPU")
    assert p.returncode == 2, p.stdout + p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--device cuda" in lines[0] and "Traceback" not in p.stderr


def test_import_does_not_load_numba():
    rc, out = _run("import sys, tinygradattn as tga\n"
                   "tga.cuda.is_available if True else None\n"
                   "print('numba' in sys.modules)")
    assert rc == 0 and out.strip() == "False", out


# ---- the elementwise kernels against numpy -------------------------------------------------
SHAPES = [(), (1,), (7,), (3, 5), (2, 3, 4), (0, 3)]


def _cuda(a):
    return get_backend("cuda").from_host(a)


def _host(a):
    return get_backend("cuda").to_host(a)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("op", ["neg", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs",
                                "sign", "erf"])
def test_unary_matches_numpy(op, shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    if op in ("log", "sqrt"):
        x = np.abs(x) + 0.1
    cuda, cpu = get_backend("cuda"), get_backend("cpu")
    np.testing.assert_allclose(_host(getattr(cuda, op)(_cuda(x))), getattr(cpu, op)(x),
                               rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("sa,sb", [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 1, 5), (3, 1)),
                                   ((), (2, 3)), ((4,), ())])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "minimum", "pow", "lt",
                                "eq"])
def test_binary_broadcasts_like_numpy(op, sa, sb):
    rng = np.random.default_rng(1)
    a = rng.uniform(0.5, 2, sa).astype(np.float32)
    b = rng.uniform(0.5, 2, sb).astype(np.float32)
    cuda, cpu = get_backend("cuda"), get_backend("cpu")
    got = _host(getattr(cuda, op)(_cuda(a), _cuda(b)))
    want = getattr(cpu, op)(a, b)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=2e-6)


def test_strided_views_are_read_in_place():
    cuda = get_backend("cuda")
    a = np.arange(60, dtype=np.float64).reshape(3, 4, 5)
    x = cuda.from_host(a)
    t = cuda.permute(x, (2, 0, 1))                              # a view: no copy
    assert t.block is x.block
    s = cuda.getitem(x, (slice(None), slice(1, None, 2), 3))
    np.testing.assert_array_equal(_host(cuda.add(t, 1.0)), a.transpose(2, 0, 1) + 1)
    np.testing.assert_array_equal(_host(cuda.mul(s, s)), a[:, 1::2, 3] ** 2)
    np.testing.assert_array_equal(_host(cuda.reshape(t, (5, 12))),
                                  a.transpose(2, 0, 1).reshape(5, 12))
    np.testing.assert_array_equal(_host(cuda.broadcast_to(cuda.getitem(x, (0, 0)), (2, 5))),
                                  np.broadcast_to(a[0, 0], (2, 5)))


def test_assign_into_a_view_and_casts():
    cuda = get_backend("cuda")
    a = np.zeros((4, 6), dtype=np.float32)
    x = cuda.from_host(a)
    cuda.assign(cuda.getitem(x, (slice(None), slice(1, 5, 2))), cuda.from_host(np.ones(2)))
    a[:, 1:5:2] = 1
    np.testing.assert_array_equal(_host(x), a)
    np.testing.assert_array_equal(_host(cuda.astype(x, np.bool_)), a.astype(bool))
    np.testing.assert_array_equal(_host(cuda.astype(cuda.from_host(np.array([1.7, -2.5])),
                                                    np.int64)), [1, -2])
    np.testing.assert_array_equal(_host(cuda.arange(2, 11, 3, np.float32)),
                                  np.arange(2, 11, 3, dtype=np.float32))


def test_accumulate_writes_in_place_only_when_nothing_else_sees_the_array():
    cuda = get_backend("cuda")
    a = cuda.from_host(np.ones(5, dtype=np.float32))
    b = cuda.from_host(np.full(5, 2.0, dtype=np.float32))
    kept = a                                        # a second reference: must stay unchanged
    out = cuda.accumulate([a], b)
    assert out.block is not kept.block
    np.testing.assert_array_equal(_host(kept), np.ones(5))
    view = cuda.getitem(kept, (slice(0, 3),))       # a view shares the block: no in place
    del a
    out = cuda.accumulate([kept], b)
    assert out.block is not view.block
    box = [cuda.from_host(np.ones(5, dtype=np.float32))]
    buf = box[0].block.buf                          # (holding the block would count)
    out = cuda.accumulate(box, b)                   # the only reference: written in place
    assert out.block.buf is buf
    np.testing.assert_array_equal(_host(out), np.full(5, 3.0))
