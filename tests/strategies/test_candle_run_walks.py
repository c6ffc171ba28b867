"""A quiet stretch hands a strategy its candles through `candle_run`; SmaCross walks
them in `MeanPair.run`'s loop, which also takes the chart's samples (`plot_at`). That
walk must give what the default walk (`Strategy.candle_run`: `on_event` per candle,
`plot(k)` right after candle k) gives for the same candles: the same stops, signals and
samples (the same averages at each sample), however the stretches are cut."""

import logging

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from perps_bot.feeds.columns import CandleColumns
from perps_bot.strategies import SmaCross, Strategy, StrategyContext

SYM = "BTC-PERP"
MINUTE = 60_000


def _block(closes: list[float]) -> CandleColumns:
    n = len(closes)
    open_time = np.arange(n, dtype=np.int64) * MINUTE
    close = np.asarray(closes, dtype=np.float64)
    columns = (open_time, close, close + 0.5, close - 0.5, close, np.ones(n))
    return CandleColumns(SYM, open_time + MINUTE, columns, None, [])


def _strategy(fast: int, slow: int, stop_pct: float) -> SmaCross:
    ctx = StrategyContext(
        symbols=[SYM],
        account=None,  # type: ignore[arg-type]  # a candle walk reads no account
        order_size=lambda symbol: 1.0,
        logger=logging.getLogger("test"),
    )
    return SmaCross({"fast": fast, "slow": slow, "stop_pct": stop_pct}, ctx)


def _walk(
    strategy: SmaCross, default: bool, block: CandleColumns, cuts: list[int], plot_at: set[int]
) -> list[tuple[object, ...]]:
    """What a quiet stretch would see: the stretches' ends and signals, and each sample
    (its candle and the averages then), stretch after stretch up to the block's end."""
    run = Strategy.candle_run(strategy, block) if default else strategy.candle_run(block)
    seen: list[tuple[object, ...]] = []

    def plot(k: int) -> None:
        seen.append(("plot", k, repr(strategy.plot_values(SYM))))

    n, i, cut = block.candles, 0, 0
    while i < n:
        j = min(n, i + cuts[cut % len(cuts)])
        cut += 1
        k, signals = run(i, j, sorted(x for x in plot_at if i <= x < j), plot)
        seen.append(("run", i, j, k, list(signals)))
        i = k
    return seen


@settings(max_examples=150, deadline=None)
@given(
    windows=st.tuples(st.integers(1, 6), st.integers(1, 6)).filter(lambda w: w[0] != w[1]),
    steps=st.lists(st.integers(-4, 4), min_size=1, max_size=150),
    stop_pct=st.sampled_from([0.0, 0.01, 0.03]),
    cuts=st.lists(st.integers(1, 40), min_size=1, max_size=8),
    plot_at=st.sets(st.integers(0, 149)),
)
def test_sma_cross_walk_gives_what_the_default_walk_gives(
    windows: tuple[int, int],
    steps: list[int],
    stop_pct: float,
    cuts: list[int],
    plot_at: set[int],
) -> None:
    fast, slow = sorted(windows)
    closes = list(100.0 + np.cumsum(steps) * 0.5)
    block = _block(closes)
    own = _walk(_strategy(fast, slow, stop_pct), False, block, cuts, plot_at)
    default = _walk(_strategy(fast, slow, stop_pct), True, block, cuts, plot_at)
    assert own == default
    assert any(entry[0] == "plot" for entry in own) == any(k < len(closes) for k in plot_at)
