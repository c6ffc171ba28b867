"""`POST /api/sessions` bodies (SPEC 11): checked field by field, then turned into the
run's settings the way the command line does (the profile, with the request as the
highest-precedence layer), and the strategies and their params checked before
anything runs, so a bad request is a 400 with one line and leaves no trace.

    {"profile": "dev", "portfolios": [{"strategy": "sma_cross", "params": {"fast": 5},
     "symbols": ["BTC-PERP"], "capital": 5000}], "seed": 7, "duration": "7d",
     "dev_fast": true}

A portfolio may name its `id` (default: its strategy's name, made unique).
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perps_bot.config import Settings, load_settings
from perps_bot.config.portfolios import portfolio_ids
from perps_bot.domain import PerpsBotError, short
from perps_bot.feeds.bars import strategy_bars
from perps_bot.orchestrator.preflight import (
    planned_portfolios,
    profile_catalog,
    require_prod_promotions,
)
from perps_bot.orchestrator.trading_state import state_keys, stored_halt
from perps_bot.strategies import load_strategy, validate_params


class RequestError(PerpsBotError):
    """A request the server refuses (HTTP 4xx); `status` is the code."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def parse_json(raw: bytes, charset: str | None) -> object:
    """A request body as JSON, or RequestError (400) naming what is wrong: text that is
    not JSON, a charset Python does not know, nesting deeper than the parser's
    recursion allows, a number of more than 4300 digits (which int() refuses), a
    field given twice in one object (which one counts would be a guess), or a \\u
    escape of half a surrogate pair (no character: text that holds one cannot be
    written as UTF-8, and a run given it failed with a traceback)."""
    try:
        text = raw.decode(charset or "utf-8")
    except LookupError:
        raise RequestError(f"unreadable body: unknown charset {short(charset or '')!r}") from None
    except UnicodeDecodeError as exc:
        raise RequestError(f"malformed JSON: {exc}") from None
    try:
        return _whole_characters(json.loads(text, object_pairs_hook=_unique_fields))
    except json.JSONDecodeError as exc:
        raise RequestError(f"malformed JSON: {exc}") from None
    except ValueError:
        raise RequestError("malformed JSON: a number with too many digits") from None
    except RecursionError:
        raise RequestError("malformed JSON: nested too deeply") from None


def _whole_characters(body: object) -> object:
    """`body`, or RequestError when a text in it holds half a surrogate pair."""
    try:
        json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise RequestError("malformed JSON: a \\u escape of half a surrogate pair") from None
    return body


