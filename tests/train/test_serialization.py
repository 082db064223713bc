"""tga.save / tga.load: safetensors round trips, interop (safetensors.numpy, torch), rich
objects, atomic writes (an error mid-write, a killed writer), and errors naming the file."""
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn import optim, serialization

pytest.importorskip("safetensors", reason="tga.save / tga.load need safetensors")


def _state_dict():
    rng = np.random.default_rng(0)
    return {"wte.weight": tga.tensor(rng.standard_normal((5, 3)).astype(np.float32)),
            "ln.bias": tga.tensor(rng.standard_normal(3)),                      # float64
            "pos": tga.arange(4),                                               # int64
            "mask": tga.tensor([True, False]),
            "scalar": tga.tensor(2.5)}


def _assert_same(a, b):
    assert a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape)
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_state_dict_round_trip(tmp_path):
    sd = _state_dict()
    path = tmp_path / "model.safetensors"
    tga.save(sd, path)
    back = tga.load(str(path))
    assert list(back) == list(sd)                       # the saved order, exact keys
    for k in sd:
        _assert_same(back[k], sd[k])
    back["wte.weight"][0, 0] = 7.0                      # loaded tensors are writable copies
    assert sd["wte.weight"][0, 0].item() != 7.0


def test_readable_by_safetensors_numpy(tmp_path):
    from safetensors.numpy import load_file
    sd = _state_dict()
    tga.save(sd, tmp_path / "m.safetensors")
    arrays = load_file(str(tmp_path / "m.safetensors"))
    assert set(arrays) == set(sd)
    for k, v in sd.items():
        assert arrays[k].dtype == v.numpy().dtype
        np.testing.assert_array_equal(arrays[k], v.numpy())


def test_readable_by_torch_and_back(tmp_path):
    torch = pytest.importorskip("torch", reason="interop test needs PyTorch")
    from safetensors.torch import load_file, save_file
    sd = _state_dict()
    tga.save(sd, tmp_path / "m.safetensors")
    tensors = load_file(str(tmp_path / "m.safetensors"))
    assert tensors["pos"].dtype == torch.int64 and tensors["ln.bias"].dtype == torch.float64
    for k, v in sd.items():
        np.testing.assert_array_equal(tensors[k].numpy(), v.numpy())
    # and a file written by torch loads here, as a dict of tga tensors
    save_file({"w": torch.ones(2, 2), "i": torch.arange(3)}, str(tmp_path / "t.safetensors"))
    back = tga.load(tmp_path / "t.safetensors")
    assert back["w"].dtype == tga.float32 and back["i"].tolist() == [0, 1, 2]


def test_rich_object_round_trip(tmp_path):
    w = tga.randn(3, 2, requires_grad=True)
    opt = optim.AdamW([w], lr=0.01)
    (w * w).sum().backward()
    opt.step()
    obj = {"model": {"w": w}, "optimizer": opt.state_dict(),
           "config": {"n_layer": 2, "name": "gpt", "dropout": 0.1, "bias": True, "none": None,
                      "shape": (3, 2), "nested": [1, [2.5, "x"]]},
           "step": 10, "__odd_key__": 1, "tuple_keys": {(1, "a"): "v"}, "losses": [1.5, 2.0]}
    path = tmp_path / "ckpt.safetensors"
    tga.save(obj, path)
    back = tga.load(path)
    assert back["step"] == 10 and back["config"] == obj["config"] and back["losses"] == [1.5, 2.0]
    assert back["__odd_key__"] == 1 and back["tuple_keys"] == {(1, "a"): "v"}
    _assert_same(back["model"]["w"], w.detach())
    st = back["optimizer"]["state"][0]                   # int keys survive
    for k in ("exp_avg", "exp_avg_sq", "step"):
        _assert_same(st[k], opt.state_dict()["state"][0][k])
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    # every tensor lives in the safetensors part, under a flattened name
    from safetensors.numpy import load_file
    assert set(load_file(str(path))) == {"model.w", "optimizer.state.0.exp_avg",
                                         "optimizer.state.0.exp_avg_sq",
                                         "optimizer.state.0.step"}


