"""The event loop's own part of a checkpoint (SPEC 9; orchestrator.checkpoint stores
it with every other stage's): what the loop carries from one batch to the next besides
the portfolios' books, so a resumed paper run goes on exactly where it stopped.

A mixin of `Orchestrator` (orchestrator.engine), kept apart from the event loop: it
runs once per checkpoint, never per event. The attributes below are the engine's,
declared here for the type checker.
"""

from typing import Any

from mypy_extensions import trait

from perps_bot.feeds.bars import BarBuilder
from perps_bot.orchestrator.clock import Clock
from perps_bot.orchestrator.portfolio import ClosingOut, Portfolio
from perps_bot.orchestrator.routing import Routes


@trait  # one of `Orchestrator`'s parts: the compiled hot path takes parts as traits
class LoopCheckpoint:
    portfolios: list[Portfolio]
    routes: Routes
    clock: Clock
    first_ts: int | None
    last_ts: int | None
    resumed: bool
    _bars: BarBuilder | None
    _next_equity: int | None
    _next_log: int | None
    _last_price: dict[str, float]
    _signalled: list[Portfolio]
    _cancel_due: bool

    def loop_state(self) -> tuple[object, ...]:
        """The loop's own state between batches, for a checkpoint: the next equity row
        and log line, bars being built, last prices, each portfolio's open excursions,
        client id counter and what waits for its next event (signals from outside the
        strategy: a session API's flatten or resume between two batches, the resting
        orders it withdraws, the entries of flips held back for their close, a flatten
        whose closes are still to be made and one still closing), the order owners,
        first and last event time, the clock."""
        bars = self._bars.state() if self._bars is not None else None
        portfolios = {p.id: (p.excursions.state(), p.flow.seq, p.protection.state(),
                             list(p.pending), list(p.protection.to_cancel),
                             p.flow.held.state(), p.flattening,
                             p.closing_out.reason if p.closing_out is not None else None)
                      for p in self.portfolios}  # fmt: skip
        owners = self.routes.state()
        return (self._next_equity, self._next_log, bars, dict(self._last_price), portfolios,
                owners, self.first_ts, self.last_ts, self.clock.now())  # fmt: skip

    def restore_loop_state(self, state: Any) -> None:
        """Go on from `loop_state()`; the strategies are not started again."""
        next_equity, next_log, bars, prices, portfolios, owners, first, last, now = state
        self._next_equity, self._next_log = next_equity, next_log
        if self._bars is not None and bars is not None:
            self._bars.restore_state(bars)
        self._last_price.clear()  # in place: the plot samplers read this very dict
        self._last_price.update(prices)
        for p in self.portfolios:
            # older: no waiting (pending, to_cancel), no held entries
            excursions, seq, protection, *waiting = portfolios[p.id]
            p.excursions.restore_state(excursions)
            p.flow.seq = int(seq)
            p.protection.restore(protection)
            if waiting:
                self._restore_waiting(p, *waiting[:2])
            p.flow.held.restore(waiting[2] if len(waiting) > 2 else {})
            p.flattening = waiting[3] if len(waiting) > 3 else None  # closes still to make
            if p.flattening is not None and p not in self._signalled:
                self._signalled.append(p)
            out = waiting[4] if len(waiting) > 4 else None  # a flatten still closing
            p.closing_out = ClosingOut(out, 0) if out is not None else None
            if out is not None and p not in self._signalled:
                self._signalled.append(p)
            if p.flow.held.by_symbol and p not in self._signalled:
                self._signalled.append(p)  # looks at them at its next event
        self.routes.restore(owners)
        self.first_ts, self.last_ts = first, last
        self.clock.advance(int(now))
        self.resumed = True

    def _restore_waiting(self, p: Portfolio, pending: list[Any], to_cancel: list[str]) -> None:
        """The signals and cancels a control left for the portfolio's next event: a flatten
        the session API answered, checkpointed before that event, closes after a kill."""
        p.pending = list(pending)
        if p.pending and p not in self._signalled:
            self._signalled.append(p)
        p.protection.to_cancel = list(to_cancel)
        self._cancel_due = self._cancel_due or bool(to_cancel)
