"""MatchingEngine behaviour: latency, market/limit matching, partial fills, reduce-only,
candle paths and real book snapshots, driven only through its public methods."""

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perps_bot.domain import (
    BookSnapshot,
    Candle,
    Fill,
    FundingRate,
    Liquidity,
    MarketEvent,
    MarkPrice,
    Order,
    OrderStatus,
    OrderType,
    Quote,
    Side,
)
from perps_bot.venues import OrderRejected
from perps_bot.venues.book import SyntheticBook
from perps_bot.venues.matching import MatchingRules
from tests.venues.paper import Paper

SYMBOL = "BTC-PERP"


def rules(**overrides: object) -> MatchingRules:
    base: dict[str, object] = {
        "slippage_bps": 5.0,
        "fill_probability": 1.0,
        "latency_ms": 50,
        "maker_bps": 2.0,
        "taker_bps": 5.0,
        "book": SyntheticBook(levels=5, spread_bps=10.0, level_spacing_bps=1.0, depth_growth=0.0),
        "depth": {SYMBOL: 1.0},
        "step_size": {SYMBOL: 0.001},
    }
    base.update(overrides)
    return MatchingRules(**base)  # type: ignore[arg-type]


def order(
    client_id: str,
    side: Side,
    size: float,
    *,
    price: float | None = None,
    ts: int = 0,
    reduce_only: bool = False,
    symbol: str = SYMBOL,
) -> Order:
    return Order(
        client_id=client_id,
        symbol=symbol,
        side=side,
        size=size,
        order_type=OrderType.MARKET if price is None else OrderType.LIMIT,
        price=price,
        reduce_only=reduce_only,
        created_ts=ts,
        correlation_id=f"corr-{client_id}",
        reason=f"why-{client_id}",
        stop_price=123.0,
    )


def quote(ts: int, mid: float, symbol: str = SYMBOL) -> Quote:
    return Quote(ts, symbol, mid, mid * (1 - 5e-4), mid * (1 + 5e-4), mid)


def run(engine: Paper, events: list[MarketEvent]) -> list[Fill]:
    fills: list[Fill] = []
    for event in events:
        fills.extend(engine.on_market(event))
    return fills


def test_latency_order_not_filled_before_submit_plus_latency() -> None:
    engine = Paper(rules(latency_ms=50), 1)
    engine.engine.submit(order("a", Side.BUY, 0.5, ts=1_000))
    assert not engine.on_market(quote(1_000, 100.0))
    assert not engine.on_market(quote(1_049, 100.0))
    fills = engine.on_market(quote(1_050, 101.0))
    assert len(fills) == 1
    assert fills[0].ts == 1_050
    assert fills[0].price == pytest.approx(101.0 * 1.0005 * 1.0005)


def test_market_buy_pays_ask_side_and_sell_hits_bid_side() -> None:
    engine = Paper(rules(), 1)
    engine.engine.submit(order("b", Side.BUY, 0.1))
    engine.engine.submit(order("s", Side.SELL, 0.1))
    buy, sell = engine.on_market(quote(100, 1_000.0))
    ask, bid = 1_000.0 * 1.0005, 1_000.0 * 0.9995
    assert buy.price == pytest.approx(ask * 1.0005)
    assert sell.price == pytest.approx(bid * 0.9995)
    assert buy.liquidity is sell.liquidity is Liquidity.TAKER
    assert buy.fee == pytest.approx(0.1 * buy.price * 5e-4)


def test_market_order_walks_levels_and_slippage_grows_with_size() -> None:
    prices = []
    for size in (0.5, 1.5, 3.5):
        engine = Paper(rules(), 1)
        engine.engine.submit(order("m", Side.BUY, size))
        (fill,) = engine.on_market(quote(100, 1_000.0))
        assert fill.size == size
        prices.append(fill.price)
    top_with_slippage = 1_000.0 * 1.0005 * 1.0005
    assert prices[0] == pytest.approx(top_with_slippage)
    assert top_with_slippage < prices[1] < prices[2]


