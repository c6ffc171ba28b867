"""A capture (SPEC 14) is written in chunks so that a run that never closes it (a crash,
a kill) loses only the rows after its last chunk, as the replay's warning says. Measured
on main: the order round trips were written only when the capture was closed, however
many market-data chunks went to disk before: a live run that crashed after hours left a
capture with all its books and not one of its orders, so its replay matched against the
run's own resting orders and `--latency empirical` found no round trip. Now the order
rows buffered are written with every market-data chunk."""

from pathlib import Path

from perps_bot.domain import BookSnapshot, Order, OrderStatus, OrderType, Side, transition
from perps_bot.feeds.replay import order_rows
from perps_bot.storage.capture import CaptureWriter
from tests.harness.polling import until

META = {"config": {}, "instruments": {}, "kind": "live"}


async def test_a_run_that_never_closed_its_capture_keeps_the_orders_of_its_chunks(
    tmp_path: Path,
) -> None:
    writer = CaptureWriter(tmp_path, META, chunk_rows=2)
    try:
        order = Order("c1", "ETH-PERP", Side.BUY, 1.0, OrderType.LIMIT, 100.0, False, 1_000, "x")
        writer.order_sent(order)
        transition(order, OrderStatus.ACCEPTED, 1_040, "accepted")
        writer.order_acknowledged(order)
        writer.events([BookSnapshot(ts, "ETH-PERP", [(100.0, 1.0)], [(101.0, 2.0)])
                       for ts in (1_000, 2_000)])  # fmt: skip
        await until(lambda: (tmp_path / "events-00001.parquet").exists())
        # the run dies here: its capture is never closed
        assert [(r["step"], r["client_id"]) for r in order_rows(tmp_path)] == [
            ("sent", "c1"), ("acknowledged", "c1")]  # fmt: skip
    finally:
        writer.close()
