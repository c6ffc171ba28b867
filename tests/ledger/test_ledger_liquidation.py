"""Liquidation: a mark crossing the liquidation price closes the position at that price."""

from dataclasses import replace

import pytest

from perps_bot.config.models import AccountConfig
from perps_bot.domain import Fill, Liquidity, MarginMode, Side
from perps_bot.instruments import builtin_instruments
from perps_bot.ledger import Ledger

BTC = "BTC-PERP"
ETH = "ETH-PERP"
LONG_LP = 9_000 / 0.996  # 1 BTC long at 10000, 10x, 0.4%: (1000 - 10000) / (0.004 - 1)
SHORT_LP = 11_000 / 1.004  # 1 BTC short at 10000, 10x: (1000 + 10000) / (0.004 + 1)


def fill(side: Side, size: float, price: float, symbol: str = BTC) -> Fill:
    return Fill(0, symbol, side, size, price, 0.0, Liquidity.TAKER, "c", "c")


def ledger(
    mode: MarginMode, balance: float = 1_000.0, capped: bool = False, leverage: float = 10.0
) -> Ledger:
    account = AccountConfig(
        initial_balance=balance,
        margin_mode=mode,
        default_leverage=leverage,
        liquidation_fee_bps=50,
        liquidation_fee_capped=capped,
    )
    return Ledger(account, debug_invariants=True)


MODES = [MarginMode.CROSS, MarginMode.ISOLATED]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("side", "lp", "safe", "crossing"),
    [(Side.BUY, LONG_LP, 9_036.2, 9_036.1), (Side.SELL, SHORT_LP, 10_956.1, 10_956.2)],
)
def test_crossing_closes_at_liquidation_price_with_fee(
    mode: MarginMode, side: Side, lp: float, safe: float, crossing: float
) -> None:
    # With one position and a 1000 wallet, cross and isolated (margin 10000/10) agree.
    book = ledger(mode)
    book.apply_fill(fill(side, 1, 10_000))
    assert book.liquidation_price(BTC) == pytest.approx(lp, rel=1e-12)
    assert not book.update_mark(BTC, safe, 1)
    assert book.position_size(BTC) == side.sign
    [(liq, result)] = book.update_mark(BTC, crossing, 2)
    assert liq.price == pytest.approx(lp, rel=1e-12)
    assert liq.side is side.opposite and liq.size == 1.0
    assert liq.is_liquidation and liq.reason == "liquidation"
    assert liq.liquidity is Liquidity.TAKER
    assert liq.client_id == liq.correlation_id == "liq-BTC-PERP-1"
    assert liq.ts == 2
    assert liq.fee == pytest.approx(lp * 0.005)
    assert result.fee == liq.fee
    assert result.realized_pnl == pytest.approx(side.sign * (lp - 10_000))
    assert (result.position_after, result.closed_size) == (0.0, 1.0)
    assert book.symbols() == [] and book.position_size(BTC) == 0.0
    # what is left is exactly the maintenance margin at LP, minus the fee
    assert book.wallet_balance() == pytest.approx(0.004 * lp - 0.005 * lp, abs=1e-9)
    assert book.fees_paid() == pytest.approx(0.005 * lp)


@pytest.mark.parametrize("mode", MODES)
def test_gap_through_lp_still_closes_at_lp(mode: MarginMode) -> None:
    book = ledger(mode)
    book.apply_fill(fill(Side.BUY, 1, 10_000))
    [(liq, _)] = book.update_mark(BTC, 8_000, 1)
    assert liq.price == pytest.approx(LONG_LP)
    assert not book.update_mark(BTC, 7_000, 2)  # nothing left to liquidate


@pytest.mark.parametrize("mode", MODES)
def test_mark_exactly_at_lp_liquidates(mode: MarginMode) -> None:
    book = ledger(mode)
    book.apply_fill(fill(Side.SELL, 1, 10_000))
    lp = book.liquidation_price(BTC)
    assert lp is not None
    assert len(book.update_mark(BTC, lp, 1)) == 1


