"""Ledger bookkeeping of fills, funding, margin and restore, against hand-computed numbers."""

import math

import pytest

from perps_bot.config.models import AccountConfig
from perps_bot.domain import AccountView, Fill, Liquidity, MarginMode, Side
from perps_bot.instruments import builtin_instruments
from perps_bot.ledger import (
    FillResult,
    FundingResult,
    Ledger,
    LedgerError,
    LedgerInvariantError,
)
from perps_bot.margin import maintenance_margin

BTC = "BTC-PERP"
ETH = "ETH-PERP"


def fill(side: Side, size: float, price: float, fee: float = 0.0, symbol: str = BTC) -> Fill:
    return Fill(0, symbol, side, size, price, fee, Liquidity.TAKER, "c1", "k1")


def ledger(
    mode: MarginMode = MarginMode.CROSS, balance: float = 10_000.0, leverage: float = 10.0
) -> Ledger:
    account = AccountConfig(initial_balance=balance, margin_mode=mode, default_leverage=leverage)
    return Ledger(account, debug_invariants=True)


def test_is_an_account_view() -> None:
    view: AccountView = ledger()
    assert view.position_size(BTC) == 0.0
    assert view.entry_price(BTC) == 0.0
    assert view.mark_price(BTC) == 0.0
    assert view.equity() == 10_000.0
    assert view.available_balance() == 10_000.0
    assert view.leverage(BTC) == 10.0


def test_increase_partial_close_flip_and_close() -> None:
    book = ledger()
    # buy 2 @100 and 2 @110: entry (200 + 220) / 4 = 105
    assert book.apply_fill(fill(Side.BUY, 2, 100, fee=0.1)) == FillResult(
        realized_pnl=0.0, fee=0.1, position_after=2.0, entry_after=100.0, closed_size=0.0,
        opened_size=2.0,
    )  # fmt: skip
    r = book.apply_fill(fill(Side.BUY, 2, 110, fee=0.11))
    assert (r.position_after, r.entry_after, r.realized_pnl) == (4.0, 105.0, 0.0)
    # sell 1 @120: realized 1 * (120 - 105) = 15, entry unchanged
    r = book.apply_fill(fill(Side.SELL, 1, 120, fee=0.12))
    assert (r.realized_pnl, r.position_after, r.entry_after) == (15.0, 3.0, 105.0)
    assert (r.closed_size, r.opened_size) == (1.0, 0.0)
    # sell 5 @90 flips: close 3 -> 3 * (90 - 105) = -45, open 2 short at 90
    r = book.apply_fill(fill(Side.SELL, 5, 90, fee=0.45))
    assert (r.realized_pnl, r.position_after, r.entry_after) == (-45.0, -2.0, 90.0)
    assert (r.closed_size, r.opened_size) == (3.0, 2.0)
    # buy 2 @95 closes the short: 2 * (90 - 95) = -10
    r = book.apply_fill(fill(Side.BUY, 2, 95, fee=0.19))
    assert (r.realized_pnl, r.position_after, r.entry_after) == (-10.0, 0.0, 0.0)
    assert book.symbols() == []
    assert book.realized_pnl() == -40.0  # 15 - 45 - 10; also sells 570 - buys 610
    assert book.fees_paid() == pytest.approx(0.97, abs=1e-15)
    assert book.wallet_balance() == 10_000 - 40 - 0.97
    assert book.equity() == book.wallet_balance()


def test_short_side_pnl_signs() -> None:
    book = ledger()
    book.apply_fill(fill(Side.SELL, 3, 200))
    book.update_mark(BTC, 180, 1)
    assert book.unrealized_pnl() == 60.0  # -3 * (180 - 200)
    r = book.apply_fill(fill(Side.BUY, 1, 150))
    assert r.realized_pnl == 50.0  # 1 * (200 - 150)
    assert book.position_size(BTC) == -2.0
    assert book.unrealized_pnl() == 40.0  # 2 * (200 - 180)
    assert book.equity() == 10_000 + 50 + 40


def test_decimal_sizes_close_exactly() -> None:
    # in floats 0.1 + 0.2 == 0.30000000000000004, which would leave dust after selling 0.3
    book = ledger()
    book.apply_fill(fill(Side.BUY, 0.1, 100))
    book.apply_fill(fill(Side.BUY, 0.2, 100))
    assert book.position_size(BTC) == 0.3
    r = book.apply_fill(fill(Side.SELL, 0.3, 100))
    assert r.position_after == 0.0 and r.realized_pnl == 0.0
    assert book.symbols() == []


def test_many_small_fees_sum_exactly() -> None:
    book = ledger()
    for _ in range(10):
        book.apply_fill(fill(Side.BUY, 0.001, 100, fee=0.1))
    assert book.fees_paid() == 1.0  # a float sum of ten 0.1 is 0.9999999999999999
    assert book.wallet_balance() == 9_999.0


def test_negative_fee_is_a_rebate() -> None:
    book = ledger()
    book.apply_fill(fill(Side.BUY, 1, 100, fee=-0.02))
    assert book.fees_paid() == -0.02
    assert book.wallet_balance() == 10_000.02


