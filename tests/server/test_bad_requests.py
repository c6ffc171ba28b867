"""Hostile requests to the session API through real HTTP on 127.0.0.1: bodies the JSON
parser chokes on, query numbers that are not plain ASCII digits or are absurdly long,
prompt files that are not text files, a portfolio asked for by `?portfolio=` that the
endpoint ignored, a symbol with no instrument and a portfolio named as the account.
Each is a 4xx with one line; the running session next to them goes on untouched."""

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.server.helpers import dev_session, read_until, serving, start

pytestmark = pytest.mark.usefixtures("server_logs")


TWICE = b'{"profile": "dev", "profile": "prod"}'
BAD_BODIES = [
    (b"[" * 100_000, {}, "malformed JSON: nested too deeply"),
    (b'{"a": ' * 50_000, {}, "malformed JSON: nested too deeply"),
    (b'{"seed": ' + b"9" * 5_000 + b"}", {}, "malformed JSON: a number with too many digits"),
    (TWICE, {}, "malformed JSON: field 'profile' is given twice"),
    # half a surrogate pair: a 201, then the run failed with a traceback (UnicodeEncodeError)
    (b'{"portfolios": [{"strategy": "llm_planner", "params": {"model": "x\\ud800"}}]}', {},
     "malformed JSON: a \\u escape of half a surrogate pair"),
    (b'{"portfolios": [{"strategy": "sma_cross", "symbols": ["\\udc00"]}]}', {},
     "malformed JSON: a \\u escape of half a surrogate pair"),
    (b"not gzip", {"Content-Type": "application/json", "Content-Encoding": "gzip"},
     "unreadable body: Can not decode content-en"),
    (b"{}", {"Content-Type": "application/json; charset=klingon"},
     "unreadable body: unknown charset 'klingon'"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "headers", "message"), BAD_BODIES)
async def test_a_body_the_json_parser_chokes_on_is_a_400(
    tmp_path: Path, body: bytes, headers: dict[str, str], message: str
) -> None:
    async with serving(tmp_path / "server.sqlite") as (client, _):
        headers = {"Content-Type": "application/json"} | headers
        resp = await client.post("/api/sessions", data=body, headers=headers)
        assert resp.status == 400, await resp.text()
        error = (await resp.json())["error"]
        assert message in error and "\n" not in error and len(error) < 200, error
        assert (await (await client.get("/api/sessions")).json())["sessions"] == []


def _session(client: Any) -> Any:
    return start(client, dev_session("120d"))


async def _trading(client: Any, sid: str) -> None:
    ws = await client.ws_connect(f"/api/sessions/{sid}/stream")
    await read_until(ws, [], lambda m: m["type"] == "fill")
    await ws.close()


@pytest.mark.parametrize("path", ["trades?limit=", "equity?points=", "stream?trades="])
async def test_query_numbers_are_plain_ascii_digits_of_a_sane_length(
    tmp_path: Path, path: str
) -> None:
    """'²' passed str.isdigit() and broke int() (500); Arabic-Indic digits were taken
    as a number; 5,000 digits broke int() (500)."""
    async with serving(tmp_path / "server.sqlite") as (client, _):
        sid = await _session(client)
        name = path.split("?")[1].rstrip("=")
        for value in ("\u00b2", "\u0661\u0662", "9" * 5_000, "9" * 20):
            resp = await client.get(f"/api/sessions/{sid}/{path}{value}")
            assert resp.status == 400, (value[:10], await resp.text())
            error = (await resp.json())["error"]
            assert error.startswith(f"{name}: expected a positive integer") and len(error) < 200
        fine = await client.get(f"/api/sessions/{sid}/trades?limit=" + "9" * 18)
        assert fine.status == 200
        assert (await client.post(f"/api/sessions/{sid}/stop")).status == 200


