"""torch's module names and the device / precision / process switches CPU scripts touch
(issue 15): each answers truthfully or raises a clear error, never silently differs."""
import pickle
import warnings

import pytest

import tinygradattn as tga


def test_device_objects():
    d = tga.device("cuda", 0)
    assert (d.type, d.index, str(d), repr(d)) == ("cuda", 0, "cuda:0",
                                                 "device(type='cuda', index=0)")
    assert tga.device("cuda:1").index == 1 and tga.device("cpu").index is None
    assert tga.device(d) is d and pickle.loads(pickle.dumps(d)) == d
    t = tga.zeros(2)
    assert t.device == "cpu" and t.device.type == "cpu" and repr(t.device) == "device(type='cpu')"
    assert tga.zeros(2, device=tga.device("cpu")).device == "cpu"
    assert t.to(tga.device("cpu")) is t
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda"):
        tga.device("tpu")
    with pytest.raises(RuntimeError, match="Invalid device string"):
        tga.device("cuda:x")
    with pytest.raises(RuntimeError, match="must not include an index"):
        tga.device("cuda:0", 1)
    with pytest.raises(TypeError):
        tga.device(3)


@pytest.mark.parametrize("name", ["float16", "bfloat16", "half", "int32", "int16", "int8",
                                  "uint8"])
def test_unsupported_dtypes_are_named_and_refused(name):
    dtype = getattr(tga, name)
    assert dtype == dtype and dtype != tga.float32
    with pytest.raises(TypeError, match=f"no {dtype.name} tensors"):
        tga.zeros(2, dtype=dtype)
    with pytest.raises(TypeError, match=f"no {dtype.name} tensors"):
        tga.ones(2).to(dtype)
    assert {tga.float32: "a", tga.bfloat16: "b", tga.float16: "c"}[tga.bfloat16] == "b"


def test_grad_modes():
    x = tga.ones(2, requires_grad=True)
    with tga.inference_mode():
        assert not tga.is_grad_enabled() and not (x * 2).requires_grad
    with tga.inference_mode(False):
        assert (x * 2).requires_grad
    assert tga.is_grad_enabled()

    @tga.inference_mode()
    def f(a):
        return a * 2

    @tga.no_grad                       # bare, as torch allows
    def g(a):
        return a * 2

    @tga.inference_mode
    def h(a):
        return a * 2
    assert not f(x).requires_grad and not g(x).requires_grad and not h(x).requires_grad
    tga.set_grad_enabled(False)
    assert not tga.is_grad_enabled()
    tga.set_grad_enabled(True)
    with tga.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert tga.is_grad_enabled()
    with tga.no_grad(), tga.set_grad_enabled(True):
        assert (x * 2).requires_grad
    with pytest.raises(TypeError, match="must be bool"):
        tga.set_grad_enabled(1)


def test_compile_is_the_identity():
    m = tga.nn.Linear(2, 3)
    assert tga.compile(m) is m and tga.compile(m, mode="max-autotune") is m

    @tga.compile(fullgraph=True)
    def f(a):
        return a + 1
    assert f(tga.ones(1)).item() == 2.0
    with pytest.raises(TypeError, match="mode"):
        tga.compile(m, mode=3)


def test_backends_flags_are_settable_and_checked():
    b = tga.backends
    assert b.cuda.matmul.allow_tf32 is False
    b.cuda.matmul.allow_tf32 = True
    try:
        assert b.cuda.matmul.allow_tf32 is True
        with pytest.raises(TypeError, match="must be a bool"):
            b.cuda.matmul.allow_tf32 = "yes"
        with pytest.raises(AttributeError, match="no setting 'allow_tf33'"):
            b.cuda.matmul.allow_tf33 = True
    finally:
        b.cuda.matmul.allow_tf32 = False
    b.cudnn.allow_tf32 = True
    assert b.cudnn.is_available() is False and b.mps.is_available() is False


def test_autocast_float32_and_disabled_are_no_ops():
    x = tga.ones(2, 3)
    w = tga.ones(4, 3)
    plain = (x @ w.T).tolist()
    for ctx in (tga.amp.autocast("cpu", dtype=tga.float32), tga.autocast("cuda", enabled=False),
                tga.amp.autocast("cpu", dtype=tga.bfloat16, enabled=False)):
        with ctx:
            y = x @ w.T
        assert y.dtype == tga.float32 and y.tolist() == plain
    for kwargs in ({}, {"dtype": tga.float16}, {"dtype": tga.bfloat16}):
        with pytest.raises(NotImplementedError, match="no (bfloat16|float16) kernels"):
            tga.amp.autocast("cpu", **kwargs)
    with pytest.raises(RuntimeError, match="unsupported autocast device_type 'xla'"):
        tga.autocast("xla")


def test_grad_scaler_disabled_is_exactly_the_optimizer():
    lin = tga.nn.Linear(3, 1)
    ref = tga.nn.Linear(3, 1)
    ref.load_state_dict(lin.state_dict())
    opts = [tga.optim.SGD(m.parameters(), lr=0.1) for m in (lin, ref)]
    x = tga.ones(2, 3)
    for scaler_cls in (tga.amp.GradScaler, tga.cuda.amp.GradScaler):
        scaler = scaler_cls(enabled=False)
        scaler.scale(lin(x).sum()).backward()
        scaler.unscale_(opts[0])
        scaler.step(opts[0])
        scaler.update()
        ref(x).sum().backward()
        opts[1].step()
        assert lin.weight.tolist() == ref.weight.tolist()
        assert scaler.get_scale() == 1.0 and not scaler.is_enabled()
        assert scaler.state_dict() == {}


