"""Train a Seq2SeqTransformer to reverse digit sequences (lengths 4..12) and report exact match.

    python examples/reverse_digits.py [--steps 2000] [--batch 64] [--seed 0]

Tokens: 0 pad, 1 bos, 2 eos, 3..12 the digits 0..9. The source is the digits, the target the
same digits reversed, then eos. 1000 held-out sequences are drawn first and never trained on;
at the end the model decodes them greedily (with the key/value cache) and we count the
sequences reproduced exactly. The cross-attention of the last decoder layer should learn the
anti-diagonal alignment (output i looks at source L - 1 - i): the script reports how often
its argmax does.
"""
import argparse
import random
import time

import tinygradattn as tga
import tinygradattn.nn.functional as F
from tinygradattn.models import Seq2SeqConfig, Seq2SeqTransformer
from tinygradattn.optim import AdamW
from tinygradattn.optim.lr_scheduler import warmup_cosine

PAD, BOS, EOS, DIGIT0 = 0, 1, 2, 3


def draw(rng, lo, hi):
    return tuple(rng.randrange(10) for _ in range(rng.randint(lo, hi)))


def make_batch(seqs, hi):
    """src (N, hi), tgt_in (N, hi + 1) = bos + reversed, tgt_out (N, hi + 1) = reversed + eos."""
    src, tin, tout = [], [], []
    for s in seqs:
        toks = [DIGIT0 + d for d in s]
        rev = toks[::-1]
        pad = hi - len(s)
        src.append(toks + [PAD] * pad)
        tin.append([BOS] + rev + [PAD] * pad)
        tout.append(rev + [EOS] + [PAD] * pad)
    return tga.tensor(src), tga.tensor(tin), tga.tensor(tout)


def exact_match(model, seqs, hi, batch=250):
    """Fraction of sequences whose greedy decode is exactly the reversed digits + eos; and
    the fraction of output digits whose last-layer cross-attention argmax is the mirrored
    source position."""
    hits, aligned, total_digits = 0, 0, 0
    for i in range(0, len(seqs), batch):
        chunk = seqs[i:i + batch]
        src, _, tout = make_batch(chunk, hi)
        pred = model.greedy_decode(src, max_len=hi + 1).tolist()
        attn = model.last_cross_attention[-1].mean(1)                 # (B, T_out, S)
        focus = attn.argmax(-1).tolist()                               # (B, T_out)
        for s, p, want, f in zip(chunk, pred, tout.tolist(), focus):
            n = len(s) + 1                                             # digits + eos
            hits += p[:n] == want[:n]
            aligned += sum(f[j] == len(s) - 1 - j for j in range(min(len(s), len(f))))
            total_digits += len(s)
    return hits / len(seqs), aligned / total_digits


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--min-len", type=int, default=4)
    parser.add_argument("--max-len", type=int, default=12)
    parser.add_argument("--held-out", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    tga.manual_seed(args.seed)
    rng = random.Random(args.seed)
    lo, hi = args.min_len, args.max_len

    test = [draw(rng, lo, hi) for _ in range(args.held_out)]
    held = set(test)
    config = Seq2SeqConfig(src_vocab_size=13, tgt_vocab_size=13, d_model=64, nhead=4,
                           num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=256,
                           dropout=0.0, max_len=hi + 2)
    model = Seq2SeqTransformer(config)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"Seq2SeqTransformer: {n_params} parameters; reverse digits, lengths {lo}..{hi}; "
          f"{args.held_out} held-out sequences")
    opt = AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    sched = warmup_cosine(opt, warmup_steps=min(100, args.steps // 10), total_steps=args.steps,
                          min_lr=args.lr / 20)

    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        seqs = []
        while len(seqs) < args.batch:
            s = draw(rng, lo, hi)
            if s not in held:                                          # never train on test
                seqs.append(s)
        src, tin, tout = make_batch(seqs, hi)
        logits = model(src, tin)                                       # (B, T, 13)
        loss = F.cross_entropy(logits.reshape(-1, 13), tout.reshape(-1), ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == args.steps:
            valid = tout != PAD
            right = ((logits.argmax(-1) == tout) & valid).sum()
            acc = int(right) / int(valid.sum())
            print(f"step {step:5d}  loss {float(loss):.4f}  token acc {acc:.4f}  "
                  f"lr {sched.get_last_lr()[0]:.2e}  {time.perf_counter() - start:6.1f} s",
                  flush=True)
    train_time = time.perf_counter() - start

    t0 = time.perf_counter()
    exact, aligned = exact_match(model, test, hi)
    print(f"held-out exact match {exact * 100:.2f}% ({args.held_out} sequences, greedy, "
          f"{time.perf_counter() - t0:.1f} s); cross-attention on the mirrored digit "
          f"{aligned * 100:.1f}%; training {train_time:.1f} s")
    src, _, _ = make_batch(test[:3], hi)
    for s, b in zip(test[:3], model.beam_search(src, beam_size=3, max_len=hi + 1).tolist()):
        out = "".join(str(t - DIGIT0) for t in b if t >= DIGIT0)
        print(f"  {''.join(map(str, s)):>12} -> {out} (beam 3)")


if __name__ == "__main__":
    main()
