"""The equity curve's rows on the simulated clock (SPEC 6): when the first is due (the
run's first event), one per equity interval at the events (`_snapshot`, with a log line
every log interval), and those due inside a candle longer than the interval, each
valued on the candle's price path (orchestrator.candle_minutes).

A mixin of `Orchestrator` (orchestrator.engine); the attributes below are the engine's,
declared here for the type checker.
"""

from collections.abc import Sequence

import numpy as np

from perps_bot.domain import Candle, MarketEvent
from perps_bot.orchestrator.candle_minutes import add_rows, first_due, path_prices
from perps_bot.orchestrator.stopping import RunStopping


class EquityRows(RunStopping):
    first_ts: int | None
    _equity_every: int
    _log_every: int
    _next_equity: int | None
    _next_log: int | None
    _adaptive_path: bool
    _candle_run: bool  # the run's events are candles
    _long_candles: bool  # ... longer than the equity interval: rows inside them

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

    def _snapshot(self, ts: int) -> None:
        """One equity row per equity interval and portfolio (and for the account)."""
        assert self._next_log is not None
        every = self._equity_every
        self._next_equity = ts - ts % every + every
        log_line = ts >= self._next_log
        if log_line:
            self._next_log = ts - ts % self._log_every + self._log_every
        for p in self.portfolios:
            was = p.risk.state
            p.snapshot(ts, log_line)
            self.withdraw_if_stopped(p, was)  # the drawdown or the day's loss
        if self._account_rec is not None:
            self._account_rec.equity(ts, log_line=log_line)

    def _minute_rows(self, candle: Candle) -> None:
        """Equity rows every equity interval before the candle's close, on its price
        path, for every portfolio and the account."""
        self._path_rows((candle,), candle.ts)

    def _path_rows(self, candles: Sequence[Candle], end: int) -> None:
        """Equity rows every equity interval before `end`, each of `candles`' symbols
        on its candle's price path (candles closing together)."""
        due = self._next_equity
        if due is None or due >= end:  # None: the run's first candles (`_start_at`)
            return
        every = self._equity_every
        times = np.arange(due, end, every, dtype=np.int64)
        adaptive = self._adaptive_path
        prices = {c.symbol: path_prices(c, times, adaptive) for c in candles}
        for p in self.portfolios:
            add_rows(p.rec.store.equity_sink(p.rec.run_id), p.ledger, times, prices)
        account = self._account_rec
        if account is not None:
            add_rows(account.store.equity_sink(account.run_id), account.ledger, times, prices)
        self._next_equity = int(times[-1]) + every
        self.rec.store.flush_if_due()  # bounded memory: a day candle is 1,440 rows
