"""Translation-style tasks for the Trainer: an encoder-decoder learns source -> target ids.

numwords (the default task: integers in digits -> English words, data from `numwords.py`)
and reverse / sort / copy (digit strings, for quick checks). Each task owns its data,
builds its model and judges it; the protocol is in `tasks/__init__.py`.
"""
import os
import random

from ..autograd import no_grad
from ..nn import functional as F
from . import numwords as nw
from .common import _ids, _py_rng_state, _set_py_rng_state
from .numwords import BOS, EOS, PAD


class Seq2SeqTask:
    """Base of the translation-style tasks: examples are (source ids, target ids) pairs.

    Subclasses define src_vocab, tgt_vocab, sample_example(rng) -> item, encode(item) ->
    (src ids ending in <eos>, tgt ids <bos> .. <eos>), test_items (held out), and the model
    defaults MODEL (d_model, nhead, layers, dim_feedforward, dropout).
    """

    name = None
    headline = "exact_match"
    device = "cpu"
    MODEL = dict(d_model=128, nhead=4, n_layer=2, dim_feedforward=512, dropout=0.1)
    n_quick_eval = 500

    def __init__(self, batch_size=128, seed=0, model=None, n_val_loss=512):
        self.batch_size, self.seed = batch_size, seed
        self.model_args = {**self.MODEL, **{k: v for k, v in (model or {}).items()
                                           if v is not None}}
        self.rng = random.Random(seed)
        self.n_val_loss = n_val_loss

    # -- data --
    def _tensors(self, items):
        pairs = [self.encode(it) for it in items]
        src = _ids(nw.pad_batch([s for s, _ in pairs]), self.device)                # (B, S)
        tgt = nw.pad_batch([t for _, t in pairs])
        tgt_in = _ids([t[:-1] for t in tgt], self.device)                           # (B, T)
        tgt_out = _ids([t[1:] for t in tgt], self.device)                           # (B, T)
        return src, tgt_in, tgt_out

    def train_batch(self):
        return self._tensors([self.sample_example(self.rng) for _ in range(self.batch_size)])

    def loss(self, model, batch):
        src, tgt_in, tgt_out = batch
        logits = model(src, tgt_in)                                                 # (B, T, V)
        V = logits.shape[-1]
        loss = F.cross_entropy(logits.reshape(-1, V), tgt_out.reshape(-1), ignore_index=PAD)
        return loss, int((tgt_out != PAD).sum())

    def get_state(self):
        return {"rng": _py_rng_state(self.rng)}

    def set_state(self, state):
        _set_py_rng_state(self.rng, state["rng"])

    # -- model --
    def max_len(self):
        return max(self.max_src_len, self.max_tgt_len)

    def model_config(self):
        from ..models import Seq2SeqConfig
        a = self.model_args
        return Seq2SeqConfig(len(self.src_vocab), len(self.tgt_vocab), d_model=a["d_model"],
                             nhead=a["nhead"], num_encoder_layers=a["n_layer"],
                             num_decoder_layers=a["n_layer"],
                             dim_feedforward=a["dim_feedforward"], dropout=a["dropout"],
                             max_len=self.max_len(), pad_id=PAD, bos_id=BOS, eos_id=EOS)

    def build_model(self):
        from ..models import Seq2SeqTransformer
        return Seq2SeqTransformer(self.model_config())

    def config(self):
        return {"task": self.name, "model": self.model_config().to_dict()}

    # -- evaluation --
    def translate(self, model, items, chunk=500):
        """Greedy outputs (token id lists, eos and pad stripped) and cross-attention maps."""
        outs, attn = [], []
        for i in range(0, len(items), chunk):
            part = items[i:i + chunk]
            src = _ids(nw.pad_batch([self.encode(it)[0] for it in part]), self.device)
            ys = model.greedy_decode(src, max_len=self.max_tgt_len - 1).tolist()
            for row in ys:
                outs.append([t for t in row[:row.index(EOS)] if t >= 3] if EOS in row
                            else [t for t in row if t >= 3])
            attn.append(model.last_cross_attention)
        return outs, attn

    def evaluate(self, model, final=True, items=None):
        """val_loss (teacher forcing, the first n_val_loss held-out items) and exact_match
        (greedy decoding) over every held-out item, or over n_quick_eval of them when not
        final (the evaluations during training)."""
        if items is None:
            items = self.test_items if final else self.test_items[:self.n_quick_eval]
        model.eval()
        with no_grad():
            loss, n = 0.0, 0
            val = items[:self.n_val_loss]
            for i in range(0, len(val), 256):
                batch = self._tensors(val[i:i + 256])
                part, tokens = self.loss(model, batch)
                loss += float(part) * tokens
                n += tokens
            outs, _ = self.translate(model, items)
        wanted = [[t for t in self.encode(it)[1] if t >= 3] for it in items]
        exact = sum(o == w for o, w in zip(outs, wanted)) / len(items)
        return {"val_loss": loss / n, "exact_match": exact, "n_eval": len(items)}

    # -- presentation --
    def src_tokens(self, item):
        return [self.src_vocab[i] for i in self.encode(item)[0]]

    def show_src(self, item):
        return "".join(self.src_tokens(item)[:-1])

    def show_tgt(self, ids):
        return " ".join(self.tgt_vocab[i] for i in ids)

    def report(self, model, out_dir, n_samples=12, n_maps=3):
        """samples.md (a table of greedy translations of held-out items, wrong ones marked)
        and attention_<i>.png (cross-attention of the first n_maps samples). Paths returned."""
        items = self.samples(n_samples)
        outs, attn = self.translate(model, items)
        lines = ["| input | output | correct |", "|---|---|---|"]
        for it, o in zip(items, outs):
            want = [t for t in self.encode(it)[1] if t >= 3]
            lines.append(f"| {self.show_src(it)} | {self.show_tgt(o)} | "
                         f"{'yes' if o == want else 'no, expected: ' + self.show_tgt(want)} |")
        samples = os.path.join(out_dir, "samples.md")
        with open(samples, "w") as f:
            f.write(f"# {self.name}: greedy decoding of held-out examples\n\n"
                    + "\n".join(lines) + "\n")
        maps = []
        for i in range(min(n_maps, len(items))):
            weights = [layer[i].mean(0).tolist() for layer in attn[0]]   # per layer (L, S)
            path = os.path.join(out_dir, f"attention_{i + 1}.png")
            plot_cross_attention(weights, self.src_tokens(items[i]),
                                 [self.tgt_vocab[t] for t in outs[i]] + ["<eos>"], path,
                                 title=f"{self.show_src(items[i])}")
            maps.append(path)
        return {"samples": samples, "attention": maps}

    def samples(self, n):
        return self.test_items[:n]


