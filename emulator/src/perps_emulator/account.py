"""Margin figures of the emulated account, and the liquidation price they imply.

Read-only: everything here is computed from the state and the current marks, so the
REST answers (account, balance, positionRisk), the margin check on new orders and the
liquidator all see the same numbers.

Binance USDM, one-way mode:
- Isolated positions have their own wallet (``EmuPosition.isolated_margin``); their
  unrealized PnL and margin stay out of the cross figures.
- ``available = cross wallet + cross unrealized - cross position margin - open order
  margin``, where position margin is ``mark notional / leverage``.
- Maintenance margin of a position: ``notional * mmr - cum`` of the last tier whose
  floor <= notional (mark notional), from the emulator's own instrument data.
- Liquidation price, s = +1 long / -1 short, Q = size, EP = entry:
  ``LP = (WB - TMM_other + UPNL_other + cum - s*Q*EP) / (Q*mmr - s*Q)``, with WB the
  isolated wallet (others' terms 0) or the cross wallet (others = the other cross
  positions). mmr and cum come from the tier that holds the notional AT LP: margin
  balance minus maintenance, f(P), is continuous and monotone in P (increasing for a
  long, decreasing for a short) for tables whose cum makes maintenance continuous, so
  the tier is found by evaluating f at the tier floors and then solved in that tier.
"""

from collections.abc import Mapping, Sequence

from perps_emulator.instruments import Tier
from perps_emulator.markets import QUOTE, PriceProcess
from perps_emulator.state import EmulatorState


def maintenance(notional: float, tiers: Sequence[Tier]) -> float:
    """Maintenance margin of an absolute ``notional`` under ``tiers``."""
    floor_tier = tiers[0]
    for tier in tiers:
        if notional >= tier[0]:
            floor_tier = tier
    return notional * floor_tier[1] - floor_tier[2]


def excess(
    sign: int, qty: float, entry: float, base: float, tiers: Sequence[Tier], price: float
) -> float:
    """Margin balance minus maintenance margin if the position's mark were ``price``.

    ``base`` is WB - TMM_other + UPNL_other; the position is liquidated where this is <= 0.
    """
    return base + sign * qty * (price - entry) - maintenance(qty * price, tiers)


def liquidation_price(
    sign: int, qty: float, entry: float, base: float, tiers: Sequence[Tier]
) -> float:
    """Price at which margin balance equals maintenance margin; 0.0 when there is none
    (a long whose margin covers a fall to zero, or a short bankrupt at every price)."""
    if qty <= 0:
        return 0.0
    at_zero = base - sign * qty * entry
    if (sign > 0 and at_zero >= 0) or (sign < 0 and at_zero <= 0):
        return 0.0
    index = 0  # the last tier whose floor price is still on the liquidated side of LP
    for i in range(1, len(tiers)):
        value = excess(sign, qty, entry, base, tiers, tiers[i][0] / qty)
        if (value <= 0) if sign > 0 else (value > 0):
            index = i
        else:
            break
    floor, mmr, cum = tiers[index]
    price = (base + cum - sign * qty * entry) / (qty * mmr - sign * qty)
    low = floor / qty if index > 0 else 0.0
    high = tiers[index + 1][0] / qty if index + 1 < len(tiers) else price
    return max(low, min(price, high))  # guards float noise at a tier floor


class Account:
    """Figures of the account at the current marks (read-only over the state)."""

    def __init__(self, state: EmulatorState, markets: Mapping[str, PriceProcess]) -> None:
        self.state = state
        self.markets = markets

    @property
    def wallet(self) -> float:
        return self.state.balances[QUOTE]

    def isolated_wallet(self, symbol: str) -> float:
        return self.state.positions[symbol].isolated_margin if self.state.isolated(symbol) else 0.0

    @property
    def cross_wallet(self) -> float:
        return self.wallet - sum(self.isolated_wallet(s) for s in self.markets)

    def cross_symbols(self) -> list[str]:
        return [s for s in self.markets if not self.state.isolated(s)]

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
        market = self.markets[symbol]
        return maintenance(abs(pos.amount) * market.mark, market.spec.tiers)

    def order_initial_margin(self, symbol: str | None = None) -> float:
        return sum(
            o.remaining * o.price / self.state.leverage[o.symbol]
            for o in self.state.orders.values()
            if o.is_open and not o.reduce_only and (symbol is None or o.symbol == symbol)
        )

    def total_unrealized(self) -> float:
        return sum(self.unrealized(s) for s in self.markets)

    def cross_unrealized(self) -> float:
        return sum(self.unrealized(s) for s in self.cross_symbols())

    def total_position_margin(self) -> float:
        return sum(self.position_initial_margin(s) for s in self.markets)

    def available_balance(self) -> float:
        cross = self.cross_symbols()
        return (
            self.cross_wallet
            + sum(self.unrealized(s) for s in cross)
            - sum(self.position_initial_margin(s) for s in cross)
            - self.order_initial_margin()
        )

    # --- liquidation ------------------------------------------------------------------

    def liquidation_base(self, symbol: str) -> float:
        """WB - TMM_other + UPNL_other of the position in ``symbol``."""
        if self.state.isolated(symbol):
            return self.state.positions[symbol].isolated_margin
        others = [s for s in self.cross_symbols() if s != symbol]
        return (
            self.cross_wallet
            - sum(self.maint_margin(s) for s in others)
            + sum(self.unrealized(s) for s in others)
        )

    def excess_at(self, symbol: str, price: float) -> float:
        """Margin balance minus maintenance margin with ``symbol``'s mark at ``price``."""
        pos = self.state.positions[symbol]
        sign = 1 if pos.amount > 0 else -1
        return excess(
            sign,
            abs(pos.amount),
            pos.entry_price,
            self.liquidation_base(symbol),
            self.markets[symbol].spec.tiers,
            price,
        )

    def liquidation_price(self, symbol: str) -> float:
        """The position's liquidation price now; 0.0 without a position or without one."""
        pos = self.state.positions[symbol]
        if pos.amount == 0:
            return 0.0
        return liquidation_price(
            1 if pos.amount > 0 else -1,
            abs(pos.amount),
            pos.entry_price,
            self.liquidation_base(symbol),
            self.markets[symbol].spec.tiers,
        )

    def margin_balance(self, symbol: str) -> float:
        """What backs ``symbol``'s position: its isolated wallet plus its unrealized PnL,
        or the cross wallet plus every cross position's unrealized PnL."""
        if self.state.isolated(symbol):
            return self.state.positions[symbol].isolated_margin + self.unrealized(symbol)
        return self.cross_wallet + self.cross_unrealized()

    def maintenance_backed(self, symbol: str) -> float:
        """Maintenance margin that ``margin_balance(symbol)`` must cover."""
        if self.state.isolated(symbol):
            return self.maint_margin(symbol)
        return sum(self.maint_margin(s) for s in self.cross_symbols())
