"""The session API of SPEC 11 through real HTTP on 127.0.0.1: start, list, get,
portfolio, trades, equity, the websocket stream, pause / resume / flatten, stop, every
refusal as a 4xx with a message, and the token off loopback."""

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from perps_bot.server import views
from perps_bot.server.serve import ServerError, server_token
from perps_bot.server.session import Session
from perps_bot.storage import RunStore
from tests.durable.helpers import cli
from tests.server.helpers import dev_session, ended, read_until, serving, start

pytestmark = pytest.mark.usefixtures("server_logs")


async def test_a_session_runs_to_its_end_and_every_read_endpoint_shows_it(tmp_path: Path) -> None:
    db = tmp_path / "server.sqlite"
    async with serving(db) as (client, _):
        sid = await start(client, dev_session("2d"))
        ws = await client.ws_connect(f"/api/sessions/{sid}/stream")
        seen: list[dict[str, Any]] = []
        await read_until(ws, seen, ended)
        kinds = {m["type"] for m in seen}
        assert {"hello", "fill", "trade", "equity", "portfolio", "status"} <= kinds, kinds
        assert seen[-1]["data"]["status"] == "completed"

        listed = await (await client.get("/api/sessions")).json()
        assert [s["session_id"] for s in listed["sessions"]] == [sid]
        got = await (await client.get(f"/api/sessions/{sid}")).json()
        run_id = got["run_id"]
        assert got["status"] == "completed" and run_id

        portfolio = await (await client.get(f"/api/sessions/{sid}/portfolio")).json()
        assert [p["id"] for p in portfolio["portfolios"]] == ["sma_cross", "mean_reversion"]
        assert [p["capital"] for p in portfolio["portfolios"]] == [60_000, 40_000]

        trades = (await (await client.get(f"/api/sessions/{sid}/trades")).json())["trades"]
        last = (await (await client.get(f"/api/sessions/{sid}/trades?limit=5")).json())["trades"]
        assert len(trades) > 20 and last == trades[-5:]
        assert {t["portfolio"] for t in trades} == {"sma_cross", "mean_reversion"}
        # the stream has every trade closed since it was opened, as the store has it
        key = ("portfolio", "symbol", "side", "size", "entry_price", "exit_price", "exit_reason")
        stored = Counter(tuple(t[k] for k in key) for t in trades)
        streamed = Counter(
            tuple(m["portfolio"] if k == "portfolio" else m["data"][k] for k in key)
            for m in seen if m["type"] == "trade"
        )  # fmt: skip
        assert streamed and not streamed - stored
        assert tuple(trades[-1][k] for k in key) in streamed
        fills = {m["data"]["client_id"] for m in seen if m["type"] == "fill"}

        curve = await (await client.get(f"/api/sessions/{sid}/equity?points=50")).json()
        mine = await (await client.get(f"/api/sessions/{sid}/equity?portfolio=sma_cross")).json()
        assert curve["run_id"] == run_id and mine["run_id"] == f"{run_id}.sma_cross"
        assert 40 <= len(curve["ts"]) <= 52 and curve["ts"] == sorted(curve["ts"])
    with RunStore(db, read_only=True) as store:
        ids = {f.client_id for pid in ("sma_cross", "mean_reversion")
               for f in store.fills(f"{run_id}.{pid}")}  # fmt: skip
        assert store.run(run_id).status == "completed"
        assert curve["equity"][-1] == pytest.approx(store.last_equity(run_id), rel=1e-12)
    assert fills and fills <= ids


async def test_a_one_portfolio_session_is_measured_against_its_own_capital(
    tmp_path: Path,
) -> None:
    """A session of one portfolio with 5,000 of capital (the dev profile's balance is
    100,000): once it ended, its portfolio read 'capital 100000, pnl -95000', and its
    report a return of about -95%."""
    db = tmp_path / "server.sqlite"
    body = dev_session("1d") | {
        "portfolios": [{"strategy": "sma_cross", "params": {"fast": 3, "slow": 8},
                        "capital": 5_000}],
    }  # fmt: skip
    async with serving(db) as (client, _):
        sid = await start(client, body)
        ws = await client.ws_connect(f"/api/sessions/{sid}/stream")
        await read_until(ws, [], ended)
        (portfolio,) = (await (await client.get(f"/api/sessions/{sid}/portfolio")).json())[
            "portfolios"
        ]
        run_id = (await (await client.get(f"/api/sessions/{sid}")).json())["run_id"]
    assert portfolio["capital"] == 5_000
    assert abs(portfolio["pnl"]) < 500 and portfolio["pnl"] == pytest.approx(
        portfolio["equity"] - 5_000
    )
    shown = cli("report", "--db", str(db), "--run", run_id, "--format", "json", tmp=tmp_path)
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["run"]["initial_balance"] == 5_000
    assert abs(report["metrics"]["return_pct"]) < 10


