"""The HTTP API of SPEC 11 and the dashboard of SPEC 12 on aiohttp, over a `Sessions`
(the server's manager, or the one run of a bot started with `--http-port`).

JSON in and out (bodies as `Content-Type: application/json`); every refused request
is a 4xx with `{"error": "..."}`, one a database cannot answer a 503, and a request
must come from a loopback name (bound to loopback) or send the token (bound beyond
it): see `middlewares`, which every request passes through.
"""

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from perps_bot.domain import short
from perps_bot.exchange.runtime import wall_clock_ms
from perps_bot.monitoring.prometheus import metrics_registry
from perps_bot.server import planning, views
from perps_bot.server.middlewares import ACCESS, MIDDLEWARES, Access
from perps_bot.server.protocol import quiet_client_errors, read_json
from perps_bot.server.requests import RequestError
from perps_bot.server.session import Session, Sessions
from perps_bot.storage import StoreError

log = logging.getLogger("perps_bot.server")


@dataclass(slots=True)
class _State:
    sessions: Sessions
    sockets: set[web.WebSocketResponse] = field(default_factory=set)


STATE = web.AppKey("state", _State)
STATIC = Path(str(resources.files("perps_bot.server") / "static"))
STATIC_FILES = frozenset(p.name for p in STATIC.iterdir() if p.is_file())


def create_app(
    sessions: Sessions,
    *,
    token: str | None = None,
    hosts: frozenset[str] | None = frozenset(),
) -> web.Application:
    """The app over `sessions`. `hosts`: the names a request's Host may give beyond the
    loopback ones (`hosts.allowed_hosts` of the bind address; None: any name, for a
    bind beyond loopback, which has a token instead)."""
    quiet_client_errors()
    app = web.Application(middlewares=MIDDLEWARES)
    app[ACCESS] = Access(token or "", hosts)
    app[STATE] = _State(sessions)
    app.router.add_get("/", _dashboard)
    app.router.add_get("/static/plotly.min.js", _plotly)
    app.router.add_get("/static/{name}", _static)
    app.router.add_get("/health", _health)
    app.router.add_get("/status", _status)
    app.router.add_get("/metrics", _metrics)
    app.router.add_post("/api/sessions", _start)
    app.router.add_get("/api/sessions", _list)
    app.router.add_get("/api/sessions/{id}", _session)
    app.router.add_get("/api/sessions/{id}/portfolio", _portfolio)
    app.router.add_get("/api/sessions/{id}/trades", _trades)
    app.router.add_get("/api/sessions/{id}/equity", _equity)
    app.router.add_post("/api/sessions/{id}/stop", _stop)
    app.router.add_post("/api/sessions/{id}/portfolios/{pid}/{action}", _control)
    app.router.add_get("/api/sessions/{id}/plans", _plans)
    app.router.add_post("/api/sessions/{id}/replan", _replan)
    app.router.add_put("/api/sessions/{id}/strategy", _strategy)
    app.router.add_get("/api/sessions/{id}/stream", _stream)
    app.on_shutdown.append(_close_sockets)
    return app


