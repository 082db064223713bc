"""Teach a Transformer to write numbers in English words, then look at where it attends.

    python examples/translate_numbers.py                       # ~2 minutes on a laptop CPU
    python examples/translate_numbers.py --numbers 40512 7000017 999999999
    python examples/translate_numbers.py --steps 3 --d-model 16 --layers 1   # a smoke run

The same job as `tinygradattn train`, written out with the library's pieces so each one is
visible: the task (data + held-out test set), the encoder-decoder model, AdamW with a
warm-up-then-cosine schedule, the Trainer (progress bar, checkpoints, loss curve), greedy
decoding with a key/value cache, and the cross-attention weights of the last decode drawn as
heatmaps: for "40512" the word "forty" looks at the digits "4" and "0", "thousand" at the
length of the number, "twelve" at "1" and "2".
"""
import argparse
import os

import tinygradattn as tga
from tinygradattn.optim.lr_scheduler import warmup_cosine
from tinygradattn.tasks import DEFAULTS, NumwordsTask, plot_cross_attention
from tinygradattn.train.trainer import TrainConfig, Trainer


def main():
    d = DEFAULTS["numwords"]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=d["steps"])
    p.add_argument("--lr", type=float, default=d["lr"])
    p.add_argument("--batch-size", type=int, default=d["batch_size"])
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=2, help="encoder and decoder layers each")
    p.add_argument("--numbers", type=int, nargs="*", default=[40512, 7000017, 999999999, 13])
    p.add_argument("--out", default=os.path.join("runs", "translate_numbers"))
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args()

    tga.manual_seed(0)
    task = NumwordsTask(batch_size=args.batch_size, seed=0,
                        model=dict(d_model=args.d_model, n_layer=args.layers,
                                   dim_feedforward=4 * args.d_model))
    model = task.build_model()
    optimizer = tga.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=d["weight_decay"])
    scheduler = warmup_cosine(optimizer, min(d["warmup"], args.steps), args.steps,
                              min_lr=min(d["min_lr"], args.lr))
    config = TrainConfig(steps=args.steps, eval_interval=d["eval_interval"],
                         log_interval=d["log_interval"], progress=not args.no_progress)
    trainer = Trainer(task, model, optimizer, scheduler, config, args.out)
    trainer.fit()
    print(f"exact match on {len(task.test_items):,} held-out numbers: "
          f"{trainer.last_metrics['exact_match']:.2%}")

    # translate the user's numbers and draw the cross-attention of each
    outputs, attention = task.translate(model, args.numbers)
    for i, (n, out) in enumerate(zip(args.numbers, outputs)):
        words = task.show_tgt(out)
        per_layer = [layer[i].mean(0).tolist() for layer in attention[0]]   # (L_out, S) each
        path = os.path.join(args.out, f"attention_{n}.png")
        plot_cross_attention(per_layer, task.src_tokens(n),
                             [task.tgt_vocab[t] for t in out] + ["<eos>"], path, title=str(n))
        print(f"{n:>11,}  ->  {words}    ({path})")


if __name__ == "__main__":
    main()
