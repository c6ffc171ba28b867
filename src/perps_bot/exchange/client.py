"""Build the unmodified ccxt async client the live and paper-on-real-book venues use.

Design choices:
- ``private=False`` (dry-run, paper on a real book) sets NO credentials at all, so
  ccxt refuses to sign: any private call raises ``ccxt.AuthenticationError`` inside
  ``sign()``, before a byte leaves the process. Dry-run cannot place an order by
  accident, whatever the calling code does.
- ``private=True`` requires ``exchange.api_key`` and ``exchange.api_secret``, which the
  settings loader only fills from ``PERPS_BOT__EXCHANGE__API_KEY`` / ``..._SECRET``.
  They are handed to ccxt and never logged or put into an error message.
- ``options.fetchCurrencies = False``: ``load_markets`` then needs one public call
  (exchangeInfo) instead of a private, signed capital-config call that dry-run
  could not make. ``warnOnFetchOpenOrdersWithoutSymbol = False`` lets reconciliation
  fetch all open orders in one call.
- ``base_url`` rewrites the scheme and host of EVERY url in ``urls['api']`` (REST:
  fapiPublic/V2/V3, fapiPrivate/V2/V3, fapiData and all other keys; websocket:
  ``urls['api']['ws'][...]``), keeping each url's path, so ``https://fapi.binance.com/
  fapi/v1`` becomes ``http://127.0.0.1:8900/fapi/v1`` and ``wss://fstream.binance.com/
  ws`` becomes ``ws://127.0.0.1:8900/ws``. Rewriting all keys, not only fapi*, means no
  code path can reach a real host once base_url is set.
- binance picks its futures error-code table by url PREFIX
  (``get_exceptions_by_url``): with rewritten urls -2019, -2022, -4164, -4116 ... would
  surface as a plain ExchangeError. We wrap that method on the instance so it looks
  the error up under the ORIGINAL url the rewritten one stands for: every code maps to
  exactly the class it maps to against the real exchange.
- The rate limiter is ON for real hosts (protects the account from bans) and OFF when
  ``base_url`` is set: its leaky bucket (create_order costs 4 x 50 ms) would dominate
  loopback timings and the emulator has no limit to respect. A proxy in front of the
  real exchange must then do its own limiting (documented in the README).
- ``demo=True`` calls ccxt's ``enable_demo_trading(True)`` (binance: demo-fapi host);
  ``set_sandbox_mode`` is no longer supported by binance futures private endpoints.
- A 2xx answer whose body is not JSON (a proxy's error page, a truncated body) raises
  ``ccxt.BadResponse`` (an OperationFailed: transient, retried; an order's outcome is
  then unknown and looked up). ccxt itself returns the text and parses it into empty
  fields, so a garbled ``positionRisk`` read as "no positions" and reconciliation
  adopted a flat book while the exchange still held the position.
- A JSON answer whose field ccxt cannot read (``"executedQty": "abc"`` makes its
  parser raise ValueError) raises ``ccxt.BadResponse`` too, from the account's calls
  and ``load_markets`` (`READ_ANSWERS`): the request was processed, so an order's
  outcome is unknown (looked up by its client id), not a crash after the order was
  placed; a market list that cannot be read is retried like an unreachable exchange.
"""

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import ccxt.async_support as ccxt_async

from perps_bot.config.models import ExchangeConfig
from perps_bot.domain import short
from perps_bot.domain.timeutil import parse_duration
from perps_bot.exchange.errors import ExchangeSetupError
from perps_bot.exchange.runtime import RETRY_AFTER_ATTR, retry_after_s

log = logging.getLogger(__name__)

REST_SCHEMES = ("http", "https")
WS_SCHEMES = ("ws", "wss")


