"""The CPU buffer pool: reuse only when no array refers to a buffer; the idle cap; clear."""
import numpy as np

import tinygradattn as tga
from tinygradattn.backend.pool import BufferPool

MIB = 1 << 20


def test_small_requests_are_not_pooled():
    pool = BufferPool(min_bytes=MIB)
    a = pool.empty((4, 4), np.float32)
    assert a.shape == (4, 4) and a.dtype == np.float32
    assert pool.stats()["held_bytes"] == 0


def test_a_buffer_is_reused_only_when_nothing_refers_to_it():
    pool = BufferPool(min_bytes=MIB)
    a = pool.empty((512, 1024), np.float32)             # 2 MiB
    b = pool.empty((512, 1024), np.float32)
    assert not np.shares_memory(a, b)                   # a is alive: a new buffer
    view = a[10:20]
    del a
    c = pool.empty((512, 1024), np.float32)
    assert not np.shares_memory(c, view)                # a view keeps the buffer busy
    del view, c
    d = pool.empty((1024, 512), np.float32)             # same size, another shape
    assert pool.stats()["hits"] == 1
    d[...] = 1.0
    assert d.flags.c_contiguous and d.shape == (1024, 512)


def test_the_most_recently_handed_out_free_buffer_comes_back_first():
    """Its pages are the likeliest still in cache (reuse order: last handed out, first)."""
    pool = BufferPool(min_bytes=MIB)
    a, b, c = (pool.empty((MIB // 4,), np.float32) for _ in range(3))
    addr = {name: x.__array_interface__["data"][0] for name, x in zip("abc", (a, b, c))}
    del a, b, c                                         # all free; c was handed out last
    d = pool.empty((MIB // 4,), np.float32)
    assert d.__array_interface__["data"][0] == addr["c"]
    e = pool.empty((MIB // 4,), np.float32)
    assert e.__array_interface__["data"][0] == addr["b"]
    del d                                               # d (c's buffer) is again the latest
    f = pool.empty((MIB // 4,), np.float32)
    assert f.__array_interface__["data"][0] == addr["c"]


def test_clear():
    pool = BufferPool(min_bytes=MIB, max_bytes=3 * MIB)
    kept = [pool.empty((MIB // 4,), np.float32) for _ in range(5)]   # 1 MiB each
    pool.clear()
    assert pool.stats()["held_bytes"] == 0
    assert all(k.shape == (MIB // 4,) for k in kept)                   # still valid


def test_buffers_in_use_past_the_cap_are_pooled_and_come_back_next_step():
    """max_bytes bounds idle buffers, not those in use: a step whose activations outgrow it
    gets all of them back the next step (no fresh pages)."""
    pool = BufferPool(min_bytes=MIB, max_bytes=3 * MIB)
    step = [pool.empty((MIB // 4,), np.float32) for _ in range(5)]   # 1 MiB each, 5 > 3
    assert pool.stats()["held_bytes"] == 5 * MIB
    addresses = {a.ctypes.data for a in step}
    del step
    again = [pool.empty((MIB // 4,), np.float32) for _ in range(5)]
    assert {a.ctypes.data for a in again} == addresses
    assert pool.stats()["hits"] == 5 and pool.stats()["misses"] == 5


def test_idle_buffers_past_the_cap_are_released_least_recent_first():
    """Shapes change (another batch size): the old idle buffers beyond max_bytes go before
    new memory is mapped; the most recently used idle ones and those in use stay."""
    pool = BufferPool(min_bytes=MIB, max_bytes=2 * MIB)
    old = [pool.empty((MIB // 4,), np.float32) for _ in range(4)]    # 4 x 1 MiB
    live = old[1][:10]                                               # a view: in use
    ref = np.array(live)
    address = {i: a.ctypes.data for i, a in enumerate(old)}
    del old                                                          # 3 idle, 1 in use
    new = pool.empty((MIB // 2,), np.float32)                        # 2 MiB: another size
    assert pool.stats()["released"] == 1                             # 3 MiB idle -> 2 MiB
    assert pool.stats()["held_bytes"] == 4 * MIB + 2 * MIB - MIB
    np.testing.assert_array_equal(live, ref)
    assert pool.holds(live.base)                                     # in use: kept
    kept = {pool.empty((MIB // 4,), np.float32).ctypes.data for _ in range(1)}
    assert kept <= {address[2], address[3]}                          # the newest idle
    assert address[0] not in kept                                    # the oldest: released
    del new


def test_a_released_buffer_stays_valid_for_whoever_still_holds_it():
    pool = BufferPool(min_bytes=MIB, max_bytes=MIB)
    a = pool.empty((MIB // 4,), np.float32)
    a[...] = 7.0
    pool.clear()
    b = pool.empty((MIB // 4,), np.float32)
    b[...] = 1.0
    assert not np.shares_memory(a, b)
    np.testing.assert_array_equal(a, 7.0)


def test_int_shape_and_dtype_view():
    pool = BufferPool(min_bytes=MIB)
    a = pool.empty(MIB // 8, np.float64)
    assert a.shape == (MIB // 8,) and a.dtype == np.float64


def test_reused_kernel_outputs_do_not_alias_live_tensors():
    x = tga.randn(600, 600)                             # 1.4 MB outputs: pooled
    y1 = x.softmax(-1)
    y2 = (x * 2).softmax(-1)
    assert not np.shares_memory(y1.numpy(), y2.numpy())
    ref = y1.numpy().copy()
    for _ in range(3):
        (x * 3).softmax(-1)                             # freed at once: reuses its buffer
    np.testing.assert_array_equal(y1.numpy(), ref)
    tga.empty_cache()
    assert tga.backend_info()["buffer_pool"]["held_bytes"] == 0


def test_buffers_are_cache_line_aligned():
    """Every handed-out array starts on a 64-byte boundary (vector stores never straddle two
    cache lines), fresh or reused, whatever numpy's own allocation offset."""
    pool = BufferPool(min_bytes=1)
    for n in (1, 3, 17, 1000, 4099, MIB // 4 + 1):
        a = pool.empty((n,), np.float32)
        assert a.ctypes.data % 64 == 0 and a.nbytes == 4 * n and a.flags.c_contiguous
        del a
        b = pool.empty((n,), np.float32)                # the same buffer again
        assert b.ctypes.data % 64 == 0
    assert pool.stats()["hits"] == 6


def test_a_pooled_array_only_the_caller_holds_is_accumulated_in_place():
    """backend.accumulate adds into a pooled buffer (its .base is the pool's) when nothing but
    the pool refers to it, and makes a new array while another view lives."""
    from tinygradattn.backend import cpu
    be = tga.ones(1)._backend
    a = cpu.POOL.empty((300, 200), np.float32)
    a[...] = 1.0
    assert cpu.POOL.holds(a.base)
    address, box = a.ctypes.data, [a]
    del a
    out = be.accumulate(box, np.full((300, 200), 2.0, np.float32))
    assert out.ctypes.data == address
    np.testing.assert_array_equal(out, 3.0)
    view = out[:10]                                     # another reference to the buffer
    box = [out]
    del out
    again = be.accumulate(box, np.ones((300, 200), np.float32))
    assert again.ctypes.data != address
    np.testing.assert_array_equal(view, 3.0)


def test_zeros_in_a_reused_buffer_are_zeros():
    pool = BufferPool(min_bytes=MIB)
    a = pool.empty((MIB // 4,), np.float32)
    a[...] = 5.0
    address = a.ctypes.data
    del a
    z = pool.zeros((MIB // 4,), np.float32)
    assert z.ctypes.data == address                     # the dirty buffer, cleared
    np.testing.assert_array_equal(z, 0.0)
    small = pool.zeros((3, 2), np.int64)                # below min_bytes: numpy's own
    assert small.dtype == np.int64 and not small.any()


def test_a_slice_backward_on_reused_buffers_is_exact():
    """Index's backward scatters into backend.zeros, pooled now: after dirty buffers of the
    same size were freed, every piece's gradient is still exact."""
    for _ in range(3):
        junk = tga.randn(600, 600) * 7.0                # freed at once: dirty pooled buffers
        del junk
        x = tga.randn(600, 600, requires_grad=True)
        a, b, c = x.split(200, dim=1)
        (a * 1.0 + b * 2.0 + c * 3.0).sum().backward()
        want = np.repeat(np.array([1.0, 2.0, 3.0], np.float32), 200)[None].repeat(600, 0)
        np.testing.assert_array_equal(x.grad.numpy(), want)
