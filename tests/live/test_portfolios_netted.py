"""Two portfolios on opposite sides of one symbol on one exchange account (SPEC 10):
the exchange holds their net in one one-way position, so an order that reduces a
portfolio's own position may grow the account's; it must still get through."""

import sqlite3
from pathlib import Path

import pytest

from perps_bot.config import Settings, load_settings
from perps_bot.domain import TradingState
from perps_bot.orchestrator import venue_calls
from perps_bot.orchestrator.runner import Run
from perps_emulator import EmulatorServer
from tests.live.live_helpers import API_KEY, API_SECRET, UNTIL_S, run_until

pytestmark = pytest.mark.integration
HOLD = "tests.live.canary_strategy:HoldOnce"


def opposite(
    emulator: EmulatorServer, run_dirs: dict[str, str], long: float, short: float, hold: int = 5
) -> Settings:
    """`one` long `long` for `hold` books, then flat; `two` short `short` for the whole
    run."""
    return load_settings(
        "canary",
        {
            "run": {"duration": f"{UNTIL_S}s", "live_view": False, **run_dirs},
            "exchange": {"base_url": emulator.base_url, "poll_interval": "100ms",
                         "reconcile_interval": "300ms", "api_key": API_KEY,
                         "api_secret": API_SECRET},
            # within the canary's hard caps (50 USDT: ETH is about 3000 here)
            "portfolios": [
                {"id": "one", "strategy": HOLD, "params": {"hold": hold},
                 "order_size": {"ETH-PERP": long}},
                {"id": "two", "strategy": HOLD, "params": {"hold": 100_000, "short": True},
                 "order_size": {"ETH-PERP": short}},
            ],
        },
    )  # fmt: skip


def one_closed_or_gave_up(run: Run) -> bool:
    one = run.orchestrator.portfolios[0]
    books = getattr(one.strategy, "books", 0)
    return books > 5 and (one.ledger.position_size("ETH-PERP") == 0 or books > 15)


@pytest.mark.parametrize(("long", "short"), [(0.007, 0.014), (0.014, 0.007)])
async def test_a_close_against_the_accounts_net_gets_through(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer, long: float, short: float
) -> None:
    """one long 0.007 and two short 0.014: the exchange holds short 0.007, and one's close
    (a sell) adds to it. Sent reduce-only, the exchange refused it (-2022) and one stayed
    long for good; with one long 0.014 and two short 0.007 (the account long 0.007) the
    exchange cut one's close to 0.007, and one stayed long the rest."""
    settings = opposite(emulator, run_dirs, long, short)
    result = await run_until(settings, one_closed_or_gave_up)
    assert result.status == "completed"
    assert emulator.state.positions["ETHUSDT"].amount == pytest.approx(-short)
    with sqlite3.connect(result.db_path) as conn:
        held = dict(
            conn.execute(
                "SELECT run_id, SUM(CASE side WHEN 'buy' THEN size ELSE -size END)"
                " FROM fills GROUP BY run_id"
            ).fetchall()
        )
        denials = conn.execute("SELECT reason_code, detail FROM denials").fetchall()
    assert held == {
        f"{result.run_id}.one": pytest.approx(0.0),
        f"{result.run_id}.two": pytest.approx(-short),
    }
    assert denials == []


