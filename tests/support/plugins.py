"""The tests' plugin, installed the way a user's package registers skills and tools: a
`*.dist-info` directory with entry points, on the import path. Every process the tests
start (CLI runs, resumes, servers) puts the directory on its path and so finds the test
skill `sleep` and the test tool `shout` by name, exactly as it would find a
pip-installed plugin's.
"""

from __future__ import annotations

from pathlib import Path

from langchain_core.tools import tool

from tests.support.scripted import supervisor_agent

DIST_INFO = "mas_graphs_test_plugins-0.1.dist-info"
ENTRY_POINTS = """\
[mas_graphs.skills]
sleep = tests.support.scripts_scenarios:SleepSkill

[mas_graphs.tools]
shout = tests.support.plugins:shout
"""


@tool
def shout(text: str) -> str:
    """Repeat a text in capitals."""
    return text.upper()


def install_test_plugins(directory: Path) -> Path:
    """Write the plugin's metadata under `directory` (to put on sys.path) and return it."""
    info = directory / DIST_INFO
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: mas-graphs-test-plugins\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return directory


def brief_agent(prompt: str) -> str:
    """Which agent a call belongs to when the README's `brief` pattern runs, alone or
    as a supervisor's team: its writer and editor by their system text, else the
    supervisor's agents."""
    for marker, agent in (("Write three plain sentences.", "writer"), ("Cut this to", "editor")):
        if prompt.startswith(marker):
            return agent
    return supervisor_agent(prompt)
