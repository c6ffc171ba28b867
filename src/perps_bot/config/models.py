"""Typed profile sections. Every model forbids unknown keys so a typo in a profile
is a one-line error naming the key's path instead of a silently ignored setting.

Money amounts in config are floats: they are settings, not ledger entries; the
ledger converts them to Decimal at its boundary. Every float is a FiniteFloat: YAML's
`.inf` / `.nan` and the environment's `inf` / `nan` parse as floats, and an infinite
balance or a NaN fee would otherwise run and report nonsense instead of failing
(so would `true`, which pydantic reads as 1.0).
"""

from typing import Annotated, Literal

from pydantic import (
    AllowInfNan,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from perps_bot.domain import MarginMode, RunMode
from perps_bot.domain.timeutil import MAX_TIME_MS, MIN_TIME_MS, parse_duration, parse_iso_ms


def _not_a_bool(value: object) -> object:
    """YAML's `true` would otherwise be read as the number 1.0 (a funding rate of 100%)."""
    if isinstance(value, bool):
        raise ValueError("Input should be a number, not true or false")
    return value


#: The one float type of the config: NaN, +-infinity and true/false are refused (see the
#: docstring).
FiniteFloat = Annotated[float, AllowInfNan(False), BeforeValidator(_not_a_bool)]
PositiveFloat = Annotated[FiniteFloat, Field(gt=0)]
NonNegFloat = Annotated[FiniteFloat, Field(ge=0)]
Fraction = Annotated[FiniteFloat, Field(gt=0, le=1)]
# A maintenance tier: (notional_floor, maintenance_margin_rate, maintenance_amount)
Tier = tuple[NonNegFloat, Annotated[FiniteFloat, Field(gt=0, lt=1)], NonNegFloat]
#: The least a balance or a portfolio's capital may be (a cent): `> 0` alone took 1e-300
#: and ran a run that could trade nothing (every order denied), silently.
MIN_MONEY = 0.01
Money = Annotated[FiniteFloat, Field(ge=MIN_MONEY)]
#: Seeds are kept exactly in the run store, whose integers are signed 64-bit.
MAX_SEED = 2**63 - 1


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: str) -> str:
    parse_duration(value)
    return value


def distinct_symbols(symbols: list[str] | None) -> list[str] | None:
    """A symbol listed twice would be traded as one: refused rather than guessed at."""
    listed = symbols or []
    twice = next((s for i, s in enumerate(listed) if s in listed[:i]), None)
    if twice is not None:
        raise ValueError(f"symbol {twice!r} is listed twice")
    return symbols


class RunConfig(Section):
    """What to run and for how long; CLI run options land here."""

    seed: int = Field(default=42, ge=0, le=MAX_SEED)
    duration: str | None = None  # None: until Ctrl-C
    symbols: list[str] = Field(default_factory=lambda: ["BTC-PERP", "ETH-PERP"], min_length=1)
    dev_fast: bool = False
    dry_run: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    equity_interval: str = "1m"
    log_equity_interval: str = "1h"
    live_view: bool = True
    debug_invariants: bool = False
    http_port: int | None = Field(default=None, ge=1, le=65535)
    data_dir: str = "data"
    # exchange-fed runs record their market data and order round trips (SPEC 14)
    capture: bool = True
    # a replay: the run whose capture it replays (set by `perps-bot replay`)
    replay_of: str | None = None
    log_dir: str = "logs"
    database: str | None = None  # default: <data_dir>/perps_bot.<profile>.sqlite
    # Set by the commands that decide it (backtest, replay); otherwise the mode follows
    # from the broker and --dry-run (see Settings.mode).
    mode: RunMode | None = None
    # "metrics": the run keeps only what its metrics need (an in-memory store, no log,
    # journal, excursion or price-series rows, no database lock): optimisation trials,
    # thousands of backtests whose runs nobody reads. Same stages, same numbers.
    record: Literal["full", "metrics"] = "full"

    _check_symbols = field_validator("symbols")(distinct_symbols)
    _check_duration = field_validator("duration")(lambda v: None if v is None else _duration(v))
    _check_intervals = field_validator("equity_interval", "log_equity_interval")(_duration)

    @property
    def duration_ms(self) -> int | None:
        return None if self.duration is None else parse_duration(self.duration)


