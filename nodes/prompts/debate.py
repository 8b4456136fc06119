"""The debate's agents' instructions: debaters, solvers, the confidence gate and the
judge."""

from __future__ import annotations

from typing import Any

from mas_graphs.nodes.prompts.common import DATA_RULE, named_list, quoted, section

DEBATER = (
    "You are a debater in a structured debate. The user message gives your side (its "
    "name and stance), the other sides, the question and the round. Argue for your side "
    "with concrete reasons; from round 2, rebut the other sides' arguments from the round "
    "before. Hold your side: concede only if the other side's arguments have really "
    f"convinced you. Give your confidence from 0 to 1 that your side is right. {DATA_RULE}"
)


SOLVER = (
    "You are one of several solvers working on the same question. The user message gives "
    "your approach, the question and the round; from round 2 it also gives the other "
    "solvers' answers and reasoning from the round before. Reason briefly, step by step, "
    "then give your final answer on its own. Check the others' work against yours and "
    "change your answer only if you find your own mistake. Give your confidence from 0 to 1 "
    f"that your answer is right. {DATA_RULE}"
)


SOLO = (
    "You answer a question on your own. The user message gives the question and the "
    "positions one can take (each a name and what it holds). Pick the position you think "
    "is right, by its name, answer in two to four sentences, and give your confidence "
    f"from 0 to 1 (1 = certain). {DATA_RULE}"
)


SOLO_SOLVER = (
    "You answer a question on your own. Reason briefly, step by step, then give your final "
    f"answer on its own, and your confidence from 0 to 1 (1 = certain). {DATA_RULE}"
)


FIRST_ANSWER = " This is the first answer, before any debate: be honest about your confidence."


GATE = SOLO + FIRST_ANSWER


GATE_SOLVER = SOLO_SOLVER + FIRST_ANSWER


JUDGE = (
    "You judge a debate. Decide which position the arguments support best, or "
    "'inconclusive' if none does. Give your confidence from 0 to 1, your reasoning, and "
    f"the decisive arguments for and against the winning position. {DATA_RULE}"
)


def sample_note(sample: int, samples: int) -> str:
    return f" This is independent sample {sample} of {samples}."


def positions_list(stances: list[dict[str, Any]]) -> str:
    return named_list((s["name"], s["stance"]) for s in stances)


def question_message(question: str, stances: list[dict[str, Any]]) -> str:
    return f"Question: {quoted(question)}\n\n{section('Positions', positions_list(stances))}"
