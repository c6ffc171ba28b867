"""Account, order and matching state of the emulated exchange (no I/O, no aiohttp).

Model (deliberately small, documented so tests know what to expect):
- One USDT wallet, one-way positions (positionSide BOTH), cross margin accounting for
  every symbol (``marginType`` is recorded and reported but isolated wallets are not
  modelled). No liquidation engine.
- Margin check (-2019): the exposure-increasing part of an order needs
  ``qty * price / leverage`` of available balance, where available = wallet +
  unrealized PnL - initial margin of positions - initial margin of open orders.
- reduceOnly (-2022): rejected when there is no position or the order would add to
  it; a reduce-only order larger than the position fills only the position size and
  the rest expires (status EXPIRED, executedQty < origQty). Resting reduce-only orders
  are re-checked when they would fill.
- Duplicate ``newClientOrderId`` is rejected (-4116) only while the earlier order is
  still OPEN, like Binance ("unique among open orders"): re-sending the id of a FILLED
  order creates a second order, so an idempotent client must query by
  origClientOrderId before re-sending.
- Market orders and crossing limit orders take liquidity from the synthetic book
  (walk-the-book average, taker fee); resting limit orders fill completely at their
  limit price (maker fee) once the opposite touch reaches them after step() or
  set_price().
Floats throughout (see markets.py for why); inputs are validated with Decimal.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from perps_bot.emulator.markets import QUOTE, PriceProcess

MAKER_FEE = 0.0002
TAKER_FEE = 0.0005
DEFAULT_LEVERAGE = 20
OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")
TIME_IN_FORCE = ("GTC", "IOC", "FOK", "GTX")
CLIENT_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:/_-")


class BinanceError(Exception):
    """An error answer in Binance's shape: HTTP ``status`` with {"code": code, "msg": msg}."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status


def mandatory(name: str) -> BinanceError:
    return BinanceError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


@dataclass(slots=True)
class EmuOrder:
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    price: float
    orig_qty: float
    reduce_only: bool
    time: int
    update_time: int
    executed_qty: float = 0.0
    cum_quote: float = 0.0
    status: str = "NEW"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> float:
        return self.orig_qty - self.executed_qty

    @property
    def avg_price(self) -> float:
        return self.cum_quote / self.executed_qty if self.executed_qty > 0 else 0.0


@dataclass(slots=True)
class EmuPosition:
    symbol: str
    amount: float = 0.0  # signed base quantity (one-way mode)
    entry_price: float = 0.0
    update_time: int = 0


@dataclass(slots=True)
class EmuTrade:
    trade_id: int
    order_id: int
    symbol: str
    side: str
    price: float
    qty: float
    commission: float
    realized_pnl: float
    maker: bool
    time: int


@dataclass(slots=True)
class EmuIncome:
    tran_id: int
    symbol: str
    income_type: str  # REALIZED_PNL | COMMISSION | FUNDING_FEE
    income: float
    time: int
    trade_id: str = ""


@dataclass(slots=True)
class FundingSettlement:
    symbol: str
    rate: float
    time: int
    mark_price: float


@dataclass
class EmulatorState:
    """Everything the emulated account holds; tests read it directly."""

    balances: dict[str, float]
    positions: dict[str, EmuPosition]
    leverage: dict[str, int]
    margin_type: dict[str, str]  # CROSSED | ISOLATED (recorded only)
    orders: dict[int, EmuOrder] = field(default_factory=dict)
    orders_by_client_id: dict[str, EmuOrder] = field(default_factory=dict)
    trades: list[EmuTrade] = field(default_factory=list)
    income: list[EmuIncome] = field(default_factory=list)
    funding_history: list[FundingSettlement] = field(default_factory=list)

    @property
    def open_orders(self) -> dict[int, EmuOrder]:
        return {oid: order for oid, order in self.orders.items() if order.is_open}

    @property
    def open_orders_by_client_id(self) -> dict[str, EmuOrder]:
        return {o.client_order_id: o for o in self.orders.values() if o.is_open}


