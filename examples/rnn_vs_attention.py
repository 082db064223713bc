"""Why attention replaced recurrence, measured: an RNN and a transformer of the same size on a
task whose answer lies k steps back.

    python examples/rnn_vs_attention.py                  # a few minutes on 2 cores; docs/
    python examples/rnn_vs_attention.py --quick --out /tmp/rva      # seconds: a smoke run
    python examples/rnn_vs_attention.py --replot         # redraw docs/ from its JSON

The task: a sequence of k + 1 random tokens (vocabulary 8); at the last position, name the
first one, k steps back. Chance is 1/8. Two models with the same parameter budget learn it:

- RNN: nn.RNN (Elman, tanh) over one-hot tokens (its input weights are the embedding) and a
  linear head on the last hidden state;
- transformer: our GPT (one pre-LN block, causal attention, learned positions), read at the
  last position.

It writes three figures and the numbers (rnn_vs_attention.json / .md) into --out:

(a) rnn_vs_attention_accuracy.png: held-out accuracy against k. The RNN falls to chance once
    k is a few dozen steps; attention reaches the first token in one step at any k.
(b) rnn_vs_attention_gradnorm.png: |dLoss/dh_t| against t for the RNN at k = the largest
    (log scale), at initialisation and after training, beside the transformer's
    |dLoss/dx_t| at its input: the RNN's signal from the loss shrinks geometrically with each
    step back (the vanishing gradient) before it reaches the token it must remember.
(c) rnn_vs_attention_time.png: training time per step and ops per step against the sequence
    length: the recurrence runs T steps one after the other, a few small ops each, while the
    transformer runs the same few large ops at any length.
"""
import argparse
import json
import os
import statistics
import time

import tinygradattn as tga
from tinygradattn import nn
from tinygradattn.autograd import Function
from tinygradattn.models import GPT, GPTConfig
from tinygradattn.nn import functional as F

VOCAB = 8


# ---- the task ---------------------------------------------------------------------------------
def make_batch(batch_size, k, generator):
    """tokens (B, k + 1) uniform in [0, VOCAB); target (B,): the first token, k steps before
    the last position."""
    tokens = tga.randint(0, VOCAB, (batch_size, k + 1), generator=generator)
    return tokens, tokens[:, 0].contiguous()


# ---- the two models ---------------------------------------------------------------------------
class RNNModel(nn.Module):
    """One-hot tokens -> nn.RNN (tanh) -> linear head on the last hidden state.

    The one-hot input makes weight_ih_l0 the embedding table (an embedding followed by the
    input projection is one matrix), and keeps the input out of the graph: the RNN slices it
    per step for free.
    """

    def __init__(self, hidden):
        super().__init__()
        self.rnn = nn.RNN(VOCAB, hidden, batch_first=True)
        self.head = nn.Linear(hidden, VOCAB)

    def forward(self, tokens):                                               # (B, T)
        x = F.one_hot(tokens, VOCAB).float()                                 # (B, T, V)
        _, h_n = self.rnn(x)                                                 # (1, B, H)
        return self.head(h_n[0])                                             # (B, V)


class TransformerModel(nn.Module):
    """Our GPT (one block, causal), its logits at the last position."""

    def __init__(self, n_embd, block_size, n_layer=1, n_head=2):
        super().__init__()
        self.gpt = GPT(GPTConfig(vocab_size=VOCAB, block_size=block_size, n_layer=n_layer,
                                 n_head=n_head, n_embd=n_embd))

    def forward(self, tokens):                                               # (B, T)
        logits, _ = self.gpt(tokens)                                         # (B, T, V)
        return logits[:, -1]                                                 # (B, V)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def rnn_hidden_for(budget):
    """The hidden size whose RNNModel has the parameter count closest to budget:
    H*V + H*H + 2H (the RNN) + H*V + V (the head)."""
    return min(range(1, 1024), key=lambda h: abs(h * h + (2 * VOCAB + 2) * h + VOCAB - budget))


