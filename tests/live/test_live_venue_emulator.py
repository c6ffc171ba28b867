"""LiveVenue against the loopback emulator through the real ccxt client: client ids,
reduce-only exits, rounding and minimums, reconciliation after a restart, and fault
injection (503 bursts, circuit breaker, 429, -2019, -2022, lost and accepted-then-timed-out
order placements: a retried order must never exist twice)."""

import logging
from dataclasses import replace
from typing import Any

import pytest

from perps_bot.config.models import ExchangeConfig
from perps_bot.domain import (
    BookSnapshot,
    DenialReason,
    InstrumentRefusal,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Side,
)
from perps_bot.exchange.runtime import wall_clock_ms
from perps_bot.instruments import InstrumentCatalog
from perps_bot.venues.base import OrderRejected, VenueFatal, VenueSnapshot, VenueUnavailable
from perps_bot.venues.live import LiveVenue
from perps_emulator import EmulatorServer, Fault
from tests.live.live_helpers import (
    ACCOUNT,
    API_KEY,
    API_SECRET,
    ClientFactory,
    FakeClock,
    FakeSleep,
    exchange_cfg,
    exchange_instruments,
    order_posts,
)

pytestmark = pytest.mark.integration

SYMBOLS = ["BTC-PERP", "ETH-PERP"]
FAR_FUTURE = 10**13  # a poll time that is always past the poll interval


class Harness:
    """A LiveVenue on a fresh private ccxt client, with a fake clock and sleep."""

    def __init__(
        self,
        server: EmulatorServer,
        make_client: ClientFactory,
        instruments: InstrumentCatalog,
        **cfg_overrides: Any,
    ) -> None:
        self.server = server
        self.instruments = instruments
        self.cfg: ExchangeConfig = exchange_cfg(server, **cfg_overrides)
        self.clock = FakeClock()
        self.sleep = FakeSleep(self.clock)
        self.venue = LiveVenue(
            make_client(self.cfg, private=True),
            self.cfg,
            ACCOUNT,
            instruments,
            clock=self.clock,
            sleep=self.sleep,
        )
        self._seq = 0

    def order(
        self,
        side: Side = Side.BUY,
        size: float = 0.002,
        *,
        symbol: str = "BTC-PERP",
        limit: float | None = None,
        reduce_only: bool = False,
        reference: float = 60_000.0,
    ) -> Order:
        """An order as the orchestrator makes it: through the instrument's rules
        (InstrumentRefusal when they refuse it, before anything is sent)."""
        self._seq += 1
        order_type = OrderType.LIMIT if limit is not None else OrderType.MARKET
        prepared = self.instruments[symbol].prepare(
            side, size, order_type, limit, reduce_only, reference
        )
        return Order(
            client_id=f"pbtestx{self._seq}",
            symbol=symbol,
            side=side,
            size=prepared.size,
            order_type=order_type,
            price=prepared.price,
            reduce_only=reduce_only,
            created_ts=self.clock(),
            correlation_id=f"corr-{self._seq}",
            reason="test entry",
            stop_price=55_000.0,
        )

    def on_orders(self, client_id: str) -> int:
        return sum(1 for o in self.server.state.orders.values() if o.client_order_id == client_id)


def sizes(snap: VenueSnapshot) -> list[tuple[str, float]]:
    return [(p.symbol, round(p.size, 9)) for p in snap.positions]


@pytest.fixture
async def instruments(emulator: EmulatorServer, make_client: ClientFactory) -> InstrumentCatalog:
    return await exchange_instruments(emulator, make_client, SYMBOLS)


@pytest.fixture
async def live(
    emulator: EmulatorServer, make_client: ClientFactory, instruments: InstrumentCatalog
) -> Harness:
    harness = Harness(emulator, make_client, instruments)
    await harness.venue.start()
    return harness


async def test_start_sets_leverage_and_margin_mode_and_reconciles(live: Harness) -> None:
    state = live.server.state
    assert state.leverage == {"BTCUSDT": 2, "ETHUSDT": 2}
    assert state.margin_type == {"BTCUSDT": "ISOLATED", "ETHUSDT": "ISOLATED"}
    snap = live.venue.last_snapshot
    assert snap is not None and snap.balance == pytest.approx(10_000.0)
    assert snap.positions == [] and snap.open_orders == []
    calls_before = len(live.server.calls)
    await live.venue.start()  # idempotent: the runner and the engine both call it
    assert len(live.server.calls) == calls_before


