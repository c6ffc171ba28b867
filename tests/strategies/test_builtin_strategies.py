"""Built-in strategies on hand-made series: signals exactly where computed by hand."""

import logging
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from perps_bot.domain import (
    Candle,
    Fill,
    FundingRate,
    Liquidity,
    MarkPrice,
    Quote,
    Side,
    Signal,
    TargetPosition,
    iso_utc,
)
from perps_bot.strategies import (
    NO_SIGNALS,
    FundingCarry,
    MeanReversion,
    SmaCross,
    Strategy,
    StrategyContext,
    load_strategy,
)
from tests.conftest import SHARED_DATA

MINUTE = 60_000
DATA = SHARED_DATA
SYM = "BTC-PERP"


@dataclass
class FakeAccount:
    positions: dict[str, float] = field(default_factory=dict)
    entries: dict[str, float] = field(default_factory=dict)

    def position_size(self, symbol: str) -> float:
        return self.positions.get(symbol, 0.0)

    def entry_price(self, symbol: str) -> float:
        return self.entries.get(symbol, 0.0)

    def mark_price(self, symbol: str) -> float:
        return self.entries.get(symbol, 0.0)

    def equity(self) -> float:
        return 100_000.0

    def available_balance(self) -> float:
        return 100_000.0

    def leverage(self, symbol: str) -> float:
        return 5.0


def make_ctx(account: FakeAccount | None = None, size: float = 0.5) -> StrategyContext:
    return StrategyContext(
        symbols=[SYM, "ETH-PERP"],
        account=account or FakeAccount(),
        order_size=lambda symbol: size if symbol == SYM else 2.0,
        logger=logging.getLogger("test"),
    )


def candle(i: int, close: float, symbol: str = SYM) -> Candle:
    return Candle(
        ts=(i + 1) * MINUTE,
        symbol=symbol,
        open_time=i * MINUTE,
        open=close,
        high=close,
        low=close,
        close=close,
        volume=1.0,
    )


def run(strategy: Strategy, closes: Sequence[float]) -> dict[int, list[Signal]]:
    """Feed closes as candles; return {bar index: signals} for bars that signalled."""
    out: dict[int, list[Signal]] = {}
    for i, close in enumerate(closes):
        signals = strategy.on_event(candle(i, close))
        if signals:
            out[i] = list(signals)
    return out


def targets(signals: dict[int, list[Signal]]) -> dict[int, tuple[float, str]]:
    result = {}
    for i, sigs in signals.items():
        assert len(sigs) == 1
        sig = sigs[0]
        assert isinstance(sig, TargetPosition)
        result[i] = (sig.size, sig.reason)
    return result


# ---- sma_cross -----------------------------------------------------------------------


def test_sma_cross_signals_exactly_at_hand_computed_crosses() -> None:
    # fast=2 / slow=3 by hand (fast, slow):
    # i2 (10, 10) equal; i3 (11.5, 11) up: first regime, no signal; i4 (10, 10) touch;
    # i5 (7, 9) down -> short; i6 (7, 7) touch; i7 (11.5, 10) up -> long
    strategy = SmaCross({"fast": 2, "slow": 3}, make_ctx(size=0.5))
    result = targets(run(strategy, [10, 10, 10, 13, 7, 7, 7, 16]))
    assert result == {5: (-0.5, "sma_cross down 2/3"), 7: (0.5, "sma_cross up 2/3")}


def test_sma_cross_no_stop_by_default() -> None:
    strategy = SmaCross({"fast": 2, "slow": 3}, make_ctx())
    signals = run(strategy, [10, 10, 10, 13, 7, 7])
    (sig,) = signals[5]
    assert isinstance(sig, TargetPosition)
    assert sig.stop_price is None


