"""`data download --timeframe 1w`: Binance's weeks open on Mondays, not on the epoch's
Thursdays. The range was cut to the epoch's weeks first, so the week opening on the
Monday `--since` names and the one closing on the Monday `--until` names were both left
out of the file (of eight weeks, six were written). Against the loopback emulator (its
weeks open on Mondays, as Binance's)."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.feather as pa_feather

from perps_bot.config.models import ExchangeConfig
from perps_bot.feeds.download import Downloader, series_for
from perps_emulator import EmulatorServer

WEEK = 7 * 86_400_000
MONDAY = 1_704_067_200_000  # 2024-01-01, a Monday


async def test_every_week_of_the_range_is_downloaded(
    emulator: EmulatorServer, make_client: Callable[..., Any], tmp_path: Path
) -> None:
    cfg = ExchangeConfig(base_url=emulator.base_url, max_retries=3)
    client = make_client(cfg, private=False)
    await client.load_markets()
    loader = Downloader(client, cfg, timeframe="1w")
    (series,) = series_for("BTC-PERP", "BTC/USDT:USDT", "1w", tmp_path, funding=False,
                           mark=False)  # fmt: skip
    assert await loader.fill(series, MONDAY, MONDAY + 8 * WEEK) == 8
    opens = pa_feather.read_table(series.path).column("date").cast("int64").to_pylist()
    assert opens == [MONDAY + i * WEEK for i in range(8)]
    assert await loader.fill(series, MONDAY, MONDAY + 8 * WEEK) == 0  # nothing missing