def test_fill_carries_order_identity() -> None:
    engine = Paper(rules(), 1)
    engine.engine.submit(order("id-1", Side.SELL, 0.2))
    (fill,) = engine.on_market(quote(100, 1_000.0))
    assert (fill.client_id, fill.correlation_id, fill.reason, fill.stop_price) == (
        "id-1",
        "corr-id-1",
        "why-id-1",
        123.0,
    )
    assert (fill.symbol, fill.side, fill.size) == (SYMBOL, Side.SELL, 0.2)


def test_limit_order_rests_then_fills_as_maker_when_crossed() -> None:
    engine = Paper(rules(), 1)
    placed = engine.engine.submit(order("l", Side.BUY, 0.3, price=990.0))
    assert placed.exchange_id is not None
    assert run(engine, [quote(100, 1_000.0), quote(200, 995.0), quote(300, 990.5)]) == []
    assert [o.client_id for o in engine.engine.open_orders()] == ["l"]
    (fill,) = engine.on_market(quote(400, 989.0))
    assert fill.price == 990.0
    assert fill.liquidity is Liquidity.MAKER
    assert fill.fee == pytest.approx(0.3 * 990.0 * 2e-4)
    assert placed.status is OrderStatus.FILLED
    assert engine.engine.open_orders() == []


def test_marketable_limit_takes_liquidity_up_to_its_price_and_rests_the_rest() -> None:
    engine = Paper(rules(slippage_bps=0.0), 1)
    ask = 1_000.0 * 1.0005
    limit = ask * 1.00015  # covers the first two levels (1 bp apart)
    placed = engine.engine.submit(order("t", Side.BUY, 3.0, price=limit))
    (taken,) = engine.on_market(quote(100, 1_000.0))
    assert taken.liquidity is Liquidity.TAKER
    assert taken.size == pytest.approx(2.0)
    assert taken.price == pytest.approx(ask * (1 + 0.5e-4))
    assert placed.status is OrderStatus.PARTIALLY_FILLED
    (rest,) = engine.on_market(quote(200, limit - 1.0))
    assert rest.liquidity is Liquidity.MAKER
    assert rest.size == pytest.approx(1.0)
    assert rest.price == limit
    assert placed.filled == pytest.approx(3.0)
    assert placed.avg_price == pytest.approx((2 * taken.price + limit) / 3)


def test_partial_fills_under_fill_probability_are_seeded() -> None:
    def fills_for(seed: int) -> list[tuple[str, int, float]]:
        engine = Paper(rules(fill_probability=0.5), seed)
        for index in range(10):
            engine.engine.submit(order(f"p{index}", Side.SELL, 1.0, price=1_000.0))
        events: list[MarketEvent] = [quote(60, 990.0)]  # activation: not marketable, rests
        events += [quote(110 + i * 100, 1_001.0 + i % 2) for i in range(59)]  # all cross
        return [(f.client_id, f.ts, f.size) for f in run(engine, events)]

    first = fills_for(7)
    assert first == fills_for(7)
    assert first != fills_for(8)
    for index in range(10):
        sizes = [size for cid, _, size in first if cid == f"p{index}"]
        assert sum(sizes) == pytest.approx(1.0)
        assert all(abs(size / 0.001 - round(size / 0.001)) < 1e-6 for size in sizes)  # lots
    sizes = [size for _, _, size in first]
    assert any(size < 1.0 for size in sizes)  # some fills were partial
    first_crossing = [cid for cid, ts, _ in first if ts == 110]
    assert 0 < len(first_crossing) < 10  # some orders did not fill at the first crossing