class Engine:
    """Order entry, matching and accounting over the price processes."""

    def __init__(
        self,
        markets: Mapping[str, PriceProcess],
        initial_balance: float,
        clock: Callable[[], int],
    ) -> None:
        self.markets = markets
        self.clock = clock
        self.state = EmulatorState(
            balances={QUOTE: float(initial_balance)},
            positions={s: EmuPosition(s) for s in markets},
            leverage={s: min(DEFAULT_LEVERAGE, m.spec.max_leverage) for s, m in markets.items()},
            margin_type={s: "CROSSED" for s in markets},
        )
        self._next_order_id = 4_000_000_001
        self._next_trade_id = 100_000_001
        self._next_tran_id = 900_000_001
        self._next_client_seq = 1

    # --- lookups ----------------------------------------------------------------------

    def market(self, symbol: str | None) -> PriceProcess:
        if not symbol:
            raise mandatory("symbol")
        market = self.markets.get(symbol)
        if market is None:
            raise BinanceError(-1121, "Invalid symbol.")
        return market

    def find_order(self, params: Mapping[str, str], *, unknown_code: int) -> EmuOrder:
        order_id, client_id = params.get("orderId"), params.get("origClientOrderId")
        unknown = (
            BinanceError(-2011, "Unknown order sent.")
            if unknown_code == -2011
            else BinanceError(-2013, "Order does not exist.")
        )
        order: EmuOrder | None
        if order_id:
            try:
                order = self.state.orders.get(int(order_id))
            except ValueError:
                raise BinanceError(
                    -1100, "Illegal characters found in parameter 'orderId'."
                ) from None
        elif client_id:
            order = self.state.orders_by_client_id.get(client_id)
        else:
            raise BinanceError(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        symbol = params.get("symbol")
        if order is None or (symbol and order.symbol != symbol):
            raise unknown
        return order

    # --- account figures --------------------------------------------------------------

    @property
    def wallet(self) -> float:
        return self.state.balances[QUOTE]

    def unrealized(self, symbol: str) -> float:
        pos = self.state.positions[symbol]
        if pos.amount == 0:
            return 0.0
        return (self.markets[symbol].mark - pos.entry_price) * pos.amount

    def position_initial_margin(self, symbol: str) -> float:
        pos = self.state.positions[symbol]
        return abs(pos.amount) * self.markets[symbol].mark / self.state.leverage[symbol]

    def maint_margin(self, symbol: str) -> float:
        pos = self.state.positions[symbol]
        notional = abs(pos.amount) * self.markets[symbol].mark
        floor_tier = self.markets[symbol].spec.tiers[0]
        for tier in self.markets[symbol].spec.tiers:
            if notional >= tier[0]:
                floor_tier = tier
        return notional * floor_tier[1] - floor_tier[2]

    def order_initial_margin(self, symbol: str | None = None) -> float:
        return sum(
            o.remaining * o.price / self.state.leverage[o.symbol]
            for o in self.state.orders.values()
            if o.is_open and not o.reduce_only and (symbol is None or o.symbol == symbol)
        )

    def total_unrealized(self) -> float:
        return sum(self.unrealized(s) for s in self.markets)

    def total_position_margin(self) -> float:
        return sum(self.position_initial_margin(s) for s in self.markets)

    def available_balance(self) -> float:
        return (
            self.wallet
            + self.total_unrealized()
            - self.total_position_margin()
            - self.order_initial_margin()
        )

    # --- order entry ------------------------------------------------------------------

    def place_order(self, params: Mapping[str, str]) -> EmuOrder:
        market = self.market(params.get("symbol"))
        spec = market.spec
        side = (params.get("side") or "").upper()
        if side not in ("BUY", "SELL"):
            raise BinanceError(-1117, "Invalid side.") if side else mandatory("side")
        order_type = (params.get("type") or "").upper()
        if order_type not in ("LIMIT", "MARKET"):
            raise BinanceError(-1116, "Invalid orderType.") if order_type else mandatory("type")
        if (params.get("positionSide") or "BOTH").upper() != "BOTH":
            raise BinanceError(-4061, "Order's position side does not match user's setting.")
        qty_dec = self._decimal_param(params, "quantity")
        if qty_dec <= 0:
            raise BinanceError(-4003, "Quantity less than or equal to zero.")
        if qty_dec % spec.step != 0:
            raise BinanceError(-1111, "Precision is over the maximum defined for this asset.")
        if qty_dec < spec.min_qty:
            raise BinanceError(-4003, "Quantity less than or equal to zero.")
        max_qty = spec.market_max_qty if order_type == "MARKET" else spec.max_qty
        if qty_dec > max_qty:
            raise BinanceError(-4005, "Quantity greater than max quantity.")
        qty = float(qty_dec)
        price = 0.0
        time_in_force = ""
        if order_type == "LIMIT":
            price_dec = self._decimal_param(params, "price")
            if price_dec <= 0:
                raise BinanceError(-4001, "Price less than 0.")
            if price_dec % spec.tick != 0:
                raise BinanceError(-4014, "Price not increased by tick size.")
            price = float(price_dec)
            time_in_force = (params.get("timeInForce") or "").upper()
            if not time_in_force:
                raise mandatory("timeInForce")
            if time_in_force not in TIME_IN_FORCE:
                raise BinanceError(-1115, "Invalid timeInForce.")
        reduce_only = (params.get("reduceOnly") or "false").lower() == "true"
        client_id = params.get("newClientOrderId") or self._generated_client_id()
        if len(client_id) > 36 or not set(client_id) <= CLIENT_ID_CHARS:
            raise BinanceError(-4015, "Client order id is not valid.")
        if client_id in self.state.open_orders_by_client_id:
            raise BinanceError(-4116, "ClientOrderId is duplicated.")
        position = self.state.positions[market.spec.symbol].amount
        if reduce_only and (position == 0 or (position > 0) == (side == "BUY")):
            raise BinanceError(-2022, "ReduceOnly Order is rejected.")
        reference = price if order_type == "LIMIT" else self._taker_estimate(market, side, qty)
        if not reduce_only and Decimal(repr(reference)) * qty_dec < spec.min_notional:
            raise BinanceError(
                -4164,
                f"Order's notional must be no smaller than {spec.min_notional} "
                "(unless you choose reduce only).",
            )
        self._check_margin(market, side, qty, reference, reduce_only)
        crosses = order_type == "MARKET" or (
            price >= market.best_ask if side == "BUY" else price <= market.best_bid
        )
        if time_in_force == "GTX" and crosses:
            raise BinanceError(
                -5022,
                "Due to the order could not be executed as maker, the Post Only order will "
                "be rejected.",
            )
        now = self.clock()
        order = EmuOrder(
            order_id=self._next_order_id,
            client_order_id=client_id,
            symbol=spec.symbol,
            side=side,
            type=order_type,
            time_in_force=time_in_force,
            price=price,
            orig_qty=qty,
            reduce_only=reduce_only,
            time=now,
            update_time=now,
        )
        self._next_order_id += 1
        self.state.orders[order.order_id] = order
        self.state.orders_by_client_id[client_id] = order
        if crosses:
            self._take(order, market)
        return order

    def cancel_order(self, params: Mapping[str, str]) -> EmuOrder:
        self.market(params.get("symbol"))
        order = self.find_order(params, unknown_code=-2011)
        if not order.is_open:
            raise BinanceError(-2011, "Unknown order sent.")
        order.status = "CANCELED"
        order.update_time = self.clock()
        return order

    def cancel_all(self, symbol: str) -> None:
        now = self.clock()
        for order in self.state.orders.values():
            if order.is_open and order.symbol == symbol:
                order.status = "CANCELED"
                order.update_time = now

    def set_leverage(self, symbol: str, leverage: int) -> None:
        market = self.market(symbol)
        if not 1 <= leverage <= market.spec.max_leverage:
            raise BinanceError(-4028, f"Leverage {leverage} is not valid")
        self.state.leverage[symbol] = leverage

    def set_margin_type(self, symbol: str, margin_type: str) -> None:
        self.market(symbol)
        wanted = margin_type.upper()
        if wanted not in ("ISOLATED", "CROSSED"):
            raise BinanceError(-4044, "The margin type is invalid.")
        if self.state.margin_type[symbol] == wanted:
            raise BinanceError(-4046, "No need to change margin type.")
        if self.state.positions[symbol].amount != 0 or any(
            o.is_open and o.symbol == symbol for o in self.state.orders.values()
        ):
            raise BinanceError(-4048, "Margin type cannot be changed if there exists position.")
        self.state.margin_type[symbol] = wanted

    # --- matching ---------------------------------------------------------------------

    def match_resting(self, symbol: str) -> None:
        """Fill resting limit orders the moved touch has reached, in time priority."""
        market = self.markets[symbol]
        for order in list(self.state.orders.values()):
            if not order.is_open or order.symbol != symbol:
                continue
            reached = (
                market.best_ask <= order.price
                if order.side == "BUY"
                else market.best_bid >= order.price
            )
            if reached:
                qty = self._reduce_only_cap(order, order.remaining)
                if qty > 0:
                    self._fill(order, qty, order.price, maker=True)
                if order.is_open:  # reduce-only remainder the position no longer allows
                    order.status = "EXPIRED"

    def settle_funding(self) -> None:
        """Charge/pay funding on every open position at each symbol's current rate."""
        now = self.clock()
        for symbol, market in self.markets.items():
            rate, mark = market.funding_rate, market.mark
            self.state.funding_history.append(FundingSettlement(symbol, rate, now, mark))
            pos = self.state.positions[symbol]
            if pos.amount != 0:
                payment = -pos.amount * mark * rate
                self.state.balances[QUOTE] += payment
                self._income(symbol, "FUNDING_FEE", payment, now)

    def _take(self, order: EmuOrder, market: PriceProcess) -> None:
        limit = order.price if order.type == "LIMIT" else None
        wanted = self._reduce_only_cap(order, order.orig_qty)
        levels = market.walk(order.side, wanted, limit)
        fillable = sum(level.qty for level in levels)
        if order.time_in_force == "FOK" and fillable + 1e-12 < order.orig_qty:
            order.status = "EXPIRED"
            return
        for level in levels:
            self._fill(order, level.qty, level.price, maker=False)
        immediate = order.type == "MARKET" or order.time_in_force in ("IOC", "FOK")
        capped = order.reduce_only and wanted < order.orig_qty
        if order.is_open and (immediate or capped):
            order.status = "EXPIRED"  # the unfilled rest never rests

    def _reduce_only_cap(self, order: EmuOrder, qty: float) -> float:
        if not order.reduce_only:
            return qty
        position = self.state.positions[order.symbol].amount
        if position == 0 or (position > 0) == (order.side == "BUY"):
            return 0.0
        return min(qty, abs(position))

    def _fill(self, order: EmuOrder, qty: float, price: float, *, maker: bool) -> None:
        spec = self.markets[order.symbol].spec
        now = self.clock()
        realized = self._apply_to_position(order.symbol, order.side, qty, price, now)
        notional = qty * price
        commission = notional * (MAKER_FEE if maker else TAKER_FEE)
        self.state.balances[QUOTE] += realized - commission
        order.executed_qty = spec.round_qty(order.executed_qty + qty)
        order.cum_quote += notional
        order.update_time = now
        order.status = "FILLED" if order.executed_qty >= order.orig_qty else "PARTIALLY_FILLED"
        trade = EmuTrade(
            trade_id=self._next_trade_id,
            order_id=order.order_id,
            symbol=order.symbol,
            side=order.side,
            price=price,
            qty=qty,
            commission=commission,
            realized_pnl=realized,
            maker=maker,
            time=now,
        )
        self._next_trade_id += 1
        self.state.trades.append(trade)
        if realized != 0:
            self._income(order.symbol, "REALIZED_PNL", realized, now, str(trade.trade_id))
        self._income(order.symbol, "COMMISSION", -commission, now, str(trade.trade_id))
        self.markets[order.symbol].touch(now)

    def _apply_to_position(
        self, symbol: str, side: str, qty: float, price: float, now: int
    ) -> float:
        spec = self.markets[symbol].spec
        pos = self.state.positions[symbol]
        signed = qty if side == "BUY" else -qty
        realized = 0.0
        if pos.amount == 0 or (pos.amount > 0) == (signed > 0):
            new_amount = spec.round_qty(pos.amount + signed)
            pos.entry_price = (abs(pos.amount) * pos.entry_price + qty * price) / abs(new_amount)
        else:
            closing = min(qty, abs(pos.amount))
            realized = closing * (price - pos.entry_price) * (1.0 if pos.amount > 0 else -1.0)
            new_amount = spec.round_qty(pos.amount + signed)
            if new_amount == 0:
                pos.entry_price = 0.0
            elif (new_amount > 0) != (pos.amount > 0):
                pos.entry_price = price  # flipped: the remainder opened at this price
        pos.amount = new_amount
        pos.update_time = now
        return realized

    def _check_margin(
        self, market: PriceProcess, side: str, qty: float, price: float, reduce_only: bool
    ) -> None:
        if reduce_only:
            return
        position = self.state.positions[market.spec.symbol].amount
        opposite = position != 0 and (position > 0) != (side == "BUY")
        increasing = max(0.0, qty - abs(position)) if opposite else qty
        if increasing <= 0:
            return  # only reduces exposure: never blocked for margin
        required = increasing * price / self.state.leverage[market.spec.symbol]
        if required > self.available_balance() + 1e-9:
            raise BinanceError(-2019, "Margin is insufficient.")

    def _taker_estimate(self, market: PriceProcess, side: str, qty: float) -> float:
        levels = market.walk(side, qty, None)
        filled = sum(level.qty for level in levels)
        if filled <= 0:
            return market.last
        return sum(level.qty * level.price for level in levels) / filled

    def _generated_client_id(self) -> str:
        seq = self._next_client_seq
        self._next_client_seq += 1
        return f"emu{seq:020d}"

    def _income(self, symbol: str, kind: str, amount: float, now: int, trade_id: str = "") -> None:
        self.state.income.append(EmuIncome(self._next_tran_id, symbol, kind, amount, now, trade_id))
        self._next_tran_id += 1

    @staticmethod
    def _decimal_param(params: Mapping[str, str], name: str) -> Decimal:
        raw = params.get(name)
        if raw is None or raw == "":
            raise mandatory(name)
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'.") from None
        if not value.is_finite():
            raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'.")
        return value


def open_orders(state: EmulatorState, symbol: str | None) -> Iterable[EmuOrder]:
    return (
        o for o in state.orders.values() if o.is_open and (symbol is None or o.symbol == symbol)
    )
