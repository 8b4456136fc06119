"""Debate nodes: the confidence gate, debaters' rounds, the round check, the judge's verdict,
vote counting, the human decision, and the single-agent / self-consistency baselines.

Every node is a small function of its input that returns a partial state update;
rounds, early stops and strategies are edges of the graph (see graphs/debate.py).

A debater never picks its position: in a debate of kind 'sides' it holds its own side
until it concedes (an explicit `conceded`, offered from round 2), and in a debate of
kind 'answer' its position is the answer it gives. So the round check is a pure
function of the turns, not another model call that could imagine a consensus.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from langgraph.config import get_config
from langgraph.errors import NodeError
from langgraph.runtime import Runtime
from langgraph.types import Command, Send
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

from mas_graphs.nodes import prompts
from mas_graphs.nodes.agents import AGENTS, agent_output, call_agent
from mas_graphs.nodes.context import AgentContext, agent_context
from mas_graphs.nodes.errors import describe_error, failed_usage
from mas_graphs.nodes.inputs import ask_person, input_fields, validated_input
from mas_graphs.nodes.limits import raise_if_run_stops
from mas_graphs.nodes.structured import (
    Sampling,
    StructuredOutputError,
    ask_agent,
    ask_structured,
    cut_at_word,
)
from mas_graphs.state.common import CallUsage, budget_of, usage_totals
from mas_graphs.state.debate import (
    INCONCLUSIVE,
    AgentFailure,
    BaselineAnswer,
    BaselineTask,
    DebateInput,
    DebaterTask,
    DebaterTurn,
    DebateState,
    FreeAnswer,
    GateRecord,
    JudgeVerdict,
    Kind,
    RebuttalTurn,
    RoundReview,
    SideAnswer,
    SolverTurn,
    Stop,
    Turn,
    Verdict,
    normalize_answer,
    with_positions,
)
from mas_graphs.state.supervisor import MAX_FINDINGS, Finding, WorkerReport

BASELINE_AGENTS = ("single_agent", "self_consistency")


def names_of(stances: list[dict[str, Any]]) -> list[str]:
    return [s["name"] for s in stances]


def transcript_text(turns: list[Turn]) -> str:
    lines = []
    for t in turns:
        if t["status"] == "failed":
            lines.append(f"[round {t['round']}] {t['speaker']}: (no argument: it failed)")
            continue
        held = f"answer {t['answer']}" if t["answer"] is not None else f"holds {t['position']}"
        rebuttals = "".join(f"\n    rebuts: {prompts.quoted(r)}" for r in t["rebuttals"])
        lines.append(
            f"[round {t['round']}] {t['speaker']} ({held}, confidence {t['confidence']}): "
            f"{prompts.quoted(t['argument'])}{rebuttals}"
        )
    return "\n".join(lines)


def sampling(temperatures: dict[str, float], role: str, seed: int) -> Sampling | None:
    """The role's own temperature (if the input sets one), with this call's seed."""
    temperature = temperatures.get(role)
    return None if temperature is None else Sampling(temperature=temperature, seed=seed)


def solo_schema(kind: Kind, stances: list[dict[str, Any]]) -> type[BaseModel]:
    if kind == "answer":
        return FreeAnswer
    schema: type[BaseModel] = with_positions(SideAnswer, names_of(stances), position="one")
    return schema


def solo_position(kind: Kind, value: Any) -> str:
    """What a solo answer votes for: a side's name, or the normalised answer."""
    return normalize_answer(value.answer) if kind == "answer" else str(value.position)


def solo_message(question: str, kind: Kind, stances: list[dict[str, Any]]) -> str:
    if kind == "answer":
        return f"Question: {prompts.quoted(question)}"
    return prompts.question_message(question, stances)


# --- input and confidence gate -------------------------------------------------------------


