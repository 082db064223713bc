"""A small pure-Python SVG drawing of a Graph: the fallback when Graphviz cannot lay one out.

Layered layout, simple but readable:
1. rank: the longest path from a node to the root (edges point input -> user, so an input
   always sits above every op that uses it); rows top to bottom by falling rank, the root
   at the bottom. "repeat" edges (the loop of a collapsed block) are left out of the ranking.
2. order in a row: discovery order, then a few barycenter sweeps (down, then up) to
   uncross edges.
3. x: each node moves toward the mean x of its neighbours, then the row is pushed apart to
   keep a gap between boxes.
Each node is one `<g class="node">` (a rect and its label lines), each edge one
`<g class="edge">` (a cubic curve with an arrow head), each cluster one `<g class="cluster">`.
"""

FONT = 11                        # px
CHAR_W = 6.4                     # px per character of FONT (Helvetica-ish average)
LINE_H = 14
PAD_X, PAD_Y = 8, 5
GAP_X, GAP_Y = 16, 34
MARGIN = 20
FILL = {"op": "#d3d3d3", "leaf": "#add8e6", "more": "#ffffff", "root": "#caff70"}


def escape(text):
    """text safe inside an XML element or a double-quoted attribute."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _ranks(graph):
    """{key: longest path to the root}, users before inputs (Kahn's order on users)."""
    users_left = {n.key: 0 for n in graph.nodes}
    inputs = {n.key: [] for n in graph.nodes}
    for e in graph.edges:
        if e.style != "repeat":
            users_left[e.src] += 1
            inputs[e.dst].append(e.src)
    rank = {n.key: 0 for n in graph.nodes}
    ready = [n.key for n in graph.nodes if users_left[n.key] == 0]
    while ready:
        key = ready.pop()
        for src in inputs[key]:
            rank[src] = max(rank[src], rank[key] + 1)
            users_left[src] -= 1
            if users_left[src] == 0:
                ready.append(src)
    return rank


def _box(node):
    """(width, height) of a node's box from its label."""
    lines = node.lines()
    return (max(len(s) for s in lines) * CHAR_W + 2 * PAD_X, len(lines) * LINE_H + 2 * PAD_Y)


def _neighbours(graph):
    near = {n.key: [] for n in graph.nodes}
    for e in graph.edges:
        if e.style != "repeat":
            near[e.src].append(e.dst)
            near[e.dst].append(e.src)
    return near


def _order_rows(graph, rank):
    """Rows top to bottom (highest rank first), each a list of keys, barycenter-sorted."""
    top = max(rank.values())
    rows = [[] for _ in range(top + 1)]
    for n in graph.nodes:
        rows[top - rank[n.key]].append(n.key)
    near = _neighbours(graph)
    for sweep in range(4):
        pos = {k: (i + 0.5) / len(row) for row in rows for i, k in enumerate(row)}
        row_of = {k: r for r, row in enumerate(rows) for k in row}
        sequence = range(1, len(rows)) if sweep % 2 == 0 else range(len(rows) - 2, -1, -1)
        for r in sequence:
            above = (lambda k: row_of[k] < r) if sweep % 2 == 0 else (lambda k: row_of[k] > r)
            rows[r].sort(key=lambda k: _barycenter(k, near, pos, above))
            pos.update({k: (i + 0.5) / len(rows[r]) for i, k in enumerate(rows[r])})
    group = {n.key: n.group for n in graph.nodes}
    return [_keep_groups_together(row, group) for row in rows]


def _keep_groups_together(row, group):
    """row reordered so that the members of a cluster sit side by side (at their mean
    place): a cluster's band in a row then holds no other node."""
    index = {k: i for i, k in enumerate(row)}
    members = {}
    for k in row:
        members.setdefault(group[k], []).append(index[k])
    mean = {g: sum(ix) / len(ix) for g, ix in members.items() if g is not None}
    return sorted(row, key=lambda k: (mean.get(group[k], index[k]), index[k]))


def _barycenter(key, near, pos, wanted):
    xs = [pos[k] for k in near[key] if wanted(k)]
    return sum(xs) / len(xs) if xs else pos[key]


def _place(graph, rows):
    """{key: (cx, cy, w, h)}: rows stacked top to bottom, x pulled toward neighbours."""
    size = {n.key: _box(n) for n in graph.nodes}
    near = _neighbours(graph)
    x = {}
    for row in rows:                                   # start packed, centred on 0
        width = sum(size[k][0] for k in row) + GAP_X * (len(row) - 1)
        left = -width / 2
        for k in row:
            x[k] = left + size[k][0] / 2
            left += size[k][0] + GAP_X
    for sweep in range(6):
        for row in (rows if sweep % 2 == 0 else rows[::-1]):
            want = [sum(x[j] for j in near[k]) / len(near[k]) if near[k] else x[k] for k in row]
            _spread(row, want, size, x)
    left = min(x[k] - size[k][0] / 2 for k in x)
    place, y = {}, MARGIN
    for row in rows:
        h = max(size[k][1] for k in row)
        for k in row:
            place[k] = (x[k] - left + MARGIN, y + h / 2, size[k][0], size[k][1])
        y += h + GAP_Y
    return place


def _spread(row, want, size, x):
    """x of the row's nodes: as near their wanted x as the gaps allow, order kept."""
    placed = []
    for k, target in zip(row, want):
        lo = placed[-1] + GAP_X + size[k][0] / 2 if placed else -1e18
        x[k] = max(target, lo)
        placed.append(x[k] + size[k][0] / 2)            # the box's right edge
    shift = sum(target - x[k] for k, target in zip(row, want)) / len(row)   # pushing moved the row
    for k in row:                                                 # right: centre it again
        x[k] += shift


def render_svg(graph, title="autograd graph"):
    """The SVG text of graph (a Graph from autograd_graph / collapse)."""
    rows = _order_rows(graph, _ranks(graph))
    place = _place(graph, rows)
    bands = {key: _bands(key, graph, rows, place) for key in graph.clusters}
    right = max(cx + w / 2 for cx, _, w, _ in place.values()) + 10   # loops run past it
    has_loops = any(e.style == "repeat" for e in graph.edges)
    width = right - 10 + MARGIN + (160 if has_loops else 0)        # room for the loops' label
    height = max(cy + h / 2 for _, cy, _, h in place.values()) + MARGIN
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="Helvetica, Arial, sans-serif" '
           f'font-size="{FONT}">',
           f"<title>{escape(title)}</title>",
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
           'fill="#444"/></marker></defs>',
           '<rect width="100%" height="100%" fill="white"/>']
    out += [_cluster(key, label, bands[key]) for key, label in graph.clusters.items()]
    n_loops = 0
    for e in graph.edges:
        if e.style == "repeat":
            n_loops += 1
            out.append(_loop(e, place, right + 14 * n_loops))
        else:
            out.append(_edge(e, place))
    out += [_node(n, place[n.key]) for n in graph.nodes]
    out.append("</svg>")
    return "\n".join(s for s in out if s)


