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

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from perps_bot.domain import DEFAULT_PORTFOLIO
from perps_bot.storage import ExcursionRecord, FillRecord, FundingRecord

TRADE_COLUMNS: tuple[str, ...] = (
    "trade_id",
    "symbol",
    "side",
    "open_time",
    "close_time",
    "size",
    "entry_price",
    "exit_price",
    "gross_pnl",
    "fees",
    "funding",
    "net_pnl",
    "exit_reason",
    "r_multiple",
    "mae",
    "mfe",
)

# Relative tolerance under which a position counts as flat (float sums of sizes).
_FLAT_REL = 1e-9


@dataclass(frozen=True, slots=True)
class Trade:
    trade_id: int
    symbol: str
    side: str  # "long" | "short"
    open_ts: int
    close_ts: int
    size: float
    entry_price: float
    exit_price: float
    gross_pnl: float
    fees: float
    funding: float
    net_pnl: float
    exit_reason: str
    r_multiple: float | None
    mae: float | None
    mfe: float | None
    is_liquidation: bool
    #: the portfolio whose trade it is (SPEC 10; `main` in a one-strategy run)
    portfolio: str = DEFAULT_PORTFOLIO

    @property
    def duration_s(self) -> float:
        return (self.close_ts - self.open_ts) / 1000.0

    @property
    def return_pct(self) -> float | None:
        return return_pct(self.net_pnl, self.entry_price, self.size)


def return_pct(net_pnl: float, entry_price: float, size: float) -> float | None:
    """A trade's net PnL as a percentage of its entry notional (entry_price * size)."""
    notional = entry_price * size
    return net_pnl / notional * 100.0 if notional > 0 else None


@dataclass(slots=True)
class OpenTrade:
    """A round trip still open: what the fills so far added up to."""

    symbol: str
    direction: int  # +1 long, -1 short
    open_ts: int
    stop_price: float | None
    entry_qty: float = 0.0
    entry_notional: float = 0.0
    exit_qty: float = 0.0
    exit_notional: float = 0.0
    max_size: float = 0.0
    gross: float = 0.0
    fees: float = 0.0
    funding: float = 0.0  # only when fed by `RoundTripBuilder.add_funding` (the run log)

    def add_entry(self, qty: float, price: float, fee: float, position_after: float) -> None:
        self.entry_qty += qty
        self.entry_notional += qty * price
        self.fees += fee
        self.max_size = max(self.max_size, abs(position_after))

    def add_exit(self, qty: float, price: float, fee: float, realized: float) -> None:
        self.exit_qty += qty
        self.exit_notional += qty * price
        self.fees += fee
        self.gross += realized

    @property
    def entry_price(self) -> float:
        return self.entry_notional / self.entry_qty if self.entry_qty else 0.0

    @property
    def exit_price(self) -> float:
        return self.exit_notional / self.exit_qty if self.exit_qty else 0.0

    @property
    def net_pnl(self) -> float:
        """gross - fees + funding, funding as fed to `RoundTripBuilder.add_funding`."""
        return self.gross - self.fees + self.funding


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
        tol = _FLAT_REL * max(abs(before), abs(after), size)
        trade = self.open.get(symbol)
        direction = 1 if buy else -1
        if abs(before) <= tol:
            self.open[symbol] = _open(symbol, direction, ts, stop_price, size, price, fee, after)
            return None
        if (signed > 0) == (before > 0):
            if trade is not None:
                trade.add_entry(size, price, fee, after)
            return None
        closing = min(size, abs(before))
        flips = abs(after) > tol and (after > 0) != (before > 0)
        share = closing / size if size > 0 else 1.0
        closed = None
        # trade is None: a position carried in from before the run (resumed run); the
        # part that reduces it belongs to no round trip of this run.
        if trade is not None:
            trade.add_exit(closing, price, fee * share, realized)
            if abs(after) <= tol or flips:
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