def check_debaters(data: DebateInput) -> None:
    """Weights and per-debater models must name debaters; weighted votes need weights."""
    names = {s.name for s in data.stances}
    for field in ("weights", "debater_models"):
        if unknown := sorted(set(getattr(data, field)) - names):
            known = ", ".join(sorted(names))
            raise ValueError(f"{field}: unknown debaters {', '.join(unknown)}; debaters: {known}")
    if data.strategy == "weighted" and not data.weights:
        raise ValueError("weights: strategy 'weighted' needs a weight per debater")
    for index, spec in enumerate(data.stances):
        if spec.agent is None:
            continue
        if spec.name in data.debater_models:
            raise ValueError(
                f"debater_models: {spec.name} is the registered agent {spec.agent}, "
                "which brings its own model"
            )
        if AGENTS.unknown([spec.agent]):
            known = ", ".join(AGENTS.names()) or "none"
            raise ValueError(
                f"stances.{index}.agent: unknown agent '{spec.agent}'; registered: {known}"
            )


def open_debate(state: DebateState) -> dict[str, Any]:
    """Validate the input and fill in its defaults: a graph a server runs gets its input
    straight from a client, and must refuse bad input as the runner does."""
    given = input_fields(DebateInput, state)
    return validated_input("debate", DebateInput, given, check_debaters).model_dump()


async def confidence_gate(state: DebateState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """One agent answers first; a confident enough answer makes the debate unnecessary."""
    threshold = state["gate_threshold"]
    if threshold is None:
        return {}
    kind = state["kind"]
    try:
        reply = await ask_agent(
            runtime,
            "gate",
            system=prompts.GATE if kind == "sides" else prompts.GATE_SOLVER,
            user=solo_message(state["question"], kind, state["stances"]),
            schema=solo_schema(kind, state["stances"]),
            sampling=sampling(state["temperatures"], "gate", state["seed"]),
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
            "usage": error.usage,
        }
    answer: Any = reply.value
    skip = answer.confidence >= threshold
    reason = (
        f"first answer's confidence {answer.confidence:.2f} "
        f"{'>=' if skip else '<'} gate_threshold {threshold:.2f}"
    )
    position = solo_position(kind, answer)
    gate = GateRecord(
        position=position,
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
            winner=position,
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
                kind=state["kind"],
                debater=debater,
                stances=state["stances"],
                round=number,
                rounds=state["rounds"],
                opponents=[t for t in previous if t["speaker"] != debater["name"]],
                own_previous=next((t for t in previous if t["speaker"] == debater["name"]), None),
                temperature=state["temperatures"].get("debater"),
                seed=state["seed"] + 100 * number + index,
                model=state["debater_models"].get(debater["name"]),
                token_budget=budget_of(state),
            ),
        )
        for index, debater in enumerate(state["stances"])
    ]


def round_message(task: DebaterTask) -> str:
    """What was said last round, the debater's own side (or approach), then the question
    and a short cue: all data (a stance is what the debater argues, not an instruction to
    it). Small models follow what they read last and copy what is in front of them, so
    the other sides are named but their stances not quoted, and the question comes last.
    Measured on the embedded model over 20 first turns: with the other side's stance
    shown, 9 argued the other side; in this order, none did, and none was off the topic
    or looped on a word (benchmarks/quality.py measures it over whole runs)."""
    own, number = task["debater"], task["round"]
    others = ", ".join(s["name"] for s in task["stances"] if s["name"] != own["name"])
    if task["kind"] == "sides":
        parts = [f"The other sides: {others}"]
        earlier = "The other sides' arguments"
        side, stance = prompts.quoted(own["name"]), prompts.quoted(own["stance"])
        mine = f"Your side: {side}\nYour stance: {stance}"
        cue = (
            "Write your argument, answering the other sides."
            if task["opponents"]
            else ("Write your argument.")
        )
    else:
        parts = [f"The other solvers: {others}"]
        earlier = "The other solvers' answers"
        mine = f"Your approach ({own['name']}): {prompts.quoted(own['stance'])}"
        cue = (
            "Check their work against yours, then write your reasoning and final answer."
            if (task["opponents"])
            else "Write your reasoning and final answer."
        )
    if task["opponents"]:
        parts.append(
            prompts.section(f"{earlier} in round {number - 1}", transcript_text(task["opponents"]))
        )
    if (previous := task["own_previous"]) is not None:
        answer = (
            f" (your answer: {prompts.quoted(previous['answer'])})" if previous["answer"] else ""
        )
        said = prompts.quoted(previous["argument"])
        parts.append(f"What you said in round {number - 1}{answer}: {said}")
    parts += [
        mine,
        f"Question: {prompts.quoted(task['question'])}",
        f"Round {number} of {task['rounds']}. {cue}",
    ]
    return "\n\n".join(parts)


