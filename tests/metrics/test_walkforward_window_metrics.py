"""A walk-forward run's out-of-sample metrics per window, and its DSR from the returns of
its test windows, against a hand computation."""

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from perps_bot.cli.report import register
from perps_bot.metrics import build_report
from perps_bot.metrics.dsr import deflated_sharpe, sample_variance
from perps_bot.metrics.walkforward import walkforward_section, with_evidence
from perps_bot.storage import RunStore
from perps_bot.storage.walkforward import WindowRecord, save_windows
from tests.metrics.metrics_builders import DAY, HOUR, MINUTE, T0, RunBuilder


def _window(k: int, start: int, end: int, sharpes: list[float] | None = None) -> WindowRecord:
    sharpes = [0.1, 0.2] if sharpes is None else sharpes
    return WindowRecord(k, start - 10 * DAY, start, start, end, {"fast": 5}, {}, sharpes)


def _stored_section(store: RunStore, b: RunBuilder, windows: list[WindowRecord]) -> Any:
    """The walk-forward section of the run `b` built, stored with `windows`."""
    run_id = b.done()
    save_windows(store.connection, run_id, windows)
    store.connection.commit()
    section = walkforward_section(store, build_report(store, run_id))
    assert section is not None
    return section


def _two_windows(store: RunStore) -> str:
    """Window 1 tests (T0, T0 + 2d], window 2 (T0 + 2d, T0 + 4d]: window 2 starts at
    10,500 (the equity at its start), its trade pays a fee of 10 at once and ends at
    11,025."""
    b = RunBuilder(store, "wf-1", kind="walkforward", end_ts=T0 + 4 * DAY)
    b.fill(T0 + HOUR, "buy", 1.0, 100.0)
    b.fill(T0 + 2 * DAY - HOUR, "sell", 1.0, 600.0)
    b.fill(T0 + 2 * DAY + HOUR, "buy", 1.0, 100.0, fee=10.0)
    b.fill(T0 + 4 * DAY - HOUR, "sell", 1.0, 545.0, fee=10.0)
    b.curve(
        [
            (T0, 10_000.0),
            (T0 + HOUR, 10_000.0),
            (T0 + 2 * DAY - HOUR, 10_500.0),
            (T0 + 2 * DAY, 10_500.0),
            (T0 + 2 * DAY + HOUR, 10_490.0),
            (T0 + 3 * DAY, 10_700.0),
            (T0 + 4 * DAY - HOUR, 11_025.0),
            (T0 + 4 * DAY, 11_025.0),
        ]
    )
    run_id = b.done()
    save_windows(store.connection, run_id, [_window(0, T0, T0 + 2 * DAY),
                                            _window(1, T0 + 2 * DAY, T0 + 4 * DAY)])  # fmt: skip
    store.connection.commit()
    return run_id


def test_a_window_return_starts_from_the_equity_at_its_start(tmp_path: Path) -> None:
    """Window 2's return is 5% and its drawdown the fee's fall from 10,500, not measured
    from the first row after the fee."""
    store = RunStore(tmp_path / "wf.sqlite")
    section = walkforward_section(store, build_report(store, _two_windows(store)))
    assert section is not None
    first, second = (w["out_of_sample"] for w in section["windows"])
    assert first["return_pct"] == pytest.approx(5.0)
    assert second["trades"] == 1
    assert second["return_pct"] == pytest.approx((11_025.0 / 10_500.0 - 1.0) * 100.0)
    assert second["max_drawdown"] == pytest.approx(10.0 / 10_500.0)
    # daily samples from the window's start: 10,500, 10,700, 11,025
    r = [10_700.0 / 10_500.0 - 1.0, 11_025.0 / 10_700.0 - 1.0]
    mean = sum(r) / 2
    std = math.sqrt(sum((x - mean) ** 2 for x in r) / (2 - 1))
    assert second["sharpe"] == pytest.approx(mean / std * math.sqrt(365))


