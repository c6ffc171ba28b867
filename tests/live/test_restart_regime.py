"""A live bot restarted holding a position the market turned against while it was down
(SPEC 8, 9): live runs do not resume from a checkpoint, they adopt the exchange's
position and warm their indicators up again. Once sma_cross's averages are known and
say the other side, it flips, as a bot that never stopped would have at the cross;
before, it held the adopted short through the whole up move.

The bot runs in-process (run_bot) against the loopback emulator; the short was opened
on the exchange before the bot started, and the price climbs while it runs."""

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import pytest

from perps_bot.orchestrator.wiring import Run
from perps_emulator import EmulatorServer
from tests.live.live_helpers import run_until
from tests.live.test_crash_recovery import live_settings

pytestmark = pytest.mark.integration


def held(emulator: EmulatorServer) -> float:
    position = emulator.state.positions.get("ETHUSDT")
    return 0.0 if position is None else position.amount


async def test_a_restart_holding_a_short_against_rising_averages_flips_long(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    emulator.set_price("ETHUSDT", 2_400.0)
    emulator.engine.set_margin_type("ETHUSDT", "ISOLATED")  # as the earlier run left it
    emulator.engine.set_leverage("ETHUSDT", 2)
    emulator.engine.place_order(
        {"symbol": "ETHUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.01"}
    )  # held when the bot (re)starts
    assert held(emulator) == pytest.approx(-0.01)
    settings = live_settings(emulator, run_dirs, name="sma_cross", timeframe="1s",
                             params={"fast": 2, "slow": 3})  # fmt: skip
    settings = settings.model_copy(
        update={"run": settings.run.model_copy(update={"duration": "40s"})}
    )

    async def climb() -> None:  # a steady rise: the averages agree on up from the start
        price = 2_400.0
        while True:
            await asyncio.sleep(0.25)
            price += 2.0
            emulator.set_price("ETHUSDT", price)

    def flipped(run: Run) -> bool:
        return held(emulator) > 0

    rising = asyncio.create_task(climb())
    try:
        result = await run_until(settings, flipped)
    finally:
        rising.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await rising
    assert result.status == "completed", result.detail
    assert held(emulator) == pytest.approx(0.01), "the adopted short was never flipped"
    with sqlite3.connect(result.db_path) as conn:
        reasons = [r for (r,) in conn.execute("SELECT reason FROM fills WHERE run_id=?",
                                              (result.run_id,))]  # fmt: skip
    assert reasons == ["sma_cross up 2/3 (against the position held at start)"]
