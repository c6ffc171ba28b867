"""Other participants (flow.py): levels that change by adds, cancels and trades, a public
trade tape, queue priority for our resting orders and partial fills, deterministic by
seed; the plain emulator's book is untouched when the option is off."""

from typing import Any

from perps_emulator import EmulatorServer

SYMBOL = "ETHUSDT"


def make(seed: int = 5, *, microstructure: bool = True) -> EmulatorServer:
    return EmulatorServer(
        symbols=(SYMBOL,),
        seed=seed,
        initial_balance=1e7,
        clock=lambda: 1_700_000_000_000,
        microstructure=microstructure,
    )


def call(server: EmulatorServer, method: str, path: str, **params: str) -> Any:
    return server.api.routes[(method, path)].handler(params)


def book(server: EmulatorServer) -> tuple[list[list[str]], list[list[str]]]:
    answer = call(server, "GET", "/fapi/v1/depth", symbol=SYMBOL, limit="20")
    return answer["bids"], answer["asks"]


def test_the_market_is_the_same_for_the_same_seed_and_differs_for_another() -> None:
    a, b, c = make(5), make(5), make(6)
    for server in (a, b, c):
        server.step(200)
    assert book(a) == book(b)
    assert call(a, "GET", "/fapi/v1/trades", symbol=SYMBOL) == call(
        b, "GET", "/fapi/v1/trades", symbol=SYMBOL
    )
    assert call(a, "GET", "/fapi/v1/trades", symbol=SYMBOL) != call(
        c, "GET", "/fapi/v1/trades", symbol=SYMBOL
    )


def test_levels_change_without_the_price_moving_and_trades_are_published() -> None:
    server = make()
    flat = make(microstructure=False)
    assert len({q for _, q in book(flat)[0][:1]}) == 1
    seen = set()
    for _ in range(50):
        server.engine.others_trade(SYMBOL, 0)  # others act; the price stays
        seen.add(tuple(q for _, q in book(server)[0][:3]))
    assert len(seen) > 30  # sizes at fixed prices come and go
    trades = call(server, "GET", "/fapi/v1/trades", symbol=SYMBOL, limit="1000")
    assert len(trades) > 30
    assert {t["isBuyerMaker"] for t in trades} == {True, False}
    agg = call(server, "GET", "/fapi/v1/aggTrades", symbol=SYMBOL, limit="5")
    assert [a["a"] for a in agg] == [t["id"] for t in trades[-5:]]
    # without the option the book is markets.py's function of the price, as before
    flat.step(50)
    market = flat.markets[SYMBOL]
    spec = market.spec
    assert [q for _, q in book(flat)[0]] == [spec.fmt_qty(market.level_qty(i)) for i in range(20)]
    assert call(flat, "GET", "/fapi/v1/trades", symbol=SYMBOL) == []


def test_a_resting_order_waits_behind_the_queue_and_fills_partially() -> None:
    server = make(seed=11)
    market = server.markets[SYMBOL]
    market.set_price(3000.0, 0)
    bid = market.best_bid
    shown = float(book(server)[0][0][1])
    order = server.engine.place_order(
        {
            "symbol": SYMBOL,
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "30",
            "price": f"{bid:.2f}",
        }
    )
    assert server.engine.flow.ahead[order.order_id] == shown
    statuses, traded_at_bid = [], 0.0
    for _ in range(400):
        before = len(server.engine.flow.trades[SYMBOL])
        server.engine.others_trade(SYMBOL, 0)  # others act; the price stays
        new = list(server.engine.flow.trades[SYMBOL])[before:]
        traded_at_bid += sum(t.qty for t in new if t.price == bid and t.buyer_maker)
        statuses.append((order.status, order.executed_qty, traded_at_bid))
        if order.status == "FILLED":
            break
    first_fill = next(s for s in statuses if s[1] > 0)
    assert first_fill[0] == "PARTIALLY_FILLED"
    assert first_fill[2] > 0  # a trade at our price reached us ...
    assert any(s[2] > 0 and s[1] == 0 for s in statuses)  # ... after others ahead were served
    assert order.status == "FILLED"
    trades = [t for t in server.state.trades if t.order_id == order.order_id]
    assert len(trades) > 1 and all(t.maker for t in trades)
