"""Reading a profile file, with bounds: a profile is a small hand-written mapping.

Why bounds: PyYAML reads anything, and some of it hurts the reader. Binary or
non-UTF-8 bytes raise a UnicodeDecodeError; a value nested thousands of levels deep
overflows Python's stack in the composer; aliases (`*a`) share one node, so nine
lines of anchors can stand for a billion values, which validation and error
messages then walk (a 312 MB "one-line" error after 15 s). Each of these is bad
input and gets one ConfigError line instead:

- at most MAX_PROFILE_BYTES bytes, UTF-8 text;
- at most MAX_DEPTH levels of nesting, counted with aliases expanded;
- at most MAX_VALUES values once every alias is expanded (anchors and aliases stay
  usable for sharing a few values); an alias inside its own anchor is refused;
- a mapping at the top whose keys are section names (strings).
"""

import copy
import functools
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from perps_bot.domain import PerpsBotError, short, short_path

MAX_PROFILE_BYTES = 1_000_000
MAX_DEPTH = 50
MAX_VALUES = 100_000
_BOOL, _STR = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:str"


class ProfileError(PerpsBotError):
    """A profile file that cannot be read; the message names the file."""


class _LimitError(yaml.YAMLError):
    """A profile beyond one of the bounds above (a message without a line number)."""


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that stops composing past MAX_DEPTH and, once the document is
    composed, counts its values with aliases expanded before anything is constructed."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                line = event.start_mark.line + 1
                raise _LimitError(f"line {line}: nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        """A key given twice in one mapping is refused: PyYAML keeps the last silently,
        so a hand-written profile's first `risk:` section would be dropped unseen.
        (Keys brought in by a `<<` merge may be overridden; that is what merging is.)

        A plain key that YAML 1.1 reads as a boolean (`on`, `off`, `yes`, `no`, `true`)
        stays the text it is: every key of a profile is a name (`alerts: {on: [...]}`
        would otherwise be the key True)."""
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            if isinstance(key_node, ScalarNode) and key_node.tag == _BOOL and not key_node.style:
                key_node.tag = _STR
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # PyYAML's own error names it
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {short(repr(key))}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def get_single_node(self) -> Node | None:
        node = super().get_single_node()
        if node is not None:
            _Expansion().measure(node, 1)
        return node


class _Expansion:
    """Size and depth of a node graph as if every alias were copied out, each node
    measured once (memoised), so a bomb is measured in time linear in its text."""

    def __init__(self) -> None:
        self._done: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth)
        self._open: set[int] = set()

    def measure(self, node: Node, depth: int) -> tuple[int, int]:
        key = id(node)
        known = self._done.get(key)
        if known is None:
            if key in self._open:
                raise _LimitError("an alias refers to its own anchor (a cycle)")
            self._open.add(key)
            known = self._children(node, depth)
            self._open.discard(key)
            self._done[key] = known
        values, height = known
        if depth + height - 1 > MAX_DEPTH:
            raise _LimitError(f"nested more than {MAX_DEPTH} levels deep (aliases expanded)")
        return values, height

    def _children(self, node: Node, depth: int) -> tuple[int, int]:
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [item for pair in node.value for item in pair]
        values, height = 1, 1
        for child in children:
            child_values, child_height = self.measure(child, depth + 1)
            values += child_values
            height = max(height, child_height + 1)
            if values > MAX_VALUES:
                raise _LimitError(f"more than {MAX_VALUES} values once aliases are expanded")
        return values, height


def load_profile_file(path: Path) -> dict[str, Any]:
    """The profile at `path` as a mapping of sections; ProfileError (one line) otherwise.
    The caller's to change: a copy of the parse (`_parsed` keeps the last one)."""
    return copy.deepcopy(_parsed(_read_text(path), short_path(path)))


@functools.lru_cache(maxsize=1)
def _parsed(text: str, name: str) -> dict[str, Any]:
    """`text` parsed (bounded: `_BoundedLoader`), checked to be a mapping of sections.
    The last parse is kept: a command loads its profile twice (checked first, then with
    its options), and the YAML parser is pure Python (a few ms a parse); keyed by the
    text itself, so an edited file is parsed again. Never handed out: copied."""
    try:
        data = yaml.load(text, Loader=_BoundedLoader) or {}  # a SafeLoader
    except _LimitError as exc:
        raise ProfileError(f"profile {name}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"profile {name}{_where(exc)}: invalid YAML{_problem(exc)}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"profile {name}: top level must be a mapping of sections")
    for key in data:
        if not isinstance(key, str):
            raise ProfileError(
                f"profile {name}: top-level key {short(repr(key))} is not a section name"
            )
    return data


def _read_text(path: Path) -> str:
    name = short_path(path)
    try:
        with path.open("rb") as handle:
            blob = handle.read(MAX_PROFILE_BYTES + 1)
    except OSError as exc:
        raise ProfileError(f"profile {name}: cannot read ({exc.strerror or exc})") from None
    if len(blob) > MAX_PROFILE_BYTES:
        raise ProfileError(f"profile {name}: larger than {MAX_PROFILE_BYTES // 1000} kB")
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(
            f"profile {name}: not UTF-8 text (byte 0x{blob[exc.start]:02x} at offset {exc.start})"
        ) from None


def _where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f" line {mark.line + 1}" if mark is not None else ""


def _problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.reader.ReaderError):
        return f" (unacceptable character #x{exc.character:04x} at offset {exc.position})"
    problem = getattr(exc, "problem", None)
    return f" ({short(' '.join(str(problem).split()))})" if problem else ""
