"""A live run's hold of its exchange account (SPEC 9, 10): its lock, and the account's
halt wherever it was stored.

A halt is stored in the database of the run that halted; a restart on that database
keeps it (orchestrator.trading_state). A live bot given another database (another
--db, data folder or profile with the same keys) found no halt in its own and traded:
a new database lifted a halt only `resume-trading` may lift. So the account lock
records the databases of the account's live runs (storage.account_lock): the last
one's, and every earlier one while it holds a halt (of any portfolio: a later run may
trade it). A live run on another database is refused in one line while one of them
holds a halt for one of its portfolios, until `resume-trading` lifts it there.
"""

from pathlib import Path

from perps_bot.config import Settings
from perps_bot.domain import PerpsBotError, short
from perps_bot.orchestrator.trading_state import holds_a_halt, state_keys, stored_halt
from perps_bot.storage.account_lock import AccountBusy, AccountLock, account_lock
from perps_bot.storage.connection import RESTORE


def hold_account(settings: Settings) -> AccountLock | None:
    """Take the account lock of a live run of `settings` (None for a paper run: it holds
    no account), refusing a halt stored elsewhere (see the module doc); AccountBusy
    (one line) when another bot holds the account or it is halted."""
    lock = account_lock(settings)
    if lock is None:
        return None
    lock.acquire()
    try:
        own = settings.database_path.resolve()
        halted = _refuse_a_halt_elsewhere(lock, settings, own)
        lock.keep_databases([own, *halted])
    except BaseException:
        lock.release()
        raise
    return lock


def _refuse_a_halt_elsewhere(lock: AccountLock, settings: Settings, own: Path) -> list[Path]:
    """Refuse a halt of the run's portfolios in a recorded database other than its own
    (its own: the run itself restores its halt); return those that hold any halt."""
    portfolios = state_keys([plan.id for plan in settings.portfolio_plans()])
    halted = []
    for database in lock.databases():
        if database == own or database in halted:
            continue
        try:
            saved = stored_halt(database, portfolios)
            if saved is None and holds_a_halt(database):  # of other portfolios
                halted.append(database)
        except PerpsBotError as exc:
            raise _unreadable(lock, database, exc) from None
        if saved is not None:
            raise AccountBusy(
                f"the {lock.account} is HALTED in {database}, the database of an earlier"
                f" live run (portfolio {saved.portfolio}: {short(saved.detail)});"
                f" `perps-bot resume-trading --db {database}` lifts it"
            )
    return halted


def _unreadable(lock: AccountLock, database: Path, exc: PerpsBotError) -> AccountBusy:
    """A recorded database that cannot be read may hold the account's halt: the store's
    own advice (another --db) is what is refused here; the record names it."""
    why = str(exc).removesuffix(f": {RESTORE}")
    return AccountBusy(
        f"cannot read the trading state of the {lock.account} in {database}, the database"
        f" of an earlier live run ({why}): restore it from a backup, or remove its line"
        f" from {lock.record} to trade without the halts it holds"
    )
