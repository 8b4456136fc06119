"""Debate nodes: the confidence gate, debaters' rounds, the judge's checks and verdict,
vote counting, the human decision, and the single-agent / self-consistency baselines.

Every node is a small function of its input that returns a partial state update;
rounds, early stops and strategies are edges of the graph (see graphs/debate.py).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from langgraph.errors import NodeError
from langgraph.runtime import Runtime
from langgraph.types import Command, Send, interrupt
from pydantic import BaseModel, ConfigDict, Field

from nodes import prompts
from nodes.context import AgentContext, agent_context
from nodes.errors import describe_error
from nodes.structured import StructuredOutputError, ask_structured, json_schema
from state.common import CallUsage, usage_totals
from state.debate import (
    INCONCLUSIVE,
    AgentFailure,
    BaselineAnswer,
    BaselineTask,
    DebateInput,
    DebaterTask,
    DebaterTurn,
    DebateState,
    GateRecord,
    JudgeVerdict,
    RoundCheck,
    RoundReview,
    SoloAnswer,
    Stop,
    Turn,
    Verdict,
    with_positions,
)

BASELINE_AGENTS = ("single_agent", "self_consistency")


def names_of(stances: list[dict[str, Any]]) -> list[str]:
    return [s["name"] for s in stances]


def transcript_text(turns: list[Turn]) -> str:
    lines = []
    for t in turns:
        if t["status"] == "failed":
            lines.append(f"[round {t['round']}] {t['speaker']}: (no argument: it failed)")
            continue
        rebuttals = "".join(f"\n    rebuts: {prompts.quoted(r)}" for r in t["rebuttals"])
        lines.append(
            f"[round {t['round']}] {t['speaker']} (holds {t['position']}, confidence "
            f"{t['confidence']}): {prompts.quoted(t['argument'])}{rebuttals}"
        )
    return "\n".join(lines)


# --- input and confidence gate -------------------------------------------------------------


def open_debate(state: DebateState) -> dict[str, Any]:
    """Validate the input and fill in its defaults, so a graph invoked directly (not via
    the runner, which has done this already) behaves the same."""
    given = {name: state[name] for name in DebateInput.model_fields if name in state}  # type: ignore[literal-required]
    return DebateInput.model_validate(given).model_dump()


async def confidence_gate(state: DebateState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """One agent answers first; a confident enough answer makes the debate unnecessary."""
    threshold = state.get("gate_threshold")
    if threshold is None:
        return {}
    try:
        reply = await ask_structured(
            agent_context(runtime).model_for("gate"),
            agent="gate",
            system=prompts.GATE,
            user=prompts.question_message(state["question"], state["stances"]),
            schema=with_positions(SoloAnswer, names_of(state["stances"]), position="one"),
        )
    except StructuredOutputError as error:
        gate = GateRecord(
            position=None,
            answer="",
            confidence=None,
            threshold=threshold,
            skipped_debate=False,
            reason=f"the gate agent failed, so the debate runs: {error.problem}",
        )
        return {
            "gate": gate,
            "failures": [AgentFailure(agent="gate", round=None, error=str(error))],
        }
    answer = reply.value
    skip = answer.confidence >= threshold
    reason = (
        f"first answer's confidence {answer.confidence:.2f} "
        f"{'>=' if skip else '<'} gate_threshold {threshold:.2f}"
    )
    gate = GateRecord(
        position=answer.position,
        answer=answer.answer,
        confidence=answer.confidence,
        threshold=threshold,
        skipped_debate=skip,
        reason=reason,
    )
    update: dict[str, Any] = {"gate": gate, "usage": [reply.usage]}
    if skip:
        update["stopped"] = Stop(round=0, reason="gate", note=reason)
        update["verdict"] = Verdict(
            decided_by="gate",
            winner=answer.position,
            confidence=answer.confidence,
            reasoning=answer.answer,
            decisive_for=[],
            decisive_against=[],
            tally={},
            note=f"debate skipped: {reason}",
        )
    runtime.stream_writer({"node": "confidence_gate", "skipped_debate": skip, "reason": reason})
    return update


# --- rounds ------------------------------------------------------------------------------


def dispatch_round(state: DebateState, number: int) -> list[Send]:
    """All debaters argue round `number` in parallel; from round 2 each gets the other
    sides' previous arguments to rebut."""
    previous = [
        t for t in state.get("transcript", []) if t["round"] == number - 1 and t["status"] == "ok"
    ]
    return [
        Send(
            "argue",
            DebaterTask(
                question=state["question"],
                debater=debater,
                stances=state["stances"],
                round=number,
                rounds=state["rounds"],
                opponents=[t for t in previous if t["speaker"] != debater["name"]],
                own_previous=next((t for t in previous if t["speaker"] == debater["name"]), None),
            ),
        )
        for debater in state["stances"]
    ]