def test_unknown_mark_defaults_to_first_fill_price_and_mark_drives_upnl() -> None:
    book = ledger()
    book.apply_fill(fill(Side.BUY, 2, 100))
    assert book.mark_price(BTC) == 100.0
    book.update_mark(BTC, 103, 1)
    book.apply_fill(fill(Side.BUY, 2, 101))  # a fill does not move a known mark
    assert book.mark_price(BTC) == 103.0
    assert book.unrealized_pnl() == pytest.approx(4 * 103 - (200 + 202))


def test_funding_is_signed_cash_flow() -> None:
    book = ledger()
    assert book.apply_funding(1, BTC, 0.0001, 100.0) is None  # flat: nothing
    book.apply_fill(fill(Side.BUY, 2, 50_000))
    result = book.apply_funding(2, BTC, 0.0001, 50_000)
    assert result == FundingResult(payment=-10.0, position=2.0, mark=50_000, rate=0.0001)
    book.apply_fill(fill(Side.SELL, 4, 50_000))  # now short 2
    result = book.apply_funding(3, BTC, 0.0001, 50_000)
    assert result is not None and result.payment == 10.0
    assert book.funding_total() == 0.0
    result = book.apply_funding(4, BTC, -0.0003, 40_000)  # negative rate: shorts pay
    assert result is not None and result.payment == -24.0
    assert book.wallet_balance() == 10_000 - 24


def test_cross_available_balance_uses_mark_notional() -> None:
    book = ledger(balance=10_000, leverage=5)
    book.apply_fill(fill(Side.BUY, 1, 20_000))
    book.update_mark(BTC, 21_000, 1)
    # equity 10000 + 1000; initial margin 21000 / 5 = 4200
    assert book.available_balance() == pytest.approx(11_000 - 4_200)
    assert book.initial_margin() == pytest.approx(4_200)
    assert book.margin_required(BTC, -0.5, 20_000) == 2_000
    assert book.margin_required(ETH, 3, 1_000) == 600


def test_per_symbol_leverage_and_tiers() -> None:
    account = AccountConfig(
        initial_balance=10_000,
        margin_mode=MarginMode.ISOLATED,
        default_leverage=5,
        leverage={BTC: 20},
    )
    book = Ledger(account, debug_invariants=True)
    assert book.leverage(BTC) == 20 and book.leverage(ETH) == 5
    book.apply_fill(fill(Side.BUY, 1, 10_000))
    book.apply_fill(fill(Side.BUY, 1, 1_000, symbol=ETH))
    assert book.isolated_margin(BTC) == 500  # 10000 / 20
    assert book.isolated_margin(ETH) == 200  # 1000 / 5
    # BTC: Binance tiers, 0.4%: (500 - 10000) / (0.004 - 1)
    assert book.liquidation_price(BTC) == pytest.approx(9_500 / 0.996)
    # ETH: Binance ETH tiers, 0.5%: (200 - 1000) / (0.005 - 1)
    assert book.liquidation_price(ETH) == pytest.approx(800 / 0.995)
    # maintenance: 10000 * 0.004 + 1000 * 0.005
    assert book.maintenance_margin() == pytest.approx(45.0)


def test_isolated_margin_follows_fills_and_funding() -> None:
    book = ledger(MarginMode.ISOLATED, balance=5_000, leverage=10)
    book.apply_fill(fill(Side.BUY, 1, 10_000, fee=5))
    assert book.isolated_margin(BTC) == 1_000
    assert book.available_balance() == 5_000 - 5 - 1_000
    # funding is paid out of the isolated margin and moves the liquidation price
    book.apply_funding(1, BTC, 0.01, 10_000)  # -100
    assert book.isolated_margin(BTC) == 900
    assert book.liquidation_price(BTC) == pytest.approx((10_000 - 900) / 0.996)
    assert book.available_balance() == 5_000 - 5 - 100 - 900
    # closing half releases half the margin; realized PnL goes to the free wallet
    r = book.apply_fill(fill(Side.SELL, 0.5, 10_200))
    assert r.realized_pnl == 100.0
    assert book.isolated_margin(BTC) == 450
    assert book.liquidation_price(BTC) == pytest.approx((5_000 - 450) / 0.5 / 0.996)
    # adding at another price posts notional / leverage and re-averages the entry
    book.apply_fill(fill(Side.BUY, 0.5, 9_000))
    assert book.isolated_margin(BTC) == 900
    assert book.entry_price(BTC) == 9_500
    book.apply_fill(fill(Side.SELL, 1, 9_500))
    assert book.isolated_margin(BTC) == 0.0 and book.symbols() == []
    assert book.available_balance() == book.wallet_balance() == 5_000 - 5 - 100 + 100