def test_grad_scaler_enabled():
    with pytest.raises(NotImplementedError, match="enabled=False"):
        tga.amp.GradScaler("cpu")
    if not tga.cuda.is_available():
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            scaler = tga.cuda.amp.GradScaler()
        assert not scaler.is_enabled() and "CUDA is not available" in str(w[0].message)


def test_distributed_in_one_process():
    from tinygradattn.nn.parallel import DistributedDataParallel
    dist = tga.distributed
    assert dist.is_initialized() is False        # is_available(): whether mpi4py is there
    with pytest.raises(ValueError, match="over MPI"):
        dist.init_process_group(backend="nccl")
    with pytest.raises(RuntimeError, match="not been initialized"):
        dist.get_rank()
    with pytest.raises(RuntimeError, match="not been initialized"):
        DistributedDataParallel(tga.nn.Linear(2, 2), device_ids=[0])
    m = tga.nn.Linear(2, 2)
    dp = tga.nn.parallel.DataParallel(m)
    x = tga.ones(1, 2)
    assert dp.module is m and dp(x).tolist() == m(x).tolist()


def test_cuda_functions_cpu_scripts_call():
    assert tga.cuda.is_bf16_supported() is False
    tga.cuda.manual_seed_all(3)             # no error with or without a device
    tga.cuda.manual_seed(3)
    with pytest.raises(ValueError, match="cuda:0"):
        tga.cuda.set_device(1)


def test_pin_memory_is_a_no_op_on_cpu():
    t = tga.arange(3)
    assert t.pin_memory() is t and t.is_pinned() is False


def test_checkpoint_like_training_scripts_write(tmp_path):
    """nanoGPT's checkpoint: state dicts, numbers, strings, a 0-d tensor from a reduction
    (held as a numpy scalar inside), config dicts; back exactly."""
    model = tga.nn.Linear(3, 2)
    opt = tga.optim.AdamW(model.parameters(), lr=1e-3)
    model(tga.ones(4, 3)).sum().backward()
    opt.step()
    losses = tga.zeros(3)
    losses[1] = 2.5
    ckpt = {"model": model.state_dict(), "optimizer": opt.state_dict(),
            "model_args": {"n_layer": 4, "bias": False, "dropout": 0.0},
            "iter_num": 2000, "best_val_loss": losses.mean(),
            "config": {"out_dir": "out", "lr": 1e-3, "min_lr": 6e-5, "beta2": 0.99,
                       "big": 10 ** 12, "wandb": None, "tiny": 5e-324}}
    path = tmp_path / "ckpt.pt"
    tga.save(ckpt, path)
    back = tga.load(path, map_location=tga.device("cpu"))
    assert back["iter_num"] == 2000 and back["model_args"] == ckpt["model_args"]
    assert back["config"] == ckpt["config"]
    assert back["best_val_loss"].shape == () and back["best_val_loss"].item() == \
        ckpt["best_val_loss"].item()
    for k, v in ckpt["model"].items():
        assert back["model"][k].tolist() == v.tolist()
    st = back["optimizer"]["state"][0]
    assert st["exp_avg"].tolist() == ckpt["optimizer"]["state"][0]["exp_avg"].tolist()
    assert back["optimizer"]["param_groups"] == ckpt["optimizer"]["param_groups"]


@pytest.mark.parametrize("name", ["float32", "float64", "float16", "bfloat16"])
def test_finfo_matches_torch(name):
    torch = pytest.importorskip("torch", reason="PyTorch is the reference")
    ours, theirs = tga.finfo(getattr(tga, name)), torch.finfo(getattr(torch, name))
    for field in ("bits", "eps", "max", "min", "tiny", "resolution"):
        assert getattr(ours, field) == getattr(theirs, field), field
    with pytest.raises(TypeError, match="floating point"):
        tga.finfo(tga.int64)


def test_iinfo_and_process_settings():
    assert (tga.iinfo(tga.int64).max, tga.iinfo(tga.int64).min) == (2 ** 63 - 1, -2 ** 63)
    with pytest.raises(TypeError, match="integer"):
        tga.iinfo(tga.float32)
    assert tga.get_default_dtype() is tga.float32
    tga.set_default_dtype(tga.float32)
    with pytest.raises(NotImplementedError, match="cannot be changed"):
        tga.set_default_dtype(tga.float64)
    tga.set_float32_matmul_precision("high")
    assert tga.get_float32_matmul_precision() == "high"
    tga.set_float32_matmul_precision("highest")
    with pytest.raises(RuntimeError, match="Invalid float32 matmul precision"):
        tga.set_float32_matmul_precision("low")
    tga.use_deterministic_algorithms(True)
    assert tga.are_deterministic_algorithms_enabled()
    tga.use_deterministic_algorithms(False)
    x = tga.ones(2, 3)
    assert tga.is_tensor(x) and not tga.is_tensor([1]) and tga.numel(x) == 6
    assert tga.is_floating_point(x) and not tga.is_floating_point(tga.arange(2))
