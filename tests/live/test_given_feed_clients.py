"""A dry run given its feed by its caller (run_bot(feed=...)) closes the exchange client
its start opened for the markets: that client is handed to the feed only when the run
builds its own, so a given feed left it open ('Unclosed connector' and ccxt's 'requires
to release all resources' warning when it was collected, in a later test's log)."""

from pathlib import Path
from typing import Any

import pytest

from perps_bot.exchange import client as client_module
from perps_bot.orchestrator.runner import Run
from perps_emulator import EmulatorServer
from tests.live.live_helpers import FakeClock
from tests.live.warmup_helpers import START, ClientFactory, canary, fake_feed, run_on


async def test_a_run_given_its_feed_closes_the_client_its_start_opened(
    in_repo: Path,
    run_dirs: dict[str, str],
    make_client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[Any] = []
    create = client_module.create_exchange

    def recorded(*args: Any, **kwargs: Any) -> Any:
        client = create(*args, **kwargs)
        made.append(client)
        return client

    monkeypatch.setattr(client_module, "create_exchange", recorded)
    clock = FakeClock(START)
    async with EmulatorServer(symbols=("ETHUSDT",), seed=3, clock=clock) as server:
        settings = canary(server, run_dirs, poll="100ms")

        def traded(run: Run) -> bool:
            return run.orchestrator.last_ts is not None

        result = await run_on(settings, fake_feed(server, make_client, clock, "100ms"), traded)
        assert result.status == "completed", result.detail
    assert made, "the run's start made no client: the case is not exercised"
    assert [c.session for c in made] == [None] * len(made), "a client the run opened is open"