async def test_a_stream_opened_mid_session_starts_with_its_history_and_misses_nothing(
    tmp_path: Path,
) -> None:
    """The dashboard builds its view from the hello and what follows: together they
    hold every trade exactly once, and every streamed equity point is newer than the
    hello's curve (the hello is read in the step that subscribes)."""
    key = ("portfolio", "symbol", "side", "size", "entry_price", "exit_price", "exit_reason")
    async with serving(tmp_path / "server.sqlite") as (client, _):
        sid = await start(client, dev_session("3d"))
        async with asyncio.timeout(120):  # open it once the run has closed trades
            while not (await (await client.get(f"/api/sessions/{sid}/trades")).json())["trades"]:
                await asyncio.sleep(0.02)
        ws = await client.ws_connect(f"/api/sessions/{sid}/stream?trades=100000&points=50")
        seen: list[dict[str, Any]] = []
        await read_until(ws, seen, ended)
        stored = (await (await client.get(f"/api/sessions/{sid}/trades")).json())["trades"]
        whole = {
            name: (await (await client.get(f"/api/sessions/{sid}/equity?points=1000000" + (
                "" if name == "account" else f"&portfolio={name}"))).json())["ts"]
            for name in ("account", "sma_cross", "mean_reversion")
        }  # fmt: skip
        bad = await client.get(f"/api/sessions/{sid}/stream?trades=many")
        assert bad.status == 400 and "trades" in (await bad.json())["error"]
    hello = seen[0]["data"]
    streamed = [m for m in seen if m["type"] == "trade"]
    assert hello["trades"] and streamed, "the stream opened before the end, after a trade"
    both = [tuple(t[k] for k in key) for t in hello["trades"]] + [
        tuple(m["portfolio"] if k == "portfolio" else m["data"][k] for k in key) for m in streamed
    ]
    assert Counter(both) == Counter(tuple(t[k] for k in key) for t in stored)
    curves = dict(hello["equity"])
    assert list(curves) == ["account", "sma_cross", "mean_reversion"]
    for name, curve in curves.items():
        assert len(curve["ts"]) <= 52 and curve["ts"] == sorted(curve["ts"])
        assert curve["ts"][0] == whole[name][0] and curve["ts"][-1] in whole[name]
        later = [m["data"]["ts"] for m in seen if m["type"] == "equity" and m["portfolio"] == name]
        assert later and min(later) > curve["ts"][-1], name


async def test_pause_flatten_resume_and_stop_a_running_session(tmp_path: Path) -> None:
    async with serving(tmp_path / "server.sqlite") as (client, _):
        sid = await start(client, dev_session("120d"))
        ws = await client.ws_connect(f"/api/sessions/{sid}/stream")
        seen: list[dict[str, Any]] = []

        def holds(message: dict[str, Any]) -> bool:
            if message["type"] != "portfolio":
                return False
            return any(
                p["positions"] for p in message["data"]["portfolios"] if p["id"] == "sma_cross"
            )

        await read_until(ws, seen, holds)
        base = f"/api/sessions/{sid}/portfolios/sma_cross"
        flat = await (await client.post(f"{base}/flatten")).json()
        assert flat["action"] == "flatten" and flat["closing"] >= 1
        assert flat["paused"] is True, "a flatten pauses: the strategy must not reopen"

        def sma_flat(message: dict[str, Any]) -> bool:
            return (
                message["type"] == "portfolio"
                and not next(p for p in message["data"]["portfolios"] if p["id"] == "sma_cross")[
                    "positions"
                ]
            )

        await read_until(ws, seen, sma_flat)
        at = len(seen)
        closing = [m for m in seen if m["type"] == "fill" and m["portfolio"] == "sma_cross"
                   and m["data"]["reason"].startswith("flatten")]  # fmt: skip
        assert closing, "the flatten went through the stages as orders and fills"
        # paused by the flatten: the other portfolio trades on, this one sends nothing
        await read_until(
            ws, seen, lambda m: len([x for x in seen[at:] if x["type"] == "fill"]) >= 20
        )
        assert not [m for m in seen[at:] if m["type"] == "fill" and m["portfolio"] == "sma_cross"]
        view = await (await client.get(f"/api/sessions/{sid}")).json()
        assert [p["paused"] for p in view["portfolios"]] == [True, False]
        paused = await (await client.post(f"{base}/pause")).json()
        assert paused["paused"] is True and paused["action"] == "pause"

        resumed = await (await client.post(f"{base}/resume")).json()
        assert resumed["paused"] is False
        await read_until(ws, seen, lambda m: m["type"] == "fill" and m["portfolio"] == "sma_cross")

        assert (await client.post(f"/api/sessions/{sid}/stop")).status == 200
        await read_until(ws, seen, ended)
        assert seen[-1]["data"]["status"] == "stopped"
        again = await client.post(f"/api/sessions/{sid}/stop")
        assert again.status == 409 and "stopped" in (await again.json())["error"]
        late = await client.post(f"{base}/pause")
        assert late.status == 409 and "not running" in (await late.json())["error"]


