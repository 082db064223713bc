"""In-place writes into tensors that backward still needs (issue 16, finding 1): the storage's
version counter makes backward raise, as PyTorch does, instead of giving a wrong gradient."""
import pytest

import tinygradattn as tga

MODIFIED = "modified by an inplace operation"


def test_an_input_saved_by_mul_changed_by_setitem(device):
    x = tga.tensor([1., 2., 3.], requires_grad=True, device=device)
    b = tga.tensor([4., 5., 6.], device=device)
    y = (x * b).sum()
    b[0] = 100.
    with pytest.raises(RuntimeError, match=f"{MODIFIED}: .* is at version 1; expected "
                                           "version 0"):
        y.backward()


def test_an_optimizer_step_between_forward_and_backward(device):
    w = tga.nn.Parameter(tga.tensor([1., 2., 3.], device=device))
    opt = tga.optim.SGD([w], lr=1.)
    w.grad = tga.ones(3, device=device)
    y = (w * w).sum()
    opt.step()
    with pytest.raises(RuntimeError, match=MODIFIED):
        y.backward()


def test_adamw_step_and_a_leaf_changed_under_no_grad():
    w = tga.nn.Parameter(tga.tensor([1., 2., 3.]))
    opt = tga.optim.AdamW([w], lr=0.1)
    w.grad = tga.ones(3)
    y = (w * w).sum()
    opt.step()
    with pytest.raises(RuntimeError, match=MODIFIED):
        y.backward()
    y = (w * w).sum()
    with tga.no_grad():
        w.mul_(2)
    with pytest.raises(RuntimeError, match=MODIFIED):
        y.backward()


def test_an_intermediate_changed_by_setitem():
    x = tga.tensor([1., 2., 3.], requires_grad=True)
    h = x.detach() * 2                   # needs no grad: it may be written, but Mul saved it
    y = (x * h).sum()
    h[1] = 0.
    with pytest.raises(RuntimeError, match=MODIFIED):
        y.backward()


def test_a_detach_alias_and_a_data_alias_share_the_counter():
    x = tga.tensor([1., 2., 3.], requires_grad=True)
    s = x.exp()                          # Exp saves its output
    s.detach().zero_()
    with pytest.raises(RuntimeError, match=f"{MODIFIED}: .*output 0 of Exp"):
        s.sum().backward()
    x = tga.tensor([1., 2., 3.], requires_grad=True)
    s = x.exp()
    s.data.add_(1)
    with pytest.raises(RuntimeError, match=MODIFIED):
        s.sum().backward()


def test_a_saved_softmax_output_changed(device):
    x = tga.tensor([[1., 2., 3.]], requires_grad=True, device=device)
    p = x.softmax(-1)
    with tga.no_grad():
        p.mul_(2)
    with pytest.raises(RuntimeError, match=f"{MODIFIED}: .*output 0 of Softmax"):
        p.sum().backward()


def test_a_write_through_a_view_is_seen():
    x = tga.tensor([1., 2., 3.], requires_grad=True)
    b = tga.tensor([4., 5., 6.])
    y = (x * b).sum()
    b.view(3, 1)[2, 0] = 7.              # a view of b: one storage, one counter
    with pytest.raises(RuntimeError, match=MODIFIED):
        y.backward()
    b = tga.tensor([4., 5., 6.])
    y = (x[1:] * b[1:]).sum()
    b[0] = 9.                            # the same storage: torch raises here too
    with pytest.raises(RuntimeError, match=MODIFIED):
        y.backward()


def test_a_copy_has_its_own_counter():
    x = tga.tensor([1., 2., 3.], requires_grad=True)
    b = tga.tensor([4., 5., 6.])
    y = (x * b.clone()).sum()
    b[0] = 100.                          # the clone was saved, not b
    y.backward()
    assert x.grad.tolist() == [4., 5., 6.]
    c = tga.tensor([[4., 5.], [6., 7.]])
    y = (x[:2] * c.T[0]).sum()           # a strided view, then a copy by advanced indexing
    z = (x[:2] * c[[0, 1], [0, 0]]).sum()
    c[1, 1] = 0.                         # not an element any product read, but c's storage
    with pytest.raises(RuntimeError, match=MODIFIED):
        y.backward()
    z.backward()                         # the advanced index made a copy: no error


def test_an_index_tensor_changed_after_gather_keeps_the_gradient_right(device):
    x = tga.tensor([1., 2., 3.], requires_grad=True, device=device)
    idx = tga.tensor([0, 0, 1], device=device)
    g = x.gather(0, idx)
    idx[0] = 2
    g.sum().backward()
    assert x.grad.tolist() == [2., 1., 0.]    # from the index at the time of the forward


def test_an_index_tensor_changed_after_getitem_keeps_the_gradient_right(device):
    x = tga.tensor([1., 2., 3.], requires_grad=True, device=device)
    idx = tga.tensor([0, 0, 1], device=device)
    rows = tga.tensor([True, False, True], device=device)
    g = x[idx]
    h = x[rows]
    idx[0] = 2
    rows[1] = True
    (g.sum() + 10 * h.sum()).backward()
    assert x.grad.tolist() == [12., 1., 10.]  # from the indices at the time of the forward


def test_untouched_graphs_and_retain_graph_still_work():
    x = tga.tensor([1., 2., 3.], requires_grad=True)
    b = tga.tensor([4., 5., 6.])
    y = (x * b).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [8., 10., 12.]
    b[0] = 1.                            # after backward: nothing needs it any more
    model = tga.nn.Linear(3, 2)
    opt = tga.optim.AdamW(model.parameters(), lr=0.1)
    for _ in range(3):                   # forward, backward, step: the usual loop
        loss = model(tga.ones(4, 3)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