def _bands(key, graph, rows, place):
    """[(y0, x0, x1, y1)] one box per row holding members of cluster key."""
    members = {n.key for n in graph.nodes if n.group == key}
    out = []
    for row in rows:
        boxes = [place[k] for k in row if k in members]
        if boxes:
            top = min(cy - h / 2 for _, cy, _, h in boxes) - GAP_Y / 2 + 2
            bottom = max(cy + h / 2 for _, cy, _, h in boxes) + GAP_Y / 2 - 2
            out.append((top, min(cx - w / 2 for cx, _, w, _ in boxes) - 10,
                        max(cx + w / 2 for cx, _, w, _ in boxes) + 10, bottom))
    return out


def _node(node, where):
    cx, cy, w, h = where
    fill = FILL["root" if node.is_root else node.kind]
    stroke = "none" if node.kind == "more" else "#333"
    lines = node.lines()
    y0 = cy - (len(lines) - 1) * LINE_H / 2 + FONT * 0.35
    text = "".join(f'<tspan x="{cx:.1f}" y="{y0 + i * LINE_H:.1f}">{escape(s)}</tspan>'
                   for i, s in enumerate(lines))
    rx = 6 if node.kind == "op" else 0
    return (f'<g class="node" id="{node.key}"><title>{escape(node.title)}</title>'
            f'<rect x="{cx - w / 2:.1f}" y="{cy - h / 2:.1f}" width="{w:.1f}" height="{h:.1f}" '
            f'rx="{rx}" fill="{fill}" stroke="{stroke}"/>'
            f'<text text-anchor="middle">{text}</text></g>')


def _edge(edge, place):
    """A curve from the bottom of src to the top of dst."""
    x1, y1, _, h1 = place[edge.src]
    x2, y2, _, h2 = place[edge.dst]
    sy, ey = y1 + h1 / 2, y2 - h2 / 2
    dy = (ey - sy) / 2
    d = f"M{x1:.1f},{sy:.1f} C{x1:.1f},{sy + dy:.1f} {x2:.1f},{ey - dy:.1f} {x2:.1f},{ey:.1f}"
    dash = ' stroke-dasharray="2,3"' if edge.style == "more" else ""
    return (f'<g class="edge"><title>{edge.src}-&gt;{edge.dst}</title>'
            f'<path d="{d}" fill="none" stroke="#444"{dash} marker-end="url(#arrow)"/></g>')


def _loop(edge, place, x_out):
    """A "repeat" edge, in the gaps between rows: down out of src, right to x_out (past the
    cluster), up, left above dst, down into it."""
    x1, y1, _, h1 = place[edge.src]
    x2, y2, _, h2 = place[edge.dst]
    below, above = y1 + h1 / 2 + GAP_Y / 3, y2 - h2 / 2 - GAP_Y / 3
    d = (f"M{x1 + 6:.1f},{y1 + h1 / 2:.1f} V{below:.1f} H{x_out:.1f} V{above:.1f} "
         f"H{x2 + 6:.1f} V{y2 - h2 / 2:.1f}")
    label = (f'<text x="{x_out + 4:.1f}" y="{(below + above) / 2:.1f}" fill="firebrick">'
             f'{escape(edge.label)}</text>') if edge.label else ""
    return (f'<g class="edge"><title>{edge.src}-&gt;{edge.dst}</title>'
            f'<path d="{d}" fill="none" stroke="firebrick" stroke-dasharray="6,4" '
            f'marker-end="url(#arrow)"/>{label}</g>')


def _cluster(key, label, bands):
    """The cluster's rows as one tinted shape (a box per row), its label over the first."""
    if not bands:
        return ""
    rects = "".join(f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" '
                    f'height="{y1 - y0:.1f}" fill="#e8f1fb" stroke="none"/>'
                    for y0, x0, x1, y1 in bands)
    y0, x0, _, _ = bands[0]
    return (f'<g class="cluster"><title>{escape(key)}</title>{rects}'
            f'<text x="{x0 + 4:.1f}" y="{y0 + 10:.1f}" fill="steelblue">{escape(label)}</text>'
            f'</g>')
