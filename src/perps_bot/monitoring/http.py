"""Optional `--http-port` server: `/health`, `/status` (JSON), `/metrics` (Prometheus text
format) and a small self-refreshing dashboard page. Read-only: it only calls the status
function the runner hands it, so it cannot disturb trading."""

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from perps_bot.monitoring.prometheus import exposition

StatusFn = Callable[[], dict[str, Any]]

_DASHBOARD = """<!doctype html><html><head><meta charset="utf-8"><title>perps-bot</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;background:#111;color:#eee}
td,th{padding:4px 12px;text-align:right}th{text-align:left;color:#9ab}</style></head>
<body><h2>perps-bot live</h2><table id="t"></table><script>
async function refresh(){const r=await fetch('/status');const s=await r.json();
const rows=Object.entries(s).filter(([k,v])=>typeof v!=='object')
.map(([k,v])=>`<tr><th>${k}</th><td>${typeof v==='number'?v.toLocaleString():v}</td></tr>`);
const pos=Object.entries(s.positions||{})
.map(([k,v])=>`<tr><th>${k}</th><td>${v[0]} @ ${v[1]}</td></tr>`);
document.getElementById('t').innerHTML=rows.concat(pos).join('');}
refresh();setInterval(refresh,2000);</script></body></html>"""


class StatusServer:
    def __init__(self, status: StatusFn, *, host: str = "127.0.0.1", port: int) -> None:
        self._status = status
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/status", self._status_json)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/", self._dashboard)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _health(self, request: web.Request) -> web.Response:
        status = self._status()
        ok = status.get("risk_state") != "HALTED"
        return web.json_response(
            {"ok": ok, "risk_state": status.get("risk_state")}, status=200 if ok else 503
        )

    async def _status_json(self, request: web.Request) -> web.Response:
        return web.Response(
            text=json.dumps(self._status(), sort_keys=True), content_type="application/json"
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        body, content_type = exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _dashboard(self, request: web.Request) -> web.Response:
        return web.Response(text=_DASHBOARD, content_type="text/html")
