"""The `alerts:` section (SPEC 12): apprise URLs, the events that send an alert, the
rate limit, and how long the end of a run waits for alerts still queued.

The URLs carry tokens (a Telegram bot token, a Slack webhook), so they are secrets:
`SecretStr` keeps them out of reprs and dumps, and `mask_url` is the one masked form
`config show` and the logs print (the scheme stays, so the reader sees which service)."""

import warnings
from types import ModuleType
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from perps_bot.config.models import Section, _duration

AlertEvent = Literal["trade_closed", "halt", "liquidation", "error", "run_end", "daily_summary"]
ALERT_EVENTS: tuple[AlertEvent, ...] = (
    "trade_closed",
    "halt",
    "liquidation",
    "error",
    "run_end",
    "daily_summary",
)
MASK = "********"


def mask_url(url: str) -> str:
    """`tgram://123:abc/456` -> `tgram://********`: the service shows, its secrets do not."""
    scheme, sep, _rest = url.partition("://")
    return f"{scheme}://{MASK}" if sep and scheme.isidentifier() else MASK


def load_apprise() -> ModuleType:
    """apprise, imported when first needed (0.4 s of imports: only runs with alerts pay
    them), without the DeprecationWarning its imports raise on Python 3.11+."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import apprise
        import apprise.utils.pgp  # imported by the email plugins when first loaded
    return apprise


class AlertsConfig(Section):
    """Where alerts go (apprise URLs: tgram://, discord://, slack://, mailto://, json://),
    on which events, and at most how many a minute (the rest are counted and summed up
    in the next alert that goes out)."""

    urls: list[SecretStr] = Field(default_factory=list)
    on: list[AlertEvent] = Field(default_factory=lambda: list(ALERT_EVENTS))
    max_per_minute: int = Field(default=20, ge=1)
    # the end of a run waits at most this for alerts still queued (run_end among them);
    # a target that does not answer never holds a run longer
    flush_timeout: str = "5s"

    _check = field_validator("flush_timeout")(_duration)

    @field_validator("urls")
    @classmethod
    def _apprise_urls(cls, urls: list[SecretStr]) -> list[SecretStr]:
        if urls:
            apprise = load_apprise()
            for url in urls:
                if apprise.Apprise.instantiate(url.get_secret_value()) is None:
                    raise ValueError(f"not an apprise URL: {mask_url(url.get_secret_value())}")
        return urls

    def masked(self) -> list[str]:
        return [mask_url(url.get_secret_value()) for url in self.urls]
