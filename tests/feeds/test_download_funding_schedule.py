"""`data download --funding` with account.funding_interval shorter than the exchange's
schedule (4h on a symbol settling every 8h): the first run wrote a 4h funding file
holding one settlement in two (a backtest refuses it as a gap, or with --fill-gaps
charges the profile's default rate at every 4h time without a settlement), and the
next run of the same command was refused as 'its rows are 8h apart, not 4h: another
timeframe's file?'. The schedule is now said on the first run, nothing written."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from perps_bot.feeds.download import DownloadError, series_for
from perps_emulator import EmulatorServer
from tests.feeds.test_download import D0, DAY, downloader


async def test_settlements_less_often_than_the_funding_interval_are_refused(
    emulator: EmulatorServer, make_client: Callable[..., Any], tmp_path: Path
) -> None:
    loader = await downloader(emulator, make_client)
    four = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path, funding=True, mark=False,
                      funding_interval="4h")[1]  # fmt: skip
    with pytest.raises(DownloadError, match=r"every 8h, not every 4h .*FUNDING_INTERVAL=8h"):
        await loader.fill(four, D0, D0 + 3 * DAY)
    assert not four.path.exists() and not list(tmp_path.glob("*.parts"))