def create_exchange(
    cfg: ExchangeConfig, *, private: bool, websocket: bool | None = None
) -> ccxt_async.Exchange:
    """Return a configured ccxt async client; the caller must ``await ex.close()``.

    ``websocket`` (default ``cfg.use_websocket``) builds the ccxt.pro class of the same
    id, which is a subclass of the async one, so every REST method works the same.
    """
    use_ws = cfg.use_websocket if websocket is None else websocket
    exchange_class = _exchange_class(cfg.name, websocket=use_ws)
    config: dict[str, Any] = {
        "enableRateLimit": cfg.base_url is None,
        "timeout": cfg.timeout_ms,
        "options": {
            "fetchCurrencies": False,
            "warnOnFetchOpenOrdersWithoutSymbol": False,
            # every signed request carries it: the exchange itself refuses a request that
            # reaches its engine later than this after it was signed, which is what makes
            # an order whose fate is unknown resolvable (SPEC 9)
            "recvWindow": parse_duration(cfg.recv_window),
        },
    }
    if private:
        key = cfg.api_key.get_secret_value() if cfg.api_key is not None else ""
        secret = cfg.api_secret.get_secret_value() if cfg.api_secret is not None else ""
        if not key or not secret:
            raise ExchangeSetupError(
                "live trading needs exchange api credentials: set PERPS_BOT__EXCHANGE__API_KEY "
                "and PERPS_BOT__EXCHANGE__API_SECRET"
            )
        config["apiKey"] = key
        config["secret"] = secret
    exchange = exchange_class(config)
    _check_answers(exchange)
    _readable_answers(exchange)
    if cfg.demo:
        _enable_demo(exchange, cfg.name)
    if cfg.base_url is not None:
        point_at_base_url(exchange, cfg.base_url)
    log.info(
        "exchange %s: %s, %s%s",
        cfg.name,
        "private (keys set)" if private else "public only (no keys)",
        "demo, " if cfg.demo else "",
        f"urls -> {cfg.base_url}, rate limiter off" if cfg.base_url else "rate limiter on",
    )
    return exchange


def point_at_base_url(exchange: Any, base_url: str) -> None:
    """Rewrite every REST and websocket url of ``exchange`` onto ``base_url``'s host.

    Keeps each url's path; http(s) urls get ``base_url``'s scheme, ws(s) urls get the
    matching ws scheme. Also keeps ccxt's url-based error mapping intact (see module doc).
    """
    rest_base, ws_base = _split_base_url(base_url)
    originals: dict[str, str] = {}  # rewritten REST url -> original REST url
    api = exchange.urls.get("api")
    if isinstance(api, str):
        exchange.urls["api"] = _rewrite(api, rest_base, ws_base, originals)
    elif isinstance(api, dict):
        _rewrite_tree(api, rest_base, ws_base, originals)
    else:
        raise ExchangeSetupError(f"exchange {exchange.id} has no urls to point at {base_url}")
    original_lookup = getattr(exchange, "get_exceptions_by_url", None)
    if callable(original_lookup):
        exchange.get_exceptions_by_url = _exceptions_by_original_url(original_lookup, originals)


def _exchange_class(name: str, *, websocket: bool) -> Any:
    if websocket:
        import ccxt.pro as ccxt_pro  # imported lazily: only the websocket feed needs it

        module: Any = ccxt_pro
    else:
        module = ccxt_async
    exchange_class = getattr(module, name, None) if name in module.exchanges else None
    if exchange_class is None:
        flavour = "ccxt.pro (websocket)" if websocket else "ccxt"
        raise ExchangeSetupError(f"exchange.name {name!r} is not an exchange id known to {flavour}")
    return exchange_class


def _enable_demo(exchange: Any, name: str) -> None:
    enable = getattr(exchange, "enable_demo_trading", None)
    if not callable(enable) or "demo" not in exchange.urls:
        raise ExchangeSetupError(f"exchange.demo is set but ccxt's {name} has no demo environment")
    enable(True)


