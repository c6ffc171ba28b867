"""A live run's rows reach the database while it runs, not only at its fills and its
end: a denial (or an equity row) that waited in a buffer for a quiet live run's next
fill was invisible to `report`, the session API and anyone reading the database, and
was lost with the process on a crash."""

import sqlite3
from pathlib import Path

import pytest

from perps_bot.config import load_settings
from perps_bot.orchestrator.runner import Run
from perps_emulator import EmulatorServer
from tests.live.live_helpers import API_KEY, API_SECRET, UNTIL_S, run_until

pytestmark = pytest.mark.integration


def stored_denials(run: Run) -> int:
    path = run.orchestrator.rec.store.path
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM denials").fetchone()[0])


async def test_a_live_runs_denial_is_stored_while_it_runs(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    settings = load_settings(
        "canary",
        {
            "run": {"duration": f"{UNTIL_S}s", "live_view": False, **run_dirs},
            "exchange": {"base_url": emulator.base_url, "poll_interval": "250ms",
                         "api_key": API_KEY, "api_secret": API_SECRET},
            "strategy": {"name": "tests.live.canary_strategy:FlipOnce", "params": {"hold": 3}},
            # the entry's 0.01 ETH (about 20 USDT) is over this cap: denied, nothing fills
            "risk": {"max_order_notional": 1.0, "resize_to_caps": False},
        },
    )  # fmt: skip
    seen: list[int] = []

    def denial_stored(run: Run) -> bool:
        seen.append(stored_denials(run))
        return seen[-1] > 0

    result = await run_until(settings, denial_stored)
    assert result.fills == 0 and emulator.state.orders == {}
    assert seen[-1] == 1, "the denial was stored only when the run ended"
