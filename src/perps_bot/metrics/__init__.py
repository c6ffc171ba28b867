"""Validation metrics, reports and enforced promotion (SPEC 6).

Reads a finished (or running) run from the RunStore and turns it into trades,
metrics, pass/fail criteria and JSON / HTML / CSV outputs. Imports only domain,
config and storage; the CLI layer wires it into `perps-bot report` and
`perps-bot promote`.
"""

from perps_bot.metrics.criteria import Criterion, evaluate_criteria, promotion_config
from perps_bot.metrics.definitions import (
    CRITERIA_DEFINITIONS,
    METRIC_DEFINITIONS,
    TRADE_COLUMN_DEFINITIONS,
    help_epilog,
    readme_markdown,
)
from perps_bot.metrics.equity import ChartSeries, EquityAccumulator, EquityStats, Moments
from perps_bot.metrics.export import EQUITY_COLUMNS, export_csv, write_equity_csv, write_trades_csv
from perps_bot.metrics.formatting import ReportError
from perps_bot.metrics.html import render_html
from perps_bot.metrics.promotion import (
    STAGES,
    PromotionOutcome,
    PromotionRefused,
    check_run_kind,
    evaluate_promotion,
    has_promotion,
    promote,
    record_promotion,
)
from perps_bot.metrics.report import Report, build_report, headline, headline_text
from perps_bot.metrics.stats import METRIC_NAMES, all_metrics
from perps_bot.metrics.trades import TRADE_COLUMNS, Trade, round_trips

__all__ = [
    "CRITERIA_DEFINITIONS",
    "EQUITY_COLUMNS",
    "METRIC_DEFINITIONS",
    "METRIC_NAMES",
    "STAGES",
    "TRADE_COLUMNS",
    "TRADE_COLUMN_DEFINITIONS",
    "ChartSeries",
    "Criterion",
    "EquityAccumulator",
    "EquityStats",
    "Moments",
    "PromotionOutcome",
    "PromotionRefused",
    "Report",
    "ReportError",
    "Trade",
    "all_metrics",
    "build_report",
    "check_run_kind",
    "evaluate_criteria",
    "evaluate_promotion",
    "export_csv",
    "has_promotion",
    "headline",
    "headline_text",
    "help_epilog",
    "promote",
    "promotion_config",
    "readme_markdown",
    "record_promotion",
    "render_html",
    "round_trips",
    "write_equity_csv",
    "write_trades_csv",
]
