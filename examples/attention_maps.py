"""Train a small encoder-decoder to reverse digit strings, then draw every head of every layer.

    python examples/attention_maps.py                         # ~1-2 minutes on a laptop CPU
    python examples/attention_maps.py --digits 8675309 --out maps.png
    python examples/attention_maps.py --steps 3 --out /tmp/maps.png   # a smoke run

The figure in the docs (docs/attention_maps.png) comes from the default run. Its rows are
the model's attention layers, as `tga.nn.attention_maps.attention_maps` names them, its
columns the heads:
- encoder self-attention: each digit looks at the others (the keys of every position);
- decoder self-attention: causal, so lower-triangular;
- cross-attention: output i looks at source digit n - 1 - i, the anti-diagonal that is the
  whole algorithm of reversal.
The maps come from the fused attention kernel itself: inside `capture_attention` it rebuilds
the weights of each head from the log-sum-exp it saves in the forward, and nothing about the
model's outputs changes.
"""
import argparse
import os

import tinygradattn as tga
from tinygradattn.nn.attention_maps import attention_maps, plot_attention_maps
from tinygradattn.optim.lr_scheduler import warmup_cosine
from tinygradattn.tasks.seq2seq import DigitsTask


def train(task, model, steps, lr):
    """AdamW with warm-up then cosine decay on the task's batches; returns the last loss."""
    optimizer = tga.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    scheduler = warmup_cosine(optimizer, min(30, steps), steps, min_lr=1e-4)
    model.train()
    loss = None
    for step in range(steps):
        loss, _ = task.loss(model, task.train_batch())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step:4d}  loss {loss.item():.4f}")
    return loss.item()


def token_labels(task, digits, maps):
    """{map name: (query labels, key labels)}: source tokens for the encoder and the keys of
    the cross-attention, the decoder's input tokens for its queries."""
    src = list(digits) + ["<eos>"]
    tgt = ["<bos>"] + list(task.op(digits))
    labels = {}
    for name in maps:
        if name.startswith("encoder"):
            labels[name] = (src, src)
        elif name.endswith("multihead_attn"):
            labels[name] = (tgt, src)
        else:
            labels[name] = (tgt, tgt)
    return labels


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--layers", type=int, default=2, help="encoder and decoder layers each")
    p.add_argument("--digits", default="31415926")
    p.add_argument("--out", default=os.path.join("docs", "attention_maps.png"))
    args = p.parse_args()

    tga.manual_seed(0)
    task = DigitsTask("reverse", batch_size=64, seed=0, model=dict(n_layer=args.layers))
    model = task.build_model()
    train(task, model, args.steps, args.lr)

    digits = task.parse(args.digits)
    out = task.translate(model, [digits])[0][0]
    print(f"{digits} -> {''.join(task.tgt_vocab[t] for t in out)} (want {task.op(digits)})")
    src, tgt_in, _ = task._tensors([digits])                      # (1, S), (1, T): teacher forcing
    maps = attention_maps(model, src, tgt_in)                     # {layer: (1, H, T, S)}
    for name, w in maps.items():
        print(f"{name:34s} {tuple(w.shape)}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    plot_attention_maps(maps, tokens=token_labels(task, digits, maps), path=args.out,
                        title=f"reverse {digits}: every head of every layer (rows: queries, "
                              f"columns: keys)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
