"""The dashboard (SPEC 12) in a real headless Chromium with the network cut but for the
loopback server: it loads with no JavaScript error, shows the equity and positions of a
running dev session, updates when a fill happens, and shows the disconnected state as
soon as the server stops. The screenshot is kept in tests/artifacts/ (git-ignored)."""

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from scripts.headless import Chromium

from tests.conftest import REPO
from tests.server.browser import needs_chromium
from tests.server.browser import until as _until
from tests.server.helpers import dev_session, ended, read_until, serving, start

ARTIFACTS = REPO / "tests" / "artifacts"

PAGE = """(() => ({
  account: document.getElementById("account").innerText,
  portfolios: [...document.querySelectorAll("#portfolios tbody tr")].map((r) => r.innerText),
  positions: [...document.querySelectorAll("#positions tbody tr")].map((r) => r.cells.length),
  prices: document.querySelectorAll("#prices tbody tr").length,
  fills: Number(document.getElementById("fill-count").textContent),
  buttons: document.querySelectorAll("#portfolios button").length,
  traces: (document.getElementById("equity-chart").data || []).map((t) => t.name),
  connection: document.getElementById("connection").textContent,
  banner: !document.getElementById("disconnected-banner").hidden,
}))()"""


CHART = """(() => {
  const chart = document.getElementById("equity-chart");
  return { received: Number(chart.dataset.received || 0),
           lengths: chart.data.map((t) => t.x.length),
           // a date axis keeps the ms of the wall time it shows
           first: chart.calcdata.map((t) => t[0].x),
           last: chart.calcdata.map((t) => t[t.length - 1].x) };
})()"""
CHART_POINTS = 50  # the page's bound per curve (its least), set by ?chart_points=
MODE = """(() => {
  const mode = document.getElementById("chart-mode");
  mode.value = "%s";
  mode.dispatchEvent(new Event("change"));
})()"""
BACK = """(() => {  // from "PnL since the start" to equity, in one go (no data between)
  const ends = () => document.getElementById("equity-chart").data.map((t) =>
    [t.y[0], t.y[t.y.length - 1], Math.min(...t.y), Math.max(...t.y)]);
  const pnl = ends();
  const mode = document.getElementById("chart-mode");
  mode.value = "equity";
  mode.dispatchEvent(new Event("change"));
  return { pnl, equity: ends() };
})()"""


async def _positions(client: Any, sid: str) -> bool:
    view = await (await client.get(f"/api/sessions/{sid}/portfolio")).json()
    return any(p.get("positions") for p in view.get("portfolios", []))


