"""Request parameters: parsing and the stateless checks of a new order.

Kept apart from the engine so that what Binance refuses from the request alone
(wrong side, a quantity off the step, a price off the tick, a bad client id) is one
readable list, and the engine only decides what depends on the account.
Quantities and prices are checked as Decimal, so "0.0010" on a step of 0.001 passes
and "0.0015" does not, whatever float would say.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from perps_emulator.errors import BinanceError, illegal, mandatory
from perps_emulator.markets import PRICE_DOWN, PRICE_UP, SymbolSpec

Params = Mapping[str, str]
TIME_IN_FORCE = ("GTC", "IOC", "FOK", "GTX")
#: order types only the algo order endpoints take (Binance since late 2025)
CONDITIONAL_TYPES = ("STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                     "TRAILING_STOP_MARKET")  # fmt: skip
CLIENT_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:/_-")


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A new order that passed every check that does not depend on the account."""

    side: str
    type: str
    qty: Decimal
    price: float  # 0.0 for MARKET
    time_in_force: str  # "" for MARKET
    reduce_only: bool
    client_id: str | None  # None: the exchange generates one


def int_param(params: Params, name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise illegal(name) from None


def decimal_param(params: Params, name: str) -> Decimal:
    raw = params.get(name)
    if raw is None or raw == "":
        raise mandatory(name)
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise illegal(name) from None
    if not value.is_finite():
        raise illegal(name)
    return value


def parse_order(params: Params, spec: SymbolSpec) -> OrderRequest:
    """Binance's answers to a malformed or out-of-rules new order, in its check order."""
    side = (params.get("side") or "").upper()
    if side not in ("BUY", "SELL"):
        raise BinanceError(-1117, "Invalid side.") if side else mandatory("side")
    order_type = (params.get("type") or "").upper()
    if order_type in CONDITIONAL_TYPES:
        raise BinanceError(
            -4120,
            "Order type not supported for this endpoint. Please use the Algo Order API "
            "endpoints instead.",
        )
    if order_type not in ("LIMIT", "MARKET"):
        raise BinanceError(-1116, "Invalid orderType.") if order_type else mandatory("type")
    if (params.get("positionSide") or "BOTH").upper() != "BOTH":
        raise BinanceError(-4061, "Order's position side does not match user's setting.")
    qty = quantity_param(params, spec, spec.market_max_qty if order_type == "MARKET" else None)
    price = 0.0
    time_in_force = ""
    if order_type == "LIMIT":
        price = price_param(params, "price", spec)
        time_in_force = (params.get("timeInForce") or "").upper()
        if not time_in_force:
            raise mandatory("timeInForce")
        if time_in_force not in TIME_IN_FORCE:
            raise BinanceError(-1115, "Invalid timeInForce.")
    reduce_only = flag_param(params, "reduceOnly")
    client_id = client_id_param(params, "newClientOrderId")
    return OrderRequest(side, order_type, qty, price, time_in_force, reduce_only, client_id)


def quantity_param(params: Params, spec: SymbolSpec, max_qty: Decimal | None = None) -> Decimal:
    """`quantity`: positive, on the step, within the LOT_SIZE (or MARKET_LOT_SIZE) limits."""
    qty = decimal_param(params, "quantity")
    if qty <= 0:
        raise BinanceError(-4003, "Quantity less than or equal to zero.")
    if qty % spec.step != 0:
        raise BinanceError(-1111, "Precision is over the maximum defined for this asset.")
    if qty < spec.min_qty:
        raise BinanceError(-4003, "Quantity less than or equal to zero.")
    if qty > (spec.max_qty if max_qty is None else max_qty):
        raise BinanceError(-4005, "Quantity greater than max quantity.")
    return qty


def price_param(params: Params, name: str, spec: SymbolSpec) -> float:
    """A positive price on the tick (-4001, -4014)."""
    value = decimal_param(params, name)
    if value <= 0:
        raise BinanceError(-4001, "Price less than 0.")
    if value % spec.tick != 0:
        raise BinanceError(-4014, "Price not increased by tick size.")
    return float(value)


def flag_param(params: Params, name: str) -> bool:
    return (params.get(name) or "false").lower() == "true"


def client_id_param(params: Params, name: str) -> str | None:
    """A client-chosen id (at most 36 of Binance's characters, else -4015); None if unset."""
    client_id = params.get(name) or None
    if client_id is not None and (len(client_id) > 36 or not set(client_id) <= CLIENT_ID_CHARS):
        raise BinanceError(-4015, "Client order id is not valid.")
    return client_id


#: Binance's default receive window and its ceiling (ms)
DEFAULT_RECV_WINDOW_MS = 5_000
MAX_RECV_WINDOW_MS = 60_000


def check_recv_window(params: Params, now_ms: int) -> None:
    """Binance's timing rule for signed requests: processed only when
    timestamp < serverTime + 1000 and serverTime - timestamp <= recvWindow, else -1021.
    This is what makes a request that reaches the engine late harmless."""
    timestamp = int_param(params, "timestamp")
    if timestamp is None:
        raise mandatory("timestamp")
    window = int_param(params, "recvWindow") or DEFAULT_RECV_WINDOW_MS
    if not 0 < window <= MAX_RECV_WINDOW_MS:
        raise BinanceError(-1131, "recvWindow must be less than 60000")
    if timestamp >= now_ms + 1_000 or now_ms - timestamp > window:
        raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")


def check_price_band(mark: float, side: str, price: float) -> None:
    """Binance's PERCENT_PRICE filter of a limit order, around the mark price: a buy at
    most mark * multiplierUp (-4016), a sell at least mark * multiplierDown (-4024)."""
    at, around = Decimal(repr(price)), Decimal(repr(mark))
    if side == "BUY" and at > around * PRICE_UP:
        raise BinanceError(-4016, f"Limit price can't be higher than {around * PRICE_UP:f}.")
    if side == "SELL" and at < around * PRICE_DOWN:
        raise BinanceError(-4024, f"Limit price can't be lower than {around * PRICE_DOWN:f}.")