def round_message(task: DebaterTask) -> str:
    """The debater's side and stance, the other sides, the question and what to rebut,
    all as data: the stance is what the debater argues, not an instruction to it."""
    own = task["debater"]
    others = [s for s in task["stances"] if s["name"] != own["name"]]
    parts = [
        f"Your side: {prompts.quoted(own['name'])}\nYour stance: {prompts.quoted(own['stance'])}",
        prompts.section("The other sides", prompts.positions_list(others)),
        f"Question: {prompts.quoted(task['question'])}",
        f"Round {task['round']} of {task['rounds']}.",
    ]
    if task["own_previous"] is not None:
        previous = prompts.quoted(task["own_previous"]["argument"])
        parts.append(f"Your argument in round {task['round'] - 1}: {previous}")
    if task["opponents"]:
        parts.append(
            prompts.section(
                f"The other sides' arguments in round {task['round'] - 1} (rebut each)",
                transcript_text(task["opponents"]),
            )
        )
    return "\n\n".join(parts)


def failed_turn(task: DebaterTask, error: str) -> dict[str, Any]:
    """A debater's failure, recorded in the transcript so the round is still complete."""
    name = task["debater"]["name"]
    turn = Turn(
        round=task["round"],
        speaker=name,
        stance=task["debater"]["stance"],
        status="failed",
        position=None,
        argument="",
        rebuttals=[],
        confidence=None,
        error=error,
    )
    return {
        "transcript": [turn],
        "failures": [AgentFailure(agent=name, round=task["round"], error=error)],
    }


