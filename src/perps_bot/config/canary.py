"""What makes the canary the canary (SPEC 1): the one profile that trades real money
without a promotion to prod, because it trades under hard caps: at most 50 USDT per
order and per position, at most 2x leverage.

The caps follow the profile's name, which is also what the prod promotion gate follows
(orchestrator.preflight): a profile named canary by its `profile:` line or by its file
name (/tmp/x/canary.yaml), wherever the file is, has them, and no layer (the file, a
PERPS_BOT__RISK__ variable, a flag) may raise them above the ceilings; a canary may lower
them. A profile of another name that trades live needs a promotion to prod instead.
"""

from perps_bot.config.models import AccountConfig, RiskConfig

#: the profile that trades real orders without a promotion to prod (tiny, capped)
CANARY = "canary"
#: the canary's ceilings (its `risk:` may set lower ones)
CANARY_MAX_ORDER_NOTIONAL = 50.0
CANARY_MAX_POSITION_NOTIONAL = 50.0
CANARY_MAX_LEVERAGE = 2.0

_CEILINGS = (
    ("max_order_notional", CANARY_MAX_ORDER_NOTIONAL, " notional per order"),
    ("max_position_notional", CANARY_MAX_POSITION_NOTIONAL, " notional per position"),
    ("max_leverage", CANARY_MAX_LEVERAGE, "x leverage"),
)


def canary_caps_refusal(
    profile: str, risk: RiskConfig, account: AccountConfig, *, real_orders: bool
) -> str | None:
    """Why a profile named canary cannot run with these `risk:` caps or `account:`
    leverage, or None. The leverage ceiling holds in every mode, for the account's
    exposure (risk) and for each symbol's leverage the live venue sets on the exchange
    (account: an isolated position at 5x is 5x from its liquidation); the notional ones
    where orders are real (a paper run of the canary may try larger sizes: no money is
    at stake)."""
    if profile != CANARY:
        return None
    limits = [(f"risk.{key}", float(getattr(risk, key)), ceiling, unit)
              for key, ceiling, unit in (_CEILINGS if real_orders else _CEILINGS[-1:])]  # fmt: skip
    leverages = {"default_leverage": account.default_leverage}
    leverages |= {f"leverage.{s}": value for s, value in sorted(account.leverage.items())}
    limits += [(f"account.{key}", value, CANARY_MAX_LEVERAGE, "x leverage")
               for key, value in leverages.items()]  # fmt: skip
    for key, value, ceiling, unit in limits:
        if value > ceiling:
            return (
                f"{key} {value:g}: the canary profile trades at most {ceiling:g}{unit}"
                " (its hard cap: the canary trades real money without a promotion to prod)"
            )
    return None
