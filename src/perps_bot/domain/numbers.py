"""Numbers read from an exchange's answers or its market list, where a field may be
missing, a string, a bool or not finite."""

import math
from typing import Any


def finite_number(value: Any) -> float | None:
    """The field as a float; None for missing, unreadable or non-finite values (NaN
    compares false with everything: it would pass every check) and for bools."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