@pytest.mark.integration
@needs_chromium
async def test_the_dashboard_follows_a_running_session_and_shows_the_disconnect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    monkeypatch.setenv("PERPS_BOT__RUN__LOG_DIR", str(tmp_path / "logs"))
    async with serving(tmp_path / "server.sqlite") as (client, _):
        sid = await start(client, dev_session("365d"))
        async with asyncio.timeout(60):
            while not await _positions(client, sid):
                await asyncio.sleep(0.2)
        host = f"127.0.0.1:{client.port}"
        url = f"http://{host}/?session={sid}&chart_points={CHART_POINTS}"
        async with Chromium(width=1400, height=1100) as page:
            # a browser away from UTC: the chart's times are still the session's (UTC)
            await page.send("Emulation.setTimezoneOverride", timezoneId="America/New_York")
            await page.open(url)
            await _until(page, "document.body.dataset.connected === '1'")
            # the badge turns on when the socket opens; the hello (trades, curves) is
            # handled in the next batch, which a busy machine can delay past one read
            await _until(page, "(document.getElementById('equity-chart').data || []).length > 0")
            first = await page.eval(PAGE)
            await _until(page, f"Number(document.getElementById('fill-count').textContent) > "
                               f"{first['fills']} + 2")  # fmt: skip
            await _until(page, "document.querySelectorAll('#trades tbody tr td').length > 9")
            # the account panel follows the session's snapshots (every 0.25 s of wall
            # time): a --dev-fast session can make many fills before the next one
            await _until(page, "document.getElementById('account').innerText !== "
                               f"{json.dumps(first['account'])}")  # fmt: skip
            live = await page.eval(PAGE)
            chart_at_start = await page.eval(CHART)
            # PnL mode while points arrive and curves are halved, then back to equity
            await page.eval(MODE % "pnl")
            received = "Number(document.getElementById('equity-chart').dataset.received)"
            await _until(page, f"{received} > {chart_at_start['received'] + 3 * CHART_POINTS}")
            chart = await page.eval(CHART)
            switch = await page.eval(BACK)
            history = await (await client.get(f"/api/sessions/{sid}/equity?points=1000")).json()
            png = await page.screenshot()
            await client.close()  # the server stops: its websockets close (the
            # session goes on at its next start: the page is disconnected, not ended)
            # the page keeps up with a --dev-fast session (it handles messages in
            # batches), so the close is not stuck behind a backlog: it took 47 to 69 s
            # when every equity message redrew the chart
            await _until(page, "document.body.dataset.connected === '0'", timeout=10)
            gone = await page.eval(PAGE)
            errors, requests = page.errors, page.requests
    ARTIFACTS.mkdir(exist_ok=True)
    for where in (ARTIFACTS / "dashboard.png", tmp_path / "dashboard.png"):
        where.write_bytes(png)
    assert errors == []
    assert {u.split("/")[2] for u in requests} == {host}, requests
    assert "account equity" in first["account"] and "PnL" in first["account"]
    assert [row.split("\t")[0] for row in first["portfolios"]] == ["sma_cross", "mean_reversion"]
    assert first["positions"] and all(cells == 9 for cells in first["positions"])
    assert first["prices"] == 2 and first["buttons"] == 4  # pause + flatten, twice
    assert first["traces"] == ["account", "sma_cross", "mean_reversion"]
    assert first["connection"] == "connected" and not first["banner"]
    assert live["fills"] > first["fills"] and live["account"] != first["account"]
    # the chart loaded 1000 points of history per curve and kept following the session
    # within its bound, with the whole history: the account curve still starts at the
    # run's first snapshot
    assert all(n <= CHART_POINTS for n in chart["lengths"]), chart["lengths"]
    assert chart["first"][0] == history["ts"][0]
    assert all(b > a for a, b in zip(chart_at_start["last"], chart["last"], strict=True))
    # "PnL since the start" (points extended and curves halved in it): every curve
    # starts at 0 and ends at its own PnL; back in equity, every point is an equity
    assert [ends[0] for ends in switch["pnl"]] == [0, 0, 0]
    assert switch["equity"][0][0] == history["equity"][0]
    for pnl, equity in zip(switch["pnl"], switch["equity"], strict=True):
        assert pnl[1] == pytest.approx(equity[1] - equity[0], abs=1e-6) and pnl[1] != 0
        assert 0.9 * equity[0] < equity[2] <= equity[3] < 1.1 * equity[0], equity
    assert gone["connection"] == "disconnected" and gone["banner"]
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 30_000


@pytest.mark.integration
@needs_chromium
async def test_a_finished_session_shows_its_last_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    """Opened after the session ended, the page shows each portfolio's equity, PnL and
    positions as the store has them (the run's books are gone), not empty tables, and
    the session's fills (it counted only those it saw: 0)."""
    monkeypatch.setenv("PERPS_BOT__RUN__LOG_DIR", str(tmp_path / "logs"))
    async with serving(tmp_path / "server.sqlite") as (client, manager):
        sid = await start(client, dev_session("2d"))
        seen: list[dict[str, Any]] = []
        await read_until(await client.ws_connect(f"/api/sessions/{sid}/stream"), seen, ended)
        stored = await (await client.get(f"/api/sessions/{sid}/portfolio")).json()
        children = manager.store.children(seen[-1]["data"]["run_id"])
        fills = sum(len(manager.store.fills(c.run_id)) for c in children)
        async with Chromium() as page:
            await page.open(f"http://127.0.0.1:{client.port}/?session={sid}")
            await _until(page, "(document.getElementById('equity-chart').data || []).length > 0")
            shown = await page.eval(PAGE)
            errors = page.errors
    assert errors == []
    rows = [row.split("\t") for row in shown["portfolios"]]
    assert [row[0] for row in rows] == ["sma_cross", "mean_reversion"]
    for row, p in zip(rows, stored["portfolios"], strict=True):
        assert row[3] == f"{p['equity']:,.2f}" and row[4] == f"{p['pnl']:,.2f}", (row, p)
    account = sum(p["equity"] for p in stored["portfolios"])
    assert f"{account:,.2f}" in shown["account"], shown["account"]
    assert shown["buttons"] == 0 and shown["positions"]
    assert shown["fills"] == fills > 0
