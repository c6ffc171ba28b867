"""A session stopped through the API (POST /api/sessions/{id}/stop) ended before its
end: its run and each portfolio's run are stored `interrupted` (SPEC 9's status for a
run stopped before its end) with the reason, so `runs list` and `report` do not call
it completed, and a server started again on the database does not go on with it."""

import json
from pathlib import Path

import pytest

from tests.durable.helpers import cli
from tests.server.helpers import ended, read_until, serving, trading

pytestmark = pytest.mark.usefixtures("server_logs")


async def test_a_session_stopped_through_the_api_is_an_interrupted_run(tmp_path: Path) -> None:
    """Before, the session said `stopped` but its runs were stored `completed`."""
    db = tmp_path / "server.sqlite"
    async with serving(db) as (client, manager):
        sid, ws, seen = await trading(client, "365d")
        assert (await client.post(f"/api/sessions/{sid}/stop")).status == 200
        await read_until(ws, seen, ended)
        assert seen[-1]["data"]["status"] == "stopped"
        run_id = seen[-1]["data"]["run_id"]
        runs = [manager.store.run(run_id), *manager.store.children(run_id)]
        assert len(runs) == 3
        for run in runs:
            assert (run.status, run.detail) == ("interrupted", "stopped by the session API")
    async with serving(db) as (client, manager):  # the server again: it stays stopped
        view = await (await client.get(f"/api/sessions/{sid}")).json()
        assert view["status"] == "stopped" and manager.sessions[sid].task is None
    listed = cli("runs", "list", "--db", str(db), "--format", "json", tmp=tmp_path)
    assert listed.returncode == 0, listed.stderr
    statuses = {r["run_id"]: r["status"] for r in json.loads(listed.stdout)["runs"]}
    assert set(statuses.values()) == {"interrupted"} and run_id in statuses
    report = cli("report", "--run", run_id, "--db", str(db), tmp=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "Status: interrupted (stopped by the session API): stopped before its end" in (
        report.stdout
    )
