"""`/metrics` (SPEC 11): the Prometheus exposition of a dev run, parsed with
prometheus-client's own parser (and `promtool check metrics` where installed), agrees
with the run's report; the order events carry the tick-to-order latency the histogram
counts; the Grafana dashboard queries only metrics that exist."""

import asyncio
import json
import re
import shutil
import socket
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from freezegun import freeze_time
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from perps_bot.config import load_settings
from perps_bot.metrics.report import build_report
from perps_bot.monitoring.prometheus import (
    FINISHED_RETENTION_S,
    METRICS,
    RunMetrics,
    metrics_registry,
)
from perps_bot.orchestrator.runner import RunResult, run_bot_sync
from perps_bot.server.app import create_app
from perps_bot.server.session import Sessions
from perps_bot.storage import RunStore
from tests.conftest import REPO

DASHBOARD = REPO / "deploy" / "grafana" / "perps-bot.json"


def _run(tmp: Path, **run: Any) -> RunResult:
    settings = load_settings("dev", {"run": {"dev_fast": True, "duration": "12h", "seed": 5,
                                             "log_dir": str(tmp / "logs"),
                                             "data_dir": str(tmp / "data"), **run}})  # fmt: skip
    return run_bot_sync(settings, progress=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _scrape(port: int) -> tuple[str, str]:
    """GET /metrics of the HTTP server (the session server's and `--http-port`'s app)."""
    from aiohttp import web

    with RunStore(":memory:") as store:
        runner = web.AppRunner(create_app(Sessions(store, controls=False)))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        try:
            url = f"http://127.0.0.1:{port}/metrics"
            async with aiohttp.ClientSession() as http, http.get(url) as response:
                assert response.status == 200
                return await response.text(), response.headers["Content-Type"]
        finally:
            await runner.cleanup()


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def _total(samples: list[tuple[dict[str, str], float]], **labels: str) -> float:
    return sum(v for lab, v in samples if all(lab.get(k) == x for k, x in labels.items()))


@pytest.fixture(scope="module")
def dev_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Path, str]:
    tmp = tmp_path_factory.mktemp("metrics")
    _run(tmp / "earlier", seed=9)  # an earlier run of the profile: replaced, not added up
    result = _run(tmp / "run")
    text, content_type = asyncio.run(_scrape(_free_port()))
    assert content_type.startswith("text/plain; version=")
    return result, tmp / "run", text


def test_metrics_match_the_runs_report(dev_run: tuple[RunResult, Path, str]) -> None:
    result, _tmp, text = dev_run
    samples = _samples(text)
    with RunStore(result.db_path) as store:
        report = build_report(store, result.run_id)
    labels = {"profile": "dev", "portfolio": "main"}
    assert result.fills > 5
    assert _total(samples["perps_bot_fills_total"], **labels) == result.fills
    assert _total(samples["perps_bot_trades_total"], **labels) == len(report.trades)
    assert _total(samples["perps_bot_equity"], **labels) == pytest.approx(result.final_equity)
    assert _total(samples["perps_bot_equity"], **labels) == pytest.approx(report.final_equity)
    states = {
        lab["state"]: v
        for lab, v in samples["perps_bot_risk_state"]
        if lab["portfolio"] == "main" and lab["profile"] == "dev"
    }
    assert states == {"ACTIVE": 1.0, "REDUCING": 0.0, "HALTED": 0.0}
    sent = _total(samples["perps_bot_orders_total"], status="new", **labels)
    filled = _total(samples["perps_bot_orders_total"], status="filled", **labels)
    assert sent > 0 and 0 < filled <= sent


def test_fees_and_funding_are_exported_as_paid(dev_run: tuple[RunResult, Path, str]) -> None:
    """`perps_bot_fees` and `perps_bot_funding` are what the account paid (HELP, README;
    the dashboard's PnL panel plots their negatives), as the stored rows add up."""
    result, _tmp, text = dev_run
    samples = _samples(text)
    labels = {"profile": "dev", "portfolio": "main", "run": result.run_id}
    with sqlite3.connect(result.db_path) as conn:
        (fees,) = conn.execute("SELECT SUM(fee) FROM fills WHERE run_id = ?", (result.run_id,))
        sql = "SELECT SUM(payment), COUNT(*) FROM funding WHERE run_id = ?"
        (received, payments) = conn.execute(sql, (result.run_id,)).fetchone()
    assert payments > 0 and received != 0.0
    assert _total(samples["perps_bot_fees"], **labels) == pytest.approx(fees[0])
    assert _total(samples["perps_bot_funding"], **labels) == pytest.approx(-received)


def test_order_events_carry_the_latency_the_histogram_counts(
    dev_run: tuple[RunResult, Path, str],
) -> None:
    result, tmp, text = dev_run
    events = [json.loads(line) for line in (tmp / "logs" / "events.jsonl").open()]
    orders = [e for e in events if e["type"] == "order" and e["run_id"] == result.run_id]
    latencies = [e["latency_ms"] for e in orders if e["latency_ms"] is not None]
    assert latencies and all(0 <= ms < 1_000 for ms in latencies)
    assert all(ms == round(ms, 4) for ms in latencies)  # the journal's 4 decimals
    samples = _samples(text)
    ours = {"profile": "dev", "portfolio": "main"}  # other runs of this process aside
    assert _total(samples["perps_bot_tick_to_order_seconds_count"], **ours) == len(latencies)
    assert _total(samples["perps_bot_tick_to_order_seconds_sum"], **ours) == pytest.approx(
        sum(latencies) / 1000.0, rel=1e-3
    )
    inf = _total(samples["perps_bot_tick_to_order_seconds_bucket"], le="+Inf", **ours)
    assert inf == len(latencies)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_exposition(dev_run: tuple[RunResult, Path, str]) -> None:
    checked = subprocess.run(["promtool", "check", "metrics"], input=dev_run[2], text=True,
                             capture_output=True, timeout=60)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_metric_has_help_and_counters_end_in_total(
    dev_run: tuple[RunResult, Path, str],
) -> None:
    families = {f.name: f for f in text_string_to_metric_families(dev_run[2])}
    for spec in METRICS:
        family = families[spec.family]
        assert family.type == spec.kind and family.documentation
    assert "perps_bot_fills_total" in _samples(dev_run[2])