def test_reduce_only_is_clipped_to_the_position() -> None:
    engine = Paper(rules(), 1)
    engine.engine.submit(order("open", Side.BUY, 0.003))
    run(engine, [quote(100, 1_000.0)])
    assert engine.position(SYMBOL) == pytest.approx(0.003)
    exit_order = engine.engine.submit(order("exit", Side.SELL, 0.005, ts=200, reduce_only=True))
    (fill,) = engine.on_market(quote(300, 1_000.0))
    assert fill.size == pytest.approx(0.003)
    assert exit_order.size == pytest.approx(0.003)
    assert exit_order.status is OrderStatus.FILLED
    assert engine.position(SYMBOL) == 0.0


def test_reduce_only_without_position_is_canceled() -> None:
    engine = Paper(rules(), 1)
    same_side = engine.engine.submit(order("r1", Side.BUY, 0.001, reduce_only=True))
    assert not engine.on_market(quote(100, 1_000.0))
    assert same_side.status is OrderStatus.CANCELED
    assert engine.engine.open_orders() == []


def test_resting_reduce_only_is_canceled_when_position_is_gone() -> None:
    engine = Paper(rules(), 1)
    engine.engine.submit(order("open", Side.SELL, 0.002))
    run(engine, [quote(100, 1_000.0)])
    take_profit = engine.engine.submit(
        order("tp", Side.BUY, 0.002, price=950.0, ts=100, reduce_only=True)
    )
    engine.engine.submit(order("flat", Side.BUY, 0.002, ts=100))
    run(engine, [quote(200, 1_000.0)])
    assert engine.position(SYMBOL) == 0.0
    assert not engine.on_market(quote(300, 900.0))
    assert take_profit.status is OrderStatus.CANCELED


def test_positions_come_from_the_ledger_after_a_liquidation() -> None:
    """The engine keeps no position of its own: once the ledger liquidated a long, a
    reduce-only sell has nothing to reduce, and a plain sell opens a short."""
    engine = Paper(rules(), 1)
    engine.engine.submit(order("long", Side.BUY, 0.002))
    run(engine, [quote(100, 1_000.0)])
    engine.ledger.restore(engine.ledger.wallet_balance(), {})  # as after a liquidation
    exit_order = engine.engine.submit(order("exit", Side.SELL, 0.002, ts=100, reduce_only=True))
    engine.engine.submit(order("short", Side.SELL, 0.001, ts=100))
    fills = run(engine, [quote(200, 1_000.0)])
    assert [f.client_id for f in fills] == ["short"]
    assert exit_order.status is OrderStatus.CANCELED
    assert exit_order.status_reason == "reduce-only: no position left to reduce"
    assert engine.position(SYMBOL) == pytest.approx(-0.001)


def test_submit_validation_and_cancel() -> None:
    engine = Paper(rules(), 1)
    bad = order("z", Side.BUY, 0.0)
    with pytest.raises(OrderRejected):
        engine.engine.submit(bad)
    assert bad.status is OrderStatus.REJECTED
    no_price = order("np", Side.BUY, 1.0)
    no_price.order_type = OrderType.LIMIT
    with pytest.raises(OrderRejected):
        engine.engine.submit(no_price)
    engine.engine.submit(order("ok", Side.BUY, 1.0, price=900.0))
    with pytest.raises(OrderRejected):
        engine.engine.submit(order("ok", Side.BUY, 1.0, price=900.0))
    canceled = engine.engine.cancel("ok", 10)
    assert canceled is not None and canceled.status is OrderStatus.CANCELED
    assert engine.engine.cancel("ok", 11) is None
    assert engine.engine.open_orders() == []
    assert engine.engine.on_market(quote(100, 800.0)) == ()


def test_idle_engine_returns_empty_tuple_for_every_event_type() -> None:
    engine = Paper(rules(), 1)
    events: list[MarketEvent] = [
        quote(1, 100.0),
        Candle(60_000, SYMBOL, 0, 1.0, 2.0, 0.5, 1.5, 10.0),
        FundingRate(2, SYMBOL, 0.0001, 100.0),
        MarkPrice(3, SYMBOL, 100.0),
        BookSnapshot(4, SYMBOL, [(99.0, 1.0)], [(101.0, 1.0)]),
    ]
    assert all(engine.engine.on_market(e) == () for e in events)
    engine.engine.submit(order("other", Side.BUY, 1.0, symbol="ETH-PERP"))
    assert engine.engine.on_market(quote(100, 100.0)) == ()
    engine.engine.submit(order("mine", Side.BUY, 1.0, ts=10))
    assert engine.engine.on_market(FundingRate(100, SYMBOL, 0.0001, 100.0)) == ()
    assert engine.engine.on_market(MarkPrice(100, SYMBOL, 100.0)) == ()


