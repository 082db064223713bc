"""Seq2SeqTransformer: shapes, masks, decoding (cache, beam search), errors, a short training."""
import time

import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn.models import Seq2SeqConfig, Seq2SeqTransformer

PAD, BOS, EOS = 0, 1, 2


def tiny(**kw):
    cfg = dict(src_vocab_size=13, tgt_vocab_size=13, d_model=16, nhead=2, num_encoder_layers=2,
               num_decoder_layers=2, dim_feedforward=32, dropout=0.0, max_len=16)
    cfg.update(kw)
    return Seq2SeqTransformer(Seq2SeqConfig(**cfg))


def test_forward_shape_and_state_dict_names():
    model = tiny()
    src = tga.randint(3, 13, (3, 7))
    tgt = tga.randint(3, 13, (3, 5))
    logits = model(src, tgt)
    assert tuple(logits.shape) == (3, 5, 13) and logits.dtype == tga.float32
    names = list(model.state_dict())
    assert "encoder.layers.1.self_attn.in_proj_weight" in names
    assert "decoder.layers.0.multihead_attn.out_proj.weight" in names
    assert "decoder.norm.weight" in names and "generator.bias" in names
    assert not any(n.startswith("pos") for n in names)           # non-persistent table


def test_padding_does_not_change_non_pad_positions():
    model = tiny().double().eval()
    src = tga.tensor([[5, 6, 7, 8, 0, 0], [9, 4, 3, 5, 6, 7]])
    tgt = tga.tensor([[1, 8, 7, 0, 0], [1, 7, 6, 5, 4]])
    out = model(src, tgt).detach().numpy()
    # the same rows without the padding (and with other pad contents in the target)
    short = model(tga.tensor([[5, 6, 7, 8]]), tga.tensor([[1, 8, 7]])).detach().numpy()
    np.testing.assert_allclose(out[0, :3], short[0], atol=1e-10)
    # causal: changing later target tokens leaves earlier positions alone
    tgt2 = tga.tensor([[1, 8, 7, 3, 3], [1, 7, 6, 9, 9]])
    out2 = model(src, tgt2).detach().numpy()
    np.testing.assert_allclose(out2[:, :3], out[:, :3], atol=1e-10)


def test_gradients_reach_every_parameter():
    model = tiny()
    logits = model(tga.randint(3, 13, (2, 6)), tga.randint(3, 13, (2, 4)))
    tga.nn.functional.cross_entropy(logits.reshape(-1, 13), tga.randint(3, 13, (8,))).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and np.isfinite(p.grad.numpy()).all(), name


def test_greedy_with_and_without_cache_agree():
    tga.manual_seed(1)
    model = tiny(dropout=0.1)
    model.train()
    src = tga.tensor([[5, 6, 7, 8, 9, 0], [3, 4, 0, 0, 0, 0], [12, 11, 10, 9, 8, 7]])
    with_cache = model.greedy_decode(src, max_len=10)
    cross_cached = [w.numpy() for w in model.last_cross_attention]
    without = model.greedy_decode(src, max_len=10, use_cache=False)
    assert model.training                                          # restored after decoding
    assert with_cache.tolist() == without.tolist()
    assert with_cache.shape[0] == 3 and with_cache.shape[1] <= 10
    cross = model.last_cross_attention
    assert len(cross) == 2 and tuple(cross[0].shape) == (3, 2, with_cache.shape[1], 6)
    np.testing.assert_allclose(cross[1].numpy(), cross_cached[1], atol=1e-5)
    np.testing.assert_allclose(cross[0].numpy().sum(-1), 1.0, atol=1e-5)
    assert not cross[0].numpy()[1, :, :, 2:].any()                 # padded source keys


def test_greedy_pads_after_eos():
    model = tiny()
    # make eos the only sensible output: bias the generator towards it
    with tga.no_grad():
        model.generator.bias[EOS] = 100.0
    out = model.greedy_decode(tga.tensor([[5, 6], [7, 8]]), max_len=5)
    assert out.tolist() == [[EOS], [EOS]]


