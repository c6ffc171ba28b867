"""`data download` of rows the backtest then refuses (high below low, a price of 0, a
negative volume): they were written without a word and the backtest refused the file
later ("row 1234 ... high below max(open, close)"). A page with such a row is refused
in one line naming the row's time; the pages before it stay, so the next run goes on
from them."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from perps_bot.feeds.download import DownloadError, series_for
from perps_bot.feeds.loaders import load_candles, load_funding, load_marks
from perps_emulator import EmulatorServer
from tests.feeds.test_download import D0, DAY, NullingClient, downloader

MIN = 60_000


class Spoiling(NullingClient):
    """The real client, except that the candle at `at` gets `values` (index: value)."""

    def __init__(self, client: Any, at: int, values: dict[int, float]) -> None:
        super().__init__(client)
        self.at, self.values = at, values

    async def fetch_ohlcv(self, *args: Any, **kw: Any) -> list[list[Any]]:
        rows: list[list[Any]] = await self.client.fetch_ohlcv(*args, **kw)
        for row in rows:
            if row[0] == self.at:
                for i, value in self.values.items():
                    row[i] = value
        return rows


@pytest.mark.parametrize(
    ("values", "said"),
    [
        ({2: 1.0}, "high below max(open, close)"),  # high < low too
        ({3: 1e9}, "low above min(open, close)"),
        ({1: 0.0}, "non-positive open"),
        ({4: -5.0}, "non-positive close"),
        ({5: -1.0}, "negative volume"),
    ],
    ids=["high-low", "low-high", "zero-open", "negative-close", "negative-volume"],
)
async def test_a_candle_the_backtest_would_refuse_is_refused_with_its_time(
    emulator: EmulatorServer, make_client: Callable[..., Any], tmp_path: Path,
    values: dict[int, float], said: str,
) -> None:  # fmt: skip
    bad = D0 + 1200 * MIN  # on the second page: the first is kept
    loader = await downloader(emulator, make_client)
    loader.client = Spoiling(loader.client, bad, values)
    (candles,) = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path, funding=False,
                            mark=False)  # fmt: skip
    with pytest.raises(DownloadError) as err:
        await loader.fill(candles, D0, D0 + DAY)
    line = str(err.value)
    assert "\n" not in line and said in line and "2024-01-01T20:00" in line, line
    assert "BTC-PERP candles" in line, line
    # what was fetched before it is kept, in a file the backtest reads
    kept = load_candles(candles.path)
    assert len(kept) == 1000 and kept.open_time[-1] == D0 + 999 * MIN
    assert not list(tmp_path.glob("*.parts"))


async def test_a_mark_candle_with_high_below_low_is_refused(
    emulator: EmulatorServer, make_client: Callable[..., Any], tmp_path: Path
) -> None:
    loader = await downloader(emulator, make_client)
    loader.client = Spoiling(loader.client, D0 + 10 * MIN, {2: 1.0})
    mark = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path, funding=False, mark=True)[1]
    with pytest.raises(DownloadError, match=r"mark-price candles .* 2024-01-01T00:10.*high below"):
        await loader.fill(mark, D0, D0 + DAY)
    assert not mark.path.exists()
    loader.client = loader.client.client  # the exchange's rows, fine again
    assert await loader.fill(mark, D0, D0 + DAY) == 1440
    assert len(load_marks(mark.path)) == 1440


async def test_an_implausible_funding_rate_is_refused(
    emulator: EmulatorServer, make_client: Callable[..., Any], tmp_path: Path
) -> None:
    class Huge(NullingClient):
        async def fetch_funding_rate_history(self, *args: Any, **kw: Any) -> list[Any]:
            got: list[dict[str, Any]] = await self.client.fetch_funding_rate_history(*args, **kw)
            got[1]["fundingRate"] = 3.0
            return got

    loader = await downloader(emulator, make_client)
    loader.client = Huge(loader.client)
    funding = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path, funding=True,
                         mark=False)[1]  # fmt: skip
    with pytest.raises(DownloadError, match=r"funding .*2024-01-01T08:00.*implausible") as err:
        await loader.fill(funding, D0, D0 + 3 * DAY)
    assert "\n" not in str(err.value) and not funding.path.exists()
    loader.client = loader.client.client
    assert await loader.fill(funding, D0, D0 + 3 * DAY) == 10
    assert len(load_funding(funding.path)) == 10