async def test_market_order_carries_client_id_and_reports_one_fill(live: Harness) -> None:
    order = live.order(size=0.0025)  # the instrument rounds it down to the 0.001 step
    ack = await live.venue.submit(order)
    assert ack.size == pytest.approx(0.002) and ack.exchange_id
    emu = live.server.state.orders_by_client_id[order.client_id]
    assert emu.orig_qty == pytest.approx(0.002) and emu.status == "FILLED"
    # filled on arrival, but not reported yet: still in flight for the orchestrator
    (in_flight,) = live.venue.open_orders()
    assert in_flight.client_id == order.client_id
    assert in_flight.remaining == pytest.approx(0.002)

    fills = await live.venue.poll(FAR_FUTURE)
    assert len(fills) == 1
    fill = fills[0]
    assert (fill.client_id, fill.correlation_id, fill.reason, fill.stop_price) == (
        order.client_id,
        "corr-1",
        "test entry",
        55_000.0,
    )
    assert fill.side is Side.BUY and fill.size == pytest.approx(0.002)
    assert fill.price == pytest.approx(emu.cum_quote / emu.executed_qty)
    assert fill.liquidity is Liquidity.TAKER
    assert fill.fee == pytest.approx(fill.size * fill.price * 5e-4)  # estimated taker 5 bps
    assert await live.venue.poll(FAR_FUTURE + 10_000) == []  # reported once
    assert live.venue.open_orders() == []


async def test_reduce_only_exit_and_reduce_only_violation(live: Harness) -> None:
    await live.venue.submit(live.order(Side.BUY, 0.003))
    exit_order = live.order(Side.SELL, 0.003, reduce_only=True)
    await live.venue.submit(exit_order)
    emu = live.server.state.orders_by_client_id[exit_order.client_id]
    assert emu.reduce_only is True
    assert live.server.state.positions["BTCUSDT"].amount == 0
    fills = await live.venue.poll(FAR_FUTURE)
    assert [f.side for f in fills] == [Side.BUY, Side.SELL]

    with pytest.raises(OrderRejected) as rejected:  # flat: nothing to reduce
        await live.venue.submit(live.order(Side.SELL, 0.003, reduce_only=True))
    assert rejected.value.reason is DenialReason.REDUCE_ONLY_VIOLATION
    assert not live.venue.circuit_open


async def test_below_minimums_is_refused_before_sending(live: Harness) -> None:
    """The exchange's own minimums, from its markets, refuse an order before it exists."""
    posts = order_posts(live.server)
    with pytest.raises(InstrumentRefusal, match="below the minimum 100") as notional:
        live.order(size=0.001)  # 60 USDT < BTC min notional 100
    assert notional.value.reason is DenialReason.BELOW_MIN_NOTIONAL
    with pytest.raises(InstrumentRefusal, match="below the minimum quantity") as quantity:
        live.order(size=0.0004)  # rounds to 0
    assert quantity.value.reason is DenialReason.BELOW_MIN_QUANTITY
    assert order_posts(live.server) == posts
    # reduce-only orders are exempt from the notional minimum (as on Binance)
    await live.venue.submit(live.order(Side.BUY, 0.002))
    await live.venue.submit(live.order(Side.SELL, 0.001, reduce_only=True))
    assert live.server.state.positions["BTCUSDT"].amount == pytest.approx(0.001)


async def test_insufficient_margin_is_a_margin_denial(live: Harness) -> None:
    with pytest.raises(OrderRejected) as real:  # 0.5 BTC = 30k USDT > 10k x 2 leverage
        await live.venue.submit(live.order(size=0.5))
    assert real.value.reason is DenialReason.INSUFFICIENT_MARGIN
    live.server.inject(Fault("error_code", code=-2019))
    with pytest.raises(OrderRejected) as injected:
        await live.venue.submit(live.order())
    assert injected.value.reason is DenialReason.INSUFFICIENT_MARGIN
    assert "Margin is insufficient" in injected.value.detail
    assert live.sleep.delays == []  # a rejection is not retried


