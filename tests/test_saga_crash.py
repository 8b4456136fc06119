"""Crash safety across processes: `mas run saga` is SIGKILLed at a named point (a step
boundary, or inside a step right after its effect committed), forward and during
compensation; `mas resume THREAD_ID` in a new process finishes it. The pause is a hook
the test installs in Python (tests/support/saga_pause.py), not part of the run's input.
The order tables must end exactly as after an uninterrupted run. Also: approvals
answered from another process. Scenarios of one kind run in parallel to keep the suite quick."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mas
from tests.support.factories import encode
from tests.support.processes import ROOT, json_tail, logged_calls, mas_cli, subprocess_env
from tests.support.scripts_saga import FLAG, order, saga_model, saga_rows, saga_script, snapshot

MODEL = "factory:tests.support.factories:scripted_from_env"
FAIL_SHIPPING = [{"step": "schedule_shipping"}]
FORWARD_POINTS = [
    f"{step}:{moment}"
    for step in ("risk_check", "reserve_inventory", "charge_payment", "schedule_shipping")
    for moment in ("start", "after_effect")
]
STEP_OF = {
    "cancel_shipment": "schedule_shipping",
    "refund_payment": "charge_payment",
    "release_reservation": "reserve_inventory",
}
COMPENSATION_POINTS = [
    "cancel_shipment:start",
    "refund_payment:start",
    "refund_payment:after_effect",
    "release_reservation:start",
    "release_reservation:after_effect",
]


@dataclass
class Scenario:
    point: str
    thread_id: str
    marker: Path
    call_log: Path
    env: dict[str, str]
    process: subprocess.Popen[str] | None = None


def saga_env(tmp_path: Path, name: str, risk: Any = None) -> tuple[dict[str, str], Path]:
    script = tmp_path / f"{name}.script.json"
    script.write_text(encode(saga_script(risk)))
    call_log = tmp_path / f"{name}.calls.log"
    env = subprocess_env(
        MAS_TEST_SCRIPT=str(script),
        MAS_TEST_CLASSIFY="tests.support.scripts_saga:saga_agent",
        MAS_TEST_CALL_LOG=str(call_log),
        MAS_POOL_SIZE="3",
        MAS_MODEL=MODEL,  # resumes re-make the model from the environment, not the thread
    )
    return env, call_log


def saga_input(**extra: Any) -> str:
    return json.dumps({"order": order(), "backoff_s": 0.0, **extra})


def start_paused(scenario: Scenario, data: str) -> subprocess.Popen[str]:
    """A saga run with the crash-test pause in its context, held at `scenario.point`."""
    env = {
        **scenario.env,
        "MAS_TEST_PAUSE_AT": scenario.point,
        "MAS_TEST_PAUSE_MARKER": str(scenario.marker),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.saga_pause", scenario.thread_id, data],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_args(thread_id: str, data: str) -> list[str]:
    return ["run", "saga", "--input", data, "--thread-id", thread_id, "--model", MODEL, "--json"]


def wait_for(scenario: Scenario, timeout_s: float = 90.0) -> None:
    assert scenario.process is not None
    deadline = time.monotonic() + timeout_s
    while not scenario.marker.exists():
        if scenario.process.poll() is not None:
            _, err = scenario.process.communicate()
            raise AssertionError(f"{scenario.point}: the run ended before pausing:\n{err}")
        assert time.monotonic() < deadline, f"{scenario.point}: never reached"
        time.sleep(0.02)


def resume_process(scenario: Scenario) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mas", "resume", scenario.thread_id, "--json"],
        cwd=ROOT,
        env=scenario.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def crash_and_resume(tmp_path: Path, points: list[str], **extra: Any) -> None:
    reference_id = f"reference-{uuid.uuid4().hex[:8]}"
    reference = await mas.arun(
        "saga", json.loads(saga_input(**extra)), thread_id=reference_id, model=saga_model()
    )
    expected = snapshot(await saga_rows(reference_id), reference_id)

    scenarios = []
    for index, point in enumerate(points):
        env, call_log = saga_env(tmp_path, f"s{index}")
        thread_id = f"crash-{index}-{uuid.uuid4().hex[:8]}"
        marker = tmp_path / f"s{index}.paused"
        scenarios.append(Scenario(point, thread_id, marker, call_log, env))
        scenarios[-1].process = start_paused(scenarios[-1], saga_input(**extra))
    for scenario in scenarios:
        wait_for(scenario)
        assert scenario.process is not None
        scenario.process.send_signal(signal.SIGKILL)
        scenario.process.wait()

    resumes = [resume_process(s) for s in scenarios]
    for scenario, process in zip(scenarios, resumes, strict=True):
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, f"{scenario.point}: resume failed:\n{err}"
        final = json_tail(out)["values"]
        point = scenario.point
        assert final["status"] == reference["status"], point
        steps = [(e["node"], e["event"]) for e in final["step_log"]]
        assert steps == [(e["node"], e["event"]) for e in reference["step_log"]], point
        tables = snapshot(await saga_rows(scenario.thread_id), scenario.thread_id)
        assert tables == expected, f"{point}: the tables differ from an uninterrupted run"
        node, moment = point.split(":")
        if moment == "after_effect":
            # The killed attempt's effect was committed: the re-run found it by its key.
            done = final["effects"].get(node) or final["compensations"][STEP_OF[node]]
            assert done["replayed"] is True, point
        # The risk decision is recorded once and reused: the model is never asked twice.
        assert logged_calls(scenario.call_log) == ["risk_checker"], point


async def test_kill_at_every_forward_point_then_resume_matches_an_uninterrupted_run(
    tmp_path: Path,
) -> None:
    await crash_and_resume(tmp_path, FORWARD_POINTS)


async def test_kill_during_compensation_then_resume_matches_an_uninterrupted_run(
    tmp_path: Path,
) -> None:
    await crash_and_resume(tmp_path, COMPENSATION_POINTS, faults=FAIL_SHIPPING)


def test_approval_is_answered_from_another_process(tmp_path: Path) -> None:
    env, _ = saga_env(tmp_path, "approve", risk=FLAG)
    approve_id, reject_id = (f"approval-{uuid.uuid4().hex[:8]}" for _ in range(2))
    for thread_id in (approve_id, reject_id):
        paused = mas_cli(*run_args(thread_id, saga_input()), env=env)
        assert paused.returncode == 0, paused.stderr
        waiting = json_tail(paused.stdout)
        assert waiting["status"] == "interrupted"
        assert waiting["interrupts"][0]["step"] == "charge_payment"

    bad = mas_cli("resume", approve_id, "--answer", '{"approve": "maybe"}', env=env)
    assert bad.returncode == 1 and "answer.approve" in bad.stderr

    approved = mas_cli("resume", approve_id, "--answer", '{"approve": true}', "--json", env=env)
    assert approved.returncode == 0, approved.stderr
    assert json_tail(approved.stdout)["values"]["status"] == "completed"

    rejected = mas_cli(
        "resume", reject_id, "--answer", '{"approve": false, "note": "stolen card"}', env=env
    )
    assert rejected.returncode == 0, rejected.stderr
    assert "compensated" in rejected.stdout and "stolen card" in rejected.stdout
    assert "release_reservation" in rejected.stdout