def test_sma_cross_stop_exits_flat_when_close_crosses_it() -> None:
    # fast=2 / slow=5: i5 (21, 20.4) sets the up regime; i6 (16, 18.4) crosses down:
    # short at 10 with stop 11; i7 close 10.5 stays below; i8 close 11.5 crosses the stop
    strategy = SmaCross({"fast": 2, "slow": 5, "stop_pct": 0.1}, make_ctx(size=0.5))
    signals = run(strategy, [20, 20, 20, 20, 20, 22, 10, 10.5, 11.5, 11.6])
    assert sorted(signals) == [6, 8]
    (entry,) = signals[6]
    assert isinstance(entry, TargetPosition)
    assert entry.size == -0.5
    assert entry.stop_price == pytest.approx(11.0)
    assert targets({8: signals[8]}) == {8: (0.0, "stop")}


def test_sma_cross_liquidation_clears_its_stop() -> None:
    strategy = SmaCross({"fast": 2, "slow": 5, "stop_pct": 0.1}, make_ctx())
    closes = [20, 20, 20, 20, 20, 22, 10]
    assert sorted(run(strategy, closes)) == [6]
    liquidation = Fill(
        ts=8 * MINUTE,
        symbol=SYM,
        side=Side.BUY,
        size=0.5,
        price=10.4,
        fee=0.1,
        liquidity=Liquidity.TAKER,
        client_id="liq",
        correlation_id="liq",
        is_liquidation=True,
    )
    assert strategy.on_fill(liquidation) == NO_SIGNALS
    assert strategy.on_event(candle(7, 11.5)) == NO_SIGNALS  # would have been a stop


def test_sma_cross_adopts_an_existing_position_on_start() -> None:
    account = FakeAccount(positions={SYM: -0.5}, entries={SYM: 100.0})
    strategy = SmaCross({"fast": 2, "slow": 3, "stop_pct": 0.05}, make_ctx(account))
    assert strategy.on_start() == NO_SIGNALS
    assert strategy.on_event(candle(0, 104.0)) == NO_SIGNALS
    assert targets({1: list(strategy.on_event(candle(1, 105.5)))}) == {1: (0.0, "stop")}


def test_sma_cross_keeps_symbols_apart_and_ignores_other_events() -> None:
    strategy = SmaCross({"fast": 2, "slow": 3}, make_ctx())
    closes = [10, 10, 10, 13, 7, 7]
    for i, close in enumerate(closes):
        eth = strategy.on_event(candle(i, 100.0, "ETH-PERP"))
        assert eth == NO_SIGNALS
        assert strategy.on_event(Quote(i, SYM, close, close, close, close)) == NO_SIGNALS
        assert strategy.on_event(MarkPrice(i, SYM, close)) == NO_SIGNALS
        assert strategy.on_event(FundingRate(i, SYM, 0.01, close)) == NO_SIGNALS
        btc = strategy.on_event(candle(i, close))
        assert bool(btc) == (i == 5)


def test_sma_cross_matches_a_naive_reference_on_a_long_random_walk() -> None:
    rng = np.random.default_rng(7)
    closes = list(60_000.0 * np.exp(np.cumsum(rng.normal(0, 0.002, 5_000))))
    fast, slow = 5, 13
    expected: dict[int, float] = {}
    last = 0
    for i in range(slow - 1, len(closes)):
        f = math.fsum(closes[i - fast + 1 : i + 1]) / fast
        s = math.fsum(closes[i - slow + 1 : i + 1]) / slow
        sign = (f > s) - (f < s)
        if sign and sign != last:
            if last:
                expected[i] = 0.5 * sign
            last = sign
    strategy = SmaCross({"fast": fast, "slow": slow}, make_ctx(size=0.5))
    got = {i: size for i, (size, _) in targets(run(strategy, closes)).items()}
    assert len(expected) > 50
    assert got == expected


# ---- mean_reversion --------------------------------------------------------------------


def test_mean_reversion_zscore_entries_and_exits_by_hand() -> None:
    # lookback 4, population std:
    # i4 [100,100,100,90] mean 97.5 std 4.330 z=-1.73 -> long
    # i5 [100,100,90,95] z=-0.30 hold; i6 [100,90,95,100] z=+0.90 -> exit at the mean
    # i8 [95,100,100,100] z=+0.58 nothing; i9 [100,100,100,110] z=+1.73 -> short
    # i10 [100,100,110,100] z=-0.58 -> exit
    params = {"lookback": 4, "entry_z": 1.5, "exit_z": 0.0}
    strategy = MeanReversion(params, make_ctx(size=0.5))
    closes = [100, 100, 100, 100, 90, 95, 100, 100, 100, 110, 100]
    assert targets(run(strategy, closes)) == {
        4: (0.5, "mean_reversion long z=-1.73"),
        6: (0.0, "mean_reversion exit z=0.90"),
        9: (-0.5, "mean_reversion short z=1.73"),
        10: (0.0, "mean_reversion exit z=-0.58"),
    }


