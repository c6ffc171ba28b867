"""Historical file loaders: every format, the real freqtrade files, and one-line errors
that name the first bad row."""

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pytest

from perps_bot.domain import iso_utc
from perps_bot.feeds import FeedError
from perps_bot.feeds.loaders import load_candles, load_funding, load_marks
from tests.conftest import SHARED_DATA

FUTURES = SHARED_DATA / "futures"
T0 = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000  # an hour boundary
MIN = 60_000
H8 = 8 * 3_600_000

Row = tuple[int, float, float, float, float, float]


def rows(n: int = 5, step: int = MIN, start: int = T0) -> list[Row]:
    out: list[Row] = []
    price = 100.0
    for i in range(n):
        close = price + (1.0 if i % 2 == 0 else -0.5)
        out.append(
            (
                start + i * step,
                price,
                max(price, close) + 0.25,
                min(price, close) - 0.25,
                close,
                10.0 + i,
            )
        )
        price = close
    return out


def iso(ms: int) -> str:
    return iso_utc(ms)


def write_csv(path: Path, data: list[Row], *, iso_times: bool = False) -> Path:
    lines = ["timestamp,open,high,low,close,volume"]
    for ts, o, h, lo, c, v in data:
        stamp = iso(ts) if iso_times else str(ts)
        lines.append(f"{stamp},{o!r},{h!r},{lo!r},{c!r},{v!r}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_feather(path: Path, data: list[Row], *, int_ms: bool = False) -> Path:
    ts = np.array([r[0] for r in data], dtype=np.int64)
    date = (
        pa.array(ts, pa.int64()) if int_ms else pa.array(ts * 1_000_000, pa.timestamp("ns", "UTC"))
    )
    cols = {"date": date}
    for i, name in enumerate(("open", "high", "low", "close", "volume"), start=1):
        cols[name] = pa.array([float(r[i]) for r in data], pa.float64())
    feather.write_feather(pa.table(cols), path)
    return path


def write_json_gz(path: Path, data: list[Row]) -> Path:
    with gzip.open(path, "wt") as fh:  # NaN as null, the way JSON can carry it
        json.dump([[None if x != x else x for x in r] for r in data], fh)
    return path


# -- formats ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "writer",
    [
        lambda p, d: write_csv(p / "c.csv", d),
        lambda p, d: write_csv(p / "c.csv", d, iso_times=True),
        lambda p, d: write_feather(p / "c.feather", d),
        lambda p, d: write_feather(p / "c.feather", d, int_ms=True),
        lambda p, d: write_json_gz(p / "c.json.gz", d),
    ],
    ids=["csv-ms", "csv-iso", "feather-ts", "feather-int", "json-gz"],
)
def test_every_format_loads_the_same_candles(tmp_path: Path, writer: object) -> None:
    data = rows(7)
    path = writer(tmp_path, data)  # type: ignore[operator]
    candles = load_candles(path)
    assert len(candles) == 7
    assert candles.interval_ms == MIN
    assert candles.open_time.tolist() == [r[0] for r in data]
    assert candles.close.tolist() == [r[4] for r in data]
    assert candles.volume.tolist() == [r[5] for r in data]
    assert candles.close_time.tolist() == [r[0] + MIN for r in data]


def test_unknown_suffix_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "candles.parquet"
    path.write_text("x")
    with pytest.raises(FeedError, match=r"candles\.parquet: unknown data format") as err:
        load_candles(path)
    assert "\n" not in str(err.value)


def test_missing_file_and_missing_column(tmp_path: Path) -> None:
    with pytest.raises(FeedError, match="no such data file"):
        load_candles(tmp_path / "absent.csv")
    path = tmp_path / "c.csv"
    path.write_text("timestamp,open,high,low,close\n1,1,1,1,1\n")
    with pytest.raises(FeedError, match="missing column volume"):
        load_candles(path)
    path.write_text(f"{T0},1,1,1,1,1\n{T0 + MIN},1,1,1,1,1\n")  # no header
    with pytest.raises(FeedError, match="no time column"):
        load_candles(path)


# -- the real freqtrade files -------------------------------------------------------------


