"""What a checkpoint keeps must be enough to go on exactly: each component's state,
exported at any point and imported into a fresh one, gives the same future (hypothesis
picks the cut). And the risk gate's trading state carries over to a later run."""

import logging
import pickle
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from perps_bot.config import RiskConfig
from perps_bot.config.models import MockConfig
from perps_bot.domain import Candle, DenialReason, FundingRate, OrderIntent, Side, TradingState
from perps_bot.feeds.random_walk import RandomWalkFeed
from perps_bot.risk import RiskGate, RiskState
from perps_bot.strategies import FundingCarry, MeanReversion, SmaCross, Strategy, StrategyContext
from tests.strategies.test_builtin_strategies import FakeAccount

MINUTE = 60_000
T0 = 1_704_067_200_000
SYM = "BTC-PERP"


def _events(n: int, seed: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    events: list[Any] = []
    for i, close in enumerate(closes.tolist()):
        ts = T0 + (i + 1) * MINUTE
        events.append(Candle(ts, SYM, ts - MINUTE, close, close * 1.001, close * 0.999, close, 1.0))
        if i % 7 == 0:
            events.append(FundingRate(ts, SYM, float(rng.normal(0, 0.001)), close))
    return events


def _strategy(cls: type[Strategy], params: dict[str, Any]) -> Strategy:
    ctx = StrategyContext([SYM], FakeAccount(), lambda _s: 1.0, logging.getLogger("t"))
    strategy = cls(params, ctx)
    strategy.on_start()
    return strategy


STRATEGIES: list[tuple[type[Strategy], dict[str, Any]]] = [
    (SmaCross, {"fast": 3, "slow": 8, "stop_pct": 0.01}),
    (MeanReversion, {"lookback": 10, "entry_z": 1.5}),
    (MeanReversion, {"mode": "rsi", "rsi_period": 5}),
    (FundingCarry, {"threshold": 0.001}),
]


@settings(max_examples=40, deadline=None)
@given(
    which=st.integers(0, len(STRATEGIES) - 1),
    cut=st.integers(0, 300),
    seed=st.integers(0, 2**16),
)
def test_a_restored_strategy_signals_exactly_like_the_original(
    which: int, cut: int, seed: int
) -> None:
    cls, params = STRATEGIES[which]
    events = _events(300, seed)
    original = _strategy(cls, params)
    for event in events[:cut]:
        original.on_event(event)
    copy = _strategy(cls, params)
    copy.restore(pickle.loads(pickle.dumps(original.state())))
    for event in events[cut:]:
        assert original.on_event(event) == copy.on_event(event)


def _feed(**kw: Any) -> RandomWalkFeed:
    mock = MockConfig.model_validate(
        {"symbols": {"BTC-PERP": {"initial_price": 60000.0}, "ETH-PERP": {"initial_price": 3000.0}}}
    )
    return RandomWalkFeed(
        mock,
        ["BTC-PERP", "ETH-PERP"],
        7,
        tick_sizes={"BTC-PERP": 0.1, "ETH-PERP": 0.01},
        start_ms=T0,
        end_ms=T0 + 40_000_000,
        funding_interval_ms=3_600_000,
        chunk_ticks=500,
        **kw,
    )


async def _drain(feed: RandomWalkFeed, batches: int | None = None) -> list[Any]:
    out: list[Any] = []
    taken = 0
    async for batch in feed.batches():
        out.extend(batch)
        taken += 1
        if batches is not None and taken == batches:
            break
    return out


async def test_a_restored_random_walk_goes_on_with_the_same_events() -> None:
    whole = await _drain(_feed())
    for cut in (1, 3, 17):  # dev-fast: checkpoints fall between chunks
        first = _feed()
        head = await _drain(first, cut)
        second = _feed()
        second.restore_state(pickle.loads(pickle.dumps(first.state())))
        assert head + await _drain(second) == whole


async def test_a_restored_realtime_walk_resumes_inside_a_chunk() -> None:
    async def no_sleep(_s: float) -> None:
        return None

    whole = await _drain(_feed(realtime=True, sleep=no_sleep))
    first = _feed(realtime=True, sleep=no_sleep)
    head = await _drain(first, 123)  # one tick per batch: inside the first chunk
    second = _feed(realtime=True, sleep=no_sleep)
    second.restore_state(pickle.loads(pickle.dumps(first.state())))
    assert head + await _drain(second) == whole


class _Account(FakeAccount):
    value = 100_000.0

    def equity(self) -> float:
        return self.value


def _gate() -> RiskGate:
    return RiskGate(
        RiskConfig(max_drawdown=0.05, reducing_drawdown=0.04, daily_loss_limit=0.5), _Account()
    )


def test_a_halt_and_its_peak_carry_over_to_the_next_run() -> None:
    gate = _gate()
    gate.on_equity(T0, 100_000.0)
    gate.on_equity(T0 + MINUTE, 94_000.0)
    assert gate.state is TradingState.HALTED
    stored: RiskState = pickle.loads(pickle.dumps(gate.export_state()))
    assert stored.state == "HALTED" and stored.peak == 100_000.0

    # a live restart: the same account (the ledger adopted the exchange's balance)
    again = _gate()
    again.import_state(stored, same_account=True)
    assert again.state is TradingState.HALTED
    intent = OrderIntent(symbol=SYM, side=Side.BUY, size=0.01)
    again.on_market_data(SYM, T0 + 2 * MINUTE)
    denied = again.check(intent, T0 + 2 * MINUTE, 60_000.0)
    assert not denied.approved and denied.reason is DenialReason.MAX_DRAWDOWN_HALT
    again.resume()
    again.on_equity(T0 + 3 * MINUTE, 94_500.0)
    assert again.state is TradingState.ACTIVE, "resume restarts the peak at the last equity"

    # the peak and the day's start are kept for the same account, not for a fresh one
    reducing = _gate()
    reducing.on_equity(T0, 100_000.0)
    reducing.on_equity(T0 + MINUTE, 95_500.0)
    assert reducing.state is TradingState.REDUCING
    state = reducing.export_state()
    same = _gate()
    same.import_state(state, same_account=True)
    same.on_equity(T0 + 2 * MINUTE, 95_600.0)
    assert same.state is TradingState.REDUCING, "4.4% below the restored peak"
    fresh = _gate()
    fresh.import_state(state, same_account=False)
    fresh.on_equity(T0 + 2 * MINUTE, 95_600.0)
    assert fresh.state is TradingState.ACTIVE, "a fresh paper account has its own peak"


@settings(max_examples=60, deadline=None)
@given(
    equities=st.lists(st.floats(90_000, 110_000), min_size=2, max_size=40),
    cut=st.integers(0, 40),
)
def test_export_import_continues_the_gate_exactly(equities: list[float], cut: int) -> None:
    original = _gate()
    for i, equity in enumerate(equities[:cut]):
        original.on_equity(T0 + i * 3 * 3_600_000, equity)
    copy = _gate()
    copy.import_state(original.export_state(), same_account=True)
    for i, equity in enumerate(equities[cut:], start=cut):
        ts = T0 + i * 3 * 3_600_000
        assert original.on_equity(ts, equity) == copy.on_equity(ts, equity)
        assert (original.state, original.state_detail) == (copy.state, copy.state_detail)
