"""tga.save / tga.load: safetensors round trips, interop (safetensors.numpy, torch), rich
objects, atomic writes (an error mid-write, a killed writer), and errors naming the file."""
import json
import os
import re
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
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]              # the killed one's temp: gone


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


# ---- damaged and unsupported files (issue 16, findings 2 and 3) ---------------------------------
CheckpointError = getattr(serialization, "CheckpointError", ())


def _write_raw(path, header, data=b""):
    """A file in the safetensors layout with the given header (any JSON) and data bytes."""
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


@pytest.mark.parametrize("entry, fault", [
    ({"dtype": "F32", "shape": [2], "data_offsets": "a"}, "data_offsets must be a list of two"),
    ({"dtype": "F32", "shape": [2], "data_offsets": None}, "data_offsets"),
    ({"dtype": "F32", "shape": [2], "data_offsets": 3}, "data_offsets"),
    ({"dtype": "F32", "shape": [2], "data_offsets": [0]}, "data_offsets"),
    ({"dtype": "F32", "shape": [2], "data_offsets": ["0", "8"]}, "data_offsets"),
    ({"dtype": "F32", "shape": [2], "data_offsets": [0, 8.5]}, "data_offsets"),
    ({"dtype": "F32", "shape": [2], "data_offsets": [True, 8]}, "data_offsets"),
    ({"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}, "data_offsets"),
    ({"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}, "needs 8 bytes"),
    ({"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}, "shape must be a list"),
    ({"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}, "shape must be a list"),
    ({"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}, "shape must be a list"),
    ({"dtype": 5, "shape": [2], "data_offsets": [0, 8]}, "dtype must be a string"),
    ({"dtype": "F31", "shape": [2], "data_offsets": [0, 8]}, "unknown dtype F31"),
    ({"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}, "complex64"),
    ([0, 8], "expected an object"),
])
def test_malformed_header_entries_raise_checkpoint_error(tmp_path, entry, fault):
    path = _write_raw(tmp_path / "bad.safetensors", {"w": entry}, b"\0" * 8)
    with pytest.raises(CheckpointError, match=r"bad.safetensors' .*" + re.escape(fault)):
        tga.load(path)


@pytest.mark.parametrize("header, data, fault", [
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, 12, "overlap or leave a gap"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, 8, "overlap or leave a gap"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, 8, "4 bytes follow"),
    ({"a": {"dtype": "F32", "shape": [1 << 40], "data_offsets": [0, 1 << 42]}}, 8, "truncated"),
    ({"__metadata__": {"x": 1}}, 0, "__metadata__ must map strings to strings"),
])
def test_layout_faults_raise_checkpoint_error(tmp_path, header, data, fault):
    path = _write_raw(tmp_path / "lay.safetensors", header, b"\0" * data)
    with pytest.raises(CheckpointError, match=re.escape(fault)):
        tga.load(path)


def test_duplicate_header_keys_are_refused(tmp_path):
    raw = (b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
           b'"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}')
    path = tmp_path / "dup.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 4)
    with pytest.raises(CheckpointError, match="a key appears twice"):
        tga.load(path)


def test_checkpoint_error_is_a_value_and_runtime_error_and_pickles():
    import pickle
    e = CheckpointError("/x/y.safetensors", "is truncated: oops")
    assert isinstance(e, ValueError) and isinstance(e, RuntimeError)
    back = pickle.loads(pickle.dumps(e))
    assert (back.path, back.fault, str(back)) == (e.path, e.fault, str(e))


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_load_dev_zero_fails_fast_without_reading_it():
    script = textwrap.dedent("""
        import resource, tinygradattn as tga
        from tinygradattn import serialization
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
        try:
            tga.load("/dev/zero")
        except serialization.CheckpointError as e:
            print("refused:", e)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert "refused: tga.load: '/dev/zero' is not a regular file" in proc.stdout, proc.stderr


def test_huge_offsets_in_a_small_file_are_refused_before_reading(tmp_path, monkeypatch):
    path = _write_raw(tmp_path / "big.safetensors",
                      {"w": {"dtype": "F32", "shape": [1 << 30], "data_offsets": [0, 1 << 32]}})
    with pytest.raises(CheckpointError, match="is truncated: its tensors need"):
        tga.load(path)


def test_float16_and_bfloat16_load_as_float32_with_a_warning(tmp_path):
    from safetensors.numpy import save_file
    values = np.array([1.5, -2.25, 65504.0], np.float16)
    save_file({"h": values}, str(tmp_path / "h.safetensors"))
    with pytest.warns(UserWarning, match=r"h.safetensors': 1 float16/bfloat16 tensor\(s\) "
                                         r"converted to float32.*: h"):
        back = tga.load(tmp_path / "h.safetensors")
    assert back["h"].dtype == tga.float32
    assert back["h"].tolist() == values.astype(np.float32).tolist()
    f32 = np.array([1.0, -3.5, 0.15625], np.float32)           # exact in bfloat16
    bf16 = (f32.view(np.uint32) >> 16).astype("<u2").tobytes()
    path = _write_raw(tmp_path / "b.safetensors",
                      {"b": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}, bf16)
    with pytest.warns(UserWarning, match="bfloat16"):
        assert tga.load(path)["b"].tolist() == f32.tolist()


def test_complex64_is_refused_clearly(tmp_path):
    from safetensors.numpy import save_file
    save_file({"c": np.ones(2, np.complex64)}, str(tmp_path / "c.safetensors"))
    with pytest.raises(CheckpointError, match=r"c.safetensors' is unsupported: tensor 'c' has "
                                              r"dtype C64 \(complex64\)"):
        tga.load(tmp_path / "c.safetensors")


def _flip_bit(path, offset_from_end):
    data = bytearray(path.read_bytes())
    data[len(data) - offset_from_end] ^= 0x10
    path.write_bytes(bytes(data))


def test_a_flipped_bit_in_the_weights_is_caught_by_the_checksum(tmp_path):
    path = tmp_path / "ck.safetensors"
    tga.save({"w": tga.arange(100).float(), "step": 7}, path)
    serialization.verify(path)
    _flip_bit(path, 3)
    with pytest.raises(CheckpointError, match=r"ck.safetensors' is damaged: the bytes of tensor "
                                              r"'w' do not match their checksum"):
        tga.load(path)
    with pytest.raises(CheckpointError, match="checksum"):
        serialization.verify(path)


def test_changed_metadata_is_caught_by_the_checksum(tmp_path):
    path = tmp_path / "m.safetensors"
    tga.save({"w": tga.ones(2), "step": 17}, path)
    data = path.read_bytes()
    path.write_bytes(data.replace(b'\\"step\\": 17', b'\\"step\\": 71'))
    assert path.read_bytes() != data
    with pytest.raises(CheckpointError, match="its metadata does not match its checksum"):
        tga.load(path)


def test_files_without_checksums_still_load(tmp_path):
    from safetensors.numpy import save_file
    skeleton = json.dumps({"w": {"__tensor__": "w"}, "step": 3})   # an older tga.save's file
    save_file({"w": np.ones(2, np.float32)}, str(tmp_path / "old.safetensors"),
              metadata={"format": "pt", "tinygradattn": skeleton})
    back = tga.load(tmp_path / "old.safetensors")
    assert back["step"] == 3 and back["w"].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("skeleton", [
    {"x": {"__tensor__": ["w"]}}, {"x": {"__tuple__": 5}}, {"x": {"__dict__": [[[1], 2]]}},
    {"x": {"__dict__": [1, 2]}}, {"x": {"__tensor__": "w", "device": 3}}])
def test_malformed_skeletons_raise_checkpoint_error(tmp_path, skeleton):
    from safetensors.numpy import save_file
    save_file({"w": np.ones(2, np.float32)}, str(tmp_path / "s.safetensors"),
              metadata={"tinygradattn": json.dumps(skeleton)})
    with pytest.raises(CheckpointError, match="has damaged tinygradattn metadata"):
        tga.load(tmp_path / "s.safetensors")


# ---- temporary files and modes ------------------------------------------------------------------
def test_stale_temporary_files_are_removed_at_the_next_save(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    stale = [tmp_path / ".ckpt.safetensors.a1b2c3d4.tmp", tmp_path / ".ckpt.safetensors.x_9.tmp"]
    others = [tmp_path / ".other.safetensors.a1b2c3d4.tmp", tmp_path / "keep.tmp",
              tmp_path / ".ckpt.safetensors.bak.a1.tmp"]
    for p in stale + others:
        p.write_bytes(b"half a checkpoint")
    tga.save({"w": tga.ones(3)}, path)
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in others)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX locks")
def test_a_temporary_file_in_use_is_not_removed(tmp_path):
    fd, tmp = serialization._create_temp(str(tmp_path), "ckpt.safetensors")  # a live save's
    try:
        tga.save({"w": tga.ones(3)}, tmp_path / "ckpt.safetensors")
        assert os.path.exists(tmp)
    finally:
        os.close(fd)
    tga.save({"w": tga.ones(3)}, tmp_path / "ckpt.safetensors")           # abandoned now
    assert not os.path.exists(tmp)


def test_a_new_file_gets_open_modes_without_touching_the_umask(tmp_path, monkeypatch):
    umask = os.umask(0o027)
    os.umask(0o027)
    try:
        def no_umask(mask):
            raise AssertionError("os.umask changes the mode of every thread: not here")
        monkeypatch.setattr(os, "umask", no_umask)
        tga.save({"w": tga.ones(1)}, tmp_path / "n.safetensors")
        assert os.stat(tmp_path / "n.safetensors").st_mode & 0o777 == 0o640
    finally:
        monkeypatch.undo()
        os.umask(umask)
