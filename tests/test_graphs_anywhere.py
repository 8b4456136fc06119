"""Graphs that run wherever LangGraph runs: with the context a server passes (`{}`, a
partial one), validating their own input, describing only what a user supplies, and
asking again when a person's answer does not fit."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from rich.console import Console

from mas.patterns import get_pattern, known_patterns
from mas_graphs.checkpoints.savers import open_async_saver
from mas_graphs.nodes.context import AgentContext, ClientContextError
from mas_graphs.nodes.inputs import InvalidInputError
from mas_graphs.state.debate import DebateInput, DebateInputState
from mas_graphs.state.saga import SagaInput, SagaInputState
from mas_graphs.state.scenarios import ScenariosInput, ScenariosInputState
from mas_graphs.state.supervisor import SupervisorInput, SupervisorInputState
from tests.support.factories import decode
from tests.support.scripted import ScriptedChatModel
from tests.support.scripts_mixed import any_agent, mixed_script
from tests.support.scripts_saga import order
from tests.support.scripts_supervisor import TEAM


def inputs(pattern: str) -> dict[str, Any]:
    return {
        "supervisor": {"task": "Queue or not?", "workers": TEAM},
        "debate": {"question": "Run Kafka?", "rounds": 1},
        "scenarios": {"skill": "rank", "base_size": 4},
        "saga": {"order": order()},  # a new order each time: an order has one saga
    }[pattern]


def scripted() -> ScriptedChatModel:
    return ScriptedChatModel(
        script={a: decode(e) for a, e in mixed_script().items()}, classify=any_agent
    )


def config() -> Any:
    return {"configurable": {"thread_id": f"anywhere-{uuid.uuid4().hex[:8]}"}}


@pytest.mark.parametrize("pattern", known_patterns())
@pytest.mark.parametrize("context", [{}, None], ids=["empty-dict", "none"])
async def test_every_graph_runs_on_its_defaults_with_an_empty_context(
    pattern: str, context: Any, pg_dsn: str
) -> None:
    model = scripted()
    async with open_async_saver(pg_dsn) as saver:
        defaults = AgentContext(model=model, db=saver.conn)
        graph = get_pattern(pattern).build(InMemorySaver(), {"backoff_s": 0.0}, defaults=defaults)
        values = await graph.ainvoke(inputs(pattern), config(), context=context)
    assert model.calls or pattern == "scenarios"
    done = {
        "supervisor": lambda v: v["synthesis"]["summary"] == "Use PostgreSQL with SKIP LOCKED.",
        "debate": lambda v: v["verdict"]["winner"] == "negative",
        "scenarios": lambda v: set(v["aggregate"]["scenarios"]) == {"simple", "medium", "complex"},
        "saga": lambda v: v["status"] == "completed",
    }[pattern]
    assert done(values)


async def test_a_partial_context_keeps_what_it_gives_and_takes_the_rest_from_defaults() -> None:
    fallback = scripted()
    graph = get_pattern("debate").build(InMemorySaver(), {}, defaults=AgentContext(model=fallback))
    judge = scripted()
    context = AgentContext(models={"judge": judge})  # no default model: that one is the graph's
    await graph.ainvoke(inputs("debate"), config(), context=context)
    assert judge.calls == ["judge"]
    assert fallback.calls == ["affirmative", "negative"]


async def test_a_model_the_input_picks_is_made_by_the_chooser() -> None:
    picked = scripted()
    made: list[str] = []

    async def choose(choice: str) -> Any:
        made.append(choice)
        return picked

    default = scripted()
    graph = get_pattern("debate").build(
        InMemorySaver(), {}, defaults=AgentContext(model=default, choose=choose)
    )
    task = {**inputs("debate"), "judge_model": "house-judge"}
    await graph.ainvoke(task, config(), context={})
    assert made == ["house-judge"] and picked.calls == ["judge"]
    assert "judge" not in default.calls


@pytest.mark.parametrize(
    ("pattern", "data", "problem"),
    [
        ("supervisor", {"task": "   "}, "invalid supervisor input: task: task must not be blank"),
        ("supervisor", {"task": "t", "workers": [{"name": "w", "role": "r", "tools": ["sh"]}]},
         "unknown tools sh"),
        ("debate", {"question": "q", "judge_model": "factory:os:abort"}, "judge_model: factory:"),
        ("scenarios", {"skill": "antigravity:x"}, "skill: unknown skill 'antigravity:x'"),
        ("saga", {"order": order(quantity=0)}, "invalid saga input: order.quantity"),
    ],
)  # fmt: skip
async def test_a_graph_refuses_bad_input_itself(pattern: str, data: Any, problem: str) -> None:
    """A server hands the client's input straight to the graph: it must check it."""
    model = scripted()
    graph = get_pattern(pattern).build(InMemorySaver(), {}, defaults=AgentContext(model=model))
    with pytest.raises(InvalidInputError, match=problem):
        await graph.ainvoke(data, config(), context={})
    assert model.calls == []


