"""What makes a run's output worth reading, as checks on its final state: no copied
placeholders or schema words, no failed agents, debaters on their side, and answers
about the task. Used by the end-to-end tests on the embedded model (which require
them on the README inputs) and by `python -m benchmarks.quality` (which reports rates).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel

from mas_graphs.state import debate as debate_state
from mas_graphs.state import saga as saga_state
from mas_graphs.state import supervisor as supervisor_state

PLACEHOLDER = re.compile(r"<[^<>\n]{1,80}>")
WORD = re.compile(r"[a-z][a-z'-]{3,}")
STOPWORDS = frozenset(
    [
        "that",
        "this",
        "with",
        "from",
        "have",
        "will",
        "would",
        "should",
        "could",
        "their",
        "there",
        "them",
        "they",
        "what",
        "when",
        "which",
        "about",
        "into",
        "than",
        "then",
        "also",
        "more",
        "most",
        "some",
        "such",
        "only",
        "other",
        "over",
        "your",
        "just",
        "like",
        "does",
        "make",
        "made",
        "much",
        "many",
        "very",
        "well",
        "been",
        "being",
        "were",
        "your",
        "team",
    ]
)
# A default-stance debater stating the other side's answer, e.g. an affirmative
# "The answer to the question is no." (a lexical check: right for yes/no questions).
STATES_ANSWER = {
    "yes": re.compile(r"\banswer(?: to [^.]*?)? is yes\b|\bis true\b", re.I),
    "no": re.compile(r"\banswer(?: to [^.]*?)? is no\b|\bis false\b", re.I),
}
OTHER_ANSWER = {"affirmative": STATES_ANSWER["no"], "negative": STATES_ANSWER["yes"]}

# The agent outputs each pattern's final state keeps, by where they sit in the state.
OUTPUT_MODELS: tuple[type[BaseModel], ...] = (
    supervisor_state.Plan,
    supervisor_state.WorkerReport,
    supervisor_state.ConflictFound,
    supervisor_state.Arbitration,
    supervisor_state.Synthesis,
    debate_state.DebaterTurn,
    debate_state.RebuttalTurn,
    debate_state.SolverTurn,
    debate_state.SideAnswer,
    debate_state.FreeAnswer,
    debate_state.JudgeVerdict,
    saga_state.RiskAssessment,
)


@cache
def schema_words() -> tuple[frozenset[str], tuple[str, ...]]:
    """Field names (a value that is just a field name was copied from the schema) and the
    field descriptions agents are shown (a value containing one was copied too)."""
    names: set[str] = set()
    descriptions: set[str] = set()
    for model in OUTPUT_MODELS:
        for name, info in model.model_fields.items():
            names.add(name.lower())
            if info.description and len(info.description) >= 15:
                descriptions.add(info.description.lower().rstrip("."))
    return frozenset(names), tuple(sorted(descriptions))


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, f"{path}.{key}".lstrip("."))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, f"{path}.{index}")


def copied_from_schema(text: str) -> bool:
    names, descriptions = schema_words()
    lowered = text.strip().lower()
    return (
        bool(PLACEHOLDER.search(text))
        or lowered.rstrip(".") in names
        or any(d in lowered for d in descriptions)
    )


def model_text(pattern: str, values: dict[str, Any]) -> dict[str, Any]:
    """The parts of a final state that agents wrote (not the input, not bookkeeping)."""
    if pattern == "supervisor":
        results = values.get("results", {})
        return {
            "reports": {n: r["report"] for n, r in results.items() if r.get("report")},
            "synthesis": {
                k: values.get("synthesis", {}).get(k) for k in ("summary", "recommendations")
            },
            "resolutions": [r["resolution"] for r in values.get("resolutions", [])],
        }
    if pattern == "debate":
        verdict = values.get("verdict", {})
        return {
            "turns": [
                {"argument": t["argument"], "rebuttals": t["rebuttals"], "answer": t["answer"]}
                for t in values.get("transcript", [])
                if t["status"] == "ok"
            ],
            "verdict": {
                k: verdict.get(k) for k in ("reasoning", "decisive_for", "decisive_against")
            },
        }
    if pattern == "saga":
        return {"risk": values.get("effects", {}).get("risk_check", {}).get("detail", {})}
    return {}


@dataclass
class Quality:
    """One run's checks; counts, so a benchmark can sum them into rates."""

    fields: int = 0
    placeholder_fields: list[str] = field(default_factory=list)
    agents: int = 0
    failed_agents: list[str] = field(default_factory=list)
    planner_fallback: bool = False
    turns: int = 0
    off_side: list[str] = field(default_factory=list)
    shares_task_words: bool = True


def content_words(text: str) -> set[str]:
    return {w for w in WORD.findall(text.lower()) if w not in STOPWORDS}


def check(pattern: str, data: dict[str, Any], values: dict[str, Any]) -> Quality:
    """The quality checks of one finished run of `pattern` on input `data`."""
    quality = Quality()
    for path, text in strings(model_text(pattern, values)):
        quality.fields += 1
        if copied_from_schema(text):
            quality.placeholder_fields.append(f"{path}: {text[:80]!r}")
    if pattern == "supervisor":
        results = values.get("results", {})
        quality.agents = len(results) + 2  # the workers, the planner, the synthesiser
        quality.failed_agents = [n for n, r in results.items() if r["status"] != "ok"]
        quality.planner_fallback = values.get("plan", {}).get("source") == "fallback"
        if quality.planner_fallback:
            quality.failed_agents.append("planner")
        note = values.get("synthesis", {}).get("note", "")
        quality.failed_agents += [a for a in ("synthesizer", "conflict detection") if a in note]
        summary = values.get("synthesis", {}).get("summary", "")
        quality.shares_task_words = bool(content_words(summary) & content_words(data["task"]))
    elif pattern == "debate":
        turns = [t for t in values.get("transcript", []) if t["status"] == "ok"]
        quality.agents = len(values.get("transcript", [])) + (1 if "draft_verdict" in values else 0)
        quality.failed_agents = [f"{f['agent']}@{f['round']}" for f in values.get("failures", [])]
        quality.turns = len(turns)
        for turn in turns:
            flipped = turn["position"] != turn["speaker"] and not turn["conceded"]
            states_other = turn["speaker"] in OTHER_ANSWER and bool(
                OTHER_ANSWER[turn["speaker"]].search(turn["argument"])
            )
            if values.get("kind", "sides") == "sides" and (flipped or states_other):
                quality.off_side.append(f"{turn['speaker']}@{turn['round']}")
        said = " ".join(t["argument"] for t in turns) + " " + values["verdict"].get("reasoning", "")
        quality.shares_task_words = bool(content_words(said) & content_words(data["question"]))
    elif pattern == "saga":
        quality.agents = 1
        reason = values.get("effects", {}).get("risk_check", {}).get("detail", {}).get("reason", "")
        if reason.startswith("risk agent failed"):
            quality.failed_agents.append("risk_checker")
    elif pattern == "scenarios":
        for name, summary in values.get("aggregate", {}).get("scenarios", {}).items():
            items = summary["items_processed"]
            quality.agents += items
            unanswered = round(items * (1 - summary["quality"].get("answered", 1.0)))
            quality.failed_agents += [f"{name}:labeler"] * unanswered
    return quality
