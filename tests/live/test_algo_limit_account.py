"""Binance keeps at most 10 open stop and take-profit orders per symbol (exchangeInfo
MAX_NUM_ALGO_ORDERS; -4045 beyond) for the whole account, whichever portfolio placed
them. Several portfolios on one live account share that limit (SPEC 10, 16)."""

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from perps_bot.config.models import PortfolioConfig
from perps_bot.domain import MarketEvent, Signal, TargetPosition
from perps_bot.orchestrator.runner import Run
from perps_bot.strategies import NO_SIGNALS, Strategy
from perps_emulator import EmulatorServer
from tests.harness.polling import until
from tests.harness.scripted import ScriptParams
from tests.live.test_above_max_live import BTC, BTCUSDT, big_exchange, plan_run, run_while, stored
from tests.plans.helpers import write_plan

pytestmark = pytest.mark.integration


def entries(path: Path, count: int) -> Path:
    """`count` market entries of 100 BTC, each with a stop and a take-profit."""
    return write_plan(path, [
        {"id": f"r{n}", "symbol": BTC, "side": "long", "size": 100, "entry": "market",
         "stop": 59_000, "take_profit": 62_000} for n in range(1, count + 1)])  # fmt: skip


def two_portfolios(
    exchange: EmulatorServer, run_dirs: dict[str, str], plans: tuple[Path, Path]
) -> Any:
    """Portfolios `a` and `b` on the one account, each trading its own plan (read again
    at every event when it changed)."""
    settings = plan_run(exchange, run_dirs, plans[0])
    portfolios = [
        {"id": pid, "strategy": "plan", "symbols": [BTC], "capital": 1e8, "params": {
            "file": str(plan), "reload_interval": 0}}
        for pid, plan in zip(("a", "b"), plans, strict=True)
    ]  # fmt: skip
    account = settings.account.model_copy(update={"initial_balance": 2e8})
    return settings.model_copy(update={"account": account, "portfolios": [
        PortfolioConfig.model_validate(p) for p in portfolios]})  # fmt: skip


def resting(exchange: EmulatorServer) -> list[tuple[str, float]]:
    return sorted((o.type, o.quantity) for o in exchange.state.algo_orders.values()
                  if o.is_open)  # fmt: skip


def denied(run: Run) -> int:
    return sum(n for p in run.orchestrator.portfolios for n in p.rec.denials.values())


async def test_portfolios_on_one_account_share_the_symbols_stop_limit(
    in_repo: Path, run_dirs: dict[str, str], tmp_path: Path
) -> None:
    """a and b each go long 300 BTC in three entries of 100 with a stop and a take-
    profit: 3 + 3 orders each (the market maximum is 120), 12 on the account. Each
    portfolio checked its own 6 against the 10: the exchange refused the eleventh and
    twelfth (-4045) and the portfolio whose protection it was halted, its position
    protected in part. The entry that would take the account past 10 is refused before
    it exists now: 500 BTC rest protected by 10 orders, both portfolios ACTIVE."""
    async with big_exchange() as exchange:
        plans = (entries(tmp_path / "a.csv", 3), entries(tmp_path / "b.csv", 3))
        settings = two_portfolios(exchange, run_dirs, plans)
        states: list[str] = []

        async def settle(run: Run) -> None:
            await until(lambda: exchange.state.positions[BTCUSDT].amount >= 500.0
                        and denied(run) > 0 and len(resting(exchange)) >= 10)  # fmt: skip
            states.extend(str(p.risk.state) for p in run.orchestrator.portfolios)

        result = await run_while(settings, settle)
        position = exchange.state.positions[BTCUSDT].amount
        algos = resting(exchange)
    assert result.status == "completed"
    assert states == ["ACTIVE", "ACTIVE"]
    assert position == 500.0
    assert len(algos) == 10, algos
    denials = stored(result, "SELECT reason_code, detail FROM denials WHERE run_id LIKE ?||'.%'")
    assert [code for code, _ in denials] == ["ABOVE_MAX_QUANTITY"], denials
    assert "at most 10 open stop and take-profit orders" in denials[0][1]


async def test_another_portfolios_entry_on_its_way_is_not_charged_to_this_one(
    in_repo: Path, run_dirs: dict[str, str], tmp_path: Path
) -> None:
    """a's limit buy of 100 BTC with a stop and a take-profit rests; then b goes long
    700 BTC (seven market entries of 100) with a stop only: 6 stops (the market maximum
    is 120), and a's 2 once its limit fills, 8 of the 10. b's last entry was counted
    with a's take-profit, as if its own 700 were to have one too (12 orders), and
    refused; it goes out now and b's 700 rest protected by its 6 stops."""
    async with big_exchange() as exchange:
        a = write_plan(tmp_path / "a.csv", [
            {"id": "a1", "symbol": BTC, "side": "long", "size": 100, "entry": "limit",
             "limit_price": 50_000, "stop": 45_000, "take_profit": 62_000}])  # fmt: skip
        b = write_plan(tmp_path / "b.csv", [])
        settings = two_portfolios(exchange, run_dirs, (a, b))

        def limits() -> list[tuple[str, float]]:
            return [(o.client_order_id, o.orig_qty) for o in exchange.state.orders.values()
                    if o.type == "LIMIT" and o.status == "NEW"]  # fmt: skip

        async def enter(run: Run) -> None:
            await until(lambda: len(limits()) == 1)
            write_plan(b, [{"id": f"b{n}", "symbol": BTC, "side": "long", "size": 100,
                            "entry": "market", "stop": 59_000} for n in range(7)])  # fmt: skip
            await until(lambda: denied(run) > 0 or len(resting(exchange)) >= 6)

        result = await run_while(settings, enter)
        position = exchange.state.positions[BTCUSDT].amount
        algos = resting(exchange)
        waiting = limits()
    assert result.status == "completed"
    denials = stored(result, "SELECT reason_code, detail FROM denials WHERE run_id LIKE ?||'.%'")
    assert denials == []
    assert position == 700.0 and len(waiting) == 1
    assert [kind for kind, _ in algos] == ["STOP_MARKET"] * 6, algos
    assert math.fsum(size for _, size in algos) == pytest.approx(700.0)


