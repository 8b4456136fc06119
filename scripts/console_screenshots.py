"""Screenshots of the run console, one page per pattern, for the README.

    python scripts/console_screenshots.py [--out docs/console]

Runs each pattern once on the tests' scripted model (deterministic, instant) in a fresh
embedded PostgreSQL, serves `mas ui` on it, and photographs each run's page with
Debian's headless Chromium (installed on first use, as the browser tests do).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.browser import ensure_chromium, headless_chrome
from tests.support.factories import encode
from tests.support.processes import mas_cli, subprocess_env
from tests.support.scripts_mixed import CLASSIFY, mixed_script
from tests.support.scripts_saga import order
from tests.support.scripts_supervisor import plan, report
from tests.support.servers import free_port, start_mas_ui
from tests.support.teams import lead, member

MODEL = "factory:tests.support.factories:scripted_from_env"
RUNS = {
    "supervisor": {
        "task": "Should the team move its job queue to PostgreSQL?",
        "workers": [lead("backend", "api", "db"), member("pm")],
    },
    "debate": {"question": "Is PostgreSQL a good job queue?", "rounds": 2},
    "scenarios": {"skill": "rank", "base_size": 6},
    "saga": {"order": order(order_id="SHOT-1"), "faults": [{"step": "schedule_shipping"}]},
}


def main(out: Path) -> None:
    from mas_graphs.checkpoints.embedded import embedded_dsn

    work = Path(tempfile.mkdtemp(prefix="mas-shots-"))
    script = {
        **mixed_script(),
        # the lead's plan, then its team's; the members' reports
        "planner": [plan(("backend", []), ("pm", ["backend"])), plan(("api", []), ("db", []))],
        "member": report("Jobs fit in the database we run", 0.7, ("queue", "SKIP LOCKED")),
    }
    (work / "script.json").write_text(encode(script))
    env = subprocess_env(
        DATABASE_URL=embedded_dsn(work / "pg", cleanup_mode="delete"),
        MAS_MODEL=MODEL,
        MAS_TEST_SCRIPT=str(work / "script.json"),
        MAS_TEST_CLASSIFY=CLASSIFY,
        COLUMNS="110",
    )
    for pattern, given in RUNS.items():
        done = mas_cli("run", pattern, "--input", json.dumps(given), "--thread-id",
                       f"{pattern}-example", env=env)  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"{pattern}: {done.stderr[-2_000:]}")
    ensure_chromium()
    server = start_mas_ui(env, free_port(), work / "ui.log")
    browser = headless_chrome(width=1280, height=1600)
    out.mkdir(parents=True, exist_ok=True)
    try:
        for page, path in [("threads", "/"), *((p, f"/threads/{p}-example") for p in RUNS)]:
            browser.get(f"{server.url}{path}")
            time.sleep(0.5)
            browser.save_screenshot(str(out / f"{page}.png"))
            print(out / f"{page}.png")
    finally:
        browser.quit()
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/console"))
    main(parser.parse_args().out)
