"""`perps-bot data download` against the loopback emulator: files the backtester reads,
a second call that fetches only what is missing, an interrupted download that goes on
from its last saved page, and a 429 that is waited out for its Retry-After."""

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.feather as pa_feather
import pytest

from perps_bot.cli.app import main
from perps_bot.config.models import ExchangeConfig
from perps_bot.feeds.download import Downloader, series_for
from perps_bot.feeds.loaders import load_candles, load_funding, load_marks
from perps_emulator import EmulatorServer
from perps_emulator.faults import Fault

D0 = 1_704_067_200_000  # 2024-01-01
DAY = 86_400_000


def klines_starts(
    server: EmulatorServer, since: int = 0, path: str = "/fapi/v1/klines"
) -> list[int]:
    return [int(r.params["startTime"]) for r in server.requests[since:] if r.path == path]


async def downloader(
    server: EmulatorServer, make_client: Callable[..., Any], **kw: Any
) -> Downloader:
    cfg = ExchangeConfig(base_url=server.base_url, max_retries=3)
    client = make_client(cfg, private=False)
    await client.load_markets()
    return Downloader(client, cfg, timeframe="1m", **kw)


async def test_the_command_writes_files_the_backtester_reads(
    emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("PERPS_BOT__EXCHANGE__BASE_URL", emulator.base_url)
    args = ["data", "download", "--symbols", "BTC-PERP", "--since", "2024-01-01",
            "--until", "2024-01-03", "--funding", "--mark", "--out", str(tmp_path)]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        await asyncio.to_thread(main, args)  # the emulator answers on this loop meanwhile
    assert done.value.code == 0, capsys.readouterr().err
    candles = load_candles(tmp_path / "BTC-PERP-1m.feather")
    marks = load_marks(tmp_path / "BTC-PERP-1m-mark.feather")
    funding = load_funding(tmp_path / "BTC-PERP-8h-funding.feather")
    assert len(candles) == len(marks) == 2 * 1440 and candles.interval_ms == 60_000
    assert candles.open_time[0] == D0 and candles.close_time[-1] == D0 + 2 * DAY
    assert list(funding.ts) == [D0 + k * 8 * 3_600_000 for k in range(7)]  # until's too
    assert not np.array_equal(marks.close, candles.close)  # the mark is its own series
    assert not list(tmp_path.glob("*.parts"))  # compacted


async def test_the_funding_file_has_every_settlement_the_candles_replay(
    emulator: EmulatorServer, make_client: Callable[..., Any], tmp_path: Path
) -> None:
    """The last candle of [since, until) closes at `until`, and the backtest settles
    funding there; the funding file stopped before it, so a backtest of what one
    download wrote settled its last funding at the profile's default rate."""
    from perps_bot.feeds.historical import CandleFeed

    loader = await downloader(emulator, make_client)
    candles, funding = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path, funding=True,
                                  mark=False)  # fmt: skip
    for series in (candles, funding):
        await loader.fill(series, D0, D0 + DAY)
    feed = CandleFeed.from_files(
        "BTC-PERP", candles.path, funding=funding.path, funding_interval_ms=8 * 3_600_000,
        default_funding_rate=0.5,
    )  # fmt: skip
    assert feed.funding_count == 3 and feed.funding_defaulted == 0
    assert list(load_funding(funding.path).ts) == [D0 + k * 8 * 3_600_000 for k in range(4)]
    seen = len(emulator.requests)
    assert await loader.fill(funding, D0, D0 + DAY) == 0  # then nothing more to fetch
    assert await loader.fill(funding, D0, D0 + DAY + 3_600_000) == 0  # none in (until, +1h]
    assert klines_starts(emulator, seen, "/fapi/v1/fundingRate") == []


async def test_a_second_call_fetches_only_what_is_missing(
    emulator: EmulatorServer, make_client: Callable[..., Any], tmp_path: Path
) -> None:
    loader = await downloader(emulator, make_client)
    (series,) = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path / "a", funding=False,
                           mark=False)  # fmt: skip
    assert await loader.fill(series, D0, D0 + DAY) == 1440
    seen = len(emulator.requests)
    assert await loader.fill(series, D0, D0 + 2 * DAY) == 1440
    # pages of 1,000 from the first missing candle
    assert klines_starts(emulator, seen) == [D0 + DAY, D0 + DAY + 1000 * 60_000]
    seen = len(emulator.requests)
    assert await loader.fill(series, D0, D0 + 2 * DAY) == 0
    assert klines_starts(emulator, seen) == []  # nothing missing: nothing asked

    (whole,) = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path / "b", funding=False,
                          mark=False)  # fmt: skip
    await loader.fill(whole, D0, D0 + 2 * DAY)
    assert pa_feather.read_table(series.path).equals(pa_feather.read_table(whole.path))


