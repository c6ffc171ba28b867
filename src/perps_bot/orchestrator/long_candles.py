"""Candles longer than a minute or than the funding interval (backtests on 5m, 1h, 1d).

Two things happen inside such a candle that a 1-minute candle does not have:

- equity rows (SPEC 6: one per simulated minute): `_minute_rows` adds the rows due
  before the candle's close, on its price path (orchestrator.candle_minutes);
- funding settlements (SPEC 3: at the funding time, on the position held at that
  instant): 8h funding at 08:00 and 16:00 falls inside a 1d candle. The feed emits
  such a settlement before the candle (its time is earlier than the candle's close);
  the loop holds it back (`_inside`) and, when the candle comes, walks the candle in
  time order: the venue matches the path points before the settlement (fills stamped
  at their point's time: 00:00 for the open), the equity rows up to it are added,
  then the settlement goes through every stage at its time, priced at the path's mark
  at that time, and the strategy's answer to it is sent; then the next part, up to the
  close, whose point the candle's own event matches as usual (stamped at the close).
  A settlement at a path point's time comes before that point's fills (as funding at
  a fill's time does everywhere). A candle with no settlement inside is not touched.
"""

from collections.abc import Sequence
from itertools import pairwise
from time import perf_counter

import numpy as np

from perps_bot.domain import Candle, Fill, FundingRate, MarketEvent, Order
from perps_bot.orchestrator.candle_minutes import add_rows, first_due, path_points, path_prices
from perps_bot.orchestrator.venue_calls import VenueCalls

_NEVER = 2**63


class LongCandles(VenueCalls):
    """A mixin of `Orchestrator` (orchestrator.engine); attributes are the engine's."""

    first_ts: int | None
    last_ts: int | None
    _equity_every: int
    _log_every: int
    _next_equity: int | None
    _next_log: int | None
    _adaptive_path: bool
    _candle_run: bool  # the run's events are candles
    _long_candles: bool  # ... longer than the equity interval: rows inside them
    _inside: dict[str, list[FundingRate]]  # settlements waiting for their candle
    _part_from: int | None  # the candle's own event matches its path from here on

    def _on_event(self, event: MarketEvent) -> list[Order]:
        raise NotImplementedError

    def _start_at(self, event: MarketEvent) -> None:
        """The run's first event: the market is covered from here (a candle's open); the
        first equity row is due one interval on (orchestrator.candle_minutes)."""
        ts = event.ts
        if type(event) is Candle:
            self.first_ts = event.open_time
            self._next_equity = first_due(ts, event.open_time, self._equity_every)
            self._candle_run = True
            self._long_candles = ts - event.open_time > self._equity_every
        else:
            self.first_ts = self._next_equity = ts
        self._next_log = ts + self._log_every

    def _minute_rows(self, candle: Candle, until: int | None = None) -> None:
        """Equity rows every equity interval before `until` (default: the candle's
        close), on its price path, for every portfolio and the account."""
        due = self._next_equity
        assert due is not None
        every = self._equity_every
        end = candle.ts if until is None else until
        if due >= end:
            return
        times, prices = path_prices(candle, due, end, every, self._adaptive_path)
        symbol = candle.symbol
        for p in self.portfolios:
            add_rows(p.rec.store.equity_sink(p.rec.run_id), p.ledger, symbol, times, prices)
        account = self._account_rec
        if account is not None:
            sink = account.store.equity_sink(account.run_id)
            add_rows(sink, account.ledger, symbol, times, prices)
        self._next_equity = int(times[-1]) + every
        self.rec.store.flush_if_due()  # bounded memory: a day candle is 1,440 rows

    def _close_point(self, event: MarketEvent, part: int) -> Sequence[Fill]:
        """The close point of a candle `_walk_to_close` walked up to it."""
        assert type(event) is Candle
        self._part_from = None
        return self.venue.on_candle_part(event, part, _NEVER)

    async def _held_back(self, event: MarketEvent) -> bool:
        """(Called for settlements, and for every event while one is held back.) A
        candle run's settlement inside the next candle is held back (True: nothing
        more to do with it now); a candle with settlements inside is walked up to its
        close point first (see the module's docstring)."""
        if type(event) is FundingRate:
            last = self.last_ts
            if self._candle_run and last is not None and event.ts > last:
                self._inside.setdefault(event.symbol, []).append(event)
                return True
        elif type(event) is Candle and event.symbol in self._inside:
            await self._walk_to_close(event, self._inside.pop(event.symbol))
        return False

    async def _walk_to_close(self, candle: Candle, settlements: list[FundingRate]) -> None:
        times, values = path_points(candle, self._adaptive_path)
        close = candle.ts
        due = {f.ts: f for f in settlements if candle.open_time < f.ts < close}
        bounds = sorted({t for t in times if t < close} | set(due) | {close})
        for lo, hi in pairwise(bounds):
            fills = self.venue.on_candle_part(candle, lo, hi)
            if fills:
                self.clock.advance(lo)
                self._apply_fills(fills)
            if self._updates:
                self._drain_updates()
            self._minute_rows(candle, hi)
            settlement = due.get(hi)
            if settlement is not None:
                mark = float(np.interp(hi, times, values))
                event = FundingRate(hi, settlement.symbol, settlement.rate, mark)
                self.last_ts = hi
                received = perf_counter()
                orders = self._on_event(event)
                if orders or self._cancel_due:
                    await self._submit_all(orders, received)
        self._part_from = close
