"""The PyTorch twin of tinygradattn.models.GPT (nanoGPT's model.py: same architecture, same
parameter names, tied lm_head / wte): the oracle of tests/nn/test_gpt.py, also used by the
benchmarks (`from tests.torch_gpt import ...`) and examples/char_gpt.py. Imports only torch
(lazily), so a memory-measuring child process for torch never loads tinygradattn.

The benchmark configuration is the small char-level GPT of issue 3: 4 layers, 4 heads,
width 128, context 64, batch 12, vocabulary 65, no dropout.
"""
import math

BENCH_CONFIG = dict(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128,
                    dropout=0.0, bias=True)
BATCH_SIZE = 12
LR, BETAS, WEIGHT_DECAY, CLIP = 1e-3, (0.9, 0.99), 0.1, 1.0


def torch_gpt(torch, cfg):
    """nanoGPT's GPT in torch for a config with tga GPTConfig's fields (dropout as ours:
    after the embeddings, on the attention weights, after each residual branch)."""
    nn, F = torch.nn, torch.nn.functional

    class CausalSelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
            self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
            self.resid_dropout = nn.Dropout(cfg.dropout)

        def forward(self, x):                                                # (B, T, C)
            B, T, C = x.shape
            H = cfg.n_head
            q, k, v = self.c_attn(x).split(C, dim=2)
            q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
            p = cfg.dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                               dropout_p=p)                  # (B, H, T, D)
            return self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(B, T, C)))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
            self.gelu = nn.GELU()
            self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
            self.dropout = nn.Dropout(cfg.dropout)

        def forward(self, x):
            return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
            self.attn = CausalSelfAttention()
            self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
            self.mlp = MLP()

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class TorchGPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = nn.ModuleDict(dict(
                wte=nn.Embedding(cfg.vocab_size, cfg.n_embd),
                wpe=nn.Embedding(cfg.block_size, cfg.n_embd),
                drop=nn.Dropout(cfg.dropout),
                h=nn.ModuleList([Block() for _ in range(cfg.n_layer)]),
                ln_f=nn.LayerNorm(cfg.n_embd, bias=cfg.bias)))
            self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
            self.transformer.wte.weight = self.lm_head.weight

        def forward(self, idx, targets=None):                                # (B, T) int64
            T = idx.shape[1]
            tr = self.transformer
            x = tr.drop(tr.wte(idx) + tr.wpe(torch.arange(T)))
            for block in tr.h:
                x = block(x)
            logits = self.lm_head(tr.ln_f(x))                                # (B, T, V)
            if targets is None:
                return logits, None
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1),
                                   ignore_index=-1)
            return logits, loss

    return TorchGPT()


def gpt2_init_(torch, model, n_layer):
    """GPT-2's initialisation (what tga's GPT does), for a twin whose weights are not copied."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif "ln_" in name:
                p.fill_(1.0)
            elif name.endswith("c_proj.weight"):
                p.normal_(0.0, 0.02 / math.sqrt(2 * n_layer))
            else:
                p.normal_(0.0, 0.02)


def torch_adamw(torch, model, foreach=True):
    """AdamW with nanoGPT's two groups (weights decayed; biases and norms not)."""
    params = list(model.parameters())
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": WEIGHT_DECAY},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=LR, betas=BETAS, foreach=foreach)