class NumwordsTask(Seq2SeqTask):
    """Integers 0..999,999,999 in digits -> English words; 2,000 numbers held out.

    No dropout by default: the data are unlimited and never repeat, and dropout 0.1 slowed
    learning so much that 400 steps reached only ~99.7% instead of 99.85% in 300.
    """

    MODEL = dict(Seq2SeqTask.MODEL, dropout=0.0)

    name = "numwords"
    src_vocab, tgt_vocab = nw.SRC_VOCAB, nw.TGT_VOCAB
    max_src_len, max_tgt_len = nw.MAX_SRC_LEN, nw.MAX_TGT_LEN

    def __init__(self, batch_size=128, seed=0, model=None, n_test=2000):
        super().__init__(batch_size, seed, model)
        self.data = nw.NumberWordsData(n_test=n_test, seed=seed)
        self.rng = self.data.rng                     # the sampler that skips held-out numbers
        self.test_items = self.data.test_numbers

    def sample_example(self, rng):
        while True:
            n = nw.sample_number(rng)
            if n not in self.data._held_out:
                return n

    def encode(self, n):
        return nw.encode_source(n), nw.encode_target(n)

    def parse(self, text):
        """A number typed by a user -> an item; ValueError with a clear message."""
        digits = text.replace(",", "").replace("_", "")
        if not digits.isdigit() or not 0 <= int(digits) <= nw.MAX_NUMBER:
            raise ValueError(f"'{text}' is not an integer in 0..{nw.MAX_NUMBER:,}")
        return int(digits)

    def samples(self, n):
        """A spread of lengths: held-out numbers with 1, 2, ..., 9 digits, then others."""
        by_len = {}
        for x in self.test_items:
            by_len.setdefault(len(str(x)), x)
        picked = [by_len[k] for k in sorted(by_len, reverse=True)]
        return (picked + [x for x in self.test_items if x not in picked])[:n]


class DigitsTask(Seq2SeqTask):
    """reverse / sort / copy a string of 1..max_digits digits; 500 held-out strings."""

    src_vocab = nw.SPECIALS + list("0123456789")
    tgt_vocab = src_vocab
    MODEL = dict(d_model=64, nhead=4, n_layer=1, dim_feedforward=256, dropout=0.0)
    OPS = {"reverse": lambda s: s[::-1], "sort": lambda s: "".join(sorted(s)),
           "copy": lambda s: s}

    def __init__(self, name, batch_size=64, seed=0, model=None, max_digits=8, n_test=500):
        super().__init__(batch_size, seed, model)
        self.name, self.op = name, self.OPS[name]
        self.max_digits = max_digits
        self.max_src_len, self.max_tgt_len = max_digits + 1, max_digits + 2
        test_rng = random.Random(10_000 + seed)
        self.test_items = [self.sample_example(test_rng) for _ in range(n_test)]

    def sample_example(self, rng):
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(1, self.max_digits)))

    def encode(self, s):
        ids = [self.src_vocab.index(c) for c in s]
        out = [self.src_vocab.index(c) for c in self.op(s)]
        return ids + [EOS], [BOS] + out + [EOS]

    def parse(self, text):
        if not text.isdigit() or not 1 <= len(text) <= self.max_digits:
            raise ValueError(f"'{text}' is not a string of 1..{self.max_digits} digits")
        return text

    def config(self):
        return {**super().config(), "max_digits": self.max_digits}


def plot_cross_attention(weights, src_tokens, out_tokens, path, title=""):
    """One heatmap per decoder layer: output words (rows) x source tokens (columns).

    weights: per layer a list of rows (L_out, S) of head-averaged attention probabilities.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = len(weights)
    L, S = len(out_tokens), len(src_tokens)
    fig, axes = plt.subplots(1, n, figsize=(1.2 + 0.42 * S * n + 1.1 * n, 0.9 + 0.3 * L),
                             dpi=90, squeeze=False)
    for k, (ax, w) in enumerate(zip(axes[0], weights)):
        ax.imshow([row[:S] for row in w[:L]], cmap="viridis", vmin=0.0, vmax=1.0,
                  aspect="auto")
        ax.set_xticks(range(S), src_tokens, fontsize=8)
        ax.set_yticks(range(L), out_tokens if k == 0 else [""] * L, fontsize=8)
        ax.set_title(f"decoder layer {k + 1}", fontsize=9)
        ax.tick_params(length=0)
    fig.suptitle(f"cross-attention (mean over heads): {title}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