class _FundingIndex:
    """Per-symbol cumulative funding, for `sum over open_ts < ts <= close_ts` by bisection."""

    def __init__(self, funding: Iterable[FundingRecord]) -> None:
        times: dict[str, list[int]] = defaultdict(list)
        cumulative: dict[str, list[float]] = defaultdict(list)
        for row in sorted(funding, key=lambda f: f.ts):  # stable: ties keep store order
            total = cumulative[row.symbol][-1] if cumulative[row.symbol] else 0.0
            times[row.symbol].append(row.ts)
            cumulative[row.symbol].append(total + row.payment)
        self._times = dict(times)
        self._cumulative = dict(cumulative)

    def _upto(self, symbol: str, ts: int) -> float:
        times = self._times.get(symbol)
        if not times:
            return 0.0
        i = bisect.bisect_right(times, ts)
        return self._cumulative[symbol][i - 1] if i else 0.0

    def between(self, symbol: str, open_ts: int, close_ts: int) -> float:
        return self._upto(symbol, close_ts) - self._upto(symbol, open_ts)


class _ExcursionIndex:
    """Excursions matched to trades by (symbol, open_ts, close_ts), else (symbol, close_ts)."""

    def __init__(self, excursions: Iterable[ExcursionRecord]) -> None:
        self._exact: dict[tuple[str, int, int], list[ExcursionRecord]] = defaultdict(list)
        self._by_close: dict[tuple[str, int], list[ExcursionRecord]] = defaultdict(list)
        for row in excursions:
            self._exact[(row.symbol, row.open_ts, row.close_ts)].append(row)
            self._by_close[(row.symbol, row.close_ts)].append(row)
        self._used: set[int] = set()

    def take(self, symbol: str, open_ts: int, close_ts: int) -> ExcursionRecord | None:
        for candidates in (
            self._exact.get((symbol, open_ts, close_ts), []),
            self._by_close.get((symbol, close_ts), []),
        ):
            for row in candidates:
                if id(row) not in self._used:
                    self._used.add(id(row))
                    return row
        return None


def round_trips(
    fills: Sequence[FillRecord],
    funding: Iterable[FundingRecord] = (),
    excursions: Iterable[ExcursionRecord] = (),
    builder: RoundTripBuilder | None = None,
) -> list[Trade]:
    """Closed round trips from fills in `seq` order. Trades still open at the end are
    not trades; they stay in `builder.open` (pass a builder to read them)."""
    funding_index = _FundingIndex(funding)
    excursion_index = _ExcursionIndex(excursions)
    builder = builder if builder is not None else RoundTripBuilder()
    closed: list[tuple[OpenTrade, FillRecord]] = []
    for fill in sorted(fills, key=lambda f: f.seq):
        trade = builder.add_fill(
            fill.symbol,
            fill.side == "buy",
            fill.size,
            fill.price,
            fill.fee,
            fill.realized_pnl,
            fill.position_after,
            fill.ts,
            fill.stop_price,
        )
        if trade is not None:
            closed.append((trade, fill))
    return [
        _close(i, trade, fill, funding_index, excursion_index)
        for i, (trade, fill) in enumerate(closed, start=1)
    ]


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
    trade = OpenTrade(symbol=symbol, direction=direction, open_ts=ts, stop_price=stop_price)
    trade.add_entry(qty, price, fee, position_after)
    return trade


def _close(
    trade_id: int,
    trade: OpenTrade,
    fill: FillRecord,
    funding_index: _FundingIndex,
    excursion_index: _ExcursionIndex,
) -> Trade:
    entry = trade.entry_price
    exit_ = trade.exit_price
    funding = funding_index.between(trade.symbol, trade.open_ts, fill.ts)
    net = trade.gross - trade.fees + funding
    r_multiple = None
    if trade.stop_price is not None:
        risk = abs(entry - trade.stop_price) * trade.max_size
        if risk > 0:
            r_multiple = net / risk
    excursion = excursion_index.take(trade.symbol, trade.open_ts, fill.ts)
    return Trade(
        trade_id=trade_id,
        symbol=trade.symbol,
        side="long" if trade.direction > 0 else "short",
        open_ts=trade.open_ts,
        close_ts=fill.ts,
        size=trade.max_size,
        entry_price=entry,
        exit_price=exit_,
        gross_pnl=trade.gross,
        fees=trade.fees,
        funding=funding,
        net_pnl=net,
        exit_reason=fill.reason,
        r_multiple=r_multiple,
        mae=None if excursion is None else excursion.mae,
        mfe=None if excursion is None else excursion.mfe,
        is_liquidation=fill.is_liquidation,
    )
