"""A closed round trip as a run tells it while it runs: the payload live subscribers
(the session server, alerts) get, and the run log's TRADE CLOSED line; both in
trades.csv's terms, from the round trip the recorder's builder closed."""

from typing import Any

from perps_bot.metrics.formatting import duration_text
from perps_bot.metrics.trade_records import OpenTrade


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
    ret_text = "n/a" if ret is None else _RETURN % ret
    held = duration_text(held_s)
    return _TRADE_CLOSED % (
        head,
        symbol,
        side,
        size,
        entry,
        exit_price,
        net,
        ret_text,
        held,
        reason,
    )


#: %-formats: the digits of f"{x:.6g}" and the like, about a quarter fewer instructions
#: per number (a line per closed trade)
_TRADE_CLOSED = (
    "%sTRADE CLOSED %s %s size=%.6g entry=%.6g exit=%.6g net PnL=%.4f return=%s held=%s reason=%s"
)
_RETURN = "%+.3f%%"
