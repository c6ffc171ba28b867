"""A paper session of the `plan` strategy whose plan file was edited (the documented
way to change a running plan) while the server was down: the restart resumed its run
and `--resume` refused it as "not the code it started with" (the fingerprint covers
the plan file's content, for promotions), so the session failed."""

from pathlib import Path

import pytest

from tests.harness.polling import until
from tests.plans.helpers import write_plan
from tests.server.helpers import serving, start

ROW = {"id": "a", "side": "long", "size": 0.01, "entry": "market",
       "valid_from": "2024-01-01T00:10:00Z"}  # fmt: skip


async def test_a_plan_session_goes_on_after_its_plan_was_edited_across_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_repo: Path
) -> None:
    monkeypatch.setenv("PERPS_BOT__RUN__LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("PERPS_BOT__RUN__DATA_DIR", str(tmp_path / "data"))
    plan = write_plan(tmp_path / "plan.csv", [ROW])
    portfolio = {"id": "p", "strategy": "plan", "params": {"file": str(plan)}}
    body = {"profile": "dev", "seed": 3, "duration": "3650d", "dev_fast": True,
            "portfolios": [portfolio]}  # fmt: skip
    db = tmp_path / "server.sqlite"
    async with serving(db) as (client, manager):
        sid = await start(client, body)
        first = manager.sessions[sid]
        await until(lambda: first.run is not None, 120, 0.01)
    write_plan(plan, [ROW, {"id": "b", "side": "flat", "valid_from": "2024-01-01T00:20:00Z"}])
    async with serving(db) as (client, manager):
        again = manager.sessions[sid]
        await until(lambda: again.run is not None or again.status == "failed", 120, 0.01)
        assert again.status == "running", again.detail