def _queried_metrics(node: Any) -> set[str]:
    """Every perps_bot_* name in the dashboard's PromQL expressions."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "query", "definition") and isinstance(value, str):
                found |= set(re.findall(r"\bperps_bot_[a-z0-9_]+", value))
            else:
                found |= _queried_metrics(value)
    elif isinstance(node, list):
        for item in node:
            found |= _queried_metrics(item)
    return found


def test_grafana_dashboard_queries_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queried = _queried_metrics(dashboard)
    exported = {name for spec in METRICS for name in spec.series}
    assert len(queried) >= 8, "the dashboard should chart the bot's metrics"
    assert queried <= exported, f"not exported: {sorted(queried - exported)}"
    selected = set(re.findall(r"[{,]\s*([a-z_]+)\s*=~", DASHBOARD.read_text().replace('\\"', '"')))
    assert {"profile", "portfolio", "run"} <= selected
    assert selected <= {label for spec in METRICS for label in spec.labels}
    # the registry served at /metrics is the one that defines them
    text = "\n".join(f.name for f in metrics_registry().collect())
    assert all(spec.family in text for spec in METRICS)


def test_the_dashboard_check_can_fail() -> None:
    assert _queried_metrics({"targets": [{"expr": "rate(perps_bot_nope_total[5m])"}]}) == {
        "perps_bot_nope_total"
    }


def test_a_run_removed_from_the_registry_is_no_longer_exported() -> None:
    run = RunMetrics("removal-test", "r1", "p1").start()
    run("fill", {"type": "fill", "symbol": "BTC-PERP"})
    text = generate_latest(metrics_registry()).decode()
    assert 'profile="removal-test"' in text
    run.remove()
    assert 'profile="removal-test"' not in generate_latest(metrics_registry()).decode()


def _exported_runs(profile: str) -> list[str]:
    families = text_string_to_metric_families(generate_latest(metrics_registry()).decode())
    return sorted({
        sample.labels["run"]
        for family in families
        if family.name == "perps_bot_fills"
        for sample in family.samples
        if sample.labels["profile"] == profile
    })  # fmt: skip


def test_only_a_finished_run_is_replaced_by_the_next_of_its_profile_and_portfolio() -> None:
    """Runs going on side by side are all exported; a finished one stays (frozen) until
    a run with its profile and portfolio starts, and a resumed run replaces itself."""
    runs = [RunMetrics("side-by-side", f"r{i}", "main").start() for i in range(2)]
    for run in runs:
        run("fill", {"type": "fill", "symbol": "BTC-PERP"})
    assert _exported_runs("side-by-side") == ["r0", "r1"]
    runs[0].close()
    assert _exported_runs("side-by-side") == ["r0", "r1"], "a finished run stays"
    for run_id, portfolio in (("r2", "other"), ("r3", "main")):
        runs.append(RunMetrics("side-by-side", run_id, portfolio).start())
        runs[-1]("fill", {"type": "fill", "symbol": "X"})
    assert _exported_runs("side-by-side") == ["r1", "r2", "r3"], "r0 finished, r3 replaced it"
    runs.append(RunMetrics("side-by-side", "r1", "main").start())  # r1 resumed
    assert _exported_runs("side-by-side") == ["r2", "r3"], "the resumed r1 has counted nothing"
    for run in runs:
        run.remove()
    assert _exported_runs("side-by-side") == []


def test_a_finished_run_leaves_the_exposition_after_the_retention() -> None:
    """A session server runs for weeks: a finished run's series stay for a while (a
    scrape sees how it ended), then go, though no run of its profile ever starts again;
    a run still going stays however long it goes."""
    with freeze_time("2026-01-01") as clock:
        going = RunMetrics("retention", "going", "main").start()
        done = RunMetrics("retention", "done", "other").start()
        for run in (going, done):
            run("fill", {"type": "fill", "symbol": "BTC-PERP"})
        done.close()
        clock.tick(FINISHED_RETENTION_S - 1.0)
        assert _exported_runs("retention") == ["done", "going"], "within the retention"
        clock.tick(2.0)
        assert _exported_runs("retention") == ["going"], "past it: gone"
        clock.tick(30 * 24 * 3600.0)
        assert _exported_runs("retention") == ["going"]
        going.remove()


def test_trades_are_counted_when_the_log_shows_only_warnings(tmp_path: Path) -> None:
    """Round trips are built for the metrics even when no TRADE CLOSED line is logged."""
    result = _run(tmp_path, log_level="WARNING")
    with RunStore(result.db_path) as store:
        report = build_report(store, result.run_id)
    samples = _samples(generate_latest(metrics_registry()).decode())
    labels = {"profile": "dev", "portfolio": "main", "run": result.run_id}
    assert len(report.trades) > 0
    assert _total(samples["perps_bot_trades_total"], **labels) == len(report.trades)
    assert _total(samples["perps_bot_fills_total"], **labels) == result.fills
