"""events.jsonl: a journal nobody listens to writes each line from its parts (the common
fields' bytes, then the event's dict serialised alone); the bytes are those of the whole
line serialised at once, as a listened journal writes it, whatever the event's fields,
times and correlation ids (repeated or not), and for a portfolio's view."""

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from perps_bot.monitoring.journal import Journal
from perps_bot.monitoring.journal_event import EventType

_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.lists(st.integers(0, 9), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(0, 9), max_size=2),
)
#: every field a line starts with (data naming one takes the dict path), and one other
_KEYS = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["ts", "type", "run_id", "correlation_id", "portfolio", "symbol"]),
)
_EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["signal", "order", "fill", "order_update"]),
        st.one_of(
            st.sampled_from([0, 1_700_000_000_000, 1_700_000_060_000]),
            st.integers(-(2**63), 2**64 - 1),
        ),
        st.dictionaries(_KEYS, _VALUES, max_size=5),
        st.sampled_from([None, "", "bt-1", 'q"\\é', "pb-12"]),
    ),
    max_size=12,
)


def _lines(path: Path, events: list[Any], portfolio: str | None, listened: bool) -> list[bytes]:
    journal = Journal(path, "run-1")
    if portfolio is not None:
        journal = journal.for_portfolio("run-1/p", portfolio)
    if listened:
        journal.subscribe(lambda _type, _line: None)
    for type_, ts, data, cid in events:
        kind: EventType = type_
        journal.write(kind, ts, dict(data), cid)
    journal.close()
    return path.read_bytes().splitlines()


@settings(max_examples=150, deadline=None)
@given(events=_EVENTS, portfolio=st.sampled_from([None, "alpha"]))
def test_unlistened_lines_are_the_listened_bytes(
    tmp_path_factory: Any, events: list[Any], portfolio: str | None
) -> None:
    tmp = tmp_path_factory.mktemp("journal")
    assert _lines(tmp / "a.jsonl", events, portfolio, listened=False) == _lines(
        tmp / "b.jsonl", events, portfolio, listened=True
    )
