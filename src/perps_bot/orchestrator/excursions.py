"""Worst and best unrealized price PnL of each round trip, tracked live.

Tracked here rather than rebuilt by the report because only the live loop sees every
price (intra-candle extremes included); storing a row per trade is far cheaper than
storing every price for the report to replay."""

from perps_bot.storage import RunStore


class ExcursionTracker:
    __slots__ = ("_open", "_run_id", "_store")

    def __init__(self, run_id: str, store: RunStore) -> None:
        self._run_id = run_id
        self._store = store
        # symbol -> [open_ts, size, entry, mae, mfe]
        self._open: dict[str, list[float]] = {}

    def on_prices(self, symbol: str, low: float, high: float) -> None:
        """Account for the price range just traded; O(1), called per event."""
        trade = self._open.get(symbol)
        if trade is None:
            return
        size = trade[1]
        a = size * (low - trade[2])
        b = size * (high - trade[2])
        worst, best = (a, b) if a < b else (b, a)
        if worst < trade[3]:
            trade[3] = worst
        if best > trade[4]:
            trade[4] = best

    def on_position(self, symbol: str, ts: int, before: float, after: float, entry: float) -> None:
        """A fill moved the position from `before` to `after` (entry: avg entry after)."""
        trade = self._open.get(symbol)
        flipped = before * after < 0
        if trade is not None and (after == 0 or flipped):
            self._store.add_excursion(
                self._run_id, symbol, int(trade[0]), ts, min(trade[3], 0.0), max(trade[4], 0.0)
            )
            del self._open[symbol]
            trade = None
        if after != 0:
            if trade is None:
                self._open[symbol] = [float(ts), after, entry, 0.0, 0.0]
            else:
                trade[1] = after
                trade[2] = entry

    def state(self) -> dict[str, list[float]]:
        """The open round trips, for a checkpoint (pickled by the caller at once)."""
        return self._open

    def restore_state(self, state: dict[str, list[float]]) -> None:
        self._open = {symbol: list(trade) for symbol, trade in state.items()}


class NoExcursions(ExcursionTracker):
    """A run that keeps only its metrics (optimisation trials): MAE and MFE are not
    metrics, so the per-event tracking is skipped."""

    __slots__ = ()

    def on_prices(self, symbol: str, low: float, high: float) -> None:
        return None

    def on_position(self, symbol: str, ts: int, before: float, after: float, entry: float) -> None:
        return None
