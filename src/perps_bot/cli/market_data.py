"""What `backtest`, `optimize` and `walkforward` share: the candle files of one or more
symbols (with funding and mark files), an optional `--timerange`, and the run settings
of a backtest over them (defaults < profile < PERPS_BOT__* env < flags).

A bad flag or file is a one-line error (ConfigError / FeedError), exit code 2.
"""

import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from perps_bot.cli.options import llm_overrides, strategy_overrides
from perps_bot.config import ConfigError, Settings, load_settings
from perps_bot.domain import RunMode, iso_utc, parse_duration, short, time_in_range
from perps_bot.feeds.dataset import Dataset
from perps_bot.feeds.historical import CandleFeed

#: The --timerange bounds by their number of digits.
TIMERANGE_FORMATS = {8: "%Y%m%d", 12: "%Y%m%d%H%M"}


def parse_timerange(text: str | None) -> tuple[int | None, int | None]:
    """`20240101-20240301`, `20240101-` or `-20240301` (UTC days, or YYYYMMDDHHMM) ->
    (start ms or None, end ms or None): candles that open at or after the start and
    close at or before the end."""
    if text is None:
        return None, None
    start, sep, end = text.strip().partition("-")
    if not sep or not (start or end):
        raise ConfigError(f"bad --timerange {short(text)!r}: use START-END, e.g. 20240101-20240301")
    bounds = (_day(text, start), _day(text, end))
    if bounds[0] is not None and bounds[1] is not None and bounds[0] >= bounds[1]:
        raise ConfigError(f"bad --timerange {short(text)!r}: the start is not before the end")
    return bounds


def _day(text: str, part: str) -> int | None:
    """One bound: exactly 8 or 12 digits. strptime alone reads fields of varying width,
    so `20211301` (no month 13) would pass as 2021-01-03 00:01 and epoch seconds as a
    date in the 1600s."""
    if not part:
        return None
    fmt = TIMERANGE_FORMATS.get(len(part)) if part.isascii() and part.isdigit() else None
    ms = None
    if fmt is not None:
        with contextlib.suppress(ValueError):  # no such day, hour or minute
            ms = int(datetime.strptime(part, fmt).replace(tzinfo=UTC).timestamp() * 1000)
    if ms is None or not time_in_range(ms):
        raise ConfigError(f"bad --timerange {short(text)!r}: {short(part)!r} is not a date"
                          " YYYYMMDD or YYYYMMDDHHMM between 1970 and 3000")  # fmt: skip
    return ms


def load_dataset(
    *,
    profile: str,
    symbols: list[str],
    data: list[Path],
    funding: list[Path] | None = None,
    mark: list[Path] | None = None,
    fill_gaps: bool = False,
    timerange: str | None = None,
) -> Dataset:
    """Load and validate every file once (the profile tells the funding schedule)."""
    names = [s.strip() for s in symbols if s.strip()]
    if not names or len(names) != len(symbols):
        raise ConfigError("bad --symbol: give a symbol name, e.g. BTC-PERP")
    start, end = parse_timerange(timerange)
    base = load_settings(profile)  # fails early on a bad profile
    dataset = Dataset.load(
        names,
        data,
        funding=funding or [],
        mark=mark or [],
        funding_interval_ms=parse_duration(base.account.funding_interval),
        default_funding_rate=base.account.default_funding_rate,
        fill_gaps=fill_gaps,
    )
    if start is None and end is None:
        return dataset
    cut = dataset.between(start, end)
    for whole, part in zip(dataset.symbols, cut.symbols, strict=True):
        # the files against the range's candles: a mark or funding file with nothing in
        # the range is refused as one covering none of the candles is (FeedError)
        CandleFeed(part.symbol, part.candles, funding=whole.funding, mark=whole.mark,
                   funding_interval_ms=cut.funding_interval_ms,
                   default_funding_rate=cut.default_funding_rate)  # fmt: skip
    return cut


def prepare_run(
    *, profile: str, symbol: list[str], data: list[Path], funding: list[Path] | None,
    mark: list[Path] | None, param: list[str] | None, fill_gaps: bool, timerange: str | None,
    strategy: list[str] | str, seed: int | None, db: str | None, timeframe: str | None,
    order_size: float | None, initial_balance: float | None, record: str = "full",
    llm_cache_only: bool = False,
) -> tuple[Dataset, Settings]:  # fmt: skip
    """The candles, loaded once, and the settings of a run over them (`record`: metrics
    for optimisation trials); a malformed --param fails before any file is read."""
    strategy_overrides(strategy, param)
    dataset = load_dataset(profile=profile, symbols=symbol, data=data, funding=funding,
                           mark=mark, fill_gaps=fill_gaps, timerange=timerange)  # fmt: skip
    settings = backtest_settings(
        profile, dataset, strategy=strategy, params=param, seed=seed, db=db, timeframe=timeframe,
        order_size=order_size, initial_balance=initial_balance, record=record,
        llm_cache_only=llm_cache_only,
    )  # fmt: skip
    return dataset, settings


def backtest_settings(
    profile: str,
    dataset: Dataset,
    *,
    strategy: list[str] | str,
    params: list[str] | None = None,
    seed: int | None = None,
    db: str | None = None,
    timeframe: str | None = None,
    order_size: float | None = None,
    initial_balance: float | None = None,
    mode: RunMode = RunMode.BACKTEST,
    record: str = "full",
    llm_cache_only: bool = False,
) -> Settings:
    """The settings of a run over `dataset`: its symbols, the clock starting at the first
    candle (`mock.start`), the data deciding the end."""
    symbols = dataset.names
    run: dict[str, Any] = {"symbols": symbols, "mode": mode, "duration": None, "record": record}
    if seed is not None:
        run["seed"] = seed
    if db is not None:
        run["database"] = db
    overrides = strategy_overrides(strategy, params)  # several: one portfolio each
    section: dict[str, Any] = overrides.setdefault("strategy", {})
    section.setdefault("params", {})  # the profile's are its own strategy's
    if timeframe is not None:
        section["timeframe"] = timeframe
    if order_size is not None:
        section["order_size"] = dict.fromkeys(symbols, order_size)
    overrides |= {"run": run, "mock": {"start": iso_utc(dataset.start_ts)}}
    overrides |= llm_overrides(llm_cache_only)
    if initial_balance is not None:
        overrides["account"] = {"initial_balance": initial_balance}
    settings = load_settings(profile, overrides)
    dataset.feed().strategy_bar_ms(settings.strategy.timeframe)  # a timeframe that does not fit
    return settings
