"""Candles longer than a minute or than the funding interval (backtests on 5m, 1h, 1d).

Two things happen inside such a candle that a 1-minute candle does not have:

- equity rows (SPEC 6: one per simulated minute): `_minute_rows` adds the rows due
  before the candle's close, on its price path (orchestrator.equity_rows);
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
  The run's first candle too: its settlements come before any event (a feed of
  candles: `_candle_run` from the start), and the run starts at its open.

A candle the venue has work in (a mark's extremes, a protected entry) is walked point by
point as well (orchestrator.candle_walks); its close point is matched here too.

The run's start: what the strategies signal in `on_start` goes out at the first
candles' open (`_open_run`: priced at their open, the risk gate's data fresh then),
so it fills at that open ("hold from the first bar"). Sent before any candle, it was
denied STALE_MARKET_DATA (no market data yet). A symbol whose data starts later than
the first candles' has none then either: its start orders are still denied.

Several symbols (a merged feed, feeds.merged): their candles closing at the same time
are walked together (`_walk_together`), before the first of them: their path points
(the same times: the same interval) and settlements in time order, at one time every
symbol's settlement before any symbol's fills, symbols in the feed's order; the rows
value every symbol on its own path; at a settlement the other symbols are marked on
theirs first, and the equity row due then comes after the last symbol's settlement.
Each candle's own event then matches only its close point. (Walked one by one, the
second symbol's fills and settlements came after the first symbol's close: times went
backwards, and the rows followed the first symbol's path without the second symbol's
fills.)
"""

from collections.abc import Mapping, Sequence
from itertools import islice, pairwise
from time import perf_counter

import numpy as np

from perps_bot.domain import Candle, Fill, FundingRate, MarketEvent, Order
from perps_bot.orchestrator.candle_minutes import path_points
from perps_bot.orchestrator.candle_walks import NEVER, CandleWalks

#: `_part_from` of a run whose candles may carry a mark's extremes: set for good, so
#: every event takes `_close_point`, which walks such candles (`_walk_wicks`)
WICK_RUN = -1


