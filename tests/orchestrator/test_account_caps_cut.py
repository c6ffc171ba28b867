"""An order the account's caps cut (SPEC 10: account-level caps apply to the sum of the
portfolios) says in its order line which cap cut it and why, as a portfolio's own caps do."""

import json
from pathlib import Path

from tests.orchestrator.test_portfolios import harness_settings, run_scripted, scripted

#: the account may hold 500 USDT of BTC (5 at 100); no order cap in the way
CAPS = {"max_position_notional": 500.0, "max_order_notional": 10_000.0}


async def test_an_order_the_accounts_cap_cut_says_which_cap(tmp_path: Path) -> None:
    """b's buy of 3 is within its own cap but not the account's (a holds 3 of its 5):
    its order line says the account's position cap cut it, and from what."""
    own = {"risk": {"max_position_notional": 400.0}}
    cfg = harness_settings(tmp_path, scripted("a", "2:3", **own), scripted("b", "3:3", **own),
                           risk=CAPS)  # fmt: skip
    await run_scripted(cfg, [100.0] * 5)
    lines = (tmp_path / "logs").glob("events*.jsonl")
    events = [json.loads(line) for path in lines for line in path.read_text().splitlines()]
    (order,) = [e for e in events if e["type"] == "order" and e["size"] == 2.0]
    resized = order["resized"]
    assert resized is not None, order
    assert resized["reason"] == "MAX_POSITION_NOTIONAL" and resized["requested"] == 3.0
    assert "500" in resized["detail"], resized
