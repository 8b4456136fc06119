"""The built-in patterns, registered explicitly: each module declares one `PATTERN`
(a `PatternSpec`), and this package puts the four in the registry when it is imported
(the registry imports it on first use). A user's pattern registers the same way, from
its own package: `register_pattern(spec)` or the `mas_graphs.patterns` entry point."""

from mas_graphs.graphs import debate, saga, scenarios, supervisor
from mas_graphs.state.pattern import register_pattern

BUILT_IN = (supervisor.PATTERN, debate.PATTERN, scenarios.PATTERN, saga.PATTERN)
for spec in BUILT_IN:
    register_pattern(spec)

__all__ = ["BUILT_IN"]
