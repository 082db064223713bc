"""Activation memory per module (tga.utils.memory.activation_report) and the forward hooks it
runs on (Module.register_forward_pre_hook / register_forward_hook, torch's API)."""
import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn.models import GPT, GPTConfig
from tinygradattn.nn import module
from tinygradattn.utils.memory import LOSS_ROW, activation_report

F32 = 4                                         # bytes per float32
NANO = dict(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)   # charlm's nano


# ---- forward hooks ---------------------------------------------------------------------------
def test_forward_hooks_see_args_and_output_and_can_replace_them():
    lin = tga.nn.Linear(2, 3)
    seen = []
    h1 = lin.register_forward_pre_hook(lambda m, args: seen.append(("pre", args[0].shape)))
    h2 = lin.register_forward_hook(lambda m, args, out: seen.append(("post", out.shape)))
    lin(tga.zeros(4, 2))
    assert seen == [("pre", (4, 2)), ("post", (4, 3))]
    h1.remove()
    h2.remove()
    lin(tga.zeros(1, 2))
    assert len(seen) == 2                       # removed: not called again
    with lin.register_forward_pre_hook(lambda m, args: tga.ones(5, 2)):    # replaces args
        with lin.register_forward_hook(lambda m, args, out: out * 0):       # replaces output
            y = lin(tga.zeros(1, 2))
    assert y.shape == (5, 3) and not y.detach().numpy().any()
    assert not lin._forward_hooks and not lin._forward_pre_hooks


def test_forward_hooks_order_prepend_and_kwargs():
    net = tga.nn.Linear(2, 2)
    order = []
    handles = [net.register_forward_hook(lambda m, a, o: order.append("a")),
               net.register_forward_hook(lambda m, a, o: order.append("b"), prepend=True),
               net.register_forward_pre_hook(lambda m, a, kw: order.append(("kw", sorted(kw))),
                                             with_kwargs=True)]
    net(tga.zeros(1, 2))
    assert order == [("kw", []), "b", "a"]
    for h in handles:
        h.remove()
    assert module._n_forward_hooks == 0             # Module.__call__ is forward alone again


def test_forward_hooks_match_torch_order():
    torch = pytest.importorskip("torch")
    got = {}
    for lib in (tga, torch):
        order = []
        seq = lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.Tanh())
        handles = []
        for name, m in seq.named_modules():
            handles.append(m.register_forward_pre_hook(
                lambda mod, a, name=name: order.append("pre " + name)))
            handles.append(m.register_forward_hook(
                lambda mod, a, o, name=name: order.append("post " + name)))
        seq(lib.zeros(1, 2))
        for h in handles:
            h.remove()
        got[lib.__name__] = order
    assert got["tinygradattn"] == got["torch"]


# ---- the report --------------------------------------------------------------------------------
def test_linear_gelu_linear_saved_bytes_equal_the_hand_count():
    net = tga.nn.Sequential(tga.nn.Linear(8, 16), tga.nn.GELU(), tga.nn.Linear(16, 4))
    x = tga.ones(2, 8)
    rep = activation_report(net, x, loss_fn=lambda out: out.sum(), verbose=False)
    # saved: Linear 0 its input x (2, 8) for dweight; GELU gelu'(h) (2, 16); Linear 2 its
    # input, GELU's output (2, 16). The weights are parameters: not counted.
    assert [rep.row(n).saved_bytes for n in "012"] == [2 * 8 * F32, 2 * 16 * F32, 2 * 16 * F32]
    # kept besides: h = Linear 0's output (2, 16), held by the GELU node (GELU saved its
    # derivative, not h); Linear 2's output (2, 4), held by the sum; the loss itself (0-d)
    assert [rep.row(n).kept_bytes for n in "012"] == [2 * 16 * F32, 0, 2 * 4 * F32]
    assert rep.row(LOSS_ROW).saved_bytes == 0 and rep.row(LOSS_ROW).kept_bytes == F32
    root = rep.row("")
    assert root.saved_bytes == rep.total_saved_bytes == (2 * 8 + 2 * 2 * 16) * F32
    assert root.kept_bytes == (2 * 16 + 2 * 4) * F32 and root.self_saved_bytes == 0
    assert rep.total_bytes == rep.total_saved_bytes + rep.total_kept_bytes
    assert [r.output_bytes for r in rep.rows[1:4]] == [2 * 16 * F32, 2 * 16 * F32, 2 * 4 * F32]
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())
    assert module._n_forward_hooks == 0