def _candle(open_time: int, o: float, h: float, low: float, c: float) -> Candle:
    return Candle(open_time + 60_000, SYMBOL, open_time, o, h, low, c, 100.0)


def test_candle_low_reaching_a_buy_limit_below_the_open_fills_it() -> None:
    engine = Paper(rules(), 1)
    engine.engine.submit(order("dip", Side.BUY, 0.5, price=95.0, ts=60_000))
    assert not engine.on_market(_candle(60_000, 100.0, 101.0, 95.1, 100.0))
    (fill,) = engine.on_market(_candle(120_000, 100.0, 101.0, 95.0, 99.0))
    assert (fill.price, fill.liquidity, fill.ts) == (95.0, Liquidity.MAKER, 180_000)


def test_candle_path_order_decides_which_limit_fills_first() -> None:
    # open 100 is nearer to the high (102) than the low (90): high first, then low.
    engine = Paper(rules(), 1)
    engine.engine.submit(order("buy", Side.BUY, 0.1, price=91.0))
    engine.engine.submit(order("sell", Side.SELL, 0.1, price=101.0))
    fills = engine.on_market(_candle(0, 100.0, 102.0, 90.0, 95.0))
    assert [f.client_id for f in fills] == ["sell", "buy"]
    # open 100 nearer to the low (99): low first, then high.
    engine = Paper(rules(), 1)
    engine.engine.submit(order("sell", Side.SELL, 0.1, price=101.0))
    engine.engine.submit(order("buy", Side.BUY, 0.1, price=99.5))
    fills = engine.on_market(_candle(0, 100.0, 110.0, 99.0, 105.0))
    assert [f.client_id for f in fills] == ["buy", "sell"]


def test_market_order_sent_at_a_candle_close_fills_at_the_next_open() -> None:
    engine = Paper(rules(latency_ms=50), 1)
    engine.engine.submit(order("m", Side.BUY, 0.5, ts=60_000))
    (fill,) = engine.on_market(_candle(60_000, 200.0, 210.0, 190.0, 205.0))
    assert fill.price == pytest.approx(200.0 * 1.0005 * 1.0005)
    assert fill.ts == 120_000


def test_order_live_in_the_middle_of_a_candle_skips_the_open() -> None:
    engine = Paper(rules(latency_ms=0), 1)
    engine.engine.submit(order("m", Side.SELL, 0.5, ts=30_000))  # slot of the 2nd path point
    bar = _candle(0, 200.0, 260.0, 150.0, 180.0)  # path 200 -> 150 -> 260 -> 180
    (fill,) = engine.on_market(bar)
    assert fill.price == pytest.approx(150.0 * 0.9995 * 0.9995)
    engine.engine.submit(order("late", Side.SELL, 0.5, ts=60_001))
    assert not engine.on_market(bar)


