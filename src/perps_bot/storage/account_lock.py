"""One bot trades an exchange account at a time (SPEC 9, 10).

The database lock (storage.lock) keeps two bots out of one database, but a live bot
given another database (`--db`, another data folder, another profile with the same
keys) traded the same account beside the first, blind to its orders and its halt. A
live run therefore also takes the flock of its account: a file named by a hash of the
exchange and the API key (an API key is one account, whatever host reaches it: the
exchange's own, given as `exchange.base_url` or not, demo or real, or a proxy; only a
loopback `base_url`, the emulator, each one an account of its own, adds its host), in
this user's state folder (`$XDG_STATE_HOME/perps-bot/accounts`, by default
`~/.local/state/perps-bot/accounts`), the same whatever the working directory, data
folder or database. The key itself is never written: only its hash names the file.
Like the database lock, the kernel releases it when the holder exits (SIGKILL too).
Paper runs send no order and take no account lock.

Beside the lock, `<hash>.database` names the databases of the account's live runs
where its trading state is, one a line: the last run's, and every earlier one that
still holds a halt (orchestrator.account_hold reads the halts there).
"""

import hashlib
import ipaddress
import os
from pathlib import Path
from urllib.parse import urlsplit

from perps_bot.config import Settings
from perps_bot.domain import PerpsBotError, short
from perps_bot.storage.lock import FileLock


class AccountBusy(PerpsBotError):
    """Another bot trades the account, or its lock cannot be taken; one line (exit 2)."""


def accounts_folder() -> Path:
    """Where the account locks are: the same for every bot of this user."""
    state = os.environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(state):  # unset or relative: ignored, as the XDG spec says
        try:
            state = str(Path.home() / ".local" / "state")
        except RuntimeError as exc:  # no HOME and no passwd entry
            raise AccountBusy(f"cannot lock the exchange account: {exc}") from None
    return Path(state) / "perps-bot" / "accounts"


class AccountLock(FileLock):
    """The hold of one exchange account by this process (context manager)."""

    def __init__(self, settings: Settings) -> None:
        exchange = settings.exchange
        host = _loopback_host(exchange.base_url)
        key = exchange.api_key.get_secret_value() if exchange.api_key is not None else ""
        digest = hashlib.sha256("\0".join((exchange.name, host, key)).encode()).hexdigest()
        super().__init__(accounts_folder() / digest[:32])
        self.account = f"{exchange.name} account of this API key"
        if host:
            self.account += f" at {short(host)}"

    def busy(self, holder: str) -> PerpsBotError:
        return AccountBusy(
            f"the {self.account} is in use by another bot (pid {holder}): one bot trades"
            " an exchange account at a time, whatever its database; stop it first"
        )

    def unlockable(self, exc: OSError) -> PerpsBotError:
        return AccountBusy(f"cannot lock the {self.account} ({self.path}): {exc}")

    @property
    def record(self) -> Path:
        """The file naming the databases of the account's live runs (one a line)."""
        return self.path.with_suffix(".database")

    def databases(self) -> list[Path]:
        """The databases of the account's live runs that may hold its halt (the last
        run's first; none recorded yet: empty); read by the holder of the lock."""
        try:
            text = self.record.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            raise AccountBusy(f"cannot read {self.record}: {exc}") from None
        return [Path(line) for line in text.splitlines() if line.strip()]

    def keep_databases(self, databases: list[Path]) -> None:
        """Record `databases`: the one of the account's live run starting now, then those
        of earlier runs that still hold a halt."""
        temporary = self.record.with_suffix(".tmp")
        lines = "".join(f"{db.resolve()}\n" for db in databases)
        try:
            temporary.write_text(lines, encoding="utf-8")
            temporary.replace(self.record)
        except OSError as exc:
            raise AccountBusy(f"cannot write {self.record}: {exc}") from None


def _loopback_host(base_url: str | None) -> str:
    """The host of a loopback `base_url` (an emulator: each is an account of its own),
    spelled one way (scheme and host are not case sensitive; a trailing slash names the
    same root); "" for any other host (the API key alone is the account there)."""
    if not base_url:
        return ""
    parts = urlsplit(base_url.strip())
    if not _is_loopback(parts.hostname or ""):
        return ""
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def _is_loopback(hostname: str) -> bool:
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def account_lock(settings: Settings) -> AccountLock | None:
    """The lock a run of `settings` takes before it trades: None for a paper run."""
    return AccountLock(settings) if settings.is_live else None
