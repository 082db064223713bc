"""Draw the autograd graph of one causal single-head attention layer (docs/graph_attention.svg),
and of a 4-layer GPT's loss with its identical blocks collapsed (docs/graph_gpt_nano.svg).

    python examples/draw_attention_graph.py [OUT_DIR]

The layer is written out op by op so each step is a node of the graph:

    q, k, v = x @ Wq.T + bq, x @ Wk.T + bk, x @ Wv.T + bv        (B, T, D)
    scores  = q @ k.T / sqrt(D)                                   (B, T, T)
    scores  = scores masked with -inf above the diagonal          (causal: no peeking ahead)
    weights = softmax(scores, -1);  out = weights @ v              (B, T, D)
    loss    = mean(out ** 2)

Leaves are named after the module's parameters, and carry their gradient norm (backward
runs first). The mask and x take no gradient, so, as in torch's graph, they are not nodes.
Rendering uses Graphviz's `dot` when installed, else pygraphviz, else tinygradattn's own
pure-Python SVG layout: `pip install 'tinygradattn[viz-render]'` for the drawing in docs/.
"""
import math
import pathlib
import sys

import tinygradattn as tga
from tinygradattn import nn
from tinygradattn.models import GPT, GPTConfig

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"


class SingleHeadAttention(nn.Module):
    """Causal self-attention with one head of size D, composed of plain ops."""

    def __init__(self, n_embd, head_size):
        super().__init__()
        self.q_proj = nn.Linear(n_embd, head_size)
        self.k_proj = nn.Linear(n_embd, head_size)
        self.v_proj = nn.Linear(n_embd, head_size)

    def forward(self, x):                                       # x: (B, T, C)
        T, D = x.shape[1], self.q_proj.out_features
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)       # (B, T, D)
        scores = q @ k.transpose(-2, -1) / math.sqrt(D)                 # (B, T, T)
        future = tga.ones(T, T, dtype=tga.bool).triu(1)                # True above diagonal
        scores = scores.masked_fill(future, float("-inf"))
        weights = scores.softmax(-1)                                    # (B, T, T)
        return weights @ v                                              # (B, T, D)


def attention_graph(B=2, T=5, C=8, D=4, seed=0):
    """(graphviz Digraph, module, loss) of one forward and backward of the layer."""
    tga.manual_seed(seed)
    layer = SingleHeadAttention(C, D)
    x = tga.randn(B, T, C)
    loss = (layer(x) ** 2).mean()
    loss.backward()
    return tga.viz.draw_graph(loss, layer), layer, loss


def gpt_graphs(seed=0):
    """(full Graph, collapsed Digraph) of a nano GPT's loss after backward: 4 layers."""
    tga.manual_seed(seed)
    config = GPTConfig(vocab_size=65, block_size=16, n_layer=4, n_head=4, n_embd=32)
    model = GPT(config)
    idx = tga.randint(0, config.vocab_size, (2, config.block_size))
    _, loss = model(idx, idx)
    loss.backward()
    return tga.viz.autograd_graph(loss, model), tga.viz.draw_graph(loss, model, collapse=True)


def main(argv):
    out_dir = pathlib.Path(argv[1]) if len(argv) > 1 else DOCS
    dot, _, _ = attention_graph()
    graph = dot.tga_graph
    print(f"attention: {graph.n_nodes} nodes, {graph.n_edges} edges:")
    for node in graph.nodes:
        print("  " + " | ".join(node.lines()))
    print("wrote", tga.viz.save_svg(dot, out_dir / "graph_attention.svg"))
    full, small = gpt_graphs()
    print(f"GPT nano (4 layers): {full.n_nodes} nodes, {full.n_edges} edges; collapsed: "
          f"{small.tga_graph.n_nodes} nodes, {small.tga_graph.n_edges} edges")
    print("wrote", tga.viz.save_svg(small, out_dir / "graph_gpt_nano.svg"))


if __name__ == "__main__":
    main(sys.argv)
