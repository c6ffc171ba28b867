"""`domain.record`: frozen to the type checker, a plain slotted dataclass at run time."""

from pathlib import Path

from mypy import api

from perps_bot.domain import OrderIntent, Side
from perps_bot.domain.record import record

SNIPPET = """
from perps_bot.domain.record import record

@record
class Point:
    x: float
    y: float = 0.0

p = Point(1.0)
p.x = 2.0
"""


def test_mypy_rejects_an_assignment_to_a_record_field(tmp_path: Path) -> None:
    source = tmp_path / "snippet.py"
    source.write_text(SNIPPET)
    out, _err, status = api.run([
        "--strict", "--follow-imports=silent", "--no-incremental", "--cache-dir", "/dev/null",
        str(source),
    ])  # fmt: skip
    assert status == 1, out
    assert 'Property "x" defined in "Point" is read-only' in out, out
    source.write_text(SNIPPET.replace("p.x = 2.0", "q = Point(2.0, y=p.x)"))
    out, _err, status = api.run([
        "--strict", "--follow-imports=silent", "--no-incremental", "--cache-dir", "/dev/null",
        str(source),
    ])  # fmt: skip
    assert status == 0, out


def test_a_record_is_slotted_and_hashes_and_compares_by_its_fields() -> None:
    @record
    class Point:
        x: float
        y: float = 0.0

    assert Point(1.0) == Point(1.0, 0.0) and hash(Point(1.0)) == hash(Point(1.0, 0.0))
    assert not hasattr(Point(1.0), "__dict__")
    intent = OrderIntent(symbol="BTC-PERP", side=Side.BUY, size=1.0)
    assert intent == OrderIntent(symbol="BTC-PERP", side=Side.BUY, size=1.0)
