"""The HTML report in a real headless Chromium with the network cut: it renders, the
charts are there and answer hover, the trade table pages and sorts, nothing is logged
to the console as an error and nothing but the file itself is requested. Plus the
page's size with 10,000 trades and its byte-for-byte determinism."""

import asyncio
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from scripts.headless import Chromium, available

from perps_bot.metrics import build_report, render_html
from perps_bot.metrics.compare import render_compare_html
from perps_bot.metrics.drift import Drift
from perps_bot.metrics.drift_html import render_drift_html
from perps_bot.storage import RunStore

REPO = Path(__file__).resolve().parents[2]
needs_chromium = pytest.mark.skipif(
    not available(), reason="no /usr/bin/chromium here (apt-get install -y chromium; CI does)"
)


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "screenshot_report", REPO / "scripts" / "screenshot_report.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _html(db: Path, run_id: str) -> str:
    with RunStore(db, read_only=True) as store:
        return render_html(build_report(store, run_id))


TABLE_STATE = """(() => {
  const root = document.getElementById("trades-main");
  const rows = [...root.querySelectorAll("tbody tr")];
  const heads = [...root.querySelectorAll("thead th")];
  const col = (name) => heads.findIndex((th) => th.textContent === name);
  const cell = (r, name) => r.children[col(name)].textContent;
  return {rows: rows.length, ids: rows.map((r) => Number(cell(r, "#"))),
          net: rows.map((r) => Number(cell(r, "net PnL").replace(/,/g, ""))),
          info: root.querySelector(".page-info").textContent,
          sort: heads.filter((th) => th.getAttribute("aria-sort") !== "none")
                  .map((th) => th.textContent + ":" + th.getAttribute("aria-sort"))};
})()"""

CLICK = """(() => {{ [...document.querySelectorAll("#trades-main {sel}")]
  .find((e) => e.textContent === {text!r}).click(); return true; }})()"""

CHARTS = """(() => [...document.querySelectorAll(".js-plotly-plot")].map((gd) => ({
  id: gd.id, svg: !!gd.querySelector(".main-svg"),
  traces: gd.data.map((t) => t.type + ":" + t.name + ":" + (t.x ? t.x.length : 0)),
})))()"""

HOVER = """(() => { const gd = document.getElementById("equity-chart");
  Plotly.Fx.hover(gd, [{curveNumber: 2, pointNumber: 5}]);
  return gd.querySelector(".hoverlayer").childElementCount; })()"""


async def _inspect(path: Path, png: Path) -> dict[str, Any]:
    async with Chromium(width=1400, height=1000) as page:
        await page.open(path)
        result: dict[str, Any] = {
            "charts": await page.eval(CHARTS),
            "hover": await page.eval(HOVER),
        }
        result["first"] = await page.eval(TABLE_STATE)
        await page.eval(CLICK.format(sel="thead th", text="net PnL"))
        result["by_net"] = await page.eval(TABLE_STATE)
        await page.eval(CLICK.format(sel="thead th", text="net PnL"))
        result["by_net_desc"] = await page.eval(TABLE_STATE)
        await page.eval(CLICK.format(sel=".pager button", text="next ›"))
        result["page2"] = await page.eval(TABLE_STATE)
        result["static"] = await page.eval(
            "[document.querySelectorAll('table.breakdown').length,"
            " document.querySelectorAll('table.month td').length,"
            " document.getElementById('load-error').textContent]"
        )
        png.write_bytes(await page.screenshot())
        result["errors"] = page.errors
        result["requests"] = page.requests
    return result


