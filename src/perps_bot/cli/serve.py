"""`perps-bot serve`: the session server (SPEC 11) and its dashboard (SPEC 12)."""

from pathlib import Path
from typing import Annotated

import typer


def serve_command(
    host: Annotated[
        str, typer.Option(help="Address to bind; anything but loopback needs a token.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port (0: one the OS chooses).")
    ] = 8787,
    allow_live: Annotated[
        bool, typer.Option("--allow-live", help="Allow sessions that trade live.")
    ] = False,
    db: Annotated[
        Path | None,
        typer.Option(
            "--db", help="SQLite file of the sessions [default: data/perps_bot.server.sqlite]."
        ),
    ] = None,
) -> None:
    """Run paper sessions behind an HTTP API with a dashboard at / (Ctrl-C stops; the
    sessions that were running go on at the next start). Token for non-loopback binds:
    PERPS_BOT__SERVER__TOKEN, sent as Authorization: Bearer <token>."""
    import asyncio

    from perps_bot.config import load_settings
    from perps_bot.server import serve  # aiohttp's server only when serving

    settings = load_settings("dev")
    database = db or Path(settings.run.data_dir) / "perps_bot.server.sqlite"
    asyncio.run(serve(settings, host, port, allow_live=allow_live, database=database))


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