def failed_turn(task: DebaterTask, error: str, usage: list[CallUsage]) -> dict[str, Any]:
    """A debater's failure, recorded in the transcript so the round is still complete."""
    name = task["debater"]["name"]
    turn = Turn(
        round=task["round"],
        speaker=name,
        stance=task["debater"]["stance"],
        status="failed",
        position=None,
        answer=None,
        argument="",
        rebuttals=[],
        confidence=None,
        conceded=False,
        error=error,
    )
    return {
        "transcript": [turn],
        "failures": [AgentFailure(agent=name, round=task["round"], error=error)],
        "usage": usage,
    }


def conceded_to(task: DebaterTask) -> str | None:
    """The side a conceding debater now holds: the most confident other side last round."""
    ranked = sorted(task["opponents"], key=lambda t: -(t["confidence"] or 0.0))
    return ranked[0]["position"] if ranked else None


def debater_schema(task: DebaterTask) -> type[BaseModel]:
    if task["kind"] == "answer":
        return SolverTurn
    return RebuttalTurn if task["round"] > 1 else DebaterTurn


def turn_of(task: DebaterTask, value: Any) -> Turn:
    debater = task["debater"]
    if task["kind"] == "answer":
        position, answer, conceded = normalize_answer(value.answer), value.answer, False
        argument, rebuttals = value.reasoning, []
    else:
        winner = conceded_to(task) if getattr(value, "conceded", False) else None
        position, answer, conceded = winner or debater["name"], None, winner is not None
        argument, rebuttals = value.argument, value.rebuttals
    return Turn(
        round=task["round"],
        speaker=debater["name"],
        stance=debater["stance"],
        status="ok",
        position=position,
        answer=answer,
        argument=argument,
        rebuttals=rebuttals,
        confidence=value.confidence,
        conceded=conceded,
        error=None,
    )


class DebaterRequest(TypedDict):
    """What a registered agent arguing a side is given: data, never instructions of ours.
    It answers with a turn (a dict of the turn's fields, fitted to their bounds) or text
    (for a side, the argument; for a solver, the answer)."""

    debater: str
    kind: Kind
    question: str
    stance: str
    round: int
    rounds: int
    others: list[dict[str, Any]]  # last round's turns of the other debaters
    own_previous: str  # its own argument (or answer) last round; "" in round 1


