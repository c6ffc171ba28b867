"""Property tests: random fill / funding / mark sequences against exact reference models.

The reference models use fractions.Fraction built from the decimal text of each float
(what the ledger books), so they are exact and share no code with the ledger.
"""

from dataclasses import replace
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from perps_bot.config.models import AccountConfig
from perps_bot.domain import Fill, Liquidity, MarginMode, Side
from perps_bot.instruments import builtin_instruments
from perps_bot.ledger import FillResult, FundingResult, Ledger
from perps_bot.margin import maintenance_margin

SYMBOLS = ["BTC-PERP", "ETH-PERP", "XRP-PERP"]

symbols = st.sampled_from(SYMBOLS)
sides = st.sampled_from([Side.BUY, Side.SELL])
sizes = st.integers(1, 5_000).map(lambda i: i / 1_000)
prices = st.integers(5_000, 15_000).map(lambda i: i / 100)  # 50.00 .. 150.00
fees = st.integers(-50, 500).map(lambda i: i / 100)
rates = st.integers(-300, 300).map(lambda i: i / 100_000)

Op = tuple[Any, ...]
fill_ops = st.tuples(st.just("fill"), symbols, sides, sizes, prices, fees)
funding_ops = st.tuples(st.just("funding"), symbols, rates, prices)
mark_ops = st.tuples(st.just("mark"), symbols, prices)
any_ops = st.lists(st.one_of(fill_ops, funding_ops, mark_ops), max_size=40)


def frac(x: float) -> Fraction:
    return Fraction(repr(x))


def make(mode: MarginMode, balance: float, leverage: float, debug: bool = True) -> Ledger:
    account = AccountConfig(initial_balance=balance, margin_mode=mode, default_leverage=leverage)
    return Ledger(account, debug_invariants=debug)


class Run:
    """Applies ops to a ledger and keeps an exact, independent record of the cash."""

    def __init__(self, book: Ledger) -> None:
        self.book = book
        self.fills: list[tuple[Fill, FillResult]] = []
        self.fundings: list[FundingResult] = []
        self.liquidations = 0
        self.position: dict[str, Fraction] = {}
        self.cash = Fraction(0)  # trade cash: sells +, buys -
        self.fees = Fraction(0)
        self.funding = Fraction(0)

    def _record(self, fill: Fill, result: FillResult) -> None:
        self.fills.append((fill, result))
        qty = frac(fill.size) * fill.side.sign
        self.position[fill.symbol] = self.position.get(fill.symbol, Fraction(0)) + qty
        self.cash -= qty * frac(fill.price)
        self.fees += frac(fill.fee)

    def apply(self, op: Op) -> None:
        kind = op[0]
        if kind == "fill":
            _, symbol, side, size, price, fee = op
            f = Fill(0, str(symbol), Side(side), float(size), float(price), float(fee),
                     Liquidity.TAKER, "c", "c")  # fmt: skip
            self._record(f, self.book.apply_fill(f))
        elif kind == "funding":
            _, symbol, rate, mark = op
            result = self.book.apply_funding(0, str(symbol), float(rate), float(mark))
            held = self.position.get(str(symbol), Fraction(0))
            assert (result is None) == (held == 0)
            if result is not None:
                self.fundings.append(result)
                self.funding += -held * frac(float(mark)) * frac(float(rate))
        else:
            _, symbol, mark = op
            for f, r in self.book.update_mark(str(symbol), float(mark), 0):
                assert f.is_liquidation
                self.liquidations += 1
                self._record(f, r)

    def close_all(self) -> None:
        for symbol in self.book.symbols():
            size = self.book.position_size(symbol)
            side = Side.SELL if size > 0 else Side.BUY
            f = Fill(0, symbol, side, abs(size), self.book.mark_price(symbol), 0.0,
                     Liquidity.TAKER, "close", "close")  # fmt: skip
            self._record(f, self.book.apply_fill(f))


modes = st.sampled_from([MarginMode.CROSS, MarginMode.ISOLATED])
leverages = st.sampled_from([1.0, 3.0, 10.0, 50.0])
balances = st.sampled_from([10.0, 1_000.0, 100_000.0])


