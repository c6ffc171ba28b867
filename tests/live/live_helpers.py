"""Helpers for the real-exchange tests: dummy keys, a fake clock and sleep so retries never
wait in real time, and the ExchangeConfig that points ccxt at the loopback emulator."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from perps_bot.config import Settings, load_settings
from perps_bot.config.models import AccountConfig, ExchangeConfig, FeesConfig
from perps_bot.domain import MarginMode
from perps_bot.instruments import InstrumentCatalog, catalog_from_markets
from perps_bot.orchestrator.runner import Run, RunResult, run_bot
from perps_bot.venues.live import LiveVenue
from perps_emulator import EmulatorServer, Fault

# Distinctive dummy credentials: a test greps every log line for them.
API_KEY = "dummyKEY4live7f3a9c0e11d2"
API_SECRET = "dummySECRET4live9b81e44aa0c"
#: the account of a LiveVenue built by a test
ACCOUNT = AccountConfig(
    initial_balance=10_000, margin_mode=MarginMode.ISOLATED, default_leverage=2.0
)


#: The `make_client` fixture: (ExchangeConfig, *, private) -> ccxt async client.
ClientFactory = Callable[..., Any]


class FakeClock:
    """Milliseconds that only move when a test moves them."""

    def __init__(self, now: int = 1_700_000_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class FakeSleep:
    """Records requested sleeps (seconds) and returns at once (yielding to the loop);
    with a clock, the clock moves on by the time slept (one coherent fake time)."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.delays: list[float] = []
        self.clock = clock

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.clock is not None:
            self.clock.now += int(seconds * 1000)
        await asyncio.sleep(0)


def exchange_cfg(server: EmulatorServer, **overrides: Any) -> ExchangeConfig:
    values: dict[str, Any] = {
        "base_url": server.base_url,
        "api_key": API_KEY,
        "api_secret": API_SECRET,
        "poll_interval": "1s",
        "backoff_base": "10ms",
        "backoff_max": "80ms",
        "max_retries": 4,
        "breaker_failures": 5,
        "breaker_cooldown": "30s",
        "timeout_ms": 3_000,
    }
    values.update(overrides)
    return ExchangeConfig(**values)


def order_posts(server: EmulatorServer) -> int:
    """How many order placements reached the emulator (faulted ones included)."""
    return sum(
        1 for method, path, _ in server.calls if (method, path) == ("POST", "/fapi/v1/order")
    )


async def exchange_instruments(
    server: EmulatorServer, make_client: ClientFactory, symbols: list[str]
) -> InstrumentCatalog:
    """The instruments an exchange run builds from the emulator's markets (as preflight
    does), with taker 5 bps and maker 2 bps."""
    client = make_client(exchange_cfg(server), private=False)
    markets = await client.load_markets()
    return catalog_from_markets(markets, symbols, {}, FeesConfig(maker_bps=2.0, taker_bps=5.0))


#: bounds a run or a wait that ends as soon as what it waits for has happened: a fixed
#: window of wall time (a 2 s or 3 s run) holds less on a loaded machine
UNTIL_S = 60


async def run_until(
    settings: Settings, until: Callable[[Run], bool], *, every_s: float = 0.05, **options: Any
) -> RunResult:
    """Run the bot until `until(run)` holds (checked every `every_s` of wall time), then
    stop it as its duration would (the run is `completed`); give it a duration of
    UNTIL_S or so: that bounds a run that never gets there. `options`: run_bot's (a
    feed, resume)."""

    @contextlib.asynccontextmanager
    async def stop_when_done(run: Run) -> AsyncIterator[None]:
        async def watch() -> None:
            while not until(run):
                await asyncio.sleep(every_s)
            run.orchestrator.request_stop("duration reached")

        watcher = asyncio.create_task(watch())
        try:
            yield
        finally:
            watcher.cancel()

    return await run_bot(settings, progress=False, attach=stop_when_done, **options)


async def until_long_opened(server: EmulatorServer, task: "asyncio.Task[Any]") -> None:
    """Wait (up to UNTIL_S / 2) until the bot running as `task` holds a long ETH position
    on the emulator; cancel it and fail the test if it never does."""
    deadline = asyncio.get_running_loop().time() + UNTIL_S / 2
    while asyncio.get_running_loop().time() < deadline and not task.done():
        position = server.state.positions.get("ETHUSDT")
        if position is not None and position.amount > 0:
            return
        await asyncio.sleep(0.01)
    task.cancel()
    pytest.fail("the bot never opened its position")


async def started_venue(
    server: EmulatorServer,
    make_client: ClientFactory,
    symbols: list[str] | None = None,
    **cfg: Any,
) -> tuple[LiveVenue, FakeClock]:
    """A started LiveVenue on `symbols` (ETH-PERP) of the emulator, on a fake clock whose
    sleeps return at once; `cfg` overrides `exchange_cfg`'s settings."""
    instruments = await exchange_instruments(server, make_client, symbols or ["ETH-PERP"])
    config = exchange_cfg(server, **cfg)
    clock = FakeClock()
    venue = LiveVenue(make_client(config, private=True), config, ACCOUNT, instruments,
                      clock=clock, sleep=FakeSleep(clock))  # fmt: skip
    await venue.start()
    return venue, clock


async def reconciles_with(
    server: EmulatorServer, run_dirs: dict[str, str], fault: Fault
) -> tuple[list[dict[str, Any]], float]:
    """A canary run of FlipOnce (it opens one long and holds it) reconciling every 200 ms;
    `fault` is injected once the long is open, and the run ends once the exchange was
    asked twice for what the fault answers (not after a fixed 2 s, which a loaded
    machine could end before the long opened or any faulted reconciliation ran).
    Returns the run's reconcile journal lines (the run must complete) and the long the
    exchange held then."""
    settings = load_settings(
        "canary",
        {
            "run": {"duration": f"{UNTIL_S}s", "dry_run": False, "live_view": False, **run_dirs},
            "exchange": {
                "base_url": server.base_url,
                "api_key": API_KEY,
                "api_secret": API_SECRET,
                "poll_interval": "100ms",
                "reconcile_interval": "200ms",
                "backoff_base": "10ms",
                "backoff_max": "20ms",
            },
            "strategy": {"name": "tests.live.canary_strategy:FlipOnce", "params": {"hold": 10_000}},
        },
    )
    injected: list[int] = []  # where the emulator's requests stood at the injection

    def faulted_twice(_: Run) -> bool:
        asked = (
            [r for r in server.requests[injected[0] :] if r.path == fault.path] if injected else []
        )
        return len(asked) >= 2

    task = asyncio.create_task(run_until(settings, faulted_twice))
    await until_long_opened(server, task)
    opened = server.state.positions["ETHUSDT"].amount
    injected.append(len(server.requests))
    server.inject(fault)
    result = await task
    assert result.status == "completed"
    journal = (Path(run_dirs["log_dir"]) / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in journal if '"reconcile"' in line], opened
