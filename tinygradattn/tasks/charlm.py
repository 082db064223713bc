"""A character-level language model for the Trainer: a GPT on the characters of a text file.

CHARLM_PRESETS are nanoGPT's shakespeare_char configurations (`nano` is its CPU recipe).
"""
import os
import random

from ..autograd import no_grad
from .common import _ids, _py_rng_state, _RNGNeutral, _set_py_rng_state


CHARLM_PRESETS = {
    # nanoGPT's shakespeare_char CPU configuration
    "nano": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, dropout=0.0,
                 lr=1e-3, min_lr=1e-4, warmup=100, steps=2000, eval_interval=250),
    "small": dict(n_layer=6, n_head=6, n_embd=192, block_size=128, batch_size=16, dropout=0.1,
                  lr=1e-3, min_lr=1e-4, warmup=100, steps=3000, eval_interval=250),
    # nanoGPT's shakespeare_char GPU configuration (slow on a CPU)
    "base": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64, dropout=0.2,
                 lr=1e-3, min_lr=1e-4, warmup=100, steps=5000, eval_interval=250),
}


def gpt_config(preset, vocab_size):
    from ..models import GPTConfig
    return GPTConfig(vocab_size=vocab_size, block_size=preset["block_size"],
                     n_layer=preset["n_layer"], n_head=preset["n_head"],
                     n_embd=preset["n_embd"], dropout=preset["dropout"], bias=True)


class CharLMTask:
    """A GPT on the characters of a text file: the first 90% trains, the last 10% validates.

    Args: path (text file) or text, preset (a dict like CHARLM_PRESETS[...]), seed.
    """

    name = "charlm"
    headline = "val_loss"
    device = "cpu"

    def __init__(self, path=None, preset=None, seed=0, text=None, chars=None, eval_batches=20,
                 sample_chars=200):
        if text is None:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        self.preset = dict(preset or CHARLM_PRESETS["nano"])
        self.chars = "".join(sorted(set(text))) if chars is None else chars
        index = {c: i for i, c in enumerate(self.chars)}
        unknown = sorted(set(text) - set(index))
        if unknown:
            raise ValueError(f"the text has characters the model's vocabulary lacks: "
                             f"{''.join(unknown)[:20]!r}")
        self.ids = [index[c] for c in text]
        self.path = path
        T = self.preset["block_size"]
        n = len(self.ids)
        self.n_train = int(0.9 * n)
        if self.n_train - T - 1 < 1 or n - self.n_train - T - 1 < 1:
            raise ValueError(f"the text is too short ({n} characters) for block_size {T}: "
                             f"each 10% validation part needs more than {T + 1}")
        self.batch_size, self.block_size = self.preset["batch_size"], T
        self.rng = random.Random(seed)
        self.eval_batches, self.sample_chars = eval_batches, sample_chars
        self.last_sample = None

    def default_prompt(self):
        """A newline when the text has one (samples then start at a line), else its first
        character."""
        return "\n" if "\n" in self.chars else self.chars[0]

    def encode(self, text):
        index = {c: i for i, c in enumerate(self.chars)}
        missing = sorted(set(text) - set(index))
        if missing:
            raise ValueError(f"the prompt has characters the model never saw: {missing[:10]}")
        return [index[c] for c in text]

    def decode(self, ids):
        return "".join(self.chars[i] for i in ids)

    def _batch(self, rng, lo, hi):
        T = self.block_size
        starts = [rng.randrange(lo, hi - T - 1) for _ in range(self.batch_size)]
        x = _ids([self.ids[s:s + T] for s in starts], self.device)                  # (B, T)
        y = _ids([self.ids[s + 1:s + T + 1] for s in starts], self.device)          # (B, T)
        return x, y

    def train_batch(self):
        return self._batch(self.rng, 0, self.n_train)

    def loss(self, model, batch):
        x, y = batch
        _, loss = model(x, y)
        return loss, x.numel()

    def get_state(self):
        return {"rng": _py_rng_state(self.rng)}

    def set_state(self, state):
        _set_py_rng_state(self.rng, state["rng"])

    def model_config(self):
        return gpt_config(self.preset, len(self.chars))

    def build_model(self):
        from ..models import GPT
        return GPT(self.model_config())

    def config(self):
        from dataclasses import asdict
        return {"task": self.name, "model": asdict(self.model_config()), "chars": self.chars}

    def evaluate(self, model, final=True):
        rng = random.Random(1234)                    # the same validation batches every time
        model.eval()
        with no_grad():
            total = 0.0
            for _ in range(self.eval_batches):
                total += float(self.loss(model, self._batch(rng, self.n_train, len(self.ids)))[0])
        self.last_sample = self.sample(model, self.default_prompt(), self.sample_chars)
        return {"val_loss": total / self.eval_batches, "sample": self.last_sample}

    def sample(self, model, prompt, max_new_tokens, temperature=1.0, top_k=None, seed=0):
        ids = self.encode(prompt)[-self.block_size:]
        with _RNGNeutral(seed):
            out = model.generate(_ids([ids], self.device), max_new_tokens,
                                 temperature=temperature, top_k=top_k)
        return self.decode(out[0].tolist())

    def report(self, model, out_dir):
        path = os.path.join(out_dir, "sample.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.sample(model, self.default_prompt(), 500))
        return {"sample": path}
