"""Package attributes whose module loads on first use (PEP 562).

A package re-exports names for its users, but importing every module behind them
costs a backtest's start-up the models and tables of features the run never uses.
Such a package lists (name -> module) and sets `__getattr__ = lazy_exports(...)`;
the names are imported under TYPE_CHECKING for type checkers.
"""

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, table: Mapping[str, str], namespace: dict[str, Any]
) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: a name of `table` is imported from its
    module on first use and kept in `namespace` (the package's globals), so the next
    use is an ordinary attribute."""

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
