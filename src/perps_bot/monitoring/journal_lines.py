"""The journal's lines of every order and fill as recipes: a line's event fields are a
function of plain values (`BUILDERS[recipe](*args)`, its type `TYPES[recipe]`).

Why: a 500k-candle backtest journals about 125,000 of these lines (a signal, an order,
its updates, the fill and the closed round trip per flip, and the hourly equity), and
building each line's dict and serialising it cost its main thread about a tenth of its
instructions. `Journal.emit` takes the recipe and its values: written here, it builds
the dict and writes the line as `Journal.write` always did; while a backtest's lines
are written behind (monitoring.text_process), only the values go to the process, which
builds and writes the same line. The values are what the line holds (str, float, int,
bool, None and the `resized` note's dict): what `marshal` hands over as they are.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:  # the schema's module loads pydantic: not for the process writing lines
    from perps_bot.monitoring.journal_event import EventType

SIGNAL: Final = 0
ORDER: Final = 1
ORDER_UPDATE: Final = 2
FILL: Final = 3
LIQUIDATION: Final = 4
TRADE_CLOSED: Final = 5
EQUITY: Final = 6


def signal_data(symbol: str, side: str, size: float, reason: str) -> dict[str, Any]:
    return {"symbol": symbol, "side": side, "size": size, "reason": reason}


def order_data(
    client_id: str,
    symbol: str,
    side: str,
    size: float,
    order_type: str,
    price: float | None,
    reduce_only: bool,
    status: str,
    reason: str,
    resized: dict[str, Any] | None,
    latency_ms: float | None,
) -> dict[str, Any]:
    """An approved order as it goes to the venue; `resized`: why it is smaller than its
    signal (the risk gate's note), `latency_ms`: since its market event was received,
    written to 4 decimals (rounded here: `round` to digits costs about 3,000
    instructions, which the process writing the journal pays, not the run's loop)."""
    return {
        "client_id": client_id,
        "symbol": symbol,
        "side": side,
        "size": size,
        "order_type": order_type,
        "price": price,
        "reduce_only": reduce_only,
        "status": status,
        "reason": reason,
        "resized": resized,
        "latency_ms": None if latency_ms is None else round(latency_ms, 4),
    }


def order_update_data(
    client_id: str, symbol: str, status: str, filled: float, avg_price: float, reason: str
) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "symbol": symbol,
        "status": status,
        "filled": filled,
        "avg_price": avg_price,
        "reason": reason,
    }


def fill_data(
    client_id: str,
    symbol: str,
    side: str,
    size: float,
    price: float,
    fee: float,
    liquidity: str,
    realized_pnl: float,
    position_after: float,
    reason: str,
) -> dict[str, Any]:
    """A fill's line (a liquidation's too): also what the recorder's listeners are sent."""
    return {
        "client_id": client_id,
        "symbol": symbol,
        "side": side,
        "size": size,
        "price": price,
        "fee": fee,
        "liquidity": liquidity,
        "realized_pnl": realized_pnl,
        "position_after": position_after,
        "reason": reason,
    }


def trade_closed_data(
    symbol: str,
    side: str,
    size: float,
    entry_price: float,
    exit_price: float,
    net_pnl: float,
    return_pct: float | None,
    open_ts: int,
    reason: str,
) -> dict[str, Any]:
    """A closed round trip; `return_pct` None where the entry notional is not positive."""
    return {
        "symbol": symbol,
        "side": side,
        "size": size,
        "entry_price": entry_price,
        "exit_price": exit_price,
        "net_pnl": net_pnl,
        "return_pct": return_pct,
        "open_ts": open_ts,
        "reason": reason,
    }


def equity_data(equity: float, unrealized_pnl: float) -> dict[str, Any]:
    """Cash as equity less the unrealized PnL (the figures the line always showed)."""
    return {"equity": equity, "unrealized_pnl": unrealized_pnl, "cash": equity - unrealized_pnl}


#: by recipe: the line's event type, and the function of its values that is its data
TYPES: Final[tuple["EventType", ...]] = (
    "signal",
    "order",
    "order_update",
    "fill",
    "liquidation",
    "trade_closed",
    "equity",
)
BUILDERS: Final[tuple[Callable[..., dict[str, Any]], ...]] = (
    signal_data,
    order_data,
    order_update_data,
    fill_data,
    fill_data,
    trade_closed_data,
    equity_data,
)
