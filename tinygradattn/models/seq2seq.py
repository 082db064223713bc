"""Seq2SeqTransformer: the encoder-decoder Transformer of "Attention Is All You Need"
(pre-norm, batch-first), with greedy decoding (key/value cache), beam search, and the
cross-attention weights of the last decode kept for plotting.

Token layout: src (B, S) int64, padded with pad_id; the decoder reads tgt_in = [bos, y1, .., yn]
and is trained to predict [y1, .., yn, eos] (pad positions ignored by the loss).
"""
import math
from dataclasses import asdict, dataclass

from .. import nn
from ..autograd import no_grad
from ..creation import full, tensor, zeros
from ..dtypes import bool_, int64
from ..tensor import Tensor, cat, where


@dataclass
class Seq2SeqConfig:
    """Sizes and special tokens of a Seq2SeqTransformer (max_len: longest src or tgt_in)."""
    src_vocab_size: int
    tgt_vocab_size: int
    d_model: int = 128
    nhead: int = 4
    num_encoder_layers: int = 2
    num_decoder_layers: int = 2
    dim_feedforward: int = 512
    dropout: float = 0.1
    max_len: int = 64
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    norm_first: bool = True
    activation: str = "gelu"

    def __post_init__(self):
        for name in ("src_vocab_size", "tgt_vocab_size", "d_model", "nhead",
                     "num_encoder_layers", "num_decoder_layers", "dim_feedforward", "max_len",
                     "pad_id", "bos_id", "eos_id"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"Seq2SeqConfig: {name} must be an int, got "
                                f"{type(value).__name__} {value!r}")
        if self.d_model <= 0 or self.nhead <= 0 or self.d_model % self.nhead:
            raise ValueError(f"Seq2SeqConfig: d_model ({self.d_model}) must be a positive "
                             f"multiple of nhead ({self.nhead})")
        for name in ("src_vocab_size", "tgt_vocab_size", "max_len", "dim_feedforward",
                     "num_encoder_layers", "num_decoder_layers"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Seq2SeqConfig: {name} must be positive, got "
                                 f"{getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"Seq2SeqConfig: dropout must be in [0, 1), got {self.dropout}")
        for name in ("pad_id", "bos_id", "eos_id"):
            if not 0 <= getattr(self, name) < self.tgt_vocab_size:
                raise ValueError(f"Seq2SeqConfig: {name} {getattr(self, name)} is outside the "
                                 f"target vocabulary (size {self.tgt_vocab_size})")

    def to_dict(self):
        return asdict(self)


class Seq2SeqTransformer(nn.Module):
    """Encoder-decoder Transformer. Submodules: src_embed, tgt_embed (embeddings scaled by
    sqrt(d_model), initialised N(0, 1/d_model) so the scaled ones start at unit variance),
    pos (sinusoidal, no parameters), encoder / decoder (pre-norm stacks with final norms),
    generator (Linear d_model -> tgt_vocab_size).

    forward(src (B, S), tgt_in (B, T)) -> logits (B, T, tgt_vocab_size).
    After greedy_decode / beam_search, `last_cross_attention` is a list (one per decoder
    layer) of per-head cross-attention weights (B, H, T_out, S).
    """

    def __init__(self, config):
        super().__init__()
        c = config
        self.config = c
        d = c.d_model
        self.src_embed = nn.Embedding(c.src_vocab_size, d)
        self.tgt_embed = nn.Embedding(c.tgt_vocab_size, d)
        for emb in (self.src_embed, self.tgt_embed):
            nn.init.normal_(emb.weight, 0.0, d ** -0.5)
        self.pos = nn.SinusoidalPositionalEncoding(d, c.max_len)
        self.dropout = nn.Dropout(c.dropout)
        layer_kw = dict(dim_feedforward=c.dim_feedforward, dropout=c.dropout,
                        activation=c.activation, batch_first=True, norm_first=c.norm_first)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(d, c.nhead, **layer_kw),
                                             c.num_encoder_layers, norm=nn.LayerNorm(d))
        self.decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(d, c.nhead, **layer_kw),
                                             c.num_decoder_layers, norm=nn.LayerNorm(d))
        self.generator = nn.Linear(d, c.tgt_vocab_size)
        self.last_cross_attention = None

    # ---- building blocks ------------------------------------------------------------------
    def _check_tokens(self, x, name):
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} must be a Tensor of int64 token ids (B, L), got "
                            f"{type(x).__name__}")
        if x.ndim != 2 or x.dtype != int64:
            raise ValueError(f"{name} must be int64 token ids of shape (B, L), got "
                             f"{tuple(x.shape)} {x.dtype.name}")
        if x.shape[1] > self.config.max_len:
            raise ValueError(f"{name} has length {x.shape[1]}, longer than max_len "
                             f"{self.config.max_len}")

    def _embed(self, emb, tokens, offset=0):
        x = emb(tokens) * math.sqrt(self.config.d_model)                      # (B, L, d)
        return self.dropout(self.pos(x, offset=offset))

    def encode(self, src):
        """src (B, S) -> (memory (B, S, d), src_key_padding_mask (B, S), True = pad)."""
        self._check_tokens(src, "src")
        pad = src == self.config.pad_id                                       # (B, S)
        memory = self.encoder(self._embed(self.src_embed, src), src_key_padding_mask=pad)
        return memory, pad

    def decode(self, tgt_in, memory, src_key_padding_mask, caches=None, offset=0):
        """Logits (B, T, V) for tgt_in (B, T) at positions offset..offset+T-1. With caches
        (decoder.new_caches()), tgt_in holds only the positions not yet cached."""
        T = tgt_in.shape[1]
        if offset + T > self.config.max_len:
            raise ValueError(f"target length {offset + T} is longer than max_len "
                             f"{self.config.max_len}")
        x = self._embed(self.tgt_embed, tgt_in, offset)                       # (B, T, d)
        mask = None if caches is not None else \
            nn.generate_square_subsequent_mask(T, dtype=x.dtype, device=x.device)
        y = self.decoder(x, memory, tgt_mask=mask, tgt_is_causal=True,
                         memory_key_padding_mask=src_key_padding_mask, caches=caches)
        return self.generator(y)                                              # (B, T, V)

    def forward(self, src, tgt_in):
        self._check_tokens(src, "src")
        self._check_tokens(tgt_in, "tgt_in")
        if tgt_in.shape[0] != src.shape[0]:
            raise ValueError(f"src {tuple(src.shape)} and tgt_in {tuple(tgt_in.shape)} have "
                             f"different batch sizes")
        memory, pad = self.encode(src)
        return self.decode(tgt_in, memory, pad)

    # ---- decoding -----------------------------------------------------------------------
    def _decode_len(self, max_len):
        limit = self.config.max_len - 1              # tgt_in = [bos] + generated must fit
        max_len = limit if max_len is None else max_len
        if not 0 < max_len <= limit:
            raise ValueError(f"max_len {max_len} must be in 1..{limit} (config.max_len "
                             f"{self.config.max_len} minus the bos token)")
        return max_len

    def _keep_cross_attention(self, on):
        for layer in self.decoder.layers:
            layer.keep_cross_attention = on
            layer.cross_attn_weights = None

    def _collect_cross(self, parts, step_rows=None):
        for i, layer in enumerate(self.decoder.layers):
            w = layer.cross_attn_weights                                      # (N, H, t, S)
            if step_rows is not None:
                parts[i] = [p[step_rows] for p in parts[i]]
            parts[i].append(w)

    def greedy_decode(self, src, max_len=None, use_cache=True):
        """Most likely token at each step, until every row has produced eos or max_len tokens.

        Returns (B, L) int64: the generated tokens (without bos; eos included; pad after it).
        Runs in eval mode under no_grad (the training flag is restored afterwards).
        """
        max_len = self._decode_len(max_len)
        c = self.config
        was_training = self.training
        self.eval()
        self._keep_cross_attention(True)
        try:
            with no_grad():
                memory, pad = self.encode(src)
                B = src.shape[0]
                ys = full((B, 1), c.bos_id, dtype=int64, device=src.device)   # (B, 1 + t)
                done = zeros(B, dtype=bool_, device=src.device)
                caches = self.decoder.new_caches() if use_cache else None
                cross = [[] for _ in self.decoder.layers]
                for step in range(max_len):
                    if use_cache:
                        logits = self.decode(ys[:, -1:], memory, pad, caches, offset=step)
                        self._collect_cross(cross)
                    else:
                        logits = self.decode(ys, memory, pad)
                    nxt = where(done, c.pad_id, logits[:, -1].argmax(-1))     # (B,)
                    ys = cat([ys, nxt.unsqueeze(1)], dim=1)
                    done = done | (nxt == c.eos_id)
                    if bool(done.all()):
                        break
                if not use_cache:
                    self._collect_cross(cross)
                self.last_cross_attention = [cat(p, dim=2) for p in cross]    # (B, H, L, S)
        finally:
            self._keep_cross_attention(False)
            self.train(was_training)
        return ys[:, 1:]

    def beam_search(self, src, beam_size=4, max_len=None, length_penalty=0.0):
        """Keep the beam_size best partial hypotheses per source (sum of log-probabilities);
        a hypothesis that produced eos keeps its score and emits pad. Returns the best one per
        row, (B, L) int64 like greedy_decode; final ranking divides the score by
        length ** length_penalty (0: raw sums, so beam_size=1 is exactly greedy).
        """
        if beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {beam_size}")
        max_len = self._decode_len(max_len)
        was_training = self.training
        self.eval()
        self._keep_cross_attention(True)
        try:
            with no_grad():
                ys, scores, lengths, cross = self._beam_loop(src, beam_size, max_len)
        finally:
            self._keep_cross_attention(False)
            self.train(was_training)
        B, K = src.shape[0], beam_size
        best = []
        for b in range(B):
            ranked = [scores[b * K + k] / (lengths[b * K + k] ** length_penalty)
                      for k in range(K)]
            best.append(b * K + max(range(K), key=lambda k: ranked[k]))
        rows = _index(best, ys)
        self.last_cross_attention = [cat(p, dim=2)[rows] for p in cross]      # (B, H, L, S)
        return ys[rows][:, 1:]

    def _beam_loop(self, src, K, max_len):
        c = self.config
        B = src.shape[0]
        memory, pad = self.encode(src)
        rep = _index([b for b in range(B) for _ in range(K)], src)            # (B*K,)
        memory, pad = memory[rep], pad[rep]                                   # (B*K, S, d)
        ys = full((B * K, 1), c.bos_id, dtype=int64, device=src.device)
        scores = [0.0 if k == 0 else float("-inf") for _ in range(B) for k in range(K)]
        done = [False] * (B * K)
        lengths = [1] * (B * K)
        caches = self.decoder.new_caches()
        cross = [[] for _ in self.decoder.layers]
        for step in range(max_len):
            logits = self.decode(ys[:, -1:], memory, pad, caches, offset=step)  # (B*K, 1, V)
            logp = logits[:, -1].log_softmax(-1).tolist()                      # (B*K, V)
            rows, tokens, new_scores = [], [], []
            for b in range(B):
                cand = []                                                      # (score, row, tok)
                for k in range(K):
                    r = b * K + k
                    if done[r]:
                        cand.append((scores[r], r, c.pad_id))
                    elif scores[r] != float("-inf"):
                        cand.extend((scores[r] + lp, r, t) for t, lp in enumerate(logp[r]))
                cand.sort(key=lambda x: -x[0])            # stable: ties keep the lower token
                cand = (cand + [(float("-inf"), b * K, c.pad_id)] * K)[:K]
                for s, r, t in cand:
                    rows.append(r)
                    tokens.append(t)
                    new_scores.append(s)
            idx = _index(rows, src)
            ys = cat([ys[idx], _index(tokens, src).unsqueeze(1)], dim=1)
            for cache in caches:
                cache.reorder(idx)
            self._collect_cross(cross, step_rows=idx)
            old_done, old_len = done, lengths
            done = [old_done[r] or t == c.eos_id for r, t in zip(rows, tokens)]
            lengths = [old_len[r] + (0 if old_done[r] else 1) for r in rows]
            scores = new_scores
            if all(done[i] or scores[i] == float("-inf") for i in range(B * K)):
                break
        return ys, scores, lengths, cross


def _index(values, like):
    """An int64 index tensor on like's device."""
    return tensor(values, dtype=int64, device=like.device)


__all__ = ["Seq2SeqConfig", "Seq2SeqTransformer"]
