"""A 2xx answer whose body is not JSON (a proxy's error page, a truncated body) is a
failed request, never an empty one: ccxt parsed the text into empty fields, so a garbled
positionRisk read as "no positions" and reconciliation adopted a flat book while the
exchange held the position; a garbled openOrders crashed the run with an AttributeError;
a garbled exchangeInfo at start-up was reported as "the exchange lists no market"."""

import asyncio
import json
from pathlib import Path

import pytest

from perps_bot.config import load_settings
from perps_bot.orchestrator.runner import run_bot
from perps_bot.venues.base import VenueUnavailable
from perps_bot.venues.live import LiveVenue
from perps_emulator import EmulatorServer, Fault
from tests.live.live_helpers import (
    API_KEY,
    API_SECRET,
    ClientFactory,
    FakeClock,
    FakeSleep,
    exchange_cfg,
    exchange_instruments,
    until_long_opened,
)
from tests.live.test_live_venue_emulator import ACCOUNT

pytestmark = pytest.mark.integration

STRATEGY = "tests.live.canary_strategy:FlipOnce"
ACCOUNT_READS = ["/fapi/v3/account", "/fapi/v3/positionRisk", "/fapi/v1/openOrders"]


@pytest.mark.parametrize("path", ACCOUNT_READS)
async def test_a_garbled_account_read_fails_the_snapshot(
    emulator: EmulatorServer, make_client: ClientFactory, path: str
) -> None:
    instruments = await exchange_instruments(emulator, make_client, ["ETH-PERP"])
    cfg = exchange_cfg(emulator)
    clock = FakeClock()
    venue = LiveVenue(make_client(cfg, private=True), cfg, ACCOUNT, instruments,
                      clock=clock, sleep=FakeSleep(clock))  # fmt: skip
    await venue.start()
    emulator.inject(Fault("malformed", method="GET", path=path, count=cfg.max_retries + 1))
    with pytest.raises(VenueUnavailable, match="not JSON"):
        await venue.snapshot()


async def test_a_garbled_position_answer_is_not_adopted_as_flat(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    settings = load_settings(
        "canary",
        {
            "run": {"duration": "2s", "dry_run": False, "live_view": False, **run_dirs},
            "exchange": {
                "base_url": emulator.base_url,
                "api_key": API_KEY,
                "api_secret": API_SECRET,
                "poll_interval": "100ms",
                "reconcile_interval": "200ms",
                "backoff_base": "10ms",
                "backoff_max": "20ms",
            },
            "strategy": {"name": STRATEGY, "params": {"hold": 10_000}},
        },
    )
    task = asyncio.create_task(run_bot(settings, progress=False))
    await until_long_opened(emulator, task)
    emulator.inject(Fault("malformed", method="GET", path="/fapi/v3/positionRisk", count=10**6))
    result = await task
    assert result.status == "completed"
    journal = (Path(run_dirs["log_dir"]) / "events.jsonl").read_text().splitlines()
    reconciles = [json.loads(line) for line in journal if '"reconcile"' in line]
    assert reconciles, "the run never reconciled"
    assert all(r["mismatched"] == [] for r in reconciles), reconciles
    assert emulator.state.positions["ETHUSDT"].amount > 0  # still held, as the bot thinks


async def test_a_garbled_market_list_at_start_up_is_retried(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    emulator.inject(Fault("malformed", method="GET", path="/fapi/v1/exchangeInfo"))
    settings = load_settings(
        "canary",
        {
            "run": {"duration": "1s", "dry_run": True, "live_view": False, **run_dirs},
            "exchange": {"base_url": emulator.base_url, "poll_interval": "250ms",
                         "backoff_base": "10ms", "backoff_max": "20ms"},
            "strategy": {"name": STRATEGY},
        },
    )  # fmt: skip
    result = await run_bot(settings, progress=False)
    assert result.status == "completed"
    assert [p for _, p, _ in emulator.calls].count("/fapi/v1/exchangeInfo") == 2