def test_a_window_starts_after_the_close_of_the_window_before(tmp_path: Path) -> None:
    """Window 1's position is closed at the open after its end (T0 + 2d + 1m), paying a
    fee of 10: that close is window 1's (its return 4.9%, its pnl 490). Window 2 starts
    from the equity after it (10,490): its return is that of its own trade, +445, with
    no drawdown; it never carries the fee of the window before."""
    store = RunStore(tmp_path / "wf.sqlite")
    b = RunBuilder(store, "wf-2", kind="walkforward", end_ts=T0 + 4 * DAY)
    b.fill(T0 + HOUR, "buy", 1.0, 100.0)
    b.fill(T0 + 2 * DAY + MINUTE, "sell", 1.0, 600.0, fee=10.0)
    b.fill(T0 + 3 * DAY, "buy", 1.0, 100.0)
    b.fill(T0 + 4 * DAY - HOUR, "sell", 1.0, 545.0)
    b.curve([(T0, 10_000.0), (T0 + HOUR, 10_000.0), (T0 + 2 * DAY, 10_500.0),
             (T0 + 2 * DAY + MINUTE, 10_490.0), (T0 + 3 * DAY, 10_490.0),
             (T0 + 4 * DAY - HOUR, 10_935.0), (T0 + 4 * DAY, 10_935.0)])  # fmt: skip
    section = _stored_section(
        store, b, [_window(0, T0, T0 + 2 * DAY), _window(1, T0 + 2 * DAY, T0 + 4 * DAY)]
    )
    first, second = (w["out_of_sample"] for w in section["windows"])
    assert first["total_pnl"] == pytest.approx(490.0)
    assert first["return_pct"] == pytest.approx(4.9)
    assert second["trades"] == 1 and second["total_pnl"] == pytest.approx(445.0)
    assert second["return_pct"] == pytest.approx((10_935.0 / 10_490.0 - 1.0) * 100.0)
    assert second["max_drawdown"] == pytest.approx(0.0)


