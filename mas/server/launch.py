"""`mas serve`: every pattern behind an open Agent Protocol server, Aegra, on the
project's PostgreSQL.

Aegra (Apache-2.0) speaks the API the LangGraph SDK and Studio use, keeps threads,
runs and checkpoints in PostgreSQL (the embedded server by default, `DATABASE_URL`
otherwise: one database with this project's own tables), and loads the graphs from
`mas/server/graphs.py`. With Redis (`REDIS_URL`), any number of its processes, on any
number of machines, share the runs: each run is leased by one worker and kept alive by
heartbeats; a run whose worker died is leased again and resumes from its last
checkpoint. No queue of ours.

Aegra needs Python >= 3.12 and this project runs on 3.11+, so the server runs in an
environment of its own: this interpreter if it is 3.12+ and has Aegra; else
`MAS_SERVER_PYTHON`; else one `mas serve` creates once under the data directory, from a
Python >= 3.12 it finds (on PATH, or in pyenv's versions), with this package and its
`server` extra installed.
"""

from __future__ import annotations

import glob
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import mas
from mas.errors import MasError
from mas.patterns import known_patterns
from mas.settings import Settings

ROOT = Path(mas.__file__).resolve().parent.parent
AEGRA_PYTHON = (3, 12)


class ServeError(MasError):
    """The server cannot start as asked; the message says why and what to do."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


CONSOLE_PATH = "/ui"  # where `mas serve` mounts the run console


def check_exposure(host: str, settings: Settings) -> None:
    """Refuse to listen beyond this machine without API keys: anyone could run graphs."""
    if not is_loopback(host) and not settings.api_keys:
        raise ServeError(
            f"refusing to serve on {host} without API keys: set MAS_API_KEYS "
            '(e.g. \'{"alice": "<a long random key>"}\'), or serve on 127.0.0.1'
        )


def aegra_config(directory: Path, *, with_auth: bool) -> Path:
    """The Aegra config: this project's graph factories, and its auth when keys are set."""
    graphs = ROOT / "mas" / "server" / "graphs.py"
    config: dict[str, object] = {
        "dependencies": [str(ROOT)],
        "graphs": {name: f"{graphs}:{name}" for name in known_patterns()},
    }
    if with_auth:
        config["auth"] = {"path": f"{ROOT / 'mas' / 'server' / 'auth.py'}:auth"}
    # the run console, at /ui, behind the same keys (it checks them itself: a browser
    # logs in once rather than sending a header)
    config["http"] = {"app": f"{ROOT / 'mas' / 'server' / 'console.py'}:app"}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "aegra.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def server_environment(
    settings: Settings, *, dsn: str, host: str, port: int, config: Path
) -> dict[str, str]:
    """Aegra's settings from ours; every MAS_* setting passes through to the graphs."""
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "AEGRA_CONFIG": str(config),
        "HOST": host,
        "PORT": str(port),
        "RUN_MIGRATIONS_ON_STARTUP": "true",
        "LOG_VERBOSITY": "standard",
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    }
    if settings.redis_url:
        env |= {"REDIS_BROKER_ENABLED": "true", "REDIS_URL": settings.redis_url}
    return env


def runnable_python(path: str | Path) -> bool:
    """Whether `path` runs a Python new enough for Aegra (a pyenv shim may not)."""
    probe = "import sys; sys.exit(sys.version_info < (3, 12))"
    try:
        return (
            subprocess.run([str(path), "-c", probe], capture_output=True, timeout=30).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_python312() -> Path | None:
    """A Python >= 3.12 on this machine: on PATH, or one pyenv installed."""
    candidates = [shutil.which(name) for name in ("python3.14", "python3.13", "python3.12")]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(str(pyenv / "versions" / "3.1[2-9]*" / "bin" / "python3")))
    for candidate in candidates:
        if candidate and runnable_python(candidate):
            return Path(candidate)
    return None


def has_aegra(python: Path) -> bool:
    probe = "import aegra_api, mas.server.graphs"
    return subprocess.run([str(python), "-c", probe], capture_output=True).returncode == 0


def server_python(settings: Settings, say: Callable[[str], None]) -> Path:
    """A Python that runs Aegra with this project's graphs, created the first time."""
    if sys.version_info >= AEGRA_PYTHON and has_aegra(Path(sys.executable)):
        return Path(sys.executable)
    if settings.server_python is not None:
        if not has_aegra(settings.server_python):
            raise ServeError(
                f"MAS_SERVER_PYTHON={settings.server_python} cannot import aegra_api and mas: "
                f"install them there with `pip install -e '{ROOT}[server]'`"
            )
        return settings.server_python
    venv = settings.data_dir / "server-env"
    python = venv / "bin" / "python"
    if python.exists() and has_aegra(python):
        return python
    base = find_python312()
    if base is None:
        raise ServeError(
            "the Aegra server needs Python >= 3.12 and none was found: install python3.12 "
            "(or 3.13), or point MAS_SERVER_PYTHON at one with this project's `server` "
            "extra installed"
        )
    if not (ROOT / "pyproject.toml").exists():
        raise ServeError(
            f"create a Python >= 3.12 environment with `pip install 'mas-graphs[server]'` and "
            f"set MAS_SERVER_PYTHON to its python (found {base})"
        )
    say(f"creating the server environment in {venv} with {base} (once)")
    subprocess.run([str(base), "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[server]"], check=True
    )
    return python


def run_server(python: Path, env: dict[str, str], *, workers: int) -> int:
    """Run Aegra in the foreground until it exits; Ctrl-C and SIGTERM stop it cleanly."""
    command = [
        str(python), "-m", "uvicorn", "aegra_api.main:app",
        "--host", env["HOST"], "--port", env["PORT"], "--workers", str(workers),
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env)

    def forward(signum: int, frame: FrameType | None) -> None:
        process.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    return process.wait()
