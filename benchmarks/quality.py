"""Output quality per pattern on a fixed task set, for any model spec.

    python -m benchmarks.quality [--model llamacpp] [--tasks 20] [--patterns supervisor,debate]

Over the tasks written down below (20 per pattern), it reports how often an agent's
output copied a placeholder or schema words, how many agents failed (a failed worker,
turn, judge, labeler or risk check, a planner that fell back), how often a debater
argued off its side, how often the answer shares no content word with the task, and
the wall time per run. The checks are benchmarks/quality_checks.py, the same ones the
end-to-end tests require on the README inputs. Targets: 0 placeholders, <= 5 % failed
agents.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import mas
from benchmarks.common import benchmark_dsn, console, machine, print_table, uptime
from benchmarks.quality_checks import Quality, check

SUPERVISOR_TASKS = (
    "Should a five-person team build its own job queue or use PostgreSQL SKIP LOCKED?",
    "Should a startup write its backend in Rust or Go?",
    "Is it worth adding a cache in front of a slow reporting database?",
    "Should a small team run Kubernetes or a few virtual machines?",
    "Should we move our nightly batch jobs to an event-driven design?",
    "Is a monorepo a good idea for a team of eight developers?",
    "Should a mobile app store user data offline first?",
    "Should an internal tool use server-rendered pages or a single-page app?",
    "Is it time to split our monolith's billing code into a service?",
    "Should a data team adopt a lakehouse or keep its warehouse?",
    "Should we buy an observability platform or build on open source?",
    "Is GraphQL a better fit than REST for our public API?",
    "Should a three-person team write end-to-end tests or more unit tests?",
    "Should we rewrite a legacy Perl system or wrap it with an API?",
    "Is feature flagging worth its cost for a team that deploys weekly?",
    "Should our search use PostgreSQL full-text search or Elasticsearch?",
    "Should a small company self-host its email?",
    "Is pair programming worth it for onboarding new hires?",
    "Should we adopt a four-day work week for the engineering team?",
    "Should a game studio use an off-the-shelf engine or its own?",
)
DEBATE_QUESTIONS = (
    "Should small teams adopt microservices?",
    "Is remote work better than office work for software teams?",
    "Should schools ban phones in class?",
    "Should code review be required for every change?",
    "Is open-plan office space good for productivity?",
    "Should cities make public transport free?",
    "Should companies publish their salary ranges?",
    "Is a computer science degree necessary to become a good programmer?",
    "Should meetings be limited to thirty minutes?",
    "Should developers be on call for the services they write?",
    "Is static typing worth the extra effort?",
    "Should social media platforms verify users' identities?",
    "Should a startup hire generalists before specialists?",
    "Is it better to rent than to buy a home in a big city?",
    "Should homework be abolished in primary schools?",
    "Should self-driving cars be allowed on public roads today?",
    "Is nuclear power a good way to cut carbon emissions?",
    "Should teams estimate work in story points?",
    "Should governments fund space exploration?",
    "Is learning Latin useful for students today?",
)
ORDERS = tuple(
    {
        "order_id": f"Q-{index:04d}",
        "customer": customer,
        "sku": sku,
        "quantity": quantity,
        "unit_price_cents": price,
        "address": address,
        "notes": notes,
    }
    for index, (customer, sku, quantity, price, address, notes) in enumerate(
        (
            ("Ada Lovelace", "BOOK-42", 2, 1_999, "12 Analytical Row, London", ""),
            ("Grace Hopper", "KB-1", 1, 4_999, "1 Navy Yard, Arlington", "gift wrap please"),
            ("Alan Turing", "MUG-7", 4, 899, "9 Bletchley Lane, Milton Keynes", ""),
            ("Katherine Johnson", "LAMP-3", 1, 3_500, "44 Orbit Ave, Hampton", ""),
            ("Edsger Dijkstra", "PEN-2", 10, 250, "3 Shortest Path, Nuenen", ""),
            ("Barbara Liskov", "DESK-9", 1, 29_900, "77 Substitution St, Boston", ""),
            ("Ken Thompson", "CABLE-1", 3, 1_200, "5 Unix Way, Murray Hill", "leave at door"),
            ("Frances Allen", "CHAIR-4", 2, 15_000, "8 Compiler Ct, Yorktown", ""),
            ("Donald Knuth", "BOOK-1", 1, 19_900, "1 Art Ln, Stanford", "signed copy if possible"),
            ("Radia Perlman", "SWITCH-8", 1, 8_900, "2 Spanning Tree Rd, Boston", ""),
            ("Unknown", "PHONE-X", 250, 99_900, "PO Box 1, Nowhere", "ship fast, pay later"),
            ("J. Doe", "GIFTCARD-500", 40, 50_000, "Hotel lobby, any city", "urgent, new card"),
            ("Test User", "TV-85", 30, 249_900, "Warehouse 9, freight dock", "reseller, no ID"),
            ("Anon", "LAPTOP-PRO", 25, 299_900, "Forwarding service, Box 77", "different billing"),
            ("M. Mallory", "WATCH-GOLD", 15, 450_000, "Airport hotel room 12", "cash out quick"),
            ("Linus T.", "SSD-2TB", 2, 12_900, "4 Kernel Rd, Portland", ""),
            ("Margaret Hamilton", "DOCK-1", 1, 7_900, "11 Apollo Dr, Boston", ""),
            ("Tim B-L", "ROUTER-2", 1, 9_900, "6 Web Way, Geneva", ""),
            ("Sophie Wilson", "CHIP-ARM", 5, 1_500, "3 Acorn St, Cambridge", ""),
            ("Guido vR", "SNAKE-PLUSH", 1, 1_999, "8 Python Pl, Amsterdam", "for my nephew"),
        )
    )
)
# Orders 10 to 14 look like fraud (a risk checker should flag them); the rest are ordinary.
SUSPICIOUS = {order["order_id"] for order in ORDERS[10:15]}


def tasks(pattern: str, count: int) -> list[dict[str, Any]]:
    if pattern == "supervisor":
        return [{"task": t} for t in SUPERVISOR_TASKS[:count]]
    if pattern == "debate":
        return [{"question": q, "rounds": 2} for q in DEBATE_QUESTIONS[:count]]
    if pattern == "saga":
        return [{"order": o} for o in ORDERS[:count]]
    # label skill: tiny scenarios, so a run is a few dozen model calls; seeds vary the items
    return [
        {
            "skill": "label",
            "base_size": 2,
            "seed": seed,
            "scenarios": [
                {"name": "simple"},
                {"name": "medium", "scale": 2, "batch_size": 2},
                {"name": "complex", "scale": 3, "batch_size": 3},
            ],
        }
        for seed in range(count)
    ]


async def run_one(
    runner: mas.Runner, pattern: str, data: dict[str, Any], model: str
) -> tuple[Quality, float, dict[str, Any]]:
    started = time.perf_counter()
    result = await runner.run(pattern, data, model=model)
    if pattern == "saga" and result.status == "interrupted":  # flagged: a person approves
        result = await runner.resume(result.thread_id, answer={"approve": True}, model=model)
    return check(pattern, data, dict(result)), time.perf_counter() - started, dict(result)


def percent(part: int, whole: int) -> str:
    return f"{part} / {whole} ({100 * part / whole:.1f} %)" if whole else "-"


async def main(model: str, count: int, patterns: list[str]) -> None:
    benchmark_dsn()
    rows = []
    notes: list[str] = []
    async with mas.Runner() as runner:
        for pattern in patterns:
            checks: list[Quality] = []
            walls: list[float] = []
            flags = {True: 0, False: 0}  # suspicious order? -> flagged
            for data in tasks(pattern, count):
                quality, wall, values = await run_one(runner, pattern, data, model)
                checks.append(quality)
                walls.append(wall)
                if pattern == "saga":
                    decision = values["effects"]["risk_check"]["detail"]["decision"]
                    flags[data["order"]["order_id"] in SUSPICIOUS] += decision == "flag"
                for problem in (
                    quality.placeholder_fields
                    + quality.failed_agents
                    + [f"off its side: {turn}" for turn in quality.off_side]
                ):
                    console.print(f"[dim]{pattern}: {problem}[/dim]")
            fields = sum(q.fields for q in checks)
            agents = sum(q.agents for q in checks)
            if pattern == "saga":
                suspicious = sum(o["order_id"] in SUSPICIOUS for o in ORDERS[: len(checks)])
                notes.append(
                    f"saga risk checks flagged {flags[True]} of {suspicious} suspicious orders "
                    f"and {flags[False]} of {len(checks) - suspicious} ordinary ones"
                )
            rows.append(
                [
                    pattern,
                    str(len(checks)),
                    percent(sum(len(q.placeholder_fields) for q in checks), fields),
                    percent(sum(len(q.failed_agents) for q in checks), agents),
                    percent(sum(q.planner_fallback for q in checks), len(checks))
                    if pattern == "supervisor"
                    else "-",
                    percent(sum(len(q.off_side) for q in checks), sum(q.turns for q in checks))
                    if pattern == "debate"
                    else "-",
                    percent(sum(not q.shares_task_words for q in checks), len(checks))
                    if pattern in ("supervisor", "debate")
                    else "-",
                    f"{statistics.median(walls):.1f}",
                ]
            )
    print_table(
        f"output quality, model {model} ({machine()}, {uptime()})",
        [
            "pattern",
            "runs",
            "placeholder or schema copies (fields)",
            "failed agents",
            "planner fallbacks",
            "debater turns off side",
            "answers off the task",
            "median s/run",
        ],
        rows,
    )
    for note in notes:
        console.print(note)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="llamacpp")
    parser.add_argument("--tasks", type=int, default=20, help="tasks per pattern (at most 20)")
    parser.add_argument("--patterns", default="supervisor,debate,scenarios,saga")
    args = parser.parse_args()
    asyncio.run(main(args.model, min(args.tasks, 20), args.patterns.split(",")))
