"""Round trips (trades) rebuilt from the stored fills.

A trade is a position opened from flat and brought back to flat. A fill that
flips the position closes one trade and opens the next at the same fill; its
size and fee are split between the two in proportion to the size closed and
opened. Gross PnL is the sum of the ledger's own `realized_pnl` over the trade's
fills (the opening part of a flip realizes nothing), so a report never
re-derives accounting the ledger already did.

Floats, not Decimal: these are report statistics over ledger outputs; the ledger
is where money is exact.

The position before a fill is taken as `position_after - signed size`, so a run
that resumed with a position already open is read correctly: fills that only
reduce such a carried-in position are not part of any round trip of this run.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence

from perps_bot.metrics.trade_funding import FundingIndex
from perps_bot.metrics.trade_records import OpenTrade, Trade
from perps_bot.storage import (
    ExcursionRecord,
    ExcursionRow,
    FillRecord,
    FillRow,
    FundingRecord,
    RunStore,
)

# Relative tolerance under which a position counts as flat (float sums of sizes).
_FLAT_REL = 1e-9


class RoundTripBuilder:
    """Fills, in order, to round trips one fill at a time. The report replays the stored
    fills through it and the run log's `TRADE CLOSED` lines come from the same object
    fed live, so a logged trade and a trades.csv row cannot disagree."""

    __slots__ = ("open",)

    def __init__(self) -> None:
        self.open: dict[str, OpenTrade] = {}

    def add_fill(
        self,
        symbol: str,
        buy: bool,
        size: float,
        price: float,
        fee: float,
        realized: float,
        position_after: float,
        ts: int,
        stop_price: float | None,
    ) -> OpenTrade | None:
        """Book one fill; return the trade it closed (flat or flipped), if any."""
        signed = size if buy else -size
        after = position_after
        before = after - signed
        abs_before = abs(before)
        abs_after = abs(after)
        tol = _FLAT_REL * max(abs_before, abs_after, size)
        direction = 1 if buy else -1
        if abs_before <= tol:
            self.open[symbol] = _open(symbol, direction, ts, stop_price, size, price, fee, after)
            return None
        trade = self.open.get(symbol)
        if (signed > 0) == (before > 0):
            if trade is not None:
                trade.add_entry(size, price, fee, after)
            return None
        closing = abs_before if abs_before < size else size  # min(size, abs_before), inlined
        flips = abs_after > tol and (after > 0) != (before > 0)
        share = closing / size if size > 0 else 1.0
        closed = None
        # trade is None: a position carried in from before the run (resumed run); the
        # part that reduces it belongs to no round trip of this run.
        if trade is not None:
            trade.add_exit(closing, price, fee * share, realized)
            if flips or abs_after <= tol:
                closed = trade
                del self.open[symbol]
        if flips:
            self.open[symbol] = _open(
                symbol, direction, ts, stop_price, size - closing, price, fee * (1 - share), after
            )
        return closed

    def add_funding(self, symbol: str, payment: float) -> None:
        trade = self.open.get(symbol)
        if trade is not None:
            trade.funding += payment


class _ExcursionIndex:
    """Excursions matched to trades by (symbol, open_ts, close_ts), else (symbol, close_ts):
    the first row not yet taken, in store order, with the exact key, else with the close.

    Trades close in the order their excursions were stored (close time), so the first
    row not taken is nearly always the exact match: then it is taken without an index.
    The two dicts are built only when it is not (a tie or a missing row)."""

    def __init__(self, rows: Sequence[ExcursionRow]) -> None:
        self._rows = rows
        self._next = 0  # every row before it is taken
        self._taken: set[int] = set()  # rows at or after `_next` taken through the dicts
        self._exact: dict[tuple[str, int, int], list[int]] | None = None
        self._by_close: dict[tuple[str, int], list[int]] = {}

    def take(self, symbol: str, open_ts: int, close_ts: int) -> ExcursionRow | None:
        i = self._next
        while i in self._taken:
            self._taken.discard(i)
            i += 1
        self._next = i
        if i < len(self._rows):
            row = self._rows[i]
            if row[2] == close_ts and row[1] == open_ts and row[0] == symbol:
                self._next = i + 1
                return row
        return self._search(symbol, open_ts, close_ts)

    def _search(self, symbol: str, open_ts: int, close_ts: int) -> ExcursionRow | None:
        if self._exact is None:
            self._exact = defaultdict(list)
            self._by_close = defaultdict(list)
            for i, (row_symbol, row_open, row_close, _, _) in enumerate(self._rows):
                self._exact[(row_symbol, row_open, row_close)].append(i)
                self._by_close[(row_symbol, row_close)].append(i)
        for candidates in (
            self._exact.get((symbol, open_ts, close_ts), []),
            self._by_close.get((symbol, close_ts), []),
        ):
            for i in candidates:
                if i >= self._next and i not in self._taken:
                    self._taken.add(i)
                    return self._rows[i]
        return None


def round_trips(
    fills: Sequence[FillRecord],
    funding: Iterable[FundingRecord] = (),
    excursions: Iterable[ExcursionRecord] = (),
    builder: RoundTripBuilder | None = None,
) -> list[Trade]:
    """Closed round trips from fills in `seq` order. Trades still open at the end are
    not trades; they stay in `builder.open` (pass a builder to read them)."""
    rows: list[FillRow] = [
        (
            f.symbol,
            f.side,
            f.size,
            f.price,
            f.fee,
            f.realized_pnl,
            f.position_after,
            f.ts,
            f.stop_price,
            f.reason,
            f.is_liquidation,
        )
        for f in sorted(fills, key=lambda f: f.seq)
    ]
    excursion_rows = [(e.symbol, e.open_ts, e.close_ts, e.mae, e.mfe) for e in excursions]
    return round_trips_from_rows(rows, funding, excursion_rows, builder)


def stored_trades(
    store: RunStore, run_id: str, builder: RoundTripBuilder | None = None
) -> list[Trade]:
    """The closed round trips of a stored run (the report's, the API's, a comparison's),
    read as plain rows (`round_trips_from_rows`)."""
    return round_trips_from_rows(
        store.fill_rows(run_id), store.funding(run_id), store.excursion_rows(run_id), builder
    )


def round_trips_from_rows(
    fills: Iterable[FillRow],
    funding: Iterable[FundingRecord] = (),
    excursions: Sequence[ExcursionRow] = (),
    builder: RoundTripBuilder | None = None,
) -> list[Trade]:
    """`round_trips` of the store's rows as they come (`RunStore.fill_rows`, in `seq`
    order, and `RunStore.excursion_rows`): the report's path, with no record per row."""
    funding_index = FundingIndex(funding)
    excursion_index = _ExcursionIndex(excursions)
    add_fill = (builder if builder is not None else RoundTripBuilder()).add_fill
    trades: list[Trade] = []
    last_ts: dict[str, int] = {}  # per symbol: the time of its last fill
    for symbol, side, size, price, fee, realized, after, ts, stop, reason, liq in fills:
        if last_ts.get(symbol) != ts:  # the first fill of this time: the position before
            last_ts[symbol] = ts
            funding_index.fills_at(symbol, ts, after - size if side == "buy" else after + size)
        trade = add_fill(symbol, side == "buy", size, price, fee, realized, after, ts, stop)
        if trade is not None:
            paid = funding_index.between(symbol, trade.open_ts, ts)
            excursion = excursion_index.take(symbol, trade.open_ts, ts)
            trades.append(_close(len(trades) + 1, trade, ts, reason, liq, paid, excursion))
    return trades