async def test_a_prompt_file_that_is_no_text_file_is_a_400(tmp_path: Path) -> None:
    """A binary file or a path with a NUL byte was a 500; a FIFO (or /dev/zero) was read
    on the event loop forever, and every session of the server stood still."""
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00 not utf-8")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big.txt"
    big.write_text("x" * 20_001)
    cases = [
        (binary, "not UTF-8 text"),
        (Path("a\x00b"), "cannot read it"),
        (fifo, "not a regular file"),
        (Path("/dev/zero"), "not a regular file"),
        (tmp_path, "not a regular file"),
        (big, "at most 20000 characters"),
    ]
    async with serving(tmp_path / "server.sqlite") as (client, _):
        sid = await _session(client)
        await _trading(client, sid)
        for path, message in cases:
            resp = await client.put(
                f"/api/sessions/{sid}/strategy", json={"prompt_file": str(path)}
            )
            assert resp.status == 400, (path, await resp.text())
            error = (await resp.json())["error"]
            assert error.startswith("prompt_file: ") and message in error, error
            assert "\n" not in error
        view = await (await client.get(f"/api/sessions/{sid}")).json()
        assert view["status"] == "running"
        assert (await client.post(f"/api/sessions/{sid}/stop")).status == 200


async def test_plans_of_one_portfolio_and_of_an_unknown_one(tmp_path: Path) -> None:
    """`?portfolio=` was ignored by /plans: every portfolio came back, a 200 for one the
    session does not have."""
    async with serving(tmp_path / "server.sqlite") as (client, _):
        sid = await _session(client)
        await _trading(client, sid)
        every = await (await client.get(f"/api/sessions/{sid}/plans")).json()
        assert [p["id"] for p in every["portfolios"]] == ["sma_cross", "mean_reversion"]
        one = await (await client.get(f"/api/sessions/{sid}/plans?portfolio=mean_reversion")).json()
        assert one["portfolios"] == [every["portfolios"][1]]
        ghost = await client.get(f"/api/sessions/{sid}/plans?portfolio=ghost")
        assert ghost.status == 404
        assert (
            "no portfolio 'ghost' (it has: sma_cross, mean_reversion)"
            in (await ghost.json())["error"]
        )
        assert (await client.post(f"/api/sessions/{sid}/stop")).status == 200


async def test_a_symbol_with_no_instrument_is_a_400_that_leaves_no_session(
    tmp_path: Path,
) -> None:
    """It was a 201 and a session that failed at once, kept in the list and the table."""
    async with serving(tmp_path / "server.sqlite") as (client, _):
        for symbols in (["NOPE-PERP"], ["BTC-PERP", ""]):
            body = dev_session("1d", portfolios=[{"strategy": "sma_cross", "symbols": symbols}])
            resp = await client.post("/api/sessions", json=body)
            assert resp.status == 400, await resp.text()
            error = (await resp.json())["error"]
            assert error.startswith(f"unknown symbol {symbols[-1]!r}: no instrument for it")
        assert (await (await client.get("/api/sessions")).json())["sessions"] == []


async def test_a_portfolio_may_not_be_named_as_the_account_beside_others(
    tmp_path: Path,
) -> None:
    """It was a 201: the hello's chart then had two curves named 'account' (the whole
    account's and the portfolio's) and the stream sent both as portfolio 'account', so
    the dashboard drew them as one line. One portfolio of that name is no clash."""
    async with serving(tmp_path / "server.sqlite") as (client, _):
        two = [{"id": "account", "strategy": "sma_cross"}, {"strategy": "mean_reversion"}]
        resp = await client.post("/api/sessions", json=dev_session("1d", portfolios=two))
        assert resp.status == 400, await resp.text()
        error = (await resp.json())["error"]
        assert error.startswith("config: portfolio id 'account' is taken") and "\n" not in error
        assert (await (await client.get("/api/sessions")).json())["sessions"] == []
        sid = await start(client, dev_session("1d", portfolios=two[:1]))
        assert (await client.post(f"/api/sessions/{sid}/stop")).status == 200


