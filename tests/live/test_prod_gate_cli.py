"""SPEC 1 and 6: real orders beyond the canary need a recorded promotion to prod. The
gate is checked before any request reaches the exchange (the loopback emulator here
counts them), whatever the profile is called: a copy of prod.yaml chosen by its path
without its `profile: prod` line traded live with no promotion at all."""

import asyncio
from pathlib import Path

import pytest

from perps_bot.config.settings import read_profile
from perps_emulator import EmulatorServer
from tests.badinput.harness import run_subprocess
from tests.conftest import REPO
from tests.live.live_helpers import API_KEY, API_SECRET

pytestmark = pytest.mark.integration


def _env(emulator: EmulatorServer, tmp_path: Path) -> dict[str, str]:
    return {
        "PERPS_BOT__EXCHANGE__BASE_URL": emulator.base_url,
        "PERPS_BOT__EXCHANGE__API_KEY": API_KEY,
        "PERPS_BOT__EXCHANGE__API_SECRET": API_SECRET,
        "PERPS_BOT__RUN__LOG_DIR": str(tmp_path / "logs"),
        "PERPS_BOT__RUN__DATA_DIR": str(tmp_path / "data"),
    }


def _prod_copy(tmp_path: Path, name: str) -> Path:
    """prod.yaml as a trader would copy it, without its `profile: prod` line."""
    text = (Path(__file__).parents[2] / "src/perps_bot/config/profiles/prod.yaml").read_text()
    copied = tmp_path / name
    copied.write_text("\n".join(ln for ln in text.splitlines() if not ln.startswith("profile:")))
    assert read_profile(str(copied))["profile"] == copied.stem
    return copied


@pytest.mark.parametrize("profile", ["prod", "copy"])
async def test_live_trading_without_a_promotion_is_refused_before_the_exchange(
    in_repo: Path, tmp_path: Path, emulator: EmulatorServer, profile: str
) -> None:
    chosen = profile if profile == "prod" else str(_prod_copy(tmp_path, "mylive.yaml"))
    args = ["--profile", chosen, "--duration", "5s"]
    outcome = await asyncio.to_thread(run_subprocess, args, REPO, _env(emulator, tmp_path))
    assert outcome.code != 0, outcome.out
    assert "no promotion to prod recorded" in outcome.err, outcome.err
    assert emulator.calls == [], "a request reached the exchange before the gate"
