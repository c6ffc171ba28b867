"""SPEC 9 for the walkforward strategy: restored from its `state()` at any point, it goes
on exactly like the original (same window, same inner indicators), as a resumed paper
run must. Before, it kept the base class's None: a restored copy started over with no
window in play and cold indicators."""

import json
import logging
import pickle

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from perps_bot.domain import Candle, TargetPosition
from perps_bot.strategies import StrategyContext
from perps_bot.strategies.walkforward import WalkForward
from tests.strategies.test_builtin_strategies import FakeAccount

MINUTE = 60_000
SYM = "BTC-PERP"
WINDOWS = [
    [20 * MINUTE, 120 * MINUTE, {"fast": 3, "slow": 8}],
    [150 * MINUTE, 260 * MINUTE, {"fast": 2, "slow": 5}],
]


def _walkforward() -> WalkForward:
    ctx = StrategyContext([SYM], FakeAccount(), lambda _s: 1.0, logging.getLogger("t"))
    params = {"strategy": "sma_cross", "windows": json.dumps(WINDOWS)}
    strategy = WalkForward(params, ctx)
    strategy.on_start()
    return strategy


def _candles(seed: int) -> list[Candle]:
    rng = np.random.default_rng(seed)
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    return [
        Candle((i + 1) * MINUTE, SYM, i * MINUTE, c, c, c, c, 1.0)
        for i, c in enumerate(closes.tolist())
    ]


@settings(max_examples=40, deadline=None)
@given(cut=st.integers(0, 300), seed=st.integers(0, 2**16))
def test_a_restored_walkforward_signals_exactly_like_the_original(cut: int, seed: int) -> None:
    candles = _candles(seed)
    original = _walkforward()
    for candle in candles[:cut]:
        original.on_event(candle)
    copy = _walkforward()
    copy.restore(pickle.loads(pickle.dumps(original.state())))
    together = [(original.on_event(c), copy.on_event(c)) for c in candles[cut:]]
    assert all(a == b for a, b in together)
    assert sum(1 for a, _ in together if a) > 0 or cut > 200


def test_a_resumed_walkforward_states_what_its_window_strategy_wants() -> None:
    """Resumed by the session API, walkforward passes the question to the strategy of
    the window in play (a cross dropped while paused is targeted again), and says
    nothing between windows."""
    strategy = _walkforward()
    assert list(strategy.on_resume()) == []  # no window in play yet
    sides = []
    for candle in _candles(3)[:119]:  # inside the first window
        for signal in strategy.on_event(candle):
            assert isinstance(signal, TargetPosition)
            sides.append(signal.size)
    assert sides, "the window's sma_cross crossed"
    (again,) = strategy.on_resume()  # the account (a FakeAccount) holds nothing
    assert isinstance(again, TargetPosition) and again.size == sides[-1]
