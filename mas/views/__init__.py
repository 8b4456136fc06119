"""Per-pattern views for the CLI. mas/views/<pattern>.py defines `render(console, values)`
for the final result and may define `progress(title)`, returning a live view: an object
with `on_event(RunEvent)` and `__rich__()`. Without them: JSON, and the node table.
"""

from __future__ import annotations

import importlib
from typing import Any

from rich.console import Console


def _view(pattern: str | None) -> Any:
    if not pattern:
        return None
    try:
        return importlib.import_module(f"mas.views.{pattern}")
    except ModuleNotFoundError:
        return None


def progress_view(pattern: str | None, title: str) -> Any:
    """The pattern's own live progress view, if it has one."""
    make = getattr(_view(pattern), "progress", None)
    return make(title) if make is not None else None


def render_result(console: Console, pattern: str, values: dict[str, Any]) -> None:
    view = _view(pattern)
    if view is None:
        console.print_json(data=values, default=str)
        return
    view.render(console, values)
