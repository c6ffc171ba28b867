"""A walk-forward's deflated Sharpe ratio comes from the returns of its test windows:
with a --step longer than --test the run is flat between windows, and those days
tested nothing."""

from pathlib import Path

import numpy as np
import pytest

from perps_bot.metrics import build_report
from perps_bot.metrics.dsr import deflated_sharpe, sample_variance
from perps_bot.metrics.walkforward import walkforward_section
from perps_bot.storage import RunStore
from perps_bot.storage.walkforward import WindowRecord, save_windows
from tests.metrics.metrics_builders import DAY, HOUR, T0, RunBuilder

SHARPES = [0.1, 0.3]


def _window(k: int, start: int, end: int) -> WindowRecord:
    return WindowRecord(k, start - 10 * DAY, start, start, end, {"fast": 5}, {}, SHARPES)


def test_the_days_between_test_windows_are_not_returns_of_the_dsr(tmp_path: Path) -> None:
    """Windows (T0, T0 + 2d] and (T0 + 5d, T0 + 7d], flat for the 3 days between: the
    DSR took 7 daily returns, 3 of them the zeros of days that tested nothing (a mean
    and spread of a strategy that was not trading). It takes the 4 of the windows."""
    store = RunStore(tmp_path / "wf.sqlite")
    b = RunBuilder(store, "wf-gap", kind="walkforward", end_ts=T0 + 7 * DAY)
    b.fill(T0 + HOUR, "buy", 1.0, 100.0)
    b.fill(T0 + 2 * DAY - HOUR, "sell", 1.0, 400.0)
    b.fill(T0 + 5 * DAY + HOUR, "buy", 1.0, 100.0)
    b.fill(T0 + 7 * DAY - HOUR, "sell", 1.0, 250.0)
    equity = [10_000.0, 10_100.0, 10_300.0, 10_300.0, 10_300.0, 10_300.0, 10_500.0, 10_450.0]
    b.curve([(T0 + d * DAY, e) for d, e in enumerate(equity)])
    run_id = b.done()
    save_windows(store.connection, run_id, [_window(0, T0, T0 + 2 * DAY),
                                            _window(1, T0 + 5 * DAY, T0 + 7 * DAY)])  # fmt: skip
    store.connection.commit()
    section = walkforward_section(store, build_report(store, run_id))
    assert section is not None
    assert section["dsr_warning"] == "from 4 returns of 1d (fewer than 30)"
    tested = [equity[0], equity[1], equity[2], equity[6], equity[7]]
    r = np.diff(tested) / np.asarray(tested[:-1])
    dev = r - r.mean()
    m2, m3, m4 = (float(np.mean(dev**p)) for p in (2, 3, 4))
    expected = deflated_sharpe(float(r.mean() / r.std(ddof=1)), 4, m3 / m2**1.5, m4 / m2**2,
                               4, sample_variance(SHARPES + SHARPES))  # fmt: skip
    assert section["dsr"] == pytest.approx(expected, abs=1e-9)