def test_maintenance_tier_follows_the_notional_across_fills() -> None:
    """A position keeps its tier bracket across fills (and a flip reuses the position):
    adds, partial closes and flips that move the notional across Binance's BTC brackets
    (50k, 600k) still give the maintenance margin of the new notional's tier."""
    tiers = builtin_instruments()[BTC].tiers
    book = ledger(balance=1_000_000, leverage=20)
    moves = [(Side.BUY, 1), (Side.BUY, 4), (Side.SELL, 4.5), (Side.SELL, 30), (Side.BUY, 60)]
    for ts, (side, size) in enumerate(moves):
        book.apply_fill(fill(side, size, 50_000))
        for mark in (49_000.0, 51_000.0, 50_000.0):
            book.update_mark(BTC, mark, ts)
            notional = abs(book.position_size(BTC)) * mark
            assert book.maintenance_margin() == maintenance_margin(notional, tiers)


def test_cross_liquidation_price_reads_other_positions() -> None:
    book = ledger(balance=5_000)
    book.apply_fill(fill(Side.BUY, 1, 10_000))
    book.apply_fill(fill(Side.SELL, 10, 3_000, symbol=ETH))
    book.update_mark(ETH, 3_030, 1)  # ETH short loses 300
    # ETH maintenance at mark: 30300 * 0.005 = 151.5 (ETH tier 0)
    expected = (5_000 - 151.5 - 300 - 10_000) / (0.004 - 1)
    assert book.liquidation_price(BTC) == pytest.approx(expected)
    assert book.liquidation_price("XRP-PERP") is None


def test_restore_resumes_positions_and_totals() -> None:
    book = ledger(MarginMode.ISOLATED, balance=1.0, leverage=4)
    book.restore(
        5_000,
        {BTC: (0.5, 20_000), ETH: (-2, 3_000), "XRP-PERP": (0.0, 0.0)},
        realized_pnl=100,
        fees_paid=10,
        funding_total=-5,
    )
    assert book.symbols() == [BTC, ETH]
    assert (book.position_size(BTC), book.entry_price(BTC)) == (0.5, 20_000)
    assert (book.position_size(ETH), book.entry_price(ETH)) == (-2, 3_000)
    assert book.mark_price(ETH) == 3_000  # marked at entry until a mark arrives
    assert book.equity() == 5_000
    assert book.initial_balance() == 5_000 - 100 + 10 + 5
    assert book.isolated_margin(BTC) == 2_500 and book.isolated_margin(ETH) == 1_500
    r = book.apply_fill(fill(Side.SELL, 0.5, 21_000))
    assert r.realized_pnl == 500
    assert book.realized_pnl() == 600
    book.check_invariant()


def test_restore_mid_run_keeps_totals_unless_given() -> None:
    # a reconciliation adopting the venue's wallet and positions must not reset reports
    book = ledger(balance=10_000)
    book.apply_fill(fill(Side.BUY, 1, 100, fee=1))
    book.apply_fill(fill(Side.SELL, 1, 150, fee=1))
    book.apply_fill(fill(Side.BUY, 2, 100))
    book.apply_funding(1, BTC, 0.001, 100)  # -0.2
    book.restore(10_047.5, {BTC: (2.0, 101.0)})
    assert (book.realized_pnl(), book.fees_paid(), book.funding_total()) == (50, 2, -0.2)
    assert book.entry_price(BTC) == 101.0 and book.mark_price(BTC) == 100.0
    # the 0.3 the venue's wallet differs by is absorbed into the starting balance
    assert book.initial_balance() == pytest.approx(10_047.5 - 50 + 2 + 0.2)  # 10000 - 0.3
    book.apply_fill(fill(Side.SELL, 2, 102))
    assert book.realized_pnl() == 52.0
    book.check_invariant()


def test_restore_rejects_bad_state() -> None:
    book = ledger()
    with pytest.raises(LedgerError, match="restore"):
        book.restore(math.nan, {})
    with pytest.raises(LedgerError, match="BTC-PERP"):
        book.restore(1_000, {BTC: (1.0, 0.0)})


@pytest.mark.parametrize(
    "bad",
    [
        fill(Side.BUY, 0, 100),
        fill(Side.BUY, -1, 100),
        fill(Side.BUY, 1, 0),
        fill(Side.BUY, math.nan, 100),
        fill(Side.BUY, 1, math.inf),
        fill(Side.BUY, 1, 100, fee=math.nan),
    ],
)
def test_bad_fill_is_a_one_line_ledger_error(bad: Fill) -> None:
    book = ledger()
    with pytest.raises(LedgerError) as info:
        book.apply_fill(bad)
    assert "\n" not in str(info.value)
    assert book.wallet_balance() == 10_000 and book.symbols() == []


def test_bad_mark_and_funding_rejected() -> None:
    book = ledger()
    for mark in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(LedgerError, match="mark"):
            book.update_mark(BTC, mark, 1)
    with pytest.raises(LedgerError, match="funding"):
        book.apply_funding(1, BTC, math.nan, 100)


def test_check_invariant_detects_corrupted_books() -> None:
    # The only test that reaches inside: the checker must be able to fail.
    book = ledger()
    book.apply_fill(fill(Side.BUY, 1, 100))
    book.check_invariant()
    book._wallet += 1
    with pytest.raises(LedgerInvariantError, match="wallet"):
        book.check_invariant()