async def test_limit_order_rests_then_fills_as_maker_and_cancel(live: Harness) -> None:
    btc = live.server.markets["BTCUSDT"]
    price = btc.best_bid - 100.04  # rounded down to the 0.1 tick
    resting = live.order(Side.BUY, 0.002, limit=price)
    ack = await live.venue.submit(resting)
    assert ack.price == pytest.approx(round(price - 0.04, 1))
    assert ack.status is OrderStatus.ACCEPTED
    assert [o.client_id for o in live.venue.open_orders()] == [resting.client_id]
    assert await live.venue.poll(FAR_FUTURE) == []

    live.server.set_price("BTCUSDT", price - 50)
    fills = await live.venue.poll(FAR_FUTURE + 10_000)
    assert len(fills) == 1 and fills[0].liquidity is Liquidity.MAKER
    assert fills[0].price == pytest.approx(ack.price or 0.0)
    assert fills[0].fee == pytest.approx(fills[0].size * fills[0].price * 2e-4)
    assert live.venue.open_orders() == []

    other = live.order(Side.SELL, 0.01, symbol="ETH-PERP", limit=btc.best_ask * 0 + 4_000.0)
    await live.venue.submit(other)
    await live.venue.cancel(other.client_id, live.clock())
    assert live.server.state.orders_by_client_id[other.client_id].status == "CANCELED"
    assert live.venue.open_orders() == []


async def test_one_refused_status_request_does_not_block_the_other_orders(live: Harness) -> None:
    btc = live.order(Side.BUY, 0.002, limit=59_000.0)
    eth = live.order(Side.BUY, 0.01, symbol="ETH-PERP", limit=2_900.0)
    await live.venue.submit(btc)
    await live.venue.submit(eth)
    live.server.set_price("BTCUSDT", 58_000.0)
    live.server.set_price("ETHUSDT", 2_800.0)
    live.server.inject(Fault("error_code", method="GET", path="/fapi/v1/order", code=-2013))
    first = await live.venue.poll(FAR_FUTURE)
    assert [f.client_id for f in first] == [eth.client_id]
    second = await live.venue.poll(FAR_FUTURE + 10_000)
    assert [f.client_id for f in second] == [btc.client_id]


async def test_polling_is_throttled_to_the_poll_interval(live: Harness) -> None:
    order = live.order(Side.BUY, 0.002, limit=50_000.0)
    await live.venue.submit(order)
    await live.venue.poll(1_000_000)
    calls = len(live.server.calls)
    await live.venue.poll(1_000_500)  # within poll_interval (1s): no request
    assert len(live.server.calls) == calls
    await live.venue.poll(1_001_000)
    assert len(live.server.calls) == calls + 1


async def test_new_venue_reconciles_position_and_open_orders_after_restart(
    live: Harness, make_client: ClientFactory
) -> None:
    await live.venue.submit(live.order(Side.BUY, 0.004))
    resting = live.order(Side.SELL, 0.001, limit=90_000.0, reduce_only=True)
    await live.venue.submit(resting)

    restarted = Harness(live.server, make_client, live.instruments)
    await restarted.venue.start()
    snap = restarted.venue.last_snapshot
    assert snap is not None
    assert sizes(snap) == [("BTC-PERP", 0.004)]
    assert snap.positions[0].entry_price > 0
    assert snap.balance is not None and snap.balance < 10_000.0  # fees paid
    assert [o.client_id for o in snap.open_orders] == [resting.client_id]
    assert [o.client_id for o in restarted.venue.open_orders()] == [resting.client_id]

    live.server.set_price("BTCUSDT", 91_000.0)  # the old order fills after the restart
    fills = await restarted.venue.poll(FAR_FUTURE)
    assert [(f.client_id, f.side) for f in fills] == [(resting.client_id, Side.SELL)]
    short = await restarted.venue.snapshot()
    assert sizes(short) == [("BTC-PERP", 0.003)]


async def test_short_position_is_negative_in_the_snapshot(live: Harness) -> None:
    await live.venue.submit(live.order(Side.SELL, 0.05, symbol="ETH-PERP"))
    snap = await live.venue.snapshot()
    assert sizes(snap) == [("ETH-PERP", -0.05)]


