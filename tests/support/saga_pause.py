"""`python -m tests.support.saga_pause THREAD_ID INPUT_JSON`: a saga run whose context
carries a crash-test pause (a run's input cannot ask for one), on the default model
(MAS_MODEL).

MAS_TEST_PAUSE_AT names the point, `<node>:start` (nothing of the step has happened) or
`<node>:after_effect` (its effect row is committed, its result not yet checkpointed);
the first process to get there creates the file MAS_TEST_PAUSE_MARKER and sleeps, so the
test can SIGKILL it exactly there. A resumed run finds the file and goes straight on.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from mas.runner import Runner
from mas_graphs.nodes.context import AgentContext
from mas_graphs.nodes.orders import Moment
from mas_graphs.nodes.saga import EffectCall

PAUSE_S = 120.0


async def pause_once(call: EffectCall, moment: Moment) -> None:
    if os.environ.get("MAS_TEST_PAUSE_AT") != f"{call.node}:{moment}":
        return
    marker = Path(os.environ["MAS_TEST_PAUSE_MARKER"])
    if await asyncio.to_thread(marker.exists):
        return
    await asyncio.to_thread(marker.write_text, call.thread_id)
    await asyncio.sleep(PAUSE_S)


async def main(thread_id: str, data: str) -> None:
    async with Runner(context=AgentContext(effect_hooks=(pause_once,))) as runner:
        await runner.run(
            "saga", json.loads(data), thread_id=thread_id, model=os.environ["MAS_MODEL"]
        )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
