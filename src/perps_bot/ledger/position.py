"""Per-symbol ledger state: the exact Decimal books plus float caches for the hot path.

A `Position` keeps its size, entry notional (cost basis) and isolated margin as
Decimals, which are the truth. Everything `update_mark` touches on every market
event (size, cost, liquidation price, maintenance tier bracket) is mirrored as a
float by `refresh()`, called after each change to the Decimal state, so the
per-event path is a handful of float operations with no Decimal arithmetic.
"""

import math
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, InvalidOperation, Overflow

from perps_bot.domain.pickled import set_slots, slot_state
from perps_bot.margin import TierRow, liquidation_price_tiered, maintenance_tier

# 80 significant digits: a product of three float reprs (size * mark * rate, at most
# 17 digits each) is 51 digits, and sums of such products across the magnitudes a
# trading account sees (1e-30 .. 1e15) stay exact. Only divisions round (average
# entry, the cost share removed by a partial close, isolated margin = notional /
# leverage); each is rounded to QUANTUM and booked identically on both sides.
DECIMAL_CONTEXT = Context(
    prec=80,
    rounding=ROUND_HALF_EVEN,
    Emin=-999_999,
    Emax=999_999,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)
ZERO = Decimal(0)
# Quotients (the cost share a partial close removes, isolated margin = notional /
# leverage) are rounded to this fixed quantum, so that they have few digits and
# every later sum or difference involving them is exact at 80 digits.
QUANTUM = Decimal("1e-40")


def to_decimal(value: float) -> Decimal:
    """The shortest decimal that round-trips to `value` (what the float "means").

    `repr(float(...))` rather than `Decimal(value)`: the latter gives the binary
    expansion (0.1 -> 0.1000000000000000055511151231257827...), so fills of 0.1 and
    0.2 would not close a position of 0.3. float() first so numpy scalars work too.
    """
    return Decimal(repr(float(value)))


#: the Decimals of the values that recur (`to_decimal_kept`), at most `_KEPT_MOST`
_KEPT: dict[float, Decimal] = {}
_KEPT_MOST = 4_096


def to_decimal_kept(value: float) -> Decimal:
    """`to_decimal` of a value that recurs, computed once: a fill's size is one of a
    strategy's few order sizes, and the shortest repr costs about a third of a fill's
    Decimal booking. A Decimal is immutable, so the one kept is shared. Zeros are not
    kept (0.0 and -0.0 are one key, two Decimals)."""
    found = _KEPT.get(value)
    if found is None:
        found = to_decimal(value)
        if value and len(_KEPT) < _KEPT_MOST:
            _KEPT[value] = found
    return found


class SymbolBook:
    """Running totals per symbol, kept after the position closes (for the invariant).

    `cash` is the trade cash flow: -side * size * price summed over fills (buys pay).
    Identity checked by the ledger: realized == cash + sign * cost of the open position.
    """

    __slots__ = ("cash", "fees", "funding", "realized")

    def __init__(self) -> None:
        self.realized = ZERO
        self.fees = ZERO
        self.funding = ZERO
        self.cash = ZERO


_POSITION_SLOTS = (
    "abs_f",
    "amount",
    "band_high",
    "band_low",
    "cost",
    "entry_f",
    "leverage",
    "liq",
    "margin",
    "margin_f",
    "mark",
    "mm_high",
    "mm_low",
    "mmr",
    "mmr_max",
    "part",
    "sign",
    "size",
    "size_f",
    "symbol",
    "tiers",
)


