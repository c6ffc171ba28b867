"""The funding a resumed dry run owes for the time it was down (SPEC 3, 9).

A dry run resumed from its checkpoint holds the positions it held then, and held them
all through the downtime: an exchange charges every funding settlement of that time to
a position that stays open, so a trader expects the paper books to pay them too. The
feed settles only the periods that end after it starts again (feeds.exchange: a
period that ended before the feed first saw the symbol is taken as booked), so the
settlements between the checkpoint and the restart are read from the exchange's own
funding history (ccxt `fetch_funding_rate_history`) before the loop starts, and each is
booked like the feed's: a funding row, a `funding` journal line (with a `note` saying it
was charged at the restart) and a FUNDING log line. The rate and mark are the
exchange's; a settlement without a mark is charged at the position's last mark.
Each page is asked again through passing failures (exchange.retrying, the profile's
`max_retries` and backoff); an exchange that still cannot say is a warning, never the
end of the run.
"""

import asyncio
import logging
from collections.abc import Mapping
from functools import partial
from typing import Any

from perps_bot.config.models import ExchangeConfig
from perps_bot.domain import iso_utc
from perps_bot.domain.numbers import finite_number
from perps_bot.exchange.backoff import backoff_of
from perps_bot.exchange.runtime import one_line
from perps_bot.orchestrator.portfolio import Portfolio

log = logging.getLogger("perps_bot.run")

#: the most settlements one request asks for (Binance's limit)
PAGE = 1_000
NOTE = "charged at the restart: settled while the bot was down"


async def charge_downtime_funding(
    client: Any,
    cfg: ExchangeConfig,
    portfolios: list[Portfolio],
    exchange_symbols: Mapping[str, str],
    since_ms: int,
    now_ms: int,
) -> int:
    """Book on `portfolios` the settlements the exchange made in (since_ms, now_ms] of
    each symbol one of them holds; returns how many settlements were booked."""
    held = sorted({s for p in portfolios for s in p.ledger.symbols() if p.ledger.position_size(s)})
    booked = 0
    for symbol in held:
        try:
            settlements = await _settlements(
                client, cfg, exchange_symbols[symbol], since_ms, now_ms
            )
        except Exception as exc:  # ccxt's errors, a malformed answer: the run goes on
            log.warning(
                "funding of %s while the bot was down (%s to %s) not charged: the exchange's"
                " funding history could not be read (%s)",
                symbol, iso_utc(since_ms), iso_utc(now_ms), one_line(exc, 160),
            )  # fmt: skip
            continue
        for ts, rate, mark in settlements:
            for p in portfolios:
                at = mark if mark is not None else p.ledger.mark_price(symbol)
                settled = p.ledger.apply_funding(ts, symbol, rate, at) if at > 0 else None
                if settled is not None:
                    p.rec.funding(ts, symbol, settled, note=NOTE)
            booked += 1
        if settlements:
            log.info(
                "%s: %d funding settlements while the bot was down (%s to %s) charged to"
                " the position held", symbol, len(settlements), iso_utc(since_ms), iso_utc(now_ms),
            )  # fmt: skip
    return booked


async def _settlements(
    client: Any, cfg: ExchangeConfig, exchange_symbol: str, since_ms: int, now_ms: int
) -> list[tuple[int, float, float | None]]:
    """(time, rate, mark or None) of the settlements in (since_ms, now_ms], in order,
    each once, page after page."""
    # by name, here: exchange.retrying loads ccxt, which a backtest must not pay for
    from perps_bot.exchange.retrying import retried

    out: dict[int, tuple[int, float, float | None]] = {}
    cursor = since_ms + 1
    while cursor <= now_ms:
        page = await retried(
            partial(
                client.fetch_funding_rate_history,
                exchange_symbol,
                since=cursor,
                limit=PAGE,
                params={"until": now_ms},
            ),
            exchange=client,
            backoff=backoff_of(cfg),
            max_retries=cfg.max_retries,
            pause=lambda ms: asyncio.sleep(ms / 1000.0),
        )
        times = []
        for entry in page:
            ts = finite_number(entry.get("timestamp"))
            rate = finite_number(entry.get("fundingRate"))
            if ts is None or rate is None:
                raise ValueError(f"a settlement without a time or a rate: {entry!r:.120}")
            info = entry.get("info")
            mark = finite_number(info.get("markPrice")) if isinstance(info, dict) else None
            if since_ms < ts <= now_ms:
                out[int(ts)] = (int(ts), rate, mark if mark is not None and mark > 0 else None)
            times.append(int(ts))
        if len(page) < PAGE or not times or max(times) < cursor:
            break
        cursor = max(times) + 1
    return [out[t] for t in sorted(out)]
