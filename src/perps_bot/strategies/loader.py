"""Finding a strategy class by name, and the fingerprint that promotions are recorded for.

`load_strategy` accepts a built-in short name or a `package.module:Class` import
path. If the module is not importable from `sys.path`, the current directory
is tried too (appended, so it never shadows installed packages): the console
script does not put it on the path, and a user's `strategies/mine.py` next to
the profile should load the way `python -m` would find it.

The fingerprint identifies "this strategy code with these parameters on these bars"
across runs and machines (SPEC 6: promotions are recorded per fingerprint). It hashes
the validated parameters (defaults filled in, so `{}` and the explicit
defaults are the same strategy), the bar size (`strategy.timeframe`, as a duration:
"1h", "60m" and "3600s" are the same bars; a promotion earned on 1h bars is not one
for 1m bars), what else the strategy trades on
(`Strategy.fingerprint_inputs`: the plan strategy's plan file content; and
`Strategy.section_inputs`: the llm_planner's model, cadence and prompt text), the code
version, and the source of the
strategy: the modules defining the class and its Strategy ancestors, plus the
modules of its own package that the defining module references at top level
(for the built-ins: their shared indicators). Editing any of them changes the
fingerprint, so a promotion never carries over to changed code. The source is the
one the module was imported with (read when it is loaded): a long-running process runs
that code even after its file changes, and its fingerprint says so. File paths
are not hashed (only module names and text), so the value is the same on
every machine.
"""

import hashlib
import importlib
import inspect
import json
import os
import sys
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from perps_bot import compiled
from perps_bot.config.llm import LlmConfig
from perps_bot.domain import format_duration, parse_duration, short
from perps_bot.strategies.base import Strategy, StrategyError, validate_params


class _Builtins(Mapping[str, type[Strategy]]):
    """Built-in short name -> class, each module imported when its strategy is first
    looked up: a run of sma_cross does not load the plan and LLM strategies."""

    def __init__(self, paths: dict[str, str]) -> None:
        self._paths = paths
        self._loaded: dict[str, type[Strategy]] = {}

    def __getitem__(self, name: str) -> type[Strategy]:
        cls = self._loaded.get(name)
        if cls is None:
            module_name, _, attr = self._paths[name].partition(":")
            cls = _checked_class(getattr(importlib.import_module(module_name), attr), name)
            assert cls.name == name, f"built-in {name!r} is named {cls.name!r}"
            self._loaded[name] = cls
        return cls

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)


BUILTIN_STRATEGIES: Mapping[str, type[Strategy]] = _Builtins(
    {
        "sma_cross": "perps_bot.strategies.sma_cross:SmaCross",
        "mean_reversion": "perps_bot.strategies.mean_reversion:MeanReversion",
        "funding_carry": "perps_bot.strategies.funding_carry:FundingCarry",
        "walkforward": "perps_bot.strategies.walkforward:WalkForward",
        "plan": "perps_bot.strategies.plan:PlanStrategy",
        "llm_planner": "perps_bot.strategies.llm_planner:LlmPlanner",
    }
)

_BASE_MODULE = Strategy.__module__

#: The built-ins whose params the README lists (SPEC 2); plan, llm_planner and walkforward
#: have sections of their own.
DOCUMENTED = ("sma_cross", "mean_reversion", "funding_carry")


def params_markdown(names: tuple[str, ...] = DOCUMENTED) -> str:
    """The README's list of the built-in strategies and their params (name, type,
    default, description: `Strategy.params_help`), generated so it cannot drift."""
    out = []
    for name in names:
        cls = BUILTIN_STRATEGIES[name]
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        out.append(f"- `{name}`: {summary}")
        for line in cls.params_help().splitlines():
            param, _, rest = line.partition(" ")
            out.append(f"  - `{param}` {rest}")
    return "\n".join(out) + "\n"


def load_strategy(name: str) -> type[Strategy]:
    """The strategy class for a built-in short name or a `package.module:Class` path."""
    key = name.strip()
    builtin = BUILTIN_STRATEGIES.get(key)
    if builtin is not None:
        return builtin
    if ":" not in key:
        known = ", ".join(sorted(BUILTIN_STRATEGIES))
        raise StrategyError(
            f"unknown strategy {short(name)!r} (built in: {known}); "
            "third-party strategies load as package.module:Class"
        )
    module_name, _, attr = key.partition(":")
    if not module_name or not attr:
        raise StrategyError(f"invalid strategy path {short(name)!r}: use package.module:Class")
    module = _import(module_name)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise StrategyError(
                f"strategy module {short(module_name)!r} has no attribute {short(attr)!r}"
            )
        obj = getattr(obj, part)
    cls = _checked_class(obj, key)
    source_hash(cls)  # its source as imported, read now (before the file can change)
    return cls


def _import(module_name: str) -> ModuleType:
    try:
        try:
            return importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            cwd = os.getcwd()
            if not _is_missing(exc, module_name) or cwd in sys.path:
                raise
            sys.path.append(cwd)
            importlib.invalidate_caches()
            return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if _is_missing(exc, module_name):
            raise StrategyError(
                f"cannot import strategy module {short(module_name)!r}: no such module"
            ) from exc
        raise StrategyError(_import_failure(module_name, exc)) from exc
    except Exception as exc:  # a broken user module must not escape as a traceback
        raise StrategyError(_import_failure(module_name, exc)) from exc


