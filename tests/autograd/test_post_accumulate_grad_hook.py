"""Tensor.register_post_accumulate_grad_hook and engine.queue_callback (issue 18: what
DistributedDataParallel starts its Allreduce from, while backward still runs)."""
import pytest

import tinygradattn as tga
from tinygradattn.autograd import engine
from tinygradattn.utils.checkpoint import checkpoint


def _net():
    tga.manual_seed(0)
    return tga.nn.Sequential(tga.nn.Linear(4, 8), tga.nn.Tanh(), tga.nn.Linear(8, 3))


def _loss(net, x):
    return (net(x) ** 2).mean()


def test_hook_sees_final_grad_before_backward_ends_and_values_are_unchanged():
    x = tga.randn(5, 4)
    plain = _net()
    _loss(plain, x).backward()
    net = _net()
    events = []
    for name, p in net.named_parameters():
        p.register_post_accumulate_grad_hook(
            lambda p, name=name: events.append((name, p.grad.clone())))
    h = net[1](net[0](x))                        # the first layer's output: its gradient is
    h.register_hook(lambda g: events.append(("h", None)))   # computed mid-backward
    loss = (net[2](h) ** 2).mean()
    loss.backward()
    names = [name for name, _ in events]
    assert sorted(names) == sorted(["h", "0.weight", "0.bias", "2.weight", "2.bias"])
    # the last layer's gradients are handed over before backward reaches h
    assert names.index("2.weight") < names.index("h") and names.index("2.bias") < names.index("h")
    params = dict(net.named_parameters())
    for name, g in events:                       # the value the hook saw is the final .grad
        if g is not None:
            assert g.tolist() == params[name].grad.tolist()
    for a, b in zip(plain.parameters(), net.parameters()):
        assert a.grad.tolist() == b.grad.tolist()


def test_hook_runs_per_accumulation_and_remove_stops_it():
    w = tga.ones(3, requires_grad=True)
    calls = []
    handle = w.register_post_accumulate_grad_hook(lambda p: calls.append(p.grad.tolist()))
    (w * 2).sum().backward()
    (w * 3).sum().backward()
    assert calls == [[2.0] * 3, [5.0] * 3]
    handle.remove()
    (w * 1).sum().backward()
    assert len(calls) == 2 and id(w) not in engine._hooked_leaves


def test_hook_on_a_leaf_root_and_refusals():
    w = tga.ones(2, requires_grad=True)
    calls = []
    w.register_post_accumulate_grad_hook(lambda p: calls.append(1))
    w.backward(tga.ones(2))
    assert calls == [1]
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        tga.ones(2).register_post_accumulate_grad_hook(print)
    with pytest.raises(RuntimeError, match="non-leaf"):
        (w * 2).register_post_accumulate_grad_hook(print)


def test_hooks_under_activation_checkpointing_match_the_plain_gradients():
    x = tga.randn(5, 4)
    plain = _net()
    _loss(plain, x).backward()
    net = _net()
    calls = []
    for p in net.parameters():
        p.register_post_accumulate_grad_hook(lambda p: calls.append(p))
    (checkpoint(net, x, use_reentrant=False) ** 2).mean().backward()
    assert len(calls) == 4
    for a, b in zip(plain.parameters(), net.parameters()):
        assert a.grad.reshape(-1).tolist() == pytest.approx(b.grad.reshape(-1).tolist())


def test_queue_callback_runs_once_when_the_outermost_backward_ends():
    w = tga.ones(2, requires_grad=True)
    order = []
    w.register_hook(lambda g: engine.queue_callback(lambda: order.append("end")) or
                    order.append("hook"))
    (w * 2).sum().backward()
    assert order == ["hook", "end"]
    with pytest.raises(RuntimeError, match="no backward pass is running"):
        engine.queue_callback(print)


def test_a_leaf_whose_hook_refers_to_it_is_freed():
    import gc
    import weakref
    w = tga.ones(2, requires_grad=True)
    w.register_post_accumulate_grad_hook(lambda p, box=[w]: box)   # leaf -> hook -> leaf
    ref = weakref.ref(w)
    assert id(w) in engine._hooked_leaves
    del w
    gc.collect()
    assert ref() is None


def test_a_failed_pass_drops_its_queued_callbacks():
    w = tga.ones(2, requires_grad=True)
    ran = []

    def fail(g):
        engine.queue_callback(lambda: ran.append("stale"))
        raise ValueError("hook failed")
    handle = w.register_hook(fail)
    with pytest.raises(ValueError, match="hook failed"):
        (w * 2).sum().backward()
    del handle
    v = tga.ones(2, requires_grad=True)
    (v * 2).sum().backward()
    assert ran == []
