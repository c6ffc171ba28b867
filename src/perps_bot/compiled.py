"""The compiled hot path: which modules mypyc compiles, and whether this run uses them.

Why it exists: a backtest spends its time in plain Python calls (the ledger, the matching
engine, the orchestrator's per-event stages); mypyc compiles those typed modules to C
extensions without changing a line of their logic. `make install` builds them with
`scripts/compile_hot_path.py` where a C compiler and the Python headers exist; where
they do not, nothing is built and perps-bot runs the same modules as pure Python.

The safety rule: a compiled module must never stand in for a source that changed after
it was built. The extensions are kept outside the source tree (`.tools/compiled/` of the
checkout, beside `src/`), with a manifest of the SHA-256 of every source of the package
they were built with: all of them, not only the compiled ones, since mypyc copies the
values of `Final` constants of the modules they import into the compiled code.
`activate()` reads the manifest and turns the compiled set on only when every source
still hashes the same, for this interpreter, and none of the compiled modules was
imported yet: all or none (one stale module would mix two versions of the code).
Hashing the package costs 15-20 ms; a cache in the build keeps each file's digest
with its size and modification time, so only files whose stat changed are read.
`PERPS_BOT_PURE=1` forces pure Python. `describe()` says which one this process runs
(`perps-bot --version`).

Who runs compiled: the simulations only, `perps-bot backtest`, `optimize` and
`walkforward`, which activate it before they import the engine (and the test suite,
tests/conftest.py). Live and dry runs, the dev profile's run and the session server run
plain Python: live trading gains nothing from the speed. The live sessions' tests that
failed compiled (stops 38-39) failed on two mypyc behaviours, both fixed in stop 40 and
kept out by tests/architecture/test_compiled_awaits.py: an await inside a `finally`
leaked the run's exception to every task, and an async generator compiled as a plain
one. Compiled, every live session test now passes but one that patches the engine's
instance (which a compiled class refuses); running live on compiled code is a choice
for when those tests also run compiled in CI.

This module imports nothing from perps_bot: it runs before the engine is imported.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

__all__ = [
    "COMPILED_MODULES",
    "MANIFEST_NAME",
    "PURE_ENV",
    "activate",
    "availability",
    "build_dir",
    "build_mismatch",
    "compiled_source",
    "describe",
    "interpreter_tag",
    "is_compiled",
    "mismatch",
    "source_digests",
    "source_path",
]

#: Set to 1 (or any non-empty value but 0) to run pure Python even where a build exists.
PURE_ENV = "PERPS_BOT_PURE"
MANIFEST_NAME = "manifest.json"
_PACKAGE_DIR = Path(__file__).resolve().parent

#: The modules mypyc compiles, all in one extension (calls between them are C calls).
#: Every one passes `mypy --strict`; a module stays out while it uses what mypyc cannot
#: compile (pydantic models, async generators, runtime-checkable protocols, classes
#: with several bases) or while tests or users subclass its classes without
#: `mypyc_attr(allow_interpreted_subclasses=True)`.
COMPILED_MODULES: tuple[str, ...] = (
    "perps_bot.domain.instrument",
    "perps_bot.domain.lifecycle",
    "perps_bot.domain.market",
    "perps_bot.domain.numbers",
    "perps_bot.domain.orders",
    "perps_bot.domain.timeutil",
    "perps_bot.feeds.columns",
    "perps_bot.feeds.quote_columns",
    "perps_bot.ledger.account",
    "perps_bot.ledger.errors",
    "perps_bot.ledger.fills",
    "perps_bot.ledger.invariant",
    "perps_bot.ledger.ledger",
    "perps_bot.ledger.liquidation",
    "perps_bot.ledger.position",
    "perps_bot.ledger.restore",
    "perps_bot.ledger.results",
    "perps_bot.ledger.state",
    "perps_bot.metrics.formatting",
    "perps_bot.metrics.trade_funding",
    "perps_bot.metrics.trade_lines",
    "perps_bot.metrics.trade_records",
    "perps_bot.metrics.trades",
    "perps_bot.monitoring.hot_log",
    "perps_bot.monitoring.journal",
    "perps_bot.monitoring.journal_lines",
    "perps_bot.monitoring.text_channel",
    "perps_bot.orchestrator.candle_minutes",
    "perps_bot.orchestrator.candle_walks",
    "perps_bot.orchestrator.clock",
    "perps_bot.orchestrator.controls",
    "perps_bot.orchestrator.engine",
    "perps_bot.orchestrator.equity_rows",
    "perps_bot.orchestrator.excursions",
    "perps_bot.orchestrator.instrument_orders",
    "perps_bot.orchestrator.long_candles",
    "perps_bot.orchestrator.loop_checkpoint",
    "perps_bot.orchestrator.order_flow",
    "perps_bot.orchestrator.order_parts",
    "perps_bot.orchestrator.plot_sampler",
    "perps_bot.orchestrator.portfolio",
    "perps_bot.orchestrator.protection",
    "perps_bot.orchestrator.protective_orders",
    "perps_bot.orchestrator.quiet",
    "perps_bot.orchestrator.quiet_quotes",
    "perps_bot.orchestrator.quiet_rows",
    "perps_bot.orchestrator.recorder",
    "perps_bot.orchestrator.routing",
    "perps_bot.orchestrator.start_orders",
    "perps_bot.orchestrator.stopping",
    "perps_bot.orchestrator.venue_calls",
    "perps_bot.orchestrator.warmup",
    "perps_bot.risk.account_gate",
    "perps_bot.risk.equity_limits",
    "perps_bot.risk.gate",
    "perps_bot.risk.rate_window",
    "perps_bot.risk.sizing",
    "perps_bot.risk.state",
    "perps_bot.storage.equity_blocks",
    "perps_bot.storage.equity_marked",
    "perps_bot.storage.orders",
    "perps_bot.storage.store",
    "perps_bot.storage.store_file",
    "perps_bot.storage.store_writer",
    "perps_bot.strategies.indicators",
    "perps_bot.venues.book",
    "perps_bot.venues.engine_orders",
    "perps_bot.venues.fill_models",
    "perps_bot.venues.fill_rules",
    "perps_bot.venues.match_rules",
    "perps_bot.venues.matching",
    "perps_bot.venues.order_queue",
    "perps_bot.venues.queue_math",
)

#: the sources the build compiled, kept beside it (what `compiled_source` reads)
SOURCES_DIR = "sources"

_state = "pure Python (this command runs no simulation)"
_active: Path | None = None  # the build this process runs, once activated


def build_dir() -> Path:
    """Where `scripts/compile_hot_path.py` puts the extensions: `.tools/compiled` of the
    checkout this package runs from (absent for an installed wheel: pure Python)."""
    return _PACKAGE_DIR.parent.parent / ".tools" / "compiled"


def source_path(module: str, package_dir: Path = _PACKAGE_DIR) -> Path:
    """The .py file of `module` (a perps_bot module) under `package_dir`."""
    parts = module.split(".")[1:]
    return package_dir.joinpath(*parts).with_suffix(".py")


def source_digests(package_dir: Path = _PACKAGE_DIR, cache: Path | None = None) -> dict[str, str]:
    """SHA-256 of every .py file of the package, by its path relative to the package.

    With `cache` (a build's `DIGEST_CACHE`), a file whose size and modification time
    (ns) are those recorded with its digest keeps that digest unread, as git's index
    does: hashing the whole package was 15-20 ms of every command's start. A file
    modified within `RACY_NS` before the cache was written is hashed anyway (an edit
    in the same clock tick as the recording keeps its time); the cache is rewritten
    when a file was hashed."""
    known, written_ns = _read_digest_cache(cache)
    digests: dict[str, str] = {}
    entries: dict[str, list[object]] = {}
    hashed = False
    for folder, subfolders, names in os.walk(package_dir):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        for name in sorted(names):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, package_dir)
                stat = os.stat(path)
                seen = known.get(rel)
                if (
                    seen is not None
                    and seen[:2] == [stat.st_size, stat.st_mtime_ns]
                    and stat.st_mtime_ns < written_ns - RACY_NS
                    and isinstance(seen[2], str)
                ):
                    digest = seen[2]
                else:
                    with open(path, "rb") as file:
                        digest = hashlib.sha256(file.read()).hexdigest()
                    hashed = True
                digests[rel] = digest
                entries[rel] = [stat.st_size, stat.st_mtime_ns, digest]
    if cache is not None and (hashed or len(entries) != len(known)):
        _write_digest_cache(cache, entries)
    return digests


#: a build's cache of its package's source digests (`source_digests`)
DIGEST_CACHE = "source-digests.json"
#: files modified this close before the cache was written are hashed again
RACY_NS = 2_000_000_000


def _read_digest_cache(cache: Path | None) -> tuple[dict[str, list[object]], int]:
    """The cached entries (relative path -> [size, mtime_ns, digest]) and when the
    cache was written (ns); nothing when there is none or it is unreadable."""
    if cache is None:
        return {}, 0
    try:
        written_ns = os.stat(cache).st_mtime_ns
        data = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}, 0
    if not isinstance(data, dict):
        return {}, 0
    entries = {k: v for k, v in data.items() if isinstance(v, list) and len(v) == 3}
    return entries, written_ns


def _write_digest_cache(cache: Path, entries: dict[str, list[object]]) -> None:
    """Replace the cache in one rename; a build directory that cannot be written keeps
    hashing (nothing else depends on the cache)."""
    temp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
    try:
        temp.write_text(json.dumps(entries, sort_keys=True), encoding="utf-8")
        os.replace(temp, cache)
    except OSError:
        temp.unlink(missing_ok=True)


def interpreter_tag() -> str:
    """Extensions load only into the interpreter (version and ABI) that built them."""
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    return f"{sys.implementation.cache_tag}{suffix}"


class _CompiledFinder:
    """Finds the compiled modules (and their shared library) before the path finder
    would find their .py sources."""

    def __init__(self, files: dict[str, Path]) -> None:
        self._files = files

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        file = self._files.get(fullname)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(file))
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)


def _why_not(manifest: dict[str, object], root: Path) -> str | None:
    """None when the build in `root` matches the sources exactly, else the reason."""
    if manifest.get("interpreter") != interpreter_tag():
        return "built for another Python"
    modules, sources, files = (manifest.get(k) for k in ("modules", "sources", "files"))
    if not (isinstance(modules, list) and isinstance(sources, dict) and isinstance(files, dict)):
        return "unreadable manifest"
    if sorted(modules) != sorted(COMPILED_MODULES):
        return "built from another module list"
    now = source_digests(cache=root / DIGEST_CACHE)
    if now != sources:
        changed = sorted(set(now.items()) ^ set(sources.items()))
        return f"{changed[0][0]} changed since the build; make install rebuilds it"
    if not all((root / str(rel)).is_file() for rel in files.values()):
        return "an extension of the build is missing"
    return None


def _read_manifest(root: Path) -> dict[str, object] | None:
    try:
        data = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def build_mismatch(root: Path | None = None) -> str | None:
    """Why the build in `root` (default `build_dir()`) does not match these sources and
    this interpreter (`_why_not`), None when it does (the build script: up to date)."""
    root = build_dir() if root is None else root
    manifest = _read_manifest(root)
    return "no compiled build" if manifest is None else _why_not(manifest, root)


def mismatch(root: Path | None = None) -> str | None:
    """Why this process would not run the build: `PERPS_BOT_PURE`, or `build_mismatch`."""
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return f"{PURE_ENV} is set"
    return build_mismatch(root)


def activate(root: Path | None = None) -> bool:
    """Turn the compiled set on when it matches the sources; say why not otherwise."""
    global _state, _active
    root = build_dir() if root is None else root
    if _active == root:  # on already (the command's start reads its data ahead: cli.app)
        return True
    reason = mismatch(root)
    loaded = [m for m in COMPILED_MODULES if m in sys.modules]
    if reason is None and loaded:  # all or none: those already run as Python
        reason = f"{loaded[0]} was imported before"
    if reason is not None:
        _state = f"pure Python ({reason})"
        return False
    manifest = _read_manifest(root)
    assert manifest is not None and isinstance(manifest["files"], dict)  # checked above
    found = {str(name): root / str(rel) for name, rel in manifest["files"].items()}
    sys.meta_path.insert(0, _CompiledFinder(found))
    _active = root
    _state = f"compiled hot path ({len(COMPILED_MODULES)} modules)"
    return True


def describe() -> str:
    return _state


def availability(root: Path | None = None) -> str:
    """What `perps-bot --version` says: whether a simulation here would run compiled."""
    reason = mismatch(root)
    if reason is not None:
        return f"pure Python ({reason})"
    count = len(COMPILED_MODULES)
    return f"compiled hot path for backtest, optimize, walkforward ({count} modules)"


def is_compiled(module: str) -> bool:
    """Whether this process runs `module` compiled."""
    return _active is not None and module in COMPILED_MODULES


def compiled_source(module: str) -> str | None:
    """The source text this process runs for `module` when it runs compiled (the copy
    the build compiled, the same bytes as the .py then), else None. A strategy's
    fingerprint hashes its modules' sources: compiled or not, the same fingerprint."""
    if not is_compiled(module) or _active is None:
        return None
    rel = source_path(module).relative_to(_PACKAGE_DIR.parent)
    return (_active / SOURCES_DIR / rel).read_text(encoding="utf-8")