@pytest.mark.integration
@needs_chromium
def test_report_renders_and_works_offline_in_headless_chromium(tmp_path: Path) -> None:
    db = tmp_path / "demo.sqlite"
    run_id = _script().build_demo_run(db)
    with RunStore(db, read_only=True) as store:
        trades = len(build_report(store, run_id).trades)
    assert 50 < trades <= 100  # two pages of 50
    path = tmp_path / "report.html"
    path.write_text(_html(db, run_id), encoding="utf-8")
    png = tmp_path / "report.png"
    got = asyncio.run(_inspect(path, png))

    assert got["errors"] == []
    assert {url.split(":")[0] for url in got["requests"]} == {"file"}
    charts = {c["id"]: c for c in got["charts"]}
    assert set(charts) == {"equity-chart", "price-main-0", "price-main-1"}
    assert all(c["svg"] for c in charts.values())
    btc = charts["price-main-0"]["traces"]
    # a week of minutes sampled 5,041 times: drawn as 841 candles of 6 samples
    assert btc[:3] == ["candlestick:BTC-PERP:841", "scatter:SMA 10:841", "scatter:SMA 30:841"]
    markers = {t.split(":")[1]: int(t.split(":")[2]) for t in btc[3:]}
    assert set(markers) == {"long entry", "short entry", "exit"}
    assert markers["long entry"] + markers["short entry"] == markers["exit"] > 10
    assert got["hover"] > 0

    first, by_net, desc, page2 = got["first"], got["by_net"], got["by_net_desc"], got["page2"]
    assert first["rows"] == 50 and first["ids"] == list(range(1, 51))
    assert first["info"] == f"page 1 of 2 ({trades} trades)"
    assert first["sort"] == ["#:ascending"]
    assert by_net["net"] == sorted(by_net["net"]) and by_net["sort"] == ["net PnL:ascending"]
    assert desc["net"] == sorted(desc["net"], reverse=True)
    assert page2["rows"] == trades - 50 and page2["info"].startswith("page 2 of 2")
    assert set(page2["ids"]).isdisjoint(desc["ids"])
    assert got["static"][0] == 3 and got["static"][1] >= 13 and got["static"][2] == ""
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000


@pytest.mark.integration
@needs_chromium
def test_compare_page_renders_offline(tmp_path: Path) -> None:
    script = _script()
    db = tmp_path / "demo.sqlite"
    run_id = script.build_demo_run(db, days=2)
    with RunStore(db, read_only=True) as store:
        reports = [build_report(store, run_id), build_report(store, run_id)]
    path = tmp_path / "compare.html"
    path.write_text(render_compare_html(reports), encoding="utf-8")

    async def inspect() -> tuple[Any, list[str], list[str]]:
        async with Chromium() as page:
            await page.open(path)
            traces = await page.eval("document.getElementById('compare-chart').data.length")
            return traces, page.errors, page.requests

    traces, errors, requests = asyncio.run(inspect())
    assert traces == 2 and errors == []
    assert {url.split(":")[0] for url in requests} == {"file"}


def test_ten_thousand_trades_fit_in_five_megabytes_and_render_the_same_bytes(
    tmp_path: Path,
) -> None:
    script = _script()
    pages = []
    for name in ("a", "b"):
        db = tmp_path / f"{name}.sqlite"
        run_id = script.build_large_run(db, trades=10_000)
        pages.append(_html(db, run_id).encode("utf-8"))
    assert pages[0] == pages[1]
    size = len(pages[0])
    assert size < 5_000_000, f"{size:,} bytes"
    assert pages[0].count(b"<script") == 3  # plotly.js inlined once


#: where the browser runs matters to a chart given Date objects (Plotly draws those in
#: the browser's time zone); the pages' times are all UTC
TOKYO = "Asia/Tokyo"
CHART_TIMES = "document.getElementById('drift-chart').calcdata.map((t) => t.map((p) => p.x))"


@pytest.mark.integration
@needs_chromium
def test_drift_chart_times_are_utc_in_a_browser_of_another_time_zone(tmp_path: Path) -> None:
    hour = 3_600_000
    start = 1_704_067_200_000  # 2024-01-01 00:00 UTC
    live_ts = [start, start + hour, start + 2 * hour]
    paper_ts = [start + 30 * 60_000, start + 90 * 60_000]
    drift = Drift(
        live_run="live-1",
        replay_run="replay-1",
        fill_model={"fill_model": "touch"},
        pairs=[],
        summary={"orders": 0},
        live_curve=(live_ts, [100.0, 101.0, 102.0]),
        paper_curve=(paper_ts, [100.0, 100.5]),
    )
    path = tmp_path / "drift.html"
    path.write_text(render_drift_html(drift), encoding="utf-8")

    async def chart_times() -> tuple[Any, list[str]]:
        async with Chromium() as page:
            await page.send("Emulation.setTimezoneOverride", timezoneId=TOKYO)
            await page.open(path)
            offset = await page.eval("new Date(0).getTimezoneOffset()")
            assert offset == -540  # the override took: Tokyo is UTC+9
            return await page.eval(CHART_TIMES), page.errors

    times, errors = asyncio.run(chart_times())
    assert errors == []
    # Plotly keeps a date axis in ms of the wall time it shows: the UTC times themselves
    assert times == [live_ts, paper_ts]


