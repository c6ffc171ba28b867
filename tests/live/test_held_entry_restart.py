"""The entry of a live flip held back for its close (orchestrator.held_entries) when the
bot dies before the close is done (SPEC 9: nothing lost, nothing doubled).

Long 250 BTC, target short 50, the exchange's largest market order 120: the close goes
out as three reduce-only orders and the short entry waits for them. The process died
right after the exchange executed the third close, before the bot read its answer: the
entry lived only in the dead process, and the next start ended flat (no line said so).
The next start sends it now, once the close is done (recovered from the exchange) and
the account flat, under its own client id; later starts never send it again."""

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from perps_bot.domain import Order
from perps_bot.orchestrator.runner import Run, run_bot
from perps_emulator import EmulatorServer
from tests.harness.polling import until
from tests.live.test_above_max_live import BTC, BTCUSDT, big_exchange, plan_run, run_while

pytestmark = pytest.mark.integration

FLIP = "2:100,4:200,6:250,10:-50"


class Killed(BaseException):
    """The process dies here (nothing after it runs as the bot would have it)."""


def scripted(exchange: EmulatorServer, run_dirs: dict[str, str], script: str) -> Any:
    settings = plan_run(exchange, run_dirs, Path("unused.csv"))
    strategy = {"name": "tests.harness.scripted:ScriptedTargets",
                "params": {"symbol": BTC, "script": script}}  # fmt: skip
    return settings.model_copy(update={"strategy": settings.strategy.model_copy(
        update=strategy)})  # fmt: skip


async def killed_after_a_close(settings: Any, closes_sent: int = 3) -> None:
    """The flip's run, dead once the exchange executed its `closes_sent`-th closing
    order (of three)."""
    closes: list[Order] = []

    def kill_after(run: Run) -> Any:
        venue = run.orchestrator.venue
        submit = venue.submit

        async def submitted(order: Order) -> Order:
            done = await submit(order)
            closes.extend([order] if order.reduce_only else [])
            if len(closes) == closes_sent:
                assert run.orchestrator.primary.flow.held.by_symbol, "no entry held back"
                raise Killed
            return done

        venue.submit = submitted  # type: ignore[method-assign]
        return _nothing()

    with pytest.raises(Killed):
        await run_bot(settings, progress=False, attach=kill_after)


class _nothing:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


def entries(exchange: EmulatorServer) -> list[tuple[str, float, str]]:
    """The sells that open the short (not reduce-only): (client id, size, status)."""
    return [(o.client_order_id, o.orig_qty, o.status) for o in exchange.state.orders.values()
            if o.side == "SELL" and not o.reduce_only]  # fmt: skip


async def test_a_held_flip_entry_goes_out_once_after_a_live_restart(
    in_repo: Path, run_dirs: dict[str, str]
) -> None:
    async with big_exchange() as exchange:
        await killed_after_a_close(scripted(exchange, run_dirs, FLIP))
        assert exchange.state.positions[BTCUSDT].amount == 0.0  # the close was done
        assert entries(exchange) == []
        log = Path(run_dirs["log_dir"]) / "perps_bot.log"
        assert "held back at the end: the next start of the account sends it" in log.read_text()
        quiet = scripted(exchange, run_dirs, "")  # a strategy that wants nothing

        async def short(run: Run) -> None:
            await until(lambda: exchange.state.positions[BTCUSDT].amount == -50.0
                        and run.orchestrator.ledger.position_size(BTC) == -50.0,
                        timeout=20)  # fmt: skip

        second = await run_while(quiet.model_copy(update={"run": quiet.run.model_copy(
            update={"duration": "20s"})}), short)  # fmt: skip
        third = await run_bot(quiet.model_copy(update={"run": quiet.run.model_copy(
            update={"duration": "1s"})}), progress=False)  # fmt: skip
        sent = entries(exchange)
        position = exchange.state.positions[BTCUSDT].amount
    assert second.status == third.status == "completed"
    assert len(sent) == 1 and sent[0][1:] == (50.0, "FILLED"), sent
    assert position == -50.0
    with sqlite3.connect(second.db_path) as conn:
        rows = conn.execute("SELECT run_id, side, size, reduce_only FROM orders"
                            " WHERE client_id=?", (sent[0][0],)).fetchall()  # fmt: skip
    assert rows == [(second.run_id, "sell", 50.0, 0)], rows
    assert "sell 50 BTC-PERP, the entry of a flip, not sent: held back by run" in log.read_text()


async def test_a_held_flip_entry_whose_close_was_not_done_is_denied_after_a_restart(
    in_repo: Path, run_dirs: dict[str, str]
) -> None:
    """The process died after the second of the three closes: the third was never sent,
    the account is still long. The next start does not open the short on top of it: the
    entry is denied under its own client id, with a warning saying why."""
    async with big_exchange() as exchange:
        await killed_after_a_close(scripted(exchange, run_dirs, FLIP), closes_sent=2)
        left = exchange.state.positions[BTCUSDT].amount
        quiet = scripted(exchange, run_dirs, "")
        result = await run_bot(quiet.model_copy(update={"run": quiet.run.model_copy(
            update={"duration": "2s"})}), progress=False)  # fmt: skip
        sent = entries(exchange)
        position = exchange.state.positions[BTCUSDT].amount
    assert left == position == pytest.approx(83.333) and sent == []
    with sqlite3.connect(result.db_path) as conn:
        denied = conn.execute("SELECT run_id, detail FROM denials").fetchall()
    assert [run for run, _ in denied] == [result.run_id], denied
    assert "the close before it left the position 83.333 BTC-PERP" in denied[0][1]
    log = (Path(run_dirs["log_dir"]) / "perps_bot.log").read_text()
    assert "sell 50 BTC-PERP, the entry of a flip, not sent: the close before it" in log
