"""Real Binance funding history (XRP/USDT:USDT, Nov-Dec 2021) through Ledger.apply_funding.

Data: freqtrade test data (see /work/shared/data/freqtrade-testdata/README.md). Rates are
in `open` of the 8h funding_rate file, with 0-17 ms exchange offsets on the timestamps,
floored to 8h before joining to the 8h "mark" file's opens. The README's own derived
check: sum(rate * mark_open) over the 91 matched rows = 0.008031210148, which a short
of 1 XRP receives and a long pays.
"""

from decimal import Decimal
from pathlib import Path

import pyarrow.feather as feather
import pytest

from perps_bot.config.models import AccountConfig
from perps_bot.domain import Fill, Liquidity, MarginMode, Side
from perps_bot.ledger import Ledger
from perps_bot.margin import funding_payment

# <repo>/../shared/data: the shared data folder next to the repository checkout
DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "freqtrade-testdata" / "futures"
EIGHT_HOURS_MS = 8 * 3_600_000
XRP = "XRP-PERP"

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="freqtrade test data not present")


def _opens_by_time(name: str) -> dict[int, float]:
    table = feather.read_table(DATA / name)
    # timestamp[ns, tz=UTC] -> int ms since epoch
    times = table.column("date").cast("int64").to_pylist()
    opens = table.column("open").to_pylist()
    return {ns // 1_000_000: value for ns, value in zip(times, opens, strict=True)}


@pytest.fixture(scope="module")
def funding_events() -> list[tuple[int, float, float]]:
    """(ts, rate, mark) per funding time: rates floored to 8h, joined to mark opens."""
    rates = _opens_by_time("XRP_USDT_USDT-8h-funding_rate.feather")
    marks = _opens_by_time("XRP_USDT_USDT-8h-mark.feather")
    floored = {ts - ts % EIGHT_HOURS_MS: rate for ts, rate in rates.items()}
    assert len(floored) == len(rates) == 91  # flooring merged nothing
    return [(ts, floored[ts], marks[ts]) for ts in sorted(floored) if ts in marks]


def _hold_through_funding(
    side: Side, size: float, events: list[tuple[int, float, float]], mode: MarginMode
) -> Ledger:
    account = AccountConfig(initial_balance=10_000, margin_mode=mode, default_leverage=2)
    book = Ledger(account, debug_invariants=True)
    first_ts, _, first_mark = events[0]
    book.apply_fill(Fill(first_ts, XRP, side, size, first_mark, 0.0, Liquidity.TAKER, "o", "o"))
    for ts, rate, mark in events:
        book.update_mark(XRP, mark, ts)
        result = book.apply_funding(ts, XRP, rate, mark)
        assert result is not None
        side_name = "long" if side is Side.BUY else "short"
        assert result.payment == pytest.approx(
            funding_payment(side_name, size, mark, rate), rel=1e-12, abs=1e-18
        )
        assert result.position == size * side.sign
    return book


def test_join_has_91_events(funding_events: list[tuple[int, float, float]]) -> None:
    assert len(funding_events) == 91
    assert funding_events[0] == (1_637_193_600_000, 0.0001, 1.0959)  # 2021-11-18 00:00 UTC
    rates = [rate for _, rate, _ in funding_events]
    # README gives them rounded: min -0.00219334 (2021-12-04 08:00), max 0.000583
    assert min(rates) == pytest.approx(-0.00219334, abs=5e-9)
    assert max(rates) == pytest.approx(0.000583, abs=5e-7)


@pytest.mark.parametrize("mode", [MarginMode.CROSS, MarginMode.ISOLATED])
def test_short_one_xrp_receives_readme_total(
    funding_events: list[tuple[int, float, float]], mode: MarginMode
) -> None:
    book = _hold_through_funding(Side.SELL, 1.0, funding_events, mode)
    assert book.funding_total() == pytest.approx(0.008031210148, abs=5e-13)
    # exact: the ledger's Decimal total equals the decimal sum of rate * mark
    exact = sum(Decimal(repr(rate)) * Decimal(repr(mark)) for _, rate, mark in funding_events)
    assert book.funding_total() == float(exact)
    assert book.wallet_balance() == float(Decimal(10_000) + exact)
    assert book.realized_pnl() == 0.0 and book.fees_paid() == 0.0


def test_long_thousand_xrp_pays_the_mirror(funding_events: list[tuple[int, float, float]]) -> None:
    book = _hold_through_funding(Side.BUY, 1_000.0, funding_events, MarginMode.CROSS)
    assert book.funding_total() == pytest.approx(-8.031210148, abs=5e-10)
    short = _hold_through_funding(Side.SELL, 1_000.0, funding_events, MarginMode.CROSS)
    assert book.funding_total() == -short.funding_total()
    # equity = initial + funding + unrealized (no fees, nothing realized while held)
    assert book.equity() == pytest.approx(
        10_000 + book.funding_total() + book.unrealized_pnl(), abs=1e-9
    )


def test_isolated_funding_is_booked_to_the_position_margin(
    funding_events: list[tuple[int, float, float]],
) -> None:
    book = _hold_through_funding(Side.BUY, 1_000.0, funding_events, MarginMode.ISOLATED)
    posted = 1_000.0 * funding_events[0][2] / 2  # notional / leverage at entry
    assert book.isolated_margin(XRP) == pytest.approx(posted + book.funding_total(), abs=1e-12)