@settings(max_examples=150, deadline=None)
@given(ops=any_ops, mode=modes, leverage=leverages, balance=balances)
def test_invariant_holds_and_flat_equity_is_net_pnl(
    ops: list[Op], mode: MarginMode, leverage: float, balance: float
) -> None:
    run = Run(make(mode, balance, leverage))  # debug: invariant checked after every call
    for op in ops:
        run.apply(op)
    check_books_and_close(run, balance)


# Small wallets, high leverage and mostly mark moves: liquidations on most examples.
pressure_ops = st.lists(
    st.one_of(fill_ops, funding_ops, mark_ops, mark_ops, mark_ops), min_size=5, max_size=40
)


@settings(max_examples=150, deadline=None)
@given(ops=pressure_ops, mode=modes, leverage=st.sampled_from([20.0, 50.0, 100.0]))
def test_invariant_holds_through_liquidations(
    ops: list[Op], mode: MarginMode, leverage: float
) -> None:
    run = Run(make(mode, 10.0, leverage))
    for op in ops:
        run.apply(op)
    event(f"{mode.value} liquidated: {run.liquidations > 0}")
    check_books_and_close(run, 10.0)


def check_books_and_close(run: Run, balance: float) -> None:
    """Invariant, exact positions, then flatten: equity == initial + exact net PnL."""
    book = run.book
    book.check_invariant()
    scale = balance + sum(abs(f.size * f.price) for f, _ in run.fills)
    assert book.equity() == pytest.approx(
        balance + book.realized_pnl() - book.fees_paid() + book.funding_total()
        + book.unrealized_pnl(), abs=1e-9 * scale
    )  # fmt: skip
    # sizes are exact: the ledger's positions equal the exact sum of fills
    for symbol in SYMBOLS:
        assert book.position_size(symbol) == float(run.position.get(symbol, Fraction(0)))
    run.close_all()
    assert book.symbols() == [] and book.unrealized_pnl() == 0.0
    net = run.cash - run.fees + run.funding  # realized price PnL of a flat book == trade cash
    assert book.realized_pnl() == float(run.cash)
    assert book.fees_paid() == float(run.fees)
    assert book.funding_total() == float(run.funding)
    assert book.equity() == book.wallet_balance() == float(frac(balance) + net)
    # and the results the ledger returned add up to the same (float sums: approx)
    from_results = sum(r.realized_pnl - r.fee for _, r in run.fills) + sum(
        r.payment for r in run.fundings
    )
    assert book.equity() - balance == pytest.approx(from_results, abs=1e-9 * scale)


@settings(max_examples=150, deadline=None)
@given(
    trades=st.lists(st.tuples(sides, sizes), min_size=1, max_size=30),
    price=prices,
    mode=modes,
)
def test_trading_at_one_price_without_fees_changes_nothing(
    trades: list[tuple[Side, float]], price: float, mode: MarginMode
) -> None:
    book = make(mode, 1e12, 1.0)
    for side, size in trades:
        result = book.apply_fill(
            Fill(0, "BTC-PERP", side, size, price, 0.0, Liquidity.MAKER, "c", "c")
        )
        assert result.realized_pnl == 0.0
        assert result.entry_after in (0.0, price)
    assert book.realized_pnl() == 0.0 and book.unrealized_pnl() == 0.0
    assert book.wallet_balance() == book.equity() == 1e12


@settings(max_examples=150, deadline=None)
@given(opens=st.lists(st.tuples(sizes, prices), min_size=1, max_size=20), short=st.booleans())
def test_closing_at_the_average_entry_realizes_nothing(
    opens: list[tuple[float, float]], short: bool
) -> None:
    book = make(MarginMode.CROSS, 1e12, 1.0)
    side = Side.SELL if short else Side.BUY
    for size, price in opens:
        book.apply_fill(Fill(0, "ETH-PERP", side, size, price, 0.0, Liquidity.MAKER, "c", "c"))
    size, entry = abs(book.position_size("ETH-PERP")), book.entry_price("ETH-PERP")
    exact_entry = sum(frac(q) * frac(p) for q, p in opens) / sum(frac(q) for q, _ in opens)
    assert entry == pytest.approx(float(exact_entry), rel=1e-15)
    result = book.apply_fill(
        Fill(0, "ETH-PERP", side.opposite, size, entry, 0.0, Liquidity.MAKER, "c", "c")
    )
    notional = size * entry
    assert abs(result.realized_pnl) <= 1e-12 * notional  # only the rounding of `entry`
    assert book.wallet_balance() == pytest.approx(1e12, abs=1e-12 * notional)


