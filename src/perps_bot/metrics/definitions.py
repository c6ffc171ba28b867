"""Every report definition in one place: metric names, CSV columns and criteria.

The same text feeds `perps-bot report --help`, the README section and the HTML
report, so a definition can never say one thing in the help and another in the
docs. The metric names are public (SPEC 6): scripts read them from the JSON.
"""

NULL_RULE = (
    "A ratio whose denominator is zero, or that needs more data than the run has, is null "
    "in JSON and 'n/a' in the table and HTML (never 0 or infinity); a criterion whose "
    "value is null fails."
)

# Trade-level metrics are computed over closed round trips (the rows of trades.csv);
# account-level metrics over the stored equity curve.
METRIC_DEFINITIONS: dict[str, str] = {
    "trades": "Number of closed round trips (rows of trades.csv). Positions still open at "
    "the end of the run are not trades.",
    "win_rate": "Share of trades with net_pnl > 0, as a fraction (0.55 = 55%).",
    "total_pnl": "Sum of net_pnl over all trades (quote currency): gross price PnL minus fees "
    "plus funding. Equals the sum of the net_pnl column of trades.csv.",
    "fees": "Sum of the trades' fees (quote currency, positive = paid).",
    "funding": "Sum of the trades' funding payments (signed cash flow, positive = received).",
    "return_pct": "Account return in percent: (last equity - initial balance) / initial "
    "balance * 100. Includes positions still open at the end (marked to market).",
    "sharpe": "Annualised Sharpe ratio of equity returns: the curve is sampled every "
    "promotion.sharpe_period (default 1d) from its first row (the last equity at or before "
    "each sample time; a trailing partial period is dropped), r_i = E_i / E_(i-1) - 1, "
    "sharpe = mean(r) / std(r) * sqrt(365d / sharpe_period), sample std (n - 1). Risk-free "
    "rate 0. A return whose previous sample is not positive (an account wiped out) is "
    "skipped. Null with fewer than 2 returns or zero std.",
    "sortino": "Like sharpe but divided by the downside deviation "
    "sqrt(sum(min(r_i, 0)^2) / (n - 1)): target return 0, the sum over all n returns (a "
    "positive return adds 0), n - 1 as in sharpe's std. Null with fewer than 2 returns or no "
    "negative return.",
    "max_drawdown": "Largest peak-to-trough fall of the stored equity curve as a fraction of "
    "the running peak: max over rows of (peak - equity) / peak. 0.0 for a curve that never "
    "falls.",
    "calmar": "cagr / max_drawdown. Null when max_drawdown is 0 or cagr is null.",
    "cagr": "Compound annual growth rate: (last equity / initial balance)^(365d / duration) - 1, "
    "duration = run end - run start. -1.0 when the account is wiped out; null for a zero "
    "duration or a result too large to represent.",
    "profit_factor": "Sum of winning net_pnl / |sum of losing net_pnl|. Null without a losing "
    "trade.",
    "expectancy": "Mean net_pnl per trade (quote currency). Null without trades.",
    "avg_trade_duration_s": "Mean of (close_time - open_time) over trades, in seconds. Null "
    "without trades.",
    "risk_reward": "Mean net_pnl of winning trades / |mean net_pnl of losing trades|. Null "
    "without both a winning and a losing trade.",
    "sqn": "System quality number (Van Tharp): sqrt(trades) * mean(net_pnl) / std(net_pnl), "
    "sample std. Null with fewer than 2 trades or zero std.",
    "psr": "Probabilistic Sharpe ratio (Bailey & Lopez de Prado): probability that the true "
    "per-period Sharpe exceeds 0, PSR = Phi(SR * sqrt(n - 1) / sqrt(1 - g3 * SR + (g4 - 1) / 4 "
    "* SR^2)), SR = the non-annualised sharpe of the same n returns, g3 skewness, g4 "
    "kurtosis (3 for a normal distribution, population moments), Phi the normal CDF. Null "
    "when sharpe is null or the square root's argument is not positive.",
    "max_consecutive_losses": "Longest run of consecutive trades (in close order) with "
    "net_pnl < 0; any other trade ends the run.",
    "liquidations": "Number of liquidation fills (forced closes by the margin engine).",
    "denials": "Orders denied by the risk gate, by reason code (object reason_code -> count).",
}

