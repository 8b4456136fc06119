"""The debate pattern: debaters argue in parallel rounds, rebut each other, and the
outcome is decided by a judge, a vote, or a person; optionally next to honest baselines.

    open_debate -> confidence_gate --(confident: skip the debate)--> decision
                        |
                        v
    [argue x debaters] -> review_round --(next round)--> [argue x debaters] ...
                               | stopped (converged, conceded, round limit)
                               +--> judge_verdict --(human / low confidence)--> human_decision
                               +--> count_votes    (majority_vote, weighted, confidence)
    decision --(compare)--> [run_baseline x (1 + debate's calls)] --> conclude
             ----------------------------------------------------> conclude

Each round is one superstep: `Send` fans the debaters out, and `review_round` is the
barrier that runs once every debater's turn (or recorded failure) is in; it is a pure
function of the turns (positions are sides held or answers given, never a model's guess
about them). Debater calls have a timeout and a `RetryPolicy`; when retries run out the
error handler records the failure and the round goes on without that debater.

Two kinds: `sides` (debaters argue assigned positions and may concede from round 2; a
judge, a vote or a person decides) and `answer` (debaters solve the question, see each
other's answers and may revise; a vote over their answers decides).
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer, RetryPolicy

from mas_graphs.graphs.views.debate import VIEW
from mas_graphs.nodes.context import AgentContext, graph_defaults, with_default_context
from mas_graphs.nodes.debate import (
    after_decision,
    after_gate,
    after_judge,
    after_round,
    argue,
    baseline_failed,
    check_debaters,
    conclude,
    confidence_gate,
    count_votes,
    debate_agents,
    debate_report,
    debater_failed,
    decision_answer,
    human_decision,
    judge_verdict,
    open_debate,
    review_round,
    run_baseline,
)
from mas_graphs.state.common import ModelPick
from mas_graphs.state.debate import DebateInput, DebateOptions, DebateState
from mas_graphs.state.pattern import PatternSpec, TeamRole


def build(
    options: DebateOptions = DebateOptions(),
    *,
    checkpointer: Checkpointer = None,
    model: BaseChatModel | None = None,
    defaults: AgentContext | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the debate graph with `options` (timeouts and retries, see `DebateOptions`).

    `model` (or `context=AgentContext(...)` at invoke time) supplies the chat model.
    """
    default = graph_defaults(model, defaults)
    retry = RetryPolicy(
        max_attempts=options.max_attempts, initial_interval=options.backoff_s, jitter=False
    )
    debater_timeout_s, agent_timeout_s = options.debater_timeout_s, options.agent_timeout_s

    builder = StateGraph(
        DebateState,
        context_schema=AgentContext,
        input_schema=DebateInput,
        output_schema=DebateState,
    )
    builder.add_node("open_debate", open_debate)
    builder.add_node(
        "confidence_gate",
        with_default_context(confidence_gate, default),
        retry_policy=retry,
        timeout=agent_timeout_s,
    )
    builder.add_node(
        "argue",
        with_default_context(argue, default),
        retry_policy=retry,
        timeout=debater_timeout_s,
        error_handler=debater_failed,
        destinations=("review_round",),
    )
    builder.add_node("review_round", review_round)
    builder.add_node(
        "judge_verdict",
        with_default_context(judge_verdict, default),
        retry_policy=retry,
        timeout=agent_timeout_s,
    )
    builder.add_node("count_votes", count_votes)
    builder.add_node("human_decision", human_decision)
    builder.add_node(
        "run_baseline",
        with_default_context(run_baseline, default),
        retry_policy=retry,
        timeout=debater_timeout_s,
        error_handler=baseline_failed,
        destinations=("conclude",),
    )
    builder.add_node("conclude", conclude)

    builder.add_edge(START, "open_debate")
    builder.add_edge("open_debate", "confidence_gate")
    builder.add_conditional_edges(
        "confidence_gate", after_gate, ["argue", "run_baseline", "conclude"]
    )
    builder.add_edge("argue", "review_round")
    builder.add_conditional_edges(
        "review_round", after_round, ["argue", "judge_verdict", "count_votes"]
    )
    builder.add_conditional_edges(
        "judge_verdict", after_judge, ["human_decision", "run_baseline", "conclude"]
    )
    builder.add_conditional_edges("count_votes", after_decision, ["run_baseline", "conclude"])
    builder.add_conditional_edges("human_decision", after_decision, ["run_baseline", "conclude"])
    builder.add_edge("run_baseline", "conclude")
    builder.add_edge("conclude", END)
    return builder.compile(checkpointer=checkpointer, name="debate")


def model_picks(values: dict[str, Any]) -> list[ModelPick]:
    """Models the input picks: each debater's, and the judge's."""
    picks = [
        ModelPick(f"debater_models.{name}", choice)
        for name, choice in values.get("debater_models", {}).items()
    ]
    if judge := values.get("judge_model"):
        picks.append(ModelPick("judge_model", judge))
    return picks


PATTERN = PatternSpec(
    name="debate",
    description="Debaters argue a proposition (or answer a question) in rounds; a judge, "
    "a vote or a person decides.",
    input=DebateInput,
    options=DebateOptions,
    build=build,
    check=check_debaters,
    answers={"debate_decision": decision_answer},
    model_picks=model_picks,
    team=TeamRole(report=debate_report, agents=debate_agents, task_field="question"),
    view=VIEW,
)
graph = build()
