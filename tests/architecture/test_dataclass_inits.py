"""A dataclass that writes its `__init__` out (perps_bot.domain.record says why: compiled,
the generated one runs interpreted) writes exactly the one `dataclasses` would generate:
its fields as parameters in order, with their annotations and defaults, and a body that
only stores each parameter in its field. A value class of that kind has its fields
`Final` (assigned once, there, which mypy checks) and its defaults in `__init__` alone.
This test reads every class of the package and fails on any other `__init__` of a
dataclass, so a field added to the class but not to its `__init__` (or a default changed
in one place only) cannot pass."""

import ast
import copy
import pickle
from dataclasses import astuple, fields, replace
from pathlib import Path
from typing import Any

import pytest

from perps_bot.domain import Candle, Fill, Order, OrderIntent, OrderUpdate, TargetPosition
from perps_bot.domain.enums import BUY, FILLED, LIMIT, MAKER, SELL
from perps_bot.domain.instrument import PreparedOrder
from perps_bot.ledger.results import FillResult
from perps_bot.metrics.trade_records import OpenTrade, Trade
from perps_bot.risk.gate import RiskDecision
from perps_bot.venues.order_queue import MatchPoint, WorkingOrder

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "perps_bot"
#: the classes built per fill of a backtest, which write their `__init__` out
HOT = {
    "Candle",
    "Order",
    "Fill",
    "RiskDecision",
    "MatchPoint",
    "WorkingOrder",
    "OpenTrade",
    "OrderIntent",
    "TargetPosition",
    "OrderUpdate",
    "FillResult",
    "PreparedOrder",
    "Trade",
}


def _is_dataclass(node: ast.ClassDef) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Name) and target.id in ("dataclass", "record"):
            return True
    return False


def init_problems(source: str) -> dict[str, list[str]]:
    """Per dataclass of `source` that writes its `__init__` out: how that `__init__`
    differs from the generated one (an empty list: it does not)."""
    found: dict[str, list[str]] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef) or not _is_dataclass(node):
            continue
        inits = [s for s in node.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"]
        if inits:
            found[node.name] = _differences(node, inits[0])
    return found


def _differences(cls: ast.ClassDef, init: ast.FunctionDef) -> list[str]:
    fields = [s for s in cls.body if isinstance(s, ast.AnnAssign)]
    args = init.args
    problems: list[str] = []
    if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs:
        problems.append("takes more than the fields")
    params = args.args[1:]  # after self
    names = [p.arg for p in params]
    wanted = [ast.unparse(f.target) for f in fields]
    if names != wanted:
        return [f"parameters {names} are not the fields {wanted}"]
    defaults = [None] * (len(params) - len(args.defaults)) + list(args.defaults)
    for param, default, field in zip(params, defaults, fields, strict=True):
        annotation, final = _unfinal(field.annotation)
        if ast.dump(param.annotation or ast.Constant(None)) != ast.dump(annotation):
            problems.append(f"{param.arg}: annotation differs from the field's")
        if final and field.value is not None:
            problems.append(f"{param.arg}: a Final field's default belongs in __init__")
        elif not final and _dump(default) != _dump(field.value):
            problems.append(f"{param.arg}: default differs from the field's")
    body = [
        s for s in init.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
    ]
    stores = [ast.unparse(s) for s in body]
    if stores != [f"self.{name} = {name}" for name in wanted]:
        problems.append(f"the body is not one store per field, in order: {stores}")
    return problems


def _unfinal(annotation: ast.expr) -> tuple[ast.expr, bool]:
    """`X` of a `Final[X]` annotation, and whether it was one."""
    if isinstance(annotation, ast.Subscript) and ast.unparse(annotation.value) == "Final":
        return annotation.slice, True
    return annotation, False


def _dump(node: ast.expr | None) -> str:
    return ast.dump(node or ast.Constant(None))


def _package_inits() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for name, problems in init_problems(path.read_text()).items():
            found[f"{path.relative_to(PACKAGE)}:{name}"] = problems
    return found


def test_every_written_out_dataclass_init_is_the_generated_one() -> None:
    found = _package_inits()
    assert {key.split(":")[1] for key in found} >= HOT, "a hot class lost its __init__"
    assert {key: problems for key, problems in found.items() if problems} == {}


_GOOD = '''
@dataclass(slots=True)
class A:
    x: int
    y: str = ""
    z: Final[float]

    def __init__(self, x: int, y: str = "", z: float = 0.5) -> None:
        """Written out."""
        self.x = x
        self.y = y
        self.z = z
'''


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("    z: Final[float]\n", "    z: Final[float]\n    w: int = 0\n"), "are not the fields"),
        (('y: str = "", z', 'y: str = "-", z'), "y: default differs"),
        (('y: str = "", z', 'y: bytes = "", z'), "y: annotation differs"),
        (("self.y = y", "self.y = y.strip()"), "not one store per field"),
        (("z: Final[float]\n", "z: Final[int]\n"), "z: annotation differs"),
        (("z: Final[float]\n", "z: Final[float] = 0.5\n"), "z: a Final field's default"),
        (("self.y = y", "self.y = y\n        self.x += 1"), "not one store per field"),
    ],
)
def test_a_written_out_init_that_differs_from_its_fields_is_found(
    change: tuple[str, str], problem: str
) -> None:
    assert init_problems(_GOOD) == {"A": []}
    changed = _GOOD.replace(*change)
    assert changed != _GOOD
    problems = init_problems(changed)["A"]
    assert any(problem in p for p in problems), problems


