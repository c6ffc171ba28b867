"""Candles from ticks: strategies work on bars, while the mock exchange and the live
feed produce quotes and books. A bar for [t0, t0 + timeframe) is emitted by the first
price at or after t0 + timeframe, stamped with its close time, so a strategy never sees
a bar before it has closed (no look-ahead)."""

from collections.abc import Callable
from dataclasses import dataclass

from perps_bot.config.errors import ConfigError
from perps_bot.domain import Candle, format_duration, iso_utc, parse_duration
from perps_bot.feeds.base import Feed


class BarBuilder:
    __slots__ = ("_bars", "_timeframe")

    def __init__(self, timeframe_ms: int) -> None:
        self._timeframe = timeframe_ms
        # symbol -> [open_time, open, high, low, close, volume, mark]
        self._bars: dict[str, list[float]] = {}

    def update(self, symbol: str, ts: int, price: float, mark: float) -> Candle | None:
        """Add one price; return the bar it closed, if any."""
        bar = self._bars.get(symbol)
        if bar is not None and ts < bar[0] + self._timeframe:
            _extend(bar, price, price, price, mark)
            return None
        closed = None
        if bar is not None:
            open_time = int(bar[0])
            closed = Candle(
                ts=open_time + self._timeframe,
                symbol=symbol,
                open_time=open_time,
                open=bar[1],
                high=bar[2],
                low=bar[3],
                close=bar[4],
                volume=bar[5],
                mark=bar[6],
            )
        start = ts - ts % self._timeframe
        self._bars[symbol] = [start, price, price, price, price, 0.0, mark]
        return closed

    @property
    def timeframe_ms(self) -> int:
        return self._timeframe

    def drop(self, symbol: str) -> None:
        """Forget the bar of `symbol` being built (a resumed run's, from before it
        stopped: the exchange's closed candle of that time replaces it)."""
        self._bars.pop(symbol, None)

    def open_until(self, symbol: str) -> float | None:
        """When the bar of `symbol` being built closes (None: none is open yet); a
        price before then only folds into it."""
        bar = self._bars.get(symbol)
        return None if bar is None else bar[0] + self._timeframe

    def fold(self, symbol: str, low: float, high: float, last: float, mark: float) -> None:
        """A run of prices before `open_until`, at once: their lowest and highest, the
        last price and the last mark (the bar `update` would build from them one at a
        time, whose high and low are picks, never sums)."""
        _extend(self._bars[symbol], low, high, last, mark)

    def state(self) -> dict[str, list[float]]:
        """The bars being built, for a checkpoint (pickled by the caller at once)."""
        return self._bars

    def restore_state(self, state: dict[str, list[float]]) -> None:
        self._bars = {symbol: list(bar) for symbol, bar in state.items()}


def _extend(bar: list[float], low: float, high: float, last: float, mark: float) -> None:
    """Fold prices into an open bar [open_time, open, high, low, close, volume, mark]."""
    if high > bar[2]:
        bar[2] = high
    if low < bar[3]:
        bar[3] = low
    bar[4] = last
    bar[6] = mark


