"""`promote --to prod` checks the canary run's stored drift (SPEC 14): refused, naming the
bound, when a drift is out of bounds or was never measured; accepted within bounds."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perps_bot.cli.app import app
from perps_bot.metrics.promotion import PromotionRefused, evaluate_promotion
from perps_bot.storage import RunStore
from perps_bot.storage.drift_store import latest_drift, save_drift
from tests.metrics.metrics_builders import EASY_PROMOTION, passing_run, stage_profiles

BOUNDS = {"max_slippage_drift_bps": 2.0, "min_signal_agreement": 0.9,
          "max_pnl_tracking_error": 0.01}  # fmt: skip
WITHIN = {"median_slippage_drift_bps": 0.4, "signal_agreement": 0.95, "pnl_tracking_error": 0.002}


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    store = RunStore(tmp_path / "canary.sqlite")
    passing_run(store, "canary-live", kind="live", profile="canary",
                promotion={**EASY_PROMOTION, **BOUNDS})  # fmt: skip
    return store


def test_without_a_drift_report_prod_is_refused_and_told_how_to_get_one(store: RunStore) -> None:
    with pytest.raises(PromotionRefused) as refused:
        evaluate_promotion(store, "prod", "canary-live")
    text = str(refused.value)
    assert "3 of 10 criteria failed" in text
    assert "perps-bot drift --live canary-live" in text


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"median_slippage_drift_bps": 2.5}, "slippage_drift_bps = 2.5 (needs <= 2)"),
        ({"signal_agreement": 0.8}, "signal_agreement = 0.8 (needs >= 0.9)"),
        ({"pnl_tracking_error": 0.02}, "pnl_tracking_error = 0.02 (needs <= 0.01)"),
    ],
)
def test_a_drift_out_of_bounds_is_refused_naming_the_bound(
    store: RunStore, bad: dict[str, float], named: str
) -> None:
    save_drift(store, "canary-live", "replay-1", {}, {**WITHIN, **bad})
    with pytest.raises(PromotionRefused) as refused:
        evaluate_promotion(store, "prod", "canary-live")
    assert "1 of 10 criteria failed" in str(refused.value)
    assert named in str(refused.value)


def test_the_latest_drift_within_bounds_is_accepted(
    store: RunStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_drift(store, "canary-live", "replay-1", {}, {**WITHIN, "signal_agreement": 0.1})
    save_drift(store, "canary-live", "replay-2", {}, WITHIN)  # measured again, better
    assert latest_drift(store, "canary-live") == WITHIN
    report = evaluate_promotion(store, "prod", "canary-live")
    assert report.run.run_id == "canary-live"
    store.close()
    monkeypatch.chdir(tmp_path)  # a prod profile asking what the run's own config asks
    stage_profiles(tmp_path, prod={**EASY_PROMOTION, **BOUNDS})
    result = CliRunner().invoke(
        app,
        [
            "promote",
            "--to",
            "prod",
            "--run",
            "canary-live",
            "--db",
            str(tmp_path / "canary.sqlite"),
            "--target-db",
            str(tmp_path / "prod.sqlite"),
        ],
    )
    assert result.exit_code == 0, result.stderr


def test_a_drift_measured_before_the_run_ended_is_no_evidence(store: RunStore) -> None:
    """A drift measured while the canary still ran covers only its beginning: on main
    `promote --to prod` took it for the whole run (and a strategy whose paper side
    parted from live later on went to prod on it)."""
    from freezegun import freeze_time

    from tests.metrics.metrics_builders import DAY, T0

    with freeze_time(datetime.fromtimestamp((T0 + DAY) / 1000, tz=UTC)):
        save_drift(store, "canary-live", "replay-1", {}, WITHIN)  # the run ends at T0 + 3d
    assert latest_drift(store, "canary-live") == WITHIN
    with pytest.raises(PromotionRefused) as refused:
        evaluate_promotion(store, "prod", "canary-live")
    text = str(refused.value)
    assert "3 of 10 criteria failed" in text, text
    assert "measured before the run ended" in text and "perps-bot drift --live canary-live" in text
    save_drift(store, "canary-live", "replay-2", {}, WITHIN)  # measured again, now
    assert evaluate_promotion(store, "prod", "canary-live").passed