async def test_a_file_of_another_timeframe_under_the_name_is_refused(
    emulator: EmulatorServer, make_client: Callable[..., Any], tmp_path: Path
) -> None:
    """5-minute candles under the 1-minute file's name (a file copied or renamed): their
    gaps were filled with 1-minute candles, a file the backtest reads without a word in
    which every fifth candle spans five minutes."""
    from perps_bot.feeds.download import DownloadError

    cfg = ExchangeConfig(base_url=emulator.base_url, max_retries=3)
    client = make_client(cfg, private=False)
    await client.load_markets()
    five = Downloader(client, cfg, timeframe="5m")
    (other,) = series_for("BTC-PERP", "BTC/USDT:USDT", "5m", tmp_path / "five", funding=False,
                          mark=False)  # fmt: skip
    await five.fill(other, D0, D0 + DAY)
    (series,) = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path, funding=False,
                           mark=False)  # fmt: skip
    other.path.rename(series.path)
    before = series.path.read_bytes()
    loader = await downloader(emulator, make_client)
    seen = len(emulator.requests)
    with pytest.raises(DownloadError, match=r"BTC-PERP-1m.feather: its rows are 5m apart, not 1m"):
        await loader.fill(series, D0, D0 + 2 * DAY)
    assert klines_starts(emulator, seen) == [] and series.path.read_bytes() == before


class Interrupted(Exception):
    pass


def _killed_after_two_pages() -> Callable[[str], None]:
    """A download's progress line hook that raises Interrupted right after the second
    page was saved (as a kill there would stop it)."""
    pages = 0

    def say(text: str) -> None:
        nonlocal pages
        if "rows, up to" in text:
            pages += 1
            if pages == 2:
                raise Interrupted

    return say


async def test_an_interrupted_download_goes_on_from_its_last_page(
    emulator: EmulatorServer, make_client: Callable[..., Any], tmp_path: Path
) -> None:
    loader = await downloader(emulator, make_client, say=_killed_after_two_pages())
    (series,) = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path / "a", funding=False,
                           mark=False)  # fmt: skip
    with pytest.raises(Interrupted):
        await loader.fill(series, D0, D0 + 3 * DAY)  # 4320 candles: 5 pages of 1000
    assert len(list(series.path.with_name(series.path.name + ".parts").glob("*"))) == 2

    resumed = await downloader(emulator, make_client)
    seen = len(emulator.requests)
    assert await resumed.fill(series, D0, D0 + 3 * DAY) == 4320 - 2000
    assert klines_starts(emulator, seen) == [D0 + k * 60_000 for k in (2000, 3000, 4000)]
    candles = load_candles(series.path)
    assert len(candles) == 4320 and candles.open_time[-1] == D0 + 3 * DAY - 60_000


async def test_an_interrupted_backfill_leaves_no_hole(
    emulator: EmulatorServer, make_client: Callable[..., Any], tmp_path: Path
) -> None:
    """An earlier --since than the file holds fetches the days before it; interrupted
    there, the next run found the file's first and last rows and fetched nothing: the
    days between the pages saved and the old rows stayed a hole (the backtest refuses
    the file)."""
    (series,) = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path, funding=False,
                           mark=False)  # fmt: skip
    loader = await downloader(emulator, make_client)
    assert await loader.fill(series, D0 + 3 * DAY, D0 + 4 * DAY) == 1440
    backfill = await downloader(emulator, make_client, say=_killed_after_two_pages())
    with pytest.raises(Interrupted):
        await backfill.fill(series, D0, D0 + 4 * DAY)

    resumed = await downloader(emulator, make_client)
    seen = len(emulator.requests)
    assert await resumed.fill(series, D0, D0 + 4 * DAY) == 3 * 1440 - 2000
    assert klines_starts(emulator, seen)[0] == D0 + 2000 * 60_000  # the hole, no more
    candles = load_candles(series.path)  # no gap
    assert len(candles) == 4 * 1440 and candles.open_time[0] == D0
    assert await resumed.fill(series, D0, D0 + 4 * DAY) == 0


