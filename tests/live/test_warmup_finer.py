"""A dry run on 2m bars against the emulator (Binance's intervals: 1m, 3m, 5m, ...):
warmed up from 1m klines through ccxt's binanceusdm, the 2m bars recorded in the
capture and handed to its replay. On main it started cold ('has no candles of')."""

import itertools
from pathlib import Path

import pytest

from perps_bot.feeds.replay import ReplayFeed
from perps_bot.orchestrator.runner import Run
from perps_emulator import EmulatorServer
from tests.live.live_helpers import ClientFactory, FakeClock
from tests.live.warmup_helpers import START, canary, fake_feed, run_on

pytestmark = pytest.mark.integration

TWO_MINUTES = 120_000


async def test_a_dry_run_on_2m_bars_warms_up_from_1m_klines(
    in_repo: Path, run_dirs: dict[str, str], make_client: ClientFactory
) -> None:
    clock = FakeClock(START)
    async with EmulatorServer(symbols=("ETHUSDT",), seed=3, clock=clock) as server:
        settings = canary(server, run_dirs)
        strategy = settings.strategy.model_copy(update={"timeframe": "2m"})
        settings = settings.model_copy(update={"strategy": strategy})

        def started(run: Run) -> bool:
            return run.orchestrator.last_ts is not None

        result = await run_on(settings, fake_feed(server, make_client, clock), started)
    assert result.status == "completed", result.detail
    log = (Path(run_dirs["log_dir"]) / "perps_bot.log").read_text()
    assert "warm-up: sma_cross learnt from 30 closed bars of ETH-PERP" in log
    folder = Path(run_dirs["data_dir"]) / "captures" / result.run_id
    bars = (await ReplayFeed(folder).warmup_candles({"ETH-PERP": 30}, TWO_MINUTES))["ETH-PERP"]
    assert len(bars) == 30
    assert bars[-1].ts == START - START % TWO_MINUTES  # up to the bar the run started in
    assert {b.ts - b.open_time for b in bars} == {TWO_MINUTES}
    assert all(b.open_time == a.ts for a, b in itertools.pairwise(bars))
