"""The portfolios of a run (SPEC 10), resolved from the profile: `portfolios:` (each
with its strategy, params, symbols, capital and risk overrides), or the single
`strategy:` section as one portfolio `main`.

Capital: a portfolio without `capital` gets an equal share of what the portfolios with
one leave of `account.initial_balance`; the capitals may not add up to more than it.
Risk: a portfolio's `risk` keys override the profile's `risk:` for that portfolio only;
the profile's `risk:` also caps the whole account (the sum of the portfolios), which is
what an exchange account's limits are about.
"""

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from perps_bot.config.models import MIN_MONEY, PortfolioConfig, RiskConfig
from perps_bot.domain import ACCOUNT, DEFAULT_PORTFOLIO

if TYPE_CHECKING:
    from perps_bot.config.settings import Settings


@dataclass(frozen=True)
class PortfolioPlan:
    """One portfolio as the run builds it."""

    id: str
    strategy: str
    params: dict[str, Any]
    symbols: list[str]
    capital: float
    risk: RiskConfig
    order_sizes: dict[str, float]
    default_order_size: float

    def size_for(self, symbol: str) -> float:
        return self.order_sizes.get(symbol, self.default_order_size)


def plan_portfolios(settings: "Settings") -> list[PortfolioPlan]:
    """The run's portfolios; ValueError (one line) for a plan that cannot be run."""
    strategy = settings.strategy
    if not settings.portfolios:
        return [
            PortfolioPlan(
                id=DEFAULT_PORTFOLIO,
                strategy=strategy.name,
                params=dict(strategy.params),
                symbols=list(settings.run.symbols),
                capital=settings.account.initial_balance,
                risk=settings.risk,
                order_sizes=dict(strategy.order_size),
                default_order_size=strategy.default_order_size,
            )
        ]
    ids = [p.id for p in settings.portfolios]
    duplicate = next((i for i in ids if ids.count(i) > 1), None)
    if duplicate is not None:
        raise ValueError(f"portfolio id {duplicate!r} is used twice")
    if ACCOUNT in ids and len(ids) > 1:
        raise ValueError(f"portfolio id {ACCOUNT!r} is taken: with several portfolios it"
                         " names the whole account (metrics, the session stream)")  # fmt: skip
    if DEFAULT_PORTFOLIO in ids and len(ids) > 1:
        raise ValueError(f"portfolio id {DEFAULT_PORTFOLIO!r} is taken: with several"
                         " portfolios it names the whole account's trading state (its halt"
                         " holds for every portfolio)")  # fmt: skip
    capitals = _capitals(settings.portfolios, settings.account.initial_balance)
    return [
        PortfolioPlan(
            id=p.id,
            strategy=p.strategy,
            params=dict(p.params),
            symbols=list(p.symbols or settings.run.symbols),
            capital=capital,
            risk=_risk(settings.risk, p),
            order_sizes=dict(strategy.order_size) | p.order_size,
            default_order_size=strategy.default_order_size,
        )
        for p, capital in zip(settings.portfolios, capitals, strict=True)
    ]


def traded_symbols(plans: list[PortfolioPlan]) -> list[str]:
    """Every symbol any portfolio trades, in first-seen order (what the feed serves)."""
    return list(dict.fromkeys(s for p in plans for s in p.symbols))


def _capitals(portfolios: list[PortfolioConfig], balance: float) -> list[float]:
    given = sum(p.capital for p in portfolios if p.capital is not None)
    if given > balance * (1 + 1e-12):
        raise ValueError(
            f"the portfolios' capital ({given:g}) is more than account.initial_balance"
            f" ({balance:g})"
        )
    open_shares = [p for p in portfolios if p.capital is None]
    share = (balance - given) / len(open_shares) if open_shares else 0.0
    if open_shares and share < MIN_MONEY:
        raise ValueError("no capital is left for the portfolios that give none")
    return [p.capital if p.capital is not None else share for p in portfolios]


def _risk(base: RiskConfig, portfolio: PortfolioConfig) -> RiskConfig:
    try:
        return RiskConfig.model_validate(base.model_dump() | portfolio.risk)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(["risk", *(str(p) for p in first["loc"])])
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        raise ValueError(f"portfolios.{portfolio.id}.{path}: {message}") from None


def portfolio_ids(names: list[str], taken: frozenset[str] = frozenset()) -> list[str]:
    """A portfolio id per `--strategy`: its name (a class path: the class), made unique
    (also against `taken`: the ids other portfolios give themselves)."""
    ids: list[str] = []
    for name in names:
        base = re.sub(r"[^A-Za-z0-9_-]", "_", re.split(r"[:.]", name.strip())[-1])[:20] or "p"
        pid, n = base, 1
        while pid in ids or pid in taken:
            n += 1
            pid = f"{base}-{n}"
        ids.append(pid)
    return ids
