"""The run console in a real browser: Debian's headless Chromium (installed by the tests
on a fresh machine, see tests/support/browser.py) against `mas ui` in its own process,
on runs other processes make. A run is watched to its end without a reload, a debate's
decision is answered through the form, and a fork is made from a checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.support.factories import encode
from tests.support.processes import ROOT, json_tail, mas_cli, subprocess_env
from tests.support.scripts_debate import debate_script
from tests.support.scripts_mixed import CLASSIFY
from tests.support.scripts_supervisor import TEAM, supervisor_script
from tests.support.servers import Process, free_port, start_mas_ui

SCRIPTED = "factory:tests.support.factories:scripted_from_env"
TASK = "Should the team move its job queue to PostgreSQL?"
WAIT_S = 60
REASON = "running Kafka costs more than it saves"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, pg_dsn: str) -> dict[str, str]:
    script = tmp_path_factory.mktemp("console") / "script.json"
    script.write_text(encode({**supervisor_script(), **debate_script()}))
    return subprocess_env(
        MAS_TEST_SCRIPT=str(script),
        MAS_TEST_CLASSIFY=CLASSIFY,
        MAS_MODEL=SCRIPTED,
        DATABASE_URL=pg_dsn,
    )


@pytest.fixture(scope="module")
def console(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    log = tmp_path_factory.mktemp("console-log") / "ui.log"
    server = start_mas_ui(env, free_port(), log)
    yield server
    server.stop()


def wait_for(browser: Chrome, css: str, text: str) -> None:
    try:
        WebDriverWait(browser, WAIT_S).until(
            lambda d: any(text in e.text for e in d.find_elements(By.CSS_SELECTOR, css))
        )
    except TimeoutException:
        body = browser.find_element(By.TAG_NAME, "body").text[:3_000]
        raise AssertionError(
            f"no {css} saying {text!r} at {browser.current_url}:\n{body}"
        ) from None


def test_a_run_in_another_process_is_watched_live_to_its_end(
    env: dict[str, str], console: Process, browser: Chrome, thread_id: str, tmp_path: Path
) -> None:
    slow = {
        **env,
        "MAS_TEST_DELAYS": json.dumps({"researcher": 1.5, "analyst": 1.5, "critic": 1.5}),
    }
    given = json.dumps({"task": TASK, "workers": TEAM})
    run = subprocess.Popen(
        [sys.executable, "-m", "mas", "run", "supervisor", "--input", given,
         "--thread-id", thread_id],
        cwd=ROOT, env=slow, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + WAIT_S
        browser.get(f"{console.url}/threads/{thread_id}")
        while "Not found" in browser.page_source and time.monotonic() < deadline:
            time.sleep(0.2)
            browser.get(f"{console.url}/threads/{thread_id}")
        wait_for(browser, ".summary .status", "running")
        browser.execute_script("window.sameDocument = true")  # gone if the page reloads
        wait_for(browser, ".summary .status", "done")
        assert browser.execute_script("return window.sameDocument") is True
        done = browser.find_elements(By.CSS_SELECTOR, "svg.graph g.node.done")
        assert {"plan_work", "run_worker", "synthesize"} <= {
            node.get_attribute("data-node") for node in done
        }
        assert "Use PostgreSQL with SKIP LOCKED." in browser.page_source
        browser.save_screenshot(str(tmp_path / "supervisor.png"))
        assert (tmp_path / "supervisor.png").stat().st_size > 10_000
    finally:
        assert run.wait(timeout=WAIT_S) == 0, run.stderr.read() if run.stderr else ""

    browser.get(f"{console.url}/?q={thread_id}")
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-thread="{thread_id}"]')
    assert "done" in row.text and "this machine" in row.text


def answer(browser: Chrome, thread_id: str, *, confidence: str) -> None:
    """Fill in the debate decision's form and send it."""
    form = browser.find_element(By.CSS_SELECTOR, f'form[action="/threads/{thread_id}/answer"]')
    Select(form.find_element(By.NAME, "winner")).select_by_visible_text("negative")
    for name, value in (("confidence", confidence), ("reasoning", REASON)):
        field = form.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def test_a_debate_decision_is_answered_through_the_inbox_form(
    env: dict[str, str], console: Process, browser: Chrome, thread_id: str
) -> None:
    question = {"question": "Is PostgreSQL a good job queue?", "strategy": "human", "rounds": 1}
    paused = mas_cli("run", "debate", "--input", json.dumps(question), "--thread-id",
                     thread_id, "--json", env=env)  # fmt: skip
    assert json_tail(paused.stdout)["status"] == "interrupted", paused.stderr

    browser.get(f"{console.url}/inbox")
    answer(browser, thread_id, confidence="7")  # a confidence is at most 1
    wait_for(browser, ".problem", "invalid answer to debate_decision: answer.confidence")

    answer(browser, thread_id, confidence="0.7")
    WebDriverWait(browser, WAIT_S).until(lambda d: "problem" not in d.current_url)
    wait_for(browser, ".summary .status", "done")
    assert REASON in browser.page_source
    shown = json_tail(mas_cli("show", thread_id, "--json", env=env).stdout)
    assert shown["values"]["verdict"]["winner"] == "negative"
    assert shown["values"]["verdict"]["decided_by"] == "human"


def test_a_fork_is_made_from_a_checkpoint_with_an_edited_input(
    env: dict[str, str], console: Process, browser: Chrome, thread_id: str
) -> None:
    given = json.dumps({"task": TASK, "workers": TEAM})
    done = mas_cli("run", "supervisor", "--input", given, "--thread-id", thread_id, env=env)
    assert done.returncode == 0, done.stderr

    browser.get(f"{console.url}/threads/{thread_id}")
    links = browser.find_elements(By.CSS_SELECTOR, "table.timeline a")
    links[-3].click()  # the checkpoint after the plan: the workers are next
    form = browser.find_element(By.CSS_SELECTOR, "form.fork")
    Select(form.find_element(By.NAME, "field")).select_by_visible_text("task")
    form.find_element(By.NAME, "value").send_keys(json.dumps("Keep Redis for the queue?"))
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, WAIT_S).until(lambda d: f"/threads/{thread_id}-fork-" in d.current_url)
    wait_for(browser, ".summary .status", "done")
    assert f"forked from {thread_id}@" in browser.find_element(By.CSS_SELECTOR, ".summary").text
    fork_id = browser.current_url.rsplit("/", 1)[-1]
    shown = json_tail(mas_cli("show", fork_id, "--json", env=env).stdout)
    assert shown["values"]["task"] == "Keep Redis for the queue?"
    source = json_tail(mas_cli("show", thread_id, "--json", env=env).stdout)
    assert source["values"]["task"] == TASK
