"""A position above the exchange's largest market order is protected by several stops
and take-profits within it (orchestrator.protection, Instrument.pieces); those pieces
cover the position together, and a sync that finds them working leaves them alone."""

from perps_bot.domain import Instrument, OrderType
from perps_bot.orchestrator.protection import Protector

ETH = Instrument("ETH-PERP", "ETH/USDT:USDT", 0.01, 0.001, 0.001, 20.0, ((0.0, 0.005, 0.0),),
                 2.0, 5.0, max_quantity=10_000.0, max_market_quantity=2_000.0)  # fmt: skip


class Book:
    def __init__(self, held: float) -> None:
        self.held = held

    def position_size(self, symbol: str) -> float:
        return self.held


def test_pieces_that_add_up_to_the_position_cover_it_whatever_the_float_sum() -> None:
    """12000.59 ETH long: seven pieces of each kind (1714.37 each), whose float sum is
    12000.589999999997. The pieces were taken for too small (an absolute 1e-12
    tolerance), so every fill and every reconciliation cancelled the six working orders
    and placed six new ones (the position unprotected in between on a live venue)."""
    seq = iter(range(1, 100))
    protector = Protector("main", Book(12_000.59), {"ETH-PERP": ETH}, lambda: f"pb{next(seq)}")
    assert protector.relevel("ETH-PERP", 12_000.59, 2_500.0, 3_500.0)
    assert protector.sync("ETH-PERP", 1)
    placed, protector.to_place = protector.to_place, []
    for order in placed:
        protector.placed(order)
    stops = [o.size for o in placed if o.order_type is OrderType.STOP_MARKET]
    assert len(stops) == 7 and max(stops) <= 2_000.0
    assert sum(stops) < 12_000.59  # the float sum of the pieces, a hair short
    assert not protector.sync("ETH-PERP", 2), (protector.to_place, protector.to_cancel)
    assert protector.to_cancel == [] and protector.to_place == []


def test_a_plain_stop_larger_than_the_position_is_replaced() -> None:
    """On an account the portfolios share (Protector.plain) the stop goes out plain, so
    a stop of the 2 once held, left working after a close to 1, would sell 2 and open a
    short when it triggered; it is replaced by one of the size held. Reduce-only, the
    larger stop still covers (the exchange cuts it to the position)."""
    for plain, replaced in ((frozenset({"ETH-PERP"}), True), (frozenset[str](), False)):
        ids = (f"pb{n}" for n in range(1, 100))
        book = Book(2.0)
        protector = Protector("one", book, {"ETH-PERP": ETH}, ids.__next__)
        protector.plain = plain
        assert protector.relevel("ETH-PERP", 2.0, 2_500.0, None)
        assert protector.sync("ETH-PERP", 1)
        placed, protector.to_place = protector.to_place, []
        assert [(o.size, o.reduce_only) for o in placed] == [(2.0, not plain)]
        protector.placed(placed[0])
        book.held = 1.0
        assert protector.sync("ETH-PERP", 2) is replaced
        if replaced:
            assert protector.to_cancel == [placed[0].client_id]
            assert [(o.size, o.reduce_only) for o in protector.to_place] == [(1.0, False)]
