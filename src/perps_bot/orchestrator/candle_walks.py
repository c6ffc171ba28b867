"""Candles the venue has work in, matched point by point along their price path rather
than whole, so what happens inside the candle comes in the order it would on the
exchange. (Candles a funding settlement splits, and several symbols' walked together:
orchestrator.long_candles, which also hands over the close points of the candles
walked here.)

A candle with a mark series' low and high inside it (a backtest with a mark file) that
the venue has orders for is walked (`_walk_wicks`): the mark's extremes are at the
path's high and low (venues.order_queue.mark_path), and the ledger checks each when
the path gets there, after that point's fills, on the positions held then: a position
closed later in the candle (a take-profit at the other extreme) was still open when
the mark went past its liquidation price, and one opened later than the wick never saw
it. (Checked only once the candle was matched whole, a take-profit after the wick hid
the liquidation, and an entry after it was liquidated by it.) The fills carry the
close time and are booked as one event's, as when matched whole; a point whose mark
liquidates ends the walk there, the candle's own stages liquidate (`_mark_wick`, as
for a candle the venue had nothing for), and the orders, cancelled by the liquidation,
meet none of its later points. A candle of a symbol several portfolios trade, or one a
settlement splits, is matched whole as before.

A candle of a symbol with an entry at the venue that asks for a stop or take-profit
(rare: from its sending until it is done) is walked too (`_walk_entry`, or with the
settlements): the protective orders a fill asks for are placed at once, at its point,
and meet the rest of the path, as on the exchange. (Placed after the whole candle, they
first met the next one: a stop the same candle went through after the entry was missed.)
They meet the rest of the very move the entry filled on too (`Venue.on_leg_rest`): a
limit crossed on the way from the high to the low, its stop between it and the low.
A mark's extremes inside such a candle are checked at their points as `_walk_wicks`
does (checked after the whole candle, a take-profit after the wick hid the
liquidation, and an entry after the wick was liquidated by it).

A mixin of `Orchestrator` (orchestrator.engine); the attributes below are the engine's,
declared here for the type checker.
"""

from collections.abc import Sequence
from itertools import pairwise

from perps_bot.domain import Candle, Fill, FundingRate
from perps_bot.orchestrator.candle_minutes import path_points
from perps_bot.orchestrator.equity_rows import EquityRows
from perps_bot.orchestrator.portfolio import Portfolio

#: after any event time: a walk's last part, and the close point of a candle whose walk
#: stopped at a liquidation (nothing later is matched)
NEVER = 2**63


class CandleWalks(EquityRows):
    _inside: dict[str, list[FundingRate]]  # settlements waiting for their candle
    _entering: set[str]  # symbols with a protected entry at the venue (`_walk_entry`)
    _part_from: int | None  # set while walked candles wait for their close point
    _parts: dict[str, int]  # ... their symbols and where their own event matches from
    _by_symbol: dict[str, tuple[Portfolio, ...]]

    def _walk_wicks(self, candle: Candle) -> Sequence[Fill]:
        """`candle`'s path matched point by point up to its close, the ledger checking
        the mark at each extreme after that point's fills (module docstring); the fills
        are booked here (nothing is left to the caller). Matched whole, as before, when
        it has no mark extremes, the venue nothing of its symbol, or several portfolios
        trade it."""
        symbol = candle.symbol
        holders = self._by_symbol.get(symbol, ())
        if (
            candle.mark_low is None
            or candle.mark_high is None
            or len(holders) != 1
            or self.venue.quiet(symbol)
        ):
            return self.venue.on_market(candle)
        times, marks = path_points(candle, self._adaptive_path)
        if not times[0] < times[2] < times[3]:  # no room between its points
            return self.venue.on_market(candle)
        ledger, ts = holders[0].ledger, candle.ts
        fills: list[Fill] = []
        touched: list[Portfolio] = []
        parts = ((times[0], times[2], marks[1]), (times[2], times[3], marks[2]))
        for since, until, mark in (*parts, (times[3], NEVER, None)):
            part = self.venue.on_candle_part(candle, since, until, ts)
            if part:
                self._book_fills(part, touched)
                fills.extend(part)
            if mark is not None and ledger.liquidates_at(symbol, mark):
                break  # the candle's stages liquidate it; nothing later is matched
        else:
            self._wick_walked = candle
        if fills:
            self._fills_booked(fills, touched)
        return ()

    def _entry_sent(self, symbol: str) -> None:
        """A protected entry of `symbol` went to the venue (a candle run): the symbol's
        next candle is walked (`_walk_entry`)."""
        if self._candle_run:
            self._entering.add(symbol)
            self._inside.setdefault(symbol, [])  # the loop hands its candle to _held_back

    def _entry_waits(self, symbol: str) -> None:
        """After a walked candle: its next one is walked too while a protected entry of
        `symbol` is still open at the venue (a resting limit entry)."""
        for order in self.venue.open_orders():
            owner = self.routes.owner(order.client_id, symbol)
            if order.symbol == symbol and owner.protection.asks(order.client_id):
                self._entry_sent(symbol)
                return

    async def _walk_entry(self, candle: Candle) -> None:
        """A candle whose symbol has a protected entry at the venue, matched point by
        point up to its close point (module docstring): the protective orders a fill
        asks for are placed at once, at the fill's point, and meet the rest of the path.
        The fills carry the close time, as when matched whole. A mark's extremes inside
        it are checked when the path gets there, as `_walk_wicks` does."""
        symbol, close = candle.symbol, candle.ts
        times, marks = path_points(candle, self._adaptive_path)
        starts = sorted({t for t in times if t < close})
        holders = self._by_symbol.get(symbol, ())
        wick = (
            candle.mark_low is not None
            and candle.mark_high is not None
            and len(starts) == 3
            and len(holders) == 1
        )
        touched: list[Portfolio] = []
        fills: list[Fill] = []
        self._parts[symbol] = close
        for k, (since, until) in enumerate(pairwise((*starts, close))):
            part = self.venue.on_candle_part(candle, since, until, close)
            while part:  # then what the orders they asked for meet on the same move
                self.clock.advance(since)
                self._book_fills(part, touched)
                fills.extend(part)
                for p in touched:
                    self._protect(p, {symbol}, since)  # the orders start from here
                await self._protect_now()
                part = self.venue.on_leg_rest(candle, since, until, close)
            if self._updates:
                self._drain_updates()
            if wick and k and holders[0].ledger.liquidates_at(symbol, marks[k]):
                self._parts[symbol] = NEVER  # the stages liquidate; nothing later matches
                break
        else:
            if wick:
                self._wick_walked = candle
        if fills:
            self._fills_booked(fills, touched)
        self._part_from = close
        self._entry_waits(symbol)

    async def _protect_now(self) -> None:
        """The cancels and protective orders fills inside a walked candle asked for, sent
        at once; the strategies' answers to the fills wait for the candle's event."""
        if self._cancel_due:
            await self._cancel_protective()
        for p in list(self._signalled):
            for order in self._protective(p):
                await self._send(order, None)
