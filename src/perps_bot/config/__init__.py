"""Configuration: typed profile sections and the layered loader."""

from perps_bot.config.alerts import ALERT_EVENTS, AlertEvent, AlertsConfig, mask_url
from perps_bot.config.errors import ConfigError
from perps_bot.config.instrument_config import InstrumentConfig, check_tiers
from perps_bot.config.llm import LlmConfig
from perps_bot.config.models import (
    AccountConfig,
    BrokerConfig,
    ExchangeConfig,
    FeesConfig,
    FundingProcessConfig,
    LoggingConfig,
    MockConfig,
    PortfolioConfig,
    PromotionConfig,
    RandomWalkConfig,
    RiskConfig,
    RunConfig,
    StrategyConfig,
    Tier,
)
from perps_bot.config.portfolios import PortfolioPlan
from perps_bot.config.profile_files import known_profiles, read_profile
from perps_bot.config.settings import Settings, load_settings

__all__ = [
    "ALERT_EVENTS",
    "AccountConfig",
    "AlertEvent",
    "AlertsConfig",
    "BrokerConfig",
    "ConfigError",
    "ExchangeConfig",
    "FeesConfig",
    "FundingProcessConfig",
    "InstrumentConfig",
    "LlmConfig",
    "LoggingConfig",
    "MockConfig",
    "PortfolioConfig",
    "PortfolioPlan",
    "PromotionConfig",
    "RandomWalkConfig",
    "RiskConfig",
    "RunConfig",
    "Settings",
    "StrategyConfig",
    "Tier",
    "check_tiers",
    "known_profiles",
    "load_settings",
    "mask_url",
    "read_profile",
]
