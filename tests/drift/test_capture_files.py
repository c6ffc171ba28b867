"""A capture that cannot be replayed as it was recorded (SPEC 14) is one line and exit 2
before anything runs. Measured on main: a chunk cut short crashed `replay` and `drift`
with an internal error (exit 1), and a chunk missing from the numbering, or from the end
of a capture whose meta.json counts it, was skipped: the replay ran over a market with a
hole in it and exited 0."""

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from perps_bot.cli.app import main
from perps_bot.domain import BookSnapshot, Candle, Order, OrderType, Side, short_path
from perps_bot.feeds.replay import ReplayFeed, round_trip_latencies
from perps_bot.storage.capture import CaptureWriter
from tests.conftest import REPO

META = {"config": {}, "instruments": {}}


def capture(folder: Path, books: int = 9) -> list[BookSnapshot]:
    """A closed capture of `books` books, three rows to a chunk (three chunks)."""
    events = [
        BookSnapshot(1_000 * i, "ETH-PERP", [(100.0 + i, 1.0)], [(101.0 + i, 2.0)])
        for i in range(books)
    ]
    writer = CaptureWriter(folder, META, chunk_rows=3)
    for event in events:
        writer.events([event])
    writer.close()
    return events


def replay_exit(folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(["replay", "--capture", str(folder)])
    return int(exited.value.code or 0), capsys.readouterr().err


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A closed capture (nine books, three chunks) in the working directory."""
    monkeypatch.chdir(tmp_path)
    capture(tmp_path / "capture")
    return tmp_path / "capture"


def test_an_intact_capture_replays_every_chunk_in_order(tmp_path: Path) -> None:
    events = capture(tmp_path)
    assert len(list(tmp_path.glob("events-*.parquet"))) == 3
    assert ReplayFeed(tmp_path).events() == events


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        ("cut", "events-00002.parquet is unreadable"),
        ("hole", "events-00002.parquet is missing (found events-00003.parquet)"),
        ("tail", "events-00003.parquet is missing (meta.json counts 3 chunks, 2 found)"),
        ("columns", "events-00002.parquet has no column ts"),
    ],
)
def test_a_damaged_capture_is_one_line_and_exit_2(
    damage: str,
    says: str,
    folder: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    second, third = folder / "events-00002.parquet", folder / "events-00003.parquet"
    if damage == "cut":  # a copy cut short
        second.write_bytes(second.read_bytes()[:200])
    elif damage == "hole":
        second.unlink()
    elif damage == "tail":
        third.unlink()
    else:  # a Parquet file, but not a chunk of this table
        pq.write_table(pa.table({"when": [1]}), second)
    assert json.loads((folder / "meta.json").read_text())["complete"]
    code, err = replay_exit(folder, capsys)
    assert code == 2
    assert says in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("meta", "says"),
    [
        ({"complete": False}, "its run never closed it (crashed or still running)"),
        ({"dropped": 5}, "the recorder dropped 5 items"),
        ({"error": "writer failed", "dropped": 2}, "dropped 2 items; the recorder failed"),
    ],
)
def test_a_capture_that_misses_rows_is_replayed_with_a_warning(
    meta: dict[str, object],
    says: str,
    folder: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """meta.json says what a capture misses (its run crashed before closing it: the rows
    after the last chunk are gone; the recorder dropped items it could not keep up
    with). On main the replay said nothing and looked like a replay of the whole run."""
    path = folder / "meta.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | meta))
    code, err = replay_exit(folder, capsys)
    assert code == 0
    warning = [line for line in err.splitlines() if "warning" in line]
    assert len(warning) == 1 and f"capture {short_path(folder)} is incomplete: " in warning[0]
    assert says in warning[0]


def test_a_whole_capture_is_replayed_without_a_warning(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = replay_exit(folder, capsys)
    assert code == 0 and "warning" not in err


@pytest.mark.parametrize(
    ("meta", "says"),
    [
        ({"config": None}, "meta.json field config is not a dict"),
        ({"symbols": "ETH-PERP"}, "meta.json field symbols is not a list of str"),
        ({"counts": 7}, "meta.json field counts is not a dict of int"),
        ({"chunks": {"events": "3"}}, "meta.json field chunks is not a dict of int"),
        ({"instruments": {"ETH-PERP": 3}}, "meta.json field instruments is not a dict of dict"),
    ],
)
def test_a_meta_json_of_the_wrong_shape_is_one_line_and_exit_2(
    meta: dict[str, object],
    says: str,
    folder: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Valid JSON whose fields are not what the recorder writes was an internal error
    (exit 1) on main: `'NoneType' object has no attribute 'items'` and the like."""
    path = folder / "meta.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | meta))
    code, err = replay_exit(folder, capsys)
    assert code == 2
    assert says in err and err.count("\n") == 1 and "Traceback" not in err


def _captured_round_trip(folder: Path, kind: str) -> None:
    """A capture of a `kind` run (dry_run, live) with one order sent and answered."""
    writer = CaptureWriter(folder, {**META, "kind": kind})
    writer.events([BookSnapshot(1_000, "ETH-PERP", [(100.0, 1.0)], [(101.0, 2.0)])])
    order = Order("c1", "ETH-PERP", Side.BUY, 1.0, OrderType.MARKET, None, False, 1_000, "c1")
    writer.order_sent(order)
    writer.order_acknowledged(order)
    writer.close()


def test_a_dry_run_capture_has_no_round_trip_to_draw_an_empirical_latency_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dry run's orders go to the paper venue in the bot's own process: the capture's
    sent -> acknowledged times are that call (0 ms), no exchange round trip. On main
    `replay --latency empirical` drew every order's latency from those zeros (orders
    acted at the next event, not after the latency the dry run itself filled with);
    it is now the one-line refusal a capture without round trips gets. A live capture's
    round trips are still drawn from."""
    monkeypatch.chdir(tmp_path)
    _captured_round_trip(tmp_path / "dry", "dry_run")
    _captured_round_trip(tmp_path / "live", "live")
    assert round_trip_latencies(tmp_path / "dry") == []
    assert len(round_trip_latencies(tmp_path / "live")) == 1
    with pytest.raises(SystemExit) as exited:
        main(["replay", "--capture", str(tmp_path / "dry"), "--latency", "empirical"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.count("\n") == 1
    assert "no measured order round trip" in err and "dry run" in err


_KILLED_WRITING = """
import os, signal, sys
from pathlib import Path
import pyarrow.parquet as pq
from perps_bot.domain import BookSnapshot
from perps_bot.storage.capture import CaptureWriter

