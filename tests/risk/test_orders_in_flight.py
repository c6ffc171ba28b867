"""The gate's position and leverage caps count the orders already on their way: the
ones approved earlier in the same batch of signals and those still open at the venue.
Each passing alone is not enough: together they are the position the account gets."""

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from perps_bot.config import Settings, load_settings
from perps_bot.orchestrator.runner import RunResult, run_bot
from tests.harness.scripted import ScriptedFeed, quotes
from tests.harness.settings import scripted_settings
from tests.harness.venue import ScriptedVenue

START_MS = 1_704_067_200_000
SYMBOL = "BTC-PERP"
PRICE = 100.0
CAPS = {"max_order_notional": 50.0, "max_position_notional": 50.0}


def settings(tmp_path: Path, script: str, **risk: Any) -> Settings:
    return scripted_settings(tmp_path, "ScriptedIntents", script, SYMBOL, risk=CAPS | risk)


async def run(cfg: Settings, venue: ScriptedVenue, events: int) -> RunResult:
    feed = ScriptedFeed(quotes(SYMBOL, [PRICE] * events, start_ms=START_MS))
    result = await run_bot(cfg, feed=feed, venue=venue, progress=False)
    assert result.status == "completed"
    return result


def denials(result: RunResult) -> list[str]:
    with sqlite3.connect(result.db_path) as conn:
        sql = "SELECT reason_code FROM denials WHERE run_id = ? ORDER BY ts"
        return [r[0] for r in conn.execute(sql, (result.run_id,))]


def sent(venue: ScriptedVenue) -> float:
    return sum(o.side.sign * o.size for o in venue.submitted)


async def test_two_buys_of_one_batch_are_resized_together_to_the_position_cap(
    tmp_path: Path,
) -> None:
    venue = ScriptedVenue([])
    await run(settings(tmp_path, "2:0.4,2:0.4"), venue, 4)
    assert sent(venue) * PRICE == pytest.approx(50.0)  # 40 + 10, not 40 + 40


async def test_an_order_still_open_at_the_venue_counts_against_the_cap(tmp_path: Path) -> None:
    venue = ScriptedVenue([], fill_on_next_event=False)
    result = await run(settings(tmp_path, "2:0.4,3:0.4,4:0.4", resize_to_caps=False), venue, 5)
    assert sent(venue) == pytest.approx(0.4)  # the 2nd and 3rd would make 80 and 120
    assert denials(result) == ["MAX_POSITION_NOTIONAL", "MAX_POSITION_NOTIONAL"]


async def test_a_sell_in_flight_does_not_make_room_for_a_buy(tmp_path: Path) -> None:
    """A sell may never fill: the room for a buy is the cap less the buys on their way."""
    venue = ScriptedVenue([], fill_on_next_event=False)
    await run(settings(tmp_path, "2:-0.4,3:0.4,3:0.4"), venue, 5)
    buys = sum(o.size for o in venue.submitted if o.side.sign > 0)
    assert buys * PRICE == pytest.approx(50.0)


async def test_orders_on_their_way_leave_a_close_alone(tmp_path: Path) -> None:
    """A reducing order is never held back by what is in flight."""
    venue = ScriptedVenue([])
    await run(settings(tmp_path, "2:0.5,4:0.2,4:-0.5"), venue, 6)
    assert [o.side.sign * o.size for o in venue.submitted] == pytest.approx([0.5, -0.5])


def portfolio(pid: str, script: str) -> dict[str, Any]:
    return {"id": pid, "strategy": "tests.harness.scripted:ScriptedIntents", "symbols": [SYMBOL],
            "params": {"symbol": SYMBOL, "script": script},
            "risk": {"max_position_notional": 40.0}}  # fmt: skip


async def test_the_account_cap_counts_the_other_portfolios_orders_on_their_way(
    tmp_path: Path,
) -> None:
    """Two portfolios buy 40 USDT each at the same event (each within its own cap of 40):
    the account's cap of 50 cuts the second to 10, as it would once the first filled; the
    next buy, while both still rest at the venue, finds no room."""
    cfg = settings(tmp_path, "")
    cfg = load_settings(
        "dev",
        {
            "run": cfg.run.model_dump(mode="json") | {"symbols": [SYMBOL]},
            "account": {"initial_balance": 10_000.0},
            "portfolios": [portfolio("a", "2:0.4"), portfolio("b", "2:0.4,3:0.4")],
            "risk": CAPS,
        },
    )
    venue = ScriptedVenue([], fill_on_next_event=False)
    await run(cfg, venue, 5)
    sizes = [(o.portfolio, o.size) for o in venue.submitted]
    assert sizes == [("a", 0.4), ("b", pytest.approx(0.1))]  # b's next one: no room left


async def test_a_resize_below_the_instrument_minimum_is_denied_for_the_cap(
    tmp_path: Path,
) -> None:
    """The position cap leaves room for 0.005 only, under the 0.01 minimum quantity: the
    order is denied for the cap that cut it, not as an order size to raise."""
    instruments = {SYMBOL: {"min_quantity": 0.01, "step_size": 0.001}}
    cfg = scripted_settings(
        tmp_path, "ScriptedIntents", "2:0.495,4:0.4", SYMBOL, risk=CAPS, instruments=instruments
    )
    venue = ScriptedVenue([])
    result = await run(cfg, venue, 6)
    assert sent(venue) == pytest.approx(0.495)
    assert denials(result) == ["MAX_POSITION_NOTIONAL"]
    log = (tmp_path / "logs" / "perps_bot.log").read_text()
    assert "raise strategy.order_size" not in log


async def test_orders_the_instrument_refuses_do_not_use_up_the_order_rate(
    tmp_path: Path,
) -> None:
    """Only orders that go out count against max_orders_per_minute: two the instrument
    refuses (under its minimum) leave the third its place."""
    instruments = {SYMBOL: {"min_quantity": 0.01, "step_size": 0.001, "min_notional": 0.0}}
    risk = CAPS | {"max_orders_per_minute": 2}
    cfg = scripted_settings(
        tmp_path, "ScriptedIntents", "2:0.001,3:0.001,4:0.02", SYMBOL, risk=risk,
        instruments=instruments,
    )  # fmt: skip
    venue = ScriptedVenue([])
    result = await run(cfg, venue, 6)
    assert denials(result) == ["BELOW_MIN_QUANTITY", "BELOW_MIN_QUANTITY"]
    assert sent(venue) == pytest.approx(0.02)
