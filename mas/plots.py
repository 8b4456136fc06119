"""Pictures of finished runs, for notebooks: where a person would rather look than read.

Each function takes a run's final state (`mas.run(...)` returns it) and returns a
matplotlib `Figure`; in Jupyter, a figure as a cell's last value is drawn inline.
Needs matplotlib (`pip install -e '.[notebooks]'`).
"""

from __future__ import annotations

from datetime import datetime
from io import BytesIO
from typing import Any

from matplotlib.figure import Figure

STATUS_COLOURS = {
    "ok": "tab:green",
    "fallback": "tab:orange",
    "failed": "tab:red",
    "succeeded": "tab:green",
    "compensated": "tab:orange",
    "compensation_failed": "tab:red",
    "approved": "tab:blue",
    "rejected": "tab:purple",
}


class PngFigure(Figure):
    """A figure Jupyter draws as a PNG whatever matplotlib backend is active (no pyplot
    state involved, so plotting never opens a window or leaks figures)."""

    def _repr_png_(self) -> bytes:
        buffer = BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


def team_results(values: dict[str, Any], prefix: str = "") -> list[tuple[str, int, Any]]:
    """A supervisor run's worker results at every depth, each a team's members right
    after it: (path like `backend/api`, depth from 0, result)."""
    rows: list[tuple[str, int, Any]] = []
    results = sorted(
        values.get("results", {}).values(), key=lambda r: (r["batch"], r["started_at"])
    )
    for result in results:
        path = f"{prefix}{result['worker']}"
        rows.append((path, path.count("/"), result))
        team = result.get("team") or {}
        if "results" in team.get("values", {}):  # a team with workers of its own
            rows += team_results(team["values"], f"{path}/")
    return rows


def worker_timeline(values: dict[str, Any]) -> Figure:
    """A supervisor run: when each worker ran, batch by batch, a team's members under
    it, coloured by outcome."""
    rows = team_results(values)
    start = min(r["started_at"] for _, _, r in rows)
    figure = PngFigure(figsize=(9, 0.5 + 0.45 * len(rows)))
    axis = figure.subplots()
    for row, (_, depth, result) in enumerate(rows):
        left = result["started_at"] - start
        width = max(result["finished_at"] - result["started_at"], 0.01)
        axis.barh(
            row,
            width,
            left=left,
            color=STATUS_COLOURS[result["status"]],
            alpha=1.0 if depth == 0 else 0.7,
        )
        confidence = (result["report"] or {}).get("confidence")
        label = f"batch {result['batch']}" + (f", conf. {confidence:.2f}" if confidence else "")
        axis.text(left + width, row, f"  {label}", va="center", fontsize=8)
    axis.set_yticks(
        range(len(rows)), ["    " * depth + path.rsplit("/")[-1] for path, depth, _ in rows]
    )
    axis.invert_yaxis()
    axis.set(
        xlabel="seconds since the first worker started",
        title="workers (green: ok, orange: a fallback stood in, red: failed)",
    )
    figure.tight_layout()
    return figure


def team_tree(values: dict[str, Any], name: str = "supervisor") -> Figure:
    """A supervisor run's team as a tree: each worker under its lead, with its kind
    (a role, a registered agent, or the pattern of a nested team), coloured by outcome."""
    rows = team_results(values)
    children: dict[str, list[str]] = {"": []}
    labels, colours = {"": name}, {"": "tab:blue"}
    for path, _, result in rows:
        parent = path.rpartition("/")[0]
        children.setdefault(parent, []).append(path)
        children.setdefault(path, [])
        kind = (result.get("team") or {}).get("pattern") or result.get("kind", "role")
        labels[path] = f"{path.rsplit('/')[-1]}\n{kind}"
        colours[path] = STATUS_COLOURS.get(result["status"], "tab:gray")
    where: dict[str, tuple[float, float]] = {}

    def place(node: str, depth: int, next_leaf: float) -> float:
        """Leaves left to right, each parent centred over its children."""
        if not children[node]:
            where[node] = (next_leaf, -depth)
            return next_leaf + 1
        for child in children[node]:
            next_leaf = place(child, depth + 1, next_leaf)
        xs = [where[c][0] for c in children[node]]
        where[node] = ((min(xs) + max(xs)) / 2, -depth)
        return next_leaf

    leaves = place("", 0, 0.0)
    depth = max((d for _, d, _ in rows), default=0) + 1
    figure = PngFigure(figsize=(max(4.0, 1.5 * leaves), 1.0 + 1.3 * depth))
    axis = figure.subplots()
    for parent, kids in children.items():
        for child in kids:
            (x0, y0), (x1, y1) = where[parent], where[child]
            axis.plot([x0, x1], [y0, y1], color="lightgray", zorder=0)
    for node, (x, y) in where.items():
        axis.text(
            x,
            y,
            labels[node],
            ha="center",
            va="center",
            fontsize=8,
            color="white",
            bbox={"boxstyle": "round", "facecolor": colours[node], "edgecolor": "none"},
        )
    axis.set(xlim=(-0.7, leaves - 0.3), ylim=(-depth - 0.5, 0.5), title="the team")
    axis.axis("off")
    figure.tight_layout()
    return figure


