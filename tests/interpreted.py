"""Interpreted twins of compiled modules, for unit tests that subclass their classes.

Compiled (perps_bot.compiled), a class cannot be subclassed by plain Python, and an
engine part declared as a trait (`WarmUp`, `LoopCheckpoint`, `StartOrders`) not at all.
A unit test that builds a small host for one of them takes the module's twin: the same
source file, run as plain Python under another name (its imports are the process's own
modules). Where the module is not compiled, the twin is the module itself. The compiled
code itself is tested by every test that runs the engine."""

import importlib
import importlib.util
import sys
from types import ModuleType

from perps_bot import compiled


def interpreted(module: str) -> ModuleType:
    loaded = importlib.import_module(module)
    if not compiled.is_compiled(module):
        return loaded
    name = f"{module}__interpreted"
    twin = sys.modules.get(name)
    if twin is None:
        spec = importlib.util.spec_from_file_location(name, compiled.source_path(module))
        assert spec is not None and spec.loader is not None
        twin = importlib.util.module_from_spec(spec)
        sys.modules[name] = twin
        spec.loader.exec_module(twin)
    return twin