write_table = pq.write_table
written = []

def killed_in_the_second(table, where, **options):
    if written:  # the second chunk: half of it on disk, then the kill
        write_table(table, where, **options)
        Path(where).write_bytes(Path(where).read_bytes()[:200])
        os.kill(os.getpid(), signal.SIGKILL)
    written.append(where)
    write_table(table, where, **options)

pq.write_table = killed_in_the_second
writer = CaptureWriter(Path(sys.argv[1]), {"config": {}, "instruments": {}}, chunk_rows=3)
for i in range(9):
    writer.events([BookSnapshot(1_000 * i, "ETH-PERP", [(100.0 + i, 1.0)], [(101.0, 2.0)])])
writer.close()
"""


def test_a_run_killed_while_writing_a_chunk_leaves_a_capture_that_replays(
    tmp_path: Path,
) -> None:
    """A dry run killed (or crashed) while its capture writer wrote a chunk left that
    chunk cut short under its final name: the whole capture was refused (and a resumed
    run's capture, written after it, with it). A chunk appears whole or not at all."""
    folder = tmp_path / "capture"
    killed = subprocess.run([sys.executable, "-c", _KILLED_WRITING, str(folder)], cwd=REPO,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    events = ReplayFeed(folder).events()  # the first chunk; the rest died with the run
    assert [e.ts for e in events] == [0, 1_000, 2_000]


def _bars(symbol: str, first_open: int, closes: list[float]) -> list[Candle]:
    return [
        Candle(first_open + (i + 1) * 60_000, symbol, first_open + i * 60_000, c, c, c, c, 1.0)
        for i, c in enumerate(closes)
    ]


def test_a_resumed_capture_keeps_the_warm_up_its_run_started_with(tmp_path: Path) -> None:
    """A capture's warm-up is the candles its run started from: a replay of the whole
    capture starts there. A resumed run warms up again on the candles that closed while
    it was down (they lie in the capture's gap); they must not replace the start's, or
    the replay's strategies would start from candles of a later time."""
    folder = tmp_path / "cap"
    started = _bars("ETH-PERP", 0, [100.0, 101.0, 102.0])
    writer = CaptureWriter(folder, META)
    writer.warmup({"ETH-PERP": started})
    writer.events([BookSnapshot(200_000, "ETH-PERP", [(100.0, 1.0)], [(101.0, 2.0)])])
    writer.close()
    resumed = CaptureWriter(folder, META, resumed=True)
    resumed.warmup({"ETH-PERP": _bars("ETH-PERP", 3_600_000, [90.0, 91.0])})
    resumed.events([BookSnapshot(3_800_000, "ETH-PERP", [(90.0, 1.0)], [(91.0, 2.0)])])
    resumed.close()
    got = asyncio.run(ReplayFeed(folder).warmup_candles({"ETH-PERP": 10}, 60_000))
    assert got == {"ETH-PERP": started}
    assert json.loads((folder / "meta.json").read_text())["counts"]["warmup"] == 3