# ---- training and evaluation ------------------------------------------------------------------
def train(model, k, steps, batch_size, lr, seed):
    """Adam with clipped gradients on fresh batches. Returns the mean loss of the last 20
    steps, and the first step after which the batch accuracy averaged over 20 steps reached
    90% (None if it never did)."""
    gen = tga.Generator().manual_seed(seed)
    opt = tga.optim.Adam(model.parameters(), lr=lr)
    losses, hits, learned_at = [], [], None
    for step in range(steps):
        tokens, target = make_batch(batch_size, k, gen)
        logits = model(tokens)                                               # (B, V)
        loss = F.cross_entropy(logits, target)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        hits.append(float((logits.detach().argmax(-1) == target).float().mean()))
        if learned_at is None and len(hits) >= 20 and statistics.fmean(hits[-20:]) >= 0.9:
            learned_at = step + 1
    return statistics.fmean(losses[-20:]), learned_at


@tga.no_grad()
def accuracy(model, k, n, seed):
    """Held-out accuracy on n fresh sequences (a generator the training never sees)."""
    gen = tga.Generator().manual_seed(10_000 + seed)
    tokens, target = make_batch(n, k, gen)
    return float((model(tokens).argmax(-1) == target).float().mean())


def train_pair(k, seed, args, budget_embd, block_size):
    """Both models, made from one seed (the transformer first, then the RNN sized to its
    parameter count), trained at lag k; returns the models and their numbers."""
    tga.manual_seed(seed)
    gpt = TransformerModel(budget_embd, block_size=block_size)
    rnn = RNNModel(rnn_hidden_for(n_params(gpt)))
    numbers = {}
    for name, model, lr in (("rnn", rnn, args.lr_rnn), ("transformer", gpt, args.lr_transformer)):
        t0 = time.perf_counter()
        loss, learned_at = train(model, k, args.steps, args.batch_size, lr, seed)
        numbers[name] = dict(acc=accuracy(model, k, args.n_eval, seed), loss=loss,
                             learned_at=learned_at, train_s=time.perf_counter() - t0)
    return rnn, gpt, numbers


def accuracy_sweep(ks, args, budget_embd):
    """Train both models at each k from each seed; returns a row of numbers per k (means over
    the seeds, and each seed's) and the two models of the first seed at the last k."""
    rows, kept = [], None
    seeds = [args.seed + i for i in range(args.seeds)]
    for k in ks:
        row = dict(k=k)
        for i, seed in enumerate(seeds):
            rnn, gpt, numbers = train_pair(k, seed, args, budget_embd, max(ks) + 1)
            if i == 0:
                kept = (rnn, gpt)
            for name, values in numbers.items():
                for key, value in values.items():
                    row.setdefault(f"{name}_{key}s", []).append(value)
        for name in ("rnn", "transformer"):
            row[f"{name}_acc"] = statistics.fmean(row[f"{name}_accs"])
        rows.append(row)
        print(f"k={k:3d}  accuracy  RNN {row['rnn_acc']:6.1%}  transformer "
              f"{row['transformer_acc']:6.1%}   steps to 90%: RNN "
              f"{', '.join(map(_steps, row['rnn_learned_ats']))}; transformer "
              f"{', '.join(map(_steps, row['transformer_learned_ats']))}   (train "
              f"{sum(row['rnn_train_ss']):5.1f} s / {sum(row['transformer_train_ss']):5.1f} s)",
              flush=True)
    return rows, kept[0], kept[1]


def _accs(values):
    return f"{statistics.fmean(values):.1%} (" + ", ".join(f"{v:.0%}" for v in values) + ")"


def _steps(learned_at):
    return "never" if learned_at is None else str(learned_at)


# ---- (b) the gradient reaching each step ------------------------------------------------------
def rnn_hidden_grad_norms(model, tokens, target):
    """|dLoss/dh_t| (batch mean of the per-sequence norms) for t = 0 .. T-1: the RNN unrolled
    with an RNNCell holding its weights, every h_t kept in the graph with retain_grad."""
    rnn = model.rnn
    cell = nn.RNNCell(rnn.input_size, rnn.hidden_size)
    cell.load_state_dict({name[:-3]: p.detach() for name, p in rnn.named_parameters()})
    x = F.one_hot(tokens, VOCAB).float()                                     # (B, T, V)
    h, hs = None, []
    for t in range(x.shape[1]):
        h = cell(x[:, t], h)                                                 # (B, H)
        h.retain_grad()
        hs.append(h)
    F.cross_entropy(model.head(h), target).backward()
    return [float((g.grad * g.grad).sum(-1).sqrt().mean()) for g in hs]


