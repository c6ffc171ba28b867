"""A configuration that cannot be used is told in one line (ConfigError: the command
exits 2, the session API answers 400). pydantic's errors, one per key and per kind a
union tried, become `config error: path: message (got value)` and a count of the
others; pydantic-settings' error for a variable that is not valid JSON names the
variables. A secret's value is never shown.
"""

import os
from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_settings import SettingsError

from perps_bot.config.secrets import holds_secret
from perps_bot.domain import PerpsBotError, short


class ConfigError(PerpsBotError):
    """A profile, environment variable or flag that cannot be used; the message is one line."""


def describe_validation_error(exc: ValidationError, secrets: Sequence[tuple[str, ...]]) -> str:
    """The first error as `path.to.key: message (got value)`, plus how many more there are;
    no value at or inside one of `secrets` (`secrets.secret_paths`) is shown."""
    errors = exc.errors()
    first, loc = errors[0], errors[0]["loc"]
    # a union (a param: number, text or true/false) fails once per kind it tried, each
    # under the key's path plus pydantic's name for the kind: one error, at the key
    tried = [e for e in errors if e["loc"][:-1] == loc[:-1] and _union_member(e["loc"])]
    if len(tried) > 1 and _union_member(loc):
        loc, errors = loc[:-1], [first, *(e for e in errors if e not in tried)]
    path = ".".join(short(str(p), 40) for p in loc) or "config"
    msg = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    got = first.get("input")
    hidden = (first["type"] == "extra_forbidden" or isinstance(got, dict | list)
              or holds_secret(secrets, loc))  # fmt: skip
    shown = "" if hidden or short(repr(got)) in msg else f" (got {short(repr(got))})"
    more = f" [+{len(errors) - 1} more]" if len(errors) > 1 else ""
    return f"config error: {path}: {msg}{shown}{more}"


def _union_member(loc: tuple[int | str, ...]) -> bool:
    """The path ends in pydantic's name for a kind of a union (`float`, `function-before[
    _not_a_bool(), float]`), not in a key (`[key]` names a mapping's key itself)."""
    last = str(loc[-1]) if loc else ""
    return last in ("float", "int", "str", "bool") or ("[" in last and not last.startswith("["))


def describe_env_error(exc: SettingsError) -> str:
    """pydantic-settings says which section's variables did not parse; name them."""
    parts = str(exc).split('"')
    section = parts[1] if len(parts) > 2 else ""
    prefix = f"PERPS_BOT__{section.upper()}"
    names = sorted(k for k in os.environ if k.upper().startswith(prefix)) if section else []
    shown = ", ".join(short(n) for n in names[:3]) or "a PERPS_BOT__ variable"
    return f"config error: environment {shown}: cannot be parsed (lists and mappings are JSON)"
