"""End to end on the embedded Gemma 3 270M model: a real two-round debate reaches a
valid verdict (the model is small, so the test checks the shape, not the wisdom)."""

from __future__ import annotations

import pytest

from mas import runner
from state.debate import INCONCLUSIVE


@pytest.mark.gemma
async def test_two_round_debate_on_gemma_reaches_a_valid_verdict() -> None:
    task = {
        "question": "Is tea better than coffee for a morning drink?",
        "rounds": 2,
        "early_stop": False,
    }
    result = await runner.arun("debate", task, model="llamacpp")
    assert result.status == "done"
    assert [(t["round"], t["speaker"]) for t in result["transcript"]] == [
        (r, s) for r in (1, 2) for s in ("affirmative", "negative")
    ]
    # A 270M model may garble a turn; a garbled turn is recorded, never dropped.
    assert all(t["error"] for t in result["transcript"] if t["status"] == "failed")
    verdict = result["verdict"]
    assert verdict["decided_by"] == "judge"
    assert verdict["winner"] in {"affirmative", "negative", INCONCLUSIVE}
    assert 0 <= verdict["confidence"] <= 1
    assert result["stopped"]["round"] == 2
    assert result["totals"]["all"]["output_tokens"] > 0