def test_real_xrp_5m_futures() -> None:
    candles = load_candles(FUTURES / "XRP_USDT_USDT-5m-futures.feather")
    assert len(candles) == 1999
    assert candles.interval_ms == 5 * MIN
    assert candles.open_time[0] == 1_636_934_400_000  # 2021-11-15T00:00Z
    assert candles.open[0] == pytest.approx(1.1893)
    assert np.all(np.diff(candles.open_time) == 5 * MIN)


def test_real_funding_is_floored_to_8h() -> None:
    funding = load_funding(FUTURES / "XRP_USDT_USDT-8h-funding_rate.feather", interval_ms=H8)
    assert len(funding) == 91
    assert np.all(funding.ts % H8 == 0)
    assert funding.ts[0] == 1_637_193_600_000  # 2021-11-18T00:00:00.000Z (file: .017)
    assert np.all(np.diff(funding.ts) == H8)
    assert funding.rate.sum() == pytest.approx(0.00796412, abs=1e-12)
    assert funding.rate.min() == pytest.approx(-0.00219334)


def test_real_1h_json_equals_feather() -> None:
    from_json = load_candles(FUTURES / "XRP_USDT_USDT-1h-futures.json.gz")
    from_feather = load_candles(FUTURES / "XRP_USDT_USDT-1h-futures.feather")
    assert len(from_json) == len(from_feather) == 100
    assert from_json.interval_ms == from_feather.interval_ms == 3_600_000
    assert np.array_equal(from_json.open_time, from_feather.open_time)
    for name in ("open", "high", "low", "close", "volume"):
        assert np.allclose(
            getattr(from_json, name), getattr(from_feather, name), rtol=0, atol=1e-12
        )


def test_real_mark_file_with_nan_volume_loads() -> None:
    marks = load_marks(FUTURES / "XRP_USDT_USDT-1h-mark.feather")
    assert len(marks) == 100
    assert np.isnan(marks.volume).all()
    with pytest.raises(FeedError, match="volume is NaN"):
        load_candles(FUTURES / "XRP_USDT_USDT-1h-mark.feather")


def test_real_file_with_gaps_is_rejected_then_filled() -> None:
    path = SHARED_DATA / "spot" / "ADA_BTC-5m.feather"
    with pytest.raises(FeedError, match=r"row 1504 \(2018-01-15T10:15:00.000Z\): gap: 1 candles"):
        load_candles(path)
    filled = load_candles(path, fill_gaps=True)
    assert filled.inserted == 40
    assert len(filled) == 5720 + 40
    assert np.all(np.diff(filled.open_time) == 5 * MIN)


# -- bad input names the first bad row ------------------------------------------------------


def _replace(data: list[Row], index: int, **changes: float) -> list[Row]:
    names = ("ts", "open", "high", "low", "close", "volume")
    row = list(data[index])
    for key, value in changes.items():
        row[names.index(key)] = value
    out = list(data)
    out[index] = tuple(row)  # type: ignore[assignment]
    return out


BAD_CASES = {
    "gap": (lambda d: d[:3] + d[4:], 4, "gap: 1 candles missing"),
    "duplicate": (lambda d: [*d[:3], d[2], *d[3:]], 4, "duplicate timestamp"),
    "unsorted": (lambda d: [d[0], d[2], d[1], *d[3:]], 3, "not sorted"),
    "newest first": (lambda d: d[::-1], 2, "not sorted (newest first? sort"),
    "nan": (lambda d: _replace(d, 4, close=float("nan")), 5, "close is NaN"),
    "negative": (lambda d: _replace(d, 3, low=-1.0), 4, "non-positive low -1.0"),
    "zero": (lambda d: _replace(d, 2, open=0.0), 3, "non-positive open"),
    "high": (lambda d: _replace(d, 5, high=1.0), 6, "high below max(open, close)"),
    "low": (lambda d: _replace(d, 1, low=1e9), 2, "low above min(open, close)"),
    "volume": (lambda d: _replace(d, 6, volume=-2.0), 7, "negative volume"),
    "misaligned": (lambda d: _replace(d, 3, ts=d[3][0] + 1_000), 4, "not a multiple"),
}


