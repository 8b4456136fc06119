"""`python -m tests.support.saga_pause <mas arguments>`: the `mas` CLI with a crash-test pause
installed in Python (a run's input cannot ask for one).

MAS_TEST_PAUSE_AT names the point, `<node>:start` (nothing of the step has happened) or
`<node>:after_effect` (its effect row is committed, its result not yet checkpointed);
the first process to get there creates the file MAS_TEST_PAUSE_MARKER and sleeps, so the
test can SIGKILL it exactly there. A resumed run finds the file and goes straight on.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from mas_graphs.nodes.orders import Moment, effect_hooks
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


if __name__ == "__main__":
    from mas.cli import app

    effect_hooks.append(pause_once)
    app(prog_name="mas")
