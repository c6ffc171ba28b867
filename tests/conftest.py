"""Shared fixtures. Tests never touch a real exchange and never write into the
repository's own logs/ or data/: each test that runs the bot gets a temp dir."""

import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from perps_bot import compiled

# before any engine module is imported: the suite runs the engine compiled where it is
# built (perps_bot.compiled), as `perps-bot backtest` does; PERPS_BOT_PURE=1: plain Python
compiled.activate()

from perps_bot.config.models import ExchangeConfig  # noqa: E402
from perps_bot.exchange.client import create_exchange  # noqa: E402
from perps_emulator import EmulatorServer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "freqtrade-testdata"


@pytest.fixture(autouse=True)
def _clean_perps_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's PERPS_BOT__* variables must not leak into tests."""
    for key in list(os.environ):
        if key.startswith("PERPS_BOT__"):
            monkeypatch.delenv(key)


@pytest.fixture(autouse=True)
def _own_state_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Live runs lock their exchange account, and record its last database, under
    $XDG_STATE_HOME (by default in the home folder): each test has its own (an emulator
    of an earlier test on the same port would be the same account)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run with the repository as working directory (profiles are found relative to it)."""
    monkeypatch.chdir(REPO)
    yield REPO


@pytest.fixture
def run_dirs(tmp_path: Path) -> dict[str, str]:
    """Settings overrides that send logs and the database to a temp dir."""
    return {
        "log_dir": str(tmp_path / "logs"),
        "data_dir": str(tmp_path / "data"),
    }


# The real-exchange path: the loopback emulator and real ccxt clients built by
# `create_exchange` (closed at teardown).
@pytest.fixture
async def emulator() -> AsyncIterator[EmulatorServer]:
    server = EmulatorServer(seed=3)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., Any]]:
    """Build real ccxt clients with create_exchange; all are closed at teardown."""
    made: list[Any] = []

    def factory(cfg: ExchangeConfig, *, private: bool) -> Any:
        client = create_exchange(cfg, private=private)
        made.append(client)
        return client

    try:
        yield factory
    finally:
        for client in made:
            await client.close()


@pytest.fixture
def silent_target() -> Iterator[int]:
    """A loopback port that takes connections (the kernel's backlog) and never answers
    (an alert receiver or exchange that hangs)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`pure_python` tests replace methods of the engine's classes; compiled, the engine
    calls its own methods directly and never sees the patch, so there they would test
    nothing: they are skipped, and `make test` runs them again with PERPS_BOT_PURE=1."""
    if compiled.describe().startswith("pure Python"):
        return
    skip = pytest.mark.skip(reason=f"patches compiled classes ({compiled.describe()})")
    for item in items:
        if item.get_closest_marker("pure_python") is not None:
            item.add_marker(skip)