TRADE_COLUMN_DEFINITIONS: dict[str, str] = {
    "trade_id": "1, 2, 3... in the order trades closed.",
    "symbol": "Instrument, e.g. BTC-PERP.",
    "side": "long or short.",
    "open_time": "Time of the fill that opened the trade (ISO-8601 UTC).",
    "close_time": "Time of the fill that brought the position flat or flipped it.",
    "size": "Largest absolute position held during the trade (base units).",
    "entry_price": "Size-weighted average price of the fills that opened or added.",
    "exit_price": "Size-weighted average price of the fills that reduced or closed.",
    "gross_pnl": "Price PnL realized by the trade's fills, before fees and funding.",
    "fees": "Fees of the trade's fills (a flipping fill's fee is split by size between "
    "the trade it closes and the one it opens).",
    "funding": "Sum of the funding payments the trade's position held: those of its symbol "
    "with open_time < ts < close_time, and one at the opening or closing fill's time when "
    "its position was the trade's (a candle's fills, stamped at its close, come before the "
    "settlement at that close; a settlement inside a walked candle comes before the fills "
    "of its time).",
    "net_pnl": "gross_pnl - fees + funding.",
    "exit_reason": "Reason of the closing fill: the strategy's signal reason, stop, "
    "take_profit, plan or liquidation (a position still open at the end is not closed: "
    "it is listed under open positions).",
    "r_multiple": "net_pnl / (|entry_price - stop| * size) when the opening fill carried a "
    "planned stop, else empty.",
    "mae": "Maximum adverse excursion: worst unrealized price PnL during the trade (<= 0); "
    "empty if not recorded.",
    "mfe": "Maximum favourable excursion: best unrealized price PnL during the trade (>= 0); "
    "empty if not recorded.",
}

EQUITY_COLUMN_DEFINITIONS: dict[str, str] = {
    "timestamp": "Event time (ISO-8601 UTC): every `run.equity_interval` (1m) and at every "
    'fill; inside a backtest candle longer than that, on its price path (see "Backtesting").',
    "equity": "Cash plus unrealized PnL.",
    "cash": "Wallet balance: initial balance + realized PnL - fees + funding.",
    "unrealized_pnl": "Unrealized price PnL of open positions at mark.",
}

CRITERIA_DEFINITIONS: dict[str, str] = {
    "trades": "trades >= promotion.min_trades",
    "days": "run duration in days (end - start of the run) >= promotion.min_days",
    "win_rate": "win_rate > promotion.min_win_rate",
    "sharpe": "sharpe > promotion.min_sharpe",
    "max_drawdown": "max_drawdown < promotion.max_drawdown",
    "liquidations": "liquidations <= promotion.max_liquidations",
    "error_lines": "ERROR log lines of the run (of a portfolio's run: those about it and"
    " those about no portfolio) <= promotion.max_error_lines",
}

#: criteria a stage's gate adds to the seven (SPEC 13, 14): shown wherever a report's
#: criteria are, explained in WALKFORWARD_GATE_NOTE and PROD_DRIFT_NOTE
GATE_CRITERIA_DEFINITIONS: dict[str, str] = {
    "walkforward": "the run is a walk-forward run (promotion.require_walkforward)",
    "dsr": "deflated Sharpe ratio of the out-of-sample run >= promotion.min_dsr",
    "slippage_drift_bps": "median |paper - live| slippage of the latest drift report"
    " <= promotion.max_slippage_drift_bps",
    "signal_agreement": "signal agreement of the latest drift report"
    " >= promotion.min_signal_agreement",
    "pnl_tracking_error": "PnL tracking error of the latest drift report"
    " <= promotion.max_pnl_tracking_error",
}

