"""Order entry, matching and accounting of the emulated exchange (no I/O, no aiohttp).

Model (deliberately small, documented so tests know what to expect):
- One USDT wallet, one-way positions (positionSide BOTH). Margin type CROSSED or
  ISOLATED per symbol: an isolated position keeps its own wallet (notional / leverage
  posted by each opening fill, released pro rata by closes, funding charged to it);
  fees and realized PnL go to the wallet outside it. Figures: account.py.
- Liquidation only when switched on (liquidation.py); off by default.
- Margin check (-2019): the exposure-increasing part of an order needs
  ``qty * price / leverage`` of available balance (account.py).
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

import math
from collections.abc import Callable, Mapping
from decimal import Decimal

from perps_emulator.account import Account
from perps_emulator.errors import BinanceError, illegal, mandatory
from perps_emulator.flow import Microstructure
from perps_emulator.markets import QUOTE, PriceProcess
from perps_emulator.params import check_price_band, parse_order
from perps_emulator.state import (
    DEFAULT_LEVERAGE,
    MAKER_FEE,
    TAKER_FEE,
    EmuIncome,
    EmulatorState,
    EmuOrder,
    EmuPosition,
    EmuTrade,
    FundingSettlement,
)


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
        self.account = Account(self.state, markets)
        #: the public trade tape, and other participants when the server asks for them
        self.flow = Microstructure(dict(markets), 0, active=False)
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
                raise illegal("orderId") from None
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

    # --- order entry ------------------------------------------------------------------

    def place_order(self, params: Mapping[str, str]) -> EmuOrder:
        market = self.market(params.get("symbol"))
        spec = market.spec
        request = parse_order(params, spec)
        side, order_type, price = request.side, request.type, request.price
        time_in_force, reduce_only = request.time_in_force, request.reduce_only
        qty_dec, qty = request.qty, float(request.qty)
        client_id = request.client_id or self._generated_client_id()
        if client_id in self.state.open_orders_by_client_id:
            raise BinanceError(-4116, "ClientOrderId is duplicated.")
        position = self.state.positions[market.spec.symbol].amount
        if reduce_only and (position == 0 or (position > 0) == (side == "BUY")):
            raise BinanceError(-2022, "ReduceOnly Order is rejected.")
        if order_type == "LIMIT":
            check_price_band(market.mark, side, price)
        reference = price if order_type == "LIMIT" else self._taker_estimate(market, side, qty)
        # MIN_NOTIONAL: "Since MARKET orders have no price, the mark price is used"
        at = price if order_type == "LIMIT" else market.mark
        if not reduce_only and Decimal(repr(at)) * qty_dec < spec.min_notional:
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
        order = self.record_order(
            client_id, spec.symbol, side, order_type, time_in_force, price, qty, reduce_only
        )
        if crosses:
            self.take(order, market)
        if order.is_open:
            self.flow.join(order.order_id, spec.symbol, side == "BUY", price)
        return order

    def record_order(
        self,
        client_id: str,
        symbol: str,
        side: str,
        order_type: str,
        time_in_force: str,
        price: float,
        qty: float,
        reduce_only: bool,
    ) -> EmuOrder:
        """A new order with the next id, registered by id and client id (not yet filled)."""
        now = self.clock()
        order = EmuOrder(
            order_id=self._next_order_id,
            client_order_id=client_id,
            symbol=symbol,
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
                    self.fill(order, qty, order.price, maker=True)
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
                if self.state.isolated(symbol):
                    pos.isolated_margin += payment
                self.income(symbol, "FUNDING_FEE", payment, now)

    def take(self, order: EmuOrder, market: PriceProcess) -> None:
        limit = order.price if order.type == "LIMIT" else None
        wanted = self._reduce_only_cap(order, order.orig_qty)
        levels = market.walk(order.side, wanted, limit)
        fillable = sum(level.qty for level in levels)
        if order.time_in_force == "FOK" and fillable + 1e-12 < order.orig_qty:
            order.status = "EXPIRED"
            return
        for level in levels:
            self.fill(order, level.qty, level.price, maker=False)
            self.flow.consume(order.symbol, order.side == "SELL", level.price, level.qty)
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

    def others_trade(self, symbol: str, now: int) -> None:
        """Other participants act on `symbol` (flow.py); our resting orders keep their
        place in the queue and fill as trades reach them."""
        resting = [
            (o.order_id, o.side == "BUY", o.price)
            for o in self.state.orders.values()
            if o.is_open and o.symbol == symbol and o.type == "LIMIT"
        ]
        if resting or self.flow.active:
            self.flow.step(symbol, now, self._queue_fill, resting)

    def _queue_fill(self, order_id: int, qty: float, price: float) -> float:
        order = self.state.orders[order_id]
        spec = self.markets[order.symbol].spec
        step = float(spec.step)
        wanted = self._reduce_only_cap(order, min(qty, order.remaining))
        wanted = spec.round_qty(math.floor(wanted / step + 1e-9) * step)
        if not order.is_open or wanted <= 0:
            return 0.0
        self.fill(order, wanted, price, maker=True, publish=False)
        return wanted

    def fill(
        self, order: EmuOrder, qty: float, price: float, *, maker: bool, publish: bool = True
    ) -> EmuTrade:
        """Book one execution: position, wallet, order progress, trade and income rows;
        `publish`: also on the public trade tape (a queue fill is already part of the
        other participant's trade that caused it)."""
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
            self.income(order.symbol, "REALIZED_PNL", realized, now, str(trade.trade_id))
        self.income(order.symbol, "COMMISSION", -commission, now, str(trade.trade_id))
        if publish:
            buyer_maker = (order.side == "BUY") == maker
            self.flow.record(order.symbol, price, spec.round_qty(qty), now, buyer_maker)
        self.markets[order.symbol].touch(now)
        return trade

    def _apply_to_position(
        self, symbol: str, side: str, qty: float, price: float, now: int
    ) -> float:
        """Move the position by one execution; returns the realized price PnL.

        Isolated: the opening part posts ``qty * price / leverage`` to the position's
        wallet and the closing part releases the same share of it that it closes.
        """
        spec = self.markets[symbol].spec
        pos = self.state.positions[symbol]
        signed = qty if side == "BUY" else -qty
        realized = 0.0
        opened = qty
        if pos.amount == 0 or (pos.amount > 0) == (signed > 0):
            new_amount = spec.round_qty(pos.amount + signed)
            pos.entry_price = (abs(pos.amount) * pos.entry_price + qty * price) / abs(new_amount)
        else:
            closing = min(qty, abs(pos.amount))
            opened = qty - closing
            realized = closing * (price - pos.entry_price) * (1.0 if pos.amount > 0 else -1.0)
            pos.isolated_margin -= pos.isolated_margin * closing / abs(pos.amount)
            new_amount = spec.round_qty(pos.amount + signed)
            if new_amount == 0:
                pos.entry_price = 0.0
                pos.isolated_margin = 0.0
            elif (new_amount > 0) != (pos.amount > 0):
                pos.entry_price = price  # flipped: the remainder opened at this price
        if self.state.isolated(symbol) and opened > 0 and new_amount != 0:
            pos.isolated_margin += opened * price / self.state.leverage[symbol]
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
        if required > self.account.available_balance() + 1e-9:
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

    def income(self, symbol: str, kind: str, amount: float, now: int, trade_id: str = "") -> None:
        """Append an income row (GET /fapi/v1/income) with the next transaction id."""
        self.state.income.append(EmuIncome(self._next_tran_id, symbol, kind, amount, now, trade_id))
        self._next_tran_id += 1
