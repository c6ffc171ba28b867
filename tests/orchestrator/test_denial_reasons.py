"""Every denial in the `denials` table says why with one of the public codes (SPEC 2):
an order intent of no size (a strategy's sizing that came out 0, or not a number) is
refused before it exists, like any size the instrument cannot trade, not recorded as a
venue's rejection (no venue saw it)."""

from pathlib import Path

import pytest

from tests.orchestrator.test_portfolios import harness_settings, run_scripted, table

INTENTS = "tests.harness.scripted:ScriptedIntents"


@pytest.mark.parametrize("size", ["0", "nan"])
async def test_an_intent_of_no_size_is_denied_below_the_minimum_quantity(
    tmp_path: Path, size: str
) -> None:
    plan = {"id": "a", "strategy": INTENTS, "symbols": ["BTC-PERP"],
            "params": {"symbol": "BTC-PERP", "script": f"2:{size}"}}  # fmt: skip
    result, venue = await run_scripted(harness_settings(tmp_path, plan), [100.0] * 3)
    assert venue.submitted == []
    denied = table(result.db_path, "SELECT reason_code, detail FROM denials")
    assert [code for code, _ in denied] == ["BELOW_MIN_QUANTITY"], denied
    assert "order size must be positive" in denied[0][1]