class BrokerConfig(Section):
    kind: Literal["mock", "ccxt"] = "mock"


class ExchangeConfig(Section):
    """The ccxt exchange for canary and prod. Keys come only from the environment."""

    name: str = "binanceusdm"
    # Points EVERY REST and websocket url at this host (proxy or `perps-bot emulator`);
    # ccxt's rate limiter is off then. e.g. PERPS_BOT__EXCHANGE__BASE_URL=http://127.0.0.1:8900
    base_url: str | None = None
    demo: bool = False  # ccxt enable_demo_trading(True): binance demo-fapi host
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    timeout_ms: int = Field(default=10_000, gt=0)
    poll_interval: str = "1s"
    stale_after: str = "10s"
    use_websocket: bool = False
    # public trades (fetch_trades / watch_trades): the capture and the queue fill model
    public_trades: bool = True
    max_retries: int = Field(default=5, ge=0)
    backoff_base: str = "250ms"
    backoff_max: str = "10s"
    breaker_failures: int = Field(default=5, ge=1)
    breaker_cooldown: str = "30s"
    # A dry run or live run that cannot load the exchange's markets within this gives up
    # with one line and exit code 2 (instead of retrying for ever).
    startup_timeout: str = "30s"
    # Live runs compare their books with the exchange this often (and after reconnects).
    reconcile_interval: str = "60s"
    # Signed requests carry this recvWindow: the exchange refuses a request that reaches
    # its engine later than this after signing. An order whose outcome is unknown is
    # looked up until this (plus a second of clock margin) has passed, never resent
    # before. Binance allows at most 60s.
    recv_window: str = "5s"

    _check = field_validator(
        "poll_interval",
        "stale_after",
        "backoff_base",
        "backoff_max",
        "breaker_cooldown",
        "startup_timeout",
        "reconcile_interval",
        "recv_window",
    )(_duration)

    @field_validator("recv_window")
    @classmethod
    def _recv_window_bound(cls, value: str) -> str:
        if not 0 < parse_duration(value) <= 60_000:
            raise ValueError("recv_window must be more than 0 and at most 60s (Binance's limit)")
        return value


class RandomWalkConfig(Section):
    """Per-symbol price process of the mock exchange (annualised drift and volatility).
    Prices move on the symbol's instrument tick (`instruments:`)."""

    initial_price: PositiveFloat = 100.0
    drift: FiniteFloat = 0.0
    volatility: PositiveFloat = 0.6
    jump_intensity: NonNegFloat = 0.0  # expected jumps per day
    jump_std: NonNegFloat = 0.02  # log-size of a jump
    book_depth: PositiveFloat = 1.0  # base quantity at the best level


class FundingProcessConfig(Section):
    """Mean-reverting funding rate process of the mock exchange (rates per interval)."""

    mean_rate: FiniteFloat = 0.0001
    volatility: NonNegFloat = 0.00005
    reversion: Fraction = 0.2
    clamp: PositiveFloat = 0.0075


