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
    value = _installed_version()
    if value is None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("perps-bot")
        except PackageNotFoundError:  # running from a source tree without install
            value = "0.0.0+source"
    globals()["__version__"] = value
    return value


def _installed_version() -> str | None:
    """The `Version:` of the one `perps_bot-*.dist-info` the first path entry naming this
    project holds, read directly: importing importlib.metadata (its email parser, zip
    and csv readers) took a backtest about 20 ms, this under one. None wherever the
    layout is not that plain one (a zip on the path, an egg, two candidates, another
    spelling): importlib.metadata then decides, as it always did."""
    import os
    import sys

    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as found:
                names = [e.name for e in found if _names_this_project(e.name)]
        except NotADirectoryError:
            return None  # a zip: importlib.metadata reads inside it
        except OSError:
            continue
        if not names:
            continue
        if len(names) > 1 or not (
            names[0].startswith("perps_bot-") and names[0].endswith(".dist-info")
        ):
            return None
        try:
            with open(os.path.join(entry or ".", names[0], "METADATA"), encoding="utf-8") as meta:
                for line in meta:
                    if line.startswith("Version:"):
                        return line[len("Version:") :].strip()
                    if not line.strip():
                        return None  # the headers ended without one
        except OSError:
            return None
        return None
    return None


def _names_this_project(name: str) -> bool:
    """A metadata folder of this project, in any spelling a finder would match."""
    folded = name.lower().replace("-", "_").replace(".", "_")
    return folded.startswith("perps_bot_") and folded.endswith(("_dist_info", "_egg_info"))
