"""Parameter spaces from the command line: `--space NAME=KIND:ARGS` (SPEC 13).

Kinds, each an Optuna distribution:
- `int:LOW:HIGH[:STEP]`  integers LOW..HIGH inclusive (IntDistribution);
- `float:LOW:HIGH[:STEP]` uniform floats (FloatDistribution);
- `log:LOW:HIGH`          floats uniform in log space, LOW > 0 (FloatDistribution(log=True));
- `choice:A,B,...`        one of the listed values, each read like `--param` values
  (CategoricalDistribution).

A malformed space is a ConfigError: one line naming the bad text, exit code 2.
"""

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from perps_bot.config import ConfigError
from perps_bot.config.values import parse_param_value
from perps_bot.domain import short

Space = dict[str, BaseDistribution]
KINDS = ("int", "float", "log", "choice")


def parse_space(specs: Sequence[str]) -> Space:
    """`["fast=int:5:50", "slow=int:20:200"]` -> {name: distribution}."""
    space: Space = {}
    for spec in specs:
        name, sep, rest = spec.partition("=")
        name = name.strip()
        if not sep or not name or not rest.strip():
            raise ConfigError(
                f"bad --space {short(spec)!r}: expected NAME=KIND:ARGS, e.g. fast=int:5:50"
            )
        if name in space:
            raise ConfigError(f"bad --space {short(spec)!r}: {short(name)} is given twice")
        space[name] = _distribution(spec, rest.strip())
    if not space:
        raise ConfigError("optimize needs at least one --space NAME=KIND:ARGS")
    return space


def _distribution(spec: str, text: str) -> BaseDistribution:
    kind, _, args = text.partition(":")
    kind = kind.strip().lower()
    if kind == "choice":
        values = [parse_param_value(v.strip()) for v in args.split(",") if v.strip()]
        if not values:
            raise ConfigError(f"bad --space {short(spec)!r}: choice needs values, e.g. choice:a,b")
        return CategoricalDistribution(values)
    if kind not in KINDS:
        raise ConfigError(
            f"bad --space {short(spec)!r}: unknown kind {short(kind)!r} (use {', '.join(KINDS)})"
        )
    parts = [p.strip() for p in args.split(":")]
    most = 2 if kind == "log" else 3
    if not 2 <= len(parts) <= most:
        form = "log:LOW:HIGH" if kind == "log" else f"{kind}:LOW:HIGH[:STEP]"
        raise ConfigError(f"bad --space {short(spec)!r}: expected {form}")
    numbers = [_number(spec, p, integer=kind == "int") for p in parts]
    low, high = numbers[0], numbers[1]
    step = numbers[2] if len(numbers) == 3 else None
    if low > high:
        raise ConfigError(f"bad --space {short(spec)!r}: low {low} is above high {high}")
    if step is not None and step <= 0:
        raise ConfigError(f"bad --space {short(spec)!r}: step must be positive")
    if kind == "log" and low <= 0:
        raise ConfigError(f"bad --space {short(spec)!r}: log needs LOW > 0")
    if kind != "int" and not math.isfinite(high - low):
        raise ConfigError(f"bad --space {short(spec)!r}: the range is too wide to sample")
    try:
        if kind == "int":
            return IntDistribution(int(low), int(high), step=int(step or 1))
        if kind == "log":
            return FloatDistribution(float(low), float(high), log=True)
        return FloatDistribution(
            float(low), float(high), step=None if step is None else float(step)
        )
    except ArithmeticError:  # optuna's decimal check of the grid
        raise ConfigError(f"bad --space {short(spec)!r}: the step is too small") from None


def _number(spec: str, text: str, *, integer: bool) -> float:
    """An int or a finite float: NaN and infinity are no bounds Optuna can sample between."""
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        what = "an integer" if integer else "a number"
        raise ConfigError(f"bad --space {short(spec)!r}: {short(text)!r} is not {what}") from None
    if not math.isfinite(value):
        raise ConfigError(f"bad --space {short(spec)!r}: {short(text)!r} is not a finite number")
    return value


def describe(space: Mapping[str, BaseDistribution]) -> str:
    """One line for the console, e.g. `fast int 5..50, slow int 20..200`."""
    parts = []
    for name, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            parts.append(f"{name} one of {', '.join(map(str, dist.choices))}")
        elif isinstance(dist, IntDistribution | FloatDistribution):
            kind = "int" if isinstance(dist, IntDistribution) else "log" if dist.log else "float"
            parts.append(f"{name} {kind} {dist.low}..{dist.high}")
    return ", ".join(parts)


def plain(params: Mapping[str, Any]) -> dict[str, bool | int | float | str]:
    """Optuna's sampled values as the scalar types strategy params take."""
    out: dict[str, bool | int | float | str] = {}
    for key, value in params.items():
        out[key] = value if isinstance(value, bool | int | float | str) else str(value)
    return out


def check_space(
    space: Mapping[str, BaseDistribution], strategy: str, fixed: Collection[str]
) -> None:
    """Refuse a searched name the strategy does not have (each trial would fail on it,
    one by one) or one `--param` also fixes (the trial's value would silently win)."""
    from perps_bot.strategies.base import strategy_label
    from perps_bot.strategies.loader import load_strategy

    cls = load_strategy(strategy)
    fields = cls.Params.model_fields
    for name in space:
        if name not in fields:
            known = ", ".join(sorted(fields)) or "none"
            raise ConfigError(f"bad --space {short(name)}=...: strategy {strategy_label(cls)!r}"
                              f" has no param {short(name)!r} (known: {known})")  # fmt: skip
        if name in fixed:
            raise ConfigError(f"{short(name)} is in --space and in --param: search it or fix it")