def test_isolated_liquidation_loses_only_that_margin_and_fee() -> None:
    book = ledger(MarginMode.ISOLATED, balance=5_000)
    book.apply_fill(fill(Side.BUY, 1, 10_000))  # margin 1000
    book.apply_fill(fill(Side.BUY, 1, 1_000, symbol=ETH))  # margin 100, untouched
    book.update_mark(BTC, 9_000, 1)
    maintenance = 0.004 * LONG_LP
    fee = 0.005 * LONG_LP
    assert book.wallet_balance() == pytest.approx(5_000 - 1_000 + maintenance - fee)
    assert book.symbols() == [ETH] and book.isolated_margin(ETH) == 100


def test_isolated_fee_cap_keeps_the_loss_within_the_margin() -> None:
    book = ledger(MarginMode.ISOLATED, balance=5_000, capped=True)
    book.apply_fill(fill(Side.BUY, 1, 10_000))
    [(liq, _)] = book.update_mark(BTC, 9_000, 1)
    # 50 bps of notional > 0.4% maintenance left: the fee takes what is left, no more
    assert liq.fee == pytest.approx(0.004 * LONG_LP)
    assert book.wallet_balance() == pytest.approx(4_000)


def test_funding_past_the_mark_liquidates_at_mark_on_next_update() -> None:
    book = ledger(MarginMode.ISOLATED, balance=5_000)
    book.apply_fill(fill(Side.BUY, 1, 10_000))
    book.apply_funding(1, BTC, 0.097, 10_000)  # pays 970: margin 30
    lp = book.liquidation_price(BTC)
    assert lp == pytest.approx(9_970 / 0.996)  # 10010.04, above the mark
    [(liq, result)] = book.update_mark(BTC, 9_999, 2)
    # the mark never crossed the new LP (it was already past it): close at the mark
    assert liq.price == 9_999
    assert result.realized_pnl == pytest.approx(-1)


def test_position_opened_beyond_its_lp_closes_at_mark() -> None:
    # 400x isolated margin (0.25%) is below the 0.4% maintenance margin
    book = ledger(MarginMode.ISOLATED, balance=5_000, leverage=400)
    book.apply_fill(fill(Side.BUY, 1, 10_000))
    lp = book.liquidation_price(BTC)
    assert lp is not None and lp > 10_000
    [(liq, result)] = book.update_mark(BTC, 10_000, 1)
    assert liq.price == 10_000 and result.realized_pnl == 0.0  # no windfall from LP > entry


def test_isolated_ledger_uses_the_tier_at_the_liquidation_price() -> None:
    book = ledger(MarginMode.ISOLATED, balance=10_000)
    book.apply_fill(fill(Side.BUY, 1, 52_000))  # entry notional in the 50k tier
    # margin 5200; the LP falls in the 0 tier: (5200 - 52000) / (0.004 - 1)
    assert book.liquidation_price(BTC) == pytest.approx(46_800 / 0.996)


def _two_position_cross(capped: bool = False) -> Ledger:
    book = ledger(MarginMode.CROSS, balance=2_000, capped=capped)
    book.apply_fill(fill(Side.BUY, 1, 10_000))  # maintenance 40 at 10000
    book.apply_fill(fill(Side.SELL, 10, 3_000, symbol=ETH))  # maintenance 0.5% of notional
    return book


# ETH short LP with BTC at 10000: (2000 - 40 + 0 + 30000) / (10 * 0.005 + 10)
ETH_LP = 31_960 / 10.05


def test_cross_liquidates_whole_account_trigger_at_lp_others_at_mark() -> None:
    book = _two_position_cross()
    assert book.liquidation_price(ETH) == pytest.approx(ETH_LP)
    assert not book.update_mark(ETH, 3_180, 1)  # just below 3180.0995
    liquidations = book.update_mark(ETH, 3_300, 2)
    assert [(f.symbol, f.side, f.client_id) for f, _ in liquidations] == [
        (ETH, Side.BUY, "liq-ETH-PERP-1"),
        (BTC, Side.SELL, "liq-BTC-PERP-2"),
    ]
    (eth, eth_result), (btc, btc_result) = liquidations
    assert eth.price == pytest.approx(ETH_LP) and btc.price == 10_000
    assert eth_result.realized_pnl == pytest.approx(-10 * (ETH_LP - 3_000))
    assert btc_result.realized_pnl == 0.0
    assert book.symbols() == []
    # margin balance at LP == total maintenance; closing leaves it, minus the fees
    maintenance = 40 + 10 * ETH_LP * 0.005
    fees = 10 * ETH_LP * 0.005 + 10_000 * 0.005
    assert book.wallet_balance() == pytest.approx(maintenance - fees)