async def test_burst_of_503s_is_retried_then_succeeds(live: Harness) -> None:
    live.server.inject(Fault("status", status=503, count=2))
    order = live.order()
    ack = await live.venue.submit(order)
    assert ack.status is OrderStatus.FILLED
    # each unknown outcome was looked up until its receive window (5 s + 1 s of clock
    # margin) had passed; only then was the order sent again
    assert sum(live.sleep.delays) >= 2 * 6.0
    assert order_posts(live.server) == 3
    assert live.on_orders(order.client_id) == 1
    assert live.venue.reconnects == 2  # each failure then an answer: reconcile
    assert not live.venue.circuit_open


async def test_breaker_opens_after_repeated_failures_and_recovers_after_cooldown(
    emulator: EmulatorServer, make_client: ClientFactory, instruments: InstrumentCatalog
) -> None:
    live = Harness(emulator, make_client, instruments, breaker_failures=3, max_retries=5)
    await live.venue.start()
    emulator.inject(Fault("status", method="*", path="*", count=1_000))
    with pytest.raises(VenueUnavailable, match="outcome unknown, the exchange cannot be asked"):
        await live.venue.submit(live.order())
    assert live.venue.circuit_open
    calls = len(emulator.calls)
    with pytest.raises(VenueUnavailable, match="circuit breaker open"):
        await live.venue.submit(live.order())  # refused at once, nothing sent
    assert await live.venue.poll(FAR_FUTURE) == []
    assert len(emulator.calls) == calls

    live.clock.now += 30_000  # cooldown over: half-open lets one request probe
    emulator.clear_faults()
    assert not live.venue.circuit_open
    await live.venue.poll(FAR_FUTURE + 1)  # resolves the order left unconfirmed
    order = live.order()
    ack = await live.venue.submit(order)
    assert ack.status is OrderStatus.FILLED and not live.venue.circuit_open
    assert live.venue.reconnects == 1
    # the first order's fate was unknown when the breaker opened: it never reached the book
    assert len(emulator.state.orders) == 1


async def test_rate_limit_is_retried(live: Harness) -> None:
    live.server.inject(Fault("rate_limit", count=1, retry_after=3))
    order = live.order()
    await live.venue.submit(order)
    assert live.sleep.delays == [3.0]  # the exchange's Retry-After, not the 10 ms backoff
    assert live.on_orders(order.client_id) == 1


async def test_rate_limit_that_persists_becomes_venue_unavailable(live: Harness) -> None:
    live.server.inject(Fault("rate_limit", method="*", path="*", count=100))
    with pytest.raises(VenueUnavailable, match="DDoSProtection"):
        await live.venue.snapshot()
    assert len(live.sleep.delays) == live.cfg.max_retries


async def test_accepted_then_timed_out_order_is_not_placed_twice(
    emulator: EmulatorServer, make_client: ClientFactory, instruments: InstrumentCatalog
) -> None:
    live = Harness(emulator, make_client, instruments, timeout_ms=250)
    await live.venue.start()
    emulator.inject(Fault("accept_then_timeout", delay_s=1.0))
    order = live.order()
    ack = await live.venue.submit(order)
    assert ack.exchange_id and ack.status is OrderStatus.FILLED
    assert order_posts(emulator) == 1  # looked up by client id, not resent
    assert live.on_orders(order.client_id) == 1
    assert len(emulator.state.orders) == 1
    fills = await live.venue.poll(FAR_FUTURE)
    assert [f.client_id for f in fills] == [order.client_id]


async def test_lost_order_request_is_resent_once(
    emulator: EmulatorServer, make_client: ClientFactory, instruments: InstrumentCatalog
) -> None:
    live = Harness(emulator, make_client, instruments, timeout_ms=250)
    await live.venue.start()
    emulator.inject(Fault("timeout", delay_s=1.0))  # lost: never processed
    order = live.order()
    await live.venue.submit(order)
    assert order_posts(emulator) == 2
    assert live.on_orders(order.client_id) == 1
    assert len(emulator.state.orders) == 1


