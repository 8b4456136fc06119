"""The run console inside `mas serve`, at /ui: Aegra loads this FastAPI app (its config's
`http.app`), adds its own routes to it, and runs the console's lifespan with its own.

Each user logs in with the key the server's API takes and sees only the server's
threads that are theirs; an answer goes through the server's API as that user. Runs
the server's workers execute show live, read from the same PostgreSQL.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from mas.console import console_app
from mas.console.access import Served
from mas.server.launch import CONSOLE_PATH
from mas.settings import get_settings

console = console_app(
    served=Served(
        # this server's own API, for answers: a worker takes the run like any other
        api_url=f"http://127.0.0.1:{os.environ.get('PORT', '2026')}",
        keys=get_settings().api_keys,
    )
)
app = FastAPI(lifespan=console.router.lifespan_context)
app.mount(CONSOLE_PATH, console)
