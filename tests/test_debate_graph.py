"""Debate graph logic on a scripted model: rounds, rebuttals, early stop, the gate, every
outcome strategy, failures, accounting and the baselines."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from graphs import debate
from mas.errors import InputError
from mas.patterns import get_pattern
from nodes.context import AgentContext
from state.common import RoleModel
from tests.scripted import ScriptedChatModel
from tests.scripts_debate import (
    QUESTION,
    STANCES,
    check,
    debate_agent,
    debate_script,
    solo,
    turn,
    verdict,
)

THREE = [*STANCES, {"name": "hybrid", "stance": "Argue for a managed Kafka service."}]
CONFIG: Any = {"configurable": {"thread_id": "t"}}


def scripted(script: dict[str, Any], **kwargs: Any) -> ScriptedChatModel:
    return ScriptedChatModel(script=script, classify=debate_agent, **kwargs)


async def run_debate(
    script: dict[str, Any], context: AgentContext | None = None, **task: Any
) -> tuple[dict[str, Any], ScriptedChatModel]:
    model = scripted(script)
    graph = debate.build(checkpointer=InMemorySaver(), model=model, backoff_s=0.0)
    await graph.ainvoke({"question": QUESTION, "stances": STANCES, **task}, CONFIG, context=context)
    return (await graph.aget_state(CONFIG)).values, model


def debater_steps(model: ScriptedChatModel, names: list[str]) -> list[tuple[str, int | None]]:
    return [(agent, step) for agent, step in model.steps if agent in names]


# --- rounds ----------------------------------------------------------------------------


async def test_debate_runs_the_configured_number_of_rounds() -> None:
    values, model = await run_debate(debate_script(), rounds=3)
    assert values["round"] == 3
    assert values["stopped"] == {"round": 3, "reason": "round_limit", "note": "all 3 rounds argued"}
    assert [(t["round"], t["speaker"]) for t in values["transcript"]] == [
        (r, s) for r in (1, 2, 3) for s in ("affirmative", "negative")
    ]
    assert model.calls.count("affirmative") == model.calls.count("negative") == 3
    # checks after rounds 1 and 2; after the last round there is nothing left to stop
    assert model.calls.count("round_judge") == 2


async def test_transcript_keeps_round_speaker_and_stance_of_every_argument() -> None:
    values, _ = await run_debate(debate_script(), rounds=1)
    first = values["transcript"][0]
    assert first == {
        "round": 1,
        "speaker": "affirmative",
        "stance": "Argue that the team should run Kafka.",
        "status": "ok",
        "position": "affirmative",
        "argument": "Kafka scales",
        "rebuttals": [],
        "confidence": 0.6,
        "error": None,
    }


async def test_debaters_of_one_round_argue_in_one_superstep() -> None:
    script = debate_script(hybrid=turn("hybrid", 0.5))
    values, model = await run_debate(script, stances=THREE, rounds=2)
    steps = debater_steps(model, ["affirmative", "negative", "hybrid"])
    round_one, round_two = steps[:3], steps[3:]
    assert len(steps) == 6
    assert len({step for _, step in round_one}) == 1
    assert len({step for _, step in round_two}) == 1
    assert round_two[0][1] > round_one[0][1]  # type: ignore[operator]
    assert len(values["transcript"]) == 6


async def test_rebuttals_see_the_other_sides_previous_arguments() -> None:
    seen: list[str] = []

    def affirmative(messages: list[BaseMessage]) -> str:
        seen.append(messages[-1].text)
        return json.dumps(turn("affirmative", 0.6, f"Kafka scales, round {len(seen)}"))

    negative = [
        json.dumps(turn("negative", 0.8, "Ops cost is real", "scale is not needed yet")),
        json.dumps(turn("negative", 0.8, "Still costly")),
    ]
    await run_debate(debate_script(affirmative=affirmative, negative=negative), rounds=2)
    first, second = seen
    assert "Round 1 of 2" in first and "rebut" not in first
    assert "Round 2 of 2" in second
    assert 'negative (holds negative, confidence 0.8): "Ops cost is real"' in second
    assert 'rebuts: "scale is not needed yet"' in second
    assert 'Your argument in round 1: "Kafka scales, round 1"' in second
    assert "Still costly" not in second
    assert "affirmative (holds" not in second, "a debater does not rebut itself"


async def test_debate_stops_early_when_positions_converge() -> None:
    script = debate_script(round_judge=[check(), check(converged=True)])
    values, model = await run_debate(script, rounds=5)
    assert values["stopped"] == {"round": 2, "reason": "converged", "note": "scripted check"}
    assert model.calls.count("affirmative") == 2
    assert max(t["round"] for t in values["transcript"]) == 2
    assert [r["converged"] for r in values["reviews"]] == [False, True]
    assert values["verdict"]["winner"] == "negative"


async def test_debate_stops_early_when_a_side_concedes() -> None:
    script = debate_script(round_judge=check(conceded=["affirmative"]))
    values, model = await run_debate(script, rounds=4)
    assert values["stopped"]["round"] == 1 and values["stopped"]["reason"] == "conceded"
    assert values["reviews"][0]["conceded"] == ["affirmative"]
    assert model.calls.count("negative") == 1


async def test_without_early_stop_no_round_checks_are_made() -> None:
    script = debate_script(round_judge=check(converged=True))
    values, model = await run_debate(script, rounds=3, early_stop=False)
    assert "round_judge" not in model.calls
    assert values["stopped"]["reason"] == "round_limit" and values["round"] == 3


# --- confidence gate ---------------------------------------------------------------------


async def test_confident_first_answer_skips_the_debate() -> None:
    values, model = await run_debate(debate_script(gate=solo("negative", 0.9)), gate_threshold=0.8)
    assert model.calls == ["gate"]
    assert values["gate"]["skipped_debate"] is True
    assert values["gate"]["reason"] == "first answer's confidence 0.90 >= gate_threshold 0.80"
    assert values["stopped"]["reason"] == "gate" and values["stopped"]["round"] == 0
    assert values["verdict"]["decided_by"] == "gate"
    assert values["verdict"]["winner"] == "negative"
    assert values["transcript"] == []


async def test_unsure_first_answer_goes_to_debate() -> None:
    values, model = await run_debate(debate_script(gate=solo("negative", 0.5)), gate_threshold=0.8)
    assert values["gate"]["skipped_debate"] is False
    assert "< gate_threshold 0.80" in values["gate"]["reason"]
    assert model.calls.count("affirmative") == 2
    assert values["verdict"]["decided_by"] == "judge"


async def test_gate_is_off_by_default() -> None:
    values, model = await run_debate(debate_script(gate=solo("negative", 1.0)))
    assert "gate" not in model.calls and "gate" not in values


# --- strategies ------------------------------------------------------------------------


async def test_judge_verdict_is_structured() -> None:
    values, _ = await run_debate(debate_script())
    assert values["verdict"] == {
        "decided_by": "judge",
        "winner": "negative",
        "confidence": 0.85,
        "reasoning": "negative argued better",
        "decisive_for": ["ops cost is real"],
        "decisive_against": ["scale might come"],
        "tally": {},
        "note": "",
    }


async def test_judge_may_find_the_debate_inconclusive() -> None:
    values, _ = await run_debate(debate_script(judge=verdict("inconclusive", 0.3)))
    assert values["verdict"]["winner"] == "inconclusive"


# negative switches to affirmative in the last round: its final position counts.
CONVERTED = [json.dumps(turn("negative", 0.8)), json.dumps(turn("affirmative", 0.4))]


@pytest.mark.parametrize(
    ("task", "overrides", "winner", "tally", "confidence"),
    [
        ({"strategy": "majority_vote"}, {}, "inconclusive", {"affirmative": 1, "negative": 1}, 0),
        (
            {"strategy": "majority_vote"},
            {"negative": CONVERTED},
            "affirmative",
            {"affirmative": 2},
            1.0,
        ),
        (
            {"strategy": "majority_vote", "stances": THREE},
            {"hybrid": turn("negative", 0.3)},
            "negative",
            {"affirmative": 1, "negative": 2},
            0.667,
        ),
        (
            {"strategy": "weighted", "weights": {"affirmative": 3, "negative": 1}},
            {},
            "affirmative",
            {"affirmative": 3, "negative": 1},
            0.75,
        ),
        (
            {"strategy": "weighted", "weights": {"affirmative": 2}, "stances": THREE},
            {"hybrid": turn("negative", 0.3)},
            "inconclusive",
            {"affirmative": 2, "negative": 2},
            0,
        ),
        ({"strategy": "confidence"}, {}, "negative", {"affirmative": 0.6, "negative": 0.8}, 0.8),
        (
            {"strategy": "confidence"},
            {"affirmative": turn("affirmative", 0.8)},
            "inconclusive",
            {"affirmative": 0.8, "negative": 0.8},
            0,
        ),
    ],
    ids=[
        "majority-tie",
        "majority-final-positions",
        "majority-three",
        "weighted",
        "weighted-tie",
        "confidence",
        "confidence-tie",
    ],
)
async def test_vote_strategies(
    task: dict[str, Any],
    overrides: dict[str, Any],
    winner: str,
    tally: dict[str, float],
    confidence: float,
) -> None:
    values, model = await run_debate(debate_script(**overrides), **task)
    result = values["verdict"]
    assert result["decided_by"] == task["strategy"]
    assert result["winner"] == winner
    assert result["tally"] == tally
    assert result["confidence"] == confidence
    assert "judge" not in model.calls


async def test_failed_debater_votes_with_its_last_good_position() -> None:
    script = debate_script(negative=[json.dumps(turn("negative", 0.8)), "nonsense", "nonsense"])
    values, _ = await run_debate(script, strategy="majority_vote")
    assert values["verdict"]["tally"] == {"affirmative": 1, "negative": 1}


async def test_human_strategy_pauses_with_transcript_and_draft_then_takes_the_decision() -> None:
    model = scripted(debate_script())
    graph = debate.build(checkpointer=InMemorySaver(), model=model, backoff_s=0.0)
    await graph.ainvoke({"question": QUESTION, "stances": STANCES, "strategy": "human"}, CONFIG)
    state = await graph.aget_state(CONFIG)
    (pending,) = state.interrupts
    assert pending.value["kind"] == "debate_decision"
    assert pending.value["reason"] == "strategy is human"
    assert pending.value["draft_verdict"]["winner"] == "negative"
    assert len(pending.value["transcript"]) == 4
    assert pending.value["positions"] == ["affirmative", "negative", "inconclusive"]
    assert "verdict" not in state.values

    answer = {"winner": "affirmative", "reasoning": "growth is coming"}
    await graph.ainvoke(Command(resume=answer), CONFIG)
    values = (await graph.aget_state(CONFIG)).values
    assert values["verdict"]["decided_by"] == "human"
    assert values["verdict"]["winner"] == "affirmative"
    assert values["verdict"]["reasoning"] == "growth is coming"
    assert values["verdict"]["note"] == "strategy is human; the judge's draft said negative"
    assert model.calls.count("judge") == 1


@pytest.mark.parametrize(("judge_confidence", "escalated"), [(0.4, True), (0.85, False)])
async def test_unsure_judge_escalates_to_a_person(judge_confidence: float, escalated: bool) -> None:
    model = scripted(debate_script(judge=verdict("negative", judge_confidence)))
    graph = debate.build(checkpointer=InMemorySaver(), model=model, backoff_s=0.0)
    await graph.ainvoke({"question": QUESTION, "stances": STANCES, "escalate_below": 0.6}, CONFIG)
    state = await graph.aget_state(CONFIG)
    assert bool(state.interrupts) is escalated
    if escalated:
        reason = state.interrupts[0].value["reason"]
        assert reason == "judge confidence 0.40 is below escalate_below 0.60"
        assert "verdict" not in state.values
    else:
        assert state.values["verdict"]["decided_by"] == "judge"


# --- failures ---------------------------------------------------------------------------


async def test_malformed_debater_output_is_repaired_once() -> None:
    script = debate_script(affirmative=["not json", json.dumps(turn("affirmative", 0.6))])
    values, model = await run_debate(script, rounds=1)
    assert model.calls.count("affirmative") == 2
    assert values["transcript"][0]["status"] == "ok"
    assert values["failures"] == []


async def test_unrepairable_debater_is_recorded_and_the_transcript_kept() -> None:
    script = debate_script(
        affirmative=[json.dumps(turn("affirmative", 0.6)), "garbage", "garbage", "garbage"]
    )
    script["affirmative"].append(json.dumps(turn("affirmative", 0.6, "back again")))
    values, _ = await run_debate(script, rounds=3)
    rounds = {(t["round"], t["speaker"]): t for t in values["transcript"]}
    assert len(rounds) == 6
    failed = rounds[(2, "affirmative")]
    assert failed["status"] == "failed" and "garbage" in failed["error"]
    assert rounds[(2, "negative")]["status"] == "ok"
    assert rounds[(3, "affirmative")]["argument"] == "back again"
    assert [(f["agent"], f["round"]) for f in values["failures"]] == [("affirmative", 2)]
    assert values["verdict"]["winner"] == "negative"


async def test_debater_that_keeps_erroring_is_retried_then_recorded() -> None:
    script = debate_script(negative=ConnectionError("model server went away"))
    values, model = await run_debate(script, rounds=2)
    assert model.calls.count("negative") == 2 * 2, "two attempts per round"
    failed = [t for t in values["transcript"] if t["status"] == "failed"]
    assert [t["speaker"] for t in failed] == ["negative", "negative"]
    assert "ConnectionError: model server went away" in failed[0]["error"]
    assert values["verdict"]["winner"] == "negative"


async def test_failed_judge_gives_an_inconclusive_verdict_without_losing_the_debate() -> None:
    values, model = await run_debate(debate_script(judge="no verdict"))
    assert model.calls.count("judge") == 2
    assert values["verdict"]["winner"] == "inconclusive"
    assert "the judge failed" in values["verdict"]["note"]
    assert len(values["transcript"]) == 4


# --- accounting, models, baselines -------------------------------------------------------


async def test_every_call_is_accounted_per_agent_and_overall() -> None:
    values, model = await run_debate(debate_script(), rounds=2)
    totals = values["totals"]
    assert set(totals) == {"affirmative", "negative", "round_judge", "judge", "all"}
    assert totals["affirmative"]["calls"] == 2
    assert totals["all"]["calls"] == len(model.calls) == 6
    assert totals["all"]["input_tokens"] == sum(u["input_tokens"] for u in values["usage"]) > 0
    assert totals["all"]["output_tokens"] > 0
    assert all(u["latency_ms"] >= 0 for u in values["usage"])


async def test_judge_and_debaters_use_their_role_models() -> None:
    judge_model = scripted(debate_script())
    hybrid_model = scripted(debate_script(hybrid=turn("hybrid", 0.5)))
    context = AgentContext(
        model=scripted(debate_script()),
        models={"judge": judge_model, "debater:hybrid": hybrid_model},
    )
    values, default_model = await run_debate(debate_script(), context=context, stances=THREE)
    assert judge_model.calls == ["round_judge", "judge"]
    assert hybrid_model.calls == ["hybrid", "hybrid"]
    assert "judge" not in default_model.calls and "hybrid" not in default_model.calls
    assert values["verdict"]["winner"] == "negative"


def test_role_models_come_from_the_input() -> None:
    values = {"judge_model": "ollama:qwen3", "debater_models": {"negative": "ollama:llama3.2"}}
    assert debate.role_models(values) == [
        RoleModel("debater:negative", "debater_models.negative", "ollama:llama3.2"),
        RoleModel("judge", "judge_model", "ollama:qwen3"),
    ]
    assert debate.role_models({"judge_model": None, "debater_models": {}}) == []


async def test_compare_runs_baselines_with_the_debates_number_of_calls() -> None:
    values, model = await run_debate(debate_script(), rounds=2, compare=True)
    debate_calls = 2 * 2 + 1 + 1  # debaters x rounds, one round check, the judge
    assert model.calls.count("single_agent") == 1
    assert model.calls.count("self_consistency") == debate_calls
    comparison = values["comparison"]
    assert comparison["debate"]["calls"] == comparison["self_consistency"]["calls"] == 6
    assert comparison["self_consistency"]["samples"] == 6
    assert comparison["self_consistency"]["votes"] == {"negative": 6}
    assert comparison["single_agent"]["answer"] == "negative"
    assert comparison["agree"] is True
    assert (
        comparison["debate"]["tokens"]
        + comparison["single_agent"]["tokens"]
        + comparison["self_consistency"]["tokens"]
        == values["totals"]["all"]["input_tokens"] + values["totals"]["all"]["output_tokens"]
    )


async def test_compare_reports_disagreement() -> None:
    samples = [json.dumps(solo("affirmative", 0.6))] * 4 + [json.dumps(solo("negative", 0.6))] * 5
    script = debate_script(single_agent=solo("affirmative", 0.9), self_consistency=samples)
    values, _ = await run_debate(script, rounds=3, compare=True)
    comparison = values["comparison"]
    assert comparison["self_consistency"]["samples"] == 2 * 3 + 2 + 1
    assert comparison["self_consistency"]["votes"] == {"affirmative": 4, "negative": 5}
    assert comparison["self_consistency"]["answer"] == "negative"
    assert comparison["single_agent"]["answer"] == "affirmative"
    assert comparison["debate"]["answer"] == "negative"
    assert comparison["agree"] is False


async def test_without_compare_no_baselines_run() -> None:
    values, model = await run_debate(debate_script())
    assert "single_agent" not in model.calls and "self_consistency" not in model.calls
    assert "comparison" not in values


# --- input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"question": "x", "stances": STANCES[:1]}, "stances: List should have at least 2 items"),
        ({"question": "x", "stances": THREE * 3}, "stances: List should have at most 6 items"),
        ({"question": "x", "rounds": 7}, "rounds: Input should be less than or equal to 6"),
        ({"question": "x", "strategy": "coin"}, "strategy: Input should be 'judge'"),
        ({"question": "x", "gate_threshold": 1.5}, "gate_threshold: Input should be less"),
        ({"question": "x", "rebuttal": True}, "rebuttal: Extra inputs are not permitted"),
        ({"question": "  "}, "question: question must not be blank"),
        ({"question": "x", "weights": {"zed": 1}}, "weights: unknown debaters zed"),
        ({"question": "x", "strategy": "weighted"}, "weights: strategy 'weighted' needs"),
        ({"question": "x", "weights": {"negative": -1}}, "weights: weights must not"),
        ({"question": "x", "debater_models": {"zed": "llamacpp"}}, "debater_models: unknown"),
        (
            {"question": "x", "stances": [*STANCES, {"name": "negative", "stance": "again"}]},
            "repeated: negative",
        ),
        ({"question": "x", "max_attempts": 0}, "max_attempts: Input should be greater"),
    ],
)
def test_bad_input_is_refused_naming_the_field(data: dict[str, Any], problem: str) -> None:
    with pytest.raises(InputError, match="invalid debate input") as error:
        get_pattern("debate").parse(data)
    assert problem in str(error.value)


def test_proposition_is_accepted_for_question() -> None:
    state, options = get_pattern("debate").parse({"proposition": "Tabs beat spaces", "rounds": 1})
    assert state["question"] == "Tabs beat spaces"
    assert [s["name"] for s in state["stances"]] == ["affirmative", "negative"]
    assert options == {
        "debater_timeout_s": 300.0,
        "agent_timeout_s": 600.0,
        "max_attempts": 2,
        "backoff_s": 1.0,
    }