def _split_base_url(base_url: str) -> tuple[str, str]:
    parts = urlsplit(base_url.strip())
    if parts.scheme not in REST_SCHEMES or not parts.netloc or parts.query or parts.fragment:
        raise ExchangeSetupError(
            f"exchange.base_url {base_url!r} must look like http://127.0.0.1:8900 "
            "(http or https, a host, no query)"
        )
    path = parts.path.rstrip("/")
    ws_scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{parts.scheme}://{parts.netloc}{path}", f"{ws_scheme}://{parts.netloc}{path}"


def _rewrite(url: str, rest_base: str, ws_base: str, originals: dict[str, str]) -> str:
    parts = urlsplit(url)
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    if parts.scheme in REST_SCHEMES:
        rewritten = rest_base + tail
        originals.setdefault(rewritten, url)
        return rewritten
    if parts.scheme in WS_SCHEMES:
        return ws_base + tail
    return url


def _rewrite_tree(
    tree: dict[str, Any], rest_base: str, ws_base: str, originals: dict[str, str]
) -> None:
    for key, value in tree.items():
        if isinstance(value, str):
            tree[key] = _rewrite(value, rest_base, ws_base, originals)
        elif isinstance(value, dict):
            _rewrite_tree(value, rest_base, ws_base, originals)


def _exceptions_by_original_url(
    lookup: Callable[[str | None, str], dict[str, Any]], originals: dict[str, str]
) -> Callable[[str | None, str], dict[str, Any]]:
    # Longest prefix first so /fapi/v1 never shadows a longer, more specific base.
    prefixes = sorted(originals.items(), key=lambda item: len(item[0]), reverse=True)

    def get_exceptions_by_url(url: str | None, exact_or_broad: str) -> dict[str, Any]:
        if url is not None:
            for rewritten, original in prefixes:
                if url.startswith(rewritten):
                    return lookup(original + url[len(rewritten) :], exact_or_broad)
        return lookup(url, exact_or_broad)

    return get_exceptions_by_url


def _check_answers(exchange: Any) -> None:
    """Before ccxt reads an answer: note the Retry-After of every 429/418 answer, and
    refuse a 2xx answer that is not JSON (see the module doc)."""
    handle = getattr(exchange, "handle_errors", None)
    if not callable(handle):
        return

    def checking(code: int, reason: str, url: str, method: str, headers: Any,
                 body: Any, response: Any, *rest: Any) -> Any:  # fmt: skip
        if code in (418, 429):
            told = retry_after_s(headers)
            if told is not None:
                setattr(exchange, RETRY_AFTER_ATTR, told)
        if isinstance(code, int) and 200 <= code < 300 and response is None:
            shown = " ".join(str(body or "").split())[:80] or "an empty body"
            raise ccxt_async.BadResponse(
                f"{exchange.id} {method} {url.split('?')[0]} answered {code} with a body"
                f" that is not JSON: {shown}"
            )
        return handle(code, reason, url, method, headers, body, response, *rest)

    exchange.handle_errors = checking


#: the ccxt calls whose parsed answers the live venue reads (orders, trades, balance;
#: positions and liquidations it reads raw: venues.live.account, venues.live.foreign),
#: and the market list every exchange run starts from (a market ccxt cannot parse, e.g.
#: one without its marginAsset, raised TypeError: an "internal error", not a retry)
READ_ANSWERS = (
    "create_order", "cancel_order", "fetch_order", "fetch_open_orders", "fetch_my_trades",
    "fetch_balance", "load_markets",
)  # fmt: skip


def _readable_answers(exchange: Any) -> None:
    """Make ccxt's parse failures on the `READ_ANSWERS` calls BadResponse (module doc)."""
    for name in READ_ANSWERS:
        call = getattr(exchange, name, None)
        if callable(call):
            setattr(exchange, name, _unreadable_is_bad_response(exchange.id, name, call))


def _unreadable_is_bad_response(
    exchange_id: str, name: str, call: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(call)
    async def reading(*args: Any, **kwargs: Any) -> Any:
        try:
            return await call(*args, **kwargs)
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise ccxt_async.BadResponse(
                short(f"{exchange_id} {name}: an answer field that cannot be read ({exc})", 200)
            ) from exc

    return reading