def _mirror(op: Op, flip_prices: bool) -> Op:
    """Swap buy and sell; optionally reflect every price around 100 (moves negated)."""

    def reflect(price: Any) -> float:
        return (20_000 - round(float(price) * 100)) / 100 if flip_prices else float(price)

    if op[0] == "fill":
        return ("fill", op[1], Side(op[2]).opposite, op[3], reflect(op[4]), op[5])
    if op[0] == "funding":
        return ("funding", op[1], op[2], reflect(op[3]))
    return ("mark", op[1], reflect(op[2]))


no_fee_fills = st.tuples(st.just("fill"), symbols, sides, sizes, prices, st.just(0.0))


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(st.one_of(no_fee_fills, funding_ops, mark_ops), max_size=40))
def test_long_and_short_are_mirror_images(ops: list[Op]) -> None:
    # Same prices, opposite sides: every PnL and funding flow is negated.
    original = Run(make(MarginMode.CROSS, 1e12, 1.0))
    mirrored = Run(make(MarginMode.CROSS, 1e12, 1.0))
    for op in ops:
        original.apply(op)
        mirrored.apply(_mirror(op, flip_prices=False))
    assert original.liquidations == mirrored.liquidations == 0
    a, b = original.book, mirrored.book
    assert a.realized_pnl() == -b.realized_pnl()
    assert a.funding_total() == -b.funding_total()
    assert a.unrealized_pnl() == -b.unrealized_pnl()
    for symbol in SYMBOLS:
        assert a.position_size(symbol) == -b.position_size(symbol)
        assert a.entry_price(symbol) == b.entry_price(symbol)


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(st.one_of(no_fee_fills, mark_ops), max_size=40))
def test_mirrored_sides_and_price_moves_give_the_same_pnl(ops: list[Op]) -> None:
    # A long through a rise earns what a short through the mirrored fall earns.
    original = Run(make(MarginMode.CROSS, 1e12, 1.0))
    mirrored = Run(make(MarginMode.CROSS, 1e12, 1.0))
    for op in ops:
        original.apply(op)
        mirrored.apply(_mirror(op, flip_prices=True))
    a, b = original.book, mirrored.book
    assert a.realized_pnl() == pytest.approx(b.realized_pnl(), rel=1e-12, abs=1e-12)
    assert a.unrealized_pnl() == pytest.approx(b.unrealized_pnl(), abs=1e-6)
    assert a.equity() == pytest.approx(b.equity(), rel=1e-15)


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(fill_ops, max_size=40))
def test_matches_average_cost_reference_model(ops: list[Op]) -> None:
    """Textbook average-cost accounting in exact fractions, one symbol at a time."""
    book = make(MarginMode.CROSS, 1e12, 1.0)
    size: dict[str, Fraction] = {}
    cost: dict[str, Fraction] = {}
    realized = Fraction(0)
    for op in ops:
        _, symbol, side, qty_f, price_f, fee = op
        sym, qty, price = str(symbol), frac(float(qty_f)), frac(float(price_f))
        result = book.apply_fill(Fill(0, sym, Side(side), float(qty_f), float(price_f),
                                      float(fee), Liquidity.TAKER, "c", "c"))  # fmt: skip
        held, basis = size.get(sym, Fraction(0)), cost.get(sym, Fraction(0))
        direction = Side(side).sign
        closed = gain = Fraction(0)
        if held * direction < 0:  # reduces: realize against the average entry
            closed = min(qty, abs(held))
            entry = basis / abs(held)
            gain = closed * (price - entry) * (1 if held > 0 else -1)
            realized += gain
            held += direction * closed
            basis = entry * abs(held)
            qty -= closed
        if qty > 0:
            held += direction * qty
            basis += qty * price
        size[sym], cost[sym] = held, basis
        assert book.position_size(sym) == float(held)
        expected_entry = float(basis / abs(held)) if held else 0.0
        assert book.entry_price(sym) == pytest.approx(expected_entry, rel=1e-15)
        # what the fill reports: the sizes and the position exactly, as floats of the truth
        assert (result.closed_size, result.opened_size) == (float(closed), float(qty))
        assert (result.position_after, result.fee) == (float(held), float(fee))
        assert result.entry_after == book.entry_price(sym)
        assert result.realized_pnl == pytest.approx(float(gain), rel=1e-15, abs=1e-12)
        assert book.realized_pnl() == pytest.approx(float(realized), rel=1e-15, abs=1e-12)
    assert book.realized_pnl() == pytest.approx(float(realized), rel=1e-15, abs=1e-12)
    book.check_invariant()