@pytest.mark.parametrize("fmt", ["csv", "feather", "json.gz"])
@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_names_first_bad_row(tmp_path: Path, case: str, fmt: str) -> None:
    mutate, row_number, problem = BAD_CASES[case]
    data = mutate(rows(10))
    # a second, later problem must not be the one reported
    data = _replace(data, len(data) - 1, close=float("nan"))
    writer = {"csv": write_csv, "feather": write_feather, "json.gz": write_json_gz}[fmt]
    path = writer(tmp_path / f"bad.{fmt}", data)
    with pytest.raises(FeedError) as err:
        load_candles(path)
    message = str(err.value)
    assert "\n" not in message
    stamp = iso(data[row_number - 1][0])
    assert message.startswith(f"bad.{fmt}: row {row_number} ({stamp})"), message
    assert problem in message


def test_bad_timestamp_text_names_row(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        f"timestamp,open,high,low,close,volume\n{iso(T0)},1,1,1,1,1\nyesterday,1,1,1,1,1\n"
    )
    with pytest.raises(FeedError, match="row 2: timestamp 'yesterday' is neither ISO-8601"):
        load_candles(path)


def test_bad_json_row_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.json.gz"
    with gzip.open(path, "wt") as fh:
        json.dump([[T0, 1, 1, 1, 1, 1], [T0 + MIN, 1, 1, 1]], fh)
    with pytest.raises(FeedError, match=r"row 2: expected \[ms, open, high, low, close, volume\]"):
        load_candles(path)


# -- --fill-gaps ----------------------------------------------------------------------------


def test_fill_gaps_inserts_flat_candles_and_drops_exact_duplicates(tmp_path: Path) -> None:
    data = rows(8)
    broken = [*data[:2], data[2], data[2], *data[5:]]  # duplicate row 3, rows 4-5 missing
    path = write_csv(tmp_path / "c.csv", broken)
    candles = load_candles(path, fill_gaps=True)
    assert candles.dropped == 1
    assert candles.inserted == 2
    assert candles.open_time.tolist() == [r[0] for r in data]
    prev_close = data[2][4]
    for i in (3, 4):
        assert (
            candles.open[i] == candles.high[i] == candles.low[i] == candles.close[i] == prev_close
        )
        assert candles.volume[i] == 0.0
    for i in (0, 1, 2, 5, 6, 7):
        assert candles.close[i] == data[i][4]
        assert candles.volume[i] == data[i][5]


@pytest.mark.parametrize("case", ["unsorted", "nan", "negative", "misaligned"])
def test_fill_gaps_still_rejects_real_damage(tmp_path: Path, case: str) -> None:
    mutate, row_number, problem = BAD_CASES[case]
    path = write_csv(tmp_path / "c.csv", mutate(rows(10)))
    with pytest.raises(FeedError, match=rf"row {row_number} .*{problem}"):
        load_candles(path, fill_gaps=True)


def test_fill_gaps_rejects_conflicting_duplicates(tmp_path: Path) -> None:
    data = rows(6)
    conflicting = (data[2][0], *data[3][1:])
    path = write_csv(tmp_path / "c.csv", [*data[:3], conflicting, *data[3:]])  # type: ignore[list-item]
    with pytest.raises(FeedError, match=r"row 4 .*duplicate timestamp"):
        load_candles(path, fill_gaps=True)


# -- funding and mark files -------------------------------------------------------------------


def _funding_rows(times: list[int], rates: list[float]) -> list[Row]:
    return [(t, r, 0.0, 0.0, 0.0, 0.0) for t, r in zip(times, rates, strict=True)]


