"""SPEC 1 and 6: real orders beyond the canary need a recorded promotion to prod. The
gate is checked before any request reaches the exchange (the loopback emulator here
counts them), whatever the profile is called: a copy of prod.yaml chosen by its path
without its `profile: prod` line traded live with no promotion at all."""

import asyncio
from pathlib import Path

import pytest

from perps_bot.config import read_profile
from perps_emulator import EmulatorServer
from tests.badinput.harness import bad_input_problems, run_subprocess
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


def _prod_named_canary(tmp_path: Path, *, line: bool) -> Path:
    """prod.yaml within the canary's 2x, named canary: by its file name (canary.yaml,
    no `profile:` line) or by a `profile: canary` line in a file named anything."""
    text = (Path(__file__).parents[2] / "src/perps_bot/config/profiles/prod.yaml").read_text()
    lines = [ln for ln in text.splitlines() if not ln.startswith("profile:")]
    lines = [ln.replace("max_leverage: 5", "max_leverage: 2") for ln in lines]
    lines = [ln.replace("default_leverage: 3", "default_leverage: 2") for ln in lines]
    folder = tmp_path / "x"
    folder.mkdir()
    copied = folder / ("desk.yaml" if line else "canary.yaml")
    copied.write_text("\n".join(["profile: canary"] * line + lines))
    assert read_profile(str(copied))["profile"] == "canary"
    return copied


@pytest.mark.parametrize("how", ["file name", "profile line", "environment"])
async def test_a_canary_above_its_hard_caps_is_refused_before_the_exchange(
    in_repo: Path, tmp_path: Path, emulator: EmulatorServer, how: str
) -> None:
    """The canary trades without a promotion because it trades under hard caps (SPEC 1:
    50 USDT per order and per position, 2x): a profile named canary with prod's caps (a
    copy of prod.yaml at /tmp/x/canary.yaml, a file with `profile: canary`, or the
    shipped canary with PERPS_BOT__RISK__MAX_ORDER_NOTIONAL) traded live with neither
    the caps nor the gate."""
    env = _env(emulator, tmp_path)
    if how == "environment":
        chosen = "canary"
        env["PERPS_BOT__RISK__MAX_ORDER_NOTIONAL"] = "5000"
    else:
        chosen = str(_prod_named_canary(tmp_path, line=how == "profile line"))
    args = ["--profile", chosen, "--duration", "5s"]
    outcome = await asyncio.to_thread(run_subprocess, args, REPO, env)
    assert bad_input_problems(outcome) == [], outcome
    assert "canary" in outcome.err and "max_order_notional" in outcome.err, outcome.err
    assert emulator.calls == [], "a request reached the exchange before the gate"
