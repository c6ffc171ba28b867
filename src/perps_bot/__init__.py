"""perps-bot: a profile-driven trading bot for perpetual futures.

One orchestrator runs every market event through the same stages (signal, risk
gate, execution, ledger and metrics) whatever the profile; only the market-data
feed and the execution venue are swapped between dev, canary and prod.
"""

from typing import Any

__all__ = ["__version__"]


def __getattr__(name: str) -> Any:
    """`__version__` on first use (PEP 562): importlib.metadata costs a process that
    never reads it (a backtest's writer processes) about 40 ms."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("perps-bot")
    except PackageNotFoundError:  # running from a source tree without install
        value = "0.0.0+source"
    globals()["__version__"] = value
    return value
