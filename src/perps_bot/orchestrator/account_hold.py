"""A live run's hold of its exchange account (SPEC 9, 10): its lock, and the account's
halt wherever it was stored.

A halt is stored in the database of the run that halted; a restart on that database
keeps it (orchestrator.trading_state). A live bot given another database (another
--db, data folder or profile with the same keys) found no halt in its own and traded:
a new database lifted a halt only `resume-trading` may lift. So the account lock
records the database of the account's last live run (storage.account_lock), and a live
run on another one is refused in one line while that database holds a halt for one of
its portfolios, until `resume-trading` lifts it there.
"""

from perps_bot.config import Settings
from perps_bot.domain import PerpsBotError, short
from perps_bot.orchestrator.trading_state import state_keys, stored_halt
from perps_bot.storage.account_lock import AccountBusy, AccountLock, account_lock


def hold_account(settings: Settings) -> AccountLock | None:
    """Take the account lock of a live run of `settings` (None for a paper run: it holds
    no account), refusing a halt stored elsewhere (see the module doc); AccountBusy
    (one line) when another bot holds the account or it is halted."""
    lock = account_lock(settings)
    if lock is None:
        return None
    lock.acquire()
    try:
        _refuse_a_halt_elsewhere(lock, settings)
        lock.keep_database(settings.database_path)
    except BaseException:
        lock.release()
        raise
    return lock


def _refuse_a_halt_elsewhere(lock: AccountLock, settings: Settings) -> None:
    last = lock.database()
    if last is None or last == settings.database_path.resolve():
        return  # the run's own database: the run itself restores its halt
    portfolios = state_keys([plan.id for plan in settings.portfolio_plans()])
    try:
        saved = stored_halt(last, portfolios)
    except PerpsBotError as exc:
        raise AccountBusy(
            f"cannot read the trading state of the {lock.account} in {last}: {exc}"
        ) from None
    if saved is not None:
        raise AccountBusy(
            f"the {lock.account} is HALTED in {last}, the database of its last live run"
            f" (portfolio {saved.portfolio}: {short(saved.detail)});"
            f" `perps-bot resume-trading --db {last}` lifts it"
        )
