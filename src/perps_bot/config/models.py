"""Typed profile sections. Every model forbids unknown keys so a typo in a profile
is a one-line error naming the key's path instead of a silently ignored setting.

Money amounts in config are floats: they are settings, not ledger entries; the
ledger converts them to Decimal at its boundary.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from perps_bot.domain import MarginMode
from perps_bot.domain.timeutil import parse_duration

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, le=1)]
# A maintenance tier: (notional_floor, maintenance_margin_rate, maintenance_amount)
Tier = tuple[NonNegFloat, Annotated[float, Field(gt=0, lt=1)], NonNegFloat]

BINANCE_BTC_TIERS: list[Tier] = [
    (0.0, 0.004, 0.0),
    (50_000.0, 0.005, 50.0),
    (600_000.0, 0.01, 3_050.0),
    (3_000_000.0, 0.025, 48_050.0),
    (12_000_000.0, 0.05, 348_050.0),
    (20_000_000.0, 0.1, 1_348_050.0),
    (30_000_000.0, 0.125, 2_098_050.0),
    (50_000_000.0, 0.15, 3_348_050.0),
    (80_000_000.0, 0.25, 11_348_050.0),
]
BINANCE_ETH_TIERS: list[Tier] = [
    (0.0, 0.005, 0.0),
    (50_000.0, 0.0065, 75.0),
    (600_000.0, 0.01, 2_175.0),
    (3_000_000.0, 0.02, 32_175.0),
    (12_000_000.0, 0.05, 392_175.0),
    (20_000_000.0, 0.1, 1_392_175.0),
    (30_000_000.0, 0.125, 2_142_175.0),
    (50_000_000.0, 0.15, 3_392_175.0),
    (80_000_000.0, 0.25, 11_392_175.0),
]
DEFAULT_TIERS: list[Tier] = [
    (0.0, 0.01, 0.0),
    (5_000.0, 0.025, 75.0),
    (25_000.0, 0.05, 700.0),
    (100_000.0, 0.1, 5_700.0),
    (250_000.0, 0.125, 11_950.0),
    (1_000_000.0, 0.5, 386_950.0),
]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: str) -> str:
    parse_duration(value)
    return value


class RunConfig(Section):
    """What to run and for how long; CLI run options land here."""

    seed: int = 42
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
    log_dir: str = "logs"
    database: str | None = None  # default: <data_dir>/perps_bot.<profile>.sqlite

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
    symbol_map: dict[str, str] = Field(
        default_factory=lambda: {"BTC-PERP": "BTC/USDT:USDT", "ETH-PERP": "ETH/USDT:USDT"}
    )
    max_retries: int = Field(default=5, ge=0)
    backoff_base: str = "250ms"
    backoff_max: str = "10s"
    breaker_failures: int = Field(default=5, ge=1)
    breaker_cooldown: str = "30s"

    _check = field_validator(
        "poll_interval", "stale_after", "backoff_base", "backoff_max", "breaker_cooldown"
    )(_duration)


class RandomWalkConfig(Section):
    """Per-symbol price process of the mock exchange (annualised drift and volatility)."""

    initial_price: PositiveFloat = 100.0
    drift: float = 0.0
    volatility: PositiveFloat = 0.6
    jump_intensity: NonNegFloat = 0.0  # expected jumps per day
    jump_std: NonNegFloat = 0.02  # log-size of a jump
    book_depth: PositiveFloat = 1.0  # base quantity at the best level
    tick_size: PositiveFloat = 0.01
    step_size: PositiveFloat = 0.001


class FundingProcessConfig(Section):
    """Mean-reverting funding rate process of the mock exchange (rates per interval)."""

    mean_rate: float = 0.0001
    volatility: NonNegFloat = 0.00005
    reversion: Fraction = 0.2
    clamp: PositiveFloat = 0.0075


class MockConfig(Section):
    # Simulated runs start here so that a seed alone fixes every timestamp.
    start: str = "2024-01-01T00:00:00Z"
    tick_interval: str = "1s"
    spread_bps: NonNegFloat = 10.0
    slippage_bps: NonNegFloat = 5.0
    fill_probability: Fraction = 0.95
    latency: str = "50ms"
    book_levels: int = Field(default=20, ge=1, le=500)
    depth_growth: NonNegFloat = 0.15  # each level deeper holds this much more quantity
    level_spacing_bps: PositiveFloat = 1.0
    mark_noise_bps: NonNegFloat = 1.0
    symbols: dict[str, RandomWalkConfig] = Field(
        default_factory=lambda: {
            "BTC-PERP": RandomWalkConfig(
                initial_price=60_000.0,
                volatility=0.6,
                book_depth=2.0,
                tick_size=0.1,
                step_size=0.001,
            ),
            "ETH-PERP": RandomWalkConfig(
                initial_price=3_000.0,
                volatility=0.75,
                book_depth=20.0,
                tick_size=0.01,
                step_size=0.001,
            ),
        }
    )
    funding: FundingProcessConfig = FundingProcessConfig()

    _check = field_validator("tick_interval", "latency")(_duration)

    def walk(self, symbol: str) -> RandomWalkConfig:
        """The symbol's price process; unknown symbols get a generic one."""
        return self.symbols.get(symbol, RandomWalkConfig())


