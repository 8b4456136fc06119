"""The project's PostgreSQL, from the settings: `DATABASE_URL` when set, else the
embedded server (started on first use). The savers in `mas_graphs.checkpoints` take the
DSN this returns and read no settings themselves."""

from __future__ import annotations

from mas.settings import get_settings
from mas_graphs.checkpoints.embedded import embedded_dsn


def resolve_dsn(dsn: str | None = None) -> str:
    """The DSN to use: the argument, else `DATABASE_URL`, else the embedded server."""
    if dsn:
        return dsn
    settings = get_settings()
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return embedded_dsn(settings.data_dir)
