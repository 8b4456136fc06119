"""mas-graphs installs under two names only, `mas` (the shell) and `mas_graphs` (the
library), so a user's project with its own `nodes.py`, `state.py`, `graphs.py` or
`checkpoints.py` (the most common file names in LangGraph projects) imports it fine."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support.processes import ROOT, python

USER_MODULES = ("nodes", "state", "graphs", "checkpoints")
NOT_SOURCES = (".git", ".venv", "build", "*.egg-info", "__pycache__", "*_cache")
FOLDERS = "(graphs|nodes|state|checkpoints)"
# A bare import in code, or in a notebook's JSON source.
BARE_IMPORT = re.compile(rf'^\s*(from|import) {FOLDERS}(\.| |$)|"from {FOLDERS}[. ]', re.M)


def test_a_user_project_with_its_own_nodes_py_runs_a_pattern(tmp_path: Path) -> None:
    for name in USER_MODULES:
        (tmp_path / f"{name}.py").write_text(f"OWNER = 'the user: {name}'\n")
    code = """
import mas
result = mas.run(
    "supervisor", {"task": "Queue or not?"},
    model="factory:tests.support.scripts_supervisor:notebook_model",
)
import checkpoints, graphs, nodes, state
print(result.status, nodes.OWNER, state.OWNER, graphs.OWNER, checkpoints.OWNER)
"""
    done = python("-c", code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[-2] == (
        "done the user: nodes the user: state the user: graphs the user: checkpoints"
    )


def test_the_wheel_holds_only_the_namespace_and_the_shell(tmp_path: Path) -> None:
    # Built from a copy: setuptools writes build/ next to the sources it builds.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(*NOT_SOURCES))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("mas_graphs-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"mas", "mas_graphs"}, top
    for module in (
        "mas_graphs/nodes/context.py",
        "mas_graphs/graphs/supervisor.py",
        "mas_graphs/state/common.py",
        "mas_graphs/checkpoints/savers.py",
        "mas/providers/llamacpp_engine.py",
        "mas/server/graphs.py",
        "mas/console/templates/run.html",  # the console's pages ship as package data
        "mas/console/static/console.js",
    ):
        assert module in names, module


def test_no_code_imports_the_library_by_its_folder_names() -> None:
    """In the repository the folders also import by their bare names (the root is on the
    path); a module that did so would run twice under two names, and not at all once
    installed."""
    tracked = subprocess.run(
        ["git", "ls-files", "*.py", "*.ipynb"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    files = [ROOT / name for name in tracked] + list((ROOT / "tests").glob("*.py"))
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0).strip()}"
        for path in set(files)
        if path.exists()
        for match in BARE_IMPORT.finditer(path.read_text())
    ]
    assert offenders == []


def test_tests_benchmarks_and_scripts_share_a_support_package_not_test_modules() -> None:
    """Helpers live in tests/support/; a test module or conftest imported as a library
    would run its tests' module-level set-up in whoever imports it."""
    sources = [*ROOT.glob("tests/**/*.py"), *ROOT.glob("benchmarks/**/*.py")]
    sources += [*ROOT.glob("scripts/*.py")]
    library_use = re.compile(r"^\s*(from|import) tests\.(test_\w+|conftest)\b", re.M)
    offenders = [
        str(path.relative_to(ROOT)) for path in sources if library_use.search(path.read_text())
    ]
    assert offenders == []


def test_the_library_imports_nothing_from_the_shell() -> None:
    """Data flows one way: the shell (`mas`: settings, models, runner, CLI) builds on the
    library, and the library (savers included) takes what it needs as arguments."""
    shell = re.compile(r"^\s*(from|import) mas(\.| |$)", re.M)
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("graphs", "nodes", "state", "checkpoints")
        for path in (ROOT / folder).glob("*.py")
        if shell.search(path.read_text())
    ]
    assert offenders == []