async def test_an_exchange_fill_of_a_symbol_several_portfolios_hold_halts_them(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    """one long 0.007, two short 0.014: the exchange holds short 0.007. A buy of 0.007 no
    order of the bot explains (a liquidation of the account's short, a trade by hand)
    cannot be told to be one's or two's. It was booked to the first portfolio trading
    ETH, silently but for a warning: one held a long of 0.014 it never asked for, two's
    short stayed, and the sum matched the exchange, so nobody looked. Like a difference
    the reconciliation cannot attribute, it halts the portfolios holding the symbol."""
    settings = opposite(emulator, run_dirs, 0.007, 0.014, hold=100_000)
    bought: list[bool] = []

    def booked_or_halted(run: Run) -> bool:
        if not bought:  # once both hold their position
            if emulator.state.positions["ETHUSDT"].amount == pytest.approx(-0.007):
                emulator.engine.place_order(
                    {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.007"}
                )
                bought.append(True)
            return False
        one = run.orchestrator.portfolios[0]
        return one.ledger.position_size("ETH-PERP") != pytest.approx(0.007) or (
            one.risk.state is TradingState.HALTED
        )

    result = await run_until(settings, booked_or_halted)
    assert result.status == "completed" and bought
    with sqlite3.connect(result.db_path) as conn:
        states = dict(conn.execute("SELECT portfolio, state FROM trading_state").fetchall())
    assert states == {"one": "HALTED", "two": "HALTED"}


async def test_a_portfolios_stop_against_the_accounts_net_closes_it(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    """one long 0.007 with a stop 1% under the market, two short 0.014: the exchange holds
    short 0.007. one's stop, a reduce-only sell, could only add to that short: when the
    price fell through it, the exchange expired it unfilled and one rode the fall long.
    On an account the portfolios share, a stop is the portfolio's own order of its size,
    and closes its position as the exchange nets it."""
    settings = opposite(emulator, run_dirs, 0.007, 0.014, hold=100_000)
    one = settings.portfolios[0]
    settings = settings.model_copy(update={"portfolios": [
        one.model_copy(update={"params": {**one.params, "stop": 0.01}}), settings.portfolios[1]
    ]})  # fmt: skip
    fell: list[int] = []  # the books one's strategy had seen when the price fell

    def stopped_out(run: Run) -> bool:
        one = run.orchestrator.portfolios[0]
        books = getattr(one.strategy, "books", 0)
        if not fell:  # once both hold their position and one's stop rests
            algos = [o for o in emulator.state.algo_orders.values() if o.status == "NEW"]
            if algos and emulator.state.positions["ETHUSDT"].amount == pytest.approx(-0.007):
                emulator.set_price("ETHUSDT", algos[0].trigger_price * 0.99)
                fell.append(books)
            return False
        return one.ledger.position_size("ETH-PERP") == 0 or books > fell[0] + 15

    result = await run_until(settings, stopped_out)
    assert result.status == "completed" and fell
    assert emulator.state.positions["ETHUSDT"].amount == pytest.approx(-0.014)
    with sqlite3.connect(result.db_path) as conn:
        held = dict(
            conn.execute(
                "SELECT run_id, SUM(CASE side WHEN 'buy' THEN size ELSE -size END)"
                " FROM fills GROUP BY run_id"
            ).fetchall()
        )
    assert held == {
        f"{result.run_id}.one": pytest.approx(0.0),
        f"{result.run_id}.two": pytest.approx(-0.014),
    }


async def test_a_resume_right_after_a_flatten_waits_for_the_netted_close(
    in_repo: Path, run_dirs: dict[str, str], emulator: EmulatorServer
) -> None:
    """The session API flattens one (long 0.007, two short 0.014: the account short 0.007)
    and resumes it at once: its strategy is asked what it wants once the close is done
    (orchestrator.controls). The close went out plain (the previous fix), which the wait
    did not take for a close: the strategy was asked while its long was still booked,
    wanted nothing, and one ended flat while it wanted its long."""
    settings = opposite(emulator, run_dirs, 0.007, 0.014, hold=100_000)
    done: list[int] = []  # one's fills at the flatten

    def flattened_and_resumed(run: Run) -> bool:
        engine = run.orchestrator
        one = engine.portfolios[0]
        if not done:  # once both hold their position
            if emulator.state.positions["ETHUSDT"].amount == pytest.approx(-0.007):
                one.paused = True
                assert engine.flatten(one, "flatten (test)") == 1
                engine.resume(one)
                done.append(one.rec.fills)
            return False
        return one.rec.fills >= done[0] + 2 or getattr(one.strategy, "books", 0) > 40

    result = await run_until(settings, flattened_and_resumed)
    assert result.status == "completed" and done
    with sqlite3.connect(result.db_path) as conn:
        reasons = [r for (r,) in conn.execute(
            "SELECT reason FROM fills WHERE run_id=? ORDER BY seq", (f"{result.run_id}.one",)
        )]  # fmt: skip
    assert reasons == ["canary entry", "flatten (test)", "canary resume"]
    assert emulator.state.positions["ETHUSDT"].amount == pytest.approx(-0.007)


@pytest.mark.pure_python  # patches the engine's methods
@pytest.mark.parametrize("at_once", [False, True], ids=["much-later", "at-once"])
async def test_a_restart_that_cannot_attribute_the_position_leaves_its_stops(
    in_repo: Path,
    run_dirs: dict[str, str],
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    at_once: bool,
) -> None:
    """one long 0.007 and two short 0.014, each with a stop: the exchange holds short
    0.007 and both stops. A later run cannot tell whose the short is, and both
    portfolios halt until an operator looks, as they should. Their books then held
    nothing, so each cancelled its stop and forgot its levels: the account's real short
    was left without any stop. The stops and levels of a position the books cannot
    attribute stay as they are now.
    Restarted at once (within the reconciliation's look-back for exchange fills), the
    later run's next reconciliation booked the first run's own entries again, as fills
    of no order of the bot's, all to one: one held the account's short in its books, and
    both stops were cancelled all the same. The fills the start's account holds are not
    booked again."""
    settings = opposite(emulator, run_dirs, 0.007, 0.014, hold=100_000)
    one, two = (p.model_copy(update={"params": {**p.params, "stop": 0.01}})
                for p in settings.portfolios)  # fmt: skip
    settings = settings.model_copy(update={"portfolios": [one, two]})

    def stops() -> list[tuple[str, str, float]]:
        found = emulator.state.algo_orders.values()
        return sorted((o.client_algo_id, o.side, o.quantity) for o in found if o.status == "NEW")

    await run_until(settings, lambda run: len(stops()) == 2)
    before = stops()
    if not at_once:  # none of the first run's fills are in the look-back
        monkeypatch.setattr(venue_calls, "RECONCILE_LOOKBACK_MS", 0)

    def reconciled_again(run: Run) -> bool:  # books every 100 ms, reconciles every 300
        return getattr(run.orchestrator.portfolios[0].strategy, "books", 0) > 15

    result = await run_until(settings, reconciled_again)
    assert result.status == "completed"
    assert sorted(side for _, side, _ in before) == ["BUY", "SELL"]
    assert stops() == before, "a stop of the account's position was cancelled"
    with sqlite3.connect(result.db_path) as conn:
        states = dict(conn.execute("SELECT portfolio, state FROM trading_state").fetchall())
        levels = conn.execute("SELECT COUNT(*) FROM protective_levels").fetchone()[0]
        booked = conn.execute(
            "SELECT COUNT(*) FROM fills WHERE run_id LIKE ?", (f"{result.run_id}%",)
        ).fetchone()[0]
    assert states == {"one": "HALTED", "two": "HALTED"}
    assert levels == 2
    assert booked == 0, "the later run booked fills the account held before it started"
