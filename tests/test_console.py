"""The run console over HTTP, on real PostgreSQL and runs the runner made: the threads
list and its filters, a run's page (graph, view, timeline), a checkpoint's state and a
diff, the inbox, and an answer given through the form (checked like `mas resume
--answer`). Real-browser tests are in tests/test_console_browser.py."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import mas
from mas.console import console_app
from mas.settings import get_settings
from tests.support.factories import encode
from tests.support.scripts_debate import debate_script
from tests.support.scripts_supervisor import TEAM, supervisor_script
from tests.support.teams import lead, member, teams_model

SCRIPTED = "factory:tests.support.factories:scripted_from_env"
TASK = "Should the team move its job queue to PostgreSQL?"
QUESTION = {"question": "Is PostgreSQL a good job queue?", "strategy": "human", "rounds": 1}


@pytest.fixture
def scripted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Runs (and the console's resumes) on the scripted model, by spec, as a user's would."""
    script = tmp_path / "script.json"
    script.write_text(encode({**supervisor_script(), **debate_script()}))
    monkeypatch.setenv("MAS_TEST_SCRIPT", str(script))
    monkeypatch.setenv("MAS_TEST_CLASSIFY", "tests.support.scripts_mixed:any_agent")
    monkeypatch.setenv("MAS_MODEL", SCRIPTED)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def client(pg_dsn: str) -> Iterator[TestClient]:
    with TestClient(console_app(pg_dsn)) as test_client:
        yield test_client


def supervisor_run(pg_dsn: str, thread_id: str, **fields: Any) -> mas.RunResult:
    given = {"task": TASK, "workers": TEAM, **fields}
    return mas.run("supervisor", given, thread_id=thread_id, model=SCRIPTED, dsn=pg_dsn)


def rows(html: str) -> list[str]:
    return re.findall(r'data-thread="([^"]+)"', html)


def test_the_threads_list_filters_by_status_pattern_and_text(
    scripted: None, client: TestClient, pg_dsn: str, thread_id: str
) -> None:
    supervisor_run(pg_dsn, thread_id)
    waiting = f"{thread_id}-q"
    mas.run("debate", QUESTION, thread_id=waiting, model=SCRIPTED, dsn=pg_dsn)

    page = client.get("/")
    assert page.status_code == 200
    assert {thread_id, waiting} <= set(rows(page.text))
    assert "waiting for a person" in page.text and "this machine" in page.text
    assert rows(client.get("/", params={"q": thread_id}).text) == [waiting, thread_id]
    done = rows(client.get("/", params={"status": "done", "q": thread_id}).text)
    assert done == [thread_id]
    debates = rows(client.get("/", params={"pattern": "debate", "q": thread_id}).text)
    assert debates == [waiting]
    # the live refresh gets only the rows
    fragment = client.get("/", params={"fragment": "1", "q": thread_id}).text
    assert fragment.startswith('<tbody id="live">') and "<html" not in fragment


def test_a_run_page_draws_the_graph_view_and_timeline_and_a_checkpoint_diffs(
    scripted: None, client: TestClient, pg_dsn: str, thread_id: str
) -> None:
    result = supervisor_run(pg_dsn, thread_id)
    page = client.get(f"/threads/{thread_id}")
    assert page.status_code == 200
    html = page.text
    assert "<svg" in html and 'data-node="plan_work"' in html
    done_nodes = set(re.findall(r'<g class="node done" data-node="([^"]+)"', html))
    assert {"plan_work", "run_worker", "synthesize"} <= done_nodes
    assert "Use PostgreSQL with SKIP LOCKED." in html  # the supervisor's own view
    tokens = sum(u["input_tokens"] + u["output_tokens"] for u in result["usage"])
    assert f"{tokens:,} tokens" in html
    checkpoints = re.findall(r'/checkpoints/([0-9a-f-]+)"', html)
    assert len(set(checkpoints)) >= 6
    newest, oldest = checkpoints[0], checkpoints[-2]  # the oldest has no input yet

    state = client.get(f"/threads/{thread_id}/checkpoints/{newest}")
    assert state.status_code == 200 and "SKIP LOCKED" in state.text
    changed = client.get(
        f"/threads/{thread_id}/checkpoints/{newest}", params={"against": oldest}
    ).text
    kinds = {key: kind for kind, key in re.findall(r'<tr class="(\w+)"><td>(\w+)</td>', changed)}
    assert kinds["synthesis"] == "added" and kinds["plan"] == "added"
    assert "task" not in kinds  # the input is the same in both
    unknown = client.get(f"/threads/{thread_id}/checkpoints/nope")
    assert unknown.status_code == 404 and "Not found" in unknown.text


