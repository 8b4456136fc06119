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


def worker_timeline(values: dict[str, Any]) -> Figure:
    """A supervisor run: when each worker ran, batch by batch, coloured by outcome."""
    results = sorted(values["results"].values(), key=lambda r: (r["batch"], r["started_at"]))
    start = min(r["started_at"] for r in results)
    figure = PngFigure(figsize=(9, 0.5 + 0.45 * len(results)))
    axis = figure.subplots()
    for row, result in enumerate(results):
        left = result["started_at"] - start
        width = max(result["finished_at"] - result["started_at"], 0.01)
        axis.barh(row, width, left=left, color=STATUS_COLOURS[result["status"]])
        confidence = (result["report"] or {}).get("confidence")
        label = f"batch {result['batch']}" + (f", conf. {confidence:.2f}" if confidence else "")
        axis.text(left + width, row, f"  {label}", va="center", fontsize=8)
    axis.set_yticks(range(len(results)), [r["worker"] for r in results])
    axis.invert_yaxis()
    axis.set(
        xlabel="seconds since the first worker started",
        title="workers (green: ok, orange: a fallback stood in, red: failed)",
    )
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