def test_book_snapshot_uses_real_levels() -> None:
    engine = Paper(rules(slippage_bps=0.0), 1)
    engine.engine.submit(order("m", Side.BUY, 1.5))
    empty_asks = BookSnapshot(100, SYMBOL, bids=[(99.0, 5.0)], asks=[])
    assert not engine.on_market(empty_asks)  # no price yet: stays queued
    book = BookSnapshot(200, SYMBOL, bids=[(99.0, 5.0)], asks=[(101.0, 1.0), (102.0, 1.0)])
    (fill,) = engine.on_market(book)
    assert fill.price == pytest.approx((101.0 + 0.5 * 102.0) / 1.5)
    engine.engine.submit(order("l", Side.SELL, 1.0, price=103.0, ts=200))
    quiet = BookSnapshot(300, SYMBOL, bids=[(99.0, 5.0)], asks=[(101.0, 1.0)])
    assert not engine.on_market(quiet)  # live at 250, not marketable: rests
    crossed = BookSnapshot(400, SYMBOL, bids=[(103.5, 5.0)], asks=[(104.0, 1.0)])
    (maker,) = engine.on_market(crossed)
    assert (maker.price, maker.liquidity) == (103.0, Liquidity.MAKER)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    steps=st.integers(2, 40),
    step=st.sampled_from([0.1, 0.01, 0.001]),
    probability=st.sampled_from([0.3, 0.5, 0.8]),
)
def test_partial_fills_stay_on_the_step_grid_and_a_close_leaves_the_book_flat(
    seed: int, steps: int, step: float, probability: float
) -> None:
    """A resting order filled in parts fills its remainder exactly (0.3 - 0.1 is 0.2, not
    the float 0.19999999999999998), so closing the position the ledger reports leaves it
    flat, with no dust position opened the other way."""
    size = round(steps * step, 3)
    engine = Paper(rules(fill_probability=probability, step_size={SYMBOL: step}), seed)
    engine.engine.submit(order("b", Side.BUY, size, price=98.0))
    fills = run(engine, [quote(100, 100.0)])  # rests: not marketable
    ts = 1_000
    while engine.engine.open_orders() and ts < 200_000:
        fills += engine.on_market(quote(ts, 97.0))  # crosses the resting buy
        ts += 1_000
    assert engine.engine.open_orders() == []
    for fill in fills:
        assert fill.size == round(fill.size, 3)  # whole steps, no float remainder
    held = engine.position(SYMBOL)
    assert held == size
    engine.engine.submit(order("exit", Side.SELL, held, ts=ts, reduce_only=True))
    run(engine, [quote(ts + 1_000, 99.0)])
    assert engine.ledger.symbols() == []
    assert engine.position(SYMBOL) == 0.0


def stop_order(client_id: str, trigger: float, ts: int) -> Order:
    return Order(client_id=client_id, symbol=SYMBOL, side=Side.SELL, size=1.0,
                 order_type=OrderType.STOP_MARKET, price=None, reduce_only=True,
                 created_ts=ts, correlation_id=client_id, trigger_price=trigger)  # fmt: skip


@pytest.mark.parametrize(("created", "expected"), [(0, 95.0), (45_000, 90.0)])
def test_a_stop_fills_at_its_trigger_only_if_it_was_live_when_the_price_passed_it(
    created: int, expected: float
) -> None:
    """Bar 0..60s: open 100, high 101 (t=20s), low 90 (t=40s), close 91. A sell stop at 95
    live from the open saw the fall through 95 and fills there; one that reaches the market
    at 45s (latency past the fall) first meets the low: for it that is a gap, and it fills
    at the low's book, not at a trigger price the market had left before it existed."""
    engine = Paper(rules(latency_ms=50, slippage_bps=0.0), 1)
    engine.engine.submit(order("open", Side.BUY, 1.0, ts=-1_000))
    run(engine, [quote(-500, 100.0)])
    assert engine.position(SYMBOL) == 1.0
    engine.engine.submit(stop_order("sl", 95.0, created))
    bar = Candle(ts=60_000, symbol=SYMBOL, open_time=0, open=100.0, high=101.0, low=90.0,
                 close=91.0, volume=1.0)  # fmt: skip
    (fill,) = engine.on_market(bar)
    assert fill.price == pytest.approx(expected * (1 - 5e-4))  # the bid around that price


