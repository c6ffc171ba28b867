"""Cross margin with several positions: the bands of marks `update_mark` trusts without
summing margins (Ledger._cache_cross_bands) never change a verdict. Marks walk in small
steps near the account's liquidation, where a band a little too wide would let a mark
through that the full test liquidates."""

from dataclasses import replace

from hypothesis import event, given, settings
from hypothesis import strategies as st

from perps_bot.config.models import AccountConfig
from perps_bot.domain import Fill, Liquidity, MarginMode, Side
from perps_bot.instruments import builtin_instruments
from perps_bot.ledger import Ledger
from perps_bot.margin import maintenance_margin

Tiers = tuple[tuple[float, float, float], ...]
TIERS: Tiers = ((0.0, 0.01, 0.0), (100.0, 0.025, 1.5), (300.0, 0.05, 9.0))
SYMBOLS = ("BTC-PERP", "ETH-PERP")


#: a user's table without maintenance amounts: the margin jumps at each floor
JUMPING = ((0.0, 0.01, 0.0), (100.0, 0.025, 0.0), (300.0, 0.05, 0.0))


def _book(balance: float, tiers: Tiers = TIERS) -> Ledger:
    account = AccountConfig(
        initial_balance=balance, margin_mode=MarginMode.CROSS, default_leverage=20.0
    )
    instruments = {s: replace(i, tiers=tiers) for s, i in builtin_instruments().items()}
    return Ledger(account, instruments)


def _margin_gap(book: Ledger, symbol: str, mark: float, tiers: Tiers = TIERS) -> float:
    """Margin balance less maintenance with `symbol` at `mark`, from the public reads."""
    marks = {s: book.mark_price(s) for s in book.symbols()} | {symbol: mark}
    balance = book.wallet_balance() + sum(
        book.position_size(s) * (m - book.entry_price(s)) for s, m in marks.items()
    )
    kept = sum(maintenance_margin(abs(book.position_size(s)) * m, tiers) for s, m in marks.items())
    return balance - kept


@settings(max_examples=300, deadline=None)
@given(
    cushion=st.floats(0.2, 6.0),
    sizes=st.tuples(st.floats(0.5, 2.0), st.floats(0.5, 2.0)),
    sides=st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.sampled_from([Side.BUY, Side.SELL])),
    steps=st.lists(
        st.tuples(st.sampled_from(SYMBOLS), st.floats(-0.004, 0.004)), min_size=1, max_size=300
    ),
    adverse=st.booleans(),
)
def test_bands_never_change_a_verdict(
    cushion: float,
    sizes: tuple[float, float],
    sides: tuple[Side, Side],
    steps: list[tuple[str, float]],
    adverse: bool,
) -> None:
    """`adverse`: every step moves against its position, both positions losing at once
    (the case the bands' split of the margin is for)."""
    price = 100.0
    # a margin balance `cushion` above the maintenance at the entry price
    book = _book(cushion + sum(maintenance_margin(size * price, TIERS) for size in sizes))
    for symbol, size, side in zip(SYMBOLS, sizes, sides, strict=True):
        book.apply_fill(Fill(0, symbol, side, size, price, 0.0, Liquidity.TAKER, "c", "c"))
    marks = dict.fromkeys(SYMBOLS, price)
    checked = 0
    direction = dict(zip(SYMBOLS, (side.sign for side in sides), strict=True))
    for ts, (symbol, step) in enumerate(steps, start=1):
        if adverse:
            step = -direction[symbol] * abs(step)
        mark = marks[symbol] * (1.0 + step)
        marks[symbol] = mark
        gap = _margin_gap(book, symbol, mark)
        liquidated = bool(book.update_mark(symbol, mark, ts))
        if abs(gap) > 1e-9 * max(1.0, book.wallet_balance()):  # not within rounding
            assert liquidated == (gap <= 0), (ts, gap)
            checked += 1
        if liquidated:
            event("liquidated")
            break
    event(f"checked {min(checked // 50 * 50, 200)}+")
    assert checked or not steps


@settings(max_examples=300, deadline=None)
@given(
    cushion=st.floats(0.05, 3.0),
    below=st.floats(0.0001, 0.02),
    other=st.sampled_from([0.0, 0.5]),
    steps=st.lists(st.floats(-0.001, 0.003), min_size=1, max_size=100),
)
def test_bands_hold_on_a_table_whose_margin_jumps_at_its_floors(
    cushion: float, below: float, other: float, steps: list[float]
) -> None:
    """Tiers without maintenance amounts (the profile allows them; the liquidation price
    handles them): the maintenance margin jumps up where a rising long's notional enters
    the next tier. The bands were sized for a continuous margin, so a mark past the floor
    was trusted as safe though the account was below maintenance there (a direct mark
    liquidated it). A long opened `below` under the 100 floor, alone or with another."""
    price = 100.0
    sizes = [1.0 - below] + ([other] if other else [])
    book = _book(cushion + sum(maintenance_margin(s * price, JUMPING) for s in sizes), JUMPING)
    held = SYMBOLS[: len(sizes)]
    for symbol, size in zip(held, sizes, strict=True):
        book.apply_fill(Fill(0, symbol, Side.BUY, size, price, 0.0, Liquidity.TAKER, "c", "c"))
    mark = price
    for ts, step in enumerate(steps, start=1):
        mark *= 1.0 + step
        gap = _margin_gap(book, held[0], mark, JUMPING)
        liquidated = bool(book.update_mark(held[0], mark, ts))
        if abs(gap) > 1e-9 * max(1.0, book.wallet_balance()):
            assert liquidated == (gap <= 0), (ts, mark, gap)
        if liquidated:
            event("liquidated")
            break
