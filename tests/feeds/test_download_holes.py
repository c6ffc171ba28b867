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


class Capped:
    """The real client, serving at most `cap` rows a page (okx serves 300 candles, 100
    mark-price candles; bitget 200), and declaring it in ccxt's `features` as those
    exchanges do, or not."""

    def __init__(self, client: Any, cap: int, *, declared: bool) -> None:
        self.client, self.cap = client, cap
        limit = {"limit": cap} if declared else {}
        self.features = {"swap": {"linear": {"fetchOHLCV": limit}}}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    async def fetch_ohlcv(self, *args: Any, limit: int, **kw: Any) -> Any:
        return await self.client.fetch_ohlcv(*args, limit=min(limit, self.cap), **kw)


async def test_an_exchange_serving_short_pages_has_none_of_its_candles_skipped(
    emulator: EmulatorServer, make_client: Callable[..., Any], tmp_path: Path
) -> None:
    """An empty page moved the download on by 1,000 candles, the page it asks for: on an
    exchange serving 300 a page, the 700 after the empty one were never asked, and said
    to be a hole of the exchange's."""
    said: list[str] = []
    loader = await downloader(emulator, make_client, say=said.append)
    loader.client = Capped(loader.client, 300, declared=False)
    (candles,) = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path, funding=False,
                            mark=False)  # fmt: skip
    emulator.inject(Fault(kind="hole", method="GET", path="/fapi/v1/klines", count=99,
                          fields={"from": D0 + 300 * MIN, "until": D0 + 700 * MIN}))  # fmt: skip
    assert await loader.fill(candles, D0, D0 + 2000 * MIN) == 2000 - 400
    ts = dates_ms(SeriesFile(candles.path).compact())
    assert ts[300] == D0 + 700 * MIN and ts[-1] == D0 + 1999 * MIN
    holes = [line for line in said if "no candles" in line]
    assert holes == ["BTC-PERP-1m.feather: the exchange has no candles from"
                     " 2024-01-01T05:00:00.000Z to 2024-01-01T11:40:00.000Z"], said  # fmt: skip


async def test_a_range_starting_in_a_hole_on_an_exchange_serving_short_pages(
    emulator: EmulatorServer, make_client: Callable[..., Any], tmp_path: Path
) -> None:
    """No page seen yet: the empty one moves the download on by the page the exchange
    says it serves (ccxt's features), not by the 1,000 asked."""
    loader = await downloader(emulator, make_client)
    loader.client = Capped(loader.client, 300, declared=True)
    (candles,) = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path, funding=False,
                            mark=False)  # fmt: skip
    emulator.inject(Fault(kind="hole", method="GET", path="/fapi/v1/klines", count=99,
                          fields={"from": D0, "until": D0 + 400 * MIN}))  # fmt: skip
    assert await loader.fill(candles, D0, D0 + 2000 * MIN) == 1600
    assert dates_ms(SeriesFile(candles.path).compact())[0] == D0 + 400 * MIN


async def test_a_hole_inside_a_page_is_said(
    emulator: EmulatorServer, make_client: Callable[..., Any], tmp_path: Path
) -> None:
    """Binance answers the candles after an outage in the same page: only a page with
    nothing in it was said to be a hole, so the file had one the backtest refused,
    without a word from the download ('1340 new rows')."""
    said: list[str] = []
    loader = await downloader(emulator, make_client, say=said.append)
    (candles,) = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path, funding=False,
                            mark=False)  # fmt: skip
    emulator.inject(Fault(kind="hole", method="GET", path="/fapi/v1/klines", count=99,
                          fields={"from": D0 + 100 * MIN, "until": D0 + 200 * MIN}))  # fmt: skip
    assert await loader.fill(candles, D0, D0 + 1440 * MIN) == 1340
    holes = [line for line in said if "no candles" in line]
    assert holes == ["BTC-PERP-1m.feather: the exchange has no candles from"
                     " 2024-01-01T01:40:00.000Z to 2024-01-01T03:20:00.000Z"], said  # fmt: skip