def test_the_inbox_answers_through_the_form_checked_like_the_cli(
    scripted: None, client: TestClient, pg_dsn: str, thread_id: str
) -> None:
    paused = mas.run("debate", QUESTION, thread_id=thread_id, model=SCRIPTED, dsn=pg_dsn)
    assert paused.status == "interrupted"
    inbox = client.get("/inbox").text
    assert f"/threads/{thread_id}/answer" in inbox
    interrupt_id = re.search(
        rf'action="/threads/{thread_id}/answer">\s*<input type="hidden" name="interrupt_id" '
        r'value="([^"]+)"',
        inbox,
    )
    assert interrupt_id is not None
    # the form is built from the answer's schema: a list of the sides to pick from
    form = inbox[inbox.index(f"/threads/{thread_id}/answer") :]
    assert '<select name="winner">' in form

    wrong = client.post(
        f"/threads/{thread_id}/answer",
        data={"interrupt_id": interrupt_id.group(1), "winner": "nobody"},
        follow_redirects=False,
    )
    assert wrong.status_code == 303
    shown = client.get(wrong.headers["location"]).text
    assert "invalid answer to" in shown and "still waiting" in shown

    answered = client.post(
        f"/threads/{thread_id}/answer",
        data={
            "interrupt_id": interrupt_id.group(1),
            "winner": "negative",
            "confidence": "0.7",
            "reasoning": "running Kafka costs more than it saves",
        },
        follow_redirects=False,
    )
    assert answered.status_code == 303 and "problem" not in answered.headers["location"]
    deadline, live = time.monotonic() + 60, ""
    while time.monotonic() < deadline and 'data-status="done"' not in live:
        time.sleep(0.2)
        live = client.get(f"/threads/{thread_id}", params={"fragment": "1"}).text
    assert 'data-status="done"' in live, live[:500]
    assert "running Kafka costs more than it saves" in live and "Waiting for a person" not in live


def test_what_a_request_carries_stays_data(scripted: None, client: TestClient, pg_dsn: str) -> None:
    for thread_id in ("../../etc/passwd", "<script>alert(1)</script>", "x' OR '1'='1"):
        page = client.get(f"/threads/{thread_id}")
        assert page.status_code in (200, 404)
        assert "<script>alert(1)</script>" not in page.text
    search = client.get("/", params={"q": "<script>alert(1)</script>"}).text
    assert "<script>alert(1)</script>" not in search and "&lt;script&gt;" in search
    refused = client.post("/threads/no-such-thread/answer", data={"interrupt_id": "x"})
    assert "Not found" in refused.text
    assert json.loads(json.dumps(client.get("/static/console.js").status_code)) == 200


def test_a_fork_from_a_checkpoint_page_runs_with_its_edit(
    scripted: None, client: TestClient, pg_dsn: str, thread_id: str
) -> None:
    supervisor_run(pg_dsn, thread_id)
    html = client.get(f"/threads/{thread_id}").text
    checkpoints = re.findall(r'/checkpoints/([0-9a-f-]+)">', html)
    after_plan = checkpoints[-3]  # the input, the opening, then the plan
    page = client.get(f"/threads/{thread_id}/checkpoints/{after_plan}").text
    assert f'action="/threads/{thread_id}/fork"' in page and "<option>task</option>" in page

    def fork(**form: str) -> Any:
        return client.post(
            f"/threads/{thread_id}/fork",
            data={"checkpoint_id": after_plan, **form},
            follow_redirects=False,
        )

    bad = fork(field="task", value="not JSON")
    assert bad.status_code == 303 and "problem=" in bad.headers["location"]
    assert "task: the new value is not JSON" in client.get(bad.headers["location"]).text
    refused = client.get(fork(field="usage", value="[]").headers["location"]).text
    assert "a fork edits the run&#39;s input fields" in refused

    made = fork(field="task", value=json.dumps("Keep Redis for the queue?"))
    target = made.headers["location"]
    assert made.status_code == 303 and target.startswith(f"/threads/{thread_id}-fork-")
    deadline, live = time.monotonic() + 60, ""
    while time.monotonic() < deadline and 'data-status="done"' not in live:
        time.sleep(0.2)
        live = client.get(target, params={"fragment": "1"}).text
    assert 'data-status="done"' in live, live[:500]
    assert f'forked from <a href="/threads/{thread_id}/checkpoints/{after_plan}"' in live
    newest = re.findall(r'/checkpoints/([0-9a-f-]+)">', live)[0]
    assert "Keep Redis for the queue?" in client.get(f"{target}/checkpoints/{newest}").text


def test_teams_expand_and_scenarios_draw_their_milestone_chart(
    scripted: None, client: TestClient, pg_dsn: str, thread_id: str
) -> None:
    workers = [lead("backend", "api", "db"), member("pm")]
    mas.run("supervisor", {"task": TASK, "workers": workers}, thread_id=thread_id,
            model=teams_model(), dsn=pg_dsn)  # fmt: skip
    html = client.get(f"/threads/{thread_id}").text
    team = html[html.index('<details class="team" data-team="backend"') :]
    team = team[: team.index("</details>")]
    assert "backend · supervisor · ok" in team
    assert 'class="graph"' in team and '<g class="node done" data-node="synthesize">' in team
    assert "api" in team and "db" in team  # the team's own view: its workers

    scenarios = f"{thread_id}-s"
    mas.run("scenarios", {"skill": "rank", "base_size": 4}, thread_id=scenarios,
            model=SCRIPTED, dsn=pg_dsn)  # fmt: skip
    chart = client.get(f"/threads/{scenarios}").text
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart"' in chart
    drawn = set(re.findall(r'<polyline class="series" data-scenario="(\w+)"', chart))
    assert drawn == {"simple", "medium", "complex"}
