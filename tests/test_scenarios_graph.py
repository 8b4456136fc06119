"""Scenarios graph logic on an in-memory checkpointer: fan-out, sync modes, failures,
budgets, scaling, input validation and the CLI views."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from rich.console import Console

from mas.errors import InputError
from mas.patterns import get_pattern
from mas.runner import RunEvent
from mas_graphs.graphs import scenarios
from mas_graphs.graphs.views import scenarios as view
from mas_graphs.nodes.scenarios import growth_class, scaling
from mas_graphs.state.scenarios import ScenariosOptions
from tests.support.processes import logged_calls
from tests.support.scripts_scenarios import BATCH_INTERVALS, SLEEP_SKILL, notebook_model


async def run_graph(data: dict[str, Any], **options: Any) -> tuple[dict[str, Any], list[Any]]:
    """Final values and the custom stream events, in the order they happened."""
    graph = scenarios.build(
        ScenariosOptions(backoff_s=0.0, **options),
        checkpointer=InMemorySaver(),
        model=notebook_model(),
    )
    state, _ = get_pattern("scenarios").parse(data)
    config: Any = {"configurable": {"thread_id": "t"}}
    events = [chunk async for chunk in graph.astream(state, config, stream_mode="custom")]
    return (await graph.aget_state(config)).values, events


def sleepy(sync: str, *specs: dict[str, Any], item_s: float = 0.01, **extra: Any) -> dict[str, Any]:
    return {
        "skill": SLEEP_SKILL,
        "params": {"item_s": item_s},
        "sync": sync,
        "base_size": 4,
        "scenarios": list(specs),
        **extra,
    }


THREE = (
    {"name": "simple", "scale": 1, "batch_size": 1},
    {"name": "medium", "scale": 2, "batch_size": 2},
    {"name": "complex", "scale": 3, "batch_size": 3},
)


def batch_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["node"] == "run_batch"]


def sync_positions(events: list[dict[str, Any]]) -> list[int]:
    return [i for i, e in enumerate(events) if e["node"] == "milestone_sync"]


# --- fan-out and sync modes -------------------------------------------------------------


async def test_scenarios_run_concurrently() -> None:
    BATCH_INTERVALS.clear()
    specs = [{"name": n, "scale": 1, "batch_size": 4} for n in ("a", "b", "c")]
    values, _ = await run_graph(sleepy("free", *specs, item_s=0.05))
    assert {r["status"] for r in values["runs"].values()} == {"done"}
    # Each scenario is one 0.2 s batch: they overlap instead of running one after another.
    latest_start = max(start for _, start, _ in BATCH_INTERVALS)
    earliest_end = min(end for _, _, end in BATCH_INTERVALS)
    assert len(BATCH_INTERVALS) == 3 and latest_start < earliest_end
    assert values["aggregate"]["parallel_efficiency"] > 1.5


async def test_milestone_sync_runs_once_per_milestone_after_all_live_scenarios() -> None:
    values, events = await run_graph(sleepy("milestone", *THREE))
    milestones = [0.3, 0.5, 0.7, 0.9, 1.0]
    assert [m["label"] for m in values["timeline"]] == ["30%", "50%", "70%", "90%", "100%"]
    positions = sync_positions(events)
    assert len(positions) == len(milestones)
    sizes = {name: run["size"] for name, run in values["runs"].items()}
    for k, (pct, position) in enumerate(zip(milestones, positions, strict=True)):
        before = events[:position]
        for name, size in sizes.items():
            target = math.ceil(pct * size - 1e-9)
            reached = [e["items_done"] for e in batch_events(before) if e["scenario"] == name]
            assert reached and reached[-1] == target, (k, name)
            assert values["timeline"][k]["scenarios"][name]["items_done"] == target
        # nobody runs past a milestone before it is recorded
        previous = positions[k - 1] if k else 0
        later = batch_events(events[previous:position])
        assert all(e["items_done"] <= math.ceil(pct * sizes[e["scenario"]] - 1e-9) for e in later)


async def test_a_scenario_behind_at_a_deadline_is_recorded_late_and_joins_later() -> None:
    """`sync_timeout_s`: at 30 % the fast scenario stops waiting for the slow one after
    0.3 s; the slow one is recorded late with its progress, goes on, and the last sync
    point waits for both ends."""
    specs = (
        {"name": "fast", "scale": 1, "batch_size": 1},
        {"name": "slow", "scale": 10, "batch_size": 1},
    )
    data = sleepy("milestone", *specs, item_s=0.05, milestones=[0.3, 1.0], sync_timeout_s=0.3)
    values, events = await run_graph(data)
    first, last = values["timeline"]
    # the slow one needs 12 items (0.6 s) for 30 %; the deadline came first
    assert first["scenarios"]["slow"]["late"] is True
    assert 0 < first["scenarios"]["slow"]["items_done"] < 12
    assert first["scenarios"]["fast"] == {**first["scenarios"]["fast"], "late": False, "pct": 50.0}
    sync = next(e for e in events if e["node"] == "milestone_sync")
    assert sync["late"] == ["slow"]
    # it joined again: both finished, and the end was not cut short
    assert not last["scenarios"]["slow"]["late"] and not last["scenarios"]["fast"]["late"]
    assert {r["status"] for r in values["runs"].values()} == {"done"}
    assert values["runs"]["slow"]["items_done"] == 40


async def test_without_a_sync_timeout_every_sync_point_waits_for_all() -> None:
    specs = (
        {"name": "fast", "scale": 1, "batch_size": 1},
        {"name": "slow", "scale": 10, "batch_size": 1},
    )
    data = sleepy("milestone", *specs, item_s=0.01, milestones=[0.3, 1.0], sync_timeout_s=None)
    values, _ = await run_graph(data)
    first = values["timeline"][0]
    assert first["scenarios"]["slow"] == {**first["scenarios"]["slow"], "late": False}
    assert first["scenarios"]["slow"]["items_done"] == 12


async def test_a_run_resumed_after_a_crash_keeps_its_sync_deadline() -> None:
    """The deadline is in the checkpointed tasks: a run stopped mid-phase and resumed
    after the deadline passed is held to it, not given a new one."""
    specs = (
        {"name": "fast", "scale": 1, "batch_size": 1},
        {"name": "slow", "scale": 10, "batch_size": 1},
    )
    data = sleepy("milestone", *specs, item_s=0.1, milestones=[0.3, 1.0], sync_timeout_s=1.0)
    graph = scenarios.build(
        ScenariosOptions(backoff_s=0.0), checkpointer=InMemorySaver(), model=notebook_model()
    )
    state, _ = get_pattern("scenarios").parse(data)
    config: Any = {"configurable": {"thread_id": "crash"}}
    slow_batches = 0
    async for event in graph.astream(state, config, stream_mode="custom"):
        slow_batches += event["node"] == "run_batch" and event["scenario"] == "slow"
        if slow_batches == 2:
            break  # the process dies here: the run stops where its checkpoints are
    deadline = (await graph.aget_state(config)).values["phase_deadline"]
    await asyncio.sleep(max(0.0, deadline - time.time()) + 0.1)

    values = await graph.ainvoke(None, config)
    slow = values["timeline"][0]["scenarios"]["slow"]
    # A new deadline would have given it a second (ten more items, enough for 30 %).
    assert slow["late"] is True and slow["items_done"] <= 4
    assert values["runs"]["slow"]["status"] == "done"


async def test_lockstep_meets_after_every_batch() -> None:
    values, events = await run_graph(sleepy("lockstep", *THREE))
    batches = {name: len(records) for name, records in values["batches"].items()}
    assert batches == {"simple": 4, "medium": 4, "complex": 4}
    positions = [-1, *sync_positions(events)]
    assert len(positions) - 1 == 4
    for start, end in itertools.pairwise(positions):
        between = [e["scenario"] for e in batch_events(events[start + 1 : end])]
        assert sorted(between) == ["complex", "medium", "simple"]


async def test_lockstep_rounds_drop_finished_scenarios() -> None:
    specs = ({"name": "short", "scale": 1, "batch_size": 4}, {"name": "long", "batch_size": 1})
    values, events = await run_graph(sleepy("lockstep", *specs))
    assert [m["label"] for m in values["timeline"]] == [f"batch {i}" for i in range(1, 5)]
    positions = [-1, *sync_positions(events)]
    rounds = [
        sorted(e["scenario"] for e in batch_events(events[a + 1 : b]))
        for a, b in itertools.pairwise(positions)
    ]
    assert rounds == [["long", "short"], ["long"], ["long"], ["long"]]


async def test_free_mode_never_waits() -> None:
    specs = (
        {"name": "fast", "scale": 1, "batch_size": 1},
        {"name": "slow", "scale": 1, "batch_size": 4, "characteristics": {"slow": 10}},
    )
    values, events = await run_graph(sleepy("free", *specs, item_s=0.02))
    order = [e["scenario"] for e in batch_events(events)]
    # all four fast batches finish while the slow scenario's single batch is still running
    assert order == ["fast"] * 4 + ["slow"]
    assert sync_positions(events) == [len(events) - 1]
    assert [m["label"] for m in values["timeline"]] == ["done"]


# --- failure isolation -------------------------------------------------------------------


async def test_failing_and_over_budget_scenarios_do_not_block_the_others() -> None:
    specs = (
        {"name": "ok", "scale": 2, "batch_size": 2},
        {"name": "bad", "scale": 2, "batch_size": 2, "characteristics": {"fail_from": 4}},
        {
            "name": "slow",
            "scale": 2,
            "batch_size": 1,
            "budget_s": 0.15,
            "characteristics": {"slow": 5},
        },
    )
    values, _ = await run_graph(sleepy("milestone", *specs, item_s=0.02), max_attempts=2)
    result = values["aggregate"]["scenarios"]
    assert result["ok"]["status"] == "done" and result["ok"]["items_processed"] == 8
    bad = result["bad"]
    assert bad["status"] == "failed" and bad["items_processed"] == 4
    assert "ConnectionError" in bad["errors"][-1] and "bad:4" in bad["errors"][-1]
    assert bad["quality"] == {"accuracy": 1.0}, "partial results are kept"
    slow = result["slow"]
    assert slow["status"] == "timed_out" and slow["items_processed"] < 8
    assert "budget" in slow["errors"][-1]
    # sync points stopped waiting for them and the run reached 100 %
    assert len(values["timeline"]) == 5
    assert values["timeline"][-1]["scenarios"]["bad"]["status"] == "failed"
    advice = " ".join(values["aggregate"]["recommendations"])
    assert "bad failed after 4/8 items" in advice and "slow" in advice


async def test_transient_batch_error_is_retried_then_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAS_TEST_SKILL_LOG", str(tmp_path / "skill.log"))
    spec = {"name": "flaky", "scale": 1, "batch_size": 4, "characteristics": {"fail_from": 3}}
    # A healthy neighbour: with every scenario failed the run would retry them all.
    steady = {"name": "steady", "scale": 1, "batch_size": 4}
    values, _ = await run_graph(sleepy("free", spec, steady), max_attempts=3)
    run = values["runs"]["flaky"]
    assert logged_calls(tmp_path / "skill.log").count("flaky:0") == 3
    assert run["status"] == "failed" and run["items_done"] == 0
    assert run["errors"] == ["batch 0: ConnectionError: item flaky:3 failed"]


# --- aggregation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exponent", "expected"),
    [(0.5, "sublinear"), (1.0, "linear"), (1.15, "linear"), (2.0, "superlinear")],
)
def test_growth_class_direction(exponent: float, expected: str) -> None:
    assert growth_class(exponent) == expected


def test_scaling_relative_to_the_simplest() -> None:
    def summary(size: int, ms_per_item: float) -> dict[str, Any]:
        return {"size": size, "ms_per_item": ms_per_item}

    rows = scaling({"s": summary(10, 1.0), "flat": summary(80, 0.25), "steep": summary(80, 8.0)})
    assert rows["s"]["class"] == "baseline"
    assert rows["flat"]["class"] == "sublinear"  # per-item time falls as size grows
    assert rows["steep"]["class"] == "superlinear" and rows["steep"]["exponent"] == 2.0


@pytest.mark.parametrize(("cost", "expected"), [("linear", "linear"), ("quadratic", "superlinear")])
async def test_scaling_classification_on_known_costs(cost: str, expected: str) -> None:
    data = {
        "skill": "rank",
        "params": {"cost": cost, "repeat": 3},
        "sync": "free",
        "base_size": 150,
        "scenarios": [
            {"name": "small", "scale": 1, "batch_size": 50},
            {"name": "large", "scale": 8, "batch_size": 100},
        ],
    }
    values, _ = await run_graph(data)
    result = values["aggregate"]
    assert result["scaling"]["large"]["class"] == expected, result["scaling"]
    assert {s["quality"]["accuracy"] for s in result["scenarios"].values()} == {1.0}


async def test_llm_skill_scores_known_labels() -> None:
    data = {"skill": "label", "base_size": 3, "sync": "free", "seed": 7}
    values, _ = await run_graph(data)
    result = values["aggregate"]
    accuracy = {n: s["quality"]["accuracy"] for n, s in result["scenarios"].items()}
    # the scripted labeler falls for the hedges that difficulty adds
    assert accuracy["simple"] == 1.0 and accuracy["complex"] == 0.0
    assert result["quality_ranking"][0]["scenario"] == "simple"
    assert result["scenarios"]["complex"]["items_processed"] == 24


# --- input -----------------------------------------------------------------------------


def test_defaults_and_named_overrides() -> None:
    state, options = get_pattern("scenarios").parse(
        {"scenarios": [{"name": "complex", "budget_s": 5}, {"name": "huge", "scale": 20}]}
    )
    complex_, huge = state["scenarios"]
    assert complex_["scale"] == 8 and complex_["budget_s"] == 5 and complex_["batch_size"] == 20
    assert huge["scale"] == 20
    defaults, _ = get_pattern("scenarios").parse({})
    assert [s["name"] for s in defaults["scenarios"]] == ["simple", "medium", "complex"]
    assert [s["budget_s"] for s in defaults["scenarios"]] == [30, 90, 300]
    assert defaults["sync"] == "milestone" and defaults["milestones"][-1] == 1.0
    assert options == {"batch_timeout_s": 600.0, "max_attempts": 3, "backoff_s": 1.0}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"skill": "juggling"}, "skill: unknown skill 'juggling'"),
        ({"skill": "no.such.module:thing"}, "skill: unknown skill 'no.such.module:thing'"),
        ({"sync": "sometimes"}, "sync: Input should be 'free', 'milestone' or 'lockstep'"),
        ({"scenarios": [{"name": f"s{i}"} for i in range(13)]}, "scenarios: List should have"),
        ({"scenarios": [{"name": "a"}, {"name": "a"}]}, "repeated: a"),
        ({"milestones": [0.5, 0.3]}, "milestones: milestones must rise"),
        ({"params": {"cost": "cubic"}}, "params.cost: Input should be 'linear' or 'quadratic'"),
        ({"scenarios": [{"name": "x", "budget_s": 0}]}, "scenarios.0.budget_s"),
        ({"base_size": 50_000, "scenarios": [{"name": "x", "scale": 3}]}, "scenarios[x].scale"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_bad_input_names_the_field(data: dict[str, Any], problem: str) -> None:
    with pytest.raises(InputError, match="invalid scenarios input") as error:
        get_pattern("scenarios").parse(data)
    assert problem in str(error.value)


# --- views ---------------------------------------------------------------------------------


async def test_views_show_bars_milestones_and_the_aggregate() -> None:
    values, events = await run_graph(sleepy("milestone", *THREE))
    live = view.progress("scenarios")
    for data in events:
        live.on_event(RunEvent("progress", data["node"], data=data))
    console = Console(record=True, width=160)
    console.print(live)
    view.render(console, values)
    text = console.export_text()
    assert "12/12" in text and "━" in text
    assert "milestones: 30% at" in text and "100% at" in text
    assert "quality ranking by accuracy" in text and "parallel efficiency" in text