def test_cross_fee_cap_stops_at_zero() -> None:
    book = _two_position_cross(capped=True)
    (eth, _), (btc, _) = book.update_mark(ETH, 3_300, 1)
    assert eth.fee == pytest.approx(10 * ETH_LP * 0.005)
    assert btc.fee == pytest.approx(40)  # only the 40 left, not 50
    assert book.wallet_balance() == pytest.approx(0, abs=1e-9)


def test_cross_losses_on_one_symbol_bring_the_other_closer() -> None:
    book = _two_position_cross()
    before = book.liquidation_price(BTC)
    book.update_mark(ETH, 3_100, 1)  # ETH short loses 1000 of the shared wallet
    after = book.liquidation_price(BTC)
    assert before is not None and after is not None and after > before
    # BTC's own mark crossing its (new) cross LP liquidates the account
    liquidations = book.update_mark(BTC, after - 1, 2)
    assert liquidations[0][0].symbol == BTC
    assert liquidations[0][0].price == pytest.approx(after)


def test_isolated_long_below_a_tier_whose_margin_jumps_is_not_liquidated_while_safe() -> None:
    """A table without maintenance amounts (allowed): 1% below notional 100, 2.5% from it.
    An isolated 50x long of 0.9999 at 100 has margin 2.0 and maintenance 1.0: safe. Its
    liquidation price is 100.51 (a rise into the 2.5% tier is unsafe up to there), above
    the mark, and the position was liquidated at once at 100; it now closes only where
    its margin is below maintenance: on the rise into the next tier, or on a fall."""
    jumping = ((0.0, 0.01, 0.0), (100.0, 0.025, 0.0), (300.0, 0.05, 0.0))
    instruments = {s: replace(i, tiers=jumping) for s, i in builtin_instruments().items()}
    account = AccountConfig(
        initial_balance=1_000.0, margin_mode=MarginMode.ISOLATED, default_leverage=50.0
    )
    for marks, liquidated_at in (([100.0, 99.5, 99.2], None), ([100.0, 100.2], 100.2)):
        book = Ledger(account, instruments, debug_invariants=True)
        book.apply_fill(fill(Side.BUY, 0.9999, 100.0))
        assert book.liquidation_price(BTC) == pytest.approx(97.9902 / (0.9999 * 0.975))
        closes = [(mark, book.update_mark(BTC, mark, ts)) for ts, mark in enumerate(marks, 1)]
        assert [mark for mark, done in closes if done] == (
            [] if liquidated_at is None else [liquidated_at]
        )
    book = Ledger(account, instruments, debug_invariants=True)
    book.apply_fill(fill(Side.BUY, 0.9999, 100.0))
    # the fall: margin 1.9998 + 0.9999 * (P - 100) == 0.01 * 0.9999 * P at P = 98.99
    assert not book.update_mark(BTC, 99.0, 1)
    [(liq, _)] = book.update_mark(BTC, 98.98, 2)
    assert liq.price == 98.98


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_liquidates_at_is_update_marks_verdict_and_records_nothing(
    mode: MarginMode, side: Side
) -> None:
    """`liquidates_at` (a candle's mark extremes checked point by point) says what
    `update_mark` would do at that mark, and leaves the marks as they were."""
    book = ledger(mode)
    book.apply_fill(fill(side, 1, 10_000))
    book.apply_fill(fill(Side.BUY, 2, 1_000, ETH))  # cross: the other position counts
    book.update_mark(ETH, 990.0, 1)
    for mark in (9_000.0, 9_030.0, 9_036.0, 9_040.0, 10_000.0, 10_950.0, 10_960.0, 11_100.0):
        verdict = book.liquidates_at(BTC, mark)
        assert book.mark_price(BTC) == 10_000.0 and book.position_size(BTC) == side.sign
        other = ledger(mode)
        other.apply_fill(fill(side, 1, 10_000))
        other.apply_fill(fill(Side.BUY, 2, 1_000, ETH))
        other.update_mark(ETH, 990.0, 1)
        assert verdict == bool(other.update_mark(BTC, mark, 2)), mark
    assert not book.liquidates_at(ETH + "-NOT-HELD", 1.0)
