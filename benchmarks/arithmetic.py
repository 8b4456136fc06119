"""Answer quality with known answers: a single agent, a self-consistency vote and a
debate, at equal model calls, on arithmetic (the format of Du et al. 2023, "Improving
Factuality and Reasoning in Language Models through Multiagent Debate").

    python -m benchmarks.arithmetic [--model llamacpp] [--questions 20] [--seed 0]

Each question is `a+b*c+d-e*f` with two-digit numbers, generated from the seed. Each
runs once as a debate of kind `answer` (3 solvers, 2 rounds, majority vote) with
`compare: true`, which also asks a single agent once and takes a self-consistency vote
over as many samples as the debate made calls (at temperature 0.8, one seed each).
Reported per method: accuracy with a 95 % Wilson interval, calls, tokens and model time.
Run it on `ollama:<model>` for numbers that say something about a real model.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
from dataclasses import dataclass, field

import mas
from benchmarks.common import benchmark_dsn, console, machine, print_table, uptime
from mas_graphs.state.debate import normalize_answer

METHODS = ("single_agent", "self_consistency", "debate")


def question(rng: random.Random) -> tuple[str, int]:
    a, b, c, d, e, f = (rng.randint(10, 99) for _ in range(6))
    expression = f"{a}+{b}*{c}+{d}-{e}*{f}"
    return expression, a + b * c + d - e * f


def wilson(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion."""
    if total == 0:
        return 0.0, 0.0
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Tally:
    right: int = 0
    calls: int = 0
    tokens: int = 0
    seconds: float = 0.0
    answers: list[str] = field(default_factory=list)


async def main(model: str, count: int, seed: int) -> None:
    benchmark_dsn()
    rng = random.Random(seed)
    tallies = {method: Tally() for method in METHODS}
    async with mas.Runner() as runner:
        for index in range(count):
            expression, expected = question(rng)
            data = {
                "question": f"What is {expression}? Answer with the number only.",
                "kind": "answer",
                "rounds": 2,
                "early_stop": False,
                "compare": True,
                "seed": seed * 1_000 + index,
            }
            result = await runner.run("debate", data, model=model)
            comparison = result["comparison"]
            latency = {m: 0.0 for m in METHODS}
            for usage in result["usage"]:
                agent = usage["agent"] if usage["agent"] in METHODS else "debate"
                latency[agent] += usage["latency_ms"] / 1000
            for method in METHODS:
                answer = comparison[method]["answer"]
                tally = tallies[method]
                tally.right += answer == normalize_answer(str(expected))
                tally.calls += comparison[method]["calls"]
                tally.tokens += comparison[method]["tokens"]
                tally.seconds += latency[method]
                tally.answers.append(str(answer))
            console.print(
                f"[dim]{index + 1}/{count} {expression} = {expected}: "
                + ", ".join(f"{m} {tallies[m].answers[-1]}" for m in METHODS)
                + "[/dim]"
            )
    rows = []
    for method in METHODS:
        tally = tallies[method]
        low, high = wilson(tally.right, count)
        rows.append(
            [
                method,
                f"{tally.right}/{count} ({tally.right / count:.0%})",
                f"{low:.0%} - {high:.0%}",
                f"{tally.calls / count:.1f}",
                f"{tally.tokens / count:.0f}",
                f"{tally.seconds / count:.1f}",
            ]
        )
    print_table(
        f"arithmetic, {count} questions (seed {seed}), model {model} ({machine()}, {uptime()})",
        ["method", "accuracy", "95 % interval", "calls/question", "tokens/question", "call s/q"],
        rows,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="llamacpp")
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(main(args.model, args.questions, args.seed))
