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

from perps_bot.cli.report import _fail, _source_db


def resume_trading_command(
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
    portfolio: Annotated[
        str | None,
        typer.Option("--portfolio", help="Lift only this portfolio's halt [default: all]."),
    ] = None,
) -> None:
    """Lift a halt (and the drawdown REDUCING state) of the profile's account, of every
    portfolio that is not ACTIVE (or of the one given)."""
    from perps_bot.config import ConfigError, load_settings
    from perps_bot.domain import DEFAULT_PORTFOLIO, short
    from perps_bot.monitoring import Journal
    from perps_bot.orchestrator.trading_state import lift_halt, now_ms, stored_state
    from perps_bot.storage import RunStore, StoreError
    from perps_bot.storage.durable import load_trading_states
    from perps_bot.storage.lock import DatabaseLock

    path = _source_db(db, profile, "dev")
    if not path.exists():
        _fail(f"no database at {path}: nothing is halted")
    lifted: list[tuple[str, str, str]] = []
    try:
        with DatabaseLock(path), RunStore(path) as store:
            saved = load_trading_states(store.connection)
            known = {state.portfolio for state in saved}
            if portfolio is not None and portfolio not in known:
                _fail(f"no portfolio {short(portfolio)!r} in {path}"
                      f" (known: {', '.join(sorted(known)) or 'none'})")  # fmt: skip
            name = profile or (saved[0].profile if saved else "dev")
            for pid in sorted(known):
                now = stored_state(store, pid)  # a portfolio also takes the account's halt
                if now is not None and now.state != "ACTIVE" and portfolio in (None, pid):
                    before, after = lift_halt(store, name, reason, pid)
                    lifted.append((pid, before, after))
    except StoreError as exc:
        _fail(str(exc))
    if not lifted:
        of = "" if portfolio is None else f" (portfolio {portfolio})"  # the others may be halted
        typer.echo(f"trading state of {path}{of}: ACTIVE, nothing to lift")
        return
    detail = f"resume-trading: {reason}"
    try:
        log_dir = Path(load_settings(name).run.log_dir)
    except ConfigError:
        log_dir = Path("logs")
    journal = Journal(log_dir / "events.jsonl", "resume-trading")
    for pid, before, after in lifted:
        data = {"state": after, "detail": detail, "before": before}
        if pid != DEFAULT_PORTFOLIO:
            data["portfolio"] = pid
        journal.write("state_change", now_ms(), data)
        of = "" if pid == DEFAULT_PORTFOLIO else f" (portfolio {pid})"
        typer.echo(f"trading state of {path}{of}: {before} -> {after} ({detail})")
    journal.close()


def register(app: typer.Typer) -> None:
    app.command("resume-trading")(resume_trading_command)
