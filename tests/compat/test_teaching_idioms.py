"""The idioms of widely used PyTorch teaching code (a char-level transformer built up in a
lecture, a makemore-style name generator, an annotated encoder-decoder), written here in our
own words and run through the import hook: `import torch` inside each program gives
tinygradattn. Where cheap, the same program runs on the installed PyTorch too, from the same
weights and batches, and the losses must agree to float32 rounding.

Each program is a function that imports torch itself, so calling it inside
`torch_as_tinygradattn()` runs it on tinygradattn and calling it outside runs it on PyTorch.
"""
import copy
import math
import os

import numpy as np
import pytest

from tinygradattn.compat.hook import torch_as_tinygradattn

pytest.importorskip("torch", reason="PyTorch is the reference for the loss comparisons")

TEXT = ("the quick brown fox jumps over the lazy dog; pack my box with five dozen jugs. "
        "how vexingly quick daft zebras jump! sphinx of black quartz, judge my vow.\n") * 3


def on_ours(program, *args):
    with torch_as_tinygradattn():
        import torch
        assert torch.__name__ == "tinygradattn"
        return program(*args)


def on_torch(program, *args):
    import torch
    assert torch.__name__ == "torch"
    return program(*args)


def set_weights(torch, model, seed, scale=0.2):
    """Every parameter from numpy, by registration order (the same in both libraries)."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.copy_(torch.from_numpy((rng.standard_normal(tuple(p.shape)) * scale)
                                     .astype(np.float32)))


# ---- 1. a char-level transformer, the way the lecture builds it ---------------------------
def char_transformer(steps, batches):
    import torch
    import torch.nn as nn
    from torch.nn import functional as F

    block, n_embd, n_head = 8, 16, 2
    chars = sorted(set(TEXT))
    to_id = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([to_id[c] for c in TEXT], dtype=torch.long)
    cut = int(0.9 * len(data))
    splits = {"train": data[:cut], "val": data[cut:]}
    device = "cuda" if torch.cuda.is_available() and False else "cpu"

    def batch(split, starts):
        d = splits[split]
        ix = torch.tensor([s % (len(d) - block) for s in starts])
        x = torch.stack([d[i:i + block] for i in ix])       # 0-d tensors as slice bounds
        y = torch.stack([d[i + 1:i + block + 1] for i in ix])
        return x.to(device), y.to(device)

    class OneHead(nn.Module):
        def __init__(self, size):
            super().__init__()
            self.k = nn.Linear(n_embd, size, bias=False)
            self.q = nn.Linear(n_embd, size, bias=False)
            self.v = nn.Linear(n_embd, size, bias=False)
            self.register_buffer("lower", torch.tril(torch.ones(block, block)))
            self.drop = nn.Dropout(0.0)

        def forward(self, x):
            B, T, C = x.shape
            w = self.q(x) @ self.k(x).transpose(-2, -1) * C ** -0.5
            w = w.masked_fill(self.lower[:T, :T] == 0, float("-inf"))
            w = self.drop(F.softmax(w, dim=-1))
            return w @ self.v(x)

    class Heads(nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = nn.ModuleList([OneHead(n_embd // n_head) for _ in range(n_head)])
            self.proj = nn.Linear(n_embd, n_embd)

        def forward(self, x):
            return self.proj(torch.cat([h(x) for h in self.heads], dim=-1))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.sa = Heads()
            self.ff = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.ReLU(),
                                    nn.Linear(4 * n_embd, n_embd), nn.Dropout(0.0))
            self.ln1, self.ln2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)

        def forward(self, x):
            x = x + self.sa(self.ln1(x))
            return x + self.ff(self.ln2(x))

    class CharModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(len(chars), n_embd)
            self.pos = nn.Embedding(block, n_embd)
            self.blocks = nn.Sequential(*[Block() for _ in range(2)])
            self.ln_f = nn.LayerNorm(n_embd)
            self.head = nn.Linear(n_embd, len(chars))

        def forward(self, idx, targets=None):
            B, T = idx.shape
            x = self.tok(idx) + self.pos(torch.arange(T, device=device))
            logits = self.head(self.ln_f(self.blocks(x)))
            if targets is None:
                return logits, None
            B, T, C = logits.shape
            return logits, F.cross_entropy(logits.view(B * T, C), targets.view(B * T))

        def generate(self, idx, n):
            for _ in range(n):
                logits, _ = self(idx[:, -block:])
                probs = F.softmax(logits[:, -1, :], dim=-1)
                idx = torch.cat((idx, torch.multinomial(probs, num_samples=1)), dim=1)
            return idx

    torch.manual_seed(0)
    model = CharModel().to(device)
    set_weights(torch, model, seed=1)
    n_params = sum(p.numel() for p in model.parameters())

    @torch.no_grad()
    def estimate_loss():
        out = {}
        model.eval()
        for split in ("train", "val"):
            losses = torch.zeros(len(batches))
            for k, starts in enumerate(batches):
                _, loss = model(*batch(split, starts))
                losses[k] = loss.item()
            out[split] = losses.mean()
        model.train()
        return out

    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    before = estimate_loss()
    line = f"train {before['train']:.4f}, val {before['val']:.4f}"     # 0-d tensors formatted
    train_losses = []
    for step in range(steps):
        _, loss = model(*batch("train", batches[step % len(batches)]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        train_losses.append(loss.item())
    after = estimate_loss()
    sample = model.generate(torch.zeros((1, 1), dtype=torch.long, device=device), 12)[0].tolist()
    return dict(n_params=n_params, before=float(before["train"]), val=float(before["val"]),
                after=float(after["train"]), losses=train_losses, line=line, sample=sample,
                n_chars=len(chars))


def test_char_transformer_matches_torch():
    batches = [[3, 50, 97, 140], [11, 70, 120, 5]]
    ours = on_ours(char_transformer, 4, batches)
    theirs = on_torch(char_transformer, 4, batches)
    assert ours["n_params"] == theirs["n_params"]
    for key in ("before", "val", "after"):
        np.testing.assert_allclose(ours[key], theirs[key], rtol=2e-4, err_msg=key)
    np.testing.assert_allclose(ours["losses"], theirs["losses"], rtol=2e-4)
    assert ours["line"].startswith("train ") and len(ours["line"]) == len(theirs["line"])
    assert ours["losses"][-1] < ours["losses"][0]
    assert len(ours["sample"]) == 13 and all(0 <= i < ours["n_chars"] for i in ours["sample"])


# ---- 2. makemore-style: words in, a Dataset, sampling with a generator ---------------------
WORDS = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn",
         "abigail", "emily", "ella", "elizabeth", "camila", "luna", "sofia", "avery", "mila"]


def makemore_like(kind, steps, tmp_dir):
    import torch
    import torch.nn as nn
    from torch.nn import functional as F
    from torch.utils.data import DataLoader, Dataset
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:                                # PyTorch's needs the tensorboard package
        SummaryWriter = None

    chars = sorted(set("".join(WORDS)))
    stoi = {c: i + 1 for i, c in enumerate(chars)}
    longest = max(len(w) for w in WORDS)
    vocab, block = len(chars) + 1, longest + 1

    class Names(Dataset):
        def __len__(self):
            return len(WORDS)

        def __getitem__(self, i):
            ix = torch.tensor([stoi[c] for c in WORDS[i]], dtype=torch.long)
            x = torch.zeros(block, dtype=torch.long)
            y = torch.zeros(block, dtype=torch.long)
            x[1:1 + len(ix)] = ix
            y[:len(ix)] = ix
            y[len(ix) + 1:] = -1                        # ignored by the loss
            return x, y

    class Context(nn.Module):                         # embeddings of the last 3 tokens
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(vocab + 1, 8)
            self.mlp = nn.Sequential(nn.Linear(3 * 8, 16), nn.Tanh(), nn.Linear(16, vocab))

        def forward(self, idx, targets=None):
            embs = []
            for _ in range(3):
                embs.append(self.wte(idx))
                idx = torch.roll(idx, 1, 1)
                idx[:, 0] = vocab                       # the blank token
            logits = self.mlp(torch.cat(embs, -1))
            loss = None
            if targets is not None:
                loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1),
                                       ignore_index=-1)
            return logits, loss

    class Recurrent(nn.Module):
        def __init__(self):
            super().__init__()
            self.start = nn.Parameter(torch.zeros(1, 12))
            self.wte = nn.Embedding(vocab, 8)
            self.cells = nn.ModuleDict(dict(z=nn.Linear(20, 12), h=nn.Linear(20, 12)))
            self.lm_head = nn.Linear(12, vocab)

        def forward(self, idx, targets=None):
            b, t = idx.size()
            emb = self.wte(idx)
            h = self.start.expand((b, -1))
            hs = []
            for i in range(t):
                xh = torch.cat([emb[:, i, :], h], dim=1)
                z = F.sigmoid(self.cells.z(xh))
                h = (1 - z) * h + z * F.tanh(self.cells.h(xh))
                hs.append(h)
            logits = self.lm_head(torch.stack(hs, 1))
            loss = None
            if targets is not None:
                loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1),
                                       ignore_index=-1)
            return logits, loss

    model = {"mlp": Context, "rnn": Recurrent}[kind]()
    set_weights(torch, model, seed=2)
    ds = Names()
    x, y = ds[0]
    loader = DataLoader(ds, batch_size=6, shuffle=False)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3, betas=(0.9, 0.99), eps=1e-8,
                            weight_decay=0.01)
    losses = []
    for step in range(steps):
        for X, Y in loader:
            _, loss = model(X, Y)
            model.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())

    @torch.inference_mode()
    def evaluate():
        model.eval()
        out = [model(X, Y)[1].item() for X, Y in DataLoader(ds, batch_size=9)]
        model.train()
        return torch.tensor(out).mean().item()

    # sampling with top-k and a seeded generator
    @torch.no_grad()
    def sample(n, top_k, seed):
        g = torch.Generator().manual_seed(seed)
        idx = torch.zeros(n, 1, dtype=torch.long)
        for _ in range(block - 1):
            logits, _ = model(idx[:, -block:])
            logits = logits[:, -1, :]
            v, _ = torch.topk(logits, top_k)
            logits[logits < v[:, [-1]]] = -float("Inf")
            nxt = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1, generator=g)
            idx = torch.cat((idx, nxt), dim=1)
        allowed = torch.topk(model(idx[:, :1])[0][:, -1, :], top_k).indices
        return idx, allowed

    a, allowed = sample(4, 3, seed=7)
    b, _ = sample(4, 3, seed=7)
    first = a[:, 1].tolist()
    if SummaryWriter is not None:
        writer = SummaryWriter(log_dir=tmp_dir)
        writer.add_scalar("Loss/train", losses[-1], steps)
        writer.close()
    os.makedirs(tmp_dir, exist_ok=True)
    path = f"{tmp_dir}/model.pt"
    torch.save(model.state_dict(), path)
    fresh = {"mlp": Context, "rnn": Recurrent}[kind]()
    fresh.load_state_dict(torch.load(path))
    same = all(bool((p == q).all()) for p, q in zip(model.parameters(), fresh.parameters()))
    order = torch.randperm(len(WORDS)).tolist()
    return dict(xy=(x.tolist(), y.tolist()), losses=losses, eval=evaluate(),
                repeat=bool((a == b).all()), in_top_k=all(f in row for f, row in
                                                           zip(first, allowed.tolist())),
                reload_same=same, perm=sorted(order) == list(range(len(WORDS))),
                events=SummaryWriter is not None and any(
                    n.startswith("events.out.tfevents.") for n in os.listdir(tmp_dir)))


@pytest.mark.parametrize("kind", ["mlp", "rnn"])
def test_makemore_like_matches_torch(kind, tmp_path):
    ours = on_ours(makemore_like, kind, 2, str(tmp_path / "ours"))
    theirs = on_torch(makemore_like, kind, 2, str(tmp_path / "torch"))
    assert ours["xy"] == theirs["xy"]
    np.testing.assert_allclose(ours["losses"], theirs["losses"], rtol=2e-4)
    np.testing.assert_allclose(ours["eval"], theirs["eval"], rtol=2e-4)
    assert ours["repeat"] and ours["in_top_k"] and ours["reload_same"] and ours["perm"]
    assert ours["events"]


# ---- 3. an annotated encoder-decoder's pieces -----------------------------------------------
def annotated_pieces(steps):
    import torch
    import torch.nn as nn
    from torch.nn.functional import log_softmax
    from torch.optim.lr_scheduler import LambdaLR

    def no_peeking(size):                              # True where a position may look
        return torch.triu(torch.ones((1, size, size)), diagonal=1) == 0

    class Norm(nn.Module):                             # std-based, not nn.LayerNorm
        def __init__(self, n, eps=1e-6):
            super().__init__()
            self.g, self.b, self.eps = nn.Parameter(torch.ones(n)), nn.Parameter(torch.zeros(n)), eps

        def forward(self, x):
            return self.g * (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + self.eps) + self.b

    def attend(q, k, v, mask):
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.size(-1))
        scores = scores.masked_fill(mask == 0, -1e9)
        return torch.matmul(scores.softmax(dim=-1), v)

    class Layer(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.h, self.dk = h, d // h
            self.lins = nn.ModuleList([copy.deepcopy(nn.Linear(d, d)) for _ in range(4)])
            self.norm = Norm(d)

        def forward(self, x, mask):
            n = x.size(0)
            y = self.norm(x)
            q, k, v = [lin(t).view(n, -1, self.h, self.dk).transpose(1, 2)
                       for lin, t in zip(self.lins, (y, y, y))]
            z = attend(q, k, v, mask.unsqueeze(1)).transpose(1, 2).contiguous().view(n, -1, self.h * self.dk)
            return x + self.lins[-1](z)

    class Smoothed(nn.Module):                         # label smoothing through KL divergence
        def __init__(self, size, pad, smoothing):
            super().__init__()
            self.crit = nn.KLDivLoss(reduction="sum")
            self.size, self.pad, self.smoothing = size, pad, smoothing

        def forward(self, x, target):
            dist = x.data.clone()
            dist.fill_(self.smoothing / (self.size - 2))
            dist.scatter_(1, target.data.unsqueeze(1), 1.0 - self.smoothing)
            dist[:, self.pad] = 0
            rows = torch.nonzero(target.data == self.pad)
            if rows.dim() > 0:
                dist.index_fill_(0, rows.squeeze(), 0.0)
            return self.crit(x, dist.clone().detach())

    V, d = 7, 8
    emb, layer = nn.Embedding(V, d), nn.ModuleList([Layer(d, 2) for _ in range(2)])
    gen = nn.Linear(d, V)
    model = nn.ModuleList([emb, layer, gen])
    set_weights(torch, model, seed=3, scale=0.3)
    assert sum(p.dim() > 1 for p in model.parameters()) == 10       # p.dim(): the weights
    crit = Smoothed(V, 0, 0.1)
    opt = torch.optim.Adam(model.parameters(), lr=0.5, betas=(0.9, 0.98), eps=1e-9)

    def rate(step, size=d, factor=1.0, warmup=4):
        step = max(step, 1)
        return factor * size ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)

    sched = LambdaLR(optimizer=opt, lr_lambda=lambda s: rate(s))
    src = torch.LongTensor([[1, 2, 3, 4, 5, 6], [1, 3, 5, 2, 4, 0]])
    tgt_in, tgt_out = src[:, :-1], src[:, 1:]
    mask = (tgt_in != 0).unsqueeze(-2) & no_peeking(tgt_in.size(-1)).type_as((tgt_in != 0).data)
    ntokens = (tgt_out != 0).data.sum()
    total, losses, lrs = 0, [], []
    for _ in range(steps):
        x = emb(tgt_in) * math.sqrt(d)
        for lyr in layer:
            x = lyr(x, mask)
        out = log_softmax(gen(x), dim=-1)
        loss = crit(out.contiguous().view(-1, V), tgt_out.contiguous().view(-1)) / ntokens
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
        total += loss.data * ntokens
        losses.append(loss.item())
        lrs.append(opt.param_groups[0]["lr"])
    prob = torch.FloatTensor([[0, 0.2, 0.7, 0.1, 0]]).log()
    _, best = torch.max(prob, dim=1)
    ys = torch.zeros(1, 1).type_as(src.data).fill_(best.data[0])
    return dict(losses=losses, lrs=lrs, total=float(total), ys=ys.tolist(),
                mask=mask.long().tolist(), smoothed=Smoothed(5, 0, 0.4)(
                    torch.FloatTensor([[0.1, 0.2, 0.5, 0.1, 0.1]] * 2).log(),
                    torch.LongTensor([2, 0])).item())


def test_annotated_pieces_match_torch():
    ours = on_ours(annotated_pieces, 3)
    theirs = on_torch(annotated_pieces, 3)
    assert ours["mask"] == theirs["mask"] and ours["ys"] == theirs["ys"] == [[2]]
    np.testing.assert_allclose(ours["lrs"], theirs["lrs"], rtol=1e-12)
    np.testing.assert_allclose(ours["losses"], theirs["losses"], rtol=2e-4)
    np.testing.assert_allclose(ours["total"], theirs["total"], rtol=2e-4)
    np.testing.assert_allclose(ours["smoothed"], theirs["smoothed"], rtol=1e-5)
