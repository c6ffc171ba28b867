"""Validation metrics, reports and enforced promotion (SPEC 6).

Reads a finished (or running) run from the RunStore and turns it into trades,
metrics, pass/fail criteria and JSON / HTML / CSV outputs. Imports only domain,
config and storage; the CLI layer wires it into `perps-bot report` and
`perps-bot promote`.
"""

from typing import TYPE_CHECKING

from perps_bot.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from perps_bot.metrics.criteria import Criterion, evaluate_criteria, promotion_config
    from perps_bot.metrics.definitions import (
        CRITERIA_DEFINITIONS,
        METRIC_DEFINITIONS,
        TRADE_COLUMN_DEFINITIONS,
        help_epilog,
        readme_markdown,
    )
    from perps_bot.metrics.equity import ChartSeries, EquityAccumulator, EquityStats, Moments
    from perps_bot.metrics.export import (
        EQUITY_COLUMNS,
        export_csv,
        write_equity_csv,
        write_trades_csv,
    )
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
    from perps_bot.metrics.trade_records import TRADE_COLUMNS, Trade
    from perps_bot.metrics.trades import round_trips

# Loaded on first use (PEP 562): importing one submodule, e.g. metrics.definitions for
# the help text, does not load numpy and every report module with it.
_LAZY = {
    "Criterion": "perps_bot.metrics.criteria",
    "evaluate_criteria": "perps_bot.metrics.criteria",
    "promotion_config": "perps_bot.metrics.criteria",
    "CRITERIA_DEFINITIONS": "perps_bot.metrics.definitions",
    "METRIC_DEFINITIONS": "perps_bot.metrics.definitions",
    "TRADE_COLUMN_DEFINITIONS": "perps_bot.metrics.definitions",
    "help_epilog": "perps_bot.metrics.definitions",
    "readme_markdown": "perps_bot.metrics.definitions",
    "ChartSeries": "perps_bot.metrics.equity",
    "EquityAccumulator": "perps_bot.metrics.equity",
    "EquityStats": "perps_bot.metrics.equity",
    "Moments": "perps_bot.metrics.equity",
    "EQUITY_COLUMNS": "perps_bot.metrics.export",
    "export_csv": "perps_bot.metrics.export",
    "write_equity_csv": "perps_bot.metrics.export",
    "write_trades_csv": "perps_bot.metrics.export",
    "ReportError": "perps_bot.metrics.formatting",
    "render_html": "perps_bot.metrics.html",
    "STAGES": "perps_bot.metrics.promotion",
    "PromotionOutcome": "perps_bot.metrics.promotion",
    "PromotionRefused": "perps_bot.metrics.promotion",
    "check_run_kind": "perps_bot.metrics.promotion",
    "evaluate_promotion": "perps_bot.metrics.promotion",
    "has_promotion": "perps_bot.metrics.promotion",
    "promote": "perps_bot.metrics.promotion",
    "record_promotion": "perps_bot.metrics.promotion",
    "Report": "perps_bot.metrics.report",
    "build_report": "perps_bot.metrics.report",
    "headline": "perps_bot.metrics.report",
    "headline_text": "perps_bot.metrics.report",
    "METRIC_NAMES": "perps_bot.metrics.stats",
    "all_metrics": "perps_bot.metrics.stats",
    "TRADE_COLUMNS": "perps_bot.metrics.trade_records",
    "Trade": "perps_bot.metrics.trade_records",
    "round_trips": "perps_bot.metrics.trades",
}


__getattr__ = lazy_exports(__name__, _LAZY, globals())


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