def transformer_input_grad_norms(model, tokens, target):
    """|dLoss/dx_t| at the transformer's input x = wte(tokens) + wpe(positions), per t."""
    gpt = model.gpt
    tr = gpt.transformer
    T = tokens.shape[1]
    x = tr["wte"](tokens) + tr["wpe"](tga.arange(T))                         # (B, T, C)
    x.retain_grad()
    h = x
    for block in tr["h"]:
        h = block(h)                                                         # (B, T, C)
    logits = gpt.lm_head(tr["ln_f"](h))[:, -1]                               # (B, V)
    F.cross_entropy(logits, target).backward()
    norms = (x.grad * x.grad).sum(-1).sqrt().mean(0)                         # (T,)
    return norms.tolist()


def gradient_norms(k, args, budget_embd, trained_rnn, trained_gpt):
    """(b): norms per step for the RNN at initialisation and trained at k, the transformer's
    too; the initial models are the ones the sweep started from (same seed, same order)."""
    gen = tga.Generator().manual_seed(20_000 + args.seed)
    tokens, target = make_batch(args.batch_size, k, gen)
    tga.manual_seed(args.seed)
    fresh_gpt = TransformerModel(budget_embd, block_size=trained_gpt.gpt.config.block_size)
    fresh_rnn = RNNModel(trained_rnn.rnn.hidden_size)
    return dict(k=k,
                rnn_init=rnn_hidden_grad_norms(fresh_rnn, tokens, target),
                rnn_trained=rnn_hidden_grad_norms(trained_rnn, tokens, target),
                transformer_init=transformer_input_grad_norms(fresh_gpt, tokens, target),
                transformer_trained=transformer_input_grad_norms(trained_gpt, tokens, target))


# ---- (c) time per training step against the sequence length ----------------------------------
class count_ops:
    """Counts the ops run inside the block: every op is one Function.apply call."""

    def __enter__(self):
        self.n, self._apply = 0, Function.__dict__["apply"]
        counter, inner = self, Function.apply

        def counting_apply(cls, *args):
            counter.n += 1
            return inner.__func__(cls, *args)

        Function.apply = classmethod(counting_apply)
        return self

    def __exit__(self, *exc):
        Function.apply = self._apply


def time_step(model, T, batch_size, repeats):
    """Seconds of one training step (forward, backward, Adam) at length T after a warm-up
    step, the fastest of `repeats` (the least disturbed on a shared machine); and the ops its
    forward runs (backward runs one node for each)."""
    opt = tga.optim.Adam(model.parameters(), lr=1e-3)
    gen = tga.Generator().manual_seed(T)
    tokens, target = make_batch(batch_size, T - 1, gen)

    def step(ops=None):
        if ops is None:
            loss = F.cross_entropy(model(tokens), target)
        else:
            with ops:                                   # the forward's ops only
                loss = F.cross_entropy(model(tokens), target)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    ops = count_ops()
    step(ops)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return min(times), ops.n


def timing_sweep(lengths, args, budget_embd, hidden):
    rows = []
    for T in lengths:
        tga.manual_seed(args.seed)
        rnn_s, rnn_ops = time_step(RNNModel(hidden), T, args.batch_size, args.repeats)
        gpt_s, gpt_ops = time_step(TransformerModel(budget_embd, block_size=T), T,
                                   args.batch_size, args.repeats)
        rows.append(dict(T=T, rnn_ms=1e3 * rnn_s, transformer_ms=1e3 * gpt_s, rnn_ops=rnn_ops,
                         transformer_ops=gpt_ops))
        print(f"T={T:4d}  ms/step  RNN {1e3 * rnn_s:7.1f} ({rnn_ops} ops)  transformer "
              f"{1e3 * gpt_s:7.1f} ({gpt_ops} ops)", flush=True)
    return rows


