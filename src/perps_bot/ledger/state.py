"""The ledger's fields and their float mirror, shared by the parts of `Ledger`.

`Ledger` is one chain of classes, one link per job (fill booking, liquidation, restore,
the invariant check), so that each stays short enough to read; they all work on the
fields set up here. A chain, not mixins: the compiled hot path (mypyc) takes single
inheritance only. The Decimal totals are the truth and `_sync_floats` keeps the
float copies the per-event path reads; it is here because every part that changes a
total must call it (it also forgets the cross-margin caches that depended on them).
Inheritance, not delegation: the per-event path then pays no extra call.
"""

import math
from collections.abc import Mapping

from perps_bot.config.models import AccountConfig
from perps_bot.domain import Instrument, MarginMode
from perps_bot.instruments import builtin_instruments
from perps_bot.ledger.errors import LedgerError
from perps_bot.ledger.position import ZERO, Position, SymbolBook, to_decimal

_INF = math.inf


class LedgerState:
    """The books of one account (Decimal truth, float mirrors, cross-margin caches)."""

    def __init__(
        self,
        account: AccountConfig,
        instruments: Mapping[str, Instrument] | None = None,
        *,
        models_liquidation: bool = True,
        debug_invariants: bool = False,
    ) -> None:
        self._account = account
        self._leverages: dict[str, float] = {}  # symbol -> the config's leverage for it
        self._instruments = dict(instruments if instruments is not None else builtin_instruments())
        self._models_liquidation = models_liquidation
        self._isolated = account.margin_mode is MarginMode.ISOLATED
        self._liq_fee_rate = account.liquidation_fee_bps / 10_000.0
        self._cap_liq_fee = account.liquidation_fee_capped
        self._debug = debug_invariants
        self._positions: dict[str, Position] = {}
        self._marks: dict[str, float] = {}
        self._books: dict[str, SymbolBook] = {}
        self._liquidations = 0
        self._initial = to_decimal(account.initial_balance)
        self._wallet = self._initial
        self._realized = ZERO
        self._fees = ZERO
        self._funding = ZERO
        # Totals carried in by restore(), not attributable to any SymbolBook.
        self._base = (ZERO, ZERO, ZERO)
        self._wallet_f = self._realized_f = self._fees_f = self._funding_f = 0.0
        self._sync_floats()

    def _sync_floats(self, funding: bool = True, realized: bool = True) -> None:
        """Refresh the float copies of the Decimal totals (read per event by metrics);
        forget the cross safe band, which depended on them (see _cache_safe_band).
        `funding` or `realized` False: that total did not change (a Decimal's float
        goes through its string: a conversion saved per fill)."""
        self._band_symbol: str | None = None
        self._band_low, self._band_high = _INF, -_INF
        self._parts: float | None = None  # cross: the parts' sum is recounted
        self._bands = False  # cross, several positions: the positions' bands hold
        self._parts_updates = 0
        self._wallet_f = float(self._wallet)
        if realized:
            self._realized_f = float(self._realized)
        self._fees_f = float(self._fees)
        if funding:
            self._funding_f = float(self._funding)

    def leverage(self, symbol: str) -> float:
        """The account's leverage for `symbol`. Kept per symbol: the config is frozen,
        and its `leverage_for` runs interpreted even in the compiled hot path, three
        times a fill (the risk gate, the margin a position needs, a new position)."""
        leverage = self._leverages.get(symbol)
        if leverage is None:
            leverage = self._leverages[symbol] = self._account.leverage_for(symbol)
        return leverage

    def _new_position(self, symbol: str, mark: float) -> Position:
        instrument = self._instruments.get(symbol)
        if instrument is None:
            raise LedgerError(f"no instrument for {symbol}: the ledger cannot margin it")
        return Position(symbol, self.leverage(symbol), instrument.tiers, mark)

    # Defined by later links of the chain (`InvariantChecks`, `Ledger`); declared here so
    # every link can call them through self. Real methods, not TYPE_CHECKING stubs: the
    # compiled hot path (scripts/compile_hot_path.py) dispatches them through the
    # class's method table, which needs them declared on the base.

    def equity(self) -> float:
        raise NotImplementedError

    def check_invariant(self) -> None:
        raise NotImplementedError
