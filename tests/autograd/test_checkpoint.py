"""Activation checkpointing (tga.utils.checkpoint): the recomputed backward gives the plain
backward's gradients bit for bit (same kernels, same values; dropout's masks drawn again
from the restored generator), keeps only the inputs, and raises / warns as torch's does."""
import warnings

import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn.models import GPT, GPTConfig
from tinygradattn.models.gpt import Block
from tinygradattn.utils.checkpoint import checkpoint, checkpoint_sequential

CONFIG = dict(vocab_size=29, block_size=16, n_layer=2, n_head=2, n_embd=16)


def _grads(module, *tensors):
    """name -> gradient (numpy) of module's parameters and of the given tensors."""
    out = {n: p.grad.numpy().copy() for n, p in module.named_parameters() if p.grad is not None}
    out.update({f"input{i}": t.grad.numpy().copy() for i, t in enumerate(tensors)})
    return out


def _n_recompute_nodes(t):
    """How many checkpoint nodes the graph of t holds."""
    nodes, stack = {}, [t]
    while stack:
        ctx = stack.pop()._ctx
        if ctx is not None and id(ctx) not in nodes:
            nodes[id(ctx)] = ctx
            stack.extend(i for i in ctx.inputs if i is not None)
    return sum(ctx.fn.__name__ == "Recompute" for ctx in nodes.values())


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), (k, float(np.abs(a[k] - b[k]).max()))


def _block_step(use_checkpoint, use_reentrant=True, preserve_rng_state=True, dropout=0.2):
    """One block's forward and backward from a fixed seed; -> (grads, rng state after)."""
    tga.manual_seed(0)
    block = Block(GPTConfig(**CONFIG, dropout=dropout))
    x = tga.randn(3, 16, 16, requires_grad=True)
    if use_checkpoint:
        y = checkpoint(block, x, use_reentrant=use_reentrant,
                       preserve_rng_state=preserve_rng_state)
    else:
        y = block(x)
    (y * y).sum().backward()
    return _grads(block, x), tga.rand(4).numpy()


@pytest.mark.parametrize("use_reentrant", [True, False])
def test_gpt_block_with_dropout_gives_the_plain_gradients_bitwise(use_reentrant):
    plain, after_plain = _block_step(False)
    ckpt, after_ckpt = _block_step(True, use_reentrant)
    _assert_same(plain, ckpt)
    # the recompute puts the generator back: the next draw is the one without checkpointing
    assert np.array_equal(after_plain, after_ckpt)


def test_without_preserve_rng_state_the_dropout_masks_differ():
    plain, _ = _block_step(False)
    other, _ = _block_step(True, preserve_rng_state=False)
    assert not np.array_equal(plain["input0"], other["input0"])


