"""Teams of teams: workers that are registered agents or whole patterns, leads with
teams of their own, replanning, a run-wide cap on model calls, people who step in,
per-worker choices and critic rounds (graph logic on scripted models; the runner on
real PostgreSQL)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from pydantic import Field

import mas
from mas.errors import InputError
from mas_graphs.graphs import supervisor
from mas_graphs.nodes.agents import AgentRequest, register_agent
from mas_graphs.nodes.debate import DebaterRequest
from mas_graphs.state.supervisor import SupervisorOptions
from tests.support.factories import decode
from tests.support.scripted import ScriptedChatModel
from tests.support.scripts_supervisor import plan, report
from tests.support.teams import lead, member, teams_model

TASK = "Should the team move its job queue to PostgreSQL?"


async def run_graph(
    workers: list[dict[str, Any]], model: ScriptedChatModel, **fields: Any
) -> tuple[Any, Any, dict[str, Any]]:
    graph = supervisor.build(
        SupervisorOptions(backoff_s=0.0), checkpointer=InMemorySaver(), model=model
    )
    config: Any = {"configurable": {"thread_id": uuid.uuid4().hex}}
    await graph.ainvoke({"task": TASK, "workers": workers, **fields}, config)
    return graph, config, (await graph.aget_state(config)).values


def pending(state: Any) -> list[Any]:
    return [i.value for task in state.tasks for i in task.interrupts]


# --- any graph as a worker -----------------------------------------------------------


async def test_a_debate_worker_runs_nested_and_its_verdict_is_the_report(pg_dsn: str) -> None:
    model = teams_model()
    events: list[mas.RunEvent] = []
    workers = [member("researcher"), {"name": "board", "pattern": "debate", "input": {"rounds": 2}}]
    result = await mas.arun(
        "supervisor", {"task": TASK, "workers": workers}, model=model, on_event=events.append
    )

    board = result["results"]["board"]
    assert board["kind"] == "team" and board["status"] == "ok"
    verdict = board["team"]["values"]["verdict"]
    assert board["report"]["summary"].startswith(
        f"The debate's verdict ({verdict['decided_by']}): {verdict['winner']}."
    )
    assert board["report"]["confidence"] == verdict["confidence"]
    # the debate's calls roll up under the worker's name, and count in the totals
    nested = [u for u in result["usage"] if u["agent"].startswith("board/")]
    assert {u["agent"] for u in nested} >= {"board/judge"}
    assert sum(u["calls"] for u in result["usage"]) == len(model.calls)
    # its supersteps were checkpointed in the worker's namespace of this thread
    import psycopg

    with psycopg.connect(pg_dsn) as conn:
        namespaces = {
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT checkpoint_ns FROM checkpoints WHERE thread_id = %s",
                (result.thread_id,),
            )
        }
    assert "" in namespaces and any(ns.startswith("run_team:") for ns in namespaces), namespaces
    # progress names the nesting
    assert any(e.path == ("board",) and e.node == "argue" for e in events), [
        (e.path, e.node) for e in events
    ]


async def test_registered_agents_are_workers_by_name() -> None:
    async def pricing(request: AgentRequest) -> dict[str, Any]:
        """Prices a change from the earlier reports."""
        seen = ", ".join(r["worker"] for r in request["context"])
        return report(f"costs little (after {seen or 'nobody'})", 0.75, ("cost", "cheap"))

    writer_model = ScriptedChatModel(
        script={"writer": "Moving the queue saves one service."}, classify=lambda _: "writer"
    )
    chain = (
        ChatPromptTemplate.from_messages([("human", "Write about: {task}")])
        | writer_model
        | StrOutputParser()
    )
    register_agent("test-pricing", pricing)
    register_agent("test-writer", chain, description="Writes the short answer.")
    model = teams_model(
        planner=plan(("pricing", ["researcher"]), ("writer", ["pricing"]), ("researcher", []))
    )
    workers = [
        member("researcher"),
        {"name": "pricing", "agent": "test-pricing"},
        {"name": "writer", "agent": "test-writer"},
    ]
    _, _, values = await run_graph(workers, model)

    pricing_result, writer = values["results"]["pricing"], values["results"]["writer"]
    assert pricing_result["kind"] == "agent" and pricing_result["report"]["confidence"] == 0.75
    assert "after researcher" in pricing_result["report"]["summary"]
    assert writer["report"] == {
        "summary": "Moving the queue saves one service.",
        "findings": [],
        "confidence": 0.5,
    }
    usage = {u["agent"]: u for u in values["usage"]}
    assert usage["writer"]["calls"] == 1 and usage["pricing"]["calls"] == 0
    assert any("a text answer" in n for n in usage["writer"]["notes"])
    # the planner was told what each registered agent does, from its docstring or given
    planner_prompt = next(p for a, p in model.prompts if a == "planner")
    assert "Prices a change from the earlier reports." in planner_prompt
    assert "Writes the short answer." in planner_prompt


async def test_an_agent_that_fails_gets_the_fallback_like_any_worker() -> None:
    async def broken(request: AgentRequest) -> dict[str, Any]:
        raise RuntimeError("the pricing service is down")

    register_agent("test-broken", broken)
    workers = [member("researcher"), {"name": "pricing", "agent": "test-broken", "role": "Prices"}]
    _, _, values = await run_graph(
        workers, teams_model(**{"fallback:pricing": report("a rough price", 0.3)})
    )
    result = values["results"]["pricing"]
    # a RuntimeError is not transient, so LangGraph's retry policy does not repeat it
    assert result["status"] == "fallback" and result["attempts"] == 1
    assert "the pricing service is down" in result["error"]
    assert result["report"]["summary"] == "a rough price"


# --- hierarchy -----------------------------------------------------------------------


async def test_a_supervisor_of_team_leads_runs_each_team_and_rolls_up_usage() -> None:
    model = teams_model()
    workers = [lead("backend", "api", "db"), lead("frontend", "ui"), member("pm")]
    _, _, values = await run_graph(workers, model)

    backend = values["results"]["backend"]
    assert backend["kind"] == "team" and backend["status"] == "ok"
    assert set(backend["team"]["values"]["results"]) == {"api", "db"}
    assert set(values["results"]["frontend"]["team"]["values"]["results"]) == {"ui"}
    agents = {u["agent"] for u in values["usage"]}
    assert {"backend/api", "backend/db", "backend/planner", "frontend/ui", "pm"} <= agents
    assert sum(u["calls"] for u in values["usage"]) == len(model.calls)
    # each lead's team worked on the lead's task: the parent's task
    api_prompt = next(p for a, p in model.prompts if a == "member" and "(api)" in p)
    assert TASK in api_prompt


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        (
            {
                "max_depth": 2,
                "workers": [
                    lead("a", "x"),
                    lead("b", "y") | {"input": {"workers": [lead("c", "z")]}},
                ],
            },
            "teams nest 3 levels deep (this run included); max_depth is 2",
        ),
        (
            {"max_agents": 3, "workers": [lead("a", "x", "y"), {"name": "d", "pattern": "debate"}]},
            "5 agents at every depth in all; max_agents is 3",
        ),
        (
            {"workers": [{"name": "b", "pattern": "saga"}]},
            "workers.0.pattern: a saga cannot be a worker",
        ),
        (
            {"workers": [{"name": "b", "pattern": "debate", "temperature": 0.2}]},
            "workers.0: temperature: only a role worker has these",
        ),
        (
            {"workers": [{"name": "b", "pattern": "debate", "input": {"rounds": 99}}]},
            "workers[b].input: rounds: Input should be less than or equal to 6",
        ),
        (
            {
                "workers": [
                    lead("a", "x")
                    | {"input": {"workers": [{"name": "y", "role": "r", "max_steps": 40}]}}
                ]
            },
            "workers[a].input: workers.0.max_steps: Input should be less than or equal to 25",
        ),
        (
            {"workers": [{"name": "b", "agent": "no-such-agent"}]},
            "unknown agent 'no-such-agent'",
        ),
        (
            {
                "workers": [
                    lead("a", "x") | {"input": {"workers": [{"name": "y", "agent": "nope"}]}}
                ]
            },
            "unknown agent 'nope'",
        ),
        (
            {"on_worker_failure": "replan", "workers": [member("x")]},
            "'replan' needs max_replans of at least 1",
        ),
    ],
)
def test_bad_team_input_is_refused_before_anything_runs(
    fields: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InputError) as raised:
        mas.run("supervisor", {"task": TASK, **fields}, model=teams_model())
    assert problem in str(raised.value)


# --- replanning ----------------------------------------------------------------------


CHAIN = plan(("researcher", []), ("analyst", ["researcher"]), ("critic", ["analyst"]))
CHAIN_TEAM = [member("researcher"), member("analyst"), member("critic")]


async def test_the_planner_revises_the_rest_of_the_plan_after_a_batch() -> None:
    model = teams_model(
        planner=CHAIN,
        replanner={"steps": [{"worker": "analyst"}], "reason": "the facts leave no risk to check"},
    )
    _, _, values = await run_graph(CHAIN_TEAM, model, max_replans=1)

    assert values["plan_revisions"] == [
        {
            "after_batch": 0,
            "trigger": "batch",
            "failed": {},
            "reason": "the facts leave no risk to check",
            "before": [["analyst"], ["critic"]],
            "after": [["analyst"]],
            "changed": True,
        }
    ]
    assert set(values["results"]) == {"researcher", "analyst"}
    assert model.calls.count("replanner") == 1  # bounded by max_replans
    # the replanner saw the reports so far
    replanner_prompt = next(p for a, p in model.prompts if a == "replanner")
    assert "a member's finding" in replanner_prompt


async def test_a_failed_worker_can_trigger_a_replan_instead_of_the_fallback() -> None:
    model = teams_model(
        planner=CHAIN,
        member=[ValueError("the model answered nonsense"), report("found it", 0.8)],
        replanner={
            "steps": [
                {"worker": "researcher"},
                {"worker": "analyst", "depends_on": ["researcher"]},
            ],
            "reason": "try the researcher again first",
        },
    )
    _, _, values = await run_graph(CHAIN_TEAM, model, max_replans=1, on_worker_failure="replan")

    revision = values["plan_revisions"][0]
    assert revision["trigger"] == "failure"
    assert "the model answered nonsense" in revision["failed"]["researcher"]
    assert revision["after"] == [["researcher"], ["analyst"]]
    assert values["results"]["researcher"]["status"] == "ok"
    assert not any(a.startswith("fallback") for a in model.calls)
    assert "critic" not in values["results"]


# --- bounded parallelism -------------------------------------------------------------


async def test_max_parallel_caps_model_calls_in_flight_across_the_run() -> None:
    workers = [member(f"w{i}") for i in range(16)]
    model = teams_model()
    model.delays = {"member": 0.1}
    _, _, values = await run_graph(workers, model, max_parallel=4)

    assert model.calls.count("member") == 16
    assert model.peak_in_flight == 4
    results = values["results"].values()
    span = max(r["finished_at"] for r in results) - min(r["started_at"] for r in results)
    # four waves of four 100 ms calls; unbounded would be one wave, serial sixteen
    assert 0.4 <= span < 1.2, span


async def test_max_parallel_holds_inside_nested_teams() -> None:
    workers = [lead("a", *[f"a{i}" for i in range(6)]), lead("b", *[f"b{i}" for i in range(6)])]
    model = teams_model()
    model.delays = {"member": 0.05}
    await run_graph(workers, model, max_parallel=3)
    assert model.calls.count("member") == 12
    assert model.peak_in_flight == 3


# --- people step in ------------------------------------------------------------------


UNSURE = {"summary": "Maybe PostgreSQL.", "recommendations": [], "confidence": 0.4}
SURE = {"summary": "Use PostgreSQL.", "recommendations": ["start small"], "confidence": 0.9}


async def test_an_unsure_synthesis_waits_for_a_person_who_can_rerun_workers() -> None:
    model = teams_model(synthesizer=[UNSURE, SURE])
    graph, config, _ = await run_graph(CHAIN_TEAM, model, escalate_below=0.7)
    [request] = pending(await graph.aget_state(config))
    assert request["kind"] == "synthesis_review"
    assert request["reason"] == "confidence 0.40 is below 0.70"
    assert request["draft"]["summary"] == "Maybe PostgreSQL."

    # an invalid answer is asked again, with the problem
    await graph.ainvoke(Command(resume={"action": "rerun"}), config)
    [again] = pending(await graph.aget_state(config))
    assert "workers: name the workers to run again" in again["error"]

    await graph.ainvoke(
        Command(resume={"action": "rerun", "workers": ["analyst"], "note": "price the licence"}),
        config,
    )
    state = await graph.aget_state(config)
    assert not state.next and state.values["synthesis"]["summary"] == "Use PostgreSQL."
    assert state.values["escalations"][0]["action"] == "rerun"
    analyst_prompts = [p for a, p in model.prompts if a == "member" and "(analyst)" in p]
    assert len(analyst_prompts) == 2 and "price the licence" in analyst_prompts[1]
    assert model.calls.count("synthesizer") == 2


async def test_a_failed_worker_sends_the_answer_to_a_person_who_can_edit_it(
    pg_dsn: str,
) -> None:
    model = teams_model(
        flaky=ValueError("no answer"),
        **{"fallback:flaky": ValueError("no stand-in either")},
        synthesizer=SURE,
    )
    workers = [{"name": "researcher", "role": "Find facts [flaky]"}, *CHAIN_TEAM[1:]]
    first = await mas.arun(
        "supervisor",
        {"task": TASK, "workers": workers, "escalate_below": 0.5},
        model=model,
    )
    assert first.status == "interrupted"
    [request] = first.interrupts
    assert request["reason"] == "failed workers: researcher"

    with pytest.raises(mas.errors.ResumeAnswerError, match="synthesis"):
        await mas.aresume(first.thread_id, answer={"action": "edit"}, model=model)
    edited = {"summary": "Use PostgreSQL; the facts are unchecked.", "confidence": 0.6}
    done = await mas.aresume(
        first.thread_id, answer={"action": "edit", "synthesis": edited}, model=model
    )
    assert done.status == "done"
    assert done["synthesis"]["summary"] == edited["summary"]
    assert done["synthesis"]["edited_by_person"] is True


# --- per-worker choices --------------------------------------------------------------


class SamplingModel(ScriptedChatModel):
    """A scripted model with the sampling fields Ollama and llama.cpp have."""

    temperature: float | None = None
    seed: int | None = None
    sampled: list[tuple[str, float | None, int | None]] = Field(default_factory=list)

    def _agent(self, messages: Any) -> str:
        agent = super()._agent(messages)
        self.sampled.append((agent, self.temperature, self.seed))
        return agent


async def test_each_worker_samples_at_its_own_temperature() -> None:
    model = SamplingModel(
        script=teams_model().script,
        classify=teams_model().classify,
    )
    workers = [member("cold", temperature=0.0), member("hot", temperature=1.2), member("plain")]
    await run_graph(workers, model)
    by_worker = {
        name: (temperature, seed)
        for (agent, temperature, seed), (_, prompt) in zip(
            model.sampled, model.prompts, strict=True
        )
        if agent == "member"
        for name in ("cold", "hot", "plain")
        if f"({name})" in prompt
    }
    assert by_worker["cold"][0] == 0.0 and by_worker["hot"][0] == 1.2
    assert by_worker["plain"] == (None, None)
    assert by_worker["cold"][1] != by_worker["hot"][1]  # seeds of their own


async def test_workers_at_any_depth_run_on_the_model_their_input_picks(pg_dsn: str) -> None:
    specialist = teams_model()
    mas.register_model("test-specialist", specialist)
    model = teams_model()
    workers = [
        member("generalist"),
        lead("team", "inner") | {"input": {"workers": [member("inner", model="test-specialist")]}},
    ]
    result = await mas.arun("supervisor", {"task": TASK, "workers": workers}, model=model)
    assert result.status == "done"
    assert [p for a, p in specialist.prompts if a == "member"] != []
    assert all("(inner)" in p for a, p in specialist.prompts)
    assert not any("(inner)" in p for a, p in model.prompts if a == "member")


def test_a_model_pick_that_is_code_is_refused() -> None:
    workers = [lead("team", "x") | {"input": {"workers": [member("x", model="factory:os:system")]}}]
    with pytest.raises(InputError, match=r"workers\[team\]\.input: workers.0.model"):
        mas.run("supervisor", {"task": TASK, "workers": workers}, model=teams_model())


# --- self-correction -----------------------------------------------------------------


async def test_a_critic_loop_revises_a_report_until_it_accepts() -> None:
    model = teams_model(
        **{
            "critic:analyst": [
                {"accept": False, "problems": ["no numbers"]},
                {"accept": True, "problems": []},
            ],
            "reviser:member": report("Use PostgreSQL: 2 k jobs/s fits", 0.85),
        }
    )
    workers = [member("researcher"), member("analyst", revise_rounds=3)]
    _, _, values = await run_graph(workers, model)

    analyst = values["results"]["analyst"]
    assert analyst["report"]["summary"] == "Use PostgreSQL: 2 k jobs/s fits"
    assert [r["accepted"] for r in analyst["reviews"]] == [False, True]
    assert model.calls.count("critic:analyst") == 2  # stopped early: 2 of 3 rounds
    assert model.calls.count("reviser:member") == 1
    assert "no numbers" in next(p for a, p in model.prompts if a == "reviser:member")


async def test_a_critic_loop_on_the_synthesis_runs_its_rounds() -> None:
    model = teams_model(
        synthesizer=UNSURE,
        **{
            "critic:synthesis": {"accept": False, "problems": ["not decided"]},
            "synthesis_reviser": SURE,
        },
    )
    _, _, values = await run_graph(CHAIN_TEAM, model, revise_rounds=1)
    assert values["synthesis"]["summary"] == "Use PostgreSQL."
    # one revision; the critic reads the revised answer too, so the record says
    # whether what was delivered passed
    assert model.calls.count("synthesis_reviser") == 1
    assert model.calls.count("critic:synthesis") == 2


# --- registered debaters -------------------------------------------------------------


async def test_a_registered_agent_can_argue_a_side_of_a_debate() -> None:
    from mas_graphs.graphs import debate
    from tests.support.scripts_debate import QUESTION, STANCES, debate_agent, debate_script

    seen: list[DebaterRequest] = []

    async def advocate(request: DebaterRequest) -> Any:
        """Argues from the team's incident notes."""
        seen.append(request)
        if request["round"] == 1:
            return "Two incidents last year came from the queue we run ourselves."
        return {"argument": "The incidents stand unanswered.", "confidence": 0.9}

    register_agent("test-advocate", advocate)
    model = ScriptedChatModel(
        script={a: decode(e) for a, e in debate_script().items()}, classify=debate_agent
    )
    stances = [STANCES[0], STANCES[1] | {"agent": "test-advocate"}]
    graph = debate.build(checkpointer=InMemorySaver(), model=model)
    config: Any = {"configurable": {"thread_id": uuid.uuid4().hex}}
    values = await graph.ainvoke(
        {"question": QUESTION, "stances": stances, "rounds": 2, "early_stop": False}, config
    )

    turns = [t for t in values["transcript"] if t["speaker"] == "negative"]
    assert [(t["status"], t["confidence"]) for t in turns] == [("ok", 0.5), ("ok", 0.9)]
    assert turns[0]["argument"].startswith("Two incidents")
    assert "negative" not in model.calls  # the agent argued, not the model
    # round 2's request carries the other side's round-1 argument, as data
    assert seen[1]["others"][0]["speaker"] == "affirmative"
    assert seen[1]["own_previous"].startswith("Two incidents")
    assert values["verdict"]["winner"] in {"affirmative", "negative"}


