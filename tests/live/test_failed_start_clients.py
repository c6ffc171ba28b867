"""A live run that cannot start once its venue is built (here `--resume`, which continues
paper runs only) closes the venue's private exchange client, not only the public one its
start opened for the markets: ccxt requires every client to be closed (before, the
private one never was; it had not sent a request yet, so no session was open, but
nothing closed it either)."""

from pathlib import Path
from typing import Any

import pytest

from perps_bot.exchange import client as client_module
from perps_bot.orchestrator.checkpoint import ResumeError
from perps_bot.orchestrator.runner import run_bot
from perps_emulator import EmulatorServer
from tests.live.live_helpers import FakeClock
from tests.live.warmup_helpers import START, canary


async def test_a_live_run_refused_after_its_venue_was_built_closes_every_client(
    in_repo: Path, run_dirs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[tuple[bool, Any]] = []
    create = client_module.create_exchange

    def recorded(*args: Any, **kwargs: Any) -> Any:
        client = create(*args, **kwargs)
        made.append((bool(kwargs.get("private")), client))
        return client

    monkeypatch.setattr(client_module, "create_exchange", recorded)
    async with EmulatorServer(symbols=("ETHUSDT",), seed=3, clock=FakeClock(START)) as server:
        settings = canary(server, run_dirs, live=True)
        with pytest.raises(ResumeError, match="continues paper runs"):
            await run_bot(settings, progress=False, resume="latest")
    assert [private for private, _ in made] == [False, True], "the case is not exercised"
    # ccxt marks a client its owner closed; a closed client has no session left
    assert [c.closed_by_user for _, c in made] == [True, True], "a client the run made is open"
    assert [c.session for _, c in made] == [None, None]