def test_views_of_one_storage_count_once():
    class TwoHalves(tga.nn.Module):
        def forward(self, x):                            # both products keep a view of x
            return x[:, :4] * x[:, 4:]
    rep = activation_report(TwoHalves(), tga.ones(3, 8, requires_grad=True), verbose=False)
    assert rep.total_saved_bytes == 3 * 8 * F32                  # x, once
    assert rep.total_kept_bytes == 3 * 4 * F32                   # the product


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_gpt_nano_blocks_keep_the_same_bytes_and_the_total_is_what_tracemalloc_sees(
        dropout, capsys):
    tga.manual_seed(0)
    model = GPT(GPTConfig(**NANO, dropout=dropout))
    B, T = 4, 64
    idx = tga.randint(0, 65, (B, T))
    rep = activation_report(model, idx, idx, loss_fn=lambda out: out[1])
    assert "Block" in capsys.readouterr().out          # the table was printed
    blocks = [rep.row(f"transformer.h.{i}") for i in range(4)]
    assert len({(b.saved_bytes, b.kept_bytes) for b in blocks}) == 1
    stream = B * T * NANO["n_embd"] * F32                          # one (B, T, C) array
    maps = B * NANO["n_head"] * T * T * F32                          # one (B, H, T, T) array
    if dropout == 0:        # the fused attention keeps no T x T map: 16 (B, T, C) arrays
        assert 16 * stream <= blocks[0].saved_bytes < 17 * stream
    else:                   # the composed one keeps softmax, mask and their product
        assert blocks[0].saved_bytes >= 16 * stream + 3 * maps
    # tracemalloc's growth holds the counted arrays and the graph's Python objects (nodes,
    # tensors: a few percent at this size): the count is below it, within 10%
    assert 0.9 * rep.measured_kept_bytes <= rep.total_bytes <= rep.measured_kept_bytes
    assert 0.9 * rep.measured_peak_bytes <= rep.total_bytes


def test_checkpointed_gpt_blocks_keep_only_their_input():
    tga.manual_seed(0)
    B, T, C = 4, 64, NANO["n_embd"]
    model = GPT(GPTConfig(**NANO, gradient_checkpointing=True))
    idx = tga.randint(0, 65, (B, T))
    plain_model = GPT(GPTConfig(**NANO))
    rep = activation_report(model, idx, idx, loss_fn=lambda out: out[1], verbose=False)
    plain = activation_report(plain_model, idx, idx, loss_fn=lambda out: out[1], verbose=False)
    for i in range(4):                          # a (B, T, C) float32 input per block
        assert rep.row(f"transformer.h.{i}").saved_bytes == B * T * C * F32
    assert rep.total_bytes < 0.3 * plain.total_bytes


def test_table_and_unknown_row():
    rep = activation_report(tga.nn.Linear(2, 2), tga.ones(1, 2), verbose=False)
    text = rep.table()
    assert "saved for backward" in text and "Linear" in text
    with pytest.raises(KeyError, match="nope"):
        rep.row("nope")
    assert [r.name for r in rep] == [""]
    assert np.isfinite(rep.measured_peak_bytes)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_backend_storage_names_the_allocation_once_for_its_views(device, request):
    if device == "cuda":
        request.getfixturevalue("cuda_device")
    from tinygradattn.backend import get_backend
    be = get_backend(device)
    for shape in [(4, 8), (256, 128)]:          # a malloc'd array; a pooled one (128 KiB)
        a = tga.randn(*shape, device=device)._data
        key, n_bytes = be.storage(a)
        # the cuda allocator rounds a block up to its size bucket
        assert n_bytes == a.nbytes if device == "cpu" else n_bytes >= a.nbytes
        assert be.storage(be.getitem(a, (slice(1, 3),)))[0] == key
        assert be.storage(be.reshape(a, (-1,)))[0] == key
        assert be.storage(tga.randn(*shape, device=device)._data)[0] != key


def test_a_deep_copy_keeps_its_hooks_running_after_the_original_ones_are_removed():
    import copy
    calls = []
    lin = tga.nn.Linear(2, 2)
    handle = lin.register_forward_hook(lambda m, a, o: calls.append(1))
    twin = copy.deepcopy(lin)
    handle.remove()
    lin(tga.zeros(1, 2))
    twin(tga.zeros(1, 2))
    assert calls == [1]
    twin._forward_hooks.clear()
    module._n_forward_hooks -= 1                    # the test's own bookkeeping


def test_arrays_a_node_keeps_as_attributes_count_as_saved():
    emb = tga.nn.Embedding(10, 4)               # its node keeps the ids for the scatter-add
    rep = activation_report(emb, tga.tensor([[1, 2, 3]]), verbose=False)
    assert rep.row("").saved_bytes == 3 * 8     # (1, 3) int64
    assert rep.row("").kept_bytes == 3 * 4 * F32