def _is_missing(exc: ModuleNotFoundError, module_name: str) -> bool:
    """True when the strategy module itself (or a package above it) does not exist, as
    opposed to a module that exists but imports something missing."""
    missing = exc.name or ""
    return module_name == missing or module_name.startswith(missing + ".")


def _import_failure(module_name: str, exc: BaseException) -> str:
    text = short(" ".join(str(exc).split()), 120)
    return f"error importing strategy module {short(module_name)!r}: {type(exc).__name__}: {text}"


def _checked_class(obj: object, path: str) -> type[Strategy]:
    if not (isinstance(obj, type) and issubclass(obj, Strategy)):
        raise StrategyError(f"{short(path)!r} is not a Strategy subclass")
    if inspect.isabstract(obj):
        missing = ", ".join(sorted(getattr(obj, "__abstractmethods__", ())))
        raise StrategyError(f"strategy {path!r} is abstract (implement: {missing})")
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        raise StrategyError(f"strategy {path!r} must set a class attribute name = '...'")
    params = getattr(obj, "Params", None)
    if not (isinstance(params, type) and issubclass(params, BaseModel)):
        raise StrategyError(
            f"strategy {path!r}: Params must be a pydantic BaseModel subclass, not {params!r}"
        )
    return obj


def strategy_fingerprint(
    cls: type[Strategy],
    params: Mapping[str, Any],
    code_version: str,
    *,
    timeframe: str,
    llm: LlmConfig | None = None,
    inputs: bool = True,
    given: Mapping[str, str] | None = None,
) -> str:
    """Stable 16-hex-digit id of (strategy name, validated params, bar size, code version,
    source, and what else the strategy trades on: `Strategy.fingerprint_inputs`, and
    `Strategy.section_inputs` from the profile's `llm:` section, default without one).
    `inputs=False`: of the latter two only `Strategy.code_inputs`, the strategy's code
    alone (what `--resume` compares: a plan edited while its run is stopped is edited as
    while it runs; the `llm:` section is among the settings a resume must repeat).
    `given`: inputs that replace those (the prompt the session server gave a planner)."""
    validated = validate_params(cls, params)
    payload: dict[str, Any] = {
        "strategy": cls.name,
        "params": validated.model_dump(mode="json"),
        # the bars, however spelled ("1h", "60m", "3600s"): their one shortest spelling
        "timeframe": format_duration(parse_duration(timeframe)),
        "code_version": code_version,
        "source": source_hash(cls),
    }
    if inputs:
        section = cls.section_inputs(validated, llm or LlmConfig())
        payload["inputs"] = cls.fingerprint_inputs(validated) | section | dict(given or {})
    else:  # the code among them (a strategy without inputs: the same fingerprint)
        payload["inputs"] = cls.code_inputs(validated)
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def source_hash(cls: type[Strategy]) -> str:
    """sha256 over the source text of the modules that make up `cls` (see module doc)."""
    digest = hashlib.sha256()
    for module_name in sorted(_source_modules(cls)):
        digest.update(module_name.encode())
        digest.update(b"\0")
        digest.update(_module_source(module_name).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _source_modules(cls: type[Strategy]) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is Strategy:
            break
        names.add(klass.__module__)
    own = cls.__module__
    package = own.rpartition(".")[0]
    module = sys.modules.get(own)
    if package and module is not None:
        prefix = package + "."
        for value in list(vars(module).values()):
            ref = _defining_module(value)
            if ref is not None and ref.startswith(prefix) and ref in sys.modules:
                names.add(ref)
    names.discard(_BASE_MODULE)
    return names


def _defining_module(value: object) -> str | None:
    """The module a top-level name comes from, for modules, classes and functions."""
    if isinstance(value, ModuleType):
        return value.__name__
    if inspect.isclass(value) or inspect.isfunction(value):
        ref = getattr(value, "__module__", None)
        return ref if isinstance(ref, str) else None
    return None


#: module name -> (the module's import spec, its source read when that import was
#: first hashed): a module runs the code it was imported with, whatever its file holds
#: later (importlib.reload makes a new spec, and reads the file again)
_IMPORTED_SOURCE: dict[str, tuple[object, str]] = {}


def _module_source(module_name: str) -> str:
    """The source of the module as imported. Read from its file at every call, a
    long-running server that imported a strategy, whose file was then edited, recorded
    the edited file's fingerprint for sessions running the code it imported first (and
    `promote` promoted code that never ran)."""
    module = sys.modules.get(module_name)
    if module is None:
        return "<not loaded>"
    spec = getattr(module, "__spec__", None)
    captured = _IMPORTED_SOURCE.get(module_name)
    if captured is not None and spec is not None and captured[0] is spec:
        return captured[1]
    source = compiled.compiled_source(module_name)  # a compiled module: what it ran from
    if source is None:
        try:
            source = inspect.getsource(module)
        except (OSError, TypeError):
            # no source on disk (frozen or generated code): the name is all we can hash
            source = f"<no source for {module_name}>"
    if spec is not None:
        _IMPORTED_SOURCE[module_name] = (spec, source)
    return source