class Position:
    """One open position (never flat: the ledger drops it when its size reaches 0)."""

    __slots__ = _POSITION_SLOTS

    def __reduce__(self) -> tuple[object, ...]:
        """A checkpoint pickles the ledger's positions (perps_bot.domain.pickled)."""
        args = (self.symbol, self.leverage, self.tiers, self.mark)
        return (Position, args, slot_state(self, _POSITION_SLOTS))

    def __setstate__(self, state: tuple[None, dict[str, object]]) -> None:
        set_slots(self, state)

    def __init__(self, symbol: str, leverage: float, tiers: Sequence[TierRow], mark: float) -> None:
        self.symbol = symbol
        self.leverage = leverage
        self.tiers = tuple(tiers)
        self.size = ZERO  # signed base quantity
        self.cost = ZERO  # entry notional of the open size (positive)
        self.margin = ZERO  # isolated margin (isolated mode only; 0 in cross)
        self.mark = mark
        self.size_f = 0.0
        self.abs_f = 0.0
        self.sign = 0.0
        self.entry_f = 0.0
        self.margin_f = 0.0
        self.liq = math.nan  # isolated liquidation price; unused (nan) in cross mode
        self.mm_low = math.inf  # maintenance bracket [mm_low, mm_high) of the cached tier
        self.mm_high = -math.inf
        self.mmr = 0.0
        self.amount = 0.0
        #: cross mode: unrealized PnL less maintenance margin at the last mark the
        #: ledger summed (Ledger._cross_margin_safe)
        self.part = 0.0
        #: cross mode with several positions: marks that cannot endanger the account
        #: (Ledger._cache_cross_bands); valid while the ledger's `_bands` is set
        self.band_low, self.band_high = math.inf, -math.inf
        #: the steepest maintenance rate of the tiers (the maintenance margin moves by at
        #: most this much per unit of notional)
        self.mmr_max = max(rate for _, rate, _ in self.tiers)

    def reopen(self, mark: float) -> "Position":
        """This position, just closed to zero by a fill that flips it, as the new empty one
        the rest of the fill opens (same symbol, leverage and tiers): only the Decimal
        truth and the mark are reset. The float mirrors are re-derived by `refresh()`,
        the tier bracket stays valid (it depends on the notional alone), and the cross
        caches (`part`, bands) are ignored until the ledger recounts them after the fill."""
        self.size = ZERO
        self.cost = ZERO
        self.margin = ZERO
        self.mark = mark
        return self

    @property
    def side(self) -> str:
        return "long" if self.size > 0 else "short"

    def refresh(self, isolated: bool) -> None:
        """Re-derive every float cache from the Decimal state (after a fill, funding,
        restore). Isolated mode also caches the liquidation price, which depends only
        on this position's own margin, size and entry. The maintenance tier bracket is
        kept: it is a function of the notional alone, so `maintenance` re-looks-up the
        tier only if the new notional has left it."""
        size = self.size
        self.mirror(float(size), size > 0, float(self.cost / abs(size)), isolated)

    def mirror(self, size_f: float, long: bool, entry_f: float, isolated: bool) -> None:
        """Set the float caches from the float size and entry, which the caller knows
        are the Decimal state's (`refresh`, or a fill that opens the position)."""
        self.size_f = size_f
        self.abs_f = abs(size_f)
        self.sign = 1.0 if long else -1.0
        self.entry_f = entry_f
        if isolated:  # cross mode books no isolated margin: margin_f stays 0.0
            self.margin_f = float(self.margin)
            self.liq = liquidation_price_tiered(
                self.side, self.abs_f, self.entry_f, self.margin_f, self.tiers
            )

    def maintenance(self, notional: float) -> float:
        """Maintenance margin at this absolute notional; re-looks-up the tier only when
        the notional leaves the cached bracket (rare), so the common case is 3 flops."""
        if not (self.mm_low <= notional < self.mm_high):
            self._retier(notional)
        return notional * self.mmr - self.amount

    def _retier(self, notional: float) -> None:
        self.mmr, self.amount = maintenance_tier(max(notional, self.tiers[0][0]), self.tiers)
        low, high = 0.0, math.inf
        for floor, _, _ in self.tiers:
            if floor <= notional:
                low = floor
            else:
                high = floor
                break
        self.mm_low, self.mm_high = low, high