class MockConfig(Section):
    # Simulated runs start here so that a seed alone fixes every timestamp.
    start: str = "2024-01-01T00:00:00Z"
    tick_interval: str = "1s"
    # below 200% and 100%: a wider spread puts the bid, more slippage a sell's price, at
    # or below zero (and the run then trades at nonsense prices or stops mid-way)
    spread_bps: Annotated[NonNegFloat, Field(lt=20_000)] = 10.0
    slippage_bps: Annotated[NonNegFloat, Field(lt=10_000)] = 5.0
    fill_probability: Fraction = 0.95
    latency: str = "50ms"
    book_levels: int = Field(default=20, ge=1, le=500)
    depth_growth: NonNegFloat = 0.15  # each level deeper holds this much more quantity
    level_spacing_bps: PositiveFloat = 1.0
    mark_noise_bps: NonNegFloat = 1.0
    symbols: dict[str, RandomWalkConfig] = Field(
        default_factory=lambda: {
            "BTC-PERP": RandomWalkConfig(initial_price=60_000.0, volatility=0.6, book_depth=2.0),
            "ETH-PERP": RandomWalkConfig(initial_price=3_000.0, volatility=0.75, book_depth=20.0),
        }
    )
    funding: FundingProcessConfig = FundingProcessConfig()
    # Quantity at the best level of the synthetic book built around candles or quotes of a
    # symbol with no price process in `symbols` (backtests of other symbols).
    default_book_depth: PositiveFloat = 1.0
    # How a resting paper order fills (SPEC 14, README "Fill models"): touch (today's
    # rule), penetration (the price must trade `penetration_ticks` through it) or queue
    # (its place in the level's queue, advanced per `queue_model`).
    fill_model: Literal["touch", "penetration", "queue"] = "touch"
    penetration_ticks: int = Field(default=1, ge=0)
    queue_model: str = "risk_averse"  # risk_averse | power:N | log
    # constant: `latency`; empirical: drawn from `latency_samples` (ms; a replay fills
    # them with the capture's measured round trips)
    latency_model: Literal["constant", "empirical"] = "constant"
    latency_samples: list[Annotated[int, Field(ge=0)]] = Field(default_factory=list)
    # Intra-candle path: nearest (the extreme nearer the open first) or adaptive (a
    # rising candle visits its low first, a falling one its high)
    candle_path: Literal["nearest", "adaptive"] = "nearest"

    _check = field_validator("tick_interval", "latency")(_duration)

    @field_validator("queue_model")
    @classmethod
    def _queue_model_known(cls, value: str) -> str:
        name = value.strip().lower()
        if name in ("risk_averse", "log"):
            return name
        power = name.removeprefix("power:")
        try:
            ok = name.startswith("power:") and 0 < float(power) < float("inf")
        except ValueError:
            ok = False
        if not ok:
            raise ValueError("use risk_averse, power:N (N > 0) or log")
        return f"power:{float(power):g}"

    @model_validator(mode="after")
    def _samples_for_empirical(self) -> "MockConfig":
        if self.latency_model == "empirical" and not self.latency_samples:
            raise ValueError("latency_model empirical needs latency_samples (ms)")
        if (self.book_levels - 1) * self.level_spacing_bps >= 10_000:
            raise ValueError(
                "book_levels x level_spacing_bps puts the deepest bid at or below 0:"
                " keep (book_levels - 1) * level_spacing_bps below 10000"
            )
        return self

    @field_validator("start")
    @classmethod
    def _start_in_range(cls, value: str) -> str:
        """A run's clock starts here: refused now rather than deep inside the run."""
        try:
            ms = parse_iso_ms(value)
        except ValueError:
            raise ValueError("not an ISO-8601 time, e.g. 2024-01-01T00:00:00Z") from None
        if not MIN_TIME_MS <= ms < MAX_TIME_MS:
            raise ValueError("must be between 1970-01-01 and 3000-01-01")
        return value

    def book_depth(self, symbol: str) -> float:
        walk = self.symbols.get(symbol)
        return walk.book_depth if walk is not None else self.default_book_depth


class FeesConfig(Section):
    maker_bps: FiniteFloat = 2.0  # negative = rebate
    taker_bps: NonNegFloat = 5.0


class AccountConfig(Section):
    """Margin account: balance, mode, leverage, funding schedule. (Maintenance tiers are
    instrument data: `instruments:`.)"""

    initial_balance: Money = 100_000.0
    margin_mode: MarginMode = MarginMode.CROSS
    default_leverage: PositiveFloat = 5.0
    leverage: dict[str, PositiveFloat] = Field(default_factory=dict)
    funding_interval: str = "8h"
    default_funding_rate: FiniteFloat = 0.0001
    liquidation_fee_bps: NonNegFloat = 50.0
    # True: the liquidation fee never exceeds the margin left after the forced close.
    liquidation_fee_capped: bool = False

    _check = field_validator("funding_interval")(_duration)

    def leverage_for(self, symbol: str) -> float:
        return self.leverage.get(symbol, self.default_leverage)


