"""How many open stop and take-profit orders a portfolio's position of a symbol takes
(orchestrator.protection: each kind as several orders when the position is above the
exchange's largest market order), counted against the exchange's limit per symbol
(Binance's MAX_NUM_ALGO_ORDERS, `Instrument.max_algo_orders`; -4045 beyond it).

That limit is the account's: on one live account several portfolios trade a symbol on,
each portfolio's protective orders are its own (orchestrator.protection: `plain`), and
the exchange counts all of them. So an entry is checked with its own portfolio's
protection (its position and the entries of its own on their way) beside what every
other portfolio of the account takes (`protective_orders`), each portfolio counted by
the same rule from its own books and orders, and the open stops and take-profits of the
symbol no portfolio manages (`unmanaged`: placed by hand, which the bot leaves be).
"""

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from perps_bot.domain import Instrument, InstrumentRefusal, Order, PositionBook, Side

#: whether a position of the symbol on the side has a stop and a take-profit level
Protects = Callable[[str, Side], tuple[bool, bool]]
#: whether the client id is one of the portfolio's protective orders
Manages = Callable[[str], bool]

EPS = 1e-12


class Owner(Protocol):
    """A portfolio's side of the count (its OrderFlow)."""

    portfolio: str
    protected: Protects
    manages: Manages

    @property
    def ledger(self) -> PositionBook: ...
    @property
    def peers(self) -> Sequence["Owner"]: ...


def unprotected(symbol: str, side: Side) -> tuple[bool, bool]:
    """`Protects` of a portfolio without a Protector: no levels."""
    return False, False


def manages_none(client_id: str) -> bool:
    """`Manages` of a portfolio without a Protector: no protective orders."""
    return False


def protection_after(
    symbol: str, side: Side, held: float, mine: Iterable[Order], protects: Protects
) -> tuple[float, bool, bool]:
    """The portfolio's position of `symbol` on `side` once its orders on their way
    (`mine`: its own only, open at the venue or made at this event) fill, held now
    `held` (signed), and whether it is to have a stop and a take-profit: its levels
    already, or asked for by one of those entries. A size <= 0: no position there."""
    after = side.sign * held
    stop, take_profit = protects(symbol, side)
    for o in mine:
        if o.symbol != symbol or o.side is not side:
            continue
        if not o.order_type.is_trigger:  # stops protect a position, they do not move it
            after += o.remaining
        if not o.reduce_only:
            stop = stop or o.stop_loss is not None
            take_profit = take_profit or o.take_profit is not None
    return after, stop, take_profit


def protective_orders(
    instrument: Instrument, held: float, mine: Iterable[Order], protects: Protects
) -> int:
    """How many open stops and take-profits the portfolio's position of the instrument
    takes once its orders on their way `mine` fill (`protection_after`); of the two
    sides the larger (a position is on one, and its protection stays until a close on
    its way has filled)."""
    mine = list(mine)
    most = 0
    for side in (Side.BUY, Side.SELL):
        after, stop, take_profit = protection_after(instrument.symbol, side, held, mine, protects)
        if after > EPS:
            most = max(most, instrument.protective_orders(after, stop, take_profit))
    return most


def unmanaged(symbol: str, working: Iterable[Order], managers: Sequence[Manages]) -> int:
    """How many of the venue's open orders `working` are stops or take-profits of
    `symbol` that no portfolio's protection manages (`managers`: each portfolio's
    `Protector.manages`): placed by hand or by something else on the account, they
    stay (orchestrator.protection: `adopt`) and the exchange counts them too."""
    return sum(
        1
        for o in working
        if o.symbol == symbol
        and o.order_type.is_trigger
        and not any(manages(o.client_id) for manages in managers)
    )


def owned_orders(owner: Owner, instrument: Instrument, orders: Sequence[Order]) -> int:
    """`protective_orders` of the portfolio `owner` from its books and its own orders
    among `orders` (the venue's open ones and those made at this event)."""
    held = owner.ledger.position_size(instrument.symbol)
    mine = (o for o in orders if o.portfolio == owner.portfolio)
    return protective_orders(instrument, held, mine, owner.protected)


def beyond_limit(
    owner: Owner,
    instrument: Instrument,
    more: tuple[Side, float],
    protects: Protects,
    lists: Sequence[Sequence[Order]],
    asked: tuple[bool, bool] = (False, False),
) -> InstrumentRefusal | None:
    """Why the portfolio's position of the instrument on the side of `more` once its
    orders on their way and the size of `more` fill (`protection_after`; `protects`: the
    levels it has, `asked`: the stop and take-profit an entry asks for besides) takes
    more stops and take-profits than the exchange keeps open for the symbol beside the
    other portfolios' (`owner.peers`) and those no portfolio manages; None when it fits
    or there is no position there. `lists`: the venue's open orders first, then those
    made at this event."""
    side, size = more
    symbol = instrument.symbol
    orders = [o for found in lists for o in found]
    held = owner.ledger.position_size(symbol)
    mine = [o for o in orders if o.portfolio == owner.portfolio]
    after, stop, take_profit = protection_after(symbol, side, held, mine, protects)
    after += size
    if after <= 0:  # the position on the side: none when it only reduces
        return None
    stop, take_profit = stop or asked[0], take_profit or asked[1]
    others = sum(owned_orders(peer, instrument, orders) for peer in owner.peers)
    managers = [owner.manages, *(peer.manages for peer in owner.peers)]
    others += unmanaged(symbol, lists[0], managers)
    try:
        instrument.check_protection(after, stop, take_profit, others)
    except InstrumentRefusal as refusal:
        return refusal
    return None