def _unique_fields(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise RequestError(f"malformed JSON: field {short(key)!r} is given twice")
        out[key] = value
    return out


_TOP = {"profile", "portfolios", "seed", "duration", "dev_fast", "dry_run"}
_PORTFOLIO = {"id", "strategy", "params", "symbols", "capital"}


@dataclass(frozen=True, slots=True)
class StartRequest:
    """A validated start request (stored as `as_json` to start it again after a restart)."""

    profile: str
    portfolios: list[dict[str, Any]]
    seed: int | None = None
    duration: str | None = None
    dev_fast: bool = False
    dry_run: bool = False

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"profile": self.profile, "portfolios": self.portfolios}
        for key in ("seed", "duration"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out |= {"dev_fast": self.dev_fast, "dry_run": self.dry_run}
        return out


def parse_start(body: Any) -> StartRequest:
    """The request, or RequestError naming the first thing wrong with it."""
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object")
    _no_unknown(body, _TOP, "")
    profile = body.get("profile", "dev")
    if not isinstance(profile, str) or not profile.strip():
        raise RequestError('profile: expected a profile name, e.g. "dev"')
    listed = body.get("portfolios")
    if not isinstance(listed, list) or not listed:
        raise RequestError("portfolios: expected a non-empty list of {strategy, params, ...}")
    names = [_strategy_name(p, i) for i, p in enumerate(listed)]
    given = frozenset(p["id"] for p in listed if isinstance(p.get("id"), str))
    unnamed = iter(portfolio_ids([n for p, n in zip(listed, names, strict=True) if "id" not in p],
                                 given))  # fmt: skip
    ids = [p["id"] if "id" in p else next(unnamed) for p in listed]
    portfolios = [_portfolio(p, i, pid) for i, (p, pid) in enumerate(zip(listed, ids, strict=True))]
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise RequestError("seed: expected an integer")
    duration = body.get("duration")
    if duration is not None and not isinstance(duration, str):
        raise RequestError('duration: expected a duration such as "7d" or "12h"')
    flags = {key: body.get(key, False) for key in ("dev_fast", "dry_run")}
    for key, value in flags.items():
        if not isinstance(value, bool):
            raise RequestError(f"{key}: expected true or false")
    return StartRequest(profile, portfolios, seed, duration, **flags)


def stored_request(text: str) -> StartRequest:
    """A request kept in the sessions table, checked as a body is (one written by another
    version, or edited by hand, may not fit: half a surrogate pair included, which a
    run failed on with a traceback); RequestError naming what is wrong."""
    try:
        body = _whole_characters(json.loads(text))
    except (ValueError, RecursionError):
        raise RequestError("not JSON") from None
    return parse_start(body)


def session_settings(
    request: StartRequest, database: Path, *, allow_live: bool = False
) -> Settings:
    """The settings of the session's run; RequestError for a profile, strategy, param or
    symbol that does not fit, for a live session on a server started without
    --allow-live (403), and for a live session of a halted account (409).

    A paper session's database is the server's (`database`): sessions of one profile run
    side by side. A live session trades the profile's account, so its run is kept where
    CLI runs of the profile keep theirs, in the profile's own database: the account's
    halt, executed plan rows, stops and orders are one record whichever bot trades it,
    and its lock lets one bot at a time trade the account (SessionManager holds it)."""
    run: dict[str, Any] = {"live_view": False}
    if request.seed is not None:
        run["seed"] = request.seed
    if request.duration is not None:
        run["duration"] = request.duration
    if request.dev_fast:
        run["dev_fast"] = True
    if request.dry_run:
        run["dry_run"] = True
    try:
        settings = load_settings(request.profile, {"run": run, "portfolios": request.portfolios})
        if not settings.is_live:
            own_run = settings.run.model_copy(update={"database": str(database)})
            settings = settings.model_copy(update={"run": own_run})
    except PerpsBotError as exc:
        raise RequestError(str(exc).removeprefix("config error: ")) from None
    if settings.is_live and not allow_live:
        raise RequestError(
            f"profile {request.profile!r} trades live: this server was started without"
            ' --allow-live (paper sessions: dev, or canary with "dry_run": true)',
            status=403,
        )
    try:
        for plan in settings.portfolio_plans():
            cls = load_strategy(plan.strategy)
            validated = validate_params(cls, plan.params)
            cls.check(validated, settings.llm)  # a file not there
            cls.check_bars(validated, strategy_bars(None, settings.strategy.timeframe))
        profile_catalog(settings)  # a symbol with no instrument (paper: no network)
    except (PerpsBotError, ValueError) as exc:
        raise RequestError(str(exc).removeprefix("config error: ")) from None
    if settings.is_live:
        try:  # as `perps-bot --profile prod` does, before the session is taken
            require_prod_promotions(settings, planned_portfolios(settings))
        except PerpsBotError as exc:
            raise RequestError(str(exc), status=403) from None
        _refuse_a_halted_account(request.profile, settings)
    return settings


def _refuse_a_halted_account(profile: str, settings: Settings) -> None:
    """A halt stored by any run of the profile's account (a CLI run or an earlier live
    session) refuses a live session (409) until resume-trading lifts it: a trader asking
    for a session learns it at once, not from a session that sits HALTED."""
    own = settings.database_path
    try:
        saved = stored_halt(own, state_keys([plan.id for plan in settings.portfolio_plans()]))
    except PerpsBotError as exc:
        raise RequestError(f"cannot read the profile's trading state: {exc}", 409) from None
    if saved is not None:
        raise RequestError(
            f"profile {short(profile)!r} is HALTED in {own} (portfolio {saved.portfolio}:"
            f" {short(saved.detail)}); `perps-bot resume-trading --profile {short(profile)}`"
            " lifts it",
            status=409,
        )


def _no_unknown(data: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise RequestError(
            f"{where}unknown field {short(unknown[0])!r} (known: {', '.join(sorted(known))})"
        )


def _strategy_name(item: Any, index: int) -> str:
    if not isinstance(item, dict):
        raise RequestError(f"portfolios[{index}]: expected an object")
    _no_unknown(item, _PORTFOLIO, f"portfolios[{index}]: ")
    name = item.get("strategy")
    if not isinstance(name, str) or not name.strip():
        raise RequestError(f"portfolios[{index}].strategy: expected a strategy name")
    return name


def _portfolio(item: dict[str, Any], index: int, default_id: str) -> dict[str, Any]:
    where = f"portfolios[{index}]"
    out: dict[str, Any] = {"id": item.get("id", default_id), "strategy": item["strategy"]}
    if not isinstance(out["id"], str):
        raise RequestError(f"{where}.id: expected a text id")
    params = item.get("params", {})
    if not isinstance(params, dict) or not all(
        isinstance(v, bool | int | float | str) for v in params.values()
    ):
        raise RequestError(f"{where}.params: expected an object of numbers, text or booleans")
    if any(isinstance(v, float) and not math.isfinite(v) for v in params.values()):
        raise RequestError(f"{where}.params: not a finite number")
    out["params"] = params
    symbols = item.get("symbols")
    if symbols is not None:
        if (
            not isinstance(symbols, list)
            or not symbols
            or not all(isinstance(s, str) for s in symbols)
        ):
            raise RequestError(f'{where}.symbols: expected a list of symbols, e.g. ["BTC-PERP"]')
        out["symbols"] = symbols
    capital = item.get("capital")
    if capital is not None:
        if isinstance(capital, bool) or not isinstance(capital, int | float):  # its range:
            raise RequestError(f"{where}.capital: expected a positive number")  # the config's
        try:
            out["capital"] = float(capital)
        except OverflowError:  # an integer of hundreds of digits: JSON has no limit
            raise RequestError(f"{where}.capital: expected a positive number, got one too"
                               " large for a float") from None  # fmt: skip
    return out
