"""Supervisor graph logic on a scripted model: planning, batches, failures, conflicts."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from mas.errors import InputError
from mas.patterns import get_pattern
from mas_graphs.graphs import supervisor
from mas_graphs.nodes.supervisor import PlanError, plan_batches
from mas_graphs.state.supervisor import Plan, PlanStep, SupervisorOptions
from tests.support.scripted import ScriptedChatModel
from tests.support.scripts_supervisor import TEAM, plan, report, supervisor_script


async def run_graph(
    script: dict[str, Any], **options: Any
) -> tuple[dict[str, Any], ScriptedChatModel]:
    delays = options.pop("delays", {})
    task = options.pop("task", {})
    model = ScriptedChatModel(script=script, delays=delays)
    graph = supervisor.build(
        SupervisorOptions(backoff_s=0.0, **options), checkpointer=InMemorySaver(), model=model
    )
    config: Any = {"configurable": {"thread_id": "t"}}
    await graph.ainvoke({"task": "Queue or not?", "workers": TEAM, **task}, config)
    return (await graph.aget_state(config)).values, model


def worker_steps(model: ScriptedChatModel) -> dict[str, int | None]:
    return {agent: step for agent, step in model.steps if agent in {w["name"] for w in TEAM}}


# --- planning ------------------------------------------------------------------------


def test_plan_batches_layers_dependencies() -> None:
    p = Plan(
        steps=[
            PlanStep(worker="c", depends_on=["a", "b"]),
            PlanStep(worker="a"),
            PlanStep(worker="b", depends_on=["a"]),
        ],
        rationale="",
    )
    assert plan_batches(p.steps, ["a", "b", "c"]).layers == [["a"], ["b"], ["c"]]


@pytest.mark.parametrize(
    ("steps", "layers", "note"),
    [
        ([PlanStep(worker="a"), PlanStep(worker="a", depends_on=["b"])], [["b"], ["a"]], "twice"),
        ([PlanStep(worker="a", depends_on=["c"])], [["c"], ["a"]], "added c, which a depends"),
        ([PlanStep(worker="b", depends_on=["b"])], [["b"]], "b cannot depend on itself"),
    ],
)
def test_plan_batches_mends_slips_with_one_reading(
    steps: list[PlanStep], layers: list[list[str]], note: str
) -> None:
    batches = plan_batches(steps, ["a", "b", "c"])
    assert batches.layers == layers
    assert any(note in n for n in batches.notes), batches.notes


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        ([], "empty"),
        ([PlanStep(worker="zed")], "unknown workers: zed"),
        ([PlanStep(worker="a", depends_on=["zed"])], "unknown workers: zed"),
        ([PlanStep(worker="a", depends_on=["b"]), PlanStep(worker="b", depends_on=["a"])], "cycle"),
    ],
)
def test_plan_batches_rejects_unrunnable_plans(steps: list[PlanStep], problem: str) -> None:
    with pytest.raises(PlanError, match=problem):
        plan_batches(steps, ["a", "b", "c"])


async def test_planned_batches_run_in_order_with_parallel_workers_in_one_superstep() -> None:
    values, model = await run_graph(supervisor_script())
    assert values["plan"]["batches"] == [["researcher", "analyst"], ["critic"]]
    assert values["plan"]["source"] == "planner"
    steps = worker_steps(model)
    assert steps["researcher"] == steps["analyst"] is not None
    assert steps["critic"] is not None and steps["critic"] > steps["researcher"]


async def test_a_plain_fan_out_makes_one_call_per_worker_and_one_synthesis() -> None:
    # Conflicting reports, which a conflict scan would have been asked about.
    script = supervisor_script(conflict_detector=AssertionError("no conflict scan"))
    task = {"planning": "parallel", "conflict_scan": False}
    values, model = await run_graph(script, task=task)
    assert sorted(model.calls) == ["analyst", "critic", "researcher", "synthesizer"]
    assert values["plan"]["source"] == "parallel"
    assert values["plan"]["batches"] == [["researcher", "analyst", "critic"]]
    assert values["synthesis"]["conflicts"] == [] and values["synthesis"]["summary"]
    assert len(set(worker_steps(model).values())) == 1


def declared_team(**depends_on: list[str]) -> list[dict[str, Any]]:
    return [{**w, "depends_on": depends_on.get(w["name"], [])} for w in TEAM]


async def test_a_declared_plan_runs_its_dependencies_with_no_planning_call() -> None:
    script = supervisor_script(planner=AssertionError("no planner call"))
    team = declared_team(critic=["researcher"], analyst=["critic"])
    values, model = await run_graph(script, task={"workers": team, "planning": "declared"})
    assert "planner" not in model.calls
    assert values["plan"]["source"] == "declared"
    assert values["plan"]["batches"] == [["researcher"], ["critic"], ["analyst"]]
    steps = worker_steps(model)
    assert steps["researcher"] < steps["critic"] < steps["analyst"]  # type: ignore[operator]


async def test_the_planner_keeps_declared_dependencies_and_gives_each_worker_its_part() -> None:
    planned = {
        "steps": [
            {"worker": w, "subtask": f"part of {w}", "expected_output": f"{w} notes"}
            for w in ("researcher", "analyst", "critic")
        ],
        "rationale": "all at once",
    }
    seen: dict[str, str] = {}

    def worker(name: str) -> Any:
        def reply(messages: list[Any]) -> str:
            seen[name] = messages[-1].text
            return json.dumps(report(f"{name} reports", 0.7))

        return reply

    script = supervisor_script(planner=planned, **{w: worker(w) for w in ("researcher", "critic")})
    team = declared_team(critic=["researcher"])
    values, model = await run_graph(script, task={"workers": team})
    # the planner put everyone in one batch; the declared wait is kept
    assert values["plan"]["batches"] == [["researcher", "analyst"], ["critic"]]
    assert values["plan"]["assignments"]["critic"] == {
        "subtask": "part of critic",
        "expected_output": "critic notes",
    }
    assert "critic waits for researcher" in next(p for a, p in model.prompts if a == "planner")
    assert '"part of critic"' in seen["critic"] and '"critic notes"' in seen["critic"]
    assert '"part of researcher"' in seen["researcher"]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        (
            {"workers": declared_team(critic=["intern"]), "planning": "declared"},
            "workers[critic].depends_on: unknown workers intern",
        ),
        (
            {"workers": declared_team(critic=["critic"]), "planning": "declared"},
            "workers[critic].depends_on: a worker cannot wait for itself",
        ),
        (
            {
                "workers": declared_team(critic=["analyst"], analyst=["critic"]),
                "planning": "declared",
            },
            "depends_on: the dependencies form a cycle: analyst, critic",
        ),
        (
            {"workers": declared_team(critic=["analyst"]), "planning": "parallel"},
            "depends_on: a parallel plan runs every worker at once",
        ),
    ],
)
def test_declared_dependencies_are_checked_before_any_work(
    fields: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InputError, match=re.escape(problem)):
        get_pattern("supervisor").parse({"task": "Queue or not?", **fields})


async def test_later_batches_receive_earlier_results_as_context() -> None:
    seen: list[str] = []

    def critic(messages: list[Any]) -> str:
        seen.append(messages[-1].text)
        return json.dumps(report("ok", 0.5))

    await run_graph(supervisor_script(critic=critic))
    assert "Postgres can queue jobs" in seen[0] and "Use Postgres" in seen[0]


async def test_invalid_plan_is_repaired_once() -> None:
    cyclic = plan(("researcher", ["analyst"]), ("analyst", ["researcher"]))
    values, model = await run_graph(supervisor_script(planner=[cyclic, plan(("critic", []))]))
    assert model.calls.count("planner") == 2
    assert values["plan"]["source"] == "planner"
    assert values["plan"]["batches"] == [["critic"]]


@pytest.mark.parametrize(
    ("bad_plan", "reason"),
    [
        (plan(("researcher", ["analyst"]), ("analyst", ["researcher"])), "cycle"),
        (plan(("intern", [])), "intern"),
        ({"steps": [], "rationale": "nothing"}, "steps"),
        ("not json at all", "not JSON"),
    ],
)
async def test_unrepairable_plan_falls_back_to_one_parallel_batch(
    bad_plan: Any, reason: str
) -> None:
    values, model = await run_graph(supervisor_script(planner=bad_plan))
    assert model.calls.count("planner") == 2
    assert values["plan"]["source"] == "fallback"
    assert values["plan"]["batches"] == [["researcher", "analyst", "critic"]]
    assert reason in values["plan"]["note"]
    assert len(set(worker_steps(model).values())) == 1


# --- worker failures -------------------------------------------------------------------


async def test_transient_error_is_retried() -> None:
    script = supervisor_script(analyst=[ConnectionError("reset"), report("Use Postgres", 0.9)])
    values, model = await run_graph(script)
    assert model.calls.count("analyst") == 2
    assert values["results"]["analyst"]["status"] == "ok"
    assert values["results"]["analyst"]["attempts"] == 2


async def test_worker_that_times_out_is_replaced_by_the_fallback() -> None:
    values, model = await run_graph(
        supervisor_script(), delays={"analyst": 5.0}, worker_timeout_s=0.2, max_attempts=2
    )
    result = values["results"]["analyst"]
    assert model.calls.count("analyst") == 2
    assert result["status"] == "fallback"
    assert "NodeTimeoutError" in result["error"]
    assert result["report"]["summary"] == "fallback analyst"
    assert values["results"]["critic"]["status"] == "ok"


async def test_permanent_error_is_isolated_and_siblings_are_kept() -> None:
    script = supervisor_script(
        analyst=ValueError("bad request"), **{"fallback:analyst": ValueError("still bad")}
    )
    values, model = await run_graph(script)
    assert model.calls.count("analyst") == 1, "a permanent error is not retried"
    failed = values["results"]["analyst"]
    assert failed["status"] == "failed" and failed["report"] is None
    assert "bad request" in failed["error"] and "still bad" in failed["error"]
    assert values["results"]["researcher"]["status"] == "ok"
    assert values["results"]["critic"]["status"] == "ok"
    assert values["synthesis"]["failed_workers"] == {"analyst": failed["error"]}


async def test_every_worker_of_a_batch_failing_still_reaches_synthesis() -> None:
    boom = ValueError("down")
    script = supervisor_script(
        planner=plan(("researcher", []), ("analyst", [])),
        researcher=boom,
        analyst=boom,
        **{"fallback:researcher": boom, "fallback:analyst": boom},
    )
    values, _ = await run_graph(script)
    assert {r["status"] for r in values["results"].values()} == {"failed"}
    assert values["synthesis"]["summary"]


# --- conflicts and synthesis --------------------------------------------------------------


async def test_conflict_with_a_clear_confidence_gap_is_settled_without_arbitration() -> None:
    values, model = await run_graph(supervisor_script(), task={"conflict_gap": 0.3})
    assert "arbiter" not in model.calls
    (resolution,) = values["resolutions"]
    assert resolution["method"] == "confidence" and resolution["winner"] == "analyst"


async def test_close_conflict_goes_to_llm_arbitration() -> None:
    values, model = await run_graph(supervisor_script(), task={"conflict_gap": 0.5})
    assert model.calls.count("arbiter") == 1
    (resolution,) = values["resolutions"]
    assert resolution == {
        "topic": "choice",
        "method": "arbitration",
        "winner": "analyst",
        "resolution": "the database is already there",
    }


async def test_synthesis_is_structured() -> None:
    values, _ = await run_graph(supervisor_script())
    synthesis = values["synthesis"]
    assert synthesis["summary"] == "Use PostgreSQL with SKIP LOCKED."
    assert synthesis["recommendations"] == ["start with SKIP LOCKED"]
    assert synthesis["confidence"] == 0.8
    assert synthesis["findings"]["researcher"] == [{"topic": "queue", "claim": "SKIP LOCKED works"}]
    assert synthesis["conflicts"][0]["resolution"]["winner"] == "analyst"
    # planner, three workers, conflict detector, synthesizer (the gap settles the conflict)
    assert sum(u["calls"] for u in values["usage"]) == 6


async def test_failed_synthesizer_keeps_the_workers_results() -> None:
    values, _ = await run_graph(supervisor_script(synthesizer="garbage"))
    assert "synthesizer failed" in values["synthesis"]["note"]
    assert "Use Postgres" in values["synthesis"]["summary"]


# --- tools --------------------------------------------------------------------------------


@pytest.mark.parametrize("max_steps", [None, 3])
async def test_tool_worker_runs_a_bounded_react_loop(max_steps: int | None) -> None:
    worker = {"name": "researcher", "role": "Compute [researcher]", "tools": ["calculator"]}
    team = [worker if max_steps is None else {**worker, "max_steps": max_steps}]
    step = {"action": "tool", "tool": "calculator", "tool_input": "6*7"}
    seen: list[str] = []

    def final(messages: list[Any]) -> str:
        seen.append(messages[-1].text)
        return json.dumps(report("42", 0.9))

    script = supervisor_script(
        planner=plan(("researcher", [])),
        # Always asks for another tool call: the step limit must end the loop.
        researcher=lambda messages: (
            json.dumps(step) if "tool" in messages[0].text.split("Reply")[0] else final(messages)
        ),
    )
    values, model = await run_graph(script, task={"workers": team})
    # tool steps up to the worker's limit (10 by default), then the report
    assert model.calls.count("researcher") == (max_steps or 10) + 1
    assert "calculator('6*7') -> 42" in seen[0]
    assert values["results"]["researcher"]["report"]["summary"] == "42"


async def test_a_react_loop_keeps_its_context_within_its_token_budget() -> None:
    """Tool results beyond `memory_tokens` leave the context word for word: the newest
    stays, the older ones become a line each, and the result records what was dropped."""
    worker = {
        "name": "researcher",
        "role": "Compute [researcher]",
        "tools": ["calculator"],
        "memory_tokens": 100,
    }
    steps = [
        {"action": "tool", "tool": "calculator", "tool_input": f"{k}" + "+0" * 150}
        for k in (1, 2, 3)
    ]
    seen: list[str] = []

    def researcher(messages: list[Any]) -> str:
        seen.append(messages[-1].text)
        if "tool" not in messages[0].text.split("Reply")[0]:
            return json.dumps(report("6", 0.9))
        return json.dumps(steps[len(seen) - 1] if len(seen) <= 3 else {"action": "finish"})

    script = supervisor_script(planner=plan(("researcher", [])), researcher=researcher)
    values, _ = await run_graph(script, task={"workers": [worker]})
    result = values["results"]["researcher"]
    memory = result["memory"]
    assert (memory["budget_tokens"], memory["dropped"]) == (100, 2)
    assert [line[:21] for line in memory["summary"].splitlines()] == [
        "step 1: calculator('1",
        "step 2: calculator('2",
    ]
    final = seen[-1]
    assert "Earlier results, summarised" in final
    assert "calculator('3" + "+0" * 150 + "') -> 3" in final  # the newest, word for word
    assert "calculator('1" + "+0" * 150 not in final
    assert len(result["tool_calls"]) == 3  # the record keeps every call


def test_a_conflict_listed_again_is_listed_once() -> None:
    from mas_graphs.nodes.supervisor import distinct_conflicts
    from mas_graphs.state.supervisor import ConflictFound

    found = [
        ConflictFound(topic="Queue choice", workers=["analyst", "critic"], description="db vs own"),
        ConflictFound(topic="queue  choice", workers=["critic", "researcher"], description="again"),
        ConflictFound(topic="Queue choice", workers=["analyst", "critic"], description="again"),
        ConflictFound(topic="cost", workers=["critic", "critic"], description="one worker"),
    ]
    assert distinct_conflicts(found) == [
        {
            "topic": "Queue choice",
            "workers": ["analyst", "critic", "researcher"],
            "description": "db vs own",
        }
    ]