def test_a_registered_debater_brings_its_own_model() -> None:
    from tests.support.scripts_debate import STANCES

    stances = [STANCES[0], STANCES[1] | {"agent": "test-advocate"}]
    with pytest.raises(InputError, match="negative is the registered agent test-advocate"):
        mas.run(
            "debate",
            {"question": "q", "stances": stances, "debater_models": {"negative": "llamacpp"}},
            model=teams_model(),
        )


async def test_a_nested_teams_interrupt_reaches_whoever_answers_the_run(pg_dsn: str) -> None:
    model = teams_model()
    workers = [member("pm"), lead("backend", "api", "db", review_plan=True)]
    paused = await mas.arun("supervisor", {"task": TASK, "workers": workers}, model=model)
    assert paused.status == "interrupted"
    [request] = paused.interrupts
    assert request["kind"] == "plan_review" and request["plan"]["batches"] == [["api", "db"]]

    done = await mas.aresume(paused.thread_id, answer={"approve": True}, model=model)
    assert done.status == "done"
    assert set(done["results"]["backend"]["team"]["values"]["results"]) == {"api", "db"}
    assert model.calls.count("planner") == 2  # the lead's plan was not made again


# --- the operator's worker limit -----------------------------------------------------


def test_the_worker_limit_is_the_operators_setting(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mas.settings import get_settings

    task = {"task": TASK, "workers": [member(f"w{i}") for i in range(20)]}
    with pytest.raises(InputError, match=r"at most 16 workers per supervisor .*, not 20"):
        mas.run("supervisor", task, model=teams_model())
    monkeypatch.setenv("MAS_MAX_WORKERS", "20")
    get_settings.cache_clear()
    try:
        result = mas.run("supervisor", task, model=teams_model())
    finally:
        monkeypatch.delenv("MAS_MAX_WORKERS")
        get_settings.cache_clear()
    assert result.status == "done" and len(result["results"]) == 20


async def test_a_graph_run_anywhere_takes_the_limit_from_its_context() -> None:
    from mas_graphs.nodes.context import AgentContext
    from mas_graphs.nodes.inputs import InvalidInputError

    graph = supervisor.build(
        SupervisorOptions(backoff_s=0.0), checkpointer=InMemorySaver(), model=teams_model()
    )
    state = {"task": TASK, "workers": [member(f"w{i}") for i in range(20)]}
    with pytest.raises(InvalidInputError, match="at most 16 workers per supervisor"):
        await graph.ainvoke(state, {"configurable": {"thread_id": uuid.uuid4().hex}})
    values = await graph.ainvoke(
        state,
        {"configurable": {"thread_id": uuid.uuid4().hex}},
        context=AgentContext(max_workers=20),
    )
    assert len(values["results"]) == 20