def test_a_wick_of_the_last_price_alone_does_not_fire_a_stop_the_mark_does() -> None:
    """Stops trigger on the mark where the data gives one, as the live venue's do on the
    exchange (workingType=MARK_PRICE): a last price through the trigger with the mark
    above it leaves the stop waiting; a mark update through it fires the stop, which
    fills at the next quote's book."""
    engine = Paper(rules(latency_ms=0, slippage_bps=0.0), 1)
    engine.engine.submit(order("open", Side.BUY, 1.0, ts=-1_000))
    run(engine, [quote(-500, 100.0)])
    engine.engine.submit(stop_order("sl", 95.0, 0))
    wick = Quote(1_000, SYMBOL, 94.0, 94.0 * (1 - 5e-4), 94.0 * (1 + 5e-4), 99.0)
    assert run(engine, [wick, quote(2_000, 99.0)]) == []
    assert engine.position(SYMBOL) == 1.0
    assert run(engine, [MarkPrice(3_000, SYMBOL, 94.5)]) == []  # fired: fills at a book
    still = Quote(4_000, SYMBOL, 96.0, 96.0 * (1 - 5e-4), 96.0 * (1 + 5e-4), 96.0)
    (fill,) = run(engine, [still])
    assert fill.client_id == "sl" and fill.price == pytest.approx(96.0 * (1 - 5e-4))
    assert engine.position(SYMBOL) == 0.0


def test_a_marketable_limit_takes_whole_lots_of_an_uneven_book() -> None:
    """Synthetic levels hold 1, 1.15, 1.3225 ... (depth growth 15%): a buy limit through
    three of them took 3.4725, a size no exchange with a 0.001 lot fills, and the
    position was left off the grid the close orders are floored to. It takes 3.472 and the
    rest rests."""
    book = SyntheticBook(levels=5, spread_bps=10.0, level_spacing_bps=1.0, depth_growth=0.15)
    engine = Paper(rules(book=book), 1)
    placed = engine.engine.submit(order("b", Side.BUY, 5.0, price=100.075))
    (taken,) = engine.on_market(quote(100, 100.0))
    assert taken.liquidity is Liquidity.TAKER
    assert taken.size == 3.472
    (rest,) = engine.on_market(quote(200, 99.0))
    assert (rest.size, rest.liquidity) == (1.528, Liquidity.MAKER)
    assert placed.status is OrderStatus.FILLED
    assert engine.position(SYMBOL) == 5.0


@pytest.mark.parametrize(
    ("bar", "expected"),
    [
        # the last wicks to 90, the mark only to 96: the stop waits
        ((100.0, 101.0, 90.0, 99.0, 99.0, 100.5, 96.0), None),
        # mark and last both through 95 on the way down: at the trigger
        ((100.0, 101.0, 90.0, 91.0, 91.0, 101.0, 90.5), 95.0),
        # the mark through 95, the last down to 97 only: at the last's low
        ((100.0, 101.0, 97.0, 98.0, 98.0, 100.5, 94.0), 97.0),
        # a gap: open 93 with the mark at 93.5 there: at the open's book
        ((93.0, 94.0, 92.0, 93.0, 93.0, 94.0, 92.5), 93.0),
    ],
)
def test_a_candle_with_mark_extremes_triggers_stops_on_the_mark(
    bar: tuple[float, ...], expected: float | None
) -> None:
    """A backtest's candle with a mark series (`--mark`) carries the mark's close, high
    and low: a sell stop at 95 follows the mark along the candle's path (open, nearer
    extreme, other extreme, close), not the last price."""
    o, h, low, c, mark, mark_high, mark_low = bar
    engine = Paper(rules(latency_ms=50, slippage_bps=0.0), 1)
    engine.engine.submit(order("open", Side.BUY, 1.0, ts=-1_000))
    run(engine, [quote(-500, 100.0)])
    engine.engine.submit(stop_order("sl", 95.0, -200))
    candle = Candle(60_000, SYMBOL, 0, o, h, low, c, 1.0, mark, mark_high, mark_low)
    fills = engine.on_market(candle)
    if expected is None:
        assert not fills
        assert engine.position(SYMBOL) == 1.0
    else:
        (fill,) = fills
        assert fill.price == pytest.approx(expected * (1 - 5e-4))


