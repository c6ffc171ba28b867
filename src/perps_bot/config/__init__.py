"""Configuration: typed profile sections and the layered loader."""

from perps_bot.config.models import (
    AccountConfig,
    BrokerConfig,
    ExchangeConfig,
    FeesConfig,
    FundingProcessConfig,
    LoggingConfig,
    MockConfig,
    PromotionConfig,
    RandomWalkConfig,
    RiskConfig,
    RunConfig,
    StrategyConfig,
    Tier,
)
from perps_bot.config.settings import ConfigError, Settings, load_settings, read_profile

__all__ = [
    "AccountConfig",
    "BrokerConfig",
    "ConfigError",
    "ExchangeConfig",
    "FeesConfig",
    "FundingProcessConfig",
    "LoggingConfig",
    "MockConfig",
    "PromotionConfig",
    "RandomWalkConfig",
    "RiskConfig",
    "RunConfig",
    "Settings",
    "StrategyConfig",
    "Tier",
    "load_settings",
    "read_profile",
]
