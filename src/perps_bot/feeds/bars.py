"""Candles from ticks: strategies work on bars, while the mock exchange and the live
feed produce quotes and books. A bar for [t0, t0 + timeframe) is emitted by the first
price at or after t0 + timeframe, stamped with its close time, so a strategy never sees
a bar before it has closed (no look-ahead)."""

from perps_bot.domain import Candle


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
            if price > bar[2]:
                bar[2] = price
            elif price < bar[3]:
                bar[3] = price
            bar[4] = price
            bar[6] = mark
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
