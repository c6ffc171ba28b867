"""A resting paper order on a real book (a canary dry run, a replay of its capture) and the
book's `last` (SPEC 4, 14). `last` is the latest trade of the market, however old: a buy
at 99.98 between a bid of 99.97 and an ask of 99.99, sent while the last trade was at
99.96, has seen nothing trade at or through its price, and on the exchange it waits for
a trade or for the ask to come down to it. Measured on main: under `touch` and
`penetration` the paper venue filled it at the next unchanged book (last 99.96 <= 99.98),
so a dry run filled resting orders the exchange would not have. Now what crosses a
resting order on a book is a public trade the book carries (one printed since the
symbol's previous book, when the order was already resting) or the other side reaching
it; quotes and candles keep their last price (their price path is the trades)."""

import pytest

from perps_bot.config.models import MockConfig
from perps_bot.domain import BookSnapshot, Order, OrderType, PublicTrade, Quote, Side
from perps_bot.instruments import builtin_instruments
from perps_bot.venues.mock import MockVenue
from tests.venues.paper import rich_ledger

SYMBOL = "ETH-PERP"
BIDS, ASKS = [(99.97, 5.0), (99.96, 5.0)], [(99.99, 5.0), (100.0, 5.0)]
MODELS = [{"fill_model": "touch"}, {"fill_model": "penetration", "penetration_ticks": 1}]


def venue(model: dict[str, object]) -> MockVenue:
    mock = MockConfig(fill_probability=1.0, slippage_bps=0.0, latency="50ms", **model)
    return MockVenue(mock, builtin_instruments(), 1, rich_ledger())


def limit(side: Side, price: float, ts: int) -> Order:
    return Order("o1", SYMBOL, side, 1.0, OrderType.LIMIT, price, False, ts, "o1")


def book(ts: int, last: float, *trades: PublicTrade) -> BookSnapshot:
    return BookSnapshot(ts, SYMBOL, BIDS, ASKS, last=last, mark=99.98, trades=trades)


@pytest.mark.parametrize("model", MODELS, ids=["touch", "penetration"])
@pytest.mark.parametrize(
    ("side", "stale", "through"),
    [
        (Side.BUY, 99.96, PublicTrade(1_350, 99.97, 0.5, Side.SELL)),
        (Side.SELL, 100.0, PublicTrade(1_350, 99.99, 0.5, Side.BUY)),
    ],
    ids=["buy", "sell"],
)
async def test_a_last_trade_from_before_the_order_does_not_fill_it_a_trade_since_does(
    model: dict[str, object], side: Side, stale: float, through: PublicTrade
) -> None:
    """A dry run's feed: books of an unchanged market whose last trade is older than the
    order (the book that makes the order live even hands out that trade again, printed
    before the order was sent); then a public trade one tick through the limit."""
    paper = venue(model)
    assert list(paper.on_market(book(1_000, stale))) == []
    await paper.submit(limit(side, 99.98, 1_000))  # not marketable: it rests
    earlier = PublicTrade(990, stale, 0.2, Side.SELL if side is Side.BUY else Side.BUY)
    assert list(paper.on_market(book(1_100, stale, earlier))) == []  # live: rests
    for ts in (1_200, 1_300):
        assert list(paper.on_market(book(ts, stale))) == []
    assert [o.client_id for o in paper.open_orders()] == ["o1"]
    fills = paper.on_market(book(1_400, through.price, through))
    assert [(f.price, f.size, str(f.liquidity)) for f in fills] == [(99.98, 1.0, "maker")]


@pytest.mark.parametrize("model", MODELS, ids=["touch", "penetration"])
async def test_the_other_side_reaching_a_resting_order_still_fills_it(
    model: dict[str, object],
) -> None:
    paper = venue(model)
    await paper.submit(limit(Side.BUY, 99.98, 1_000))
    assert list(paper.on_market(book(1_100, 99.96))) == []
    moved = BookSnapshot(1_200, SYMBOL, [(99.96, 5.0)], [(99.97, 5.0)], last=99.96)
    assert [(f.price, f.size) for f in paper.on_market(moved)] == [(99.98, 1.0)]


async def test_a_quote_s_last_price_still_crosses_a_resting_order() -> None:
    """The mock exchange's quotes (dev runs) and candles keep today's rule: their last
    price is the market's current trade."""
    paper = venue({})
    await paper.submit(limit(Side.BUY, 99.98, 1_000))
    assert list(paper.on_market(Quote(1_100, SYMBOL, 99.99, 99.97, 99.99, 99.98))) == []
    fills = paper.on_market(Quote(1_200, SYMBOL, 99.96, 99.97, 99.99, 99.98))
    assert [(f.price, f.size) for f in fills] == [(99.98, 1.0)]