async def test_a_rate_limit_waits_its_retry_after(
    emulator: EmulatorServer, make_client: Callable[..., Any], tmp_path: Path
) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    emulator.inject(Fault(kind="rate_limit", method="GET", path="/fapi/v1/markPriceKlines",
                          retry_after=7))  # fmt: skip
    loader = await downloader(emulator, make_client, sleep=sleep)
    mark = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path, funding=False, mark=True)[1]
    seen = len(emulator.requests)
    assert await loader.fill(mark, D0, D0 + DAY) == 1440
    assert slept == [7.0]  # the exchange's Retry-After, not the 250 ms backoff
    starts = klines_starts(emulator, seen, "/fapi/v1/markPriceKlines")
    assert starts == [D0, D0, D0 + 1000 * 60_000]  # the refused page asked again


@pytest.mark.parametrize(
    "fault",
    [
        Fault(
            kind="error_code", method="GET", path="/fapi/v1/klines", status=500, code=-1001, after=1
        ),
        Fault(kind="malformed", method="GET", path="/fapi/v1/klines", after=1),
        Fault(kind="status", method="GET", path="/fapi/v1/klines", status=502, after=1),
    ],
    ids=["internal-error", "not-json", "bad-gateway"],
)
async def test_a_passing_failure_of_the_exchange_is_retried(
    emulator: EmulatorServer, make_client: Callable[..., Any], tmp_path: Path, fault: Fault
) -> None:
    """Binance's -1001 ("Internal error ... Please try again", HTTP 500) and an answer
    that is not JSON are ccxt's OperationFailed, not a NetworkError: the download
    stopped there as "refused" instead of trying the page again, as every other caller
    of the exchange does."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    emulator.inject(fault)
    loader = await downloader(emulator, make_client, sleep=sleep)
    (series,) = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path, funding=False,
                           mark=False)  # fmt: skip
    seen = len(emulator.requests)
    assert await loader.fill(series, D0, D0 + DAY) == 1440
    assert len(slept) == 1
    assert klines_starts(emulator, seen) == [D0, D0 + 1000 * 60_000, D0 + 1000 * 60_000]


async def test_a_refusal_is_one_line(
    emulator: EmulatorServer, make_client: Callable[..., Any], tmp_path: Path
) -> None:
    from perps_bot.feeds.download import DownloadError

    emulator.inject(Fault(kind="error_code", method="GET", path="/fapi/v1/klines", code=-1121))
    loader = await downloader(emulator, make_client)
    (series,) = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path, funding=False,
                           mark=False)  # fmt: skip
    with pytest.raises(DownloadError, match="refused") as err:
        await loader.fill(series, D0, D0 + DAY)
    assert "\n" not in str(err.value)


class NullingClient:
    """The real ccxt client against the emulator, except that one value of the answers
    comes back None (what ccxt makes of a null or an unreadable number)."""

    def __init__(self, client: Any, *, candle: int | None = None, funding: str = "") -> None:
        self.client, self.candle, self.funding = client, candle, funding

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    async def fetch_ohlcv(self, *args: Any, **kw: Any) -> list[list[Any]]:
        rows: list[list[Any]] = await self.client.fetch_ohlcv(*args, **kw)
        if self.candle is not None and len(rows) > 10:
            rows[10][self.candle] = None
        return rows

    async def fetch_funding_rate_history(self, *args: Any, **kw: Any) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = await self.client.fetch_funding_rate_history(*args, **kw)
        if self.funding and len(got) > 2:
            got[2][self.funding] = None
        return got


@pytest.mark.parametrize("column", [0, 1, 2, 3, 4, 5])
async def test_a_null_candle_value_is_refused_not_read_as_zero(
    emulator: EmulatorServer, make_client: Callable[..., Any], tmp_path: Path, column: int
) -> None:
    from perps_bot.feeds.download import DownloadError

    loader = await downloader(emulator, make_client)
    loader.client = NullingClient(loader.client, candle=column)
    (series,) = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path, funding=False,
                           mark=False)  # fmt: skip
    name = ("time", "open", "high", "low", "close", "volume")[column]
    when = " at 2024-01-01T00:10" if column else ":"  # a row without a time: no time to show
    with pytest.raises(DownloadError, match=f"candles .* with no {name}{when}") as err:
        await loader.fill(series, D0, D0 + DAY)
    assert "\n" not in str(err.value)
    assert not series.path.exists()  # nothing with a made-up value was kept
    assert not list(tmp_path.glob("*.parts/*"))


@pytest.mark.parametrize("field", ["fundingRate", "timestamp"])
async def test_a_null_funding_value_is_refused_not_skipped(
    emulator: EmulatorServer, make_client: Callable[..., Any], tmp_path: Path, field: str
) -> None:
    from perps_bot.feeds.download import DownloadError

    loader = await downloader(emulator, make_client)
    loader.client = NullingClient(loader.client, funding=field)
    funding = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path, funding=True,
                         mark=False)[1]  # fmt: skip
    with pytest.raises(DownloadError, match="funding") as err:
        await loader.fill(funding, D0, D0 + 3 * DAY)
    assert "\n" not in str(err.value)
    assert not funding.path.exists()


@pytest.mark.parametrize(
    ("timeframe", "why"),
    [("1M", "a month"), ("1H", "not one of"), ("90m", "not one of"), ("1.5h", "not one of")],
)
async def test_a_timeframe_the_exchange_does_not_serve_as_that_duration_is_refused(
    emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], timeframe: str, why: str,
) -> None:  # fmt: skip
    """`1M` is a MONTH to the exchange and a minute to perps-bot (durations are read
    case-insensitively): Binance would serve monthly candles (the open month's among
    them) and the file would be stepped as 1-minute candles. Refused before any request,
    as is a timeframe the exchange does not list."""
    monkeypatch.setenv("PERPS_BOT__EXCHANGE__BASE_URL", emulator.base_url)
    args = ["data", "download", "--symbols", "BTC-PERP", "--since", "2024-01-01",
            "--until", "2024-01-03", "--timeframe", timeframe, "--out", str(tmp_path)]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        await asyncio.to_thread(main, args)
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.count("\n") == 1, err
    assert f"--timeframe {timeframe!r}" in err and why in err and "1m, 3m, 5m" in err, err
    assert klines_starts(emulator) == []  # nothing asked
    assert not list(tmp_path.iterdir())


async def test_a_symbol_the_exchange_does_not_list_is_refused_before_any_download(
    emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """XRP-PERP is an instrument of the bot the emulator does not list: the command
    downloaded all of BTC-PERP first (hours, for years of candles) and only then
    stopped on XRP-PERP."""
    monkeypatch.setenv("PERPS_BOT__EXCHANGE__BASE_URL", emulator.base_url)
    args = ["data", "download", "--symbols", "BTC-PERP,XRP-PERP", "--since", "2024-01-01",
            "--until", "2024-01-02", "--out", str(tmp_path)]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        await asyncio.to_thread(main, args)
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.count("\n") == 1, err
    assert "XRP-PERP" in err and "not listed" in err and "BTC-PERP" not in err, err
    assert klines_starts(emulator) == []  # nothing asked
    assert not list(tmp_path.iterdir())


class FourHourFunding(NullingClient):
    """The emulator's 8-hourly funding history with a settlement 4 hours after each
    (many Binance perpetuals settle every 4 hours)."""

    async def fetch_funding_rate_history(self, *args: Any, **kw: Any) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = await self.client.fetch_funding_rate_history(*args, **kw)
        extra = [e | {"timestamp": e["timestamp"] + 4 * 3_600_000, "fundingRate": 0.0009}
                 for e in got]  # fmt: skip
        return sorted(got + extra, key=lambda e: int(e["timestamp"]))


async def test_settlements_more_often_than_the_funding_interval_are_refused_not_dropped(
    emulator: EmulatorServer, make_client: Callable[..., Any], tmp_path: Path
) -> None:
    """Times are floored to the funding interval (8h): two settlements in one interval
    became one row and the other was dropped silently (half the funding lost)."""
    from perps_bot.feeds.download import DownloadError

    loader = await downloader(emulator, make_client)
    loader.client = FourHourFunding(loader.client)
    funding = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path, funding=True,
                         mark=False)[1]  # fmt: skip
    with pytest.raises(DownloadError, match=r"two funding settlements .* 8h .*funding_interval"):
        await loader.fill(funding, D0, D0 + 3 * DAY)
    assert not funding.path.exists()

    # with the profile's interval at 4h, every settlement is kept, in a file named so
    four = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path, funding=True, mark=False,
                      funding_interval="4h")[1]  # fmt: skip
    assert four.path.name == "BTC-PERP-4h-funding.feather"
    assert await loader.fill(four, D0, D0 + 3 * DAY) == 19
    rates = load_funding(four.path, interval_ms=4 * 3_600_000)
    assert list(rates.ts) == [D0 + k * 4 * 3_600_000 for k in range(19)]
    assert list(rates.rate[1::2]) == [0.0009] * 9


def _garbage_file(out: Path) -> None:
    out.mkdir()
    (out / "BTC-PERP-1m.feather").write_text("garbage\n")


def _garbage_part(out: Path) -> None:
    (out / "BTC-PERP-1m.feather.parts").mkdir(parents=True)
    (out / "BTC-PERP-1m.feather.parts" / "00000000.feather").write_bytes(b"ARROW1\x00\x00")


def _other_columns(out: Path) -> None:
    import pyarrow as pa

    out.mkdir()
    table = pa.table({"date": pa.array([D0], pa.int64()), "close": [1.0]})
    pa_feather.write_feather(table, out / "BTC-PERP-1m.feather")


def _out_is_a_file(out: Path) -> None:
    out.write_text("a file, not a folder\n")


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (_garbage_file, "BTC-PERP-1m.feather: cannot read"),
        (_garbage_part, "00000000.feather: cannot read"),
        (_other_columns, "BTC-PERP-1m.feather: not a file of"),
        (_out_is_a_file, "cannot write"),
    ],
)
async def test_what_is_in_the_way_of_the_files_is_one_line(
    emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], make: Callable[[Path], None], said: str,
) -> None:  # fmt: skip
    """A file of the same name that is not a download of ours (or a folder that is a
    file) was an internal error with a traceback, exit code 1."""
    monkeypatch.setenv("PERPS_BOT__EXCHANGE__BASE_URL", emulator.base_url)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    make(out)
    args = ["data", "download", "--symbols", "BTC-PERP", "--since", "2024-01-01",
            "--until", "2024-01-02", "--out", str(out)]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        await asyncio.to_thread(main, args)
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.count("\n") == 1, err
    assert said in err and "internal error" not in err, err


async def test_a_candle_listed_twice_is_counted_once(
    emulator: EmulatorServer, make_client: Callable[..., Any], tmp_path: Path
) -> None:
    """Overlapping pages list a row again: the file kept it once, but the command said
    "1940 new rows" for 1440."""
    emulator.inject(Fault(kind="repeat", method="GET", path="/fapi/v1/klines", count=1))
    loader = await downloader(emulator, make_client)
    (series,) = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path, funding=False,
                           mark=False)  # fmt: skip
    assert await loader.fill(series, D0, D0 + DAY) == 1440
    assert len(load_candles(series.path)) == 1440


async def test_two_different_candles_for_one_time_are_refused(
    emulator: EmulatorServer, make_client: Callable[..., Any], tmp_path: Path
) -> None:
    """Which of them is the market? The later one was kept without a word."""
    from perps_bot.feeds.download import DownloadError

    class Conflicting(NullingClient):
        async def fetch_ohlcv(self, *args: Any, **kw: Any) -> list[list[Any]]:
            rows: list[list[Any]] = await self.client.fetch_ohlcv(*args, **kw)
            return [*rows[:6], [rows[5][0], *(v * 2 for v in rows[5][1:6])], *rows[6:]]

    loader = await downloader(emulator, make_client)
    loader.client = Conflicting(loader.client)
    (series,) = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path, funding=False,
                           mark=False)  # fmt: skip
    with pytest.raises(DownloadError, match=r"two different .* 2024-01-01T00:05") as err:
        await loader.fill(series, D0, D0 + DAY)
    assert "\n" not in str(err.value) and not series.path.exists()


async def test_a_funding_settlement_listed_twice_is_kept_once(
    emulator: EmulatorServer, make_client: Callable[..., Any], tmp_path: Path
) -> None:
    """The same settlement again (overlapping pages) is not a second one in the interval."""
    emulator.inject(Fault(kind="repeat", method="GET", path="/fapi/v1/fundingRate", count=1))
    loader = await downloader(emulator, make_client)
    funding = series_for("BTC-PERP", "BTC/USDT:USDT", "1m", tmp_path, funding=True,
                         mark=False)[1]  # fmt: skip
    assert await loader.fill(funding, D0, D0 + 3 * DAY) == 10
    assert len(load_funding(funding.path)) == 10
