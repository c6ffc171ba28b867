"""`data download` across a hole in the exchange's history longer than one page (an
outage of more than 1,000 candles): the page asked inside it comes back empty, and the
download stopped there, the candles after it never fetched, by this run or the next,
and nothing said so ('500 new rows' for a file ending 42 hours before --until)."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from perps_bot.feeds.download import series_for
from perps_bot.feeds.series_files import SeriesFile, dates_ms
from perps_emulator import EmulatorServer
from perps_emulator.faults import Fault
from tests.feeds.test_download import D0, downloader

MIN = 60_000


async def test_the_candles_after_a_long_hole_are_downloaded_and_the_hole_is_said(
    emulator: EmulatorServer, make_client: Callable[..., Any], tmp_path: Path
) -> None:
    said: list[str] = []
    loader = await downloader(emulator, make_client, say=said.append)
    (candles,) = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path, funding=False,
                            mark=False)  # fmt: skip
    hole = {"from": D0 + 500 * MIN, "until": D0 + 2600 * MIN}
    emulator.inject(Fault(kind="hole", method="GET", path="/fapi/v1/klines", count=99,
                          fields=hole))  # fmt: skip
    assert await loader.fill(candles, D0, D0 + 3000 * MIN) == 500 + 400
    ts = dates_ms(SeriesFile(candles.path).compact())
    assert ts[-1] == D0 + 2999 * MIN and len(ts) == 900
    assert ts[500] == D0 + 2600 * MIN  # the first candle after the hole
    assert any("no candles from 2024-01-01T08:20:00.000Z to 2024-01-02T19:20:00.000Z" in line
               for line in said), said  # fmt: skip
    assert await loader.fill(candles, D0, D0 + 3000 * MIN) == 0  # the hole is still there
