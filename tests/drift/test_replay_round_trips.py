"""Only answered order requests are round trips (SPEC 14: `--latency empirical` draws
from the capture's measured round trips, drift shows them). Measured on main: the
capture recorded `acknowledged` when the venue's `submit` returned or raised, whatever
happened, so a request that never got an answer (its retries used up, the order's
outcome unknown, the breaker open) counted as a round trip of its whole retrying time:
here 9 s next to the answered 40 ms. Now such a request is recorded as `unanswered`
and is no round trip; an exchange's rejection is an answer and still counts."""

import asyncio
import contextlib
import threading
from pathlib import Path

import pytest

from perps_bot.domain import (
    BookSnapshot,
    Order,
    OrderStatus,
    OrderType,
    Side,
    record_fill,
    transition,
)
from perps_bot.feeds.replay import order_rows, round_trip_latencies
from perps_bot.orchestrator.capture import time_submissions
from perps_bot.storage import capture as capture_module
from perps_bot.storage.capture import CaptureWriter
from perps_bot.venues.base import OrderRejected, VenueUnavailable

META = {"config": {}, "instruments": {}, "kind": "live"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000

    def __call__(self) -> int:
        return self.now


class Venue:
    """A venue whose requests take `took` ms and end as `outcomes` says, in turn."""

    def __init__(self, clock: Clock, outcomes: list[tuple[int, Exception | None]]) -> None:
        self.clock = clock
        self.outcomes = outcomes

    async def submit(self, order: Order) -> Order:
        took, error = self.outcomes.pop(0)
        self.clock.now += took
        if error is not None:
            raise error
        return order


def order(n: int) -> Order:
    return Order(f"c{n}", "ETH-PERP", Side.BUY, 1.0, OrderType.MARKET, None, False, 1_000, "x")


def test_a_request_without_an_answer_is_no_round_trip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    monkeypatch.setattr(capture_module, "wall_ms", clock)
    writer = CaptureWriter(tmp_path, META)
    writer.events([BookSnapshot(1_000, "ETH-PERP", [(100.0, 1.0)], [(101.0, 2.0)])])
    venue = Venue(clock, [
        (40, None),  # answered: accepted
        (9_000, VenueUnavailable("outcome unknown, the exchange cannot be asked")),
        (7_000, OrderRejected(None, "not executed after 4 attempts: 429", answered=False)),
        (60, OrderRejected(None, "-2019 margin is insufficient")),  # the exchange said no
    ])  # fmt: skip
    time_submissions(venue, writer)  # type: ignore[arg-type]

    async def send() -> None:
        for n in range(4):
            with contextlib.suppress(OrderRejected, VenueUnavailable):
                await venue.submit(order(n))

    asyncio.run(send())
    writer.close()
    assert round_trip_latencies(tmp_path) == [40, 60]


def test_a_request_row_holds_the_order_as_it_was_then_not_when_the_writer_got_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer thread turns items into rows later than the trading path enqueued them:
    on main a `sent` or `acknowledged` row took the order's status when the thread got
    to it (here `filled` for both: the fill came before the writer wrote them), so the
    capture could not tell what the request's answer was (a replay of a live capture
    reads it: when the order started resting, whether its answer was `unknown`)."""
    take = CaptureWriter._take
    released = threading.Event()

    def held(self: CaptureWriter, kind: str, payload: object) -> None:
        released.wait(timeout=30)
        take(self, kind, payload)

    monkeypatch.setattr(CaptureWriter, "_take", held)
    writer = CaptureWriter(tmp_path, META)
    placed = Order("c1", "ETH-PERP", Side.BUY, 1.0, OrderType.LIMIT, 100.0, False, 1_000, "x")
    writer.order_sent(placed)
    transition(placed, OrderStatus.ACCEPTED, 1_040, "accepted")
    writer.order_acknowledged(placed)
    record_fill(placed, 1.0, 100.0, 1_500)
    released.set()
    writer.close()
    assert [(r["step"], r["reason"]) for r in order_rows(tmp_path)] == [
        ("sent", "new"), ("acknowledged", "accepted")
    ]  # fmt: skip
