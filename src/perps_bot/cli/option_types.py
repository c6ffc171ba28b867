"""Option types shared by several commands that must be importable at the CLI's start-up
(typer reads them when the commands are registered): typer and typing only, so that
`perps-bot --version` loads none of the product."""

from typing import Annotated

import typer

LlmCacheOnlyOpt = Annotated[
    bool,
    typer.Option(
        "--llm-cache-only",
        help="The llm_planner answers only from its cache (llm.cache_only): a request not"
        " cached stops the run with one line (exit 2) instead of calling the endpoint.",
    ),
]
