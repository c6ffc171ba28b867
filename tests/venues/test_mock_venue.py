"""MockVenue through the Venue protocol, fed by the seeded random walk like the dev profile."""

import pytest

from perps_bot.config.models import FeesConfig, MockConfig
from perps_bot.domain import Fill, Liquidity, Order, OrderStatus, OrderType, Quote, Side
from perps_bot.feeds.random_walk import RandomWalkFeed
from perps_bot.instruments import builtin_instruments
from perps_bot.ledger import Ledger
from perps_bot.venues import OrderRejected, Venue
from perps_bot.venues.mock import MockVenue
from tests.venues.paper import rich_ledger

START = 1_704_067_200_000  # 2024-01-01T00:00:00Z
SYMBOLS = ["BTC-PERP", "ETH-PERP"]


def _order(
    n: int,
    symbol: str,
    side: Side,
    size: float,
    ts: int,
    price: float | None = None,
    reduce_only: bool = False,
) -> Order:
    return Order(
        client_id=f"c{n}",
        symbol=symbol,
        side=side,
        size=size,
        order_type=OrderType.LIMIT if price is not None else OrderType.MARKET,
        price=price,
        reduce_only=reduce_only,
        created_ts=ts,
        correlation_id=f"k{n}",
    )


def _venue(
    mock: MockConfig | None = None, seed: int = 1, fees: FeesConfig | None = None
) -> tuple[MockVenue, Ledger]:
    ledger = rich_ledger()
    return MockVenue(mock or MockConfig(), builtin_instruments(fees), seed, ledger), ledger


def _book(ledger: Ledger, fills: list[Fill]) -> list[Fill]:
    for fill in fills:
        ledger.apply_fill(fill)
    return fills


async def _session(seed: int, mock: MockConfig | None = None) -> list[Fill]:
    """Two simulated hours: every 5 minutes per symbol, a market order and a limit order
    a few bps inside the book, alternating sides; returns every fill."""
    mock = mock or MockConfig()
    venue, ledger = _venue(mock, seed)
    ticks = {s: i.tick_size for s, i in builtin_instruments().items()}
    feed = RandomWalkFeed(
        mock, SYMBOLS, seed, tick_sizes=ticks, start_ms=START, end_ms=START + 2 * 3_600_000
    )
    fills: list[Fill] = []
    n = 0
    async for batch in feed.batches():
        for event in batch:
            fills.extend(_book(ledger, list(venue.on_market(event))))
            if isinstance(event, Quote) and (event.ts - START) % 300_000 == 0:
                n += 1
                side = Side.BUY if n % 2 else Side.SELL
                size = 0.01 if event.symbol == "BTC-PERP" else 0.1
                await venue.submit(_order(2 * n, event.symbol, side, size, event.ts))
                inside = event.bid * 0.9999 if side is Side.BUY else event.ask * 1.0001
                await venue.submit(_order(2 * n + 1, event.symbol, side, size, event.ts, inside))
    return fills


async def test_same_seed_identical_fills_different_seed_different() -> None:
    first = await _session(42)
    assert len(first) > 20
    assert first == await _session(42)
    assert first != await _session(43)
    assert {f.liquidity for f in first} == {Liquidity.MAKER, Liquidity.TAKER}


async def test_profile_fee_rates_apply() -> None:
    venue, _ = _venue(fees=FeesConfig(maker_bps=-1.0, taker_bps=4.0))
    await venue.submit(_order(1, "BTC-PERP", Side.BUY, 0.01, ts=0))
    await venue.submit(_order(2, "BTC-PERP", Side.SELL, 0.01, ts=0, price=60_100.0))
    (taker,) = venue.on_market(Quote(100, "BTC-PERP", 60_000.0, 59_970.0, 60_030.0, 60_000.0))
    assert taker.fee == pytest.approx(0.01 * taker.price * 4e-4)
    assert taker.price == pytest.approx(60_030.0 * 1.0005)  # ask plus slippage_bps 5
    (maker,) = venue.on_market(Quote(200, "BTC-PERP", 60_150.0, 60_120.0, 60_180.0, 60_150.0))
    assert maker.fee == pytest.approx(-0.01 * 60_100.0 * 1e-4)  # rebate


async def test_latency_comes_from_the_profile() -> None:
    venue, _ = _venue(MockConfig(latency="2s"))
    await venue.submit(_order(1, "ETH-PERP", Side.BUY, 0.1, ts=10_000))
    assert not venue.on_market(Quote(11_999, "ETH-PERP", 3_000.0, 2_998.5, 3_001.5, 3_000.0))
    assert len(venue.on_market(Quote(12_000, "ETH-PERP", 3_000.0, 2_998.5, 3_001.5, 3_000.0))) == 1


async def test_protocol_surface_snapshot_and_cancel() -> None:
    mock_venue, ledger = _venue()
    venue: Venue = mock_venue
    assert venue.name == "mock"
    assert venue.needs_polling is False
    await venue.start()
    placed = await venue.submit(_order(1, "BTC-PERP", Side.BUY, 0.002, ts=0))
    assert placed.exchange_id == "mock-1"
    resting = await venue.submit(_order(2, "BTC-PERP", Side.BUY, 0.001, ts=0, price=50_000.0))
    _book(
        ledger,
        list(venue.on_market(Quote(100, "BTC-PERP", 60_000.0, 59_970.0, 60_030.0, 60_000.0))),
    )
    snapshot = await venue.snapshot()
    assert snapshot.balance is None
    assert [(p.symbol, p.size) for p in snapshot.positions] == [("BTC-PERP", 0.002)]
    assert [o.client_id for o in snapshot.open_orders] == ["c2"]
    await venue.cancel("c2", 200)
    await venue.cancel("c2", 300)  # idempotent
    assert resting.status is OrderStatus.CANCELED
    assert venue.open_orders() == []
    assert await venue.poll(1_000) == ()
    with pytest.raises(OrderRejected):
        await venue.submit(_order(3, "BTC-PERP", Side.BUY, -1.0, ts=0))
    await venue.stop()


async def test_reduce_only_exit_clipped_through_the_venue() -> None:
    venue, ledger = _venue()
    await venue.submit(_order(1, "ETH-PERP", Side.SELL, 0.3, ts=0))
    _book(ledger, list(venue.on_market(Quote(100, "ETH-PERP", 3_000.0, 2_998.5, 3_001.5, 3_000.0))))
    assert ledger.position_size("ETH-PERP") == pytest.approx(-0.3)
    await venue.submit(_order(2, "ETH-PERP", Side.BUY, 1.0, ts=100, reduce_only=True))
    (fill,) = _book(
        ledger, list(venue.on_market(Quote(200, "ETH-PERP", 3_000.0, 2_998.5, 3_001.5, 3_000.0)))
    )
    assert fill.size == pytest.approx(0.3)
    assert ledger.position_size("ETH-PERP") == 0.0