#: an LLM's rationale or a custom strategy's reason is free text: `<sma20` would open a
#: tag and `&lt;` would be read as an entity if the table wrote them as markup
ODD_REASON = "llm: close<sma20 & rsi<30, <b>exit</b> &lt;now&gt;"
ODD_CELLS = """(() => [...document.querySelectorAll("#trades-main tbody tr")].map((r) =>
  [r.children.length, r.children[14].textContent]))()"""


@pytest.mark.integration
@needs_chromium
def test_trade_table_shows_exit_reasons_as_text_not_markup(tmp_path: Path) -> None:
    from tests.metrics.metrics_builders import DAY, HOUR, T0, RunBuilder

    db = tmp_path / "odd.sqlite"
    with RunStore(db) as store:
        b = RunBuilder(store, "odd", end_ts=T0 + DAY)
        b.fill(T0 + HOUR, "buy", 1.0, 100.0)
        b.fill(T0 + 2 * HOUR, "sell", 1.0, 101.0, reason=ODD_REASON)
        b.curve([(T0, 10_000.0), (T0 + DAY, 10_001.0)])
        run_id = b.done()
    path = tmp_path / "odd.html"
    path.write_text(_html(db, run_id), encoding="utf-8")

    rows, errors = _evaluated(path, ODD_CELLS)
    assert errors == []
    assert rows == [[18, ODD_REASON]]


def _evaluated(path: Path, script: str) -> tuple[Any, list[str]]:
    """`script`'s value on the page at `path` in headless Chromium, and the page's errors."""

    async def evaluate() -> tuple[Any, list[str]]:
        async with Chromium() as page:
            await page.open(path)
            return await page.eval(script), page.errors

    return asyncio.run(evaluate())


EXIT_HOVER = """(() => { const gd = document.getElementById("price-main-0");
  const n = gd.data.findIndex((t) => t.name === "exit");
  Plotly.Fx.hover(gd, [{curveNumber: n, pointNumber: 0}]);
  return gd.querySelector(".hoverlayer").textContent; })()"""


@pytest.mark.integration
@needs_chromium
def test_exit_marker_hover_shows_the_exit_reason_as_text(tmp_path: Path) -> None:
    """Plotly reads a few tags and entities in hover text: a reason's '<b>' was drawn
    bold and its '&lt;' as '<'."""
    db = tmp_path / "demo.sqlite"
    run_id = _script().build_demo_run(db, days=1)
    with RunStore(db) as store, store.transaction():
        store.connection.execute("UPDATE fills SET reason=?", (ODD_REASON,))
    path = tmp_path / "odd.html"
    path.write_text(_html(db, run_id), encoding="utf-8")

    text, errors = _evaluated(path, EXIT_HOVER)
    assert errors == []
    assert f"({ODD_REASON})" in text


#: what each chart's traces draw: the line's path and its marker count
DRAWN = """[...document.querySelectorAll(".js-plotly-plot")].map((gd) => ({id: gd.id,
  samples: gd.data.map((t) => (t.x || []).length),
  drawn: [...gd.querySelectorAll(".scatterlayer .trace")].map((t) => {
    const line = t.querySelector(".js-line");
    return /[LHV]/.test(line ? line.getAttribute("d") || "" : "")
      || t.querySelectorAll(".point").length > 0; })}))"""


@pytest.mark.integration
@needs_chromium
def test_a_price_sampled_once_is_drawn(tmp_path: Path) -> None:
    """A one-minute dev run samples ETH-PERP once: its price chart was an empty plot
    (a line through one point draws nothing), though its title said one sample."""
    from tests.durable.helpers import cli

    db = tmp_path / "short.sqlite"
    ran = cli("--profile", "dev", "--dev-fast", "--seed", "1", "--duration", "1m",
              "--db", str(db), tmp=tmp_path)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    with RunStore(db, read_only=True) as store:
        (run,) = store.runs()
    path = tmp_path / "short.html"
    path.write_text(_html(db, run.run_id), encoding="utf-8")

    charts, errors = _evaluated(path, DRAWN)
    assert errors == []
    prices = [c for c in charts if c["id"].startswith("price-")]
    assert sorted(c["samples"][0] for c in prices) == [1, 2]  # ETH-PERP once, BTC-PERP twice
    assert all(c["drawn"][0] for c in prices), prices
    (equity,) = (c for c in charts if c["id"] == "equity-chart")
    assert equity["drawn"][2], equity  # the equity line
