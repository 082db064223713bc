"""Train a character-level GPT on Tiny Shakespeare with nanoGPT's CPU recipe.

    python examples/char_gpt.py [--iters 2000] [--eval-interval 250] [--out DIR]
    python examples/char_gpt.py --torch          # the same recipe in PyTorch, for comparison

The recipe is nanoGPT's "shakespeare_char on a CPU": n_layer=4, n_head=4, n_embd=128,
block_size=64, batch_size=12, dropout 0, no biases in the Linear and LayerNorm layers
(bias=False: nanoGPT's train.py default, which that recipe keeps); AdamW (lr 1e-3, betas (0.9, 0.99), weight decay 0.1
on 2-D weights only), 100 warm-up steps then cosine decay to 1e-4 at the last iteration,
gradients clipped to norm 1.0. Characters are the tokens; the first 90% of the text trains,
the last 10% validates. Every --eval-interval iterations (and at 0 and the end) it prints the
mean loss over 20 random validation batches with the wall time so far, and at the end a
sample. With --out DIR it writes DIR/log.jsonl (one JSON object per evaluation),
DIR/sample.txt and DIR/summary.json.
"""
import argparse
import json
import math
import pathlib
import time
import types

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"

RECIPE = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, dropout=0.0,
              bias=False, lr=1e-3, min_lr=1e-4, warmup=100, betas=(0.9, 0.99), weight_decay=0.1,
              grad_clip=1.0, eval_batches=20)


def lr_at(step, max_iters):
    """Warm-up for RECIPE['warmup'] steps, then cosine decay to min_lr at max_iters."""
    lr, min_lr, warmup = RECIPE["lr"], RECIPE["min_lr"], RECIPE["warmup"]
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, max_iters - warmup))
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


class Chars:
    """Character vocabulary: encode a string to ids, decode ids to a string."""

    def __init__(self, text):
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def encode(self, text):
        return [self.index[c] for c in text]

    def decode(self, ids):
        return "".join(self.chars[i] for i in ids)


# ---- tinygradattn ----------------------------------------------------------------------------
class TgaRecipe:
    """The model, batches, training step and sampling, in tinygradattn."""

    name = "tinygradattn"

    def __init__(self, ids, n_train, vocab_size, max_iters, seed):
        import tinygradattn as tga
        from tinygradattn.models import GPT, GPTConfig
        from tinygradattn.nn.utils import clip_grad_norm_
        from tinygradattn.optim.lr_scheduler import LambdaLR
        self.tga, self.clip = tga, clip_grad_norm_
        tga.manual_seed(seed)
        data = tga.tensor(ids)                                               # (N,) int64
        self.splits = {"train": data[:n_train], "val": data[n_train:]}
        cfg = GPTConfig(vocab_size=vocab_size, block_size=RECIPE["block_size"],
                        n_layer=RECIPE["n_layer"], n_head=RECIPE["n_head"],
                        n_embd=RECIPE["n_embd"], dropout=RECIPE["dropout"],
                        bias=RECIPE["bias"])
        self.model = GPT(cfg)
        self.opt = self.model.configure_optimizers(RECIPE["weight_decay"], RECIPE["lr"],
                                                   RECIPE["betas"])
        self.sched = LambdaLR(self.opt, lambda s: lr_at(s, max_iters) / RECIPE["lr"])
        self.offsets = tga.arange(RECIPE["block_size"] + 1)                   # (T + 1,)

    def batch(self, split):
        data = self.splits[split]
        B, T = RECIPE["batch_size"], RECIPE["block_size"]
        start = self.tga.randint(0, data.shape[0] - T, (B, 1))              # (B, 1)
        chunk = data[start + self.offsets]                                   # (B, T + 1)
        return chunk[:, :-1], chunk[:, 1:]                                   # (B, T), (B, T)

    def step(self, x, y):
        self.model.train()
        _, loss = self.model(x, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.clip(self.model.parameters(), RECIPE["grad_clip"])
        self.opt.step()
        self.sched.step()
        return loss.item()

    def evaluate(self):
        self.model.eval()
        with self.tga.no_grad():
            losses = [self.model(*self.batch("val"))[1].item()
                      for _ in range(RECIPE["eval_batches"])]
        return sum(losses) / len(losses)

    def sample(self, prompt_ids, n_new):
        self.model.eval()
        idx = self.tga.tensor([prompt_ids])
        return self.model.generate(idx, n_new, temperature=0.8, top_k=200)[0].tolist()

    def lr(self):
        return self.sched.get_last_lr()[0]


# ---- PyTorch (the same recipe, for comparison) ---------------------------------------------------
def torch_gpt(torch, vocab_size):
    """nanoGPT's GPT in PyTorch at the recipe's size: the twin in tests/torch_gpt.py (same
    names as ours), given nanoGPT's initialisation."""
    import sys
    if str(ROOT) not in sys.path:                # the repository's tests/ (the PyTorch oracles)
        sys.path.insert(0, str(ROOT))
    from tests.torch_gpt import torch_gpt as twin
    cfg = types.SimpleNamespace(vocab_size=vocab_size, **{
        k: RECIPE[k] for k in ("block_size", "n_layer", "n_head", "n_embd", "dropout", "bias")})
    model = twin(torch, cfg)
    nn = torch.nn
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
    for name, p in model.named_parameters():
        if name.endswith("c_proj.weight"):
            nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.n_layer))
    return model