async def test_malformed_order_reply_is_checked_not_trusted(live: Harness) -> None:
    live.server.inject(Fault("malformed"))  # 200 with garbage, order NOT processed
    order = live.order()
    await live.venue.submit(order)
    assert order_posts(live.server) == 2
    assert live.on_orders(order.client_id) == 1


async def _unconfirmed(
    emulator: EmulatorServer, make_client: ClientFactory, instruments: InstrumentCatalog
) -> tuple[Harness, Order]:
    """A started venue and an order the exchange executed while the venue could not learn
    its outcome (accepted, the reply lost; the look-ups of it fail three times)."""
    live = Harness(emulator, make_client, instruments, timeout_ms=250, max_retries=2)
    await live.venue.start()
    emulator.inject(Fault("accept_then_timeout", delay_s=1.0))
    emulator.inject(Fault("status", method="GET", path="/fapi/v1/order", count=3))
    order = live.order()
    with pytest.raises(VenueUnavailable, match="outcome unknown"):
        await live.venue.submit(order)
    return live, order


async def test_unconfirmed_order_is_found_by_a_later_poll(
    emulator: EmulatorServer, make_client: ClientFactory, instruments: InstrumentCatalog
) -> None:
    live, order = await _unconfirmed(emulator, make_client, instruments)
    assert order.status is OrderStatus.UNKNOWN
    assert [o.client_id for o in live.venue.unconfirmed_orders()] == [order.client_id]
    # its fate is unknown: counted as in flight so the orchestrator does not re-send it
    assert [o.remaining for o in live.venue.open_orders()] == [pytest.approx(0.002)]
    fills = await live.venue.poll(FAR_FUTURE)  # the lookup now succeeds
    assert [f.client_id for f in fills] == [order.client_id]
    assert live.venue.unconfirmed_orders() == []
    assert live.on_orders(order.client_id) == 1


async def test_the_trades_of_an_unconfirmed_order_are_not_foreign_fills(
    emulator: EmulatorServer, make_client: ClientFactory, instruments: InstrumentCatalog
) -> None:
    """The exchange executed an order whose outcome the venue could not learn; the
    position differs, and reconciliation reads the exchange's trades that no order of
    the bot explains. The order's trade was one of them (its exchange id unknown yet):
    booked as another order's fill, then once more when a poll found the order. Each
    execution is handed out once."""
    live, order = await _unconfirmed(emulator, make_client, instruments)
    try:
        foreign = await live.venue.exchange_fills(wall_clock_ms() - 60_000, ["BTC-PERP"])
    except VenueUnavailable:
        foreign = []  # reconciliation waits until the order is resolved
    polled = await live.venue.poll(FAR_FUTURE)
    fills = [*foreign, *polled]
    assert [(f.client_id, f.size) for f in fills] == [(order.client_id, pytest.approx(0.002))]
    assert live.on_orders(order.client_id) == 1


async def test_a_fill_is_handed_out_when_its_commission_read_is_refused_for_good(
    live: Harness,
) -> None:
    """The order filled; reading its trades for the exchange's commission is refused
    (the key lost a permission). The fill was dropped with the VenueFatal that ended
    the run, its order stored as filled: lost for good. It is handed out with the
    estimated fee; the refusal ends the run at the venue's next request."""
    order = live.order()
    await live.venue.submit(order)
    live.server.inject(
        Fault("error_code", method="GET", path="/fapi/v1/userTrades", code=-2015, status=401)
    )
    fills = await live.venue.poll(FAR_FUTURE)
    assert [(f.client_id, f.size) for f in fills] == [(order.client_id, pytest.approx(0.002))]
    assert fills[0].fee == pytest.approx(fills[0].size * fills[0].price * 5e-4)  # estimated
    live.server.inject(Fault("error_code", method="*", path="*", code=-2015, status=401))
    with pytest.raises(VenueFatal, match="API credentials"):
        await live.venue.submit(live.order())


