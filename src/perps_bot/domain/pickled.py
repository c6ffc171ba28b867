"""Pickling spelled out, for classes on the compiled hot path (perps_bot.compiled).

Why: a checkpoint pickles the engine's live state (the ledger's positions, the risk
gate's state, protective levels, a strategy's indicators). Compiled with mypyc, a class
has no default unpickling: pickle makes a blank object with `cls.__new__(cls)`, and a
compiled class's `__new__` runs `__init__`, which wants its arguments. So such a class
says how it is rebuilt (`__reduce__`): through `__init__` with its arguments, then the
rest of its slots. The bytes are the same compiled or not, and either reads the other's.
"""

from collections.abc import Sequence
from dataclasses import fields
from typing import Any


def slot_state(obj: object, slots: Sequence[str]) -> tuple[None, dict[str, object]]:
    """The state pickle keeps of a slotted object: (None, its set slots)."""
    return (None, {name: getattr(obj, name) for name in slots if hasattr(obj, name)})


def set_slots(obj: object, state: tuple[None, dict[str, object]]) -> None:
    """`__setstate__` of `slot_state`'s state (compiled, the class's generated one
    expects another form)."""
    for name, value in state[1].items():
        setattr(obj, name, value)


def by_fields(obj: Any) -> tuple[object, ...]:
    """`__reduce__` of a dataclass: its class called with its fields' values."""
    return (type(obj), tuple(getattr(obj, f.name) for f in fields(obj)))