def test_mean_reversion_exit_z_exits_before_the_mean() -> None:
    # same series; with exit_z 0.5 the long exits at i5 (z=-0.30 >= -0.5)
    strategy = MeanReversion({"lookback": 4, "entry_z": 1.5, "exit_z": 0.5}, make_ctx())
    result = targets(run(strategy, [100, 100, 100, 100, 90, 95]))
    assert sorted(result) == [4, 5]
    assert result[5] == (0.0, "mean_reversion exit z=-0.30")


def test_mean_reversion_flat_window_gives_no_signal() -> None:
    strategy = MeanReversion({"lookback": 4, "entry_z": 1.5}, make_ctx())
    assert run(strategy, [100.0] * 20) == {}


def test_mean_reversion_holds_through_a_flat_window() -> None:
    # lookback 5: long at i5 (z=-2.00); from i10 the window is [81] * 5: no z-score, no
    # signal. The running sums left a rounding residue of 100 and 95 there (std ~1e-14),
    # so the strategy read z=0.00 and exited at i10 (in about one flat window of five).
    strategy = MeanReversion({"lookback": 5, "entry_z": 1.5}, make_ctx(size=0.5))
    closes = [100.0] * 5 + [95.0] + [81.0] * 11
    assert targets(run(strategy, closes)) == {5: (0.5, "mean_reversion long z=-2.00")}


def test_mean_reversion_stop_then_waits_to_rearm() -> None:
    # i4 long at 90 (stop 85.5); i5 close 85 -> stop; i6 [100,90,85,75] z=-1.39 extreme but
    # disarmed; i7 [90,85,75,90] z=+0.82 inside the band -> rearmed; i8 [85,75,90,70]
    # z=-1.26 -> long again
    params = {"lookback": 4, "entry_z": 1.2, "stop_pct": 0.05}
    strategy = MeanReversion(params, make_ctx(size=0.5))
    result = targets(run(strategy, [100, 100, 100, 100, 90, 85, 75, 90, 70]))
    assert result == {
        4: (0.5, "mean_reversion long z=-1.73"),
        5: (0.0, "stop"),
        8: (0.5, "mean_reversion long z=-1.26"),
    }


def test_mean_reversion_rsi_entries_and_exits_by_hand() -> None:
    # Wilder RSI, period 3. Changes -1,-1,-1 -> RSI 0 at i3 -> long.
    # i4 +1: gain (0*2+1)/3=.333, loss (1*2)/3=.667 -> RSI 33.3 hold
    # i5 +1: gain .556, loss .444 -> RSI 55.6 -> exit (>= 50)
    # i6 +1: gain .704, loss .296 -> RSI 70.4 -> short (>= 70)
    # i7 -2: gain .469, loss .864 -> RSI 35.2 -> exit (<= 50)
    params = {"mode": "rsi", "rsi_period": 3, "rsi_low": 30, "rsi_high": 70}
    strategy = MeanReversion(params, make_ctx(size=0.5))
    assert targets(run(strategy, [10, 9, 8, 7, 8, 9, 10, 8])) == {
        3: (0.5, "mean_reversion long rsi=0.0"),
        5: (0.0, "mean_reversion exit rsi=55.6"),
        6: (-0.5, "mean_reversion short rsi=70.4"),
        7: (0.0, "mean_reversion exit rsi=35.2"),
    }


