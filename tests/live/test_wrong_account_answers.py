"""Account answers that are valid JSON but wrong never become the truth about money.

Measured on main:
- a positionRisk row whose entryPrice was null, 0 or negative was dropped by ccxt, so
  the snapshot read flat while the exchange held 0.01 ETH, and reconciliation adopted
  a flat book (the bot could then open again: a doubled position); with positionAmt
  null ccxt read the 0.01 held as 0.00995;
- an account answer whose USDT walletBalance was null, NaN or 'abc' gave `balance
  None` (or ccxt's marginBalance, unrealized PnL included), and reconciliation kept
  the ledger's own balance without a word.
Now the account read fails (retried, then VenueUnavailable: reconciliation is skipped
with a warning and a start-up stops, as for a body that is not JSON)."""

from pathlib import Path
from typing import Any

import pytest

from perps_bot.domain import Order, OrderType, Side
from perps_bot.venues.base import VenueUnavailable
from perps_bot.venues.live import LiveVenue
from perps_emulator import EmulatorServer, Fault
from tests.live.live_helpers import (
    ClientFactory,
    reconciles_with,
    started_venue,
)

pytestmark = pytest.mark.integration

POSITIONS = "/fapi/v3/positionRisk"
ACCOUNT_INFO = "/fapi/v3/account"
WRONG_POSITION_ROWS: dict[str, dict[str, Any]] = {
    "null entry": {"entryPrice": None},
    "zero entry": {"entryPrice": "0.0"},
    "negative entry": {"entryPrice": "-1"},
    "NaN entry": {"entryPrice": "NaN"},
    "null amount": {"positionAmt": None},
    "text amount": {"positionAmt": "abc"},
    "NaN amount": {"positionAmt": "NaN"},
    "no symbol": {"symbol": None},
}
WRONG_WALLETS: dict[str, Any] = {
    "null": None,
    "NaN": "NaN",
    "text": "abc",
    "infinite": "Infinity",
}


async def _venue_holding(
    emulator: EmulatorServer, make_client: ClientFactory, max_retries: int = 4
) -> LiveVenue:
    """A started venue whose account holds a long 0.01 ETH position."""
    venue, _ = await started_venue(emulator, make_client, max_retries=max_retries)
    order = Order("wa-1", "ETH-PERP", Side.BUY, 0.01, OrderType.MARKET, None, False, 0, "wa-1")
    await venue.submit(order)
    assert emulator.state.positions["ETHUSDT"].amount == pytest.approx(0.01)
    return venue


@pytest.mark.parametrize("fields", WRONG_POSITION_ROWS.values(), ids=WRONG_POSITION_ROWS)
async def test_a_wrong_position_row_fails_the_snapshot(
    emulator: EmulatorServer, make_client: ClientFactory, fields: dict[str, Any]
) -> None:
    venue = await _venue_holding(emulator, make_client)
    emulator.inject(Fault("rewrite", method="GET", path=POSITIONS, fields=fields, count=5))
    with pytest.raises(VenueUnavailable, match="positionRisk"):
        await venue.snapshot()


async def test_a_wrong_position_row_once_is_read_again(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    venue = await _venue_holding(emulator, make_client)
    emulator.inject(Fault("rewrite", method="GET", path=POSITIONS, fields={"entryPrice": None}))
    snap = await venue.snapshot()
    (position,) = snap.positions
    held = emulator.state.positions["ETHUSDT"]
    assert (position.symbol, position.size) == ("ETH-PERP", pytest.approx(0.01))
    assert position.entry_price == pytest.approx(held.entry_price)


async def test_positions_of_other_symbols_are_not_read(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    """The venue trades ETH only: a BTC position (even an odd one) is not its business."""
    venue = await _venue_holding(emulator, make_client)
    emulator.state.positions["BTCUSDT"].amount = 0.5
    emulator.state.positions["BTCUSDT"].entry_price = 60_000.0
    snap = await venue.snapshot()
    assert [(p.symbol, p.size) for p in snap.positions] == [("ETH-PERP", pytest.approx(0.01))]


@pytest.mark.parametrize("wallet", WRONG_WALLETS.values(), ids=WRONG_WALLETS)
async def test_an_unreadable_wallet_balance_fails_the_snapshot(
    emulator: EmulatorServer, make_client: ClientFactory, wallet: Any
) -> None:
    venue = await _venue_holding(emulator, make_client)
    assets = [{"asset": "USDT", "walletBalance": wallet, "marginBalance": "10000",
               "availableBalance": "9000", "initialMargin": "0"}]  # fmt: skip
    emulator.inject(
        Fault("rewrite", method="GET", path=ACCOUNT_INFO, fields={"assets": assets}, count=5)
    )
    with pytest.raises(VenueUnavailable, match="walletBalance"):
        await venue.snapshot()


async def test_an_account_answer_without_the_settlement_asset_fails_the_snapshot(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    """Binance's account answer lists every margin asset, a zero balance included."""
    venue = await _venue_holding(emulator, make_client)
    emulator.inject(
        Fault("rewrite", method="GET", path=ACCOUNT_INFO, fields={"assets": []}, count=5)
    )
    with pytest.raises(VenueUnavailable, match="USDT"):
        await venue.snapshot()


async def test_a_position_row_without_entry_price_is_not_adopted_as_flat(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    reconciles, opened = await reconciles_with(
        emulator,
        run_dirs,
        Fault("rewrite", method="GET", path=POSITIONS, fields={"entryPrice": None}, count=10**6),
    )
    assert reconciles, "the run never reconciled"
    assert all(r["mismatched"] == [] for r in reconciles), reconciles
    assert emulator.state.positions["ETHUSDT"].amount == opened  # opened once, not again