# ---- figures and tables -----------------------------------------------------------------------
def plot_all(results, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter
    paths = []
    acc = results["accuracy"]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(8.4, 3.4), dpi=100)
    ks = [r["k"] for r in acc]
    steps = results["config"]["steps"]
    n_seeds = len(acc[0]["rnn_accs"])
    for name, marker, color, label in (
            ("rnn", "o", "C0", f"RNN ({results['rnn_params']:,} params)"),
            ("transformer", "s", "C1", f"transformer ({results['transformer_params']:,} "
                                       f"params)")):
        ax.plot(ks, [r[f"{name}_acc"] for r in acc], marker + "-", color=color,
                label=f"{label}, mean of {n_seeds} seeds")
        for r in acc:
            ax.plot([r["k"]] * n_seeds, r[f"{name}_accs"], marker, color=color, alpha=0.3,
                    markersize=4)
            learned = [steps * 1.05 if s is None else s for s in r[f"{name}_learned_ats"]]
            ax2.plot([r["k"]] * n_seeds, learned, marker, color=color, alpha=0.6)
        ax2.plot([], [], marker, color=color, label=label.split(" (")[0])
    ax.axhline(1 / VOCAB, color="gray", linestyle=":", label="chance")
    ax.set(xscale="log", xlabel="k (steps between the token and the answer)",
           ylabel="held-out accuracy", ylim=(0, 1.05), title=f"accuracy after {steps} steps")
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 0.3))
    ax2.axhline(steps, color="gray", linestyle=":", label="budget (above: never)")
    ax2.set(xscale="log", xlabel="k", ylabel="training steps", ylim=(0, steps * 1.12),
            title="steps until 90% batch accuracy (each seed)")
    ax2.legend(fontsize=7)
    for a in (ax, ax2):
        _log_ticks(a.xaxis, ks)
    paths.append(_save(fig, plt, out, "accuracy"))

    g = results["gradients"]
    fig, ax = plt.subplots(figsize=(5.2, 3.4), dpi=100)
    steps = range(len(g["rnn_init"]))
    ax.plot(steps, g["rnn_init"], label="RNN |dL/dh_t|, initial", color="C0", linestyle="--")
    last = acc[-1]                                  # the trained models: first seed, last k
    ax.plot(steps, g["rnn_trained"], color="C0",
            label=f"RNN |dL/dh_t|, trained ({last['rnn_accs'][0]:.0%} accuracy)")
    ax.plot(steps, g["transformer_init"], label="transformer |dL/dx_t|, initial", color="C1",
            linestyle="--")
    ax.plot(steps, g["transformer_trained"], color="C1",
            label=f"transformer |dL/dx_t|, trained ({last['transformer_accs'][0]:.0%})")
    ax.set(yscale="log", xlabel="t (the loss is at the last step)",
           ylabel="gradient norm (batch mean)",
           title=f"gradient reaching step t (k = {g['k']})")
    ax.legend(fontsize=7)
    paths.append(_save(fig, plt, out, "gradnorm"))

    tm = results["timing"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8.4, 3.4), dpi=100)
    Ts = [r["T"] for r in tm]
    ax1.plot(Ts, [r["rnn_ms"] for r in tm], "o-", label="RNN")
    ax1.plot(Ts, [r["transformer_ms"] for r in tm], "s-", label="transformer")
    ax1.set(xscale="log", yscale="log", xlabel="sequence length T", ylabel="ms per training step",
            title="time per step (CPU, one thread)")
    ax2.plot(Ts, [r["rnn_ops"] for r in tm], "o-", label="RNN")
    ax2.plot(Ts, [r["transformer_ops"] for r in tm], "s-", label="transformer")
    ax2.set(xscale="log", yscale="log", xlabel="sequence length T",
            ylabel="ops in the forward pass", title="ops per step (backward: as many)")
    for ax in (ax1, ax2):
        _log_ticks(ax.xaxis, Ts)
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.legend(fontsize=8)
    paths.append(_save(fig, plt, out, "time"))
    return paths


def _log_ticks(axis, values):
    """Ticks at the measured values, labelled as plain numbers; no minor labels."""
    from matplotlib.ticker import NullFormatter, NullLocator
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())
    axis.set_ticks(values, [str(v) for v in values])