def graph_picture(graph: Any, title: str = "") -> Figure:
    """A compiled LangGraph graph's nodes and edges, drawn without a network service:
    nodes in rows by their distance from the start, conditional edges dashed."""
    drawable = graph.get_graph()
    # LangGraph's error-handler nodes are wired inside their node, with no edges to draw
    linked = {end for edge in drawable.edges for end in (edge.source, edge.target)}
    nodes = [node for node in drawable.nodes if node in linked]
    rank = {"__start__": 0}
    frontier = ["__start__"]
    while frontier:
        node = frontier.pop(0)
        for edge in drawable.edges:
            if edge.source == node and edge.target not in rank:
                rank[edge.target] = rank[node] + 1
                frontier.append(edge.target)
    rows: dict[int, list[str]] = {}
    for node in nodes:
        rows.setdefault(rank.get(node, max(rank.values()) + 1), []).append(node)
    where = {
        node: (column - (len(members) - 1) / 2, -level)
        for level, members in rows.items()
        for column, node in enumerate(members)
    }
    width = max(len(members) for members in rows.values())
    figure = PngFigure(figsize=(max(6.0, 2.2 * width), 0.9 * len(rows) + 1))
    axis = figure.subplots()
    for edge in drawable.edges:
        (x0, y0), (x1, y1) = where[edge.source], where[edge.target]
        axis.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops={
                "arrowstyle": "->",
                "color": "gray",
                "linestyle": "--" if edge.conditional else "-",
                "connectionstyle": "arc3,rad=0.15" if y1 >= y0 else "arc3",
                "shrinkA": 12,
                "shrinkB": 12,
            },
        )
    for node, (x, y) in where.items():
        axis.text(
            x,
            y,
            node.strip("_"),
            ha="center",
            va="center",
            fontsize=8,
            bbox={"boxstyle": "round", "facecolor": "lavender", "edgecolor": "slateblue"},
        )
    axis.set(
        xlim=(-width / 2 - 0.5, width / 2 + 0.5),
        ylim=(-len(rows) + 0.5, 0.5),
        title=title,
    )
    axis.axis("off")
    figure.tight_layout()
    return figure


def debate_rounds(values: dict[str, Any]) -> Figure:
    """A debate: each debater's confidence per round (x: a concession), and the votes."""
    figure = PngFigure(figsize=(11, 4))
    rounds_axis, votes_axis = figure.subplots(1, 2, width_ratios=(3, 2))
    turns = [t for t in values.get("transcript", []) if t["status"] == "ok"]
    for speaker in dict.fromkeys(t["speaker"] for t in turns):
        own = [t for t in turns if t["speaker"] == speaker]
        rounds_axis.plot(
            [t["round"] for t in own], [t["confidence"] for t in own], marker="o", label=speaker
        )
        for t in own:
            if t["conceded"]:
                rounds_axis.plot(t["round"], t["confidence"], marker="x", color="black", ms=12)
    rounds_axis.set(xlabel="round", ylabel="confidence", ylim=(-0.05, 1.05), title="debaters")
    rounds_axis.set_xticks(sorted({t["round"] for t in turns}) or [1])
    rounds_axis.legend(fontsize=8)
    verdict = values.get("verdict", {})
    tally = verdict.get("tally") or {
        str(t["position"]): 1.0 for t in {t["speaker"]: t for t in turns}.values()
    }
    comparison = values.get("comparison")
    if comparison:
        tally = {str(k): float(v) for k, v in comparison["self_consistency"]["votes"].items()}
    bars = votes_axis.bar(list(tally), list(tally.values()), color="tab:gray")
    for bar, name in zip(bars, tally, strict=True):
        if name == verdict.get("winner"):
            bar.set_color("tab:green")
    title = (
        "self-consistency votes\n(green: the debate's answer)"
        if comparison
        else f"final positions; winner: {verdict.get('winner', '-')}"
    )
    votes_axis.set(title=title, ylabel="votes" if comparison else "weight")
    figure.tight_layout()
    return figure


def scenario_timeline(values: dict[str, Any]) -> Figure:
    """A scenarios run: each scenario's progress at every sync point, milestones marked."""
    timeline = values.get("timeline", [])
    figure = PngFigure(figsize=(9, 4))
    axis = figure.subplots()
    names = list(timeline[0]["scenarios"]) if timeline else []
    for name in names:
        times = [0.0] + [m["at_ms"] / 1000 for m in timeline]
        done = [0.0] + [m["scenarios"][name]["pct"] for m in timeline]
        axis.plot(times, done, marker="o", label=name)
        status = timeline[-1]["scenarios"][name]["status"]
        if status != "done":
            axis.annotate(status, (times[-1], done[-1]), textcoords="offset points", xytext=(4, 4))
    for milestone in timeline:
        axis.axvline(milestone["at_ms"] / 1000, color="lightgray", linestyle="--", zorder=0)
        axis.text(milestone["at_ms"] / 1000, 101, milestone["label"], fontsize=7, ha="center")
    axis.set(xlabel="seconds", ylabel="% of items done", ylim=(0, 108), title="scenarios")
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def saga_timeline(values: dict[str, Any]) -> Figure:
    """A saga: every step, approval and compensation as a bar in time, coloured by outcome."""
    log = values.get("step_log", [])
    start = min((datetime.fromisoformat(e["started_at"]) for e in log), default=None)
    figure = PngFigure(figsize=(9, 0.5 + 0.45 * max(len(log), 1)))
    axis = figure.subplots()
    for row, entry in enumerate(log):
        assert start is not None
        begin = (datetime.fromisoformat(entry["started_at"]) - start).total_seconds()
        end = (datetime.fromisoformat(entry["finished_at"]) - start).total_seconds()
        width = max(end - begin, 0.01)
        axis.barh(row, width, left=begin, color=STATUS_COLOURS.get(entry["event"], "tab:gray"))
        attempts = f", {entry['attempts']} attempts" if entry["attempts"] > 1 else ""
        axis.text(begin + width, row, f"  {entry['event']}{attempts}", va="center", fontsize=8)
    axis.set_yticks(range(len(log)), [e["node"] for e in log])
    axis.invert_yaxis()
    axis.set(xlabel="seconds since the saga started", title=f"saga: {values.get('status', '')}")
    figure.tight_layout()
    return figure
