"""What the environment layer (PERPS_BOT__* variables, read case-insensitively by
pydantic-settings) may not say, and what the profile layer below it must know of it."""

import json
import os
from collections.abc import Iterable

from perps_bot.domain import short

PREFIX = "PERPS_BOT__"
#: sections of variables read by others than the settings (the session server's)
NOT_SETTINGS = frozenset({"server"})
#: mappings keyed by symbol: a variable below one would name the symbol in lower case
SYMBOL_KEYED = (("strategy", "order_size"), ("account", "leverage"), ("instruments",),
                ("mock", "symbols"))  # fmt: skip


def refuse_environment(sections: Iterable[str]) -> str | None:
    """Why the environment cannot be used, or None.

    - PERPS_BOT__PROFILE: the profile is chosen with --profile only (its name decides
      the prod promotion gate and the database);
    - a variable naming a symbol (PERPS_BOT__STRATEGY__ORDER_SIZE__BTC-PERP): it would
      be read as `btc-perp`, which no symbol is (the mapping goes in JSON instead);
    - a variable naming no section (`PERPS_BOT__RISKS__...`, `PERPS_BOT__RISK_MAX_...`):
      pydantic-settings reads only the variables of known fields and would ignore it,
      so the setting meant would silently not change. The session server's own
      variables (PERPS_BOT__SERVER__*) are not settings."""
    known = sorted(set(sections) - {"profile"})
    for key in sorted(os.environ):
        upper = key.upper()
        if not upper.startswith(PREFIX):
            continue
        parts = upper[len(PREFIX) :].lower().split("__")
        section = parts[0]
        keyed = next((k for k in SYMBOL_KEYED if tuple(parts[: len(k)]) == k != tuple(parts)), None)
        if keyed is not None:
            whole = PREFIX + "__".join(keyed).upper()
            return (f"config error: environment {short(key)}: symbol names are case-sensitive"
                    f" and variable names are not: give the mapping as JSON, e.g."
                    f" {whole}='{{\"BTC-PERP\": ...}}'")  # fmt: skip
        if section == "profile":
            return (f"config error: environment {short(key)}: the profile is chosen with"
                    " --profile, not by the environment")  # fmt: skip
        if section not in known and section not in NOT_SETTINGS:
            return (f"config error: environment {short(key)}: unknown section"
                    f" {short(section)!r} (sections: {', '.join(known)};"
                    " PERPS_BOT__SECTION__KEY)")  # fmt: skip
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
