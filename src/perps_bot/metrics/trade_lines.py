"""A closed round trip as a run tells it while it runs: the payload live subscribers
(the session server, alerts) get, and the run log's TRADE CLOSED line; both in
trades.csv's terms, from the round trip the recorder's builder closed."""

from typing import Any

from perps_bot.metrics.formatting import duration_text
from perps_bot.metrics.trades import OpenTrade


def closed_trade_payload(trade: OpenTrade, close_ts: int, reason: str) -> dict[str, Any]:
    """A closed round trip for live subscribers, in trades.csv's terms (the report's
    `Trade`); what only the stored run can tell (trade id, R multiple, MAE, MFE) is not
    here."""
    return {
        "symbol": trade.symbol,
        "side": "long" if trade.direction > 0 else "short",
        "open_ts": trade.open_ts,
        "close_ts": close_ts,
        "size": trade.max_size,
        "entry_price": trade.entry_price,
        "exit_price": trade.exit_price,
        "gross_pnl": trade.gross,
        "fees": trade.fees,
        "funding": trade.funding,
        "net_pnl": trade.net_pnl,
        "exit_reason": reason,
    }


def trade_closed_text(
    head: str,
    symbol: str,
    side: str,
    size: float,
    entry: float,
    exit_price: float,
    net: float,
    ret: float | None,
    held_s: float,
    reason: str,
) -> str:
    """The run log's line for a closed round trip (the same trade as a trades.csv row);
    `head` is how the closing fill's FILL line starts (its time and portfolio tag, then a
    space), `ret` the return in percent (`return_pct`), `held_s` the seconds it was open."""
    return (
        f"{head}TRADE CLOSED {symbol} {side} size={size:.6g}"
        f" entry={entry:.6g} exit={exit_price:.6g} net PnL={net:.4f}"
        f" return={'n/a' if ret is None else f'{ret:+.3f}%'}"
        f" held={duration_text(held_s)} reason={reason}"
    )