async def agent_turn(task: DebaterTask, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """A registered agent's turn; what it returned is read as a turn."""
    debater = task["debater"]
    own = task["own_previous"]
    request = DebaterRequest(
        debater=debater["name"],
        kind=task["kind"],
        question=task["question"],
        stance=debater["stance"],
        round=task["round"],
        rounds=task["rounds"],
        others=[
            {k: t[k] for k in ("speaker", "position", "argument", "answer")}
            for t in task["opponents"]
        ],
        own_previous=(own["answer"] or own["argument"]) if own else "",
    )
    output, usage = await call_agent(
        AGENTS.get(debater["agent"]),
        request,
        get_config(),
        f"{debater['name']} round {task['round']}",
    )
    usage = CallUsage(**{**usage, "agent": debater["name"]})
    turn = turn_of(task, agent_turn_value(output, debater_schema(task), usage["notes"]))
    return {"transcript": [turn], "usage": [usage]}


def agent_turn_value(output: Any, schema: type[BaseModel], notes: list[str]) -> Any:
    """A registered debater's answer as its turn; text becomes its argument (for a
    solver, its answer)."""

    def from_text(text: str) -> dict[str, Any]:
        if schema is SolverTurn:
            return {"reasoning": "", "answer": cut_at_word(text, 200)}
        return {"argument": cut_at_word(text, 1_200)}

    return agent_output(output, schema, notes, what="turn", from_text=from_text)


async def argue(task: DebaterTask, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    name = task["debater"]["name"]
    if task["debater"]["agent"]:
        update = await agent_turn(task, runtime)
    else:
        try:
            update = await model_turn(task, runtime)
        except StructuredOutputError as error:
            runtime.stream_writer({"node": "argue", "round": task["round"], "speaker": name})
            return failed_turn(task, str(error), error.usage)
    turn = update["transcript"][0]
    runtime.stream_writer(
        {
            "node": "argue",
            "round": task["round"],
            "speaker": name,
            "position": turn["position"],
            "confidence": turn["confidence"],
        }
    )
    return update


async def model_turn(task: DebaterTask, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    name, temperature = task["debater"]["name"], task["temperature"]
    reply = await ask_structured(
        await agent_context(runtime).chosen(f"debater:{name}", task["model"]),
        agent=name,
        system=prompts.DEBATER if task["kind"] == "sides" else prompts.SOLVER,
        user=round_message(task),
        schema=debater_schema(task),
        # Names the model call's span, so a trace shows each debater's rounds apart.
        config={"run_name": f"{name} round {task['round']}"},
        sampling=None if temperature is None else Sampling(temperature, task["seed"]),
    )
    return {"transcript": [turn_of(task, reply.value)], "usage": [reply.usage]}


def debater_failed(task: DebaterTask, error: NodeError) -> Command[Any]:
    """Retries are exhausted: record the failure; the other debaters' turns are kept."""
    raise_if_run_stops(error)
    update = failed_turn(task, describe_error(error.error), failed_usage(error.error))
    return Command(update=update, goto="review_round")


def review(state: DebateState, number: int) -> RoundReview:
    """Where round `number` left the debaters: all on one position, or who conceded."""
    turns = [t for t in state.get("transcript", []) if t["round"] == number and t["status"] == "ok"]
    positions = sorted({str(t["position"]) for t in turns})
    conceded = sorted(t["speaker"] for t in turns if t["conceded"])
    converged = len(turns) >= 2 and len(positions) == 1
    if converged:
        reason = f"all {len(turns)} debaters hold {positions[0]}"
    elif conceded:
        reason = "conceded: " + ", ".join(
            f"{t['speaker']} to {t['position']}" for t in turns if t["conceded"]
        )
    else:
        reason = "positions still differ: " + (", ".join(positions) or "no turn succeeded")
    return RoundReview(round=number, converged=converged, conceded=conceded, reason=reason)


def review_round(state: DebateState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Round barrier: every debater's turn is in. Ends the debate once the positions have
    converged or a debater conceded (with `early_stop`), else at the round limit."""
    number = state.get("round", 0) + 1
    record = review(state, number)
    update: dict[str, Any] = {"round": number, "reviews": [record]}
    early = state["early_stop"] and (record["converged"] or record["conceded"])
    if early:
        reason: Literal["converged", "conceded"] = (
            "converged" if record["converged"] else "conceded"
        )
        update["stopped"] = Stop(round=number, reason=reason, note=record["reason"])
    elif number >= state["rounds"]:
        note = f"all {number} rounds argued; {record['reason']}"
        update["stopped"] = Stop(round=number, reason="round_limit", note=note)
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
    floor = state["escalate_below"]
    if floor is not None and draft["confidence"] < floor:
        return f"judge confidence {draft['confidence']:.2f} is below escalate_below {floor:.2f}"
    return None


async def judge_verdict(state: DebateState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """The judge's structured verdict; it stands unless a person must decide."""
    names = names_of(state["stances"])
    update: dict[str, Any] = {}
    try:
        reply = await ask_structured(
            await agent_context(runtime).chosen("judge", state["judge_model"]),
            agent="judge",
            system=prompts.JUDGE,
            user=prompts.question_message(state["question"], state["stances"])
            + "\n\n"
            + prompts.section("Transcript", transcript_text(state.get("transcript", []))),
            schema=with_positions(JudgeVerdict, names, winner="verdict"),
            sampling=sampling(state["temperatures"], "judge", state["seed"]),
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
        update["usage"] = error.usage
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
    weights = state["weights"] if state["strategy"] == "weighted" else {}
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
    decision = ask_person(
        {
            "kind": "debate_decision",
            "reason": reason,
            "question": state["question"],
            "positions": positions,
            "transcript": state.get("transcript", []),
            "draft_verdict": draft,
        },
        decision_answer({"positions": positions}),
    )
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
    vote with as many samples as the debate made model calls, each sampled with its own
    seed (and, by default, temperature 0.8) so the samples can differ."""
    if not state["compare"]:
        return "conclude"
    samples = max(1, model_calls(state.get("usage", [])))

    def task(method: Literal["single_agent", "self_consistency"], sample: int, of: int) -> Send:
        return Send(
            "run_baseline",
            BaselineTask(
                question=state["question"],
                kind=state["kind"],
                stances=state["stances"],
                method=method,
                sample=sample,
                samples=of,
                temperature=state["temperatures"].get(method),
                seed=state["seed"] + sample,
                token_budget=budget_of(state),
            ),
        )

    return [
        task("single_agent", 1, 1),
        *(task("self_consistency", k, samples) for k in range(1, samples + 1)),
    ]


def baseline_prompt(task: BaselineTask) -> str:
    solo = prompts.SOLO if task["kind"] == "sides" else prompts.SOLO_SOLVER
    if task["method"] == "self_consistency":
        return solo + prompts.sample_note(task["sample"], task["samples"])
    return solo


def failed_baseline(task: BaselineTask, error: str, usage: list[CallUsage]) -> dict[str, Any]:
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
        "usage": usage,
    }


async def run_baseline(task: BaselineTask, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    temperature = task["temperature"]
    try:
        reply = await ask_structured(
            agent_context(runtime).model_for("baseline"),
            agent=task["method"],
            system=baseline_prompt(task),
            user=solo_message(task["question"], task["kind"], task["stances"]),
            schema=solo_schema(task["kind"], task["stances"]),
            sampling=None if temperature is None else Sampling(temperature, task["seed"]),
        )
    except StructuredOutputError as error:
        return failed_baseline(task, str(error), error.usage)
    value: Any = reply.value
    answer = BaselineAnswer(
        method=task["method"],
        sample=task["sample"],
        position=solo_position(task["kind"], value),
        answer=value.answer,
        confidence=value.confidence,
        error=None,
    )
    return {"baselines": [answer], "usage": [reply.usage]}


def baseline_failed(task: BaselineTask, error: NodeError) -> Command[Any]:
    raise_if_run_stops(error)
    update = failed_baseline(task, describe_error(error.error), failed_usage(error.error))
    return Command(update=update, goto="conclude")


def tokens(usage: list[CallUsage]) -> int:
    return sum(u["input_tokens"] + u["output_tokens"] for u in usage)


def compare_answers(state: DebateState) -> dict[str, Any]:
    """The debate's answer next to the baselines', with what each cost (failed calls
    included) and how many distinct answers the self-consistency vote saw."""
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
            "distinct_answers": len(votes),
            "distinct_texts": len({b["answer"] for b in samples if b["error"] is None}),
            "calls": model_calls(by_agent["self_consistency"]),
            "tokens": tokens(by_agent["self_consistency"]),
        },
        "agree": len(set(answers.values())) == 1,
    }


def conclude(state: DebateState) -> dict[str, Any]:
    """Token and latency totals per agent and overall, and the baseline comparison."""
    update: dict[str, Any] = {"totals": usage_totals(state.get("usage", []))}
    if state["compare"]:
        update["comparison"] = compare_answers(state)
    return update


def debate_report(values: dict[str, Any]) -> WorkerReport:
    """A nested debate's verdict, as its worker's report."""
    verdict = values.get("verdict") or {}
    winner = verdict.get("winner", "inconclusive")
    summary = (
        f"The debate's verdict ({verdict.get('decided_by', 'none')}): {winner}. "
        f"{verdict.get('reasoning', '')}"
    )
    findings = [
        Finding(topic=cut_at_word(f"for {winner}", 60), claim=cut_at_word(point, 200))
        for point in verdict.get("decisive_for", [])
    ]
    return WorkerReport(
        summary=cut_at_word(summary.strip(), 1_000),
        findings=findings[:MAX_FINDINGS],
        confidence=float(verdict.get("confidence", 0.0)),
    )


def debate_agents(values: dict[str, Any]) -> int:
    """A debate's agents: each debater, and a judge when one decides."""
    return len(values["stances"]) + (1 if values.get("strategy") == "judge" else 0)
