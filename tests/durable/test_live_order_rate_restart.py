"""The order rate of a live account across restarts (SPEC 9): `max_orders_per_minute`
caps the orders the account sends in any 60 s, and a bot that crash-loops is the same
account sending them. The gate's window started empty at each start: every restart
could send a full minute's worth again at once. The orders the account sent in the
last minute (the profile database's orders table) now count at start."""

from pathlib import Path
from typing import Any

import pytest

from perps_bot.config import Settings, load_settings
from perps_bot.orchestrator.runner import RunResult, run_bot
from perps_emulator import EmulatorServer
from tests.durable.helpers import query
from tests.live.live_helpers import API_KEY, API_SECRET
from tests.live.test_canary_bot import STRATEGY
from tests.live.test_portfolios_live import two_portfolios

pytestmark = pytest.mark.integration


async def _live(server: EmulatorServer, run_dirs: dict[str, str], **risk: Any) -> RunResult:
    settings = load_settings("canary", {
        "run": {"duration": "2s", "live_view": False, **run_dirs},
        "exchange": {"base_url": server.base_url, "poll_interval": "250ms",
                     "api_key": API_KEY, "api_secret": API_SECRET},
        "strategy": {"name": STRATEGY, "params": {"hold": 3}},
        "risk": risk,
    })  # fmt: skip
    return await run_bot(settings, progress=False)


async def test_a_restart_counts_the_orders_sent_in_the_last_minute(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    first = await _live(emulator, run_dirs, max_orders_per_minute=2)
    assert first.status == "completed" and first.fills == 2  # entry and exit: the cap
    again = await _live(emulator, run_dirs, max_orders_per_minute=2)
    assert again.status == "completed"
    assert again.fills == 0 and len(emulator.state.orders) == 2, "a third order in a minute"
    denied = query(again.db_path, "SELECT reason_code, detail FROM denials WHERE run_id=?",
                   (again.run_id,))  # fmt: skip
    assert denied and {code for code, _ in denied} == {"ORDER_RATE_LIMIT"}
    assert "2 orders in the last 60s" in denied[0][1]
    # a cap with room for them: the restart trades
    third = await _live(emulator, run_dirs, max_orders_per_minute=4)
    assert third.fills == 2 and len(emulator.state.orders) == 4


async def test_several_portfolios_count_their_own_and_the_account_all(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    """Each portfolio's gate counts its own orders of the last minute, the account's
    gate every portfolio's: with a cap of 2, one order each leaves room in each
    portfolio and none in the account."""
    first = await run_bot(_capped(two_portfolios(emulator, run_dirs), 2), progress=False)
    assert first.status == "completed" and len(emulator.state.orders) == 2
    emulator.engine.place_order({"symbol": "ETHUSDT", "side": "SELL", "type": "MARKET",
                                 "quantity": "0.016", "reduceOnly": "true"})  # fmt: skip
    again = await run_bot(_capped(two_portfolios(emulator, run_dirs), 2), progress=False)
    assert len(emulator.state.orders) == 3, "an order past the account's cap"
    denied = query(again.db_path, "SELECT DISTINCT reason_code, substr(detail, 1, 26) FROM"
                   " denials WHERE run_id LIKE ?", (f"{again.run_id}.%",))  # fmt: skip
    assert denied == [("ORDER_RATE_LIMIT", "account: 2 orders in the l")]


def _capped(settings: Settings, cap: int) -> Settings:
    risk = settings.risk.model_copy(update={"max_orders_per_minute": cap})
    return settings.model_copy(update={"risk": risk})
