"""Token budgets (per run, per team, per agent) across retries, teams and resumes, and a
run's estimated cost from the operator's prices (graph logic on scripted models; the
runner and the CLI on real PostgreSQL)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

import mas
from mas.costs import estimate_cost, price_of
from mas.settings import ModelPrice
from mas_graphs.graphs import debate, supervisor
from mas_graphs.nodes.limits import RunBudgetExceededError
from mas_graphs.state.common import CallUsage, call_tokens
from mas_graphs.state.debate import DebateOptions
from mas_graphs.state.supervisor import SupervisorOptions
from tests.support.factories import decode, encode
from tests.support.processes import json_tail, mas_cli, subprocess_env
from tests.support.scripted import ScriptedChatModel
from tests.support.scripts_debate import debate_agent, debate_script
from tests.support.scripts_supervisor import TEAM, report, supervisor_script
from tests.support.teams import lead, member, teams_model

TASK = "Should the team move its job queue to PostgreSQL?"
SCRIPTED = "factory:tests.support.factories:scripted_from_env"


def build() -> Any:
    return supervisor.build(SupervisorOptions(backoff_s=0.0), checkpointer=InMemorySaver())


def config() -> Any:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


def tokens(usage: list[CallUsage]) -> int:
    return sum(call_tokens(call) for call in usage)


async def unlimited(workers: list[dict[str, Any]]) -> dict[str, Any]:
    graph, cfg = build(), config()
    await graph.ainvoke({"task": TASK, "workers": workers}, cfg, context=ctx(teams_model()))
    return (await graph.aget_state(cfg)).values  # type: ignore[no-any-return]


def ctx(model: ScriptedChatModel) -> Any:
    from mas_graphs.nodes.context import AgentContext

    return AgentContext(model=model)


async def test_a_run_budget_reached_inside_a_nested_team_stops_the_run_and_stays_stopped() -> None:
    workers = [lead("backend", "api", "db"), member("pm")]
    full = await unlimited(workers)
    budget = tokens(full["usage"]) // 2

    model, graph, cfg = teams_model(), build(), config()
    with pytest.raises(RunBudgetExceededError) as stopped:
        await graph.ainvoke(
            {"task": TASK, "workers": workers, "max_tokens_total": budget},
            cfg,
            context=ctx(model),
            durability="sync",
        )
    assert stopped.value.level == ""  # the whole run's budget, reached at depth 2
    assert stopped.value.limit == budget and stopped.value.spent >= budget
    assert f"max_tokens_total {budget:,}" in str(stopped.value)
    state = await graph.aget_state(cfg)
    # partial results: the sibling that finished is kept; the team is where it stopped
    assert state.values["results"]["pm"]["status"] == "ok"
    assert "backend" not in state.values["results"]
    assert state.next == ("run_team",)
    calls = len(model.calls)
    assert 0 < calls < 9  # the unlimited run makes 9

    # a resume in a new process (a new graph) stops again without a model call
    again, resumed = teams_model(), build()
    resumed.checkpointer = graph.checkpointer
    with pytest.raises(RunBudgetExceededError):
        await resumed.ainvoke(None, cfg, context=ctx(again), durability="sync")
    assert again.calls == []


async def test_a_team_over_its_own_budget_fails_like_a_worker_and_its_tokens_count() -> None:
    model, graph, cfg = (
        teams_model(**{"fallback:backend": report("fallback backend", 0.3)}),
        build(),
        config(),
    )
    workers = [lead("backend", "api", "db", max_tokens_total=300), member("pm")]
    await graph.ainvoke({"task": TASK, "workers": workers}, cfg, context=ctx(model))
    values = (await graph.aget_state(cfg)).values

    backend = values["results"]["backend"]
    assert backend["status"] == "fallback"
    assert "team backend stopped" in backend["error"]
    assert "the team's max_tokens_total 300" in backend["error"]
    assert values["results"]["pm"]["status"] == "ok" and values["synthesis"]["summary"]
    # what the team spent before it stopped still counts in the run's usage
    team_calls = [u for u in values["usage"] if u["agent"].startswith("backend/")]
    assert team_calls and tokens(team_calls) >= 300


async def test_an_agent_over_its_budget_fails_and_the_run_goes_on() -> None:
    script = supervisor_script(
        researcher=["not JSON at all", supervisor_script()["researcher"]],
    )
    model = ScriptedChatModel(script={a: decode(e) for a, e in script.items()})
    graph, cfg = build(), config()
    # the researcher's first (invalid) reply spends more than this, so its repair is refused
    await graph.ainvoke(
        {"task": TASK, "workers": TEAM, "max_tokens_per_agent": 50}, cfg, context=ctx(model)
    )
    values = (await graph.aget_state(cfg)).values
    researcher = values["results"]["researcher"]
    # a fallback stands in for the worker, on the worker's budget: refused too
    assert researcher["status"] == "failed"
    assert "max_tokens_per_agent of researcher 50" in researcher["error"]
    assert model.calls.count("researcher") == 1  # the repair turn never reached the model
    assert "fallback:researcher" not in model.calls
    # its refused attempt's tokens count, recorded as a failed call
    failed = [u for u in values["usage"] if u["agent"] == "researcher" and not u["ok"]]
    assert failed and tokens(failed) > 50
    assert {values["results"][w]["status"] for w in ("analyst", "critic")} == {"ok"}
    assert values["synthesis"]["summary"] == "Use PostgreSQL with SKIP LOCKED."


async def test_a_resumed_run_counts_what_it_spent_before_the_pause() -> None:
    given = {"task": TASK, "workers": [member("a"), member("b")], "review_plan": True}
    graph, cfg = build(), config()
    await graph.ainvoke(given, cfg, context=ctx(teams_model()))
    planned = tokens((await graph.aget_state(cfg)).values["usage"])
    assert planned > 0

    # the same run with a budget the planner alone spends: the pause comes, and after
    # it (a new graph: nothing in memory) no worker may call its model
    graph, cfg = build(), config()
    await graph.ainvoke({**given, "max_tokens_total": planned}, cfg, context=ctx(teams_model()))
    assert (await graph.aget_state(cfg)).interrupts
    resumed, again = build(), teams_model()
    resumed.checkpointer = graph.checkpointer
    with pytest.raises(RunBudgetExceededError) as stopped:
        await resumed.ainvoke(
            Command(resume={"approve": True}), cfg, context=ctx(again), durability="sync"
        )
    assert stopped.value.spent == planned
    assert again.calls == []


async def test_a_debate_over_budget_keeps_the_rounds_it_finished() -> None:
    script = {a: decode(e) for a, e in debate_script().items()}
    graph = debate.build(DebateOptions(backoff_s=0.0), checkpointer=InMemorySaver())
    first, cfg = ScriptedChatModel(script=script, classify=debate_agent), config()
    question = {"question": "Is PostgreSQL a good job queue?", "rounds": 3, "early_stop": False}
    await graph.ainvoke(question, cfg, context=ctx(first))
    full = (await graph.aget_state(cfg)).values
    one_round = tokens([u for u in full["usage"] if u["agent"] in ("affirmative", "negative")]) // 3

    model, cfg = ScriptedChatModel(script=script, classify=debate_agent), config()
    with pytest.raises(RunBudgetExceededError):
        await graph.ainvoke(
            {**question, "max_tokens_total": tokens(full["usage"]) - one_round},
            cfg,
            context=ctx(model),
        )
    values = (await graph.aget_state(cfg)).values
    assert values["transcript"] and "verdict" not in values
    assert len(model.calls) < len(first.calls)


def test_prices_resolve_by_model_then_provider_then_any() -> None:
    prices = {
        "ollama:llama3.2": ModelPrice(input=0.1, output=0.4),
        "ollama": ModelPrice(input=1.0, output=2.0),
        "*": ModelPrice(input=0.0, output=0.0),
    }
    assert price_of("ollama:llama3.2", prices) == prices["ollama:llama3.2"]
    assert price_of("ollama:qwen2.5", prices) == prices["ollama"]
    assert price_of("llamacpp:smollm2", prices) == prices["*"]
    assert price_of("llamacpp:smollm2", {"ollama": prices["ollama"]}) is None

    def call(model: str, tokens_in: int, tokens_out: int) -> CallUsage:
        return CallUsage(
            agent="a", calls=1, input_tokens=tokens_in, output_tokens=tokens_out,
            latency_ms=1.0, ok=True, notes=[], model=model,
        )  # fmt: skip

    usage = [call("ollama:llama3.2", 1_000_000, 500_000), call("ollama:qwen2.5", 2_000, 1_000)]
    usage.append(CallUsage(**{k: v for k, v in call("x", 10, 10).items() if k != "model"}))
    estimate = estimate_cost(usage, {k: v for k, v in prices.items() if k != "*"})
    assert [(r.model, r.cost) for r in estimate.rows] == [
        ("ollama:llama3.2", pytest.approx(0.1 + 0.2)),
        ("ollama:qwen2.5", pytest.approx(0.002 + 0.002)),
        ("unknown", None),
    ]
    assert estimate.cost == pytest.approx(0.304) and estimate.unpriced == ["unknown"]
    assert estimate.tokens == 1_503_020


def test_the_cli_stops_over_budget_shows_what_it_finished_and_its_cost(
    tmp_path: Path, thread_id: str
) -> None:
    script = tmp_path / "script.json"
    script.write_text(encode(supervisor_script()))
    prices = {"scriptedchatmodel": {"input": 2.0, "output": 8.0}}
    env = subprocess_env(
        MAS_TEST_SCRIPT=str(script), MAS_MODEL=SCRIPTED, MAS_MODEL_PRICES=json.dumps(prices)
    )
    done = mas_cli("run", "supervisor", "--input", json.dumps({"task": TASK, "workers": TEAM}),
                   "--json", env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    full = tokens(json_tail(done.stdout)["values"]["usage"])

    given = {"task": TASK, "workers": TEAM, "max_tokens_total": full // 2}
    run = mas_cli("run", "supervisor", "--input", json.dumps(given), "--thread-id", thread_id,
                  env=env)  # fmt: skip
    assert run.returncode == 0, run.stderr
    stopped = f"stopped over budget: token budget reached: max_tokens_total {full // 2:,}"
    assert stopped in run.stdout
    assert "tokens and estimated cost" in run.stdout

    shown = mas_cli("show", thread_id, "--json", env=env)
    payload = json_tail(shown.stdout)
    assert payload["status"] == "over_budget"
    assert "max_tokens_total" in payload["error"]
    usage = payload["values"]["usage"]
    expected = sum(u["input_tokens"] * 2.0 + u["output_tokens"] * 8.0 for u in usage) / 1e6
    assert payload["cost"]["cost"] == pytest.approx(expected) and expected > 0
    assert payload["cost"]["models"][0]["model"] == "scriptedchatmodel"
    text = mas_cli("show", thread_id, env=env)
    assert "over_budget" in text.stdout and f"of a {full // 2:,} budget" in text.stdout

    threads = mas_cli("threads", env=env)
    assert thread_id in threads.stdout and "over_budget" in threads.stdout
    # resuming keeps it stopped: the budget holds across resumes
    resumed = mas_cli("resume", thread_id, "--json", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert json_tail(resumed.stdout)["status"] == "over_budget"


async def test_the_runner_returns_an_over_budget_result_with_its_partial_state(
    pg_dsn: str,
) -> None:
    model = ScriptedChatModel(script={a: decode(e) for a, e in supervisor_script().items()})
    result = await mas.arun(
        "supervisor",
        {"task": TASK, "workers": TEAM, "max_tokens_total": 400},
        model=model,
        dsn=pg_dsn,
    )
    assert result.status == "over_budget"
    assert result.stopped is not None and "max_tokens_total 400" in result.stopped
    assert result["plan"]["batches"] and "synthesis" not in result
