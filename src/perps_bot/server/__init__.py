"""The session server (SPEC 11) and the dashboard (SPEC 12): many paper sessions in one
process behind an HTTP API, and the same read endpoints and dashboard for the one run
of a bot started with `--http-port`. The top layer with the command line: it drives
the orchestrator and imports nothing above it."""

from perps_bot.server.app import create_app
from perps_bot.server.manager import SessionManager
from perps_bot.server.serve import serve, show_run
from perps_bot.server.session import Sessions

__all__ = ["SessionManager", "Sessions", "create_app", "serve", "show_run"]
