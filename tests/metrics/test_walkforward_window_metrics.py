"""A walk-forward run's out-of-sample metrics per window, against a hand computation."""

import math
from pathlib import Path

import pytest

from perps_bot.metrics import build_report
from perps_bot.metrics.walkforward import walkforward_section
from perps_bot.storage import RunStore
from perps_bot.storage.walkforward import WindowRecord, save_windows
from tests.metrics.metrics_builders import DAY, HOUR, T0, RunBuilder


def _window(k: int, start: int, end: int) -> WindowRecord:
    return WindowRecord(k, start - 10 * DAY, start, start, end, {"fast": 5}, {}, [0.1, 0.2])


def test_a_window_return_starts_from_the_equity_at_its_start(tmp_path: Path) -> None:
    """Window 2 tests (T0 + 2d, T0 + 4d]: it starts at 10,500 (the equity at its start),
    its trade pays a fee of 10 at once and ends at 11,025. Its return is 5% and its
    drawdown the fee's fall from 10,500, not measured from the first row after the fee."""
    store = RunStore(tmp_path / "wf.sqlite")
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
    section = walkforward_section(store, build_report(store, run_id))
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
