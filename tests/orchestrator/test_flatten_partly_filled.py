"""A flatten of a position whose entry is partly filled: the flatten withdraws the rest
of the entry, but the cancel goes out with the next event's orders, and the rest may
fill before it lands (on the paper venue at that very event, before its orders are
made; on an exchange while the cancel is on its way). The flatten's close had the size
of the position when the flatten was asked: it closed that part only, and the
portfolio, paused and "flattened", held the rest. Its closes are sized when they are
made, on the position then held."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from perps_bot.domain import Fill, MarketEvent, Side, Signal, closing_intent
from perps_bot.orchestrator.runner import Run, run_bot
from tests.harness.limits import LOOSE_RISK
from tests.harness.scripted import ScriptedFeed, ScriptedTargets, quotes
from tests.harness.venue import ScriptedVenue
from tests.orchestrator.test_above_max_closes import BTC, big_account
from tests.orchestrator.test_one_truth import START_MS, _settings

PRICE = 60_000.0


@dataclass
class QueuedFills(ScriptedVenue):
    """Orders rest until the test fills them (`queue`); the fills come with the next
    event, as the venue's matching hands them out."""

    fill_on_next_event: bool = False
    queued: list[Fill] = field(default_factory=list)

    def queue(self, client_id: str, size: float) -> None:
        order = self._open[client_id]
        self.queued.append(self.fill(order, size, PRICE, order.created_ts))

    def on_market(self, event: MarketEvent) -> Sequence[Fill]:
        super().on_market(event)
        fills, self.queued = self.queued, []
        return fills


async def test_a_flatten_closes_the_rest_of_an_entry_that_fills_before_its_cancel(
    tmp_path: Path,
) -> None:
    settings = big_account(tmp_path, "2:100")
    venue = QueuedFills([])
    feed = ScriptedFeed(quotes(BTC, [PRICE] * 30, start_ms=START_MS))
    held: list[float] = []

    @contextlib.asynccontextmanager
    async def flatten_when_partly_filled(run: Run) -> AsyncIterator[None]:
        orchestrator = run.orchestrator
        p = orchestrator.primary

        async def watch() -> None:
            while not venue.open_orders():  # the entry, a buy of 100
                await asyncio.sleep(0)
            (entry,) = venue.open_orders()
            venue.queue(entry.client_id, 40.0)
            while p.ledger.position_size(BTC) != pytest.approx(40.0):
                await asyncio.sleep(0)
            orchestrator.pause(p)
            assert orchestrator.flatten(p, "flatten (API)") == 1
            venue.queue(entry.client_id, 60.0)  # the rest fills before the cancel lands
            while True:  # the closes fill as they come
                for order in venue.open_orders():
                    if order.side is Side.SELL and order.remaining > 0:
                        venue.queue(order.client_id, order.remaining)
                held.append(p.ledger.position_size(BTC))
                await asyncio.sleep(0)

        task = asyncio.create_task(watch())
        try:
            yield
        finally:
            task.cancel()

    result = await run_bot(settings, feed=feed, venue=venue, progress=False,
                           attach=flatten_when_partly_filled)  # fmt: skip
    assert result.status == "completed"
    assert 100.0 in held, "the rest of the entry filled after the flatten"
    assert held[-1] == pytest.approx(0.0), "the flattened portfolio held the rest"


class ClosesItsOrder(ScriptedTargets):
    """ScriptedTargets whose restatement on resume closes the order it asked for (its
    target), reduce-only, whatever part of it filled."""

    name = "closes_its_order"

    def on_resume(self) -> Sequence[Signal]:
        size = max(self.targets.values())
        return (closing_intent(self.params.symbol, size, "closes its order"),)


async def test_a_flatten_does_not_count_on_a_close_of_the_strategy_the_gate_denies(
    tmp_path: Path,
) -> None:
    """Resumed, the strategy closes the order it asked for (a reduce-only sell of 100,
    40 of it filled), and the API flattens before the next event. The flatten counted
    the strategy's close as taking the position away and sent nothing; the risk gate
    then denied that close (a reduce-only sell of 100 would flip a long of 40), and the
    flattened portfolio held its 40. The flatten's own closes take the place of the
    closes waiting."""
    settings = _settings(
        tmp_path,
        account={"initial_balance": 1e9, "default_leverage": 10.0},
        strategy={"name": "tests.orchestrator.test_flatten_partly_filled:ClosesItsOrder",
                  "params": {"symbol": BTC, "script": "2:100"}},
        risk=LOOSE_RISK,
    )  # fmt: skip
    venue = QueuedFills([])
    feed = ScriptedFeed(quotes(BTC, [PRICE] * 30, start_ms=START_MS))
    held: list[float] = []

    @contextlib.asynccontextmanager
    async def resume_then_flatten(run: Run) -> AsyncIterator[None]:
        orchestrator = run.orchestrator
        p = orchestrator.primary

        async def watch() -> None:
            while not venue.open_orders():  # the entry, a buy of 100
                await asyncio.sleep(0)
            (entry,) = venue.open_orders()
            venue.queue(entry.client_id, 40.0)
            while p.ledger.position_size(BTC) != pytest.approx(40.0):
                await asyncio.sleep(0)
            orchestrator.pause(p)
            assert orchestrator.resume(p) == 1  # the strategy's close, waiting
            orchestrator.flatten(p, "flatten (API)")
            while True:  # the closes fill as they come
                for order in venue.open_orders():
                    if order.side is Side.SELL and order.remaining > 0:
                        venue.queue(order.client_id, order.remaining)
                held.append(p.ledger.position_size(BTC))
                await asyncio.sleep(0)

        task = asyncio.create_task(watch())
        try:
            yield
        finally:
            task.cancel()

    result = await run_bot(settings, feed=feed, venue=venue, progress=False,
                           attach=resume_then_flatten)  # fmt: skip
    assert result.status == "completed"
    assert held and held[-1] == pytest.approx(0.0), "the flattened portfolio held its 40"