def _open(
    symbol: str,
    direction: int,
    ts: int,
    stop_price: float | None,
    qty: float,
    price: float,
    fee: float,
    position_after: float,
) -> OpenTrade:
    """`OpenTrade(...)` then `add_entry(qty, price, fee, position_after)`, in one call:
    the same floats (0.0 + x is what `+=` on a fresh trade gives, -0.0 included)."""
    return OpenTrade(
        symbol,
        direction,
        ts,
        stop_price,
        0.0 + qty,
        0.0 + qty * price,
        0.0,
        0.0,
        max(0.0, abs(position_after)),
        0.0,
        0.0 + fee,
    )


def _close(
    trade_id: int,
    trade: OpenTrade,
    close_ts: int,
    reason: str,
    is_liquidation: int,
    funding: float,
    excursion: ExcursionRow | None,
) -> Trade:
    """The closed trade of `trade`, ended by the fill at `close_ts` (`reason`)."""
    entry = trade.entry_price
    net = trade.gross - trade.fees + funding
    r_multiple = None
    if trade.stop_price is not None:
        risk = abs(entry - trade.stop_price) * trade.max_size
        if risk > 0:
            r_multiple = net / risk
    return Trade(
        trade_id=trade_id,
        symbol=trade.symbol,
        side="long" if trade.direction > 0 else "short",
        open_ts=trade.open_ts,
        close_ts=close_ts,
        size=trade.max_size,
        entry_price=entry,
        exit_price=trade.exit_price,
        gross_pnl=trade.gross,
        fees=trade.fees,
        funding=funding,
        net_pnl=net,
        exit_reason=reason,
        r_multiple=r_multiple,
        mae=None if excursion is None else excursion[3],
        mfe=None if excursion is None else excursion[4],
        is_liquidation=bool(is_liquidation),
    )
