"""The emulated exchange's liquidation engine (off unless switched on).

Why it exists: on a live venue the exchange liquidates and the bot only learns it by
reconciliation, so the bot's live path needs an exchange that really does it.

When on, it runs after every mark move (step(), set_price(), set_mark()) and after
funding, and closes what the marks have pushed past liquidation:
- Isolated position: when its isolated wallet plus unrealized PnL is at or below its
  maintenance margin (account.py has the figures and the liquidation price).
- Cross positions: when the cross wallet plus every cross position's unrealized PnL
  is at or below their total maintenance margin, cross positions are closed one at a
  time, the one whose mark moved first, until the rest is safe again (in practice all
  of them: the clearance fee exceeds what is left). Binance closes large positions in
  steps; the emulator always closes a position whole.

The close price is the liquidation price (snapped to the tick) when the mark crossed
it in this move, even if it gapped past; it is the mark when the position was already
past it before the move (after funding, say). Each close, like Binance:
1. cancels the symbol's open orders;
2. books a FILLED MARKET order with clientOrderId ``autoclose-<ms><6-digit seq>``
   (visible in allOrders and forceOrders) and its trade (userTrades) at a taker fee,
   with REALIZED_PNL and COMMISSION income rows;
3. charges the clearance fee, ``liquidation_fee`` (instruments.py) times the closed
   notional, capped at what is left of the margin that backed the position (isolated:
   its wallet plus realized PnL less commission; cross: the cross margin balance
   after the close), as an INSURANCE_CLEAR income row. Loss beyond the margin is not
   covered by an insurance fund: it stays in the wallet.
"""

from collections.abc import Callable, Mapping

from perps_emulator.engine import Engine
from perps_emulator.markets import QUOTE

Marks = Mapping[str, float]


class Liquidator:
    """Finds and closes positions past their liquidation price."""

    def __init__(self, engine: Engine, clock: Callable[[], int], *, enabled: bool) -> None:
        self.engine = engine
        self.clock = clock
        self.enabled = enabled
        self._seq = 0

    def marks(self) -> dict[str, float]:
        """The current marks, to pass to check() after the next move."""
        return {s: m.mark for s, m in self.engine.markets.items()}

    def check(self, before: Marks | None = None) -> list[str]:
        """Liquidate what the move from the ``before`` marks pushed past liquidation.

        Without ``before`` (funding), every position past it closes at the mark.
        Returns the symbols liquidated, in order.
        """
        if not self.enabled:
            return []
        account, state = self.engine.account, self.engine.state
        closed: list[str] = []
        for symbol in self.engine.markets:
            if state.isolated(symbol) and self._unsafe(symbol):
                self._liquidate(symbol, before)
                closed.append(symbol)
        while True:
            cross = [s for s in account.cross_symbols() if state.positions[s].amount != 0]
            if not cross or not self._unsafe(cross[0]):
                return closed
            crossed = [s for s in cross if self._crossed(s, before)]
            symbol = (crossed or cross)[0]
            self._liquidate(symbol, before)
            closed.append(symbol)

    # --- internals --------------------------------------------------------------------

    def _unsafe(self, symbol: str) -> bool:
        account = self.engine.account
        return account.margin_balance(symbol) <= account.maintenance_backed(symbol)

    def _crossed(self, symbol: str, before: Marks | None) -> bool:
        """True when the mark was on the safe side of liquidation before this move."""
        previous = before.get(symbol) if before is not None else None
        return previous is not None and self.engine.account.excess_at(symbol, previous) > 0

    def _close_price(self, symbol: str, before: Marks | None) -> float:
        market = self.engine.markets[symbol]
        price = self.engine.account.liquidation_price(symbol)
        if price > 0 and self._crossed(symbol, before):
            return market.spec.round_price(price)
        return market.mark

    def _liquidate(self, symbol: str, before: Marks | None) -> None:
        engine, state = self.engine, self.engine.state
        price = self._close_price(symbol, before)
        engine.cancel_all(symbol)
        pos = state.positions[symbol]
        isolated = state.isolated(symbol)
        margin = pos.isolated_margin
        qty = abs(pos.amount)
        now = self.clock()
        self._seq += 1
        order = engine.record_order(
            f"autoclose-{now}{self._seq:06d}",
            symbol,
            "SELL" if pos.amount > 0 else "BUY",
            "MARKET",
            "IOC",
            0.0,
            qty,
            False,
        )
        order.auto_close = "LIQUIDATION"
        trade = engine.fill(order, qty, price, maker=False)
        if isolated:
            left = margin + trade.realized_pnl - trade.commission
        else:
            account = engine.account
            left = account.cross_wallet + account.cross_unrealized()
        rate = engine.markets[symbol].spec.liquidation_fee
        fee = min(rate * qty * price, max(0.0, left))
        if fee > 0:
            state.balances[QUOTE] -= fee
            engine.income(symbol, "INSURANCE_CLEAR", -fee, now, str(trade.trade_id))