ORDER_COLUMN_DEFINITIONS = {
    "`client_id`": "The bot's client order id (also the exchange's `newClientOrderId` live).",
    "`portfolio`": "The portfolio the order belongs to (`main` for a single-strategy run).",
    "`symbol`, `side`, `type`": "Instrument, buy or sell, market or limit.",
    "`size`": "Quantity ordered, on the instrument's step (a reduce-only order clipped to the"
    " position shows the clipped size).",
    "`filled`, `avg_price`": "Quantity executed and its average price.",
    "`status`": "Final (or current) lifecycle status: new, unknown, accepted,"
    " partially_filled, filled, canceled, rejected, expired.",
    "`reason`": "Why it is in that status, e.g. `filled`, `end of run`, `reduce-only: no"
    " position left to reduce`, the exchange's rejection.",
    "`created`, `updated`": "When it was created and when its status last changed (ISO-8601 UTC).",
}

PROD_DRIFT_NOTE = (
    "Promotion to prod adds three criteria on the canary run's latest stored drift report"
    ' (`perps-bot drift --live RUN`, see "Record, replay and drift"): `slippage_drift_bps`'
    " (median \\|paper - live\\| slippage <= `promotion.max_slippage_drift_bps`, default 2),"
    " `signal_agreement` (>= `promotion.min_signal_agreement`, default 0.9) and"
    " `pnl_tracking_error` (<= `promotion.max_pnl_tracking_error`, default 0.01). A run without"
    " a drift report fails all three, and `promote` says which command measures it; so does a"
    " run whose drift reports were all measured before it ended (while it still ran, they"
    " cover only its beginning)."
)

CRITERIA_NOTE = (
    "A run's report checks the criteria of the `promotion:` section of the config the run"
    " was started with (stored with the run). `perps-bot promote` holds the run to the"
    " stricter of each threshold there and in the target stage's profile (the canary"
    " profile for `--to canary`, the prod profile for `--to prod`, as it reads when"
    " `promote` runs): a run started with relaxed criteria cannot promote itself. A"
    " threshold taken from the target profile says so in the criteria table (column"
    " `threshold from`) and in the refusal, with what the run's own config asked. With the"
    " shipped profiles a canary run needs the prod profile's 100 trades over 7 days to"
    " reach prod (the canary profile's own 30 trades over 3 days are what its reports"
    " show). `perps-bot promote --to canary` accepts a dev, backtest or walkforward run;"
    " `--to prod` accepts a live run of the canary profile. Only a completed or"
    " interrupted run counts (not one still running or failed)."
)

WALKFORWARD_GATE_NOTE = (
    "Promotion to canary may also ask for out-of-sample evidence:"
    " `promotion.require_walkforward` (the run must be a `walkforward` run: criterion"
    " `walkforward`) and `promotion.min_dsr` (its deflated Sharpe ratio at least this:"
    " criterion `dsr`). Both are off in the built-in defaults and in the dev profile, and read"
    " from two places: the run's own config and the canary profile's (the gate into canary)."
    " The shipped canary profile sets `require_walkforward: true` and `min_dsr: 0.95`, so"
    " `promote --to canary` records a promotion only for a walk-forward run that clears them;"
    " a one-run backtest is refused naming both. The record is the evidence of that gate;"
    " `--profile canary` itself does not ask for it at start (it trades tiny positions under"
    " its hard caps), while `--profile prod` refuses a strategy without a promotion to prod."
    " They never apply to promotion to prod (a live canary run is out"
    " of sample by nature). The `days` criterion of a walk-forward run counts the days its"
    " test windows cover, not the days between them (a `--step` longer than `--test`), and"
    " its `sharpe` criterion (`min_sharpe`) is the Sharpe ratio of its test windows' returns,"
    " the time between them cut out as for the DSR (the flat days between windows were"
    " returns of 0 that shrank it towards 0: a winning walk-forward was held back, a losing"
    " one looked less bad); with contiguous windows it is the run's own."
)


