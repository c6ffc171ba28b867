"""perps-bot: a profile-driven trading bot for perpetual futures.

One orchestrator runs every market event through the same stages (signal, risk
gate, execution, ledger and metrics) whatever the profile; only the market-data
feed and the execution venue are swapped between dev, canary and prod.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("perps-bot")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