async def argue(task: DebaterTask, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    debater = task["debater"]
    name = debater["name"]
    try:
        reply = await ask_structured(
            agent_context(runtime).model_for(f"debater:{name}"),
            agent=name,
            system=prompts.DEBATER,
            user=round_message(task),
            schema=with_positions(DebaterTurn, names_of(task["stances"]), position="one"),
            # Names the model call's span, so a trace shows each debater's rounds apart.
            config={"run_name": f"{name} round {task['round']}"},
        )
    except StructuredOutputError as error:
        runtime.stream_writer({"node": "argue", "round": task["round"], "speaker": name})
        return failed_turn(task, str(error))
    turn = Turn(
        round=task["round"],
        speaker=name,
        stance=debater["stance"],
        status="ok",
        position=reply.value.position,
        argument=reply.value.argument,
        rebuttals=reply.value.rebuttals,
        confidence=reply.value.confidence,
        error=None,
    )
    runtime.stream_writer(
        {
            "node": "argue",
            "round": task["round"],
            "speaker": name,
            "position": turn["position"],
            "confidence": turn["confidence"],
        }
    )
    return {"transcript": [turn], "usage": [reply.usage]}


def debater_failed(task: DebaterTask, error: NodeError) -> Command[Any]:
    """Retries are exhausted: record the failure; the other debaters' turns are kept."""
    return Command(update=failed_turn(task, describe_error(error.error)), goto="review_round")


async def review_round(state: DebateState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Round barrier: every debater's turn is in. Ends the debate at the round limit, or
    earlier when the judge finds the positions converged or a side conceded."""
    number = state.get("round", 0) + 1
    if number >= state["rounds"]:
        stop = Stop(round=number, reason="round_limit", note=f"all {number} rounds argued")
        runtime.stream_writer({"node": "review_round", "round": number, "stopped": stop["reason"]})
        return {"round": number, "stopped": stop}
    if not state.get("early_stop", True):
        return {"round": number}
    names = names_of(state["stances"])
    turns = [t for t in state.get("transcript", []) if t["round"] == number]
    try:
        reply = await ask_structured(
            agent_context(runtime).model_for("judge"),
            agent="round_judge",
            system=prompts.ROUND_JUDGE,
            user=f"Question: {prompts.quoted(state['question'])}\n\n"
            + prompts.section(f"Round {number}", transcript_text(turns)),
            schema=with_positions(RoundCheck, names, conceded="many"),
        )
    except StructuredOutputError as error:
        # Without a check the debate simply goes on; the failure is on record.
        failure = AgentFailure(agent="round_judge", round=number, error=str(error))
        return {"round": number, "failures": [failure]}
    review = RoundReview(
        round=number,
        converged=reply.value.converged,
        conceded=sorted(set(reply.value.conceded)),
        reason=reply.value.reason,
    )
    update: dict[str, Any] = {"round": number, "reviews": [review], "usage": [reply.usage]}
    if review["converged"] or review["conceded"]:
        reason: Literal["converged", "conceded"] = (
            "converged" if review["converged"] else "conceded"
        )
        update["stopped"] = Stop(round=number, reason=reason, note=review["reason"])
    runtime.stream_writer(
        {
            "node": "review_round",
            "round": number,
            "stopped": update.get("stopped", {}).get("reason"),
        }
    )
    return update


def after_round(state: DebateState) -> list[Send] | Literal["judge_verdict", "count_votes"]:
    if "stopped" not in state:
        return dispatch_round(state, state["round"] + 1)
    return "judge_verdict" if state["strategy"] in ("judge", "human") else "count_votes"


def after_gate(state: DebateState) -> list[Send] | Literal["conclude"]:
    return after_decision(state) if "stopped" in state else dispatch_round(state, 1)


# --- outcome -------------------------------------------------------------------------


def escalation_reason(state: DebateState, draft: Verdict) -> str | None:
    """Why a person must decide, or None when the judge's verdict stands."""
    if state["strategy"] == "human":
        return "strategy is human"
    floor = state.get("escalate_below")
    if floor is not None and draft["confidence"] < floor:
        return f"judge confidence {draft['confidence']:.2f} is below escalate_below {floor:.2f}"
    return None


async def judge_verdict(state: DebateState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """The judge's structured verdict; it stands unless a person must decide."""
    names = names_of(state["stances"])
    update: dict[str, Any] = {}
    try:
        reply = await ask_structured(
            agent_context(runtime).model_for("judge"),
            agent="judge",
            system=prompts.JUDGE,
            user=prompts.question_message(state["question"], state["stances"])
            + "\n\n"
            + prompts.section("Transcript", transcript_text(state.get("transcript", []))),
            schema=with_positions(JudgeVerdict, names, winner="verdict"),
        )
    except StructuredOutputError as error:
        draft = Verdict(
            decided_by="judge",
            winner=INCONCLUSIVE,
            confidence=0.0,
            reasoning="",
            decisive_for=[],
            decisive_against=[],
            tally={},
            note=f"the judge failed: {error.problem}",
        )
        update["failures"] = [AgentFailure(agent="judge", round=None, error=str(error))]
    else:
        draft = Verdict(
            decided_by="judge",
            winner=reply.value.winner,
            confidence=reply.value.confidence,
            reasoning=reply.value.reasoning,
            decisive_for=reply.value.decisive_for,
            decisive_against=reply.value.decisive_against,
            tally={},
            note="",
        )
        update["usage"] = [reply.usage]
    update["draft_verdict"] = draft
    if escalation_reason(state, draft) is None:
        update["verdict"] = draft
    runtime.stream_writer({"node": "judge_verdict", "winner": draft["winner"]})
    return update


def after_judge(state: DebateState) -> list[Send] | Literal["human_decision", "conclude"]:
    return after_decision(state) if "verdict" in state else "human_decision"


def last_turns(transcript: list[Turn]) -> dict[str, Turn]:
    """Each debater's final position: its last turn that did not fail."""
    return {t["speaker"]: t for t in transcript if t["status"] == "ok"}


def leader(tally: dict[str, float]) -> str:
    """The position with the most, or 'inconclusive' on a tie or an empty tally."""
    ranked = sorted(tally.items(), key=lambda item: -item[1])
    if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return INCONCLUSIVE
    return ranked[0][0]


def tally_votes(state: DebateState) -> dict[str, float]:
    turns = last_turns(state.get("transcript", [])).values()
    tally: dict[str, float] = {}
    if state["strategy"] == "confidence":
        for t in turns:
            assert t["position"] is not None and t["confidence"] is not None
            tally[t["position"]] = max(tally.get(t["position"], 0.0), t["confidence"])
        return tally
    weights = state.get("weights", {}) if state["strategy"] == "weighted" else {}
    for t in turns:
        assert t["position"] is not None
        tally[t["position"]] = tally.get(t["position"], 0.0) + weights.get(t["speaker"], 1.0)
    return tally


def count_votes(state: DebateState) -> dict[str, Any]:
    """Majority, weighted or confidence vote over each debater's final position."""
    strategy = state["strategy"]
    assert strategy in ("majority_vote", "weighted", "confidence")
    tally = tally_votes(state)
    winner = leader(tally)
    if winner == INCONCLUSIVE:
        confidence = 0.0
        reasoning = "tie: " + (", ".join(f"{p} {v:g}" for p, v in tally.items()) or "no votes")
    elif strategy == "confidence":
        confidence = tally[winner]
        reasoning = f"{winner} was held with the highest confidence ({confidence:.2f})"
    else:
        confidence = round(tally[winner] / sum(tally.values()), 3)
        reasoning = f"{winner} got {tally[winner]:g} of {sum(tally.values()):g} votes"
    verdict = Verdict(
        decided_by=strategy,
        winner=winner,
        confidence=confidence,
        reasoning=reasoning,
        decisive_for=[],
        decisive_against=[],
        tally={p: round(v, 3) for p, v in tally.items()},
        note="",
    )
    return {"verdict": verdict}


class HumanDecision(BaseModel):
    """A person's answer to the debate-decision interrupt."""

    model_config = ConfigDict(extra="forbid")

    winner: str = Field(description="A debater's position, or 'inconclusive'.")
    reasoning: str = Field(default="", max_length=4_000)
    confidence: float = Field(default=1.0, ge=0, le=1)


def decision_answer(payload: dict[str, Any]) -> type[HumanDecision]:
    """The answer model for a pending debate-decision interrupt: winner is one of its positions."""
    names = [p for p in payload["positions"] if p != INCONCLUSIVE]
    schema: type[HumanDecision] = with_positions(HumanDecision, names, winner="verdict")
    return schema


def human_decision(state: DebateState) -> dict[str, Any]:
    """Pause for a person to decide, with the transcript and the judge's draft in hand."""
    draft = state["draft_verdict"]
    reason = escalation_reason(state, draft) or "escalated"
    positions = [*names_of(state["stances"]), INCONCLUSIVE]
    raw = interrupt(
        {
            "kind": "debate_decision",
            "reason": reason,
            "question": state["question"],
            "positions": positions,
            "transcript": state.get("transcript", []),
            "draft_verdict": draft,
            "answer": json_schema(decision_answer({"positions": positions})),
        }
    )
    decision = decision_answer({"positions": positions}).model_validate(raw)
    agrees = decision.winner == draft["winner"]
    verdict = Verdict(
        decided_by="human",
        winner=decision.winner,
        confidence=decision.confidence,
        reasoning=decision.reasoning,
        decisive_for=draft["decisive_for"] if agrees else [],
        decisive_against=draft["decisive_against"] if agrees else [],
        tally={},
        note=f"{reason}; the judge's draft said {draft['winner']}",
    )
    return {"verdict": verdict}


# --- baselines and the result ------------------------------------------------------------


def model_calls(usage: list[CallUsage]) -> int:
    return sum(u["calls"] for u in usage)


def after_decision(state: DebateState) -> list[Send] | Literal["conclude"]:
    """With `compare`, fan out the baselines: one single-agent answer and a self-consistency
    vote with as many samples as the debate made model calls."""
    if not state.get("compare"):
        return "conclude"
    samples = max(1, model_calls(state.get("usage", [])))

    def task(method: Literal["single_agent", "self_consistency"], sample: int, of: int) -> Send:
        return Send(
            "run_baseline",
            BaselineTask(
                question=state["question"],
                stances=state["stances"],
                method=method,
                sample=sample,
                samples=of,
            ),
        )

    return [
        task("single_agent", 1, 1),
        *(task("self_consistency", k, samples) for k in range(1, samples + 1)),
    ]


def baseline_prompt(task: BaselineTask) -> str:
    if task["method"] == "self_consistency":
        return prompts.SOLO + prompts.sample_note(task["sample"], task["samples"])
    return prompts.SOLO


def failed_baseline(task: BaselineTask, error: str) -> dict[str, Any]:
    answer = BaselineAnswer(
        method=task["method"],
        sample=task["sample"],
        position=None,
        answer="",
        confidence=None,
        error=error,
    )
    return {
        "baselines": [answer],
        "failures": [AgentFailure(agent=task["method"], round=None, error=error)],
    }


async def run_baseline(task: BaselineTask, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    try:
        reply = await ask_structured(
            agent_context(runtime).model_for("baseline"),
            agent=task["method"],
            system=baseline_prompt(task),
            user=prompts.question_message(task["question"], task["stances"]),
            schema=with_positions(SoloAnswer, names_of(task["stances"]), position="one"),
        )
    except StructuredOutputError as error:
        return failed_baseline(task, str(error))
    answer = BaselineAnswer(
        method=task["method"],
        sample=task["sample"],
        position=reply.value.position,
        answer=reply.value.answer,
        confidence=reply.value.confidence,
        error=None,
    )
    return {"baselines": [answer], "usage": [reply.usage]}


def baseline_failed(task: BaselineTask, error: NodeError) -> Command[Any]:
    return Command(update=failed_baseline(task, describe_error(error.error)), goto="conclude")


def tokens(usage: list[CallUsage]) -> int:
    return sum(u["input_tokens"] + u["output_tokens"] for u in usage)


def compare_answers(state: DebateState) -> dict[str, Any]:
    """The debate's answer next to the baselines', with what each cost."""
    usage = state.get("usage", [])
    baselines = state.get("baselines", [])
    by_agent = {agent: [u for u in usage if u["agent"] == agent] for agent in BASELINE_AGENTS}
    debate_usage = [u for u in usage if u["agent"] not in BASELINE_AGENTS]
    single = next((b for b in baselines if b["method"] == "single_agent"), None)
    samples = [b for b in baselines if b["method"] == "self_consistency"]
    votes = Counter(b["position"] for b in samples if b["position"] is not None)
    answers = {
        "debate": state["verdict"]["winner"],
        "single_agent": single["position"] if single else None,
        "self_consistency": leader({p: float(n) for p, n in votes.items()}),
    }
    return {
        "debate": {
            "answer": answers["debate"],
            "confidence": state["verdict"]["confidence"],
            "calls": model_calls(debate_usage),
            "tokens": tokens(debate_usage),
        },
        "single_agent": {
            "answer": answers["single_agent"],
            "confidence": single["confidence"] if single else None,
            "calls": model_calls(by_agent["single_agent"]),
            "tokens": tokens(by_agent["single_agent"]),
        },
        "self_consistency": {
            "answer": answers["self_consistency"],
            "votes": dict(votes),
            "samples": len(samples),
            "calls": model_calls(by_agent["self_consistency"]),
            "tokens": tokens(by_agent["self_consistency"]),
        },
        "agree": len(set(answers.values())) == 1,
    }


def conclude(state: DebateState) -> dict[str, Any]:
    """Token and latency totals per agent and overall, and the baseline comparison."""
    update: dict[str, Any] = {"totals": usage_totals(state.get("usage", []))}
    if state.get("compare"):
        update["comparison"] = compare_answers(state)
    return update