def test_shared_tensor_is_stored_once_and_comes_back_shared(tmp_path):
    t = tga.ones(3)
    tga.save({"a": t, "b": [t]}, tmp_path / "s.safetensors")
    back = tga.load(tmp_path / "s.safetensors")
    assert back["a"] is back["b"][0]


def test_unsupported_objects_raise_type_error(tmp_path):
    with pytest.raises(TypeError, match="cannot save an object of type object at 'cfg.x'"):
        tga.save({"cfg": {"x": object()}}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="expected a file path"):
        tga.save({}, 3)
    assert not os.path.exists(tmp_path / "x.safetensors")


# ---- atomicity ----------------------------------------------------------------------------------
def test_error_mid_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    tga.save({"w": tga.zeros(1000)}, path)
    calls = []

    def failing_write(f, chunk):
        calls.append(len(chunk))
        if len(calls) == 2:
            raise OSError(28, "No space left on device (simulated)")
        f.write(chunk)

    monkeypatch.setattr(serialization, "_CHUNK_BYTES", 256)
    monkeypatch.setattr(serialization, "_write_chunk", failing_write)
    with pytest.raises(OSError, match="simulated"):
        tga.save({"w": tga.ones(1000)}, path)
    assert len(calls) == 2
    assert tga.load(path)["w"].tolist() == [0.0] * 1000            # the old checkpoint
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]              # no temp file left


def test_killed_writer_keeps_the_previous_file(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    tga.save({"w": tga.zeros(50_000)}, path)
    script = textwrap.dedent(f"""
        import sys, time
        import tinygradattn as tga
        from tinygradattn import serialization
        serialization._CHUNK_BYTES = 4096
        n = [0]
        def slow_write(f, chunk):
            f.write(chunk)
            n[0] += 1
            if n[0] == 3:
                f.flush()
                print("writing", flush=True)
                time.sleep(60)            # killed here, mid-write
        serialization._write_chunk = slow_write
        tga.save({{"w": tga.ones(50_000)}}, {str(path)!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        leftovers = [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
        assert len(leftovers) == 1                                   # the half-written temp
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert tga.load(path)["w"].tolist() == [0.0] * 50_000
    tga.save({"w": tga.ones(3)}, path)                               # and saving works again
    assert tga.load(path)["w"].tolist() == [1.0] * 3


def test_replaced_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "m.safetensors"
    tga.save({"w": tga.zeros(1)}, path)
    os.chmod(path, 0o640)
    tga.save({"w": tga.ones(1)}, path)
    assert os.stat(path).st_mode & 0o777 == 0o640


# ---- errors -------------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file: '.*nope.safetensors'"):
        tga.load(tmp_path / "nope.safetensors")


def test_truncated_file(tmp_path):
    path = tmp_path / "t.safetensors"
    tga.save({"w": tga.zeros(100)}, path)
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(RuntimeError, match=r"t.safetensors' is truncated: its tensors need \d+ "
                                           r"bytes, the file has \d+"):
        tga.load(path)
    path.write_bytes(data[:20])
    with pytest.raises(RuntimeError, match="is truncated: the header needs"):
        tga.load(path)


def test_not_a_safetensors_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not a checkpoint at all")
    with pytest.raises(ValueError, match="notes.txt' is not a safetensors file"):
        tga.load(path)
    path.write_bytes(b"abc")
    with pytest.raises(ValueError, match=r"is not a safetensors file \(3 bytes"):
        tga.load(path)
    header = b"{not json}"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(ValueError, match="bad header"):
        tga.load(path)


def test_damaged_metadata(tmp_path):
    from safetensors.numpy import save_file
    path = tmp_path / "d.safetensors"
    save_file({"a": np.zeros(2, np.float32)}, str(path),
              metadata={"tinygradattn": json.dumps({"x": {"__tensor__": "missing"}})})
    with pytest.raises(RuntimeError, match="damaged tinygradattn metadata"):
        tga.load(path)