def test_mean_reversion_zscore_matches_a_naive_reference() -> None:
    rng = np.random.default_rng(11)
    closes = [float(x) for x in 3_000.0 * np.exp(np.cumsum(rng.normal(0, 0.003, 3_000)))]
    lookback, entry_z, exit_z = 10, 1.8, 0.2
    expected: dict[int, float] = {}
    side = 0
    for i in range(lookback - 1, len(closes)):
        window = closes[i - lookback + 1 : i + 1]
        z = (closes[i] - statistics.fmean(window)) / statistics.pstdev(window)
        wanted = side
        if z <= -entry_z:
            wanted = 1
        elif z >= entry_z:
            wanted = -1
        elif (side > 0 and z >= -exit_z) or (side < 0 and z <= exit_z):
            wanted = 0
        if wanted != side:
            expected[i] = 0.5 * wanted
            side = wanted
    params = {"lookback": lookback, "entry_z": entry_z, "exit_z": exit_z}
    strategy = MeanReversion(params, make_ctx(size=0.5))
    got = {i: size for i, (size, _) in targets(run(strategy, closes)).items()}
    assert len(expected) > 50
    assert got == expected


# ---- funding_carry ---------------------------------------------------------------------


def test_funding_carry_positions_against_extreme_funding() -> None:
    strategy = FundingCarry({"threshold": 0.0005, "exit_threshold": 0.0001}, make_ctx(size=0.5))
    rates = [0.0001, 0.0006, 0.0003, 0.0001, -0.0005, -0.0002, 0.0007, -0.00005]
    got: dict[int, tuple[float, str]] = {}
    for i, rate in enumerate(rates):
        assert strategy.on_event(candle(i, 100.0)) == NO_SIGNALS  # candles are ignored
        signals = strategy.on_event(FundingRate(i * 8 * 3_600_000, SYM, rate, 100.0))
        if signals:
            got.update(targets({i: list(signals)}))
    assert got == {
        1: (-0.5, "funding_carry short: rate 0.000600 beyond 0.0005"),
        3: (0.0, "funding_carry exit: rate 0.000100 within 0.0001"),
        4: (0.5, "funding_carry long: rate -0.000500 beyond 0.0005"),
        6: (-0.5, "funding_carry short: rate 0.000700 beyond 0.0005"),
        7: (0.0, "funding_carry exit: rate -0.000050 within 0.0001"),
    }


def test_funding_carry_uses_each_symbols_order_size() -> None:
    strategy = FundingCarry({}, make_ctx(size=0.5))
    (sig,) = strategy.on_event(FundingRate(0, "ETH-PERP", -0.001, 3_000.0))
    assert isinstance(sig, TargetPosition)
    assert (sig.symbol, sig.size) == ("ETH-PERP", 2.0)


# ---- common ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sma_cross", "mean_reversion", "funding_carry"])
def test_builtins_are_documented_and_quiet_by_default(name: str) -> None:
    cls = load_strategy(name)
    assert cls.name == name
    for field_name, info in cls.Params.model_fields.items():
        assert info.description, f"{name}.{field_name} has no description"
    strategy = cls({}, make_ctx())
    assert strategy.on_start() == NO_SIGNALS
    assert strategy.on_stop() == NO_SIGNALS
    assert strategy.on_event(MarkPrice(0, SYM, 1.0)) is NO_SIGNALS


def test_funding_carry_on_real_binance_xrp_funding_history() -> None:
    # XRP/USDT:USDT 8h funding, Nov-Dec 2021 (freqtrade test data). Rates beyond 0.0001 in
    # the file: the max 0.00058316 at 2021-11-26 00:00 (then 0.0001646, then 0.0001) and
    # the min -0.00219334 at 2021-12-04 08:00 (then 0.0001); everything else is small.
    feather = pytest.importorskip("pyarrow.feather")
    path = DATA / "futures" / "XRP_USDT_USDT-8h-funding_rate.feather"
    if not path.exists():
        pytest.skip(f"test data not available at {path}")
    table = feather.read_table(path)
    stamps = [int(ts.timestamp() * 1000) for ts in table.column("date").to_pylist()]
    rates = table.column("open").to_pylist()
    assert len(rates) == 91
    strategy = FundingCarry({"threshold": 0.0005, "exit_threshold": 0.0001}, make_ctx(size=10))
    got = []
    for ts, rate in zip(stamps, rates, strict=True):
        for sig in strategy.on_event(FundingRate(ts - ts % (8 * 3_600_000), SYM, rate, 1.0)):
            assert isinstance(sig, TargetPosition)
            got.append((iso_utc(ts - ts % (8 * 3_600_000)), sig.size))
    assert got == [
        ("2021-11-26T00:00:00.000Z", -10.0),
        ("2021-11-26T16:00:00.000Z", 0.0),
        ("2021-12-04T08:00:00.000Z", 10.0),
        ("2021-12-04T16:00:00.000Z", 0.0),
    ]


