"""A flatten whose close does not go out: the risk gate denies it (the order rate: the
entry took the minute's one order) or the venue refuses it. The close was made once,
at the event after the flatten; denied or refused, nothing made it again and nothing
but a denial row said so: the flattened (and paused) portfolio held its position for
the rest of the run. The flatten is kept until the portfolio is flat: its closes are
made again once the gate would let them through (a warning says the position is still
open); a resume hands the portfolio back to its strategy and ends it."""

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from perps_bot.config import Settings
from perps_bot.orchestrator.runner import Run, RunResult, run_bot
from perps_bot.venues import OrderRejected
from tests.harness.limits import LOOSE_RISK
from tests.harness.scripted import ScriptedFeed, quotes
from tests.harness.venue import ScriptedVenue
from tests.orchestrator.test_one_truth import START_MS, _settings

BTC = "BTC-PERP"
PRICE = 60_000.0


def _rate_limited(tmp_path: Path, **risk: Any) -> Settings:
    """Long 1 BTC at the 2nd quote; one order a minute."""
    settings: Settings = _settings(
        tmp_path,
        account={"initial_balance": 1e9, "default_leverage": 10.0},
        strategy={"name": "tests.harness.scripted:ScriptedTargets",
                  "params": {"symbol": BTC, "script": "2:1"}},
        risk=LOOSE_RISK | risk,
    )  # fmt: skip
    return settings


def _denials(result: RunResult) -> list[str]:
    with sqlite3.connect(result.db_path) as conn:
        rows = conn.execute("SELECT reason_code FROM denials WHERE run_id=? ORDER BY rowid",
                            (result.run_id,)).fetchall()  # fmt: skip
    return [code for (code,) in rows]


def _flatten_when_long(
    held: list[float],
    resume_after: int | None = None,
    refuse: ScriptedVenue | None = None,
    halted_for: int | None = None,
) -> Any:
    """Flatten (paused) once the portfolio holds its long; then note the position at
    every turn of the loop (`resume_after`: resume after that many turns; `refuse`: that
    venue refuses the next order, the flatten's close; `halted_for`: trading halted
    from the flatten for that many ms of the run's clock)."""

    @contextlib.asynccontextmanager
    async def attach(run: Run) -> AsyncIterator[None]:
        orchestrator = run.orchestrator
        p = orchestrator.primary

        async def watch() -> None:
            while p.ledger.position_size(BTC) != pytest.approx(1.0):
                await asyncio.sleep(0)
            orchestrator.pause(p)
            if halted_for is not None:
                p.risk.halt("operator")
                halted_until = orchestrator.clock.now() + halted_for
            assert orchestrator.flatten(p, "flatten (API)") == 1
            if refuse is not None:
                refuse.refusals.append(OrderRejected(None, "price outside the band"))
            while True:
                held.append(p.ledger.position_size(BTC))
                if len(held) == resume_after:
                    orchestrator.resume(p)
                if halted_for is not None and orchestrator.clock.now() >= halted_until:
                    p.risk.resume()  # resume-trading
                await asyncio.sleep(0)

        task = asyncio.create_task(watch())
        try:
            yield
        finally:
            task.cancel()

    return attach


async def test_a_flatten_denied_by_the_order_rate_closes_once_the_rate_allows(
    tmp_path: Path,
) -> None:
    settings = _rate_limited(tmp_path, max_orders_per_minute=1)
    venue = ScriptedVenue([])
    feed = ScriptedFeed(quotes(BTC, [PRICE] * 90, start_ms=START_MS))
    held: list[float] = []
    result = await run_bot(settings, feed=feed, venue=venue, progress=False,
                           attach=_flatten_when_long(held))  # fmt: skip
    assert result.status == "completed"
    assert _denials(result) == ["ORDER_RATE_LIMIT"], "one denial, not one per event"
    assert held[-1] == pytest.approx(0.0), "the flattened portfolio held its long"
    closes = [o for o in venue.submitted if o.reduce_only]
    assert len(closes) == 1
    assert closes[0].created_ts >= START_MS + 61_000  # once the minute's order was past
    log = (tmp_path / "logs" / "perps_bot.log").read_text()
    assert log.count("still holds BTC-PERP 1 after its flatten") == 1
    assert "ORDER_RATE_LIMIT" in log


async def test_a_flatten_refused_by_the_venue_is_sent_again(tmp_path: Path) -> None:
    settings = _rate_limited(tmp_path)
    venue = ScriptedVenue([])
    feed = ScriptedFeed(quotes(BTC, [PRICE] * 30, start_ms=START_MS))
    held: list[float] = []
    result = await run_bot(settings, feed=feed, venue=venue, progress=False,
                           attach=_flatten_when_long(held, refuse=venue))  # fmt: skip
    assert result.status == "completed"
    assert held[-1] == pytest.approx(0.0), "the flattened portfolio held its long"
    assert len([o for o in venue.submitted if o.reduce_only]) == 1  # the refused one not


async def test_a_resume_ends_a_flatten_still_closing(tmp_path: Path) -> None:
    """The trader resumes while the close waits for the order rate: the strategy has the
    portfolio back (it wants its long), and the flatten closes nothing later."""
    settings = _rate_limited(tmp_path, max_orders_per_minute=1)
    venue = ScriptedVenue([])
    feed = ScriptedFeed(quotes(BTC, [PRICE] * 90, start_ms=START_MS))
    held: list[float] = []
    result = await run_bot(settings, feed=feed, venue=venue, progress=False,
                           attach=_flatten_when_long(held, resume_after=10))  # fmt: skip
    assert result.status == "completed"
    assert held[-1] == pytest.approx(1.0)
    assert [o for o in venue.submitted if o.reduce_only] == []


async def test_a_flatten_of_a_halted_portfolio_says_so_and_closes_once_the_halt_is_lifted(
    tmp_path: Path,
) -> None:
    settings = _rate_limited(tmp_path)
    venue = ScriptedVenue([])
    feed = ScriptedFeed(quotes(BTC, [PRICE] * 60, start_ms=START_MS))
    held: list[float] = []
    result = await run_bot(settings, feed=feed, venue=venue, progress=False,
                           attach=_flatten_when_long(held, halted_for=30_000))  # fmt: skip
    assert result.status == "completed"
    assert _denials(result) == ["TRADING_HALTED"], "one denial, not one per event"
    log = (tmp_path / "logs" / "perps_bot.log").read_text()
    assert log.count("still holds BTC-PERP 1 after its flatten") == 1
    assert "TRADING_HALTED" in log
    assert held[-1] == pytest.approx(0.0), "the flattened portfolio held its long"