def help_epilog() -> str:
    """Definitions as plain text for `perps-bot report --help`: one paragraph each,
    unwrapped (the help formatter wraps to the terminal)."""
    parts = ["Metric definitions:"]
    parts += [f"{name}: {text}" for name, text in METRIC_DEFINITIONS.items()]
    parts.append(NULL_RULE)
    parts.append("Validation criteria:")
    parts += [f"{name}: {text}" for name, text in CRITERIA_DEFINITIONS.items()]
    parts.append(CRITERIA_NOTE)
    return "\n\n".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def readme_markdown() -> str:
    """The README section on reports, generated from the same definitions."""
    lines = [
        "## Reports, validation and promotion",
        "",
        "```",
        "perps-bot report [--run latest|RUN_ID] [--portfolio ID] [--format table|json|html]"
        " [--out PATH] [--export DIR] [--profile dev] [--db PATH] [--monte-carlo N] [--seed S]",
        "perps-bot promote --to canary|prod [--run RUN_ID] [--portfolio ID] [--profile PROFILE]"
        " [--db PATH] [--target-db PATH]",
        "```",
        "",
        "`report` reads a run from the profile's database (`data/perps_bot.<profile>.sqlite`)."
        " The same run always gives byte-identical JSON, HTML and CSV (no run id, path or"
        " wall-clock time in them; floats rounded to 12 significant digits; the HTML's"
        " compressed plotly.js depends only on the installed zlib). `--export DIR` writes"
        " `trades.csv`, `equity.csv` and `orders.csv`.",
        "",
        "- `--format table`: metrics (a metric computed from too little data is marked `(!)`"
        " and the reason printed under the table), criteria, breakdowns by symbol, side and"
        " exit rule, monthly returns, positions still open at the end, risk denials, and the"
        ' plan history of a run whose strategy planned (see "The LLM planner").',
        "- `--format json`: `{run, metrics, validation, warnings, monthly_returns, account,"
        " portfolios}` with sorted keys (plus `walkforward` for a walk-forward run,"
        ' `monte_carlo` with `--monte-carlo`, see "Validate a strategy", and `plans` for a'
        " run whose strategy planned). `warnings` lists"
        " `{metric, reason}`; `portfolios` has"
        " one entry per portfolio (`id` `main` for a one-strategy run) with its `strategy`,"
        " `strategy_params`, `strategy_fingerprint`, `symbols`, `initial_balance`,"
        " `final_equity`, `metrics`, `validation`, `warnings`, `breakdowns` (`symbol`, `side`,"
        " `exit_reason`: `key, trades, win_rate, net_pnl, avg_duration_s`) and"
        " `open_positions`; `account` (`initial_balance`, `final_equity`, `portfolios`,"
        " `metrics`, `validation`) is the whole account, as are the top-level metrics (see"
        " [Several strategies](#several-strategies-one-bot)).",
        "- `--format html`: one self-contained interactive file (Plotly, inlined: it works"
        " offline). Verdict, warnings, criteria and metrics; equity with its per-bucket range and"
        " drawdown (hover, drag to zoom) with a buy-and-hold line of the run's symbols; a"
        " monthly returns heat table; per portfolio, one price chart per symbol with the"
        " strategy's indicators and entry/exit markers, the breakdowns, the open positions and"
        " a paginated, sortable trade table with duration and % return (net PnL / entry"
        " notional). plotly.min.js is inlined once, gzip+base64 (about 2 MB), and unpacked by"
        " the browser (DecompressionStream: Chromium 80+, Firefox 113+, Safari 16.4+). A run"
        " with 10,000 trades on three symbols makes a 3.94 MB page.",
        "",
        "Data warnings: `sharpe`, `sortino` and `psr` from fewer than 30 returns, `win_rate`,"
        " `profit_factor`, `expectancy`, `risk_reward` and `sqn` from fewer than 30 trades, and"
        " `cagr` and `calmar` annualised from less than 30 days are flagged (when not null)."
        " The exit-reason breakdown groups by rule: indicator readings such as `z=0.13` are"
        " dropped from the reason.",
        "",
        "Price series: a run samples each symbol's last price and the indicators its strategy"
        " declares (`Strategy.plot_series()` names them, `plot_values(symbol)` gives their"
        " current values; `sma_cross` plots both SMAs, `mean_reversion` its mean and entry"
        " bands) from the first equity snapshot on, every `run.equity_interval`; whenever a"
        " symbol has 4,096 samples the interval doubles and every other sample is dropped, so a"
        " run of any length keeps 2,048 to 4,096 evenly spaced samples per symbol at the cost of"
        " one comparison per snapshot. The page draws up to 2,500 samples as a line; more are"
        " grouped k at a time into at most 1,000 candles (open, high, low and close of the"
        " samples), and the chart title says which.",
        "",
        "```",
        "perps-bot runs list [--profile P] [--kind K] [--status S] [--strategy NAME]"
        " [--limit 20] [--format table|json] [--db PATH]",
        "perps-bot runs compare RUN RUN ... [--format table|json|html] [--out PATH]"
        " [--profile P] [--db PATH]",
        "```",
        "",
        "`runs list` shows the newest runs first: id, kind, profile, strategy, start, duration,"
        " trades, return (last equity against the initial balance) and status. `runs compare`"
        " puts the run facts, metrics (with `(!)` warnings), criteria and verdicts of two or"
        " more runs side by side; its HTML overlays their returns since start. An unknown run"
        " or database is one line on stderr and exit 2.",
        "",
        "### Metrics (`metrics` in the JSON report)",
        "",
        "| name | definition |",
        "|---|---|",
    ]
    lines += [f"| `{k}` | {_cell(v)} |" for k, v in METRIC_DEFINITIONS.items()]
    lines += ["", NULL_RULE, "", "### trades.csv", "", "| column | meaning |", "|---|---|"]
    lines += [f"| `{k}` | {_cell(v)} |" for k, v in TRADE_COLUMN_DEFINITIONS.items()]
    lines += ["", "### equity.csv", "", "| column | meaning |", "|---|---|"]
    lines += [f"| `{k}` | {_cell(v)} |" for k, v in EQUITY_COLUMN_DEFINITIONS.items()]
    lines += ["", "### orders.csv", "", "| column | meaning |", "|---|---|"]
    lines += [f"| {k} | {_cell(v)} |" for k, v in ORDER_COLUMN_DEFINITIONS.items()]
    lines += ["", "### Validation criteria", "", "| criterion | passes when |", "|---|---|"]
    lines += [f"| `{k}` | {_cell(v)} |" for k, v in CRITERIA_DEFINITIONS.items()]
    lines += [
        "",
        PROD_DRIFT_NOTE,
        "",
        CRITERIA_NOTE,
        "",
        WALKFORWARD_GATE_NOTE,
        "",
        "`promote` exits 0 and records the promotion for the run's strategy fingerprint when"
        " every criterion passes; it exits 1 naming every failed criterion (or the wrong run"
        " kind), and 2 on a missing database or unknown run. The promotion is recorded in the"
        " run's database and in the target stage's profile database (`--target-db`), which is"
        " where `perps-bot --profile prod` looks for it. The fingerprint covers the strategy,"
        " its params, the bar size (`strategy.timeframe`, as a duration: `1h`, `60m` and"
        " `3600s` are one bar size), the `plan` strategy's plan file content (as it reads"
        " when the run starts), the code version and the strategy's source: a promotion"
        " earned on 1h bars does not cover 1m bars, nor one of a plan"
        " the edited file. A promotion recorded before the fingerprint covered the bar size"
        " and the plan file is not migrated (the bars and plan of its evidence are not known"
        " for sure): prod refuses naming it, promote again.",
        "",
    ]
    return "\n".join(lines)
