"""Debate graph logic on a scripted model: rounds, rebuttals, early stop, the gate, every
outcome strategy, failures, accounting and the baselines."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from pydantic import Field

from mas.errors import InputError
from mas.patterns import get_pattern
from mas_graphs.graphs import debate
from mas_graphs.nodes.context import AgentContext
from mas_graphs.state.common import ModelPick
from mas_graphs.state.debate import DebateOptions
from tests.support.scripted import ScriptedChatModel
from tests.support.scripts_debate import (
    QUESTION,
    STANCES,
    debate_agent,
    debate_script,
    solo,
    solution,
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
    graph = debate.build(DebateOptions(backoff_s=0.0), checkpointer=InMemorySaver(), model=model)
    await graph.ainvoke({"question": QUESTION, "stances": STANCES, **task}, CONFIG, context=context)
    return (await graph.aget_state(CONFIG)).values, model


def debater_steps(model: ScriptedChatModel, names: list[str]) -> list[tuple[str, int | None]]:
    return [(agent, step) for agent, step in model.steps if agent in names]


# --- rounds ----------------------------------------------------------------------------


async def test_debate_runs_the_configured_number_of_rounds() -> None:
    values, model = await run_debate(debate_script(), rounds=3)
    assert values["round"] == 3
    assert values["stopped"] == {
        "round": 3,
        "reason": "round_limit",
        "note": "all 3 rounds argued; positions still differ: affirmative, negative",
    }
    assert [(t["round"], t["speaker"]) for t in values["transcript"]] == [
        (r, s) for r in (1, 2, 3) for s in ("affirmative", "negative")
    ]
    assert model.calls.count("affirmative") == model.calls.count("negative") == 3
    # The round check reads the turns; it asks no model.
    assert set(model.calls) == {"affirmative", "negative", "judge"}


async def test_transcript_keeps_round_speaker_and_stance_of_every_argument() -> None:
    values, _ = await run_debate(debate_script(), rounds=1)
    first = values["transcript"][0]
    assert first == {
        "round": 1,
        "speaker": "affirmative",
        "stance": "Argue that the team should run Kafka.",
        "status": "ok",
        "position": "affirmative",
        "answer": None,
        "argument": "Kafka scales",
        "rebuttals": [],
        "confidence": 0.6,
        "conceded": False,
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
    assert first.endswith("Round 1 of 2. Write your argument.")
    assert second.endswith("Round 2 of 2. Write your argument, answering the other sides.")
    assert 'negative (holds negative, confidence 0.8): "Ops cost is real"' in second
    assert 'rebuts: "scale is not needed yet"' in second
    assert 'What you said in round 1: "Kafka scales, round 1"' in second
    assert "Still costly" not in second
    assert "affirmative (holds" not in second, "a debater does not rebut itself"


# negative concedes in round 2: it now holds the most confident other side's position.
CONCEDES = [json.dumps(turn("negative", 0.8)), json.dumps(turn("negative", 0.4, conceded=True))]


async def test_debate_stops_early_when_positions_converge() -> None:
    values, model = await run_debate(debate_script(negative=CONCEDES), rounds=5)
    assert values["stopped"] == {
        "round": 2,
        "reason": "converged",
        "note": "all 2 debaters hold affirmative",
    }
    assert model.calls.count("affirmative") == 2
    assert max(t["round"] for t in values["transcript"]) == 2
    assert [r["converged"] for r in values["reviews"]] == [False, True]
    last = values["transcript"][-1]
    assert (last["speaker"], last["position"], last["conceded"]) == (
        "negative",
        "affirmative",
        True,
    )


async def test_a_concession_among_three_stops_the_debate() -> None:
    hybrid = [json.dumps(turn("hybrid", 0.5)), json.dumps(turn("hybrid", 0.2, conceded=True))]
    values, model = await run_debate(debate_script(hybrid=hybrid), stances=THREE, rounds=4)
    assert values["stopped"] == {
        "round": 2,
        "reason": "conceded",
        "note": "conceded: hybrid to negative",  # the most confident other side
    }
    assert values["reviews"][1]["conceded"] == ["hybrid"]
    assert model.calls.count("negative") == 2


async def test_round_one_offers_no_concession() -> None:
    script = debate_script(negative=json.dumps(turn("negative", 0.1, conceded=True)))
    values, _ = await run_debate(script, rounds=1)
    first = {t["speaker"]: t for t in values["transcript"]}
    assert first["negative"]["position"] == "negative" and not first["negative"]["conceded"]


async def test_without_early_stop_every_round_is_argued() -> None:
    values, model = await run_debate(debate_script(negative=CONCEDES), rounds=3, early_stop=False)
    assert values["stopped"]["reason"] == "round_limit" and values["round"] == 3
    assert model.calls.count("negative") == 3


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


# negative concedes to affirmative in the last round: its final position counts.
CONVERTED = CONCEDES
# the third debater concedes in round 2 to the most confident other side, negative
HYBRID_TO_NEGATIVE = [
    json.dumps(turn("hybrid", 0.3)),
    json.dumps(turn("hybrid", 0.3, conceded=True)),
]


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
            {"hybrid": HYBRID_TO_NEGATIVE},
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
            {"hybrid": HYBRID_TO_NEGATIVE},
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
    graph = debate.build(DebateOptions(backoff_s=0.0), checkpointer=InMemorySaver(), model=model)
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
    graph = debate.build(DebateOptions(backoff_s=0.0), checkpointer=InMemorySaver(), model=model)
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
    assert set(totals) == {"affirmative", "negative", "judge", "all"}
    assert totals["affirmative"]["calls"] == 2
    assert totals["all"]["calls"] == len(model.calls) == 5
    assert totals["all"]["failed_calls"] == 0
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
    assert judge_model.calls == ["judge"]
    assert hybrid_model.calls == ["hybrid", "hybrid"]
    assert "judge" not in default_model.calls and "hybrid" not in default_model.calls
    assert values["verdict"]["winner"] == "negative"


def test_model_picks_come_from_the_input() -> None:
    values = {"judge_model": "ollama:qwen3", "debater_models": {"negative": "ollama:llama3.2"}}
    assert debate.model_picks(values) == [
        ModelPick("debater_models.negative", "ollama:llama3.2"),
        ModelPick("judge_model", "ollama:qwen3"),
    ]
    assert debate.model_picks({"judge_model": None, "debater_models": {}}) == []


async def test_compare_runs_baselines_with_the_debates_number_of_calls() -> None:
    values, model = await run_debate(debate_script(), rounds=2, compare=True)
    debate_calls = 2 * 2 + 1  # debaters x rounds, the judge
    assert model.calls.count("single_agent") == 1
    assert model.calls.count("self_consistency") == debate_calls
    comparison = values["comparison"]
    assert comparison["debate"]["calls"] == comparison["self_consistency"]["calls"] == 5
    assert comparison["self_consistency"]["samples"] == 5
    assert comparison["self_consistency"]["votes"] == {"negative": 5}
    assert comparison["self_consistency"]["distinct_answers"] == 1
    assert comparison["single_agent"]["answer"] == "negative"
    assert comparison["agree"] is True
    assert (
        comparison["debate"]["tokens"]
        + comparison["single_agent"]["tokens"]
        + comparison["self_consistency"]["tokens"]
        == values["totals"]["all"]["input_tokens"] + values["totals"]["all"]["output_tokens"]
    )


async def test_compare_reports_disagreement() -> None:
    samples = [json.dumps(solo("affirmative", 0.6))] * 3 + [json.dumps(solo("negative", 0.6))] * 4
    script = debate_script(single_agent=solo("affirmative", 0.9), self_consistency=samples)
    values, _ = await run_debate(script, rounds=3, compare=True)
    comparison = values["comparison"]
    assert comparison["self_consistency"]["samples"] == 2 * 3 + 1
    assert comparison["self_consistency"]["votes"] == {"affirmative": 3, "negative": 4}
    assert comparison["self_consistency"]["distinct_answers"] == 2
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


# --- kind 'answer': solvers, votes over answers -------------------------------------------


async def test_solvers_vote_over_their_normalised_answers() -> None:
    script = {
        "solver_a": [json.dumps(solution("= 1,204.0")), json.dumps(solution("1204"))],
        "solver_b": json.dumps(solution("The answer is 1204.")),
        "solver_c": [json.dumps(solution("1200")), json.dumps(solution("1200"))],
    }
    values, model = await run_debate(script, kind="answer", stances=None, rounds=2)
    assert [s["name"] for s in values["stances"]] == ["solver_a", "solver_b", "solver_c"]
    assert values["strategy"] == "majority_vote"
    assert values["verdict"]["winner"] == "1204"
    assert values["verdict"]["tally"] == {"1204": 2, "1200": 1}
    round_one = [t for t in values["transcript"] if t["round"] == 1]
    assert [t["answer"] for t in round_one] == ["= 1,204.0", "The answer is 1204.", "1200"]
    assert "judge" not in model.calls


async def test_solvers_who_agree_stop_early() -> None:
    script = {name: json.dumps(solution("42")) for name in ("solver_a", "solver_b", "solver_c")}
    values, model = await run_debate(script, kind="answer", stances=None, rounds=3)
    assert values["stopped"]["reason"] == "converged" and values["stopped"]["round"] == 1
    assert len(model.calls) == 3


async def test_solvers_see_each_others_answers_in_round_two() -> None:
    seen: list[str] = []

    def solver_a(messages: list[BaseMessage]) -> str:
        seen.append(messages[-1].text)
        return json.dumps(solution("7"))

    script = {
        "solver_a": solver_a,
        "solver_b": json.dumps(solution("8", reasoning="3+5")),
        "solver_c": json.dumps(solution("9")),
    }
    await run_debate(script, kind="answer", stances=None, rounds=2)
    assert 'solver_b (answer 8, confidence 0.7): "3+5"' in seen[1]
    assert 'What you said in round 1 (your answer: "7")' in seen[1]


def test_a_debate_of_answers_is_decided_by_a_vote() -> None:
    with pytest.raises(InputError, match="a debate of kind 'answer' is decided by a vote"):
        get_pattern("debate").parse({"question": "2+2?", "kind": "answer", "strategy": "judge"})


# --- honest baselines ---------------------------------------------------------------------


class SamplingModel(ScriptedChatModel):
    """A scripted model with the sampling fields real providers have; every call records
    the temperature and seed it ran with (copies share the log)."""

    temperature: float = 0.2
    seed: int = 0
    sampled_with: list[tuple[str, float, int]] = Field(default_factory=list)

    def _record(self, agent: str) -> None:
        super()._record(agent)
        self.sampled_with.append((agent, self.temperature, self.seed))


async def test_self_consistency_samples_differ_in_seed_and_run_warm() -> None:
    model = SamplingModel(script=debate_script(), classify=debate_agent)
    graph = debate.build(DebateOptions(backoff_s=0.0), checkpointer=InMemorySaver(), model=model)
    task = {"question": QUESTION, "stances": STANCES, "compare": True, "seed": 10}
    await graph.ainvoke(task, CONFIG)
    samples = [(t, s) for agent, t, s in model.sampled_with if agent == "self_consistency"]
    assert len(samples) == 5
    assert {t for t, _ in samples} == {0.8}, "samples run at the default sampling temperature"
    assert sorted(s for _, s in samples) == [11, 12, 13, 14, 15], "one seed per sample"
    others = {(a, t) for a, t, _ in model.sampled_with if a != "self_consistency"}
    assert others == {
        ("affirmative", 0.2),
        ("negative", 0.2),
        ("judge", 0.2),
        ("single_agent", 0.2),
    }


async def test_temperatures_are_set_per_role() -> None:
    model = SamplingModel(script=debate_script(), classify=debate_agent)
    graph = debate.build(DebateOptions(backoff_s=0.0), checkpointer=InMemorySaver(), model=model)
    task = {
        "question": QUESTION,
        "stances": STANCES,
        "rounds": 1,
        "temperatures": {"debater": 1.1, "judge": 0.0},
    }
    await graph.ainvoke(task, CONFIG)
    assert {(a, t) for a, t, _ in model.sampled_with} == {
        ("affirmative", 1.1),
        ("negative", 1.1),
        ("judge", 0.0),
    }
    debater_seeds = [s for a, _, s in model.sampled_with if a in ("affirmative", "negative")]
    assert len(set(debater_seeds)) == 2


async def test_failed_calls_count_in_every_total() -> None:
    script = debate_script(affirmative=["garbage", "garbage", json.dumps(turn("affirmative", 0.6))])
    values, model = await run_debate(script, rounds=2)
    assert values["transcript"][0]["status"] == "failed"
    totals = values["totals"]
    assert totals["affirmative"]["calls"] == 3 and totals["affirmative"]["failed_calls"] == 2
    assert totals["all"]["calls"] == len(model.calls)
    failed = [u for u in values["usage"] if not u["ok"]]
    assert failed and failed[0]["notes"][0].startswith("attempt 1 invalid: not JSON")