def test_plotted_series_are_the_decision_indicators() -> None:
    sma = SmaCross({"fast": 2, "slow": 3}, make_ctx())
    assert sma.plot_series() == ("SMA 2", "SMA 3")
    run(sma, [1.0, 2.0, 6.0])
    assert sma.plot_values(SYM) == (4.0, 3.0)
    mr = MeanReversion({"lookback": 4, "entry_z": 1.5}, make_ctx())
    assert mr.plot_series() == ("mean", "mean + 1.5 std", "mean - 1.5 std")
    run(mr, [1.0, 2.0, 3.0])
    assert mr.plot_values(SYM) is None  # window not full yet
    run(mr, [4.0])
    mean, upper, lower = mr.plot_values(SYM) or (0.0, 0.0, 0.0)
    std = statistics.pstdev([1.0, 2.0, 3.0, 4.0])
    assert (
        mean == 2.5
        and math.isclose(upper, 2.5 + 1.5 * std)
        and math.isclose(lower, 2.5 - 1.5 * std)
    )
    rsi = MeanReversion({"mode": "rsi"}, make_ctx())
    assert rsi.plot_series() == () and rsi.plot_values(SYM) is None


def test_readme_lists_each_builtin_param_with_its_description() -> None:
    # SPEC 2: mean_reversion's params documented; they were only in the code
    from perps_bot.strategies.loader import params_markdown

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert params_markdown() in readme
    for name in ("sma_cross", "mean_reversion", "funding_carry"):
        for param, info in load_strategy(name).Params.model_fields.items():
            assert f"`{param}` " in params_markdown() and info.description


def test_sma_cross_restarted_against_the_averages_flips_once_it_knows_them() -> None:
    """A bot restarted holding a short while the averages crossed up when it was down:
    an uninterrupted one would be long, so once its windows are full it targets long
    (a flat start, or one on the averages' side, waits for the next cross as before)."""
    closes = [10, 10, 13]  # fast=2 / slow=3: i2 (11.5, 11) up, the first regime
    short = FakeAccount(positions={SYM: -0.5}, entries={SYM: 12.0})
    strategy = SmaCross({"fast": 2, "slow": 3}, make_ctx(short, size=0.5))
    assert strategy.on_start() == NO_SIGNALS
    got = targets(run(strategy, closes))
    assert got == {2: (0.5, "sma_cross up 2/3 (against the position held at start)")}
    for held in ({}, {SYM: 0.5}):
        same = SmaCross({"fast": 2, "slow": 3}, make_ctx(FakeAccount(positions=held)))
        assert same.on_start() == NO_SIGNALS
        assert run(same, closes) == {}


def test_funding_carry_on_resume_states_again_the_side_the_account_does_not_hold() -> None:
    """Paused, its short at extreme funding was dropped: resumed, it targets the short
    (once), and says nothing for a symbol already held on the side it wants."""
    account = FakeAccount()
    strategy = FundingCarry({}, make_ctx(account, size=0.5))
    assert strategy.on_start() == NO_SIGNALS
    assert strategy.on_event(FundingRate(0, SYM, 0.001, 100.0))  # dropped while paused
    assert targets({0: list(strategy.on_resume())}) == {
        0: (-0.5, "funding_carry resume: wants short")
    }
    account.positions[SYM] = -0.4  # held on its side (a size the risk gate shrank)
    assert list(strategy.on_resume()) == []
    assert strategy.on_event(FundingRate(1, SYM, 0.0, 100.0))  # the exit, dropped too
    assert targets({0: list(strategy.on_resume())}) == {
        0: (0.0, "funding_carry resume: wants flat")
    }
