"""The orchestrator driven by a scripted feed, strategy and venue (tests/harness): the
order of the stages, target netting against orders in flight, venue refusals as
denials, reconciliation, and trading on after a liquidation."""

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from perps_bot.config import Settings
from perps_bot.domain import DenialReason, Fill, Liquidity, MarketEvent, MarkPrice, Side
from perps_bot.orchestrator.runner import RunResult, run_bot
from perps_bot.orchestrator.venue_calls import RECONCILE_LOOKBACK_MS, StopRun
from perps_bot.venues import (
    OrderRejected,
    VenueFatal,
    VenuePosition,
    VenueSnapshot,
    VenueUnavailable,
)
from tests.harness.scripted import RecordingTargets, ScriptedFeed, quotes
from tests.harness.settings import scripted_settings
from tests.harness.venue import ScriptedVenue
from tests.harness.wired import wired

START_MS = 1_704_067_200_000
SYMBOL = "BTC-PERP"


def settings(tmp_path: Path, script: str, **sections: Any) -> Settings:
    return scripted_settings(tmp_path, "RecordingTargets", script, SYMBOL, **sections)


@pytest.fixture
def venue() -> ScriptedVenue:
    calls: list[str] = []
    RecordingTargets.log = calls
    return ScriptedVenue(calls)


async def run(cfg: Settings, venue: ScriptedVenue, prices: list[float]) -> RunResult:
    feed = ScriptedFeed(quotes(SYMBOL, prices, start_ms=START_MS))
    return await run_bot(cfg, feed=feed, venue=venue, progress=False)