# -- pages and health -------------------------------------------------------------------
async def _dashboard(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html")


async def _static(request: web.Request) -> web.StreamResponse:
    """A file of the dashboard, by name (a missing one is a JSON 404 like every other
    refusal: aiohttp's static route answers an empty one)."""
    name = request.match_info["name"]
    if name not in STATIC_FILES:
        raise RequestError(f"no static file {short(name)!r}", status=404)
    return web.FileResponse(STATIC / name)


async def _plotly(request: web.Request) -> web.StreamResponse:
    """plotly.js from the installed plotly package (the page works with no internet)."""
    return web.FileResponse(Path(str(resources.files("plotly") / "package_data" / "plotly.min.js")))


async def _health(request: web.Request) -> web.Response:
    """`/health` (SPEC 5): 200 while every running session can trade, else 503 with each
    reason (stale market data, an exchange not answering, a halt), for a monitor to
    page on; the process answering is not enough to call a bot healthy."""
    sessions = request.app[STATE].sessions.sessions.values()
    running = sum(1 for s in sessions if s.status == "running")
    now = wall_clock_ms()
    problems = [line for s in sessions for line in views.run_problems(s, now)]
    body = {"ok": not problems, "sessions": len(sessions), "running": running,
            "problems": problems}  # fmt: skip
    return web.json_response(body, status=503 if problems else 200)


async def _status(request: web.Request) -> web.Response:
    """`/status` (SPEC 5): every session's state with its portfolios (a bot run with
    `--http-port`: its one run), as `/api/sessions/{id}` and `.../portfolio` show them."""
    sessions = _sessions(request)
    shown = [s.view() | {"portfolio": _status_portfolio(sessions, s)}
             for s in sessions.sessions.values()]  # fmt: skip
    return web.json_response({"sessions": shown})


def _status_portfolio(sessions: Sessions, s: Session) -> dict[str, Any]:
    """A session's portfolios for `/status`; one whose database cannot answer (damaged
    while the server runs) shows why, and the others are shown all the same (the whole
    answer was a 503 for one session's database)."""
    try:
        return _portfolio_view(sessions, s)
    except StoreError as exc:
        log.warning("/status: session %s: %s", s.id, exc)
        return {"session_id": s.id, "status": s.status, "portfolios": [], "error": str(exc)}


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(metrics_registry())
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


# -- the API ----------------------------------------------------------------------------
def _sessions(request: web.Request) -> Sessions:
    return request.app[STATE].sessions


def _one(request: web.Request) -> Session:
    return _sessions(request).get(request.match_info["id"])


async def _start(request: web.Request) -> web.Response:
    s = await _sessions(request).start(await read_json(request))
    return web.json_response({"session_id": s.id, "status": s.status}, status=201)


async def _list(request: web.Request) -> web.Response:
    return web.json_response({"sessions": [s.view() for s in _sessions(request).sessions.values()]})


async def _session(request: web.Request) -> web.Response:
    return web.json_response(_one(request).view())


async def _portfolio(request: web.Request) -> web.Response:
    return web.json_response(_portfolio_view(_sessions(request), _one(request)))


def _portfolio_view(sessions: Sessions, s: Session) -> dict[str, Any]:
    """The portfolios of `s`: live from its run's books, or as stored once it ended."""
    if s.run is not None:
        return views.portfolios(s.run, s)
    return views.stored_portfolios(sessions.reader(s), s)


async def _trades(request: web.Request) -> web.Response:
    s = _one(request)
    limit = _positive(request, "limit", 0)
    trades = views.trades(_sessions(request).reader(s), s, limit or None)
    return web.json_response({"session_id": s.id, "trades": trades})


async def _equity(request: web.Request) -> web.Response:
    s = _one(request)
    points = _positive(request, "points", 2000)
    pid = _portfolio_asked(request, s)
    run_id = s.run_id if pid is None else views.portfolio_run_id(s, pid)
    return web.json_response(views.equity(_sessions(request).reader(s), run_id, points))


def _portfolio_asked(request: web.Request, s: Session) -> str | None:
    """`?portfolio=ID` of a read endpoint: None without it, 404 for one the session
    does not have (ignoring it would answer for every portfolio instead)."""
    pid = request.query.get("portfolio")
    if pid is not None and pid not in s.portfolio_ids:
        raise RequestError(f"session {s.id} has no portfolio {short(pid)!r} (it has: "
                           f"{', '.join(s.portfolio_ids)})", status=404)  # fmt: skip
    return pid


async def _stop(request: web.Request) -> web.Response:
    s = _one(request)
    s.stop()
    _sessions(request).stopping(s)
    return web.json_response({"session_id": s.id, "status": "stopping"})


async def _control(request: web.Request) -> web.Response:
    s = _one(request)
    action = request.match_info["action"]
    if action not in ("pause", "resume", "flatten"):
        raise RequestError(f"unknown action {short(action)!r} (pause, resume, flatten)", 404)
    data = s.control(request.match_info["pid"], action)
    _sessions(request).controlled(s)
    return web.json_response(data)


async def _plans(request: web.Request) -> web.Response:
    s = _one(request)
    pid = _portfolio_asked(request, s)
    return web.json_response(planning.plans(_sessions(request).reader(s), s, pid))


async def _replan(request: web.Request) -> web.Response:
    s = _one(request)
    return web.json_response(await planning.replan(s, request.query.get("portfolio")))


async def _strategy(request: web.Request) -> web.Response:
    s = _one(request)
    body = await read_json(request)
    answer = planning.set_prompt(s, request.query.get("portfolio"), body)
    _sessions(request).controlled(s)
    return web.json_response(answer)


def _positive(request: web.Request, name: str, default: int) -> int:
    """Query parameter `name` as a count: ASCII digits only (str.isdigit() also takes
    '²', which int() refuses, and other scripts' digits), at most 18 of them (int()
    refuses more than 4300, and no count here comes near 10**18)."""
    text = request.query.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) <= 0:
        raise RequestError(
            f"{name}: expected a positive integer (at most 18 digits), got {short(text, 20)!r}"
        )
    return int(text)


