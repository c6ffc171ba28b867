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

from perps_bot.domain import Instrument, Order, Side

#: whether a position of the symbol on the side has a stop and a take-profit level
Protects = Callable[[str, Side], tuple[bool, bool]]
#: whether the client id is one of the portfolio's protective orders
Manages = Callable[[str], bool]

EPS = 1e-12


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
