"""Contracts and base units at the live venue's edge (SPEC 8).

The bot sizes orders, fills and positions in base units (ETH). ccxt counts a contract
market's order amounts, executed quantities and trade amounts in contracts, each
`contractSize` base units (Binance USDM: 1, so nothing changes there). `ContractUnits`
is the ccxt client as the venue sees it: an order's size goes out as contracts, and
every order reply and trade comes back in base units, so the fills booked, the fees
estimated from them and the positions reconciled (`account.positions_of`, contracts
times the contract size) are one quantity. Any other attribute is the client's own.

Conversions go through Decimal from each float's shortest repr: an order on the
instrument's grid (whole steps of base units, a step being a contract step times the
contract size) is a whole number of contract steps, not that number less float noise.
"""

from decimal import Decimal, localcontext
from typing import Any

from perps_bot.venues.live.tracking import num

#: order reply fields that count contracts
_ORDER_AMOUNTS = ("amount", "filled", "remaining")


class ContractUnits:
    """A ccxt async client whose order and trade quantities are base units."""

    def __init__(self, exchange: Any) -> None:
        object.__setattr__(self, "_inner", exchange)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._inner, name, value)

    def per_contract(self, symbol: Any) -> float:
        """Base units per contract of the market `symbol` (1.0 when it does not say)."""
        markets = getattr(self._inner, "markets", None) or {}
        market = markets.get(symbol) if isinstance(symbol, str) else None
        size = num(market.get("contractSize")) if isinstance(market, dict) else None
        return size if size is not None and size > 0 else 1.0

    async def create_order(
        self, symbol: str, kind: str, side: str, amount: float, *args: Any
    ) -> Any:
        per = self.per_contract(symbol)
        contracts = amount if per == 1.0 else _scaled(amount, per, divide=True)
        reply = await self._inner.create_order(symbol, kind, side, contracts, *args)
        return _order(reply, per)

    async def fetch_order(self, order_id: Any, symbol: Any = None, *args: Any) -> Any:
        reply = await self._inner.fetch_order(order_id, symbol, *args)
        return _order(reply, self.per_contract(symbol))

    async def cancel_order(self, order_id: Any, symbol: Any = None, *args: Any) -> Any:
        reply = await self._inner.cancel_order(order_id, symbol, *args)
        return _order(reply, self.per_contract(symbol))

    async def fetch_open_orders(self, symbol: Any = None, *args: Any) -> Any:
        rows = await self._inner.fetch_open_orders(symbol, *args)
        return self._each(rows, _order)

    async def fetch_my_trades(self, symbol: Any = None, *args: Any) -> Any:
        rows = await self._inner.fetch_my_trades(symbol, *args)
        return self._each(rows, _trade)

    def _each(self, rows: Any, convert: Any) -> Any:
        if not isinstance(rows, list):
            return rows
        return [
            convert(row, self.per_contract(row.get("symbol"))) if isinstance(row, dict) else row
            for row in rows
        ]


def _order(reply: Any, per: float) -> Any:
    return _with_base(reply, per, _ORDER_AMOUNTS)


def _trade(trade: Any, per: float) -> Any:
    return _with_base(trade, per, ("amount",))


def _with_base(row: Any, per: float, fields: tuple[str, ...]) -> Any:
    """`row` with its readable contract quantities in base units (a copy); a value that
    cannot be read is left as it is, for the venue to refuse."""
    if per == 1.0 or not isinstance(row, dict):
        return row
    converted = dict(row)
    for name in fields:
        value = num(row.get(name))
        if value is not None:
            converted[name] = _scaled(value, per, divide=False)
    return converted


def _scaled(value: float, per: float, *, divide: bool) -> float:
    with localcontext() as context:
        context.prec = 40
        quantity, size = Decimal(repr(float(value))), Decimal(repr(float(per)))
        return float(quantity / size if divide else quantity * size)
