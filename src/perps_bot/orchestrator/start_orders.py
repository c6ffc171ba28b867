"""The run's start in a run of quotes (dev on the random walk, dry run, live, their
replays): what the strategies signal in `on_start` waits for the first price of its
symbol (the risk gate's market data), then goes out like any signal. Made at once,
before the feed's first quote, every one was denied STALE_MARKET_DATA (no market data
yet) and nothing asked again: a strategy that enters from the start held nothing. A
feed of candles sends them at the first candles' open instead (orchestrator.
long_candles `_open_run`). One for a symbol the run has no feed of goes at once (and
is denied); those still waiting when the run ends are made then (denied, recorded).

A mixin of `Orchestrator` (orchestrator.engine); the attributes below are the engine's.
"""

from collections.abc import Sequence

from mypy_extensions import trait

from perps_bot.domain import Signal
from perps_bot.orchestrator.portfolio import Portfolio


@trait  # one of `Orchestrator`'s parts: the compiled hot path takes parts as traits
class StartOrders:
    portfolios: list[Portfolio]
    _signalled: list[Portfolio]
    _last_price: dict[str, float]
    _by_symbol: dict[str, tuple[Portfolio, ...]]
    _starting: bool

    def _priced(self, portfolio: Portfolio, signals: Sequence[Signal], ts: int) -> list[Signal]:
        """Of `signals`, those whose symbol has a price for the risk gate at `ts`; the
        others go back to the portfolio's signals (`_still_starting` keeps it heard)."""
        ready: list[Signal] = []
        fresh, prices, fed = portfolio.risk.fresh, self._last_price, self._by_symbol
        for signal in signals:
            symbol = signal.symbol
            if symbol not in fed or fresh(symbol, ts, prices.get(symbol, 0.0)):
                ready.append(signal)
            else:
                portfolio.pending.append(signal)
        return ready

    def _still_starting(self) -> None:
        """After the signals were made into orders: the portfolios whose start signals
        still wait are looked at again at the next event; none: the start is over."""
        waiting = [p for p in self.portfolios if p.pending]
        for p in waiting:
            if p not in self._signalled:
                self._signalled.append(p)
        self._starting = bool(waiting)