# -- the stream -------------------------------------------------------------------------
async def _stream(request: web.Request) -> web.StreamResponse:
    """Websocket: a `hello` (the session, its fills so far and its portfolios; with
    ?trades=N its last N closed trades, with ?points=N its equity curves thinned to
    about N snapshots), then
    every message the session publishes (fill, liquidation, trade, equity,
    state_change, portfolio, control, status) as it happens. The hello is read in the
    same step as the subscription, so a client that builds its view from both misses
    nothing and sees nothing twice. A client too slow for its queue gets a new hello
    (what it missed is dropped, and what is left of it) instead of a stream with gaps.
    Once the session has ended (its last status message sent; on a session ended
    already, after the hello) the server closes the socket, code 1000."""
    s = _one(request)
    trades, points = _positive(request, "trades", 0), _positive(request, "points", 0)
    ws = web.WebSocketResponse(heartbeat=20)
    queue = s.subscribe()
    try:  # the hello read before the upgrade: a database that cannot answer is a 503
        hello = _hello(request, s, trades, points)
        await ws.prepare(request)
    except BaseException:
        s.unsubscribe(queue)
        raise
    sockets = request.app[STATE].sockets
    sockets.add(ws)
    reader = asyncio.create_task(_drain(ws))
    getter: asyncio.Task[dict[str, Any]] | None = None
    try:
        await ws.send_json({"type": "hello", "data": hello})
        while not ws.closed:
            if s.over and queue.empty():  # its last status sent (or a hello after it)
                await ws.close(code=1000, message=b"session ended")
                break
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                break
            # all that waits, in one wake-up: a --dev-fast run yields to the loop only
            # between its batches
            ready = [getter.result()]
            while not queue.empty():
                ready.append(queue.get_nowait())
            if s.resync(queue):  # it fell behind and lost messages: a whole view again
                ready = [{"type": "hello", "data": _hello(request, s, trades, points)}]
            for message in ready:
                await ws.send_json(message)
    except (ConnectionResetError, RuntimeError):
        pass  # the client went away while we were sending
    except StoreError as exc:  # a new hello its database cannot answer (damaged since)
        log.warning("%s: %s", short(request.path, 80), exc)
        await ws.close(code=1011, message=b"its database cannot be read")
    finally:
        s.unsubscribe(queue)
        sockets.discard(ws)
        await _cancel(reader, getter)
    return ws


async def _cancel(*tasks: "asyncio.Task[Any] | None") -> None:
    """End the stream's helper tasks, also when the stream itself is cancelled (aiohttp
    cancels it when the client's connection drops): a queue reader left waiting on a
    queue nobody holds any more is collected while pending, and asyncio logs that as
    an error ('Task was destroyed but it is pending!')."""
    for task in tasks:
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _hello(request: web.Request, s: Session, trades: int, points: int) -> dict[str, Any]:
    """The stream's first message (no await: nothing is published while it is read)."""
    store = _sessions(request).reader(s)  # the running run's rows flushed first
    # the fills so far: a page counts on from them, also after messages were dropped
    hello: dict[str, Any] = {"session": s.view(), "fills": views.fill_count(store, s)}
    if s.run is not None:
        hello["portfolio"] = views.portfolios(s.run, s)
    if trades:
        hello["trades"] = views.trades(store, s, trades)
    if points:
        hello["equity"] = views.curves(store, s, points)
    return hello


async def _drain(ws: web.WebSocketResponse) -> None:
    """Read (and ignore) what the client sends, until it closes."""
    async for msg in ws:
        if msg.type is WSMsgType.ERROR:
            break


async def _close_sockets(app: web.Application) -> None:
    for ws in list(app[STATE].sockets):
        await ws.close(code=1001, message=b"server shutting down")
