"""A session stopped once its run is attached (the session `running`) but before the
run's loop begins sends no order: the strategies' `on_start` signals included."""

from pathlib import Path

import pytest

from perps_bot.orchestrator.engine import Orchestrator
from perps_bot.server import SessionManager
from tests.durable.helpers import query
from tests.server.helpers import serving, start
from tests.server.live_sessions import ended, until

pytestmark = pytest.mark.usefixtures("server_logs")

HOLD = "tests.backtest.start_strategy:HoldFromStart"  # goes long in on_start


@pytest.mark.pure_python  # patches the engine's methods
async def test_a_stop_in_the_step_the_loop_begins_lets_no_order_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop answered in the very step the warm-up ends (the feed's own stop not yet
    run): the loop took its first batch all the same, and on_start's orders went out."""
    managers: list[SessionManager] = []
    real = Orchestrator.warm_up

    async def stopped_then(self: Orchestrator) -> None:
        await real(self)
        for s in managers[0].sessions.values():  # as the API's handler would, in this step
            s.stop()

    monkeypatch.setattr(Orchestrator, "warm_up", stopped_then)
    db = tmp_path / "server.sqlite"
    body = {"profile": "dev", "portfolios": [{"strategy": HOLD}], "seed": 5,
            "duration": "1d", "dev_fast": True}  # fmt: skip
    async with serving(db) as (client, manager):
        managers.append(manager)
        sid = await start(client, body)
        view = await until(client, sid, ended)
    assert view["status"] == "stopped", view
    assert query(db, "SELECT COUNT(*) FROM fills") == [(0,)], "the stopped session traded"
