"""Helpers of the warm-up tests: a canary run on a fake clock shared by the emulator and
the bot's exchange feed (each poll moves it on by the poll interval, so minutes of 1m
bars pass in a second of wall time), the emulator's closed candles as the bot would
fetch them, and the price that turns sma_cross's averages at the next bar."""

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from perps_bot.config import Settings, load_settings
from perps_bot.feeds.exchange import ExchangeFeed
from perps_bot.orchestrator.runner import Run, RunResult
from perps_emulator import EmulatorServer
from tests.live.live_helpers import (
    API_KEY,
    API_SECRET,
    UNTIL_S,
    ClientFactory,
    FakeClock,
    FakeSleep,
    exchange_cfg,
    run_until,
)

MINUTE = 60_000
#: 10 s before a minute closes: the first live 1m bar closes after 10 polls of 1 s
START = 1_700_000_000_000 // MINUTE * MINUTE + 50_000
BOUNDARY = START + 10_000


def canary(
    server: EmulatorServer,
    run_dirs: dict[str, str],
    *,
    live: bool = False,
    poll: str = "1s",
    params: dict[str, Any] | None = None,
) -> Settings:
    """The canary profile's sma_cross 10/30 on 1m bars (dry run unless `live`)."""
    exchange: dict[str, Any] = {"base_url": server.base_url, "poll_interval": poll,
                                "backoff_base": "10ms", "backoff_max": "20ms"}  # fmt: skip
    if live:
        exchange |= {"api_key": API_KEY, "api_secret": API_SECRET}
    run = {"duration": f"{UNTIL_S}s", "dry_run": not live, "live_view": False, **run_dirs}
    return load_settings(
        "canary",
        {
            "run": run,
            "exchange": exchange,
            "strategy": {"name": "sma_cross", "params": params or {"fast": 10, "slow": 30}},
            # a flip of 0.01 ETH is an order of 0.02 (about 60 USDT), past canary's 50: a
            # dry run may take it, a live one is held to the hard cap (ETH made cheaper)
            "risk": {} if live else {"max_order_notional": 100},
        },
    )


def fake_feed(
    server: EmulatorServer, make_client: ClientFactory, clock: FakeClock, poll: str = "1s"
) -> ExchangeFeed:
    """The exchange feed of the canary's ETH-PERP on `clock` (the emulator's)."""
    cfg = exchange_cfg(server, poll_interval=poll, public_trades=False)
    return ExchangeFeed(make_client(cfg, private=False), cfg, ["ETH-PERP"], clock=clock,
                        sleep=FakeSleep(clock))  # fmt: skip


async def run_on(
    settings: Settings, feed: ExchangeFeed, until: Callable[[Run], bool], **options: Any
) -> RunResult:
    """Run the bot on `feed` until `until(run)` holds (checked every 10 ms of wall time),
    then stop it as its duration would."""
    return await run_until(settings, until, every_s=0.01, feed=feed, **options)


async def closes_before(
    server: EmulatorServer, make_client: ClientFactory, now: int, count: int
) -> list[float]:
    """The closes of the last `count` 1m candles of ETH that closed by `now`."""
    client = make_client(exchange_cfg(server), private=False)
    rows = await client.fetch_ohlcv("ETH/USDT:USDT", "1m", limit=count + 1)
    closes = [float(r[4]) for r in rows if r[0] + MINUTE <= now]
    assert len(closes) >= count
    return closes[-count:]


def turning_price(closes: list[float], fast: int = 10) -> tuple[float, int]:
    """(a close that turns sma_cross fast/len(closes)'s averages at the next bar, the
    sign of the regime the closes leave: +1 fast above slow)."""
    slow = len(closes)
    regime = 1 if sum(closes[-fast:]) / fast > sum(closes) / slow else -1
    # fast - slow after one more close x: S_fast/fast - S_slow/slow + x (1/fast - 1/slow)
    s_fast, s_slow = sum(closes[-(fast - 1) :]), sum(closes[-(slow - 1) :])
    root = (s_slow / slow - s_fast / fast) / (1 / fast - 1 / slow)
    return root * (1 - 0.01 * regime), regime


def fill_rows(db: Path, run_id: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT ts, side, reason FROM fills WHERE run_id=? ORDER BY rowid", (run_id,)
        ).fetchall()