BAD_STARTS = [
    (b"{not json", 400, "malformed JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (json.dumps({"profile": "dev"}).encode(), 400, "portfolios"),
    (json.dumps(dev_session("1d") | {"colour": "red"}).encode(), 400, "unknown field 'colour'"),
    (json.dumps(dev_session("1d", portfolios=[{"strategy": "nope"}])).encode(), 400,
     "unknown strategy 'nope'"),
    (json.dumps(dev_session("1d", portfolios=[{"strategy": "sma_cross", "params": {"fast": "x"}}])
                ).encode(), 400, "'fast'"),
    (json.dumps(dev_session("1d", portfolios=[{"strategy": "sma_cross", "params": {"nope": 1}}])
                ).encode(), 400, "unknown param 'nope'"),
    (json.dumps(dev_session("1d", portfolios=[{"strategy": "sma_cross", "capital": -5}])
                ).encode(), 400, "capital"),
    (json.dumps(dev_session("1d", seed="five")).encode(), 400, "seed"),
    (json.dumps(dev_session("soon")).encode(), 400, "duration"),
    (json.dumps(dev_session("1d", profile="nope")).encode(), 400, "profile 'nope'"),
    (json.dumps({"profile": "prod", "portfolios": [{"strategy": "sma_cross"}]}).encode(), 403,
     "--allow-live"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status", "message"), BAD_STARTS)
async def test_a_bad_start_is_refused_with_a_message(
    tmp_path: Path, body: bytes, status: int, message: str
) -> None:
    async with serving(tmp_path / "server.sqlite") as (client, _):
        resp = await client.post(
            "/api/sessions", data=body, headers={"Content-Type": "application/json"}
        )
        assert resp.status == status
        error = (await resp.json())["error"]
        assert message in error and "\n" not in error
        assert (await (await client.get("/api/sessions")).json())["sessions"] == []


async def test_unknown_sessions_portfolios_routes_and_queries_are_4xx(tmp_path: Path) -> None:
    async with serving(tmp_path / "server.sqlite") as (client, _):
        sid = await start(client, dev_session("60d"))
        await asyncio.sleep(0.5)
        cases = [
            ("GET", "/api/sessions/nope", 404, "no session 'nope'"),
            ("GET", "/api/sessions/nope/trades", 404, "no session"),
            ("POST", "/api/sessions/nope/stop", 404, "no session"),
            ("POST", f"/api/sessions/{sid}/portfolios/ghost/pause", 404, "no portfolio 'ghost'"),
            ("POST", f"/api/sessions/{sid}/portfolios/sma_cross/explode", 404, "unknown action"),
            ("GET", f"/api/sessions/{sid}/equity?portfolio=ghost", 404, "no portfolio 'ghost'"),
            ("GET", f"/api/sessions/{sid}/equity?points=-3", 400, "points"),
            ("GET", f"/api/sessions/{sid}/trades?limit=many", 400, "limit"),
            ("GET", "/api/nothing", 404, "Not Found"),
            ("DELETE", "/api/sessions", 405, "Method Not Allowed"),
        ]
        for method, path, status, message in cases:
            resp = await client.request(method, path)
            assert resp.status == status, (path, await resp.text())
            assert message in (await resp.json())["error"], path
        await client.post(f"/api/sessions/{sid}/stop")


async def test_a_token_guards_the_api_status_and_metrics_but_not_health(tmp_path: Path) -> None:
    async with serving(tmp_path / "server.sqlite", token="s3cret") as (client, _):
        for path in ("/api/sessions", "/status", "/metrics"):
            refused = await client.get(path)
            assert refused.status == 401 and "Bearer" in (await refused.json())["error"]
            wrong = await client.get(path, headers={"Authorization": "Bearer nope"})
            assert wrong.status == 401
            assert (
                await client.get(path, headers={"Authorization": "Bearer s3cret"})
            ).status == 200
        assert (await client.get("/api/sessions?token=s3cret")).status == 200
        assert (await client.get("/health")).status == 200


def test_binding_beyond_loopback_needs_the_token(tmp_path: Path) -> None:
    assert server_token("127.0.0.1", {}) is None
    assert server_token("0.0.0.0", {"PERPS_BOT__SERVER__TOKEN": "t"}) == "t"
    with pytest.raises(ServerError, match="PERPS_BOT__SERVER__TOKEN"):
        server_token("0.0.0.0", {})
    done = cli("serve", "--host", "0.0.0.0", "--port", "0", "--db", str(tmp_path / "s.sqlite"),
               tmp=tmp_path)  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "PERPS_BOT__SERVER__TOKEN" in lines[0]


async def test_health_metrics_and_the_dashboard_files(tmp_path: Path) -> None:
    async with serving(tmp_path / "server.sqlite") as (client, _):
        health = await (await client.get("/health")).json()
        assert health == {"ok": True, "sessions": 0, "running": 0, "problems": []}
        text = await (await client.get("/metrics")).text()
        assert list(text_string_to_metric_families(text))
        page = await (await client.get("/")).text()
        assert 'id="equity-chart"' in page and "static/dashboard.js" in page
        for name in ("dashboard.js", "dashboard.css", "plotly.min.js"):
            resp = await client.get(f"/static/{name}")
            assert resp.status == 200 and len(await resp.read()) > 1000, name


async def test_two_sessions_of_one_profile_and_portfolio_are_both_exported(
    tmp_path: Path,
) -> None:
    """Each running session keeps its own series (told apart by `run`): before, the
    newer one replaced the older one's on the registry while both were trading."""
    async with serving(tmp_path / "server.sqlite") as (client, _):
        sids = [
            await start(client, dev_session("120d", seed=seed, portfolios=[
                {"strategy": "sma_cross", "params": {"fast": 3, "slow": slow}}]))
            for seed, slow in ((5, 8), (6, 12))
        ]  # fmt: skip
        for sid in sids:
            ws = await client.ws_connect(f"/api/sessions/{sid}/stream")
            await read_until(ws, [], lambda m: m["type"] == "fill")
            await ws.close()
        runs = [(await (await client.get(f"/api/sessions/{sid}")).json())["run_id"] for sid in sids]
        text = await (await client.get("/metrics")).text()
        for sid in sids:
            assert (await client.post(f"/api/sessions/{sid}/stop")).status == 200
    equity = [
        sample.labels
        for family in text_string_to_metric_families(text)
        if family.name == "perps_bot_equity"
        for sample in family.samples
        if sample.labels["profile"] == "dev" and sample.labels["portfolio"] == "sma_cross"
    ]
    assert len(equity) == 2, equity
    assert sorted(labels["run"] for labels in equity) == sorted(runs)
    fills = [
        sample.labels["run"]
        for family in text_string_to_metric_families(text)
        if family.name == "perps_bot_fills"
        for sample in family.samples
    ]
    assert set(runs) <= set(fills)


def test_a_session_not_yet_running_has_its_curves_named_and_empty(tmp_path: Path) -> None:
    """A page opened while the run is being made still gets its traces (the stream's
    points extend them once it runs)."""
    two = Session("s1", controls=True, created_at=0, portfolio_ids=["fast", "slow"])
    one = Session("s2", controls=True, created_at=0, portfolio_ids=["main"])
    with RunStore(tmp_path / "empty.sqlite") as store:
        assert views.curves(store, two, 10) == [
            (name, {"run_id": None, "ts": [], "equity": []}) for name in ("account", "fast", "slow")
        ]
        assert [name for name, _ in views.curves(store, one, 10)] == ["main"]


async def test_paper_sessions_each_execute_their_plan(tmp_path: Path) -> None:
    """A paper session is its own fresh account (sessions of one profile run side by
    side): the plan rows another session executed are not this one's to skip."""
    plan = tmp_path / "plan.csv"
    plan.write_text("id,symbol,side,size\nr1,BTC-PERP,long,0.01\n")
    body = dev_session("2h", portfolios=[{"id": "p", "strategy": "plan",
                                          "params": {"file": str(plan)}}])  # fmt: skip
    runs = []
    async with serving(tmp_path / "server.sqlite") as (client, manager):
        for _ in range(2):
            sid = await start(client, body)
            task = manager.sessions[sid].task
            assert task is not None
            await asyncio.wait_for(task, timeout=120)
            got = await (await client.get(f"/api/sessions/{sid}")).json()
            assert got["status"] == "completed", got
            runs.append(got["run_id"])
    with RunStore(tmp_path / "server.sqlite", read_only=True) as store:
        filled = [[f.size for f in store.fills(run_id)] for run_id in runs]
    assert filled == [[0.01], [0.01]], "the second session skipped the first one's row"


async def test_default_portfolio_ids_keep_clear_of_the_ids_given(tmp_path: Path) -> None:
    """A portfolio without `id` is named after its strategy, made unique also against
    the ids the other portfolios give (the request holds no id twice)."""
    body = dev_session("1h", portfolios=[{"strategy": "sma_cross"},
                                         {"strategy": "sma_cross", "id": "sma_cross"}])  # fmt: skip
    async with serving(tmp_path / "server.sqlite") as (client, manager):
        resp = await client.post("/api/sessions", json=body)
        assert resp.status == 201, await resp.text()
        sid = (await resp.json())["session_id"]
        assert manager.sessions[sid].portfolio_ids == ["sma_cross-2", "sma_cross"]
        await client.post(f"/api/sessions/{sid}/stop")


async def test_a_flatten_closes_what_is_held_and_withdraws_a_resting_entry(
    tmp_path: Path,
) -> None:
    """Long 0.01 BTC with a limit buy of 0.01 resting far below the market: the flatten
    sold 0.02 (its target of 0 counted the resting entry as filled), so the portfolio went
    short 0.01, and the entry, left resting, could open a position again. It now closes
    the 0.01 held (reduce-only) and cancels the entry."""
    plan = tmp_path / "plan.csv"
    rows = ["id,symbol,side,size,entry,limit_price", "r1,BTC-PERP,long,0.01,market,",
            "r2,BTC-PERP,long,0.01,limit,1000"]  # fmt: skip
    plan.write_text("\n".join(rows) + "\n")
    body = dev_session("120d", portfolios=[{"id": "p", "strategy": "plan",
                                            "params": {"file": str(plan)}}])  # fmt: skip
    async with serving(tmp_path / "server.sqlite") as (client, manager):
        sid = await start(client, body)
        ws = await client.ws_connect(f"/api/sessions/{sid}/stream")
        seen: list[dict[str, Any]] = []

        def position(message: dict[str, Any]) -> float | None:
            if message["type"] != "portfolio":
                return None
            held = message["data"]["portfolios"][0]["positions"]
            return sum(p["size"] for p in held) if held else 0.0

        await read_until(ws, seen, lambda m: position(m) == 0.01)
        flat = await (await client.post(f"/api/sessions/{sid}/portfolios/p/flatten")).json()
        assert flat["closing"] == 1, flat
        await read_until(ws, seen, lambda m: m["type"] == "fill" and m["data"]["reason"]
                         .startswith("flatten"))  # fmt: skip
        after = await (await client.get(f"/api/sessions/{sid}/portfolio")).json()
        await client.post(f"/api/sessions/{sid}/stop")
        await read_until(ws, seen, ended)
        run_id = manager.sessions[sid].run_id
    assert after["portfolios"][0]["positions"] == [], after
    with RunStore(tmp_path / "server.sqlite", read_only=True) as store:
        orders = [(o.side, o.order_type, o.size, o.status) for o in store.orders(str(run_id))]
    sells = [o for o in orders if o[0] == "sell"]
    assert sells == [("sell", "market", 0.01, "filled")], orders
    assert ("buy", "limit", 0.01, "canceled") in orders, orders


async def test_health_says_when_a_session_cannot_trade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/health answered {"ok": true} whatever the sessions did: a monitor could not tell
    a bot whose market data had stopped. A session on the wall clock whose data is older
    than its risk.stale_after makes it 503 with the reason; simulated time is not judged."""
    async with serving(tmp_path / "server.sqlite") as (client, manager):
        fast = await start(client, dev_session("120d"))
        async with asyncio.timeout(30):
            while manager.sessions[fast].run is None:
                await asyncio.sleep(0.05)
        assert (await client.get("/health")).status == 200
        monkeypatch.setenv("PERPS_BOT__RISK__STALE_AFTER", "1ms")  # ticks come every 1s
        slow = await start(client, dev_session("1h", dev_fast=False))
        async with asyncio.timeout(30):
            while (health := await client.get("/health")).status == 200:
                await asyncio.sleep(0.05)
        body = await health.json()
        for sid in (fast, slow):
            await client.post(f"/api/sessions/{sid}/stop")
    assert health.status == 503 and body["ok"] is False, body
    assert [line for line in body["problems"] if fast in line] == [], body
    assert any(slow in line and "no market data" in line and "stale_after 1ms" in line
               for line in body["problems"]), body  # fmt: skip
