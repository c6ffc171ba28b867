"""What the environment layer (PERPS_BOT__* variables, read case-insensitively by
pydantic-settings) may not say, and what the profile layer below it must know of it."""

import json
import os

from perps_bot.domain import short


def refuse_env_profile() -> str | None:
    """Why the environment cannot be used, or None. The profile is chosen with --profile
    only: its name decides the prod promotion gate and the database, so a variable must
    not rename it."""
    for key in os.environ:
        if key.upper() == "PERPS_BOT__PROFILE":
            return (f"config error: environment {short(key)}: the profile is chosen with"
                    " --profile, not by the environment")  # fmt: skip
    return None


def env_strategy_name() -> object:
    """The strategy the environment names: PERPS_BOT__STRATEGY__NAME, or `name` of a
    PERPS_BOT__STRATEGY section in JSON (variable names are case-insensitive)."""
    env = {key.upper(): value for key, value in os.environ.items()}
    if "PERPS_BOT__STRATEGY__NAME" in env:
        return env["PERPS_BOT__STRATEGY__NAME"]
    try:
        section = json.loads(env.get("PERPS_BOT__STRATEGY", "null"))
    except ValueError:
        return None  # pydantic-settings refuses it, naming the variable
    return section.get("name") if isinstance(section, dict) else None