def test_beam_size_one_equals_greedy_and_beams_score_at_least_as_well():
    tga.manual_seed(2)
    model = tiny().eval()
    src = tga.tensor([[5, 6, 7, 8], [9, 10, 3, 0]])
    greedy = model.greedy_decode(src, max_len=8)
    beam1 = model.beam_search(src, beam_size=1, max_len=8)
    assert beam1.tolist() == greedy.tolist()
    beam3 = model.beam_search(src, beam_size=3, max_len=8)
    assert beam3.shape[0] == 2
    assert len(model.last_cross_attention) == 2

    def logprob(tokens):            # sum of log p of the hypothesis up to and including eos
        total = 0.0
        for b, row in enumerate(tokens.tolist()):
            row = row[:row.index(EOS) + 1] if EOS in row else row
            tgt_in = tga.tensor([[BOS] + row[:-1]])
            logp = model(src[b:b + 1], tgt_in).log_softmax(-1).detach().numpy()[0]
            total += sum(logp[i, t] for i, t in enumerate(row))
        return total
    assert logprob(beam3) >= logprob(greedy) - 1e-4


def test_config_and_input_errors():
    with pytest.raises(ValueError, match=r"d_model \(30\).*nhead \(4\)"):
        Seq2SeqConfig(10, 10, d_model=30, nhead=4)
    with pytest.raises(ValueError, match="eos_id 12"):
        Seq2SeqConfig(10, 10, eos_id=12)
    model = tiny(max_len=8)
    with pytest.raises(ValueError, match="length 9, longer than max_len 8"):
        model(tga.randint(3, 13, (1, 9)), tga.randint(3, 13, (1, 4)))
    with pytest.raises(ValueError, match="tgt_in has length 9"):
        model(tga.randint(3, 13, (1, 4)), tga.randint(3, 13, (1, 9)))
    with pytest.raises(ValueError, match="max_len 8 must be in 1..7"):
        model.greedy_decode(tga.randint(3, 13, (1, 4)), max_len=8)
    with pytest.raises(ValueError, match="int64 token ids"):
        model(tga.randn(1, 4), tga.randint(3, 13, (1, 4)))
    with pytest.raises(ValueError, match="beam_size"):
        model.beam_search(tga.randint(3, 13, (1, 4)), beam_size=0)


# ---- a short training run ---------------------------------------------------------------------
def _reverse_batch(rng, n, lo, hi):
    """src: digits (tokens 3..12) padded; tgt_in = bos + reversed; tgt_out = reversed + eos."""
    L = hi + 1
    src = np.zeros((n, hi), np.int64)
    tin = np.zeros((n, L), np.int64)
    tout = np.zeros((n, L), np.int64)
    for i in range(n):
        k = rng.integers(lo, hi + 1)
        d = rng.integers(3, 13, k)
        src[i, :k] = d
        tin[i, 0], tin[i, 1:k + 1] = BOS, d[::-1]
        tout[i, :k], tout[i, k] = d[::-1], EOS
    return tga.tensor(src), tga.tensor(tin), tga.tensor(tout)


@pytest.fixture
def one_thread():
    """Tiny GEMMs gain nothing from threads, and on a busy shared machine OpenMP barriers
    waiting for descheduled threads made this test ~10x slower."""
    tga.set_num_threads(1)
    yield
    tga.set_num_threads(None)


def test_tiny_model_learns_to_reverse_short_digit_sequences(one_thread):
    from tinygradattn.optim import Adam
    tga.manual_seed(0)
    rng = np.random.default_rng(0)
    model = tiny(d_model=32, nhead=4, dim_feedforward=64, num_encoder_layers=1,
                 num_decoder_layers=1, max_len=8)
    opt = Adam(model.parameters(), lr=5e-3)
    start = time.perf_counter()
    for step in range(900):     # 500 steps ended at 0.93-1.0 depending on rounding order
        src, tin, tout = _reverse_batch(rng, 32, 2, 5)
        loss = tga.nn.functional.cross_entropy(model(src, tin).reshape(-1, 13),
                                               tout.reshape(-1), ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        opt.step()
    elapsed = time.perf_counter() - start
    src, _, tout = _reverse_batch(np.random.default_rng(123), 200, 2, 5)
    pred = model.greedy_decode(src, max_len=7).numpy()
    want = tout.numpy()
    exact = np.mean([list(p[:list(w).index(EOS) + 1]) == list(w[:list(w).index(EOS) + 1])
                     for p, w in zip(pred, want)])
    assert exact >= 0.95, (exact, float(loss), elapsed)   # 1.0 at seed 0; ~6 s on 2 idle cores
