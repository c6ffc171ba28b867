"""The order-rate window (`max_orders_per_minute`): the times of the orders approved in
the last 60 s, shared by a portfolio's gate and the account's (risk.account_gate).

Kept apart from the gate's checks: both gates keep one, and a restart fills it with
the orders that earlier runs of the database sent in the minute before it
(`with_sent`, from orchestrator.trading_state), so a live account's rate spans its
restarts.
"""

from collections import deque
from collections.abc import Iterable

RATE_WINDOW_MS = 60_000


def rate_refusal(recent: deque[int], now_ms: int, limit: int) -> str | None:
    """Why one more order at `now_ms` is over `limit` (max_orders_per_minute) given the
    times of the orders approved before it, None when it is not; times out of the window
    ending at `now_ms` are dropped from `recent`. The caller appends an approved order's."""
    while recent and recent[0] <= now_ms - RATE_WINDOW_MS:
        recent.popleft()
    if len(recent) >= limit:
        return f"{len(recent)} orders in the last 60s (max_orders_per_minute {limit})"
    return None


def with_sent(recent: deque[int], times: Iterable[int]) -> deque[int]:
    """The rate window `recent` with the times of orders sent before it counted too (a
    live restart: the account sent them, in the last minute), in time order."""
    return deque(sorted([*recent, *times]))
