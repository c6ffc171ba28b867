"""The dashboard's equity chart in a real headless Chromium: a curve of one point is
drawn (a session on the wall clock has one equity row a minute)."""

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from scripts.headless import Chromium

from tests.server.browser import needs_chromium, until
from tests.server.helpers import dev_session, serving, start

pytestmark = pytest.mark.usefixtures("server_logs")


#: each equity trace: its points, and whether it draws anything (a line or a marker)
TRACES = """(() => {
  const chart = document.getElementById("equity-chart");
  return [...chart.querySelectorAll(".scatterlayer .trace")].map((t, i) => {
    const line = t.querySelector(".js-line");
    return [chart.data[i].x.length, /[LHV]/.test(line ? line.getAttribute("d") || "" : "")
      || t.querySelectorAll(".point").length > 0];
  });
})()"""


@pytest.mark.integration
@needs_chromium
async def test_the_dashboard_draws_a_curve_of_one_point(tmp_path: Path) -> None:
    """A session on the wall clock has one equity row per minute: for its first minute
    its curves have one point each, and a line through one point draws nothing, so
    the chart was empty."""
    async with serving(tmp_path / "server.sqlite") as (client, _):
        for _ in range(3):  # its rows fall on the wall clock's minutes: one may pass first
            errors, traces = await _first_minute(client)
            if all(n == 1 for n, _ in traces):
                break
    assert errors == []
    assert [n for n, _ in traces] == [1, 1, 1], traces  # the account and both portfolios
    assert all(drawn for _, drawn in traces), traces


async def _first_minute(client: TestClient[Any, Any]) -> tuple[list[str], list[list[Any]]]:
    """A new wall-clock session's page, once its chart has data: the page's errors and
    the chart's equity traces (its points, drawn)."""
    sid = await start(client, dev_session("2h", dev_fast=False))
    url = f"/api/sessions/{sid}/equity?portfolio=sma_cross"
    async with asyncio.timeout(30):
        while not (await (await client.get(url)).json())["ts"]:
            await asyncio.sleep(0.1)
    async with Chromium() as page:
        await page.open(f"http://127.0.0.1:{client.port}/?session={sid}")
        await until(page, "(document.getElementById('equity-chart').data || []).length > 0")
        traces = await page.eval(TRACES)
        errors = page.errors
    await client.post(f"/api/sessions/{sid}/stop")
    return list(errors), traces
