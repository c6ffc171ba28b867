"""`perps-bot replay`: run a recorded capture through the bot again (SPEC 14).

The capture folder says everything about the run (orchestrator.replay): its strategy
and parameters, profile config and instruments. The paper venue fills with the model
given here (default: the captured profile's, i.e. `touch`). The replay is stored as a
run of kind `replay` in the captured profile's database (or `--db`), where `perps-bot
drift` finds it next to the live run.
"""

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class FillModel(StrEnum):
    touch = "touch"
    penetration = "penetration"
    queue = "queue"


class Latency(StrEnum):
    constant = "constant"
    empirical = "empirical"


def replay(
    capture: Annotated[
        Path, typer.Option("--capture", help="Capture folder, e.g. data/captures/<run_id>.")
    ],
    fill_model: Annotated[
        FillModel | None,
        typer.Option("--fill-model", help="touch | penetration | queue (default: the profile's)."),
    ] = None,
    latency: Annotated[
        Latency | None,
        typer.Option(
            "--latency",
            help="constant (mock.latency) | empirical (drawn from the capture's round trips).",
        ),
    ] = None,
    queue_model: Annotated[
        str | None, typer.Option("--queue-model", help="risk_averse | power:N | log.")
    ] = None,
    penetration_ticks: Annotated[
        int | None, typer.Option("--penetration-ticks", min=0, help="Ticks through the limit.")
    ] = None,
    db: Annotated[
        str | None, typer.Option("--db", help="SQLite path (default: the captured profile's).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the fill simulation.")] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            help="Go on with an interrupted or crashed replay of this capture (RUN_ID, or"
            " none: the latest) from its last checkpoint; give the same options.",
        ),
    ] = None,
) -> None:
    """Replay a capture through the paper venue on a simulated clock."""
    from rich.console import Console

    from perps_bot.feeds.replay import incomplete_warning, read_meta
    from perps_bot.orchestrator.replay import FillChoice, run_replay

    warning = incomplete_warning(capture, read_meta(capture))
    if warning is not None:
        typer.echo(f"perps-bot: {warning}", err=True)

    choice = FillChoice(
        fill_model=None if fill_model is None else str(fill_model),
        penetration_ticks=penetration_ticks,
        queue_model=queue_model,
        latency=None if latency is None else str(latency),
    )
    console = Console()
    settings, result = run_replay(capture, choice, db=db, seed=seed, console=console,
                                  resume=resume)  # fmt: skip
    console.print(
        f"replay {result.run_id} of {settings.run.replay_of} {result.status}: {result.fills}"
        f" fills, equity {result.final_equity:,.2f}  (db {result.db_path})",
        highlight=False,
        soft_wrap=True,
    )
    console.print(result.headline, highlight=False, soft_wrap=True)
    if result.status != "completed":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)