def test_funding_floors_offsets_and_reports_gaps(tmp_path: Path) -> None:
    times = [T0 - T0 % H8 + i * H8 + ms for i, ms in enumerate([17, 3, 0, 9])]
    path = write_csv(tmp_path / "f.csv", _funding_rows(times, [1e-4, -2e-4, 3e-4, 0.0]))
    funding = load_funding(path, interval_ms=H8)
    assert funding.ts.tolist() == [t - t % H8 for t in times]
    assert funding.rate.tolist() == [1e-4, -2e-4, 3e-4, 0.0]

    gappy = write_csv(tmp_path / "g.csv", _funding_rows([times[0], times[2]], [1e-4, 1e-4]))
    with pytest.raises(FeedError, match=r"row 2 .*gap: 1 funding times missing"):
        load_funding(gappy, interval_ms=H8)
    assert load_funding(gappy, interval_ms=H8, fill_gaps=True).missing == 1

    dup = write_csv(tmp_path / "d.csv", _funding_rows([times[0], times[0] + 5], [1e-4, 2e-4]))
    with pytest.raises(FeedError, match=r"row 2 .*duplicate timestamp after flooring to 8h"):
        load_funding(dup, interval_ms=H8)

    nan = write_csv(tmp_path / "n.csv", _funding_rows(times[:2], [1e-4, float("nan")]))
    with pytest.raises(FeedError, match=r"row 2 .*funding rate is NaN"):
        load_funding(nan, interval_ms=H8)


def test_funding_times_off_the_interval_grid_are_refused(tmp_path: Path) -> None:
    """Flooring is for a settlement stamped a few ms late, not for one hours away: a file
    settling at 04:00, 12:00 and 20:00 (or a 4h file read as 8h) was moved 4h back onto
    00:00, 08:00 and 16:00 and charged there; with --fill-gaps a 4h file whose two rates
    of an 8h slot were equal lost one of them as a "duplicate"."""
    day = T0 - T0 % H8
    shifted = [day + 4 * 3_600_000 + i * H8 for i in range(4)]
    path = write_csv(tmp_path / "s.csv", _funding_rows(shifted, [1e-4] * 4))
    for fill_gaps in (False, True):
        with pytest.raises(FeedError, match=r"row 1 .*4h past the 8h funding grid"):
            load_funding(path, interval_ms=H8, fill_gaps=fill_gaps)
    four = [day + i * 4 * 3_600_000 for i in range(6)]
    path = write_csv(tmp_path / "h4.csv", _funding_rows(four, [1e-4] * 6))
    with pytest.raises(FeedError, match=r"row 2 .*4h past the 8h funding grid"):
        load_funding(path, interval_ms=H8, fill_gaps=True)
    assert load_funding(path, interval_ms=H8 // 2).ts.tolist() == four
    # a second late is still that settlement
    late = write_csv(
        tmp_path / "l.csv", _funding_rows([day + 1_000, day + H8 + 59_000], [1e-4] * 2)
    )
    assert load_funding(late, interval_ms=H8).ts.tolist() == [day, day + H8]


def test_mark_file_validates_prices(tmp_path: Path) -> None:
    data = _replace(rows(5), 2, high=0.5)
    path = write_feather(tmp_path / "m.feather", data)
    with pytest.raises(FeedError, match=r"row 3 .*high below"):
        load_marks(path)


def test_non_numeric_cell_names_the_first_bad_row(tmp_path: Path) -> None:
    lines = [f"{T0 + i * MIN},1,1.5,0.5,1,1" for i in range(200)]
    lines[150] = f"{T0 + 150 * MIN},1,1.5,0.5,oops,1"
    lines[120] = f"{T0 + 120 * MIN},1,1.5x,0.5,1,1"
    path = tmp_path / "c.csv"
    path.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(lines) + "\n")
    with pytest.raises(FeedError, match=r"c\.csv: row 121: high '1\.5x' is not a number"):
        load_candles(path)


def test_mixed_iso_and_epoch_ms_times_are_accepted(tmp_path: Path) -> None:
    data = rows(4)
    path = tmp_path / "c.csv"
    stamps = [
        iso(data[0][0]),
        str(data[1][0]),
        iso(data[2][0]).replace("Z", "+00:00"),
        iso(data[3][0]),
    ]
    body = [",".join([s, *(repr(x) for x in r[1:])]) for s, r in zip(stamps, data, strict=True)]
    path.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(body) + "\n")
    assert load_candles(path).open_time.tolist() == [r[0] for r in data]
