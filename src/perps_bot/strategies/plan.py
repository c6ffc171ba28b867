"""The built-in `plan` strategy (SPEC 16): executes a trade plan file (strategies.
plan_rows has the format), row by row, each row once.

* A row is due at the first event of its symbol at or after `valid_from` (at once
  without it) and before `valid_until`; a row whose window has passed is not executed.
* `long` / `short`: an entry of `size` (or `notional` / the price it fills at: a
  resting limit's own) in that direction, at market or as a limit order at
  `limit_price`, with the row's `stop` and `take_profit` attached as protective orders
  (they are placed when the entry fills). `flat`: the symbol's position is closed at
  market (exit reason `plan`): a reduce-only order of the size held, so an entry still
  resting is not counted as if filled (the close of a target would sell it too and
  open the other side); nothing held, no order.
* The file is read again when it changes (its modification time or size), at most
  every `reload_interval` seconds of wall time; a row already executed (by its id, or
  its content hash without one) is never executed again, also after a restart: the
  keys are kept in the run store (strategies.base.Memory) and in `state()`.
* A bad row is logged as one line naming its row and column and skipped; the rest of
  the plan runs. A file that cannot be read is refused at start (exit 2); later, the
  previous version stays in force and the reason is logged.
"""

import hashlib
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from perps_bot.config.llm import LlmConfig
from perps_bot.domain import (
    BookSnapshot,
    Candle,
    MarketEvent,
    OrderIntent,
    OrderType,
    Quote,
    Side,
    Signal,
    closing_intent,
    short_path,
)
from perps_bot.strategies.base import NO_SIGNALS, Strategy, StrategyContext, StrategyError
from perps_bot.strategies.plan_rows import PlanFileError, PlanRow, read_plan

_MEMORY = "plan"


class PlanParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str = Field(description="the trade plan file (CSV with a header, or .json)")
    reload_interval: float = Field(
        1.0, ge=0, description="seconds of wall time between checks for a changed file"
    )