def _save(fig, plt, out, name):
    path = os.path.join(out, f"rnn_vs_attention_{name}.png")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def markdown_tables(results):
    lines = [f"RNN: {results['rnn_params']:,} parameters (hidden {results['rnn_hidden']}); "
             f"transformer: {results['transformer_params']:,} parameters "
             f"(n_embd {results['transformer_n_embd']}, 1 layer, 2 heads).", "",
             "| k | RNN accuracy (each seed) | transformer accuracy (each seed) | "
             "RNN: steps to 90% | transformer: steps to 90% |",
             "| ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['k']} | {_accs(r['rnn_accs'])} | {_accs(r['transformer_accs'])} | "
              f"{', '.join(map(_steps, r['rnn_learned_ats']))} | "
              f"{', '.join(map(_steps, r['transformer_learned_ats']))} |"
              for r in results["accuracy"]]
    g = results["gradients"]
    lines += ["", f"Gradient norms per step at k = {g['k']} (batch means; t = 0 is the token "
              "to recall, the loss is at the last step):", "",
              "| t | RNN dL/dh_t, initial | RNN dL/dh_t, trained | transformer dL/dx_t, "
              "initial | transformer dL/dx_t, trained |", "| ---: | ---: | ---: | ---: | ---: |"]
    T = len(g["rnn_init"])
    for t in sorted({0, 1, T // 4, T // 2, 3 * T // 4, T - 2, T - 1}):
        lines.append(f"| {t} | {g['rnn_init'][t]:.2e} | {g['rnn_trained'][t]:.2e} | "
                     f"{g['transformer_init'][t]:.2e} | {g['transformer_trained'][t]:.2e} |")
    lines += ["", "| T | RNN ms/step | RNN ops/step | transformer ms/step | "
              "transformer ops/step |", "| ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['T']} | {r['rnn_ms']:.1f} | {r['rnn_ops']} | {r['transformer_ms']:.1f} | "
              f"{r['transformer_ops']} |" for r in results["timing"]]
    return "\n".join(lines) + "\n"


# ---- main -------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ks", type=int, nargs="+", default=[2, 4, 8, 16, 32, 64])
    p.add_argument("--lengths", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    p.add_argument("--steps", type=int, default=300, help="training steps per model and k")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--n-embd", type=int, default=24, help="the transformer's width; the RNN's "
                   "hidden size is chosen for the same parameter count")
    p.add_argument("--lr-rnn", type=float, default=3e-3)
    p.add_argument("--lr-transformer", type=float, default=3e-3)
    p.add_argument("--seeds", type=int, default=3, help="models trained per k and kind")
    p.add_argument("--n-eval", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=5, help="timed steps per length")
    p.add_argument("--threads", type=int, default=1, help="kernel threads (1: steady timings "
                   "on a shared machine)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="docs")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run in seconds")
    p.add_argument("--replot", action="store_true", help="redraw the figures and tables from "
                   "the rnn_vs_attention.json in --out, without training")
    args = p.parse_args(argv)
    if args.quick:
        args.ks, args.lengths, args.steps = [2, 8], [8, 16], 20
        args.n_eval, args.repeats, args.n_embd, args.seeds = 200, 1, 8, 1
    return args


def write_outputs(results, out):
    """The figures, rnn_vs_attention.json and rnn_vs_attention_tables.md into out."""
    paths = plot_all(results, out)
    paths.append(os.path.join(out, "rnn_vs_attention.json"))
    with open(paths[-1], "w") as f:
        json.dump(results, f, indent=1)
    paths.append(os.path.join(out, "rnn_vs_attention_tables.md"))
    with open(paths[-1], "w") as f:
        f.write(markdown_tables(results))
    print("wrote " + ", ".join(paths))


def main(argv=None):
    args = parse_args(argv)
    if args.replot:
        with open(os.path.join(args.out, "rnn_vs_attention.json")) as f:
            write_outputs(json.load(f), args.out)
        return
    tga.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.perf_counter()
    rows, rnn, gpt = accuracy_sweep(args.ks, args, args.n_embd)
    results = dict(rnn_params=n_params(rnn), transformer_params=n_params(gpt),
                   rnn_hidden=rnn.rnn.hidden_size, transformer_n_embd=args.n_embd,
                   accuracy=rows, config=vars(args))
    print(f"parameters: RNN {results['rnn_params']:,} (hidden {results['rnn_hidden']}), "
          f"transformer {results['transformer_params']:,} (n_embd {args.n_embd})")
    results["gradients"] = gradient_norms(args.ks[-1], args, args.n_embd, rnn, gpt)
    g = results["gradients"]
    print(f"|dLoss/dh_t| of the RNN at k={g['k']}: t={len(g['rnn_init']) - 1}: "
          f"{g['rnn_init'][-1]:.2e}, t=0: {g['rnn_init'][0]:.2e} (initial); "
          f"{g['rnn_trained'][-1]:.2e} -> {g['rnn_trained'][0]:.2e} (trained)")
    results["timing"] = timing_sweep(args.lengths, args, args.n_embd, rnn.rnn.hidden_size)
    results["seconds"] = time.perf_counter() - t0
    write_outputs(results, args.out)
    print(f"total {results['seconds']:.0f} s")


if __name__ == "__main__":
    main()
