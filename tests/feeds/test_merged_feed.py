"""One feed over several symbols: every symbol's events, in time order, each symbol's
own order kept (a funding settlement after the candle closing at its time); and the
multi-symbol backtest with --timerange end to end."""

import asyncio
import itertools
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perps_bot.domain import MarketEvent
from perps_bot.feeds.historical import CandleFeed
from perps_bot.feeds.loaders import CandleArrays
from perps_bot.feeds.merged import MergedCandleFeed
from tests.research.helpers import START_MS, run_cli, write_candles

H8 = 8 * 3_600_000


def feed(symbol: str, start: int, n: int, batch: int) -> CandleFeed:
    t = start + np.arange(n, dtype=np.int64) * 3_600_000
    price = np.full(n, 100.0)
    arrays = CandleArrays(t, price, price, price, price, price, interval_ms=3_600_000)
    return CandleFeed(symbol, arrays, funding_interval_ms=H8, default_funding_rate=0.0001,
                      batch_size=batch)  # fmt: skip


async def events(f: CandleFeed | MergedCandleFeed) -> list[MarketEvent]:
    return [e for batch in [b async for b in f.batches()] for e in batch]


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(
        st.tuples(st.integers(0, 30), st.integers(1, 60), st.integers(1, 25)), min_size=1,
        max_size=4,
    )
)  # fmt: skip
def test_the_merge_is_every_symbols_events_in_time_order(
    shape: list[tuple[int, int, int]],
) -> None:
    def make() -> list[CandleFeed]:
        return [feed(f"S{i}-PERP", START_MS + off * 3_600_000, n, b)
                for i, (off, n, b) in enumerate(shape)]  # fmt: skip

    merged = asyncio.run(events(MergedCandleFeed(make())))
    alone = [asyncio.run(events(f)) for f in make()]
    assert [e.ts for e in merged] == sorted(e.ts for e in merged)
    for i, own in enumerate(alone):  # each symbol's own sequence, untouched
        assert [e for e in merged if e.symbol == f"S{i}-PERP"] == own
    # at one time, the symbols keep their given order
    for a, b in itertools.pairwise(merged):
        if a.ts == b.ts and a.symbol != b.symbol:
            assert int(a.symbol[1]) < int(b.symbol[1])


def test_a_multi_symbol_backtest_in_a_timerange(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    btc = write_candles(tmp_path / "btc.feather", 3 * 1440, seed=1)
    eth = write_candles(tmp_path / "eth.feather", 3 * 1440, seed=2, price=3_000.0)
    db = tmp_path / "bt.sqlite"
    code, out, err = run_cli(
        ["backtest", "--data", str(btc), "--symbol", "BTC-PERP", "--data", str(eth),
         "--symbol", "ETH-PERP", "--strategy", "sma_cross", "--timerange", "20240102-20240103",
         "--db", str(db), "--no-progress"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "backtest BTC-PERP: 1440 1m candles 2024-01-02T00:00" in out
    assert "backtest ETH-PERP: 1440 1m candles 2024-01-02T00:00" in out
    with sqlite3.connect(db) as con:
        symbols, start, end = con.execute("SELECT symbols, start_ts, end_ts FROM runs").fetchone()
        traded = {s for (s,) in con.execute("SELECT DISTINCT symbol FROM fills")}
    assert symbols == '["BTC-PERP", "ETH-PERP"]' and traded == {"BTC-PERP", "ETH-PERP"}
    # the run covers the timerange: from the first candle's open to the last one's close
    assert (start, end) == (START_MS + 86_400_000, START_MS + 2 * 86_400_000)


def test_one_data_file_per_symbol(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    btc = write_candles(tmp_path / "btc.feather", 100)
    code, _, err = run_cli(["backtest", "--data", str(btc), "--symbol", "BTC-PERP", "--symbol",
                            "ETH-PERP", "--strategy", "sma_cross"], capsys)  # fmt: skip
    assert code == 2 and "give one --data file per --symbol" in err
    code, _, err = run_cli(["backtest", "--data", str(btc), "--symbol", "BTC-PERP",
                            "--strategy", "sma_cross", "--timerange", "2024"], capsys)  # fmt: skip
    assert code == 2 and "bad --timerange" in err
