"""`record`: an immutable value class that is as cheap to build as a plain one.

On CPython 3.11 a `@dataclass(frozen=True, slots=True)` sets every field in `__init__`
through `object.__setattr__` (the class's own `__setattr__` refuses): about four times
the cost of a plain slotted dataclass, paid for every fill result, prepared order and
round trip a backtest makes. A `record` is a plain slotted dataclass at run time, and
frozen to the type checker (PEP 681's `frozen_default`): `mypy --strict`, which every
change passes, rejects an assignment to a field, so the guarantee moves from run time
to the check. It hashes by its fields as a frozen dataclass does (`unsafe_hash`: the
fields never change).

Compiled (mypyc, perps_bot.compiled), a plain `@dataclass` is a native class, but the
`__init__` `dataclasses` generates at import runs interpreted and stores each field
through its descriptor: 13 times the cost of the same `__init__` written in the class
body, which mypyc compiles (measured on a class of twelve fields). And a `record` is no
native class at all (mypyc keeps a class with a decorator of its own as a Python class):
its fields are read through descriptors too. So the classes built once or more per fill
of a backtest write their `__init__` out, the one `dataclasses` would generate, which
tests/architecture/test_dataclass_inits.py checks against their fields:

- the mutable ones (`Candle`, `Order`, `Fill`, `RiskDecision`, `MatchPoint`,
  `WorkingOrder`, `OpenTrade`) as they are;
- the values that were `record`s (`OrderIntent`, `TargetPosition`, `OrderUpdate`,
  `FillResult`, `PreparedOrder`, `Trade`) as `@dataclass(slots=True, unsafe_hash=True)`
  with `Final` fields: mypy lets `__init__` assign them once and rejects any other
  assignment (the guarantee a `record` gives), and their defaults are in `__init__`
  alone (a `Final` with a value would be a class constant).

Compiled, such a class's `__new__` runs its `__init__`, so each copies and pickles
through it (`__reduce__`, perps_bot.domain.pickled). Records built less often stay
records: the form costs a field list twice.
"""

from dataclasses import dataclass
from typing import TypeVar, dataclass_transform

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def record(cls: type[_T]) -> type[_T]:
    return dataclass(slots=True, unsafe_hash=True)(cls)
