"""A flatten withdraws the resting entries of the portfolio (orchestrator.controls), also
those an earlier run left on the exchange, which this run found open at its start and
books to the portfolio (orchestrator.routing). Those carried the default portfolio id,
not the portfolio's: a portfolio with an id of its own (a `portfolios:` list, a
session) kept them resting after its flatten, and the entry it no longer wanted could
fill into the paused, flat portfolio. A halt withdraws them too, also the halt a run
starts in (stored by an earlier run)."""

from pathlib import Path
from typing import Any

import pytest

from perps_bot.config import load_settings
from perps_bot.domain import TradingState
from perps_bot.orchestrator.runner import Run
from perps_bot.risk import RiskState
from perps_bot.storage import RunStore
from perps_bot.storage import durable as stored
from perps_emulator import EmulatorServer, Fault
from tests.live.live_helpers import API_KEY, API_SECRET, UNTIL_S, exchange_cfg, run_until

pytestmark = pytest.mark.integration
HOLD = "tests.live.canary_strategy:HoldOnce"
EARLIER = "earlierrun1"


async def _left_resting(server: EmulatorServer, make_client: Any) -> None:
    """A limit buy of 0.01 ETH well under the market, left by an earlier run."""
    client = make_client(exchange_cfg(server), private=True)
    await client.set_margin_mode("isolated", "ETH/USDT:USDT")  # the run's, set before
    book = await client.fetch_order_book("ETH/USDT:USDT")
    price = round(float(book["bids"][0][0]) * 0.95, 2)
    await client.create_order("ETH/USDT:USDT", "limit", "buy", 0.01, price,
                              {"newClientOrderId": EARLIER})  # fmt: skip


def _halted(database: Path) -> None:
    """The account's trading state stored HALTED by an earlier run."""
    halt = RiskState("HALTED", "halted by hand", manual_halt="halted by hand")
    with RunStore(database) as store, store.transaction():
        stored.save_trading_state(store.connection, profile="canary", state="HALTED",
                                  detail=halt.detail, risk=halt.to_json(), run_id="earlier",
                                  source="run")  # fmt: skip


async def test_a_flatten_withdraws_an_entry_an_earlier_run_left_resting(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer, make_client: Any
) -> None:
    await _left_resting(emulator, make_client)
    settings = load_settings("canary", {
        "run": {"duration": f"{UNTIL_S}s", "live_view": False, **run_dirs},
        "exchange": {"base_url": emulator.base_url, "poll_interval": "100ms",
                     "api_key": API_KEY, "api_secret": API_SECRET},
        "portfolios": [{"id": "solo", "strategy": HOLD, "params": {"hold": 100_000},
                        "order_size": {"ETH-PERP": 0.007}}],
    })  # fmt: skip
    flattened: list[int] = []  # the books seen at the flatten

    def flattened_and_settled(run: Run) -> bool:
        engine = run.orchestrator
        solo = engine.portfolios[0]
        books = getattr(solo.strategy, "books", 0)
        if not flattened:
            if solo.ledger.position_size("ETH-PERP") > 0:
                solo.paused = True
                assert engine.flatten(solo, "flatten (test)") == 1
                flattened.append(books)
            return False
        earlier = emulator.state.orders_by_client_id[EARLIER]
        closed = solo.ledger.position_size("ETH-PERP") == 0
        return (closed and not earlier.is_open) or books > flattened[0] + 20

    result = await run_until(settings, flattened_and_settled)
    assert result.status == "completed" and flattened
    assert emulator.state.positions["ETHUSDT"].amount == pytest.approx(0.0)
    assert emulator.state.orders_by_client_id[EARLIER].status == "CANCELED", (
        "the earlier run's entry was left resting after the flatten"
    )


async def test_a_run_that_starts_halted_withdraws_an_entry_left_resting(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer, make_client: Any
) -> None:
    """The account was halted (stored: SPEC 9) with an entry of the run that halted
    resting on the exchange (its withdrawal's cancel failed, or the process died before
    it went out). The next run starts halted and adopts the entry; a halt withdraws
    resting entries when it comes (a halt lets nothing in), but not one the run starts
    in: the entry rested on and could fill into the halted account."""
    await _left_resting(emulator, make_client)
    settings = load_settings("canary", {
        "run": {"duration": f"{UNTIL_S}s", "live_view": False, **run_dirs},
        "exchange": {"base_url": emulator.base_url, "poll_interval": "100ms",
                     "api_key": API_KEY, "api_secret": API_SECRET},
        "strategy": {"name": HOLD, "params": {"hold": 100_000}},
    })  # fmt: skip
    _halted(settings.database_path)

    def settled(run: Run) -> bool:
        books = getattr(run.orchestrator.primary.strategy, "books", 0)
        return not emulator.state.orders_by_client_id[EARLIER].is_open or books > 20

    result = await run_until(settings, settled)
    assert result.status == "completed"
    assert emulator.state.orders_by_client_id[EARLIER].status == "CANCELED", (
        "the entry rested on in the halted account"
    )