_ORDER = Order(
    "c1", "BTC-PERP", BUY, 0.5, LIMIT, 100.5, False, 7, "k1", reason="entry", filled=0.25
)
_HOT_VALUES: list[Any] = [
    Candle(60_000, "BTC-PERP", 0, 1.0, 2.0, 0.5, 1.5, 10.0, mark=1.4),
    _ORDER,
    Fill(7, "BTC-PERP", SELL, 0.25, 100.5, 0.01, MAKER, "c1", "k1", is_liquidation=True),
    RiskDecision(True, 0.5, None, "", reduce_only=True),
    MatchPoint(8, 99.0, 101.0, 100.0, continuous=True, since=3, traded=(99.5, 100.5)),
    WorkingOrder(_ORDER, 9, 2, active=True),
    OpenTrade("BTC-PERP", -1, 7, None, entry_qty=0.5, fees=0.01),
    OrderIntent("BTC-PERP", SELL, 0.5, LIMIT, 101.0, reduce_only=True, take_profit=90.0),
    TargetPosition("BTC-PERP", -0.5, "flip", stop_price=110.0),
    OrderUpdate(8, "c1", "BTC-PERP", FILLED, 0.5, 100.5, "", _ORDER),
    FillResult(1.5, 0.01, -0.25, 100.5, 0.5, 0.25),
    PreparedOrder(0.5, None),
    Trade(
        1,
        "BTC-PERP",
        "long",
        7,
        8,
        0.5,
        100.0,
        101.0,
        0.5,
        0.02,
        0.0,
        0.48,
        "signal",
        None,
        -0.1,
        0.6,
        False,
        portfolio="b",
    ),
]


@pytest.mark.parametrize("value", _HOT_VALUES, ids=lambda v: type(v).__name__)
def test_a_hot_class_copies_pickles_and_replaces_field_for_field(value: Any) -> None:
    """Compiled, a class whose `__init__` is written out is rebuilt through it: `__new__`
    alone wants its arguments (perps_bot.domain.pickled), so copies and checkpoints
    take its `__reduce__`."""
    assert {type(v).__name__ for v in _HOT_VALUES} == HOT
    for again in (copy.copy(value), copy.deepcopy(value), pickle.loads(pickle.dumps(value))):
        assert type(again) is type(value)
        assert again is not value
        assert astuple(again) == astuple(value)
    assert astuple(replace(value)) == astuple(value)


#: the value classes: compared and hashed by their fields (`Final` ones, once `record`s)
_VALUE_CLASSES = [v for v in _HOT_VALUES if type(v).__dataclass_params__.unsafe_hash]


@pytest.mark.parametrize("value", _VALUE_CLASSES, ids=lambda v: type(v).__name__)
def test_a_value_class_compares_and_hashes_by_its_fields(value: Any) -> None:
    """The value classes (those with `Final` fields) compare and hash by their fields,
    as a `record` does."""
    assert len(_VALUE_CLASSES) == 6
    again = copy.copy(value)
    assert again == value
    if not isinstance(value, OrderUpdate):  # its order changes: unhashable, as ever
        assert hash(again) == hash(value)
    first = fields(value)[0].name
    assert replace(value, **{first: getattr(value, first) * 2}) != value