async def test_a_portfolio_id_of_dots_only_is_a_400(tmp_path: Path) -> None:
    """'.' and '..' are path segments every client resolves away (the page's fetch
    included, even escaped as %2E): the controls of such a portfolio reached another
    URL (…/portfolios/../pause is …/pause) and it could never be paused or flattened."""
    async with serving(tmp_path / "server.sqlite") as (client, _):
        for pid in (".", ".."):
            body = dev_session("1d", portfolios=[{"id": pid, "strategy": "sma_cross"}])
            resp = await client.post("/api/sessions", json=body)
            assert resp.status == 400, await resp.text()
            error = (await resp.json())["error"]
            assert "portfolios.0.id" in error and "\n" not in error, error
        assert (await (await client.get("/api/sessions")).json())["sessions"] == []
        dotted = [{"id": "v1.2", "strategy": "sma_cross"}]  # dots within an id are fine
        sid = await start(client, dev_session("120d", portfolios=dotted))
        await _trading(client, sid)
        assert (await client.post(f"/api/sessions/{sid}/portfolios/v1.2/pause")).status == 200
        assert (await client.post(f"/api/sessions/{sid}/stop")).status == 200


async def test_a_profile_whose_name_is_no_url_segment_is_a_400(tmp_path: Path) -> None:
    """A profile file saying `profile: a/b` started a session whose run ids (the session
    id of its `--http-port` dashboard) and database name held a '/'."""
    path = tmp_path / "mine.yaml"
    path.write_text("profile: a/b\nrun:\n  dev_fast: true\n")
    async with serving(tmp_path / "server.sqlite") as (client, _):
        resp = await client.post("/api/sessions", json=dev_session("1d", profile=str(path)))
        assert resp.status == 400, await resp.text()
        error = (await resp.json())["error"]
        assert "'a/b' is no profile name" in error and "\n" not in error, error
        assert (await (await client.get("/api/sessions")).json())["sessions"] == []


async def test_a_capital_too_large_for_a_float_is_a_400(tmp_path: Path) -> None:
    """An integer capital of 400 digits (JSON allows it; no float holds it) passed the
    'positive number' check and broke float() after it: a 500 and a traceback."""
    body = b'{"profile": "dev", "portfolios": [{"strategy": "sma_cross", "capital": 1%s}]}'
    async with serving(tmp_path / "server.sqlite") as (client, _):
        resp = await client.post(
            "/api/sessions", data=body % (b"0" * 400), headers={"Content-Type": "application/json"}
        )
        assert resp.status == 400, await resp.text()
        error = (await resp.json())["error"]
        assert error.startswith("portfolios[0].capital: expected a positive number"), error
        assert "\n" not in error and len(error) < 200, error
        assert (await (await client.get("/api/sessions")).json())["sessions"] == []


async def test_a_plan_file_that_cannot_be_read_is_a_400_that_leaves_no_session(
    tmp_path: Path,
) -> None:
    """It was a 201 and a session that failed at once, kept in the list and the table
    (with a NUL byte in the path, a ValueError with its traceback in the server log).
    A plan that reads starts."""
    not_a_plan = tmp_path / "notes.txt"
    not_a_plan.write_text("secret: 1\n")
    good = tmp_path / "plan.csv"
    good.write_text("id,symbol,side,size\nx,BTC-PERP,long,0.001\n")
    refused = [
        (str(tmp_path / "missing.csv"), "missing.csv: no such file"),
        (str(tmp_path / "a\x00b.csv"), "no such file"),
        (str(tmp_path), "no such file"),
        (str(not_a_plan), "unknown column"),
    ]
    async with serving(tmp_path / "server.sqlite") as (client, _):
        for path, message in refused:
            body = dev_session("1d", portfolios=[{"strategy": "plan", "params": {"file": path}}])
            resp = await client.post("/api/sessions", json=body)
            assert resp.status == 400, await resp.text()
            error = (await resp.json())["error"]
            assert message in error and "\n" not in error and len(error) < 300, error
        assert (await (await client.get("/api/sessions")).json())["sessions"] == []
        ok = [{"strategy": "plan", "params": {"file": str(good)}}]
        sid = await start(client, dev_session("1d", portfolios=ok))
        assert (await client.post(f"/api/sessions/{sid}/stop")).status == 200


