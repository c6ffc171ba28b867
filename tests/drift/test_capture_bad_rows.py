"""A capture chunk that is a readable Parquet file of the capture's columns but holds a
row no capture writes (a file edited by hand, a disk error Parquet does not see) is one
line naming the chunk and the row, exit 2. Measured on main: a level's price without its
quantity or an events row without a time was an internal error with a traceback
(ValueError from zip, TypeError from int(None)), and a row of an unknown kind was left
out of the replay without a word."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from perps_bot.cli.app import main
from perps_bot.domain import BookSnapshot, Order, OrderType, Side
from perps_bot.storage.capture import CaptureWriter
from perps_bot.storage.capture_format import EVENT_SCHEMA, ORDER_SCHEMA
from tests.drift.test_replay_own_prints import ASKS, BIDS, CONFIG

Rows = list[dict[str, Any]]


def _capture(folder: Path) -> None:
    """A live run's capture: two books a chunk, one order sent."""
    meta = {"kind": "live", "run_id": "20261201T000000-canary-aaaaaa", "config": CONFIG,
            "instruments": {}}  # fmt: skip
    writer = CaptureWriter(folder, meta, chunk_rows=2)
    writer.order_sent(Order("o-1", "ETH-PERP", Side.BUY, 0.1, OrderType.MARKET, None, False,
                            1_000, "o"))  # fmt: skip
    for i in range(6):
        writer.events([BookSnapshot(1_000 + i * 1_000, "ETH-PERP", BIDS, ASKS, last=99.98,
                                    mark=99.98)])  # fmt: skip
    writer.close()


def _set(row: int, **values: Any) -> Callable[[Rows], None]:
    return lambda rows: rows[row].update(values)


@pytest.mark.parametrize(
    ("chunk", "edit", "says"),
    [
        ("events-00002", _set(1, bid_qty=[5.0]), "row 2 has bid_px and bid_qty of different"),
        ("events-00001", _set(1, ts=None), "row 2 has no ts"),
        ("events-00003", _set(0, kind="bookk"), "row 1 has an unknown kind"),
        ("events-00001", _set(0, kind="trade"), "row 1 has a trade without price"),
        ("orders-00001", _set(0, step=None), "row 1 has no step"),
    ],
)
def test_a_row_no_capture_writes_is_one_line_and_exit_2(
    chunk: str,
    edit: Callable[[Rows], None],
    says: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    _capture(tmp_path / "c")
    path = tmp_path / "c" / f"{chunk}.parquet"
    rows = pq.read_table(path).to_pylist()
    edit(rows)
    schema = ORDER_SCHEMA if chunk.startswith("orders") else EVENT_SCHEMA
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    with pytest.raises(SystemExit) as exited:
        main(["replay", "--capture", "c", "--db", "r.sqlite"])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert f"capture c/{chunk}.parquet: {says}" in err
    assert len(err.strip().splitlines()) == 1