@pytest.mark.parametrize(
    ("entry_ts", "trigger", "expected"),
    [
        (-1_000, 94.0, 94.0),  # rested, filled at 98 on the fall: 94 passed after it
        (-1_000, 85.0, None),  # below the low: not on the move
        (45_000, 90.02, 90.0),  # filled at the low's own book (a gap): so is the stop
    ],
)
def test_a_stop_placed_after_a_fill_on_a_move_meets_the_rest_of_that_move(
    entry_ts: int, trigger: float, expected: float | None
) -> None:
    """Bar 0..60s: open 100, high 101 (t=20s), low 90 (t=40s), close 91. A buy limit at 98
    resting before the bar fills at 98 on the fall to the low; a stop placed then
    (`on_leg_rest`) meets the rest of that fall, from 98 to 90, and fills at its trigger.
    An entry that reached the market only at the low filled at its book: the rest of the
    move is that point alone, where the stop fills at the point's book."""
    engine = Paper(rules(latency_ms=50, slippage_bps=0.0), 1)
    engine.engine.submit(order("entry", Side.BUY, 1.0, price=98.0, ts=entry_ts))
    run(engine, [quote(-500, 100.0)])
    bar = Candle(ts=60_000, symbol=SYMBOL, open_time=0, open=100.0, high=101.0, low=90.0,
                 close=91.0, volume=1.0)  # fmt: skip
    for since, until in ((0, 20_000), (20_000, 40_000)):
        assert not engine.engine.on_candle_part(bar, since, until, 60_000)
    (entry,) = engine.engine.on_candle_part(bar, 40_000, 60_000, 60_000)
    engine.ledger.apply_fill(entry)
    engine.engine.submit(stop_order("sl", trigger, 40_000))
    fills = engine.engine.on_leg_rest(bar, 40_000, 60_000, 60_000)
    if expected is None:
        assert not fills
        return
    (stop,) = fills
    assert (stop.client_id, stop.ts) == ("sl", 60_000)
    assert stop.price == pytest.approx(expected * (1 - 5e-4))  # the bid around that price


def test_the_rest_of_a_move_two_entries_filled_on_starts_at_the_protected_ones_fill() -> None:
    """Bar as above. Buy limits at 98 ("a") and 92 ("b") both fill on the fall to the low;
    the stop at 94 placed then protects "a" (its correlation id, as the orchestrator's
    protective orders carry their entry's id): the fall went through 94 after "a" filled,
    so it fills at 94. (Measured from "b"'s fill at 92, the nearer one to the low, it
    counted as triggered before it existed and filled at the low's book, near 90.)"""
    engine = Paper(rules(latency_ms=50, slippage_bps=0.0), 1)
    engine.engine.submit(order("a", Side.BUY, 1.0, price=98.0, ts=-1_000))
    engine.engine.submit(order("b", Side.BUY, 1.0, price=92.0, ts=-1_000))
    run(engine, [quote(-500, 100.0)])
    bar = Candle(ts=60_000, symbol=SYMBOL, open_time=0, open=100.0, high=101.0, low=90.0,
                 close=91.0, volume=1.0)  # fmt: skip
    for since, until in ((0, 20_000), (20_000, 40_000)):
        assert not engine.engine.on_candle_part(bar, since, until, 60_000)
    entries = engine.engine.on_candle_part(bar, 40_000, 60_000, 60_000)
    assert sorted(f.client_id for f in entries) == ["a", "b"]
    for fill in entries:
        engine.ledger.apply_fill(fill)
    stop = replace(stop_order("sl", 94.0, 40_000), size=2.0, correlation_id="a")
    engine.engine.submit(stop)
    (fill,) = engine.engine.on_leg_rest(bar, 40_000, 60_000, 60_000)
    assert fill.price == pytest.approx(94.0 * (1 - 5e-4), rel=1e-4)  # size 2: one level more
