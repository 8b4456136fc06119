"""A fast sample of the SIGKILL campaign (scripts/fault_campaign.py): every pattern is
killed once at a seeded random point, resumed in a new process, and compared with an
uninterrupted run; no task whose writes were saved runs again."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from scripts.fault_campaign import PATTERNS, Outcome, Workdir, reference_run, subjects, trial


@pytest.fixture(scope="module")
def outcomes(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    root: Path = tmp_path_factory.mktemp("kills")

    def one(pattern: str) -> Outcome:
        work = Workdir(root / pattern, subjects()[pattern], pg_dsn)
        work.path.mkdir()
        reference = reference_run(work)
        return trial(work, reference, random.Random(f"sample:{pattern}"), 0)

    with ThreadPoolExecutor(2) as pool:
        return dict(zip(PATTERNS, pool.map(one, PATTERNS), strict=True))


@pytest.mark.parametrize("pattern", PATTERNS)
def test_killed_run_resumes_to_the_uninterrupted_result(
    outcomes: dict[str, Outcome], pattern: str
) -> None:
    outcome = outcomes[pattern]
    assert outcome.kills_landed >= 1, outcome.notes
    assert outcome.mismatches == 0, outcome.notes
    assert outcome.duplicated == 0, outcome.notes
