"""nn.Embedding: a lookup table of num_embeddings vectors, initialised N(0, 1) as in torch."""
from .. import creation
from . import functional as F
from . import init
from .module import Module, Parameter


class Embedding(Module):
    """Args: num_embeddings V, embedding_dim C. Indices (*) int64 -> (*, C)."""

    def __init__(self, num_embeddings, embedding_dim, device="cpu", dtype=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = Parameter(creation.empty(num_embeddings, embedding_dim, device=device,
                                               dtype=dtype))
        init.normal_(self.weight)

    def forward(self, input):
        return F.embedding(input, self.weight)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"
