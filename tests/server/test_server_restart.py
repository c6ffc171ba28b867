"""SPEC 11's durability: a `perps-bot serve` killed with SIGKILL in the middle of a dev
session and started again goes on with the session from its last checkpoint, and the
session ends with exactly the fills of an uninterrupted session with the same seed."""

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.durable.helpers import fills, kill9, query, wait_for
from tests.server.helpers import dev_session, serve_process


def _call(port: int, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                     headers={"Content-Type": "application/json"},
                                     method="POST" if body is not None else "GET")  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())


def _status(port: int, sid: str) -> dict[str, Any]:
    result: dict[str, Any] = _call(port, f"/api/sessions/{sid}")
    return result


def _stored_fills(db: Path, run_id: str) -> dict[str, list[tuple[Any, ...]]]:
    return {pid: fills(db, f"{run_id}.{pid}") for pid in ("sma_cross", "mean_reversion")}


@pytest.mark.integration
def test_a_killed_server_goes_on_with_its_session_to_the_fills_of_an_uninterrupted_one(
    tmp_path: Path,
) -> None:
    # a month on the simulated clock: long enough that a fast machine is still running
    # it when its first checkpoint is stored (8 days took 2.3 s on one, with none stored)
    body = dev_session("30d")
    reference_db, killed_db = tmp_path / "reference.sqlite", tmp_path / "killed.sqlite"
    reference, ref_port = serve_process(reference_db, tmp_path / "ref")
    killed, port = serve_process(killed_db, tmp_path / "killed")
    try:
        ref_sid = _call(ref_port, "/api/sessions", body)["session_id"]
        sid = _call(port, "/api/sessions", body)["session_id"]
        # some fills stored and a checkpoint taken (every 2 s of wall time)
        wait_for(lambda: len(query(killed_db, "SELECT 1 FROM checkpoints")) >= 1, 120,
                 "a checkpoint of the session")  # fmt: skip
        assert _status(port, sid)["status"] == "running"
        kill9(killed)
        run_id = _status(ref_port, ref_sid)["run_id"]
        wait_for(lambda: _status(ref_port, ref_sid)["status"] == "completed", 300, "the reference")
        restarted, port = serve_process(killed_db, tmp_path / "restarted")
        try:
            wait_for(lambda: _status(port, sid)["status"] != "running", 300, "the resumed end")
            after = _status(port, sid)
        finally:
            restarted.terminate()
            restarted.wait(timeout=60)
    finally:
        for proc in (reference, killed):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert after["status"] == "completed", after
    expected = _stored_fills(reference_db, run_id)
    got = _stored_fills(killed_db, after["run_id"])
    assert all(len(f) > 50 for f in expected.values())
    assert got == expected
    [(status, detail)] = query(killed_db, "SELECT status, detail FROM runs WHERE run_id=?",
                               (after["run_id"],))  # fmt: skip
    assert status == "completed" and "resumed from its checkpoint" in detail
