"""Secrets come only from the environment (SPEC 1: API keys never from files or logs):
a profile that holds one is refused, naming the variable to use instead."""

from collections.abc import Sequence
from typing import Any

#: (section, key) of every secret setting
PROFILE_SECRETS = (("exchange", "api_key"), ("exchange", "api_secret"), ("llm", "api_key"))
#: keys whose values are secrets (alerts.urls carry tokens): never shown in an error
SECRET_KEYS = frozenset({"api_key", "api_secret", "urls"})


def is_secret(path: Sequence[object]) -> bool:
    """The setting at `path` (an error's location) is a secret or inside one."""
    return any(str(part) in SECRET_KEYS for part in path)


def refuse_profile_secret(profile: dict[str, Any]) -> str | None:
    """Why the profile cannot be used (it holds a secret), or None. The value is never
    shown."""
    for section, key in PROFILE_SECRETS:
        values = profile.get(section)
        if isinstance(values, dict) and key in values:
            variable = f"PERPS_BOT__{section.upper()}__{key.upper()}"
            return (f"config error: {section}.{key}: set it in the environment ({variable}),"
                    " never in a profile")  # fmt: skip
    return None