class StrategyConfig(Section):
    """Which strategy runs, with its parameters, on what bar size, and how big it trades."""

    name: str = "sma_cross"
    params: dict[str, FiniteFloat | int | str | bool] = Field(default_factory=dict)
    timeframe: str = "1m"
    order_size: dict[str, PositiveFloat] = Field(
        default_factory=lambda: {"BTC-PERP": 0.001, "ETH-PERP": 0.01}
    )
    default_order_size: PositiveFloat = 1.0

    _check = field_validator("timeframe")(_duration)

    def size_for(self, symbol: str) -> float:
        return self.order_size.get(symbol, self.default_order_size)


class PortfolioConfig(Section):
    """One strategy with its own pot of money (SPEC 10): its own ledger, positions, risk
    state and circuit breaker, trading beside the others on one feed and one venue."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,24}$")
    strategy: str
    params: dict[str, FiniteFloat | int | str | bool] = Field(default_factory=dict)
    symbols: list[str] | None = Field(default=None, min_length=1)  # None: run.symbols
    capital: Money | None = None  # None: an equal share of what the others leave
    risk: dict[str, FiniteFloat | int | str | bool] = Field(default_factory=dict)  # over `risk:`
    order_size: dict[str, PositiveFloat] = Field(default_factory=dict)  # over strategy's

    _check_symbols = field_validator("symbols")(distinct_symbols)

    @field_validator("id")
    @classmethod
    def _not_a_dot_segment(cls, value: str) -> str:
        """'.' and '..' are path segments every HTTP client resolves away: the session
        API's /portfolios/{id}/pause of such a portfolio would reach another URL."""
        if value in (".", ".."):
            raise ValueError(f"{value!r} is not a portfolio id (a URL path segment)")
        return value


class RiskConfig(Section):
    """Hard limits the risk gate enforces whatever the strategy asks."""

    max_order_notional: PositiveFloat = 10_000.0
    max_position_notional: PositiveFloat = 50_000.0
    max_leverage: PositiveFloat = 10.0
    max_orders_per_minute: int = Field(default=60, ge=1)
    daily_loss_limit: Fraction = 0.05  # fraction of the day's starting equity
    max_drawdown: Fraction = 0.20  # fraction of peak equity; HALTED past it
    reducing_drawdown: Fraction = 0.15  # REDUCING past it
    stale_after: str = "30s"
    resize_to_caps: bool = True  # resize orders down to the notional caps instead of denying

    _check = field_validator("stale_after")(_duration)

    @model_validator(mode="after")
    def _drawdown_order(self) -> "RiskConfig":
        if self.reducing_drawdown > self.max_drawdown:
            raise ValueError("reducing_drawdown must not exceed max_drawdown")
        return self


class PromotionConfig(Section):
    """Validation criteria a run must pass to promote its strategy (SPEC 6)."""

    min_trades: int = Field(default=100, ge=0)
    min_days: NonNegFloat = 7.0
    min_win_rate: FiniteFloat = Field(default=0.55, ge=0, le=1)
    min_sharpe: FiniteFloat = 1.0
    max_drawdown: Fraction = 0.10
    max_liquidations: int = Field(default=0, ge=0)
    max_error_lines: int = Field(default=0, ge=0)
    # promotion to prod: the canary run's drift against its replay (SPEC 14)
    max_slippage_drift_bps: NonNegFloat = 2.0
    min_signal_agreement: Annotated[FiniteFloat, Field(ge=0, le=1)] = 0.9
    max_pnl_tracking_error: NonNegFloat = 0.01
    sharpe_period: str = "1d"
    # Out-of-sample evidence for promotion to canary (SPEC 13), off by default: the run
    # must be a walk-forward run, and its deflated Sharpe ratio at least min_dsr. Both
    # are read from the run's own config and from the canary profile's (the gate).
    require_walkforward: bool = False
    min_dsr: FiniteFloat | None = Field(default=None, ge=0, le=1)

    _check = field_validator("sharpe_period")(_duration)


class LoggingConfig(Section):
    max_bytes: int = Field(default=20_000_000, ge=10_000)
    # at least one: a rotating log with no backup file never rotates (logging's rule)
    backups: int = Field(default=5, ge=1)
