"""Every notebook in notebooks/ runs top to bottom against this session's database.

Notebook `notebooks/<pattern>.ipynb` runs with
`MAS_MODEL=factory:tests.support.scripts_<pattern>:notebook_model`, a deterministic model,
so the test checks the notebook's code rather than a model's mood, and that each
notebook draws at least one picture.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.support.processes import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAS_MODEL", f"factory:tests.support.scripts_{path.stem}:notebook_model")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    notebook = nbformat.read(path, as_version=4)
    # execute() raises CellExecutionError, naming the cell, if any cell fails.
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert outputs
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert pictures, "every notebook shows at least one picture"


def test_every_pattern_has_a_notebook() -> None:
    from mas.patterns import known_patterns

    assert {p.stem for p in NOTEBOOKS} >= set(known_patterns())