class CandleAggregator:
    """Bars of `timeframe` from candles of a shorter interval (a backtest of 1m data for a
    strategy on 5m bars).

    Bars are aligned to multiples of `timeframe` since the epoch (UTC). A candle belongs
    to the bar containing its open time; the bar is emitted by the candle that closes
    it (close time at or past the bar's end), at that candle's event, stamped with the
    bar's close time: a strategy sees a bar as soon as it is complete, never before.
    open = first candle's open, high / low = extremes, close = last close, volume =
    sum, mark = last known mark, mark_high / mark_low = extremes of the known ones. A
    bar the data starts inside of is built from the candles it has (a partial first
    bar); a bar still open when the data ends is never emitted.
    """

    __slots__ = ("_bars", "_timeframe")

    def __init__(self, timeframe_ms: int) -> None:
        if timeframe_ms <= 0:
            raise ValueError(f"timeframe must be positive, got {timeframe_ms} ms")
        self._timeframe = timeframe_ms
        self._bars: dict[str, Candle] = {}

    def add(self, candle: Candle) -> Candle | None:
        """Fold one candle in; return the bar it completes, if any."""
        symbol = candle.symbol
        tf = self._timeframe
        start = candle.open_time - candle.open_time % tf
        bar = self._bars.get(symbol)
        if bar is None or bar.open_time != start:
            bar = Candle(
                ts=start + tf,
                symbol=symbol,
                open_time=start,
                open=candle.open,
                high=candle.high,
                low=candle.low,
                close=candle.close,
                volume=candle.volume,
                mark=candle.mark,
                mark_high=candle.mark_high,
                mark_low=candle.mark_low,
            )
            self._bars[symbol] = bar
        else:
            if candle.high > bar.high:
                bar.high = candle.high
            if candle.low < bar.low:
                bar.low = candle.low
            bar.close = candle.close
            bar.volume += candle.volume
            if candle.mark is not None:
                bar.mark = candle.mark
            bar.mark_high = _extreme(max, bar.mark_high, candle.mark_high)
            bar.mark_low = _extreme(min, bar.mark_low, candle.mark_low)
        if candle.ts < bar.ts:
            return None
        del self._bars[symbol]
        return bar


def _extreme(
    pick: Callable[[float, float], float], current: float | None, new: float | None
) -> float | None:
    if new is None:
        return current
    return new if current is None else pick(current, new)


@dataclass(frozen=True, slots=True)
class BarGrid:
    """The bars a strategy sees: `length` ms long, one of them opening at `edge`. A
    window of a walk-forward that ends inside a bar is seen to end only when that bar
    closes, its last position held into the time after it: its edges must be bar edges."""

    length: int
    edge: int = 0

    def first_edge(self, ts: int) -> int:
        """The first bar edge at or after `ts`."""
        return ts + (self.edge - ts) % self.length

    def whole(self, what: str, span: int) -> None:
        """ConfigError unless `span` is one bar or more, and a whole number of them."""
        bar = format_duration(self.length)
        if span < self.length:
            raise ConfigError(f"{what} {format_duration(span)} is shorter than the {bar} bars"
                              " the strategy sees: no bar would close in the window")  # fmt: skip
        self._on_grid(what, span, 0, "is not a whole number of the", format_duration)

    def on_edge(self, what: str, ts: int) -> None:
        """ConfigError unless `ts` is the edge of a bar."""
        self._on_grid(what, ts, self.edge, "is not on an edge of the", iso_utc)

    def _on_grid(
        self, what: str, value: int, edge: int, fault: str, show: Callable[[int], str]
    ) -> None:
        off = (value - edge) % self.length
        if off:
            raise ConfigError(
                f"{what} {show(value)} {fault} {format_duration(self.length)} bars the"
                f" strategy sees (window edges fall on bar edges): use {show(value - off)}"
                f" or {show(value - off + self.length)}"
            )


def strategy_bars(feed: Feed | None, timeframe: str) -> BarGrid:
    """The bars a strategy on `timeframe` sees from `feed`: bars aggregated from shorter
    candles, and bars built from ticks (`feed` None: the tick feed of a dev, dry-run or
    live run), open at multiples of their length since the epoch (CandleAggregator,
    BarBuilder); a file's candles taken as they are open where the file's first one
    does, a whole number of candles apart."""
    aggregated = feed.strategy_bar_ms(timeframe) if feed is not None else None
    if aggregated:
        return BarGrid(aggregated)
    if feed is not None and feed.candle_history:
        interval, start = getattr(feed, "interval_ms", None), getattr(feed, "start_ts", None)
        if isinstance(interval, int) and isinstance(start, int):
            return BarGrid(interval, start)
    return BarGrid(parse_duration(timeframe))
