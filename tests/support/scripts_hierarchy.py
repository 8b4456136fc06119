"""The deterministic model notebooks/hierarchy.ipynb runs on in the test suite."""

from __future__ import annotations

from typing import Any


def notebook_model() -> Any:
    from tests.support.scripts_supervisor import report
    from tests.support.teams import teams_model

    # the notebook's workers have roles of their own; any of them reports
    model = teams_model(**{"*": report("a worker's finding", 0.7, ("topic", "a claim"))})
    # long enough to see the teams overlap in the notebook's timeline
    model.delays = {"member": 0.05, "affirmative": 0.05, "negative": 0.05}
    return model
