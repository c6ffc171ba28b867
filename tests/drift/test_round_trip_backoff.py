"""A live order's round trip (SPEC 14: `--latency empirical` draws from the capture's
measured round trips) is the answered request, not the client's own waiting between
retries. Measured on main: the exchange refused the first attempt (429, Retry-After
2 s), the venue waited and sent again, and the capture's round trip was the whole
2 000 ms from the first send to the answer: the paper venue's latency model then drew
2 s where the exchange took none (the fake clock here moves only while the venue
sleeps). Now the capture records when the answered attempt left (`attempt`) and the
round trip counts from there."""

from pathlib import Path

import pytest

from perps_bot.domain import BookSnapshot, Order, OrderType, Side
from perps_bot.feeds.replay import round_trip_latencies
from perps_bot.orchestrator.capture import time_submissions
from perps_bot.storage import capture as capture_module
from perps_bot.storage.capture import CaptureWriter
from perps_bot.venues.live import LiveVenue
from perps_emulator import EmulatorServer, Fault
from tests.live.live_helpers import (
    ACCOUNT,
    ClientFactory,
    exchange_cfg,
    exchange_instruments,
    started_venue,
)

pytestmark = pytest.mark.integration

META = {"config": {}, "instruments": {}, "kind": "live"}


async def test_a_retried_order_request_counts_the_answered_attempt_only(
    emulator: EmulatorServer,
    make_client: ClientFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    venue, clock = await started_venue(emulator, make_client)
    monkeypatch.setattr(capture_module, "wall_ms", clock)
    writer = CaptureWriter(tmp_path, META)
    writer.events([BookSnapshot(clock.now, "ETH-PERP", [(100.0, 1.0)], [(101.0, 2.0)])])
    time_submissions(venue, writer)
    emulator.inject(Fault("rate_limit", count=1, retry_after=2))
    order = Order("pbxrtt1", "ETH-PERP", Side.BUY, 0.01, OrderType.MARKET, None, False,
                  clock.now, "pbxrtt1")  # fmt: skip
    started = clock.now
    await venue.submit(order)
    assert clock.now - started >= 2_000  # the venue did wait the Retry-After
    await venue.stop()
    writer.close()
    assert round_trip_latencies(tmp_path) == [0]  # the answered attempt: no fake time


async def test_an_order_found_by_a_look_up_after_an_unknown_outcome_is_no_round_trip(
    emulator: EmulatorServer,
    make_client: ClientFactory,
    tmp_path: Path,
) -> None:
    """Binance answered -1007 (outcome unknown) and executed the order half a second
    later: the venue looked it up, waiting between look-ups, until it was there. Its
    request got no answer of its own; on main its 'round trip' was the whole time from
    the send to the look-up that found it (here over 500 ms of the client's waiting),
    now it is no round trip."""
    instruments = await exchange_instruments(emulator, make_client, ["ETH-PERP"])
    config = exchange_cfg(emulator, recv_window="3s")
    venue = LiveVenue(make_client(config, private=True), config, ACCOUNT, instruments)
    await venue.start()
    writer = CaptureWriter(tmp_path, META)
    writer.events([BookSnapshot(1_000, "ETH-PERP", [(100.0, 1.0)], [(101.0, 2.0)])])
    time_submissions(venue, writer)
    emulator.inject(Fault("unknown_then_execute", delay_s=0.5))
    placed = await venue.submit(
        Order("pbxrtt2", "ETH-PERP", Side.BUY, 0.01, OrderType.MARKET, None, False, 0, "pbxrtt2")
    )
    await venue.stop()
    writer.close()
    assert placed.exchange_id is not None  # found, not sent again
    assert round_trip_latencies(tmp_path) == []
