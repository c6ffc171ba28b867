"""Fill models of the paper venue (SPEC 14): the queue-position arithmetic as properties,
and the penetration / queue models, depth memory, empirical latency and the adaptive
candle path through the engine's public methods."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perps_bot.domain import BookSnapshot, Candle, Order, OrderType, PublicTrade, Side
from perps_bot.venues.book import SyntheticBook
from perps_bot.venues.matching import MatchingEngine, MatchingRules
from perps_bot.venues.queue_math import (
    QueueFunction,
    after_depth_change,
    after_trade,
    executable,
)
from tests.venues.paper import Paper

SYMBOL = "ETH-PERP"
TICK = 0.01
qty = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)
funcs = st.sampled_from(
    [QueueFunction.parse(t) for t in ("risk_averse", "log", "power:1", "power:2", "power:3")]
)


# -- the arithmetic ----------------------------------------------------------------------
@given(funcs, qty, qty, qty)
def test_a_cancellation_never_moves_an_order_back_nor_past_the_level(
    func: QueueFunction, front_share: float, prev: float, cancelled: float
) -> None:
    front = min(front_share, prev)
    new = max(prev - cancelled, 0.0)
    after = after_depth_change(func, front, prev, new, 0.0)
    assert after <= front + 1e-9
    assert after <= new + 1e-9
    assert after >= -1e-6 * max(1.0, prev)  # cancellations alone never execute the order


@given(funcs, qty, qty, qty)
def test_growth_of_the_level_queues_behind(
    func: QueueFunction, front_share: float, prev: float, added: float
) -> None:
    front = min(front_share, prev)
    assert after_depth_change(func, front, prev, prev + added, 0.0) == front


@given(qty, qty, qty)
def test_risk_averse_advances_only_on_trades(front_share: float, prev: float, cut: float) -> None:
    front = min(front_share, prev)
    new = max(prev - cut, 0.0)
    assert after_depth_change(QueueFunction.parse("risk_averse"), front, prev, new, 0.0) == min(
        front, new
    )


@given(st.floats(min_value=1.0, max_value=1e4), st.floats(min_value=1.0, max_value=1e4))
def test_a_higher_power_keeps_an_order_near_the_front_where_it_is(
    front: float, back: float
) -> None:
    """p = back^N / (back^N + front^N): for an order with less ahead than behind, a higher
    N says more of a cancellation was behind it (it advances less)."""
    low, high = QueueFunction.parse("power:1"), QueueFunction.parse("power:3")
    p_low, p_high = low.behind_share(front, back), high.behind_share(front, back)
    assert p_low == pytest.approx(back / (back + front))
    if front < back:
        assert p_high >= p_low - 1e-12
    elif front > back:
        assert p_high <= p_low + 1e-12


def test_log_and_power_shares_follow_their_formulas() -> None:
    assert QueueFunction.parse("log").behind_share(3.0, 7.0) == pytest.approx(
        math.log(8.0) / (math.log(8.0) + math.log(4.0))
    )
    assert QueueFunction.parse("power:2").behind_share(1.0, 3.0) == pytest.approx(0.9)
    # the worked case: 10 ahead, 30 behind, 20 cancelled, p = 0.9 under power:2 -> 8 ahead
    assert after_depth_change(QueueFunction.parse("power:2"), 10.0, 40.0, 20.0, 0.0) == (
        pytest.approx(10.0 - 0.1 * 20.0)
    )


@given(qty, qty, st.floats(min_value=0.0, max_value=1e6))
def test_trades_execute_exactly_the_overshoot(
    front: float, traded: float, remaining: float
) -> None:
    after = after_trade(front, traded)
    assert after == pytest.approx(front - traded)
    done = executable(after, remaining, None)
    assert done == pytest.approx(min(max(traded - front, 0.0), remaining), abs=1e-9)


@pytest.mark.parametrize("text", ["power:0", "power:-1", "power:x", "fifo", ""])
def test_unknown_queue_models_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="queue model"):
        QueueFunction.parse(text)


# -- through the engine -------------------------------------------------------------------
def rules(**overrides: object) -> MatchingRules:
    base: dict[str, object] = {
        "slippage_bps": 0.0,
        "fill_probability": 1.0,
        "latency_ms": 0,
        "book": SyntheticBook(levels=5, spread_bps=10.0, level_spacing_bps=1.0, depth_growth=0.0),
        "step_size": {SYMBOL: 0.001},
        "tick_size": {SYMBOL: TICK},
    }
    base.update(overrides)
    return MatchingRules(**base)  # type: ignore[arg-type]


def limit(client_id: str, side: Side, price: float, size: float, ts: int = 0) -> Order:
    return Order(client_id, SYMBOL, side, size, OrderType.LIMIT, price, False, ts, client_id)


def market(client_id: str, side: Side, size: float, ts: int = 0) -> Order:
    return Order(client_id, SYMBOL, side, size, OrderType.MARKET, None, False, ts, client_id)


def book(
    ts: int,
    bids: list[tuple[float, float]],
    asks: list[tuple[float, float]],
    trades: tuple[PublicTrade, ...] = (),
    last: float | None = None,
) -> BookSnapshot:
    return BookSnapshot(ts, SYMBOL, bids, asks, last=last, trades=trades)


BIDS = [(99.99, 5.0), (99.98, 5.0)]
ASKS = [(100.01, 5.0), (100.02, 5.0)]


def test_default_rules_keep_the_plain_engine() -> None:
    assert type(Paper(rules(), 1).engine) is MatchingEngine
    assert type(Paper(rules(fill_model="queue"), 1).engine) is not MatchingEngine


def test_touch_fills_a_touched_order_that_penetration_keeps_until_traded_through() -> None:
    touch, pen = Paper(rules(), 1), Paper(rules(fill_model="penetration", penetration_ticks=2), 1)
    for paper in (touch, pen):
        paper.engine.submit(limit("b", Side.BUY, 99.99, 1.0))
        paper.on_market(book(1, BIDS, ASKS))
    at_limit = book(2, [(99.98, 5.0)], [(99.99, 3.0)], last=99.99)
    assert [f.price for f in touch.on_market(at_limit)] == [99.99]
    assert pen.on_market(at_limit) == []
    assert pen.on_market(book(3, [(99.96, 5.0)], [(99.98, 3.0)], last=99.98)) == []
    fills = pen.on_market(book(4, [(99.95, 5.0)], [(99.97, 3.0)], last=99.97))
    assert [(f.price, f.size) for f in fills] == [(99.99, 1.0)]


def test_queue_waits_behind_the_displayed_quantity_and_fills_partially() -> None:
    paper = Paper(rules(fill_model="queue"), 1)
    paper.engine.submit(limit("b", Side.BUY, 99.99, 2.0))
    paper.on_market(book(1, BIDS, ASKS))  # joins behind 5.0
    sell = Side.SELL
    assert paper.on_market(book(2, [(99.99, 2.0), *BIDS[1:]], ASKS,
                                (PublicTrade(2, 99.99, 3.0, sell),))) == []  # fmt: skip
    fills = paper.on_market(
        book(3, [(99.99, 0.5), *BIDS[1:]], ASKS, (PublicTrade(3, 99.99, 3.0, sell),))
    )
    assert [(f.price, f.size) for f in fills] == [(99.99, 1.0)]  # 2 ahead, 3 traded: 1 is ours
    fills = paper.on_market(book(4, BIDS, ASKS, (PublicTrade(4, 99.98, 0.1, sell),)))
    assert [f.size for f in fills] == [1.0]  # traded through: the rest fills


def test_queue_risk_averse_ignores_cancellations_that_power_counts() -> None:
    averse = Paper(rules(fill_model="queue"), 1)
    eager = Paper(rules(fill_model="queue", queue_model="power:0.5"), 1)
    for paper in (averse, eager):
        paper.engine.submit(limit("b", Side.BUY, 99.99, 1.0))
        paper.on_market(book(1, BIDS, ASKS))
        paper.on_market(book(2, [(99.99, 7.0), *BIDS[1:]], ASKS))  # 2 joined behind us
        paper.on_market(book(3, [(99.99, 2.5), *BIDS[1:]], ASKS))  # 4.5 cancelled
    # averse: 2.5 ahead (the level's size). power:0.5: p = sqrt(2) / (sqrt(2) + sqrt(5)) of
    # the 4.5 cancelled was behind, so 5 - (1 - p) * 4.5 = 2.24 ahead
    trade = (PublicTrade(4, 99.99, 2.4, Side.SELL),)
    assert averse.on_market(book(4, [(99.99, 0.1), *BIDS[1:]], ASKS, trade)) == []
    fills = eager.on_market(book(4, [(99.99, 0.1), *BIDS[1:]], ASKS, trade))
    p = math.sqrt(2) / (math.sqrt(2) + math.sqrt(5))
    assert [f.size for f in fills] == [
        pytest.approx(math.floor((2.4 - 5 + (1 - p) * 4.5) * 1e3) / 1e3)
    ]


def test_taken_liquidity_is_remembered_until_the_next_book() -> None:
    paper = Paper(rules(fill_model="penetration"), 1)
    paper.on_market(book(1, BIDS, ASKS))
    paper.engine.submit(market("m1", Side.BUY, 4.0, 1))
    paper.engine.submit(market("m2", Side.BUY, 4.0, 1))
    snapshot = book(2, BIDS, ASKS)
    prices = [f.price for f in paper.on_market(snapshot)]
    assert prices[0] == pytest.approx(100.01)
    assert prices[1] == pytest.approx((1.0 * 100.01 + 3.0 * 100.02) / 4.0)  # 1 left at the touch
    plain = Paper(rules(), 1)
    plain.engine.submit(market("m1", Side.BUY, 4.0, 1))
    plain.engine.submit(market("m2", Side.BUY, 4.0, 1))
    assert [f.price for f in plain.on_market(snapshot)] == pytest.approx([100.01, 100.01])


def test_empirical_latency_draws_from_the_samples_deterministically() -> None:
    def live_times(seed: int) -> list[int]:
        paper = Paper(rules(latency_samples=(10, 200, 3000)), seed)
        for i in range(30):
            paper.engine.submit(market(f"m{i}", Side.BUY, 0.001, 0))
        fills = [f for ts in (10, 200, 3000) for f in paper.on_market(book(ts, BIDS, ASKS))]
        return [f.ts for f in sorted(fills, key=lambda f: int(f.client_id[1:]))]

    first = live_times(7)
    assert len(first) == 30
    assert first == live_times(7)
    assert set(first) == {10, 200, 3000}
    assert first != live_times(8)


def test_adaptive_candle_path_visits_the_low_first_on_a_rising_candle() -> None:
    def first_fill(path: str) -> tuple[int, float]:
        paper = Paper(rules(candle_path=path, book=SyntheticBook(spread_bps=0.0)), 1)
        paper.engine.submit(limit("b", Side.BUY, 95.0, 1.0))
        paper.engine.submit(limit("s", Side.SELL, 104.0, 1.0))
        candle = Candle(60_000, SYMBOL, 0, 100.0, 105.0, 94.0, 104.5, 1.0)
        fills = paper.on_market(candle)
        return len(fills), fills[0].price

    assert first_fill("nearest") == (2, 104.0)  # high is nearer the open: sell first
    assert first_fill("adaptive") == (2, 95.0)  # a rising candle: low first


@pytest.mark.parametrize("limit_price", [7541.15, 3872.99, 99.99, 0.07])
@pytest.mark.parametrize("ticks", [1, 2, 5])
def test_penetration_fills_an_order_the_market_trades_exactly_k_ticks_through(
    limit_price: float, ticks: int
) -> None:
    """limit - k * tick in floats is often a hair below the k-th tick (7541.15 - 0.01 is
    7541.139999999999): an ask exactly k ticks through a buy must fill it, and a bid
    exactly k ticks through a sell."""
    through = round(limit_price - ticks * TICK, 2)
    paper = Paper(rules(fill_model="penetration", penetration_ticks=ticks), 1)
    paper.engine.submit(limit("b", Side.BUY, limit_price, 1.0))
    far = round(limit_price + 1.0, 2)
    assert paper.on_market(book(1, [(limit_price, 5.0)], [(far, 5.0)])) == []
    fills = paper.on_market(book(2, [(round(through - TICK, 2), 5.0)], [(through, 5.0)]))
    assert [(f.price, f.size) for f in fills] == [(limit_price, 1.0)]

    above = round(limit_price + ticks * TICK, 2)
    paper = Paper(rules(fill_model="penetration", penetration_ticks=ticks), 1)
    paper.engine.submit(limit("s", Side.SELL, limit_price, 1.0))
    assert paper.on_market(book(1, [(round(limit_price / 2, 2), 5.0)], [(limit_price, 5.0)])) == []
    fills = paper.on_market(book(2, [(above, 5.0)], [(round(above + TICK, 2), 5.0)]))
    assert [(f.price, f.size) for f in fills] == [(limit_price, 1.0)]


def test_queue_an_order_beyond_the_displayed_depth_joins_behind_its_level_when_it_shows() -> None:
    """The book shows two levels; a buy four ticks below them has an unknown queue. When
    its level comes into view holding 10, those 10 are ahead of it (they were there
    first): a trade of 1 at its price does not fill it, the 11th unit does."""
    paper = Paper(rules(fill_model="queue"), 1)
    paper.engine.submit(limit("b", Side.BUY, 99.95, 1.0))
    assert paper.on_market(book(1, BIDS, ASKS)) == []  # 99.99, 99.98 shown: 99.95 beyond
    shown = [(99.96, 5.0), (99.95, 10.0)]
    assert paper.on_market(book(2, shown, [(99.97, 5.0)])) == []
    sell = Side.SELL
    one = (PublicTrade(3, 99.95, 1.0, sell),)
    assert paper.on_market(book(3, [(99.96, 5.0), (99.95, 9.0)], [(99.97, 5.0)], one)) == []
    ten = (PublicTrade(4, 99.95, 9.5, sell),)
    fills = paper.on_market(book(4, [(99.96, 5.0), (99.94, 3.0)], [(99.97, 5.0)], ten))
    assert [(f.price, f.size) for f in fills] == [(99.95, 0.5)]  # 10 ahead, 10.5 traded


def test_queue_a_one_level_book_does_not_empty_a_level_it_does_not_show() -> None:
    """A thin snapshot showing one bid level says nothing about the levels below it: a
    buy 10 behind at 99.95 keeps its place, and a trade of 1 there later does not fill
    it."""
    paper = Paper(rules(fill_model="queue"), 1)
    paper.engine.submit(limit("b", Side.BUY, 99.95, 1.0))
    levels = [(99.96, 5.0), (99.95, 10.0)]
    assert paper.on_market(book(1, levels, [(99.97, 5.0)])) == []  # joins behind 10
    assert paper.on_market(book(2, [(99.96, 5.0)], [(99.97, 5.0)])) == []  # one level shown
    one = (PublicTrade(3, 99.95, 1.0, Side.SELL),)
    assert paper.on_market(book(3, [(99.96, 5.0), (99.95, 9.0)], [(99.97, 5.0)], one)) == []


def test_queue_a_last_price_from_before_the_order_does_not_fill_it() -> None:
    """A book's `last` is the latest trade, however old: a buy joining 5 behind at 99.98
    while the last trade was at 99.96 has seen nothing trade, and an unchanged book
    does not fill it; a public trade below its limit does."""
    paper = Paper(rules(fill_model="queue"), 1)
    bids, asks = [(99.99, 5.0), (99.98, 5.0), (99.97, 5.0)], [(100.01, 5.0)]
    paper.engine.submit(limit("b", Side.BUY, 99.98, 1.0))
    assert paper.on_market(book(1, bids, asks, last=99.96)) == []  # joins behind 5
    assert paper.on_market(book(2, bids, asks, last=99.96)) == []
    through = (PublicTrade(3, 99.97, 0.5, Side.SELL),)
    fills = paper.on_market(book(3, bids, asks, through, last=99.97))
    assert [(f.price, f.size) for f in fills] == [(99.98, 1.0)]


def test_queue_power_of_a_high_order_does_not_overflow() -> None:
    """power:N takes any N > 0; 30^400 is past a float, and on main the first
    cancellation the order met raised OverflowError out of the replay. The share is a
    ratio, which a float holds: 20 cancelled with 50 ahead and 30 behind, nearly all of
    it ahead under power:400 (p = 1 / (1 + (5/3)^400))."""
    paper = Paper(rules(fill_model="queue", queue_model="power:400"), 1)
    paper.engine.submit(limit("b", Side.BUY, 99.99, 1.0))
    assert paper.on_market(book(1, [(99.99, 50.0)], ASKS)) == []  # 50 ahead
    assert paper.on_market(book(2, [(99.99, 80.0)], ASKS)) == []  # 30 behind
    assert paper.on_market(book(3, [(99.99, 60.0)], ASKS)) == []  # 20 cancelled: 30 ahead
    trades = (PublicTrade(4, 99.99, 30.5, Side.SELL),)
    fills = paper.on_market(book(4, [(99.99, 29.5)], ASKS, trades))
    assert [f.size for f in fills] == [0.5]
    assert QueueFunction.parse("power:400").behind_share(50.0, 30.0) == pytest.approx(0.0)
    assert QueueFunction.parse("power:400").behind_share(30.0, 50.0) == pytest.approx(1.0)
    # both below a float (0.01^400): still the ratio, not "nothing ahead, all behind"
    assert QueueFunction.parse("power:400").behind_share(0.02, 0.01) == pytest.approx(0.0)
