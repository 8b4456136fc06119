"""mas-graphs' library: the patterns' graphs, nodes, state and checkpointing.

The repository keeps the design card's folders at its root (`graphs/`, `nodes/`,
`state/`, `checkpoints/`); the links in this folder install them as
`mas_graphs.graphs`, `mas_graphs.nodes`, `mas_graphs.state` and
`mas_graphs.checkpoints`, so a user's own `nodes.py` or `state.py` never collides with
them. Code imports them only by these names. The application shell is `mas`.
"""

__all__ = ["checkpoints", "graphs", "nodes", "state"]
