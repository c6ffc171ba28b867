"""Validation criteria (SPEC 6): each metric against its threshold from `promotion:`.

A run's report reads the thresholds from the config the run was started with (stored
in runs.config_json), not from today's profile file: editing a profile must not
change whether an old run passed. Promotion then holds the run to the stricter of
each of those and the target stage's profile (`stricter`): a run started with relaxed
criteria cannot set its own bar.
"""

import dataclasses
import json
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from perps_bot.config import PromotionConfig
from perps_bot.metrics.formatting import ReportError, num

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True, slots=True)
class Criterion:
    name: str
    op: str
    threshold: float
    value: float | None
    passed: bool
    #: where the threshold is from when not from the run's own config (promotion)
    source: str | None = None

    def as_dict(self) -> dict[str, Any]:
        value: float | int | None = self.value
        threshold: float | int = self.threshold
        if self.name in ("trades", "liquidations", "error_lines"):
            value = None if self.value is None else int(self.value)
            threshold = int(self.threshold)
        else:
            value = num(self.value)
            threshold = num(self.threshold) or 0.0
        out = {
            "name": self.name,
            "op": self.op,
            "threshold": threshold,
            "value": value,
            "passed": self.passed,
        }
        return out if self.source is None else out | {"threshold_from": self.source}

    def describe(self) -> str:
        """'win_rate 0.41 > 0.55' style text naming value and threshold."""
        value = "n/a" if self.value is None else f"{self.value:.6g}"
        source = "" if self.source is None else f", from {self.source}"
        return f"{self.name} = {value} (needs {self.op} {self.threshold:.6g}{source})"


def promotion_config(config_json: str) -> PromotionConfig:
    """The `promotion` section of a run's stored config (defaults if absent)."""
    try:
        data = json.loads(config_json)
    except json.JSONDecodeError as exc:
        raise ReportError(f"stored run config is not valid JSON: {exc.msg}") from exc
    section = data.get("promotion", {}) if isinstance(data, dict) else {}
    try:
        return PromotionConfig.model_validate(section)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ReportError(f"stored run config promotion.{where}: {first['msg']}") from exc


def _check(name: str, op: str, value: float | None, threshold: float) -> Criterion:
    passed = value is not None and _OPS[op](value, threshold)
    return Criterion(name=name, op=op, threshold=threshold, value=value, passed=passed)


def judged_on(criterion: Criterion, value: float | None) -> Criterion:
    """`criterion` judged on another `value` (its threshold and source kept)."""
    checked = _check(criterion.name, criterion.op, value, criterion.threshold)
    return dataclasses.replace(checked, source=criterion.source)


#: each criterion's threshold in `promotion:` (walkforward: require_walkforward)
FIELDS = {
    "trades": "min_trades",
    "days": "min_days",
    "win_rate": "min_win_rate",
    "sharpe": "min_sharpe",
    "max_drawdown": "max_drawdown",
    "liquidations": "max_liquidations",
    "error_lines": "max_error_lines",
    "slippage_drift_bps": "max_slippage_drift_bps",
    "signal_agreement": "min_signal_agreement",
    "pnl_tracking_error": "max_pnl_tracking_error",
    "walkforward": "require_walkforward",
    "dsr": "min_dsr",
}


def threshold_of(config: PromotionConfig, name: str) -> float | None:
    """The threshold `config` sets for criterion `name` (None: it does not ask for it)."""
    value = getattr(config, FIELDS[name])
    if isinstance(value, bool):
        return 1.0 if value else None
    return None if value is None else float(value)


def stricter(
    criteria: Sequence[Criterion], own: PromotionConfig, stage: PromotionConfig, where: str
) -> list[Criterion]:
    """The criteria held to the stricter threshold of each: the run's own config (`own`)
    and the target stage's profile (`stage`, named `where`). A threshold that is not
    the run's own says so (`source`), with what the run's own config asked."""
    out = []
    for c in criteria:
        theirs = threshold_of(stage, c.name) if c.name in FIELDS else None
        threshold = c.threshold
        if theirs is not None:
            pick = max if c.op in (">=", ">") else min
            threshold = pick(threshold, theirs)
        mine = threshold_of(own, c.name) if c.name in FIELDS else threshold
        if mine == threshold:
            out.append(c)
            continue
        asked = "none" if mine is None else f"{c.op} {mine:.6g}"
        checked = _check(c.name, c.op, c.value, threshold)
        source = f"the {where} profile (the run's own config: {asked})"
        out.append(dataclasses.replace(checked, source=source))
    return out


def evaluate_criteria(
    metrics: Mapping[str, Any],
    *,
    days: float,
    error_lines: int,
    config: PromotionConfig,
) -> list[Criterion]:
    """Every criterion, in a fixed order; a None metric fails its criterion."""
    return [
        _check("trades", ">=", float(metrics["trades"]), config.min_trades),
        _check("days", ">=", days, config.min_days),
        _check("win_rate", ">", metrics["win_rate"], config.min_win_rate),
        _check("sharpe", ">", metrics["sharpe"], config.min_sharpe),
        _check("max_drawdown", "<", metrics["max_drawdown"], config.max_drawdown),
        _check("liquidations", "<=", float(metrics["liquidations"]), config.max_liquidations),
        _check("error_lines", "<=", float(error_lines), config.max_error_lines),
    ]