@settings(max_examples=150, deadline=None)
@given(
    side=sides,
    size=sizes,
    entry=prices,
    leverage=st.sampled_from([5.0, 10.0, 25.0, 50.0]),
    path=st.lists(prices, min_size=1, max_size=30),
)
def test_isolated_liquidation_leaves_exactly_maintenance_margin(
    side: Side, size: float, entry: float, leverage: float, path: list[float]
) -> None:
    book = make(MarginMode.ISOLATED, 1e9, leverage)
    book.apply_fill(Fill(0, "ETH-PERP", side, size, entry, 0.0, Liquidity.TAKER, "c", "c"))
    lp = book.liquidation_price("ETH-PERP")
    margin = book.isolated_margin("ETH-PERP")
    assert lp is not None
    for mark in path:
        liquidations = book.update_mark("ETH-PERP", mark, 0)
        crossed = mark <= lp if side is Side.BUY else mark >= lp
        assert len(liquidations) == int(crossed)
        if crossed:
            [(f, result)] = liquidations
            assert f.price == lp
            # the margin left at LP is the maintenance margin (Binance ETH tiers)
            left = margin + result.realized_pnl
            expected = maintenance_margin(size * lp, builtin_instruments()["ETH-PERP"].tiers)
            assert left == pytest.approx(expected, abs=1e-9 * size * entry)
            assert f.fee == pytest.approx(size * lp * 0.005)
            break
    else:
        assert book.position_size("ETH-PERP") == size * side.sign


# Small, continuous tiers so that notionals of a few hundred cross tier brackets.
TIGHT_TIERS = [(0.0, 0.01, 0.0), (100.0, 0.025, 1.5), (300.0, 0.05, 9.0)]


@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(st.one_of(fill_ops, funding_ops, mark_ops, mark_ops), max_size=60),
    balance=st.sampled_from([15.0, 40.0, 200.0]),
)
def test_cross_liquidates_exactly_when_margin_balance_reaches_maintenance(
    ops: list[Op], balance: float
) -> None:
    """Whatever the ledger caches between marks, a mark update liquidates the cross
    account if and only if wallet + unrealized PnL at the new mark is at or below the
    total maintenance margin (recomputed here from the public reads and the tiers)."""
    account = AccountConfig(
        initial_balance=balance, margin_mode=MarginMode.CROSS, default_leverage=20.0
    )
    tight = {  # every symbol on the tight tiers
        s: replace(i, tiers=tuple(TIGHT_TIERS)) for s, i in builtin_instruments().items()
    }
    book = Ledger(account, tight)
    run = Run(book)
    checked = 0
    for op in ops:
        if op[0] != "mark" or book.position_size(str(op[1])) == 0:
            run.apply(op)
            continue
        _, symbol, mark = op
        marks = {s: book.mark_price(s) for s in book.symbols()} | {symbol: float(mark)}
        margin_balance = book.wallet_balance() + sum(
            book.position_size(s) * (m - book.entry_price(s)) for s, m in marks.items()
        )
        maintenance = sum(
            maintenance_margin(abs(book.position_size(s)) * m, TIGHT_TIERS)
            for s, m in marks.items()
        )
        liquidations = book.update_mark(symbol, float(mark), 0)
        for fill, result in liquidations:
            run._record(fill, result)
        liquidated = bool(liquidations)
        gap = margin_balance - maintenance
        if abs(gap) > 1e-9 * max(1.0, abs(margin_balance)):  # not within rounding
            assert liquidated == (gap <= 0)
            checked += 1
    event(f"checked marks: {min(checked, 5)}+")
