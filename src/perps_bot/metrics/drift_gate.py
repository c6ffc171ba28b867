"""The prod gate's drift bounds (SPEC 14): a canary run is promotable to prod only when
its latest stored drift report (`perps-bot drift --live RUN`) stays within the
`promotion:` bounds of the config the run was started with (and `promote` holds them
to the prod profile's where those are stricter: criteria.stricter):

| criterion | passes when |
|---|---|
| `slippage_drift_bps` | median \\|paper - live\\| slippage <= promotion.max_slippage_drift_bps |
| `signal_agreement` | signal agreement >= promotion.min_signal_agreement |
| `pnl_tracking_error` | PnL tracking error <= promotion.max_pnl_tracking_error |

A run with no drift report fails all three (values n/a), and so does one whose drift
reports were all measured before it ended (while it still ran: they cover only its
beginning)."""

from perps_bot.metrics.criteria import Criterion, promotion_config
from perps_bot.storage import RunRecord, RunStore
from perps_bot.storage.drift_store import latest_drift

NO_DRIFT_HINT = "no drift report for run {run}: run `perps-bot drift --live {run}` first"
STALE_DRIFT_HINT = (
    "the drift reports of run {run} were measured before the run ended: run"
    " `perps-bot drift --live {run}` again"
)


def _check(name: str, op: str, value: float | None, threshold: float) -> Criterion:
    passed = value is not None and (value <= threshold if op == "<=" else value >= threshold)
    return Criterion(name=name, op=op, threshold=threshold, value=value, passed=passed)


def drift_criteria(store: RunStore, run: RunRecord) -> tuple[list[Criterion], str | None]:
    """The three drift criteria of `run` and, when it has no drift report, why not."""
    config = promotion_config(run.config_json)
    summary = latest_drift(store, run.run_id, measured_from=run.end_ts) or {}

    def value(key: str) -> float | None:
        v = summary.get(key)
        return None if v is None else float(v)

    criteria = [
        _check("slippage_drift_bps", "<=", value("median_slippage_drift_bps"),
               config.max_slippage_drift_bps),
        _check("signal_agreement", ">=", value("signal_agreement"), config.min_signal_agreement),
        _check("pnl_tracking_error", "<=", value("pnl_tracking_error"),
               config.max_pnl_tracking_error),
    ]  # fmt: skip
    hint = None
    if not summary:
        stale = latest_drift(store, run.run_id) is not None
        hint = (STALE_DRIFT_HINT if stale else NO_DRIFT_HINT).format(run=run.run_id)
    return criteria, hint