class TorchRecipe(TgaRecipe):
    """The same recipe in PyTorch: same batches logic, optimizer groups and schedule."""

    name = "torch"

    def __init__(self, ids, n_train, vocab_size, max_iters, seed):
        import torch
        self.torch = torch
        torch.manual_seed(seed)
        data = torch.tensor(ids, dtype=torch.int64)
        self.splits = {"train": data[:n_train], "val": data[n_train:]}
        self.model = torch_gpt(torch, vocab_size)
        params = list(self.model.parameters())
        groups = [{"params": [p for p in params if p.dim() >= 2],
                   "weight_decay": RECIPE["weight_decay"]},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        self.opt = torch.optim.AdamW(groups, lr=RECIPE["lr"], betas=RECIPE["betas"])
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: lr_at(s, max_iters) / RECIPE["lr"])
        self.offsets = torch.arange(RECIPE["block_size"] + 1)

    def batch(self, split):
        data = self.splits[split]
        B, T = RECIPE["batch_size"], RECIPE["block_size"]
        start = self.torch.randint(0, data.shape[0] - T, (B, 1))
        chunk = data[start + self.offsets]
        return chunk[:, :-1], chunk[:, 1:]

    def step(self, x, y):
        self.model.train()
        _, loss = self.model(x, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.torch.nn.utils.clip_grad_norm_(self.model.parameters(), RECIPE["grad_clip"])
        self.opt.step()
        self.sched.step()
        return loss.item()

    def evaluate(self):
        self.model.eval()
        with self.torch.no_grad():
            losses = [self.model(*self.batch("val"))[1].item()
                      for _ in range(RECIPE["eval_batches"])]
        return sum(losses) / len(losses)

    def sample(self, prompt_ids, n_new):
        torch = self.torch
        self.model.eval()
        idx = torch.tensor([prompt_ids])
        with torch.no_grad():
            for _ in range(n_new):
                logits, _ = self.model(idx[:, -RECIPE["block_size"]:])
                logits = logits[:, -1, :] / 0.8
                probs = torch.softmax(logits, dim=-1)
                idx = torch.cat([idx, torch.multinomial(probs, 1)], dim=1)
        return idx[0].tolist()


# ---- the training loop (the same for both) -------------------------------------------------------
def train(recipe, max_iters, eval_interval, log):
    """Train for max_iters steps; evaluate at 0, every eval_interval and at the end.
    Returns the list of log records."""
    records, recent = [], []
    start = time.perf_counter()
    eval_time = 0.0
    for it in range(max_iters + 1):
        if it % eval_interval == 0 or it == max_iters:
            t0 = time.perf_counter()
            val = recipe.evaluate()
            eval_time += time.perf_counter() - t0
            wall = time.perf_counter() - start
            train_loss = sum(recent) / len(recent) if recent else float("nan")
            rec = {"iter": it, "val_loss": round(val, 4), "train_loss": round(train_loss, 4),
                   "lr": recipe.lr(), "wall_s": round(wall, 2),
                   "train_s": round(wall - eval_time, 2)}
            records.append(rec)
            log(f"[{recipe.name}] iter {it:5d}  val loss {val:.4f}  train loss "
                f"{train_loss:.4f}  lr {rec['lr']:.2e}  wall {wall:7.1f} s")
            recent = []
        if it == max_iters:
            break
        recent.append(recipe.step(*recipe.batch("train")))
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="a text file")
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--eval-interval", type=int, default=250)
    parser.add_argument("--out", default=None, help="directory for log.jsonl and sample.txt")
    parser.add_argument("--sample-len", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--torch", action="store_true", help="run the recipe in PyTorch")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for either library (default: theirs)")
    args = parser.parse_args(argv)

    text = pathlib.Path(args.data).read_text(encoding="utf-8")
    chars = Chars(text)
    ids = chars.encode(text)
    n_train = int(0.9 * len(ids))
    if args.threads:
        if args.torch:
            import torch
            torch.set_num_threads(args.threads)
        else:
            import tinygradattn as tga
            tga.set_num_threads(args.threads)
    cls = TorchRecipe if args.torch else TgaRecipe
    print(f"{len(ids)} characters, vocabulary {len(chars.chars)}, {n_train} train / "
          f"{len(ids) - n_train} val; {cls.name}, {args.iters} iterations", flush=True)
    recipe = cls(ids, n_train, len(chars.chars), args.iters, args.seed)

    records = train(recipe, args.iters, args.eval_interval, lambda s: print(s, flush=True))
    t0 = time.perf_counter()
    sample = chars.decode(recipe.sample(chars.encode("\n"), args.sample_len))
    sample_s = time.perf_counter() - t0
    final = records[-1]
    print(f"final val loss {final['val_loss']:.4f}, training wall time {final['wall_s']:.1f} s "
          f"({final['train_s']:.1f} s without evaluation); sample of {args.sample_len} "
          f"characters in {sample_s:.1f} s:")
    print(sample)
    if args.out:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        name = "torch_" if args.torch else ""
        with open(out / f"{name}log.jsonl", "w", encoding="utf-8") as f:
            for rec in records:
                f.write(json.dumps(rec) + "\n")
        (out / f"{name}sample.txt").write_text(sample, encoding="utf-8")
        summary = {"library": cls.name, "iters": args.iters, "final_val_loss": final["val_loss"],
                   "wall_s": final["wall_s"], "train_s": final["train_s"],
                   "sample_s": round(sample_s, 2), "recipe": RECIPE}
        (out / f"{name}summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return records


if __name__ == "__main__":
    main()
