"""The clients' own model code, run twice in one process: once on PyTorch, once on
tinygradattn through the import hook, from the same weights and batch. Losses, logits and
every parameter's gradient must agree to float32 rounding (issue 15: "our results must match
PyTorch's")."""
import os
import sys

import numpy as np
import pytest

from tinygradattn.compat import hook

torch = pytest.importorskip("torch", reason="PyTorch is the reference for parity")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIENTS = os.path.join(os.path.dirname(ROOT), "shared", "clients")
pytestmark = pytest.mark.skipif(not os.path.isdir(CLIENTS),
                                reason="../shared/clients is not beside the repository")


def load_module(path, name, ours):
    return hook.load_module(path, name, on_tinygradattn=ours)


def copy_weights(src_model, dst_model):
    """PyTorch state dict -> our model, by name (the same module code: the same names)."""
    import tinygradattn as tga
    theirs = src_model.state_dict()
    ours = {k: tga.tensor(v.detach().numpy().copy()) for k, v in theirs.items()}
    missing = dst_model.load_state_dict(ours, strict=False)
    return missing


def compare(ours, theirs, rtol, atol, what):
    a = ours.detach().numpy() if hasattr(ours, "detach") else np.asarray(ours)
    b = theirs.detach().numpy()
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=what)


def run_both(model_t, model_o, idx, targets):
    import tinygradattn as tga
    logits_t, loss_t = model_t(torch.tensor(idx), torch.tensor(targets))
    loss_t.backward()
    logits_o, loss_o = model_o(tga.tensor(idx), tga.tensor(targets))
    loss_o.backward()
    compare(loss_o, loss_t, 1e-5, 1e-6, "loss")
    compare(logits_o, logits_t, 1e-4, 1e-5, "logits")
    grads_t = {n: p.grad for n, p in model_t.named_parameters()}
    n_checked = 0
    for n, p in model_o.named_parameters():
        compare(p.grad, grads_t[n], 1e-3, 2e-5, f"grad of {n}")
        n_checked += 1
    assert n_checked == len(grads_t)


def test_nanogpt_model_matches_pytorch():
    path = os.path.join(CLIENTS, "nanoGPT", "model.py")
    mt = load_module(path, "nanogpt_model_torch", ours=False)
    mo = load_module(path, "nanogpt_model_tga", ours=True)
    # bias=False as train.py: a key bias has a zero gradient in exact arithmetic, which
    # AdamW turns into a step of +-lr from either library's rounding noise
    kw = dict(block_size=16, vocab_size=37, n_layer=2, n_head=2, n_embd=24, dropout=0.0,
              bias=False)
    torch.manual_seed(0)
    model_t = mt.GPT(mt.GPTConfig(**kw))
    model_o = mo.GPT(mo.GPTConfig(**kw))
    copy_weights(model_t, model_o)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 37, size=(3, 16))
    targets = rng.integers(0, 37, size=(3, 16))
    targets[0, :3] = -1                                     # nanoGPT's ignore_index
    run_both(model_t, model_o, idx, targets)
    # and its optimizer configuration: the same groups, AdamW's step gives the same weights
    opt_t = model_t.configure_optimizers(0.1, 1e-3, (0.9, 0.99), "cpu")
    opt_o = model_o.configure_optimizers(0.1, 1e-3, (0.9, 0.99), "cpu")
    opt_t.step()
    opt_o.step()
    params_t = dict(model_t.named_parameters())
    for n, p in model_o.named_parameters():
        compare(p, params_t[n], 1e-5, 1e-6, f"{n} after one AdamW step")


def test_mingpt_model_matches_pytorch():
    sys.path.insert(0, os.path.join(CLIENTS, "minGPT"))
    try:
        path = os.path.join(CLIENTS, "minGPT", "mingpt", "model.py")
        mt = load_module(path, "mingpt_model_torch", ours=False)
        mo = load_module(path, "mingpt_model_tga", ours=True)
    finally:
        sys.path.pop(0)
    configs = []
    for m in (mt, mo):
        c = m.GPT.get_default_config()
        c.model_type, c.vocab_size, c.block_size = "gpt-nano", 13, 12
        c.embd_pdrop = c.resid_pdrop = c.attn_pdrop = 0.0
        configs.append(c)
    torch.manual_seed(0)
    model_t, model_o = mt.GPT(configs[0]), mo.GPT(configs[1])
    copy_weights(model_t, model_o)
    rng = np.random.default_rng(1)
    idx = rng.integers(0, 13, size=(2, 12))
    targets = rng.integers(0, 13, size=(2, 12))
    targets[1, :4] = -1
    run_both(model_t, model_o, idx, targets)
    # greedy generation from the same weights picks the same tokens
    model_t.eval()
    model_o.eval()
    import tinygradattn as tga
    with torch.no_grad():
        gen_t = model_t.generate(torch.tensor(idx[:, :3]), 6, do_sample=False)
    with tga.no_grad():
        gen_o = model_o.generate(tga.tensor(idx[:, :3]), 6, do_sample=False)
    assert gen_o.tolist() == gen_t.tolist()
