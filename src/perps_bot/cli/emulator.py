"""`perps-bot emulator`: run the loopback Binance USDM emulator for rehearsals.

Point a canary profile at it with PERPS_BOT__EXCHANGE__BASE_URL (printed at start),
drive faults, prices and steps through its /_emulator/ control endpoints, and stop it
with Ctrl-C (SIGINT/SIGTERM stop it cleanly, no traceback). Prices take one seeded
step per second. Only loopback hosts are accepted: it has no authentication.

The emulator is test tooling (the `perps_emulator` package under emulator/, installed
by the dev environment only), so it is imported inside the command, never at module
level: the product works without it, and this command then says so in one line.
"""

import contextlib
import signal
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # test tooling, imported only when the command runs
    import asyncio

    from perps_emulator import EmulatorServer

NOT_INSTALLED = (
    "emulator: the exchange emulator is test tooling; install the dev environment (poetry install)"
)

CONTROL_HELP = (
    'control: POST /_emulator/fault {{"kind": "status", "method": "POST", '
    '"path": "/fapi/v1/order", "status": 503}}, POST /_emulator/price '
    '{{"symbol": "BTCUSDT", "price": 60000}}, POST /_emulator/step {{"n": 10}}, '
    'POST /_emulator/mark {{"symbol": "BTCUSDT", "mark": 59000}}, POST /_emulator/funding, '
    'POST /_emulator/liquidation {{"enabled": true}}, GET /_emulator/state, '
    "GET /_emulator/calls  (under {base})"
)


async def serve(
    server: "EmulatorServer", stop: "asyncio.Event", echo: Callable[[str], None]
) -> None:
    """Start ``server``, announce how to use it, run until ``stop`` is set, stop cleanly."""
    await server.start()
    try:
        echo(f"Binance USDM emulator listening on {server.base_url}")
        liquidation = "on" if server.liquidation else "off"
        echo(
            f"  symbols {', '.join(server.markets)}; seed {server.seed}; one price step per second;"
            f" liquidation {liquidation}"
        )
        echo(f"  use it with: export PERPS_BOT__EXCHANGE__BASE_URL={server.base_url}")
        echo("  " + CONTROL_HELP.format(base=server.base_url))
        echo("  Ctrl-C to stop")
        await stop.wait()
    finally:
        await server.stop()


async def _run_until_signal(server: "EmulatorServer", echo: Callable[[str], None]) -> None:
    import asyncio

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await serve(server, stop, echo)


def emulator(
    host: Annotated[str, typer.Option(help="Loopback address to bind (127.0.0.0/8, ::1).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).", min=0, max=65535)] = (
        8900
    ),
    seed: Annotated[int, typer.Option(help="Seed of the price random walks.")] = 1,
    symbols: Annotated[
        str, typer.Option(help="Comma-separated Binance ids, e.g. BTCUSDT,ETHUSDT.")
    ] = "BTCUSDT,ETHUSDT",
    balance: Annotated[float, typer.Option(help="Initial USDT wallet balance.", min=0)] = 10_000.0,
    liquidation: Annotated[
        bool,
        typer.Option(
            "--liquidation/--no-liquidation",
            help="Liquidate positions whose mark crosses their liquidation price.",
        ),
    ] = False,
) -> None:
    """Run a local Binance USDM emulator (REST) for rehearsing the live path. Ctrl-C stops."""
    import asyncio

    from perps_bot.domain import PerpsBotError

    emulator_module = _import_emulator()
    names = [s.strip().upper() for s in symbols.split(",") if s.strip()]
    if not emulator_module.is_loopback_host(host):
        raise PerpsBotError(
            f"--host {host} is not a loopback address: the emulator only binds "
            "127.0.0.0/8, ::1 or localhost"
        )
    try:
        server = emulator_module.EmulatorServer(
            host=host,
            port=port,
            symbols=tuple(names),
            seed=seed,
            initial_balance=balance,
            tick_interval_s=1.0,
            liquidation=liquidation,
        )
        asyncio.run(_run_until_signal(server, typer.echo))
    except emulator_module.EmulatorError as exc:
        raise PerpsBotError(str(exc)) from None
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        pass
    typer.echo("emulator stopped")


def _import_emulator() -> ModuleType:
    """The emulator package, or the one-line PerpsBotError where it is not installed.

    Only the absence of perps_emulator itself is translated: an import error from
    inside an installed emulator is a bug and must surface as one.
    """
    from perps_bot.domain import PerpsBotError

    try:
        import perps_emulator
    except ModuleNotFoundError as exc:
        if exc.name != "perps_emulator":
            raise
        raise PerpsBotError(NOT_INSTALLED) from None
    return perps_emulator


def register(app: typer.Typer) -> None:
    app.command("emulator")(emulator)
