"""The run console: every run in a browser (`mas ui`), read from the project's
PostgreSQL: threads, each run's graph, checkpoints and pattern view, the people's
inbox, and a checkpoint's state. Server-rendered pages, no front-end build, no network
at run time."""

from mas.console.app import console_app

__all__ = ["console_app"]
