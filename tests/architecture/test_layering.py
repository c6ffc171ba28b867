"""Data flows one way (feed -> strategy -> risk -> execution -> ledger -> metrics) and a
module imports only from layers below it. This test reads every import in the package
and fails on any that reaches up or sideways into a later layer."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "perps_bot"

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
    "emulator",
    "orchestrator",
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
