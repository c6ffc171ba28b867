"""`data download` keeps only candles the exchange has closed. `--until` (or now) is on
the machine's clock; one a few seconds ahead of the exchange's, at the turn of a
minute, took the minute still open on the exchange (its prices so far) for closed: it
was written to the file, and later downloads, finding it there, never fetched its final
prices. Now the range ends at the exchange's own time. Against the loopback emulator on
a clock of its own."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.feather as pa_feather

from perps_bot.config.models import ExchangeConfig
from perps_bot.feeds.download import Downloader, series_for
from perps_emulator import EmulatorServer
from tests.live.live_helpers import FakeClock

MINUTE = 60_000
B = 1_704_067_200_000 + 37 * MINUTE  # a minute boundary on 2024-01-01


async def test_a_minute_still_open_on_the_exchange_is_not_downloaded(
    make_client: Callable[..., Any], tmp_path: Path
) -> None:
    clock = FakeClock(B - 2_000)  # the exchange's; the machine's is 3 s ahead
    async with EmulatorServer(symbols=("BTCUSDT",), seed=3, clock=clock) as server:
        cfg = ExchangeConfig(base_url=server.base_url, max_retries=3)
        client = make_client(cfg, private=False)
        await client.load_markets()
        loader = Downloader(client, cfg, timeframe="1m")
        (series,) = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path, funding=False,
                               mark=False)  # fmt: skip
        await loader.fill(series, B - 10 * MINUTE, clock.now + 3_000)
        opens = pa_feather.read_table(series.path).column("date").cast("int64").to_pylist()
        assert opens[-1] == B - 2 * MINUTE  # the minute to B is still open on the exchange

        clock.now = B - 1_000
        server.set_price("BTCUSDT", server.price("BTCUSDT") * 1.01)  # the minute moves on
        clock.now = B + 30_000
        await loader.fill(series, B - 10 * MINUTE, clock.now + 3_000)
        table = pa_feather.read_table(series.path)
        last = [table.column(name)[-1].as_py() for name in table.column_names]
        rows = await client.fetch_ohlcv("BTC/USDT:USDT", "1m", since=B - MINUTE, limit=1)
    assert int(last[0].timestamp() * 1000) == B - MINUTE
    assert last[1:] == [float(x) for x in rows[0][1:6]]  # its final prices
