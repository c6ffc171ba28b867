"""In the REDUCING state the orders that pass are sent reduce-only: a flip the gate cut
to a close is a close, which the exchange exempts from the minimum notional (a small
remainder can always be closed) and clips to the position left when it fills."""

import sqlite3
from pathlib import Path

from perps_bot.orchestrator.runner import run_bot
from tests.harness.scripted import ScriptedFeed, quotes
from tests.harness.settings import scripted_settings
from tests.harness.venue import ScriptedVenue

START_MS = 1_704_067_200_000
SYMBOL = "BTC-PERP"


async def test_a_flip_cut_to_a_close_is_sent_reduce_only(tmp_path: Path) -> None:
    """Long 0.5 bought at 100 (50 USDT); the price halves, the day's loss passes the
    limit; a sell of 1.0 is cut to the close of 0.5, worth 25 USDT, under the
    instrument's 40 USDT minimum notional: only reduce-only may go."""
    cfg = scripted_settings(
        tmp_path,
        "ScriptedIntents",
        "2:0.5,8:-1.0",
        SYMBOL,
        risk={"daily_loss_limit": 0.0001, "stale_after": "1h"},
        instruments={SYMBOL: {"min_notional": 40.0}},
    )
    prices = [100.0] * 4 + [50.0] * 6
    feed = ScriptedFeed(quotes(SYMBOL, prices, start_ms=START_MS, step_ms=60_000))
    venue = ScriptedVenue([])
    result = await run_bot(cfg, feed=feed, venue=venue, progress=False)
    assert result.status == "completed"
    with sqlite3.connect(result.db_path) as conn:
        sql = "SELECT reason_code FROM denials WHERE run_id = ?"
        assert [r[0] for r in conn.execute(sql, (result.run_id,))] == []
    sent = [(o.side.sign * o.size, o.reduce_only) for o in venue.submitted]
    assert sent == [(0.5, False), (-0.5, True)]
