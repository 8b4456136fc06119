"""Error text in the state reads the same whether or not a crash came in between."""

from __future__ import annotations

import pytest
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from mas_graphs.nodes.errors import describe_error


@pytest.mark.parametrize("error", [ValueError("bad input"), TimeoutError("slow 'model'")])
def test_an_error_restored_from_a_checkpoint_is_described_like_the_original(
    error: Exception,
) -> None:
    serde = JsonPlusSerializer()
    restored = serde.loads_typed(serde.dumps_typed(error))
    assert describe_error(restored) == describe_error(error) == f"{type(error).__name__}: {error}"
