"""QuoteColumns (the mock exchange's batches) read as a sequence of events: ticks in
time order, each tick's quotes in symbol order, funding settlements in their places;
one index builds one event and agrees with the whole list."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perps_bot.domain import FundingRate, MarketEvent, Quote
from perps_bot.feeds.quote_columns import QuoteColumns, QuoteLists

SYMBOLS = ("BTC-PERP", "ETH-PERP", "SOL-PERP")


def _columns(ticks: int, width: int, inserts: list[int]) -> tuple[QuoteColumns, list[MarketEvent]]:
    """The batch, and the events it stands for built the plain way."""
    ts = [1_000 * t for t in range(ticks)]
    symbols = SYMBOLS[:width]
    lists = [
        QuoteLists(*([100.0 * (o + 1) + t + k / 10 for t in range(ticks)] for k in range(4)))
        for o in range(width)
    ]
    placed = [(at, FundingRate(at, symbols[0], 0.0001, 1.0)) for at in sorted(inserts)]
    expected: list[MarketEvent] = []
    for t in range(ticks):
        for o, symbol in enumerate(symbols):
            c = lists[o]
            expected.append(Quote(ts[t], symbol, c.last[t], c.bid[t], c.ask[t], c.mark[t]))
    for shift, (at, event) in enumerate(placed):
        expected.insert(at + shift, event)
    return QuoteColumns(ts, symbols, lists, placed), expected


@given(
    ticks=st.integers(1, 12),
    width=st.integers(1, 3),
    data=st.data(),
)
def test_every_index_and_the_whole_list_agree_with_the_plain_events(
    ticks: int, width: int, data: st.DataObject
) -> None:
    at = st.integers(1, ticks).map(lambda t: t * width)  # after a tick's last quote
    inserts = data.draw(st.lists(at, max_size=3))
    block, expected = _columns(ticks, width, inserts)
    assert len(block) == len(expected)
    one_by_one = [block[i] for i in range(len(block))]  # each index alone
    assert one_by_one == expected
    assert [block[-i] for i in range(1, len(block) + 1)] == expected[::-1]
    assert list(block) == expected
    assert block[1:] == expected[1:]
    assert [block.quote(i) for i in range(block.quotes)] == [
        e for e in expected if isinstance(e, Quote)
    ]


def test_an_index_past_the_end_is_an_index_error() -> None:
    block, _ = _columns(2, 2, [2])
    with pytest.raises(IndexError):
        block[5]
    with pytest.raises(IndexError):
        block[-6]
