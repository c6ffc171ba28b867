"""Data flows one way (feed -> strategy -> risk -> execution -> ledger -> metrics) and a
module imports only from layers below it. This test reads every import in the package
and fails on any that reaches up or sideways into a later layer.

The exchange emulator (perps_emulator, under emulator/) is test tooling outside the
product: only `perps-bot emulator` may import it, lazily, so the product runs where it
is not installed."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "perps_bot"
EMULATOR = "perps_emulator"
EMULATOR_COMMAND = Path("cli") / "emulator.py"

# Lowest first. A package may import from packages listed before it, never after.
LAYERS = [
    "domain",
    "margin",
    "config",
    "exchange",
    "instruments",
    "storage",
    "feeds",
    "strategies",
    "risk",
    "venues",
    "ledger",
    "metrics",
    "monitoring",
    "orchestrator",
    "research",
    "server",
    "cli",
]


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "perps_bot" or len(parts) < 2:
        return None
    return parts[1]


def test_every_package_folder_has_a_layer() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert folders <= set(LAYERS), f"unlisted package folders: {folders - set(LAYERS)}"


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_only_reach_lower_layers(layer: str) -> None:
    rank = {name: i for i, name in enumerate(LAYERS)}
    folder = PACKAGE / layer
    if not folder.exists():
        pytest.skip(f"{layer} not present")
    violations = []
    for path in sorted(folder.rglob("*.py")):
        for module in _imports(path):
            target = _layer_of(module)
            if target is None or target == layer or target not in rank:
                continue
            if rank[target] > rank[layer]:
                violations.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not violations, "imports reaching a higher layer:\n" + "\n".join(violations)


def test_layering_check_catches_an_upward_import(tmp_path: Path) -> None:
    """The checker itself must be able to fail."""
    bad = tmp_path / "bad.py"
    bad.write_text("from perps_bot.orchestrator.engine import Orchestrator\n")
    assert _layer_of(_imports(bad)[0]) == "orchestrator"


def _emulator_imports(tree: ast.AST) -> list[tuple[ast.stmt, list[ast.AST]]]:
    """Every import of perps_emulator in ``tree`` with the chain of nodes enclosing it."""
    found: list[tuple[ast.stmt, list[ast.AST]]] = []

    def visit(node: ast.AST, parents: list[ast.AST]) -> None:
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        if any(name.split(".")[0] == EMULATOR for name in names):
            assert isinstance(node, ast.stmt)
            found.append((node, parents))
        for child in ast.iter_child_nodes(node):
            visit(child, [*parents, node])

    visit(tree, [])
    return found


def _runs_only_when_called(parents: list[ast.AST]) -> bool:
    """Inside a function body, or under `if TYPE_CHECKING:` (never executed)."""
    for node in parents:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return True
        if isinstance(node, ast.If) and ast.unparse(node.test) in (
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        ):
            return True
    return False


def _emulator_import_violations(package: Path) -> list[str]:
    violations = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        for node, parents in _emulator_imports(ast.parse(path.read_text(encoding="utf-8"))):
            where = f"{relative}:{node.lineno}"
            if relative != EMULATOR_COMMAND:
                violations.append(f"{where} imports the emulator (only cli/emulator.py may)")
            elif not _runs_only_when_called(parents):
                violations.append(f"{where} imports the emulator at module level")
    return violations


def test_only_the_emulator_command_imports_the_emulator_and_lazily() -> None:
    assert _emulator_import_violations(PACKAGE) == []
    tree = ast.parse((PACKAGE / EMULATOR_COMMAND).read_text(encoding="utf-8"))
    runtime = [
        node
        for node, parents in _emulator_imports(tree)
        if any(isinstance(p, ast.FunctionDef) for p in parents)
    ]
    assert runtime, "cli/emulator.py should import perps_emulator inside a function"


def test_emulator_import_check_catches_eager_and_foreign_imports(tmp_path: Path) -> None:
    """The checker itself must be able to fail."""
    (tmp_path / "cli").mkdir()
    (tmp_path / "venues").mkdir()
    (tmp_path / "cli" / "emulator.py").write_text(
        "import perps_emulator\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from perps_emulator import EmulatorServer\n"
        "def run() -> None:\n    from perps_emulator.server import EmulatorServer\n"
    )
    (tmp_path / "venues" / "fake.py").write_text(
        "def f() -> None:\n    from perps_emulator import EmulatorServer\n"
    )
    assert _emulator_import_violations(tmp_path) == [
        "cli/emulator.py:1 imports the emulator at module level",
        "venues/fake.py:2 imports the emulator (only cli/emulator.py may)",
    ]