class PlanStrategy(Strategy):
    name = "plan"
    Params = PlanParams
    params: PlanParams

    @classmethod
    def fingerprint_inputs(cls, params: BaseModel) -> dict[str, str]:
        """The plan file's content (its path alone kept the promotion of an edited plan).
        A later edit the run reads again is not covered: promote the plan you tested."""
        assert isinstance(params, PlanParams)
        try:
            digest = hashlib.sha256(Path(params.file).read_bytes()).hexdigest()
        except (OSError, ValueError):  # no such file, a NUL in the path
            digest = "unreadable"  # refused when the strategy starts (exit 2)
        return {"plan_file": digest}

    def __init__(self, params: Mapping[str, Any], ctx: StrategyContext) -> None:
        super().__init__(params, ctx)
        self._path = Path(self.params.file)
        self._stamp: tuple[int, int] | None = None
        self._next_check = 0.0
        self._rows: list[PlanRow] = []
        self._done: set[str] = set()
        self._recalled = False
        try:
            self._load()
        except PlanFileError as exc:
            raise StrategyError(str(exc)) from None

    @classmethod
    def check(cls, params: BaseModel, llm: LlmConfig) -> None:
        """The file is there and reads as a plan (its rows are checked at start)."""
        assert isinstance(params, PlanParams)
        path = Path(params.file)
        try:
            _file_stamp(path)
            read_plan(path, ())
        except PlanFileError as exc:
            raise StrategyError(str(exc)) from None

    # -- the file ------------------------------------------------------------------
    def _load(self) -> None:
        stamp = _file_stamp(self._path)
        plan = read_plan(self._path, self.ctx.symbols)
        self._stamp = stamp
        self._rows = plan.rows
        for line in plan.problems:
            self.ctx.logger.warning("%s (row skipped)", line)
        self.ctx.logger.info("plan %s: %d rows", self._path.name, len(plan.rows))

    def _reload_if_changed(self) -> None:
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self.params.reload_interval
        try:
            stat = self._path.stat()
            if (stat.st_mtime_ns, stat.st_size) != self._stamp:
                self._load()
        except (OSError, PlanFileError) as exc:
            self.ctx.logger.warning("plan %s not re-read, the previous one stays: %s",
                                    self._path.name, exc)  # fmt: skip
            self._next_check = now + max(self.params.reload_interval, 1.0)

    # -- events --------------------------------------------------------------------
    def on_event(self, event: MarketEvent) -> Sequence[Signal]:
        if isinstance(event, Candle):
            price: float | None = event.close
        elif isinstance(event, Quote | BookSnapshot):
            price = event.last
        else:
            return NO_SIGNALS
        self._reload_if_changed()
        if not self._recalled:
            self._recall()
        signals: list[Signal] = []
        for row in self._rows:
            if row.symbol != event.symbol or not _due(row, event.ts):
                continue
            key = row.key()
            if key in self._done:
                continue
            if row.side == "flat":
                self._mark_done(key)
                signals.extend(self._close(row.symbol))
                continue
            signal = self._signal(row, price)
            if signal is None:
                continue
            self._mark_done(key)
            signals.append(signal)
        return signals or NO_SIGNALS

    def _close(self, symbol: str) -> Sequence[Signal]:
        """A `flat` row: the position held, closed at market (reduce-only)."""
        held = self.ctx.account.position_size(symbol)
        return NO_SIGNALS if held == 0.0 else (closing_intent(symbol, held, "plan"),)

    def _signal(self, row: PlanRow, price: float | None) -> Signal | None:
        label = row.tag or f"plan {row.id or row.key()}"
        size = row.size
        if size is None:
            at = _fill_price(row, price)
            if not at:
                return None  # no price yet to turn the notional into a size
            assert row.notional is not None
            size = row.notional / at
        return OrderIntent(
            symbol=row.symbol,
            side=Side.BUY if row.side == "long" else Side.SELL,
            size=size,
            order_type=OrderType.LIMIT if row.entry == "limit" else OrderType.MARKET,
            limit_price=row.limit_price if row.entry == "limit" else None,
            reason=label,
            stop_loss=row.stop,
            take_profit=row.take_profit,
        )

    # -- executed rows ---------------------------------------------------------------
    def _recall(self) -> None:
        self._recalled = True
        if self.ctx.memory is not None:
            self._done |= self.ctx.memory.recall(_MEMORY)

    def _mark_done(self, key: str) -> None:
        self._done.add(key)
        if self.ctx.memory is not None:
            self.ctx.memory.remember(_MEMORY, key)

    def state(self) -> object:
        return sorted(self._done), self._recalled

    def restore(self, state: object) -> None:
        """Go on from a checkpoint with the rows executed then. The stored keys are not
        read again: they also hold the rows this run executed after its checkpoint,
        whose orders the resume deleted, so those rows run again as they did then."""
        done, recalled = state if isinstance(state, tuple) else (state, True)  # older: keys only
        assert isinstance(done, list)
        self._done, self._recalled = set(done), bool(recalled)


def _fill_price(row: PlanRow, price: float | None) -> float | None:
    """The price a row's notional is turned into a size at: the market's for a market
    entry; a limit entry's own price when it rests (a long limit below the market, a
    short one above), else the market's, which it takes."""
    limit = row.limit_price
    if row.entry != "limit" or limit is None:
        return price
    if not price:
        return limit
    return min(limit, price) if row.side == "long" else max(limit, price)


def _file_stamp(path: Path) -> tuple[int, int]:
    """The file's (modification time, size); PlanFileError when there is no such file
    (a path Path.is_file() cannot take, with a NUL byte or too long, included)."""
    try:
        stat = path.stat() if path.is_file() else None
    except (OSError, ValueError):
        stat = None
    if stat is None:
        raise PlanFileError(f"plan {short_path(path)}: no such file")
    return stat.st_mtime_ns, stat.st_size


def _due(row: PlanRow, ts: int) -> bool:
    return (row.valid_from is None or ts >= row.valid_from) and (
        row.valid_until is None or ts < row.valid_until
    )