def rows(result: RunResult, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(result.db_path) as conn:
        return conn.execute(sql, (result.run_id,)).fetchall()


async def test_stages_run_in_order_for_each_event(tmp_path: Path, venue: ScriptedVenue) -> None:
    result = await run(settings(tmp_path, "2:1"), venue, [100.0, 100.0, 101.0])
    assert result.status == "completed"
    second, third = START_MS + 1_000, START_MS + 2_000
    assert venue.calls == [
        "venue.start",
        f"venue.on_market {START_MS}",
        f"strategy.on_event {START_MS} position=0",
        f"venue.on_market {second}",
        f"strategy.on_event {second} position=0",  # signal -> risk -> instrument -> venue
        "venue.submit pb-1",
        "strategy.on_order_update pb-1 accepted",
        f"venue.on_market {third}",  # the venue fills first: ledger, then the strategy
        "strategy.on_fill pb-1 liquidation=False",
        "strategy.on_order_update pb-1 filled",
        f"strategy.on_event {third} position=1",
        "venue.stop",
    ]


async def test_targets_net_against_orders_in_flight(tmp_path: Path, venue: ScriptedVenue) -> None:
    venue.fill_on_next_event = False  # orders stay open: in flight
    result = await run(settings(tmp_path, "1:1,2:1,3:1.5,4:0.0005"), venue, [100.0] * 5)
    assert [(o.side, o.size, o.reduce_only) for o in venue.submitted] == [
        (Side.BUY, 1.0, False),  # nothing more for the same target while it is in flight
        (Side.BUY, 0.5, False),  # only the difference to the new target
        (Side.SELL, 1.499, False),  # floored to the 0.001 step; nothing is held yet
    ]
    statuses = rows(result, "SELECT client_id, status, status_reason FROM orders WHERE run_id=?")
    assert {s for _, s, _ in statuses} == {"canceled"}
    assert {r for _, _, r in statuses} == {"end of run"}


async def test_venue_refusals_become_denials_with_the_venues_reason(
    tmp_path: Path, venue: ScriptedVenue
) -> None:
    venue.refusals = [
        OrderRejected(DenialReason.INSUFFICIENT_MARGIN, "margin is insufficient"),
        VenueUnavailable("exchange down"),
    ]
    result = await run(settings(tmp_path, "1:1,2:1,3:1"), venue, [100.0] * 4)
    assert result.status == "completed"
    denials = rows(result, "SELECT reason_code, detail FROM denials WHERE run_id=? ORDER BY ts")
    assert denials == [
        ("INSUFFICIENT_MARGIN", "margin is insufficient"),
        ("CIRCUIT_BREAKER_OPEN", "venue unavailable: exchange down"),
    ]
    orders = rows(result, "SELECT client_id, status FROM orders WHERE run_id=? ORDER BY ts")
    assert orders == [("pb-1", "rejected"), ("pb-2", "rejected"), ("pb-3", "filled")]


async def test_a_fatal_venue_error_fails_the_run_with_its_message(
    tmp_path: Path, venue: ScriptedVenue
) -> None:
    venue.refusals = [VenueFatal("exchange refused the API credentials")]
    result = await run(settings(tmp_path, "1:1"), venue, [100.0] * 3)
    assert result.status == "failed"
    (detail,) = rows(result, "SELECT detail FROM runs WHERE run_id=?")[0]
    assert detail == "exchange refused the API credentials"


async def test_trading_goes_on_after_a_paper_liquidation(
    tmp_path: Path, venue: ScriptedVenue
) -> None:
    cfg = settings(
        tmp_path,
        "1:1,10:-1",
        account={"margin_mode": "isolated", "default_leverage": 100.0},
        risk={"max_leverage": 200.0, "max_drawdown": 1.0, "reducing_drawdown": 1.0,
              "daily_loss_limit": 1.0},
    )  # fmt: skip
    result = await run(cfg, venue, [100.0] * 5 + [98.0] * 10)
    liquidation = venue.calls.index(f"venue.on_liquidation {SYMBOL}")
    assert "strategy.on_fill liq-BTC-PERP-1 liquidation=True" in venue.calls[liquidation - 1 :]
    (short,) = [o for o in venue.submitted if o.side is Side.SELL]
    assert (short.size, short.reduce_only) == (1.0, False)  # the ledger is flat: opens -1
    fills = rows(result, "SELECT position_after FROM fills WHERE run_id=? ORDER BY seq")
    assert [f[0] for f in fills] == [1.0, 0.0, -1.0]


async def test_reconciliation_books_exchange_fills_then_adopts_what_still_differs(
    tmp_path: Path, venue: ScriptedVenue
) -> None:
    held = VenueSnapshot(1_000.0, [VenuePosition(SYMBOL, 1.0, 100.0)])
    flat = VenueSnapshot(900.0, [])
    liquidation = Fill(
        START_MS + 5, SYMBOL, Side.SELL, 1.0, 80.0, 0.04, Liquidity.TAKER,
        "autoclose-1", "autoclose-1", "liquidated by the exchange", is_liquidation=True,
    )  # fmt: skip
    venue.snapshots = [held, flat, flat, VenueSnapshot(900.0, [VenuePosition(SYMBOL, 2.0, 90.0)])]
    venue.foreign = [liquidation]
    async with wired(settings(tmp_path, ""), venue) as run_:
        engine, ledger = run_.orchestrator, run_.ledger
        await engine.start(reconcile=True)  # adopts +1 at once: nothing to look for yet
        assert ledger.position_size(SYMBOL) == 1.0
        assert "venue.exchange_fills BTC-PERP" not in venue.calls
        assert await engine.reconcile("periodic") == [SYMBOL]  # gone: the exchange's fill
        assert "venue.exchange_fills BTC-PERP" in venue.calls
        assert "strategy.on_fill autoclose-1 liquidation=True" in venue.calls
        assert ledger.position_size(SYMBOL) == 0.0 and ledger.wallet_balance() == 900.0
        assert await engine.reconcile("periodic") == [SYMBOL]  # +2 out of nowhere: adopted
        assert ledger.position_size(SYMBOL) == 2.0


async def test_a_failed_reconciliation_leaves_the_books_and_the_fill_lookback_alone(
    tmp_path: Path, venue: ScriptedVenue
) -> None:
    """Mid-run an unreadable account is a warning and the next reconciliation looks for
    exchange fills from the last one that read the account, not from the failed one
    (a fill made in between would otherwise never be looked for)."""
    held = VenueSnapshot(1_000.0, [VenuePosition(SYMBOL, 1.0, 100.0)])
    venue.snapshots = [held, VenueUnavailable("exchange not answering"), VenueSnapshot(900.0, [])]
    async with wired(settings(tmp_path, ""), venue) as run_:
        engine, ledger = run_.orchestrator, run_.ledger
        await engine.start(reconcile=True)
        started = engine.clock.now()
        engine.clock.advance(started + 600_000)
        assert await engine.reconcile("periodic") == []  # could not read: nothing changed
        assert ledger.position_size(SYMBOL) == 1.0
        engine.clock.advance(started + 1_200_000)
        assert await engine.reconcile("periodic") == [SYMBOL]
        assert venue.fill_lookups == [started - RECONCILE_LOOKBACK_MS]
        assert ledger.position_size(SYMBOL) == 0.0


async def test_a_start_whose_reconciliation_cannot_read_the_account_stops(
    tmp_path: Path, venue: ScriptedVenue
) -> None:
    venue.snapshots = [VenueUnavailable("exchange not answering")]
    async with wired(settings(tmp_path, ""), venue) as run_:
        engine = run_.orchestrator
        with pytest.raises(StopRun, match="cannot reconcile with the exchange at start-up"):
            await engine.start(reconcile=True)


async def test_mark_prices_alone_do_not_keep_the_market_data_fresh(
    tmp_path: Path, venue: ScriptedVenue
) -> None:
    """A feed whose trades and books stopped while its mark price kept coming (say, the
    depth endpoint failing while premiumIndex answers): 40 s after the last price the
    market data is stale (stale_after 30s), whatever marks arrived since. Before, each
    MarkPrice counted as fresh data and the order was priced from a 40 s old quote."""
    marks = [MarkPrice(START_MS + i * 1_000, SYMBOL, 100.0) for i in range(1, 41)]
    feed = ScriptedFeed([*quotes(SYMBOL, [100.0], start_ms=START_MS), *marks])
    result = await run_bot(settings(tmp_path, "41:1"), feed=feed, venue=venue, progress=False)
    assert result.status == "completed"
    assert venue.submitted == []
    with sqlite3.connect(result.db_path) as conn:
        reasons = [r for (r,) in conn.execute("SELECT reason_code FROM denials")]
    assert reasons == ["STALE_MARKET_DATA"]


@dataclass
class HoldingVenue(ScriptedVenue):
    """Hands its fills out at its next poll, as the live venue does with the fills an
    exchange reply told of (a cancel's reply saying the order had filled)."""

    needs_polling: bool = True
    held: list[Fill] = field(default_factory=list)

    def on_market(self, event: MarketEvent) -> Sequence[Fill]:
        self.held += super().on_market(event)
        return ()

    async def poll(self, now_ms: int) -> Sequence[Fill]:
        fills, self.held = self.held, []
        return fills


async def test_a_fill_the_venue_holds_when_the_run_ends_is_booked(tmp_path: Path) -> None:
    """The run ended before the venue's next poll: the order was stored filled and its
    fill was nowhere (no fill row, the ledger flat while the account held the position)."""
    venue = HoldingVenue([])
    cfg = settings(tmp_path, "1:1", exchange={"poll_interval": "1h"})
    result = await run(cfg, venue, [100.0, 100.0])
    assert result.status == "completed"
    assert rows(result, "SELECT size, price FROM fills WHERE run_id=?") == [(1.0, 100.0)]
    assert rows(result, "SELECT status FROM orders WHERE run_id=?") == [("filled",)]