@pytest.mark.parametrize("pattern", known_patterns())
def test_input_schemas_list_only_what_a_user_supplies(pattern: str) -> None:
    graph = get_pattern(pattern).build(None, {})
    fields = set(graph.get_input_jsonschema()["properties"])
    assert fields == set(get_pattern(pattern).spec.input.model_fields)
    internal = {"plan", "results", "transcript", "verdict", "runs", "aggregate", "effects", "usage"}
    assert not fields & internal
    assert graph.get_output_jsonschema()["properties"], "the output schema can be generated"
    assert "properties" in graph.get_context_jsonschema()


async def test_an_invalid_answer_asks_again_and_a_valid_one_completes() -> None:
    model = scripted()
    graph = get_pattern("supervisor").build(InMemorySaver(), {}, defaults=AgentContext(model=model))
    run = config()
    await graph.ainvoke({**inputs("supervisor"), "review_plan": True}, run)
    for bad in ({"approve": "maybe"}, {"approve": True, "batches": [[]]}, ["approve"]):
        await graph.ainvoke(Command(resume=bad), run)
        state = await graph.aget_state(run)
        (pending,) = state.interrupts
        assert pending.value["kind"] == "plan_review"
        assert pending.value["error"].startswith("invalid answer: answer"), pending.value
        assert "properties" in pending.value["answer"], "the expected schema comes along"
    await graph.ainvoke(Command(resume={"approve": True}), run)
    values = (await graph.aget_state(run)).values
    assert values["synthesis"]["summary"] == "Use PostgreSQL with SKIP LOCKED."
    assert model.calls.count("planner") == 1, "re-asking runs nothing else again"


@pytest.mark.parametrize("pattern", known_patterns())
async def test_a_served_graph_keeps_the_operators_context(pattern: str, pg_dsn: str) -> None:
    """A server's graph factory seals its context: a client (langgraph dev, Studio, any
    server) cannot lift a limit or swap a model through the context it sends, whatever
    the server's own rules; an empty context runs on the operator's."""
    model = scripted()
    async with open_async_saver(pg_dsn) as saver:
        sealed = AgentContext(model=model, db=saver.conn, max_workers=16, sealed=True)
        graph = get_pattern(pattern).build(InMemorySaver(), {"backoff_s": 0.0}, defaults=sealed)
        for client in ({"max_workers": 1000}, {"model": None, "models": {"planner": "x"}}):
            with pytest.raises(ClientContextError, match="not the client's to set"):
                await graph.ainvoke(inputs(pattern), config(), context=client)
        values = await graph.ainvoke(inputs(pattern), config(), context={})
    assert values and (model.calls or pattern == "scenarios")


@pytest.mark.parametrize(
    ("input_model", "input_state"),
    [
        (SupervisorInput, SupervisorInputState),
        (DebateInput, DebateInputState),
        (ScenariosInput, ScenariosInputState),
        (SagaInput, SagaInputState),
    ],
)
def test_a_state_extends_its_validated_input(input_model: Any, input_state: Any) -> None:
    """Every input field is in the state, required: the first node fills in every default,
    so no node needs a default of its own."""
    assert set(input_state.__required_keys__) == set(input_model.model_fields)


@pytest.mark.parametrize(
    ("pattern", "shown"),
    [
        ("supervisor", ["batch 0", "researcher ok", "synthesis: Use PostgreSQL"]),
        ("debate", ["round 1 of 1", "affirmative", "verdict: negative"]),
        ("scenarios", ["simple", "4/4", "milestones: 30% at"]),
        ("saga", ["risk_check", "succeeded", "saga · completed"]),
    ],
)
async def test_every_view_draws_a_run_from_its_checkpoints(
    pattern: str, shown: list[str], pg_dsn: str
) -> None:
    """What `mas watch` draws: the pattern's picture of a run, from a state snapshot."""
    async with open_async_saver(pg_dsn) as saver:
        defaults = AgentContext(model=scripted(), db=saver.conn)
        graph = get_pattern(pattern).build(InMemorySaver(), {"backoff_s": 0.0}, defaults=defaults)
        run = config()
        await graph.ainvoke(inputs(pattern), run)
        snapshot = await graph.aget_state(run, subgraphs=True)
    view = get_pattern(pattern).spec.view
    assert view is not None and view.watch is not None
    console = Console(record=True, width=160)
    console.print(view.watch(snapshot))
    drawn = console.export_text()
    assert all(text in drawn for text in shown), drawn
