"""`perps-bot resume-trading`: the one way to lift a halt (SPEC 9).

A halt (the drawdown limit, or an operator's) is stored with the profile's database
and survives every restart, so that a bot restarted by a supervisor, or by hand
without a look at the account, does not trade again at once. Lifting it is a decision
with a reason: stored (`trading_state_log`) and journaled (a `state_change` line in
events.jsonl). It writes the database, so it takes the database lock: it is refused
in one line (exit 2) while a bot runs on it.
"""

from pathlib import Path
from typing import Annotated

import typer

from perps_bot.cli.report import _fail, _from_parent, _source_db
from perps_bot.config import ConfigError, load_settings
from perps_bot.monitoring import Journal
from perps_bot.orchestrator.trading_state import lift_halt, now_ms
from perps_bot.storage import RunStore, StoreError
from perps_bot.storage.durable import load_trading_state
from perps_bot.storage.lock import DatabaseLock


def resume_trading_command(
    ctx: typer.Context,
    profile: Annotated[
        str | None,
        typer.Option("--profile", help="The profile whose halt to lift [default: dev]."),
    ] = None,
    reason: Annotated[
        str, typer.Option("--reason", help="Why trading may go on (stored and journaled).")
    ] = "lifted by the operator",
    db: Annotated[
        Path | None,
        typer.Option("--db", help="Database file (default: the profile's database)."),
    ] = None,
) -> None:
    """Lift a halt (and the drawdown REDUCING state) of the profile's account."""
    path = _source_db(ctx, db, profile, "dev")
    if not path.exists():
        _fail(f"no database at {path}: nothing is halted")
    try:
        with DatabaseLock(path), RunStore(path) as store:
            saved = load_trading_state(store.connection)
            name = profile or _from_parent(ctx, "profile") or (saved.profile if saved else "dev")
            if saved is None or saved.state == "ACTIVE":
                typer.echo(f"trading state of {path}: ACTIVE, nothing to lift")
                return
            before, after = lift_halt(store, name, reason)
    except StoreError as exc:
        _fail(str(exc))
    detail = f"resume-trading: {reason}"
    try:
        log_dir = Path(load_settings(name).run.log_dir)
    except ConfigError:
        log_dir = Path("logs")
    journal = Journal(log_dir / "events.jsonl", "resume-trading")
    journal.write("state_change", now_ms(), {"state": after, "detail": detail, "before": before})
    journal.close()
    typer.echo(f"trading state of {path}: {before} -> {after} ({detail})")


def register(app: typer.Typer) -> None:
    app.command("resume-trading")(resume_trading_command)
