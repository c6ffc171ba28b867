"""A server that stops (Ctrl-C, SIGTERM) lets go of its database and of the accounts its
live sessions trade only once every session's run has really ended: a run still
executing may still write and send orders, and a second bot let in then would trade
the same account (or a second server go on with the same sessions) at once."""

import asyncio
from pathlib import Path
from typing import Any

import pytest

from perps_bot.server import SessionManager, manager
from perps_bot.server.session import STOPPED
from perps_bot.storage import RunStore
from perps_bot.storage import sessions as table
from perps_bot.storage.lock import DatabaseBusy, DatabaseLock
from tests.harness.polling import until
from tests.server.helpers import dev_session, serving, start

pytestmark = pytest.mark.usefixtures("server_logs")


def _free(db: Path) -> bool:
    """Whether another bot could take database `db` now."""
    try:
        DatabaseLock(db).acquire().release()
    except DatabaseBusy:
        return False
    return True


async def test_the_server_keeps_its_locks_until_a_slow_run_has_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, `close` waited 60 s for the runs, then released the locks and closed the
    store whatever they were doing: a run slower to stop (an exchange call that does not
    answer) went on with the account free for another bot."""
    db = tmp_path / "server.sqlite"
    seen_free: list[bool] = []
    run_started = asyncio.Event()

    async def slow_to_stop(*args: Any, **kwargs: Any) -> Any:
        run_started.set()
        try:
            await asyncio.Event().wait()
        finally:  # what a run does as it stops: cancel its orders, write its end...
            for _ in range(200):  # ...for longer than the server waits
                seen_free.append(_free(db))
                await asyncio.sleep(0)

    monkeypatch.setattr(manager, "run_bot", slow_to_stop)
    monkeypatch.setattr(manager, "CLOSE_WAIT_S", 0.0)
    async with serving(db) as (client, server):
        sid = await start(client, dev_session("365d"))
        await run_started.wait()
        task = server.sessions[sid].task
    assert task is not None and task.done()
    assert seen_free and not any(seen_free), "the database was free while its run went on"
    assert _free(db)
    with RunStore(db, read_only=True) as store:  # it goes on at the next start
        (record,) = table.load_sessions(store.connection)
    assert record.status in table.UNFINISHED


async def test_a_session_stopping_as_the_server_stops_stays_stopped_by_the_api(
    tmp_path: Path,
) -> None:
    """Before, the server's stop took the run's stop over: its run said 'the server
    stopped: it goes on at the next start', though the session was stopped and does
    not go on."""
    db = tmp_path / "server.sqlite"
    manager = SessionManager(db)
    await manager.open()
    try:
        s = await manager.start(dev_session("365d"))
        await until(lambda: s.run is not None)
        s.stop()  # the API's stop, then the server's, before the run's next batch
        manager.stopping(s)
    finally:
        await manager.close()
    assert s.status == "stopped"
    with RunStore(db, read_only=True) as store:
        assert s.run_id is not None
        runs = [store.run(s.run_id), *store.children(s.run_id)]
    assert [(r.status, r.detail) for r in runs] == [("interrupted", STOPPED)] * 3
