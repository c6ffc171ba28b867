"""The feed's public trades: overlapping REST answers and replayed stream caches add each
trade once, history from before the start is skipped, and a book takes what came since
the symbol's previous book."""

from perps_bot.domain import PublicTrade, Side
from perps_bot.feeds.trades import TradeTape


def row(ts: int, trade_id: int, price: float = 100.0, side: str = "sell") -> dict[str, object]:
    return {"timestamp": ts, "id": str(trade_id), "price": price, "amount": 0.5, "side": side}


def test_each_trade_once_in_order_and_none_from_before_the_start() -> None:
    tape = TradeTape(start_ms=1_000)
    assert tape.add("ETH-PERP", [row(900, 1), row(1_000, 2), row(1_001, 3, side="buy")])
    assert tape.add("ETH-PERP", [row(1_001, 3, side="buy"), row(1_001, 4), row(1_000, 2)])
    taken = tape.take("ETH-PERP")
    assert taken == (
        PublicTrade(1_000, 100.0, 0.5, Side.SELL),
        PublicTrade(1_001, 100.0, 0.5, Side.BUY),
        PublicTrade(1_001, 100.0, 0.5, Side.SELL),
    )
    assert tape.take("ETH-PERP") == ()
    assert tape.accepted == {"ETH-PERP": 3}


def test_malformed_rows_and_answers_are_skipped() -> None:
    tape = TradeTape(start_ms=0)
    assert not tape.add("ETH-PERP", "nope")
    assert tape.add("ETH-PERP", [{"timestamp": 5}, row(5, 1, price=-1.0), None, row(6, 2)])
    assert [t.ts for t in tape.take("ETH-PERP")] == [6]