class FeesConfig(Section):
    maker_bps: float = 2.0  # negative = rebate
    taker_bps: NonNegFloat = 5.0


class AccountConfig(Section):
    """Margin account: balance, mode, leverage, funding schedule, maintenance tiers."""

    initial_balance: PositiveFloat = 100_000.0
    margin_mode: MarginMode = MarginMode.CROSS
    default_leverage: PositiveFloat = 5.0
    leverage: dict[str, PositiveFloat] = Field(default_factory=dict)
    funding_interval: str = "8h"
    default_funding_rate: float = 0.0001
    liquidation_fee_bps: NonNegFloat = 50.0
    # True: the liquidation fee never exceeds the margin left after the forced close.
    liquidation_fee_capped: bool = False
    tiers: dict[str, list[Tier]] = Field(
        default_factory=lambda: {"BTC-PERP": BINANCE_BTC_TIERS, "ETH-PERP": BINANCE_ETH_TIERS}
    )
    default_tiers: list[Tier] = Field(default_factory=lambda: list(DEFAULT_TIERS))

    _check = field_validator("funding_interval")(_duration)

    @field_validator("tiers")
    @classmethod
    def _tiers_sorted(cls, value: dict[str, list[Tier]]) -> dict[str, list[Tier]]:
        for symbol, tiers in value.items():
            _check_tiers(symbol, tiers)
        return value

    @field_validator("default_tiers")
    @classmethod
    def _default_sorted(cls, value: list[Tier]) -> list[Tier]:
        _check_tiers("default", value)
        return value

    def leverage_for(self, symbol: str) -> float:
        return self.leverage.get(symbol, self.default_leverage)

    def tiers_for(self, symbol: str) -> list[Tier]:
        return self.tiers.get(symbol, self.default_tiers)


def _check_tiers(name: str, tiers: list[Tier]) -> None:
    if not tiers or tiers[0][0] != 0:
        raise ValueError(f"tiers for {name} must start at notional 0")
    floors = [t[0] for t in tiers]
    if floors != sorted(floors) or len(set(floors)) != len(floors):
        raise ValueError(f"tiers for {name} must have strictly increasing notional floors")


class StrategyConfig(Section):
    """Which strategy runs, with its parameters, on what bar size, and how big it trades."""

    name: str = "sma_cross"
    params: dict[str, float | int | str | bool] = Field(default_factory=dict)
    timeframe: str = "1m"
    order_size: dict[str, PositiveFloat] = Field(
        default_factory=lambda: {"BTC-PERP": 0.001, "ETH-PERP": 0.01}
    )
    default_order_size: PositiveFloat = 1.0

    _check = field_validator("timeframe")(_duration)

    def size_for(self, symbol: str) -> float:
        return self.order_size.get(symbol, self.default_order_size)


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
    min_win_rate: float = Field(default=0.55, ge=0, le=1)
    min_sharpe: float = 1.0
    max_drawdown: Fraction = 0.10
    max_liquidations: int = Field(default=0, ge=0)
    max_error_lines: int = Field(default=0, ge=0)
    sharpe_period: str = "1d"

    _check = field_validator("sharpe_period")(_duration)


class LoggingConfig(Section):
    max_bytes: int = Field(default=20_000_000, ge=10_000)
    backups: int = Field(default=5, ge=0)
