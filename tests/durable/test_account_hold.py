"""A live run's hold of its account (orchestrator.account_hold) refuses a halt stored
in any database a live run of the account used, not only the last one: a run on db1
halted portfolio a; a run of portfolios b and c on db2 was allowed (a's halt does not
hold for them) and the account's record moved to db2; a run of a and b on db3 then
checked db2 alone and traded a, halted in db1."""

from pathlib import Path

import pytest

from perps_bot.config import Settings, load_settings
from perps_bot.orchestrator.account_hold import hold_account
from perps_bot.storage.account_lock import AccountBusy, AccountLock
from tests.durable.helpers import store_halt


def live(db: Path, *portfolios: str) -> Settings:
    exchange = {"api_key": "key-a", "api_secret": "secret", "base_url": "http://127.0.0.1:8900"}
    plans = [{"id": p, "strategy": "sma_cross"} for p in portfolios]
    return load_settings(
        "canary", {"exchange": exchange, "run": {"database": str(db)}, "portfolios": plans}
    )


def hold(settings: Settings) -> None:
    """A live run of `settings` starts (takes the account) and stops."""
    lock = hold_account(settings)
    assert lock is not None
    lock.release()


def test_a_halt_in_an_earlier_database_holds_after_a_run_on_another(tmp_path: Path) -> None:
    db1, db2, db3 = (tmp_path / f"db{n}.sqlite" for n in (1, 2, 3))
    hold(live(db1, "a", "x"))
    store_halt(db1, "drawdown 6%", portfolio="a")
    hold(live(db2, "b", "c"))  # a's halt does not hold for b and c
    with pytest.raises(AccountBusy, match="HALTED") as refused:
        hold(live(db3, "a", "b"))
    assert str(db1) in str(refused.value) and "portfolio a" in str(refused.value)
    hold(live(db3, "b", "c"))  # still not theirs


def test_a_database_leaves_the_record_once_it_holds_no_halt(tmp_path: Path) -> None:
    db1, db2, db3 = (tmp_path / f"db{n}.sqlite" for n in (1, 2, 3))
    hold(live(db1, "a", "x"))
    hold(live(db2, "b", "c"))  # db1 holds no halt: forgotten
    store_halt(db1, "drawdown 6%", portfolio="a")  # written later: no live run of the account
    hold(live(db3, "a", "b"))


def test_a_damaged_earlier_database_names_the_record_to_clear(tmp_path: Path) -> None:
    """The recorded database of an earlier live run is damaged: every live run on
    another database was refused with the store's advice, "restore a backup or use
    another --db", the very thing refused. The line names the record and how to clear
    it; once cleared, the run trades."""
    db1, db2 = tmp_path / "db1.sqlite", tmp_path / "db2.sqlite"
    hold(live(db1, "a"))
    db1.write_bytes(b"junk " * 1000)
    record = AccountLock(live(db2, "a")).record
    with pytest.raises(AccountBusy) as refused:
        hold(live(db2, "a"))
    line = str(refused.value)
    assert "\n" not in line and str(db1) in line and "damaged" in line, line
    assert str(record) in line and record.suffix == ".database", line
    assert "another --db" not in line, line
    record.write_text("".join(f"{p}\n" for p in record.read_text().splitlines() if p != str(db1)))
    hold(live(db2, "a"))
