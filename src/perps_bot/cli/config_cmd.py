"""`perps-bot config show`: the merged, validated configuration with secrets masked."""

import json
from typing import Annotated

import typer

config_app = typer.Typer(help="Inspect configuration.", no_args_is_help=True)


@config_app.command("show")
def show(
    profile: Annotated[
        str, typer.Option(help="Profile name (built in, or ./config/profiles/NAME.yaml) or path.")
    ] = "dev",
    output: Annotated[str, typer.Option("--format", help="yaml or json.")] = "yaml",
) -> None:
    """Print the merged config (defaults < profile < PERPS_BOT__* env < flags), secrets masked."""
    import yaml
    from rich.console import Console
    from rich.syntax import Syntax

    from perps_bot.config import load_settings
    from perps_bot.instruments import effective_instrument_data

    settings = load_settings(profile)
    data = settings.masked_dict()
    # the instruments a dev run or backtest would use: built-in data under the profile's
    data["instruments"] = effective_instrument_data(settings.instruments)
    if output == "json":
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    if output != "yaml":
        raise typer.BadParameter("use yaml or json", param_hint="--format")
    text = yaml.safe_dump(data, sort_keys=False)
    console = Console()
    if console.is_terminal:
        console.print(Syntax(text, "yaml"))
    else:
        typer.echo(text, nl=False)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