async def test_a_halts_withdrawal_whose_cancel_failed_is_tried_again(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer, make_client: Any
) -> None:
    """The halted run's withdrawal of the entry found resting: its cancel fails (the
    exchange answers 503 until the retries run out). It was dropped with a warning and
    never tried again: the entry rested on in the halted account. The reconciliations
    that follow withdraw what a halted portfolio still has resting."""
    await _left_resting(emulator, make_client)
    settings = load_settings("canary", {
        "run": {"duration": f"{UNTIL_S}s", "live_view": False, **run_dirs},
        "exchange": {"base_url": emulator.base_url, "poll_interval": "100ms",
                     "reconcile_interval": "300ms", "max_retries": 1,
                     "backoff_base": "10ms", "backoff_max": "20ms", "breaker_failures": 50,
                     "api_key": API_KEY, "api_secret": API_SECRET},
        "strategy": {"name": HOLD, "params": {"hold": 100_000}},
    })  # fmt: skip
    _halted(settings.database_path)
    emulator.inject(Fault("status", method="DELETE", count=2))

    def settled(run: Run) -> bool:
        books = getattr(run.orchestrator.primary.strategy, "books", 0)
        return not emulator.state.orders_by_client_id[EARLIER].is_open or books > 40

    result = await run_until(settings, settled)
    assert result.status == "completed"
    deletes = [r for r in emulator.requests if (r.method, r.path) == ("DELETE", "/fapi/v1/order")]
    assert len(deletes) >= 3, "the failed cancel was not tried again"
    assert emulator.state.orders_by_client_id[EARLIER].status == "CANCELED"


async def test_a_halt_for_a_refused_stop_withdraws_the_resting_entries(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer, make_client: Any
) -> None:
    """The exchange refuses the stop of the position the run opened: the portfolio halts
    (orchestrator.protective_levels: the position is not protected). A halt withdraws
    the resting entries, a halt of the reconciliation's or the drawdown's; this one,
    taken on the refusal's order update, left the entry resting, to fill into the
    halted account."""
    await _left_resting(emulator, make_client)
    settings = load_settings("canary", {
        "run": {"duration": f"{UNTIL_S}s", "live_view": False, **run_dirs},
        "exchange": {"base_url": emulator.base_url, "poll_interval": "100ms",
                     "reconcile_interval": "1h", "api_key": API_KEY, "api_secret": API_SECRET},
        "portfolios": [{"id": "solo", "strategy": HOLD,
                        "params": {"hold": 100_000, "stop": 0.01},
                        "order_size": {"ETH-PERP": 0.007}}],
    })  # fmt: skip
    emulator.inject(Fault("error_code", path="/fapi/v1/algoOrder", code=-2021,
                          msg="Order would immediately trigger."))  # fmt: skip
    halted: list[int] = []  # the books seen at the halt

    def halted_and_settled(run: Run) -> bool:
        p = run.orchestrator.primary
        books = getattr(p.strategy, "books", 0)
        if not halted:
            if p.risk.state is TradingState.HALTED:
                halted.append(books)
            return books > 40
        return not emulator.state.orders_by_client_id[EARLIER].is_open or books > halted[0] + 20

    result = await run_until(settings, halted_and_settled)
    assert result.status == "completed" and halted, "the refused stop halted the portfolio"
    assert emulator.state.orders_by_client_id[EARLIER].status == "CANCELED", (
        "the entry rested on in the halted account"
    )


async def test_a_flattens_withdrawal_whose_cancel_failed_is_tried_again(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer, make_client: Any
) -> None:
    """The flatten's cancel of the resting entry fails (the exchange answers 503 until
    the retries run out): it was dropped with a warning and never sent again, and the
    entry the flattened portfolio no longer wanted rested on. A cancel that could not
    be sent waits for the next one (the next reconciliation's at the latest)."""
    await _left_resting(emulator, make_client)
    settings = load_settings("canary", {
        "run": {"duration": f"{UNTIL_S}s", "live_view": False, **run_dirs},
        "exchange": {"base_url": emulator.base_url, "poll_interval": "100ms",
                     "reconcile_interval": "300ms", "max_retries": 1,
                     "backoff_base": "10ms", "backoff_max": "20ms", "breaker_failures": 50,
                     "api_key": API_KEY, "api_secret": API_SECRET},
        "portfolios": [{"id": "solo", "strategy": HOLD, "params": {"hold": 100_000},
                        "order_size": {"ETH-PERP": 0.007}}],
    })  # fmt: skip
    flattened: list[int] = []

    def flattened_and_settled(run: Run) -> bool:
        engine = run.orchestrator
        solo = engine.portfolios[0]
        books = getattr(solo.strategy, "books", 0)
        if not flattened:
            if solo.ledger.position_size("ETH-PERP") > 0:
                emulator.inject(Fault("status", method="DELETE", count=2))
                solo.paused = True
                engine.flatten(solo, "flatten (test)")
                flattened.append(books)
            return False
        return not emulator.state.orders_by_client_id[EARLIER].is_open or books > flattened[0] + 40

    result = await run_until(settings, flattened_and_settled)
    assert result.status == "completed" and flattened
    deletes = [r for r in emulator.requests if (r.method, r.path) == ("DELETE", "/fapi/v1/order")]
    assert len(deletes) >= 3, "the failed cancel was not tried again"
    assert emulator.state.orders_by_client_id[EARLIER].status == "CANCELED"
    assert emulator.state.positions["ETHUSDT"].amount == pytest.approx(0.0)
