"""Secrets come only from the environment (SPEC 1: API keys never from files or logs):
a profile that holds one is refused, naming the variable to use instead."""

from collections.abc import Sequence
from typing import Any, TypeGuard, get_args

from pydantic import BaseModel, SecretStr

#: (section, key) of every secret setting
PROFILE_SECRETS = (("exchange", "api_key"), ("exchange", "api_secret"), ("llm", "api_key"))


def is_model(kind: object) -> TypeGuard[type[BaseModel]]:
    return isinstance(kind, type) and issubclass(kind, BaseModel)


def secret_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The keys of `model` (and of its sections) whose values are secrets (`SecretStr`:
    alert URLs, exchange keys)."""
    out: list[tuple[str, ...]] = []
    for name, field in model.model_fields.items():
        kinds, path = [field.annotation], (*prefix, name)
        while kinds:
            kind = kinds.pop()
            if kind is SecretStr:
                out.append(path)
            elif is_model(kind):
                out.extend(secret_paths(kind, path))
            else:
                kinds.extend(get_args(kind))
    return out


def holds_secret(secrets: Sequence[tuple[str, ...]], loc: Sequence[object]) -> bool:
    """Whether the value at `loc` (an error's location) is, or may hold, one of the
    `secrets`: its value then stays out of error messages (a URL given where a list of
    them belongs is still a secret, and so is a section given as a URL)."""
    path = tuple(str(part) for part in loc)
    return any(path[: len(s)] == s or s[: len(path)] == path for s in secrets)


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