async def test_fills_read_before_a_refusal_for_good_are_handed_out(live: Harness) -> None:
    """A poll reads the BTC order (filled), then the ETH order's read is refused for
    good: the BTC fill went down with the VenueFatal that ended the run, while the
    order's update (filled) was stored at its end. The poll hands it out; the next
    one raises."""
    btc = live.order(Side.BUY, 0.002, limit=59_000.0)
    eth = live.order(Side.BUY, 0.01, symbol="ETH-PERP", limit=2_900.0)
    await live.venue.submit(btc)
    await live.venue.submit(eth)
    live.server.set_price("BTCUSDT", 58_000.0)
    live.server.inject(Fault("error_code", method="GET", path="/fapi/v1/order", code=-2015,
                             status=401, after=1, count=5))  # fmt: skip
    fills = await live.venue.poll(FAR_FUTURE)
    assert [f.client_id for f in fills] == [btc.client_id]
    with pytest.raises(VenueFatal, match="API credentials"):
        await live.venue.poll(FAR_FUTURE + 10_000)


async def test_authentication_error_is_fatal_with_a_clear_message(
    emulator: EmulatorServer, make_client: ClientFactory, instruments: InstrumentCatalog
) -> None:
    live = Harness(emulator, make_client, instruments)
    emulator.inject(
        Fault("error_code", method="POST", path="/fapi/v1/leverage", code=-2015, status=401)
    )
    with pytest.raises(VenueFatal, match="API credentials") as fatal:
        await live.venue.start()
    assert API_KEY not in str(fatal.value) and API_SECRET not in str(fatal.value)


async def test_market_events_cost_no_requests(live: Harness) -> None:
    book = BookSnapshot(0, "BTC-PERP", [(20_000.0, 1.0)], [(20_000.2, 1.0)])
    calls = len(live.server.calls)
    assert live.venue.on_market(book) == ()
    assert len(live.server.calls) == calls


async def test_keys_never_reach_the_logs(
    emulator: EmulatorServer,
    make_client: ClientFactory,
    instruments: InstrumentCatalog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    live = Harness(emulator, make_client, instruments, timeout_ms=250)
    await live.venue.start()
    emulator.inject(Fault("status", count=2))
    emulator.inject(Fault("rate_limit", method="GET", path="*", count=1))
    emulator.inject(Fault("accept_then_timeout", delay_s=1.0))
    await live.venue.submit(live.order())
    await live.venue.submit(live.order())
    with pytest.raises(OrderRejected):
        await live.venue.submit(live.order(Side.SELL, 0.01, symbol="ETH-PERP", reduce_only=True))
    await live.venue.poll(FAR_FUTURE)
    await live.venue.snapshot()
    await live.venue.stop()
    text = caplog.text
    assert "live venue" in text and "failed" in text  # the session did log its trouble
    assert API_KEY not in text and API_SECRET not in text
    assert "signature=" not in text or "signature=***" in text


async def test_fees_are_the_exchanges_commissions_not_the_estimate(
    emulator: EmulatorServer, make_client: ClientFactory
) -> None:
    """The instruments here estimate 1 bps; the exchange charges its own rates: the fills
    carry what the exchange charged (its account trades), to the cent."""
    cheap = {
        s: replace(i, maker_bps=0.1, taker_bps=1.0)
        for s, i in (await exchange_instruments(emulator, make_client, SYMBOLS)).items()
    }
    live = Harness(emulator, make_client, InstrumentCatalog(cheap.values()))
    await live.venue.start()
    taker = live.order(Side.BUY, 0.003)
    await live.venue.submit(taker)
    resting = live.order(Side.SELL, 0.002, limit=live.server.markets["BTCUSDT"].best_ask + 200)
    await live.venue.submit(resting)
    live.server.set_price("BTCUSDT", live.server.markets["BTCUSDT"].best_ask + 400)
    fills = await live.venue.poll(FAR_FUTURE)
    charged = {}
    for trade in emulator.state.trades:
        order = next(o for o in emulator.state.orders.values() if o.order_id == trade.order_id)
        charged[order.client_order_id] = charged.get(order.client_order_id, 0.0) + trade.commission
    assert {f.client_id: f.fee for f in fills} == pytest.approx(charged, abs=1e-9)
    assert {f.client_id for f in fills} == {taker.client_id, resting.client_id}
    assert fills[0].fee > fills[0].size * fills[0].price * 1e-4 * 1.5  # not the 1 bps estimate