async def test_stops_placed_by_hand_take_their_share_of_the_limit(
    in_repo: Path, run_dirs: dict[str, str], tmp_path: Path
) -> None:
    """Two stops the trader placed by hand rest on BTCUSDT (the bot leaves them be); the
    bot's plan goes long in five entries of 100 BTC, each with a stop and a take-profit.
    The check counted the bot's own protection only: at 500 BTC its 5 + 5 orders beside
    the trader's 2 were 12, the exchange refused two (-4045) and the bot halted. The
    fifth entry is refused before it exists now; 400 BTC rest protected by 4 + 4."""
    async with big_exchange() as exchange:
        for n in (1, 2):
            exchange.api.algo.algos.place({
                "symbol": BTCUSDT, "algoType": "CONDITIONAL", "side": "SELL",
                "type": "STOP_MARKET", "triggerPrice": "50000", "quantity": "1",
                "clientAlgoId": f"by-hand-{n}"})  # fmt: skip
        settings = plan_run(exchange, run_dirs, entries(tmp_path / "plan.csv", 5))
        states: list[str] = []

        async def settle(run: Run) -> None:
            await until(lambda: exchange.state.positions[BTCUSDT].amount >= 400.0
                        and denied(run) > 0 and len(resting(exchange)) >= 10)  # fmt: skip
            states.append(str(run.orchestrator.trading_state))

        result = await run_while(settings, settle)
        position = exchange.state.positions[BTCUSDT].amount
        algos = resting(exchange)
    assert result.status == "completed" and states == ["ACTIVE"]
    assert position == 400.0
    assert algos == sorted([("STOP_MARKET", 1.0)] * 2 + [("STOP_MARKET", 100.0)] * 4
                           + [("TAKE_PROFIT_MARKET", 100.0)] * 4)  # fmt: skip
    denials = stored(result, "SELECT reason_code, detail FROM denials WHERE run_id=?")
    assert [code for code, _ in denials] == ["ABOVE_MAX_QUANTITY"], denials
    assert "beside the account's other 2" in denials[0][1]


class StopThenTakeProfit(Strategy):
    """Long 700 BTC with a stop at 59000, 100 more than it holds at each event; once it
    holds them, the
    same target with a take-profit at 62000 too, at every event."""

    name = "stop_then_take_profit"
    Params = ScriptParams
    params: ScriptParams

    def on_event(self, event: MarketEvent) -> Sequence[Signal]:
        if event.symbol != BTC:
            return NO_SIGNALS
        self.seen = getattr(self, "seen", 0) + 1
        held = self.ctx.account.position_size(BTC)
        if held < 700.0:
            return (TargetPosition(BTC, min(held + 100.0, 700.0), reason="entry",
                                   stop_loss=59_000.0),)  # fmt: skip
        return (TargetPosition(BTC, 700.0, reason="more", stop_loss=59_000.0,
                               take_profit=62_000.0),)  # fmt: skip


async def test_new_levels_whose_orders_the_exchange_would_refuse_are_refused(
    in_repo: Path, run_dirs: dict[str, str], tmp_path: Path
) -> None:
    """700 BTC rest protected by 6 stops (the market maximum is 120); the strategy then
    asks for a take-profit too for the position it holds (no order to make: the new
    levels protect it at once). 6 take-profits beside the 6 stops are 12 of the 10 the
    exchange keeps: it refused two (-4045) and the bot halted, the position protected
    in part. The new levels are refused now, once, saying why; the 6 stops stay and
    the bot stays ACTIVE."""
    async with big_exchange() as exchange:
        settings = plan_run(exchange, run_dirs, tmp_path / "unused.csv")
        strategy = {"name": f"{__name__}:StopThenTakeProfit", "params": {}}
        settings = settings.model_copy(update={"strategy": settings.strategy.model_copy(
            update=strategy)})  # fmt: skip
        states: list[str] = []

        async def settle(run: Run) -> None:
            await until(lambda: exchange.state.positions[BTCUSDT].amount >= 700.0
                        and (denied(run) > 0 or len(resting(exchange)) > 6))  # fmt: skip
            books = run.orchestrator.primary.strategy.seen
            await until(lambda: run.orchestrator.primary.strategy.seen > books + 5)
            states.append(str(run.orchestrator.trading_state))

        result = await run_while(settings, settle)
        algos = resting(exchange)
    assert result.status == "completed" and states == ["ACTIVE"]
    assert [kind for kind, _ in algos] == ["STOP_MARKET"] * 6, algos
    denials = stored(
        result,
        "SELECT reason_code, detail FROM denials WHERE run_id=?"
        " AND reason_code != 'STALE_MARKET_DATA'",
    )  # before the first book
    assert [code for code, _ in denials] == ["ABOVE_MAX_QUANTITY"], denials
    assert "would need 12 protective orders" in denials[0][1]