async def test_an_llm_planner_prompt_file_that_cannot_be_read_is_a_400(tmp_path: Path) -> None:
    """A prompt_file param naming no file (or a directory, a FIFO, binary bytes) was a
    201 and a session that failed at once, kept in the list. A prompt that reads starts."""
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00 not utf-8")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    good = tmp_path / "prompt.txt"
    good.write_text("You are a careful trader.\n")
    refused = [
        (tmp_path / "missing.txt", "missing.txt: cannot read it"),
        (binary, "not UTF-8 text"),
        (fifo, "not a regular file"),
        (tmp_path, "not a regular file"),
    ]
    async with serving(tmp_path / "server.sqlite") as (client, _):
        for path, message in refused:
            params = {"prompt_file": str(path), "cache_only": True}
            body = dev_session("1d", portfolios=[{"strategy": "llm_planner", "params": params}])
            resp = await client.post("/api/sessions", json=body)
            assert resp.status == 400, (path, await resp.text())
            error = (await resp.json())["error"]
            assert error.startswith("strategy 'llm_planner': prompt ") and message in error, error
            assert "\n" not in error and len(error) < 300, error
        assert (await (await client.get("/api/sessions")).json())["sessions"] == []
        ok = [{"strategy": "llm_planner", "params": {"prompt_file": str(good)}}]
        sid = await start(client, dev_session("1d", portfolios=ok))
        assert (await client.post(f"/api/sessions/{sid}/stop")).status == 200


async def test_walkforward_windows_that_cannot_run_are_a_400_that_leaves_no_session(
    tmp_path: Path,
) -> None:
    """A window's params that its strategy refuses, or windows of walkforward itself,
    were a 201 and a session that failed at once, kept in the list."""
    refused = [
        ("sma_cross", '[[0, 1, {"fast": -1}]]', "bad param 'fast'"),
        ("sma_cross", '[[0, 1, {"colour": 1}]]', "unknown param 'colour'"),
        ("walkforward", "[[0, 1, {}]]", "walkforward cannot run walkforward windows"),
    ]
    async with serving(tmp_path / "server.sqlite") as (client, _):
        for inner, windows, message in refused:
            params = {"strategy": inner, "windows": windows}
            body = dev_session("1d", portfolios=[{"strategy": "walkforward", "params": params}])
            resp = await client.post("/api/sessions", json=body)
            assert resp.status == 400, await resp.text()
            error = (await resp.json())["error"]
            assert message in error and "\n" not in error and len(error) < 300, error
        assert (await (await client.get("/api/sessions")).json())["sessions"] == []


async def test_walkforward_windows_off_the_bars_are_a_400_that_leaves_no_session(
    tmp_path: Path,
) -> None:
    """Windows given by hand with an edge inside one of the strategy's bars (1m bars
    here, the profile's strategy.timeframe) were a 201 and a session whose windows ended
    at the bar after their end, as `perps-bot walkforward` refuses to plan them."""
    windows = json.dumps([[60_000, 150_000, {"fast": 2, "slow": 5}]])
    params = {"strategy": "sma_cross", "windows": windows}
    async with serving(tmp_path / "server.sqlite") as (client, _):
        body = dev_session("1d", portfolios=[{"strategy": "walkforward", "params": params}])
        resp = await client.post("/api/sessions", json=body)
        assert resp.status == 400, await resp.text()
        error = (await resp.json())["error"]
        assert "windows[0] end 1970-01-01T00:02:30" in error, error
        assert "is not on an edge of the 1m bars" in error and "\n" not in error, error
        assert (await (await client.get("/api/sessions")).json())["sessions"] == []
