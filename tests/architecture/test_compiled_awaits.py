"""No compiled module awaits inside an `except` or `finally` block (an `async with`
does: its `__aexit__` is awaited in the handler of its body), or defines an async
generator.

Why: mypyc compiles a coroutine's exception handling through the thread's
`sys.exc_info()`: entering the block stores the exception there, and the end of a
`finally` (or a bare `raise`) raises again whatever is there. A plain Python coroutine
has its own exception state, a compiled one has not. So an await inside the block
suspends the coroutine with its exception left in the thread's state: the other tasks
run with it as their "current exception" and keep it, and the coroutine resumes with
theirs. This is how a live run killed by a BaseException came back, as the same
exception object, in the next run of the restarted server (stop 40): the close of the
orchestrator's run was awaited in its `finally`.

The rule is checked on the source, for every module of `COMPILED_MODULES`: a block
that must clean up asynchronously keeps the exception in a variable, leaves the
handler, awaits, then raises the variable (`Orchestrator.run`).

mypyc compiles an async generator (`async def` with `yield`) into an object `async for`
refuses ("requires an object with __aiter__"): the engine's empty feed of a run stopped
as it started failed that way (tests/orchestrator/test_run_ends.py). Async generators
live in modules that are not compiled (`feeds.base.no_batches`).
"""

import ast
from pathlib import Path

from perps_bot import compiled

_ASYNC = (ast.Await, ast.AsyncFor, ast.AsyncWith)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _awaits(block: list[ast.stmt]) -> list[ast.AST]:
    """The awaits of `block` itself (not those of functions defined inside it)."""
    return [node for node in _own_nodes(block) if isinstance(node, _ASYNC)]


def awaits_in_handlers(source: str) -> list[int]:
    """Lines of the awaits inside an `except` or `finally` block of `source`, and of
    every `async with` (its `__aexit__` is awaited in the handler of its body)."""
    lines: list[int] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.AsyncWith):
            lines.append(node.lineno)
        if isinstance(node, ast.Try | ast.TryStar):
            blocks = [h.body for h in node.handlers] + [node.finalbody]
            lines.extend(a.lineno for b in blocks for a in _awaits(b))  # type: ignore[attr-defined]
    return sorted(set(lines))


def async_generators(source: str) -> list[int]:
    """Lines of the async generators (an `async def` that yields) of `source`."""
    return sorted(
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.AsyncFunctionDef)
        and any(isinstance(a, ast.Yield | ast.YieldFrom) for a in _own_nodes(node.body))
    )


def _own_nodes(block: list[ast.stmt]) -> list[ast.AST]:
    """Every node of `block` outside the functions and classes defined inside it."""
    found: list[ast.AST] = []
    todo: list[ast.AST] = list(block)
    while todo:
        node = todo.pop()
        found.append(node)
        if not isinstance(node, _SCOPES):
            todo.extend(ast.iter_child_nodes(node))
    return found


def _compiled_sources() -> list[tuple[str, str]]:
    return [
        (str(Path(*m.split(".")).with_suffix(".py")), compiled.source_path(m).read_text("utf-8"))
        for m in compiled.COMPILED_MODULES
    ]


def test_no_compiled_module_awaits_while_it_handles_an_exception() -> None:
    found = [f"{rel}:{n}" for rel, text in _compiled_sources() for n in awaits_in_handlers(text)]
    assert found == [], "await inside except/finally of a compiled module: " + ", ".join(found)


def test_no_compiled_module_defines_an_async_generator() -> None:
    found = [f"{rel}:{n}" for rel, text in _compiled_sources() for n in async_generators(text)]
    assert found == [], "async generator in a compiled module: " + ", ".join(found)


def test_the_check_finds_async_generators_and_not_coroutines() -> None:
    source = """
async def coroutine():
    await x()
    def inner():
        yield 1
async def generator():
    return
    yield
"""
    assert async_generators(source) == [6]


def test_the_check_finds_awaits_in_handlers_and_async_withs_not_nested_functions() -> None:
    source = """
async def f():
    try:
        await a()
    except ValueError:
        await b()
    except Exception:
        def inner():
            async def g():
                await c()
        async for x in d():
            pass
    finally:
        async with e():
            pass
    try:
        pass
    finally:
        lambda: None
async def h():
    async with m():
        await n()
"""
    assert awaits_in_handlers(source) == [6, 11, 14, 21]