def test_a_window_metric_from_too_little_data_is_flagged(tmp_path: Path) -> None:
    """SPEC 15: a window's out-of-sample Sharpe from two daily returns is shown with a
    warning (JSON and table), as the run's own metrics are, never silently."""
    path = tmp_path / "wf.sqlite"
    with RunStore(path) as store:
        _two_windows(store)
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    result = runner.invoke(app, ["report", "--db", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    second = json.loads(result.stdout)["walkforward"]["windows"][1]
    flagged = {w["metric"]: w["reason"] for w in second["out_of_sample_warnings"]}
    assert flagged["sharpe"] == "from 2 returns of 1d (fewer than 30)"
    assert flagged["win_rate"] == "from 1 trade (fewer than 30)"
    table = runner.invoke(app, ["report", "--db", str(path)], terminal_width=200)
    assert table.exit_code == 0, table.output
    windows = table.stdout[table.stdout.index("Walk-forward windows") :]
    out_rows = [line for line in windows.splitlines() if "│ out " in line]
    assert len(out_rows) == 2 and all("(!)" in line for line in out_rows)
    assert "window 1 out: sharpe from 2 returns of 1d (fewer than 30)" in windows


def test_an_in_sample_metric_from_too_little_data_is_flagged(tmp_path: Path) -> None:
    """The chosen trial's Sharpe from 5 returns of its training window is flagged; a
    window stored before the count was kept has nothing to flag it by."""
    store = RunStore(tmp_path / "wf.sqlite")
    run_id = _two_windows(store)
    in_sample = {"sharpe": 1.5, "trades": 40, "win_rate": 0.6, "return_pct": 2.0}
    windows = [
        WindowRecord(0, T0 - 5 * DAY, T0, T0, T0 + 2 * DAY, {}, {**in_sample, "returns": 5}, []),
        WindowRecord(1, T0 - 3 * DAY, T0 + 2 * DAY, T0 + 2 * DAY, T0 + 4 * DAY, {}, in_sample, []),
    ]
    save_windows(store.connection, run_id, windows)
    store.connection.commit()
    section = walkforward_section(store, build_report(store, run_id))
    assert section is not None
    first, second = section["windows"]
    assert first["in_sample_warnings"] == [
        {"metric": "sharpe", "reason": "from 5 returns of 1d (fewer than 30)"}
    ]
    assert second["in_sample_warnings"] == []
    assert "returns" not in first["in_sample"]  # the count is not a metric


SHARPES = [0.1, 0.3]
GAPPED = [10_000.0, 10_100.0, 10_300.0, 10_300.0, 10_300.0, 10_300.0, 10_500.0, 10_450.0]


def _gapped(store: RunStore, promotion: dict[str, Any] | None = None) -> RunBuilder:
    """A walk-forward run of test windows (T0, T0 + 2d] and (T0 + 5d, T0 + 7d] (its
    windows: _gapped_windows), flat for the 3 days between, its equity GAPPED."""
    b = RunBuilder(store, "wf-gap", kind="walkforward", end_ts=T0 + 7 * DAY, promotion=promotion)
    b.fill(T0 + HOUR, "buy", 1.0, 100.0)
    b.fill(T0 + 2 * DAY - HOUR, "sell", 1.0, 400.0)
    b.fill(T0 + 5 * DAY + HOUR, "buy", 1.0, 100.0)
    b.fill(T0 + 7 * DAY - HOUR, "sell", 1.0, 250.0)
    b.curve([(T0 + d * DAY, e) for d, e in enumerate(GAPPED)])
    return b


def _gapped_windows() -> list[WindowRecord]:
    return [_window(0, T0, T0 + 2 * DAY, SHARPES), _window(1, T0 + 5 * DAY, T0 + 7 * DAY, SHARPES)]


def test_the_days_between_test_windows_are_not_returns_of_the_dsr(tmp_path: Path) -> None:
    """Windows (T0, T0 + 2d] and (T0 + 5d, T0 + 7d], flat for the 3 days between: the
    DSR took 7 daily returns, 3 of them the zeros of days that tested nothing (a mean
    and spread of a strategy that was not trading). It takes the 4 of the windows."""
    store = RunStore(tmp_path / "wf.sqlite")
    section = _stored_section(store, _gapped(store), _gapped_windows())
    assert section["dsr_warning"] == "from 4 returns of 1d (fewer than 30)"
    equity = GAPPED
    tested = [equity[0], equity[1], equity[2], equity[6], equity[7]]
    r = np.diff(tested) / np.asarray(tested[:-1])
    dev = r - r.mean()
    m2, m3, m4 = (float(np.mean(dev**p)) for p in (2, 3, 4))
    expected = deflated_sharpe(float(r.mean() / r.std(ddof=1)), 4, m3 / m2**1.5, m4 / m2**2,
                               4, sample_variance(SHARPES + SHARPES))  # fmt: skip
    assert section["dsr"] == pytest.approx(expected, abs=1e-9)


def test_the_sharpe_criterion_of_a_walkforward_comes_from_its_test_windows(
    tmp_path: Path,
) -> None:
    """The same windows, 3 flat days apart: the run's `sharpe` criterion (what
    promotion.min_sharpe gates) took the run's 7 daily returns, 3 of them the zeros of
    days that tested nothing, which shrank it towards 0 (a trader reads it as the
    out-of-sample Sharpe ratio). It takes the 4 returns of the test windows, as the DSR."""
    tested = np.asarray([GAPPED[0], GAPPED[1], GAPPED[2], GAPPED[6], GAPPED[7]])
    r = np.diff(tested) / tested[:-1]
    expected = float(r.mean() / r.std(ddof=1) * math.sqrt(365.0))
    whole = np.diff(GAPPED) / np.asarray(GAPPED[:-1])
    diluted = float(whole.mean() / whole.std(ddof=1) * math.sqrt(365.0))
    store = RunStore(tmp_path / "wf.sqlite")
    run_id = _gapped(store, {"min_sharpe": (expected + diluted) / 2}).done()
    save_windows(store.connection, run_id, _gapped_windows())
    store.connection.commit()
    report = build_report(store, run_id)
    assert report.metrics["sharpe"] == pytest.approx(diluted)  # the run's own, its whole span
    report, _ = with_evidence(store, report)
    (sharpe,) = [c for c in report.criteria if c.name == "sharpe"]
    assert sharpe.value == pytest.approx(expected) and sharpe.passed, sharpe
