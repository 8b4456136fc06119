"""The embedded PostgreSQL default: a `pgserver` instance started on first use.

pgserver ships PostgreSQL 16 in a wheel, so a fresh machine needs nothing but
pip. The data directory persists between runs; the server stops when the last
process using it exits (pgserver reference-counts its users across processes).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Literal

# pgserver resolves a runtime dir at import; without XDG_RUNTIME_DIR (root, CI)
# platformdirs warns, though the /tmp fallback it uses works.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
import pgserver.postgres_server  # noqa: E402

# pgserver logs every start/stop at INFO; that is noise in a CLI.
logging.getLogger("pgserver").setLevel(logging.WARNING)

CleanupMode = Literal["stop", "delete"] | None


def embedded_dsn(data_dir: Path, *, cleanup_mode: CleanupMode = "stop") -> str:
    """Start (or join) the embedded server whose data lives in `data_dir` and return its DSN."""
    pgdata = data_dir / "pgdata"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.postgres_server.get_server(pgdata, cleanup_mode=cleanup_mode)
    return str(server.get_uri())