class LongCandles(CandleWalks):
    """A mixin of `Orchestrator` (orchestrator.engine); attributes are the engine's."""

    _part_base: int | None  # `_part_from` when nothing waits: None, or WICK_RUN
    _joint: bool | None  # several symbols' long candles: walked together (None: not known)
    _last_price: dict[str, float]

    def _on_event(self, event: MarketEvent) -> list[Order]:
        raise NotImplementedError

    async def _event(self, event: MarketEvent, end: int) -> bool:
        raise NotImplementedError

    async def _open_run(self, batch: Sequence[MarketEvent], end: int) -> bool:
        """The strategies' `on_start` signals, held for the run's first candles (a feed
        of candles), sent at their open: the risk gate has market data of their symbols
        then, and the orders are priced at the open (see the module's docstring). True
        while `batch` has no candle (settlements before the first one)."""
        opening: list[Candle] = []
        for k in range(len(batch)):  # by index: a batch of columns builds only these
            event = batch[k]
            if type(event) is Candle:
                if opening and event.ts != opening[0].ts:
                    break
                opening.append(event)
        if not opening:
            return True
        at = opening[0].open_time
        if opening[0].ts < end:
            self.clock.advance(at)
            for candle in opening:
                self._last_price[candle.symbol] = candle.open
                for p in self._by_symbol.get(candle.symbol, ()):
                    p.risk.on_market_data(candle.symbol, at)
        await self._submit_all(self._pending_orders(at), perf_counter())
        return False

    def _close_point(self, event: MarketEvent) -> Sequence[Fill]:
        """`event` while candles `_walk_group` walked wait for their close point: a
        walked candle matches its close point only. In a run whose candles carry a
        mark's extremes, every event: such a candle is walked (`_walk_wicks`)."""
        parts = self._parts
        part = parts.pop(event.symbol, None) if type(event) is Candle else None
        if not parts:
            self._part_from = self._part_base
        if part is not None:
            assert type(event) is Candle
            return self.venue.on_candle_part(event, part, NEVER, None)
        if self._part_base is not None and type(event) is Candle:
            return self._walk_wicks(event)
        return self.venue.on_market(event)

    def _joins(self, batch: Sequence[MarketEvent]) -> bool:
        """Whether the run's candles are walked together (`_walk_together`): several
        symbols' candles longer than the equity interval; decided on the first batch's
        first candle (settlements inside the first candles come before it)."""
        first = next((e for e in batch if type(e) is not FundingRate), None)
        if first is None:  # settlements inside the first candles: held back till them
            return False
        self._joint = (
            type(first) is Candle
            and len(self._by_symbol) > 1
            and first.ts - first.open_time > self._equity_every
        )
        return self._joint

    async def _walk_together(self, batch: Sequence[MarketEvent], end: int) -> None:
        """A batch of several symbols' long candles: before the first candle of each
        close time, the candles closing then are walked together up to their close
        point (`_walk_group`); then every event goes through `_event` as usual. The
        events of one time are all in one batch (feeds.merged)."""
        walked = -1
        for i, event in enumerate(batch):
            ts = event.ts
            if type(event) is Candle and walked < ts < end:
                walked = ts
                await self._walk_group(_closing_with(batch, i))
            if not await self._event(event, end):
                return

    async def _held_back(self, event: MarketEvent) -> bool:
        """(Called for settlements, and for every event while one is held back.) A
        candle run's settlement inside the next candle is held back (True: nothing
        more to do with it now), also one inside the run's first candle, before any
        event; a candle with settlements inside is walked up to its close point first
        (see the module's docstring)."""
        if type(event) is FundingRate:
            last = self.last_ts
            if self._candle_run and (last is None or event.ts > last):
                self._inside.setdefault(event.symbol, []).append(event)
                return True
        elif (
            type(event) is Candle
            and event.symbol in self._inside
            and event.symbol not in self._parts  # not walked yet (`_walk_together`)
        ):
            await self._walk_group([event])
        return False

    async def _walk_group(self, candles: list[Candle]) -> None:
        """Candles closing at the same time (one, or one per symbol), walked in time
        order up to their close point (see the module's docstring)."""
        close = candles[0].ts
        paths = {c.symbol: path_points(c, self._adaptive_path) for c in candles}
        due: dict[int, list[FundingRate]] = {}
        for c in candles:
            for f in self._inside.pop(c.symbol, ()):
                if c.open_time < f.ts < close:
                    due.setdefault(f.ts, []).append(f)
        entering = [c for c in candles if c.symbol in self._entering]
        self._entering.difference_update(c.symbol for c in entering)
        if self.first_ts is None and (due or entering):  # the run starts at their open
            self._start_at(candles[0])
        if not due:  # rows only: the fills carry the close time
            self._path_rows(candles, close)
            for candle in entering:
                await self._walk_entry(candle)
            return
        points = {t for times, _ in paths.values() for t in times if t < close}
        for lo, hi in pairwise(sorted(points | set(due) | {close})):
            for candle in candles:
                fills = self.venue.on_candle_part(candle, lo, hi, None)
                while fills:
                    self.clock.advance(lo)
                    self._apply_fills(fills)
                    await self._protect_now()
                    fills = self.venue.on_leg_rest(candle, lo, hi, None)
                if self._updates:
                    self._drain_updates()
            self._path_rows(candles, hi)
            if hi in due:
                await self._settle_at(hi, due[hi], paths)
        self._parts.update((c.symbol, close) for c in candles)
        self._part_from = close
        for candle in entering:
            self._entry_waits(candle.symbol)

    async def _settle_at(
        self,
        ts: int,
        settling: list[FundingRate],
        paths: Mapping[str, tuple[Sequence[int], Sequence[float]]],
    ) -> None:
        """The settlements at `ts` inside walked candles, each through every stage at
        its time, priced at its symbol's path mark then. With several symbols, the
        others are marked on their paths first, and the equity row due at `ts` is
        taken after the last settlement (it holds every symbol's payment). The walked
        symbols have market data at `ts` (their paths): the risk gate takes an order
        made then as fresh (its data was the previous candle's close, hours before:
        every order at such a settlement was denied STALE_MARKET_DATA)."""
        if len(paths) > 1:
            self._mark_on_paths(paths, ts, settling[0].symbol)
        for symbol in paths:  # priced on the path up to now: an order here is not stale
            for p in self._by_symbol.get(symbol, ()):
                p.risk.on_market_data(symbol, ts)
        row_due = self._next_equity
        for k, settlement in enumerate(settling):
            self._next_equity = row_due if k == len(settling) - 1 else NEVER
            times, values = paths[settlement.symbol]
            mark = float(np.interp(ts, times, values))
            self.last_ts = ts
            received = perf_counter()
            orders = self._on_event(FundingRate(ts, settlement.symbol, settlement.rate, mark))
            if orders or self._cancel_due:
                await self._submit_all(orders, received)

    def _mark_on_paths(
        self, paths: Mapping[str, tuple[Sequence[int], Sequence[float]]], ts: int, settling: str
    ) -> None:
        """The walked symbols other than `settling` marked on their paths at `ts` (a
        settlement there: its equity row values every symbol at that time), with the
        ledger's liquidation check as any mark."""
        self.clock.advance(ts)
        for symbol, (times, values) in paths.items():
            if symbol == settling:
                continue
            mark = float(np.interp(ts, times, values))
            for p in self._by_symbol.get(symbol, ()):
                liquidations = p.ledger.update_mark(symbol, mark, ts)
                if liquidations:
                    self._apply_liquidations(p, liquidations)


def _closing_with(batch: Sequence[MarketEvent], i: int) -> list[Candle]:
    """The candles of `batch` closing at the time of its event `i`, from `i` on."""
    ts = batch[i].ts
    group: list[Candle] = []
    for event in islice(batch, i, None):
        if event.ts != ts:
            break
        if type(event) is Candle:
            group.append(event)
    return group
