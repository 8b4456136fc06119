"""A compiled graph as an inline SVG, with the nodes a run has finished and the ones it
is at marked: laid out in layers by distance from the start, drawn on the server (no
JavaScript library, no network)."""

from __future__ import annotations

from collections import deque
from html import escape
from typing import Any

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 150, 30, 24, 46, 16
ENDS = ("__start__", "__end__")
HANDLERS = "__error_handler__"  # LangGraph's nodes for `error_handler=`: part of their node


def layers(nodes: list[str], edges: list[tuple[str, str]]) -> list[list[str]]:
    """Nodes by breadth-first distance from `__start__` (the end last of all); nodes the
    start does not reach go in the last layer before the end."""
    after: dict[str, list[str]] = {node: [] for node in nodes}
    for source, target in edges:
        after.setdefault(source, []).append(target)
    depth = {"__start__": 0}
    queue = deque(["__start__"])
    while queue:
        node = queue.popleft()
        for target in after.get(node, []):
            if target not in depth and target != "__end__":
                depth[target] = depth[node] + 1
                queue.append(target)
    deepest = max(depth.values(), default=0)
    for node in nodes:
        if node not in depth and node != "__end__":
            depth[node] = deepest + 1
    depth["__end__"] = max(depth.values()) + 1
    grouped: dict[int, list[str]] = {}
    for node in nodes:
        grouped.setdefault(depth[node], []).append(node)
    return [grouped[level] for level in sorted(grouped)]


def graph_svg(graph: Any, *, ran: set[str], current: set[str]) -> str:
    """`graph` (a compiled graph's `get_graph()`) as SVG markup; `ran` nodes are marked
    done, `current` ones as where the run is."""
    nodes = [node for node in graph.nodes if not node.startswith(HANDLERS)]
    edges = [
        (e.source, e.target, e.conditional)
        for e in graph.edges
        if e.source in nodes and e.target in nodes
    ]
    rows = layers(nodes, [(s, t) for s, t, _ in edges])
    width = max(len(row) for row in rows) * (BOX_W + GAP_X) - GAP_X + 2 * MARGIN
    height = len(rows) * (BOX_H + GAP_Y) - GAP_Y + 2 * MARGIN
    where: dict[str, tuple[float, float]] = {}
    for level, row in enumerate(rows):
        row_width = len(row) * (BOX_W + GAP_X) - GAP_X
        for index, node in enumerate(row):
            x = (width - row_width) / 2 + index * (BOX_W + GAP_X)
            where[node] = (x, MARGIN + level * (BOX_H + GAP_Y))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>',
    ]
    for source, target, conditional in edges:
        (x1, y1), (x2, y2) = where[source], where[target]
        start, end = (x1 + BOX_W / 2, y1 + BOX_H), (x2 + BOX_W / 2, y2)
        if y2 <= y1:  # back to an earlier layer: around the side
            side = max(x1, x2) + BOX_W + GAP_X / 2
            path = (
                f"M{x1 + BOX_W:.0f},{y1 + BOX_H / 2:.0f} C{side:.0f},{y1:.0f} "
                f"{side:.0f},{y2 + BOX_H:.0f} {x2 + BOX_W:.0f},{y2 + BOX_H / 2:.0f}"
            )
        else:
            path = f"M{start[0]:.0f},{start[1]:.0f} L{end[0]:.0f},{end[1]:.0f}"
        kind = "edge conditional" if conditional else "edge"
        parts.append(f'<path class="{kind}" d="{path}" marker-end="url(#arrow)"/>')
    for node, (x, y) in where.items():
        state = "current" if node in current else "done" if node in ran else "idle"
        if node in ENDS:
            state = "end"
        label = node.strip("_")
        parts.append(
            f'<g class="node {state}" data-node="{escape(node)}"><title>{escape(node)} '
            f'({state})</title><rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" '
            f'rx="6"/><text x="{x + BOX_W / 2:.0f}" y="{y + BOX_H / 2 + 4:.0f}">'
            f"{escape(label)}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


CHART_W, CHART_H, PAD = 720, 240, 36
SERIES = ("#0969da", "#1a7f37", "#9a6700", "#8250df", "#cf222e", "#57606a")


def scenarios_chart(timeline: list[dict[str, Any]]) -> str:
    """A scenarios run's milestone timeline as SVG: each scenario's share of items done
    at every sync point (a line each), the milestones as dashed verticals, and a late
    scenario's status where its line ends."""
    if not timeline:
        return ""
    names = list(timeline[0]["scenarios"])
    end_s = max(float(m["at_ms"]) for m in timeline) / 1000 or 1.0

    def x(seconds: float) -> float:
        return PAD + (CHART_W - 2 * PAD) * seconds / end_s

    def y(pct: float) -> float:
        return CHART_H - PAD - (CHART_H - 2 * PAD) * pct / 100

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{CHART_W}" '
        f'height="{CHART_H}" viewBox="0 0 {CHART_W} {CHART_H}" role="img">',
        f'<line class="axis" x1="{PAD}" y1="{y(0):.0f}" x2="{CHART_W - PAD}" y2="{y(0):.0f}"/>',
        f'<line class="axis" x1="{PAD}" y1="{y(0):.0f}" x2="{PAD}" y2="{y(100):.0f}"/>',
        f'<text x="{PAD - 4}" y="{y(100) + 4:.0f}" class="tick end">100%</text>',
        f'<text x="{CHART_W - PAD}" y="{CHART_H - 8}" class="tick end">{end_s:.1f} s</text>',
    ]
    for milestone in timeline:
        at = x(float(milestone["at_ms"]) / 1000)
        parts.append(
            f'<line class="milestone" x1="{at:.0f}" y1="{y(0):.0f}" x2="{at:.0f}" '
            f'y2="{y(100):.0f}"/><text x="{at:.0f}" y="{PAD - 8}" class="tick">'
            f"{escape(str(milestone['label']))}</text>"
        )
    for index, name in enumerate(names):
        colour = SERIES[index % len(SERIES)]
        points = [(x(0), y(0))] + [
            (x(float(m["at_ms"]) / 1000), y(float(m["scenarios"][name]["pct"])))
            for m in timeline
            if name in m["scenarios"]
        ]
        path = " ".join(f"{px:.0f},{py:.0f}" for px, py in points)
        last = timeline[-1]["scenarios"].get(name, {})
        label = escape(f"{name} ({last.get('status', '')})")
        parts.append(  # labels stacked at the right: lines often end at the same point
            f'<polyline class="series" data-scenario="{escape(name)}" points="{path}" '
            f'stroke="{colour}"/><text x="{CHART_W - PAD + 6}" y="{PAD + 14 * index:.0f}" '
            f'fill="{colour}" class="tick start">{label}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
