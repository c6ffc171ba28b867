"""Validation criteria (SPEC 6): each metric against its threshold from `promotion:`.

The thresholds are read from the config the run was started with (stored in
runs.config_json), not from today's profile file: editing a profile must not
change whether an old run passed.
"""

import json
import operator
from collections.abc import Callable, Mapping
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

    def as_dict(self) -> dict[str, Any]:
        value: float | int | None = self.value
        threshold: float | int = self.threshold
        if self.name in ("trades", "liquidations", "error_lines"):
            value = None if self.value is None else int(self.value)
            threshold = int(self.threshold)
        else:
            value = num(self.value)
            threshold = num(self.threshold) or 0.0
        return {
            "name": self.name,
            "op": self.op,
            "threshold": threshold,
            "value": value,
            "passed": self.passed,
        }

    def describe(self) -> str:
        """'win_rate 0.41 > 0.55' style text naming value and threshold."""
        value = "n/a" if self.value is None else f"{self.value:.6g}"
        return f"{self.name} = {value} (needs {self.op} {self.threshold:.6g})"


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
