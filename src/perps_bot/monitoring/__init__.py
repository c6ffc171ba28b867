"""Logs, the event journal and the console live view."""

from perps_bot.monitoring.http import StatusServer, prometheus_text
from perps_bot.monitoring.journal import Journal, JournalEvent
from perps_bot.monitoring.live_view import LiveView
from perps_bot.monitoring.logs import (
    LOGGER_NAME,
    LineCounter,
    close_logging,
    pnl_text,
    setup_logging,
)

__all__ = [
    "LOGGER_NAME",
    "Journal",
    "JournalEvent",
    "LineCounter",
    "LiveView",
    "StatusServer",
    "close_logging",
    "pnl_text",
    "prometheus_text",
    "setup_logging",
]