def test_whole_gpt_step_and_losses_match_with_gradient_checkpointing():
    def train(checkpointing):
        tga.manual_seed(1)
        model = GPT(GPTConfig(**CONFIG, dropout=0.1, gradient_checkpointing=checkpointing))
        opt = model.configure_optimizers(0.1, 1e-2)
        idx = tga.randint(0, 29, (4, 16))
        losses = []
        for _ in range(3):
            _, loss = model(idx, idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses, {n: p.detach().numpy().copy() for n, p in model.named_parameters()}
    losses, params = train(False)
    losses_ckpt, params_ckpt = train(True)
    assert losses == losses_ckpt
    _assert_same(params, params_ckpt)


@pytest.mark.parametrize("norm_first", [True, False])
def test_seq2seq_with_gradient_checkpointing_gives_the_plain_gradients(norm_first):
    from tinygradattn.models.seq2seq import Seq2SeqConfig, Seq2SeqTransformer

    def step(checkpointing):
        tga.manual_seed(2)
        model = Seq2SeqTransformer(Seq2SeqConfig(13, 11, d_model=16, nhead=2,
                                                 dim_feedforward=32, dropout=0.2, max_len=12,
                                                 norm_first=norm_first))
        if checkpointing:
            model.gradient_checkpointing_enable()
        src = tga.randint(3, 13, (3, 9))
        src[0, 7:] = 0                              # padding: the key padding mask is used
        tgt = tga.randint(3, 11, (3, 6))
        logits = model(src, tgt)
        recomputed = _n_recompute_nodes(logits)
        tga.nn.functional.cross_entropy(logits.reshape(-1, 11), tgt.reshape(-1)).backward()
        return _grads(model), recomputed
    plain, none = step(False)
    ckpt, recomputed = step(True)
    assert (none, recomputed) == (0, 2 + 2)         # every encoder and decoder layer
    # the decoder side is bitwise equal; the memory's gradient sums one part per decoder
    # layer, in another order once those are checkpoint nodes: the encoder side agrees to
    # float32 rounding
    decoder = [k for k in plain if k.startswith(("decoder.", "generator.", "tgt_embed."))]
    _assert_same({k: plain[k] for k in decoder}, {k: ckpt[k] for k in decoder})
    for k in plain:
        np.testing.assert_allclose(ckpt[k], plain[k], rtol=1e-5, atol=1e-7, err_msg=k)


def test_gradient_checkpointing_enable_sets_every_block_and_is_off_in_eval():
    model = GPT(GPTConfig(**CONFIG))
    model.gradient_checkpointing_enable()
    assert model.config.gradient_checkpointing
    assert all(b.gradient_checkpointing for b in model.transformer["h"])
    idx = tga.randint(0, 29, (2, 8))
    _, loss = model(idx, idx)
    assert loss._ctx.fn.__name__ == "CrossEntropyMean"
    model.eval()
    with tga.no_grad():
        logits, _ = model(idx)                      # plain path: nothing recorded
    assert logits._ctx is None
    model.gradient_checkpointing_disable()
    assert not any(b.gradient_checkpointing for b in model.transformer["h"])


def test_checkpointed_block_keeps_only_its_input():
    tga.manual_seed(0)
    block = Block(GPTConfig(**CONFIG))
    x = tga.randn(2, 16, 16, requires_grad=True)
    y = checkpoint(block, x, use_reentrant=True)
    assert y._ctx.fn.__name__ == "Recompute"
    saved = y._ctx.saved
    assert len(saved) == 1 and saved[0] is x._data            # the input, nothing else
    assert y._ctx.inputs == (None, x)


def test_input_modified_in_place_after_forward_raises_in_backward():
    x = tga.randn(2, 3, requires_grad=True)
    scale = tga.randn(2, 3)                         # an input without grad may be written to
    y = checkpoint(lambda t, s: t * s, x, scale, use_reentrant=True)
    scale.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_no_input_requires_grad_warns_as_torch_and_reentrant_gives_no_gradients():
    lin = tga.nn.Linear(3, 3)
    x = tga.randn(2, 3)
    with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True"):
        y = checkpoint(lin, x, use_reentrant=True)
    assert not y.requires_grad
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # use_reentrant=False: no warning
        y = checkpoint(lin, x, use_reentrant=False)
    y.sum().backward()                              # and the parameters get their gradients
    expected = x.numpy().sum(0)
    assert np.allclose(lin.weight.grad.numpy(), np.tile(expected, (3, 1)), atol=1e-6)


def test_use_reentrant_not_given_warns_and_kwargs_need_use_reentrant_false():
    x = tga.randn(2, 3, requires_grad=True)
    with pytest.warns(UserWarning, match="use_reentrant parameter should be passed explicitly"):
        checkpoint(lambda t: t * 2, x)
    with pytest.raises(ValueError, match="Unexpected keyword arguments: scale"):
        checkpoint(lambda t, scale: t * scale, x, use_reentrant=True, scale=3.0)
    y = checkpoint(lambda t, scale: t * scale, x, use_reentrant=False, scale=3.0)
    y.sum().backward()
    assert np.array_equal(x.grad.numpy(), np.full((2, 3), 3.0, np.float32))
    s = tga.full((2, 3), 2.0, requires_grad=True)   # a tensor keyword argument gets its grad
    checkpoint(lambda t, scale: t * scale, x, use_reentrant=False, scale=s).sum().backward()
    assert np.array_equal(s.grad.numpy(), x.detach().numpy())


def test_tuple_outputs_and_non_tensor_arguments():
    w = tga.randn(3, 3, requires_grad=True)
    x = tga.randn(2, 3, requires_grad=True)

    def f(t, power, tag):
        h = t @ w
        return h ** power, tag, h.sum(-1)

    a, tag, b = checkpoint(f, x, 2, "tag", use_reentrant=True)
    assert tag == "tag" and a.shape == (2, 3) and b.shape == (2,)
    (a.sum() + 3 * b.sum()).backward()
    got = _grads_of(w, x)
    w.grad = x.grad = None
    a, _, b = f(x, 2, "tag")
    (a.sum() + 3 * b.sum()).backward()
    _assert_same(got, _grads_of(w, x))


def _grads_of(*tensors):
    return {i: t.grad.numpy().copy() for i, t in enumerate(tensors)}


def test_nested_checkpoints_and_no_grad():
    lin1, lin2 = tga.nn.Linear(4, 4), tga.nn.Linear(4, 4)
    x = tga.randn(2, 4, requires_grad=True)

    def outer(t):
        return lin2(checkpoint(lambda u: lin1(u).tanh(), t, use_reentrant=True))

    checkpoint(outer, x, use_reentrant=True).sum().backward()
    got = _grads_of(lin1.weight, lin2.weight, x)
    for t in (lin1.weight, lin2.weight, x):
        t.grad = None
    outer(x).sum().backward()
    _assert_same(got, _grads_of(lin1.weight, lin2.weight, x))
    with tga.no_grad():
        y = checkpoint(outer, x, use_reentrant=True)
    assert y._ctx is None and not y.requires_grad


def test_checkpoint_sequential_matches_the_plain_sequential():
    tga.manual_seed(0)
    net = tga.nn.Sequential(*[tga.nn.Linear(6, 6) if i % 2 == 0 else tga.nn.GELU()
                              for i in range(6)])
    x = tga.randn(3, 6, requires_grad=True)
    checkpoint_sequential(net, 3, x, use_reentrant=True).sum().backward()
    got = _grads(net, x)
    net.zero_grad()
    x.grad = None
    net(x).sum().backward()
    _assert_same(got, _grads(net, x))
    with pytest.raises(ValueError, match="segments"):
        checkpoint_sequential(net, 0, x, use_reentrant=True)


def test_matches_torch_checkpoint_gradients():
    torch = pytest.importorskip("torch")
    from torch.utils.checkpoint import checkpoint as torch_checkpoint
    rng = np.random.default_rng(0)
    w1, w2 = rng.standard_normal((5, 4), np.float32), rng.standard_normal((3, 5), np.float32)
    x = rng.standard_normal((2, 4), np.float32)

    def grads(lib, ckpt):
        ws = [lib.tensor(w, requires_grad=True) for w in (w1, w2)]
        xt = lib.tensor(x, requires_grad=True)
        f = (lambda t: (t @ ws[0].T).tanh() @ ws[1].T)
        ckpt(f, xt, use_reentrant=True).pow(2).sum().backward()
        return [t.grad.numpy() for t in (*ws, xt)]

    for ours, theirs in zip(grads(tga, checkpoint), grads(torch, torch_checkpoint)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("use_reentrant", [True, False])
def test_on_cuda_the_gradients_match_the_plain_ones(cuda_device, use_reentrant):
    tga.manual_seed(0)
    lin = tga.nn.Linear(3, 3).to(cuda_device)
    x = tga.randn(2, 3, device=cuda_device, requires_grad=True)
    y = checkpoint(lambda t: lin(t).tanh(), x, use_reentrant=use_reentrant)
    assert y.device == cuda_device                  # the cpu anchor does not move the output
    y.sum().backward()
    got = [t.grad.cpu().numpy() for t in (x, lin.weight)]
    x.grad = lin.weight.grad = None
    lin(x).tanh().sum().backward()
    for a, t in zip(got, (x, lin.weight)):
        assert np.array_equal(a, t.grad.cpu().numpy())


def test_docstring_examples_run():
    import doctest
    import importlib
    for name in ("tinygradattn.utils.checkpoint", "tinygradattn.utils.memory",
                 "tinygradattn.nn.module"):
        failures, tried = doctest.testmod(importlib.import_module(name))
        assert failures == 0 and tried > 0, name
