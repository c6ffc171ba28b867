"""A 2xx answer whose body is not JSON (a proxy's error page, a truncated body) is a
failed request, never an empty one: ccxt parsed the text into empty fields, so a garbled
positionRisk read as "no positions" and reconciliation adopted a flat book while the
exchange held the position; a garbled openOrders crashed the run with an AttributeError;
a garbled exchangeInfo at start-up was reported as "the exchange lists no market"."""

from pathlib import Path

import pytest

from perps_bot.config import load_settings
from perps_bot.orchestrator.runner import run_bot
from perps_bot.venues.base import VenueUnavailable
from perps_emulator import EmulatorServer, Fault
from tests.live.live_helpers import (
    ClientFactory,
    exchange_cfg,
    reconciles_with,
    started_venue,
)

pytestmark = pytest.mark.integration

STRATEGY = "tests.live.canary_strategy:FlipOnce"
ACCOUNT_READS = ["/fapi/v3/account", "/fapi/v3/positionRisk", "/fapi/v1/openOrders"]


@pytest.mark.parametrize("path", ACCOUNT_READS)
async def test_a_garbled_account_read_fails_the_snapshot(
    emulator: EmulatorServer, make_client: ClientFactory, path: str
) -> None:
    venue, _ = await started_venue(emulator, make_client)
    retries = exchange_cfg(emulator).max_retries
    emulator.inject(Fault("malformed", method="GET", path=path, count=retries + 1))
    with pytest.raises(VenueUnavailable, match="not JSON"):
        await venue.snapshot()


async def test_a_garbled_position_answer_is_not_adopted_as_flat(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    reconciles, _ = await reconciles_with(
        emulator,
        run_dirs,
        Fault("malformed", method="GET", path="/fapi/v3/positionRisk", count=10**6),
    )
    assert reconciles, "the run never reconciled"
    assert all(r["mismatched"] == [] for r in reconciles), reconciles
    assert emulator.state.positions["ETHUSDT"].amount > 0  # still held, as the bot thinks


async def test_a_garbled_market_list_at_start_up_is_retried(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    emulator.inject(Fault("malformed", method="GET", path="/fapi/v1/exchangeInfo"))
    await _starts_after_one_retry(emulator, run_dirs)


async def test_a_market_list_ccxt_cannot_read_at_start_up_is_retried(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    # valid JSON, but a market without its marginAsset: ccxt's parser raised TypeError,
    # which ended the run as an "internal error" instead of a failed request retried
    raw = emulator.api.market.exchange_info({})
    rows = [{k: v for k, v in row.items() if k != "marginAsset"} for row in raw["symbols"]]
    emulator.inject(
        Fault("rewrite", method="GET", path="/fapi/v1/exchangeInfo", fields={"symbols": rows})
    )
    await _starts_after_one_retry(emulator, run_dirs)


async def _starts_after_one_retry(emulator: EmulatorServer, run_dirs: dict[str, str]) -> None:
    """A dry run whose first market list is refused: it asks again and runs."""
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
