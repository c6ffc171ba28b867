"""A start that adopts an account whose trades it cannot all list (SPEC 9: no fill
counted twice).

The start's reconciliation lists the account's trades of the look-back and marks them
handed out: the adopted positions hold them. When that list is out of reach (more trades
than one reconciliation books), they were left unmarked, and a later reconciliation
whose look-back still held some of them, now few enough to list, booked them again as
exchange fills of another order. Here one page holds 2 trades and 4 are too many."""

import pytest

from perps_bot.venues import FillsOutOfReach
from perps_bot.venues.live import trade_pages
from perps_emulator import EmulatorServer
from perps_emulator.state import EmuTrade
from tests.live.live_helpers import ClientFactory, FakeClock, started_venue

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000


def by_hand(server: EmulatorServer, times: list[int]) -> None:
    """Buys of 0.01 ETH made elsewhere, one at each time (the account's trade list)."""
    for ts in times:
        n = len(server.state.trades)
        server.state.trades.append(EmuTrade(10_000 + n, 50_000 + n, "ETHUSDT", "BUY", 2_000.0,
                                            0.01, 0.01, 0.0, False, ts))  # fmt: skip


async def test_trades_adopted_unlisted_are_never_booked(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trade_pages, "TRADE_PAGE", 2)
    monkeypatch.setattr(trade_pages, "MAX_TRADES", 4)
    clock = FakeClock(T0)
    server = EmulatorServer(seed=3, initial_balance=1_000_000.0, clock=clock)
    await server.start()
    try:
        venue, venue_clock = await started_venue(server, make_client)
        by_hand(server, [T0 + 1_000, T0 + 2_000, T0 + 40_000, T0 + 50_000])
        venue_clock.now = clock.now = T0 + 60_000
        await venue.snapshot_to_adopt(T0, ["ETH-PERP"])  # four: out of reach, adopted
        by_hand(server, [T0 + 61_000])  # the first trade after the start
        venue_clock.now = clock.now = T0 + 62_000
        with pytest.raises(FillsOutOfReach, match="could not all be listed"):
            # 30 s back: the two adopted trades of 40 s and 50 s were booked again
            await venue.exchange_fills(T0 + 30_000, ["ETH-PERP"])
        fills = await venue.exchange_fills(T0 + 60_000, ["ETH-PERP"])  # after the start
        assert [f.ts for f in fills] == [T0 + 61_000]
    finally:
        await server.stop()
