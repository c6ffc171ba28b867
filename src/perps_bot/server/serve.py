"""Running the HTTP side: `perps-bot serve` (the session server, until Ctrl-C or
SIGTERM) and the `--http-port` view of one bot run (for as long as the run executes).

The server binds loopback by default; any other address needs a token in
`PERPS_BOT__SERVER__TOKEN` (refused in one line without it), which every request then
sends as `Authorization: Bearer <token>`. On loopback it answers only to loopback
names in `Host` (and those of `PERPS_BOT__SERVER__ALLOWED_HOSTS`: see `hosts`).
"""

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from aiohttp import web

from perps_bot.config import Settings
from perps_bot.domain import PerpsBotError
from perps_bot.monitoring import close_logging, setup_logging
from perps_bot.orchestrator.runner import Attach
from perps_bot.orchestrator.wiring import Run
from perps_bot.server.app import create_app
from perps_bot.server.hosts import LOOPBACK, allowed_hosts
from perps_bot.server.manager import SessionManager
from perps_bot.server.session import Session, Sessions

TOKEN_ENV = "PERPS_BOT__SERVER__TOKEN"

log = logging.getLogger("perps_bot.server")


class ServerError(PerpsBotError):
    """The server cannot start as asked; one line (CLI exit 2)."""


def server_token(host: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """The token requests must carry (None on loopback without one)."""
    token = environ.get(TOKEN_ENV, "").strip() or None
    if host not in LOOPBACK and token is None:
        raise ServerError(f"binding {host} (not loopback) needs a token: set {TOKEN_ENV}"
                          " and send it as Authorization: Bearer <token>")  # fmt: skip
    return token


async def serve(
    settings: Settings, host: str, port: int, *, allow_live: bool, database: Path
) -> None:
    """Serve the sessions of `database` until SIGINT / SIGTERM (logs: `settings.run`)."""
    token = server_token(host)
    run_cfg = settings.run
    setup_logging(Path(run_cfg.log_dir), run_cfg.log_level, max_bytes=settings.logging.max_bytes,
                  backups=settings.logging.backups)  # fmt: skip
    manager = SessionManager(database, allow_live=allow_live, alerts=settings.alerts)
    try:
        app = create_app(manager, token=token, hosts=allowed_hosts(host))
        async with _site(app, host, port) as bound:
            await manager.open()
            sys.stdout.write(f"perps-bot serve: http://{host}:{bound}/ (database {database})\n")
            sys.stdout.flush()
            log.info("serving http://%s:%d/ on %s", host, bound, database)
            await _until_signalled()
    finally:
        await manager.close()
        close_logging()


@contextlib.asynccontextmanager
async def _site(app: web.Application, host: str, port: int) -> AsyncIterator[int]:
    """The app served on (host, port); yields the bound port (port 0: one the OS chose)."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def show_run(port: int, host: str = "127.0.0.1") -> Attach:
    """The runner's `attach` for `--http-port`: the read endpoints and the dashboard of
    the one run, served while it executes (no control, no starting sessions)."""

    @contextlib.asynccontextmanager
    async def attach(run: Run) -> AsyncIterator[None]:
        pids = [p.id for p in run.orchestrator.portfolios]
        s = Session(run.run_id, controls=False, created_at=int(time.time() * 1000),
                    portfolio_ids=pids)  # fmt: skip
        sessions = Sessions(run.store, controls=False)
        sessions.sessions[s.id] = s
        app = create_app(sessions, token=server_token(host), hosts=allowed_hosts(host))
        async with _site(app, host, port) as bound:
            log.info("dashboard of run %s: http://%s:%d/", run.run_id, host, bound)
            async with s.attached(run):
                yield

    return attach
