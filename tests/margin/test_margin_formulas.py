"""Margin formulas against hand-computed vectors and the defining identity of LP.

Vectors are derived from first principles: at the liquidation price the margin
balance equals the maintenance margin,
    WB + UPNL_other + s*Q*(LP - EP) == TMM_other + Q*LP*MMR - cum,
solved for LP (Binance USDM one-way mode). Arithmetic is written out in comments.
"""

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perps_bot.instruments import builtin_instruments
from perps_bot.instruments.catalog import generic_tiers
from perps_bot.margin import (
    funding_payment,
    liquidation_price,
    liquidation_price_tiered,
    maintenance_margin,
    maintenance_tier,
)

# ---------------------------------------------------------------- hand vectors

BINANCE_BTC_TIERS = list(builtin_instruments()["BTC-PERP"].tiers)
DEFAULT_TIERS = list(generic_tiers())


def test_isolated_long_10x_one_btc() -> None:
    # LP = (1000 + 0 - 1*10000) / (1*0.004 - 1) = -9000 / -0.996 = 9036.1445783...
    lp = liquidation_price("long", 1, 10_000, 1_000, 0.004)
    assert lp == pytest.approx(9_036.144578313253, rel=1e-15)
    # margin balance at LP: 1000 + (LP - 10000) = 36.1445783... == 0.004 * LP
    assert 1_000 + (lp - 10_000) == pytest.approx(0.004 * lp, rel=1e-12)


def test_isolated_short_10x_one_btc() -> None:
    # LP = (1000 + 0 + 1*10000) / (1*0.004 + 1) = 11000 / 1.004 = 10956.1752988...
    lp = liquidation_price("short", 1, 10_000, 1_000, 0.004)
    assert lp == pytest.approx(10_956.175298804781, rel=1e-15)
    assert 1_000 - (lp - 10_000) == pytest.approx(0.004 * lp, rel=1e-12)


def test_maintenance_amount_enters_both_directions() -> None:
    # tier (50k, 0.5%, cum 50); 2 BTC at 30000 (notional 60000), WB 6000:
    # long  LP = (6000 + 50 - 60000) / (2*0.005 - 2) = 53950 / 1.99 = 27110.5527638...
    # short LP = (6000 + 50 + 60000) / (2*0.005 + 2) = 66050 / 2.01 = 32860.6965174...
    assert liquidation_price("long", 2, 30_000, 6_000, 0.005, 50) == pytest.approx(
        27_110.552763819097, rel=1e-15
    )
    assert liquidation_price("short", 2, 30_000, 6_000, 0.005, 50) == pytest.approx(
        32_860.69651741294, rel=1e-15
    )


def test_cross_terms_of_other_positions() -> None:
    # WB 5000, other maintenance 200, other unrealized -300, 1 BTC at 10000, mmr 0.4%:
    # long  LP = (5000 - 200 - 300 - 10000) / (0.004 - 1) = 5500 / 0.996 = 5522.0883534...
    # short LP = (5000 - 200 - 300 + 10000) / (0.004 + 1) = 14500 / 1.004 = 14442.2310757...
    kwargs = {"other_maintenance_margin": 200.0, "other_unrealized_pnl": -300.0}
    assert liquidation_price("long", 1, 10_000, 5_000, 0.004, **kwargs) == pytest.approx(
        5_522.088353413655, rel=1e-15
    )
    assert liquidation_price("short", 1, 10_000, 5_000, 0.004, **kwargs) == pytest.approx(
        14_442.231075697212, rel=1e-15
    )


def test_fully_collateralised_long_is_never_liquidated() -> None:
    # 1x long: WB == Q*EP, numerator 0 -> LP 0; over-collateralised -> negative -> 0.0
    assert liquidation_price("long", 1, 10_000, 10_000, 0.004) == 0.0
    assert liquidation_price("long", 1, 10_000, 20_000, 0.004) == 0.0
    # a 1x short still has a liquidation price: 20000 / 1.004
    assert liquidation_price("short", 1, 10_000, 10_000, 0.004) == pytest.approx(20_000 / 1.004)


def test_bankrupt_short_returns_zero() -> None:
    # numerator -20000 + 10000 < 0: margin negative at every price
    assert liquidation_price("short", 1, 10_000, -20_000, 0.004) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"side": "buy"}, "side"),
        ({"side": "LONG"}, "side"),
        ({"size": 0}, "size"),
        ({"size": -1}, "size"),
        ({"size": math.nan}, "size"),
        ({"entry_price": 0}, "entry_price"),
        ({"mmr": 1.0}, "mmr"),
        ({"mmr": -0.1}, "mmr"),
        ({"wallet_balance": math.inf}, "wallet_balance"),
    ],
)
def test_liquidation_price_rejects_bad_input(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "side": "long",
        "size": 1.0,
        "entry_price": 10_000.0,
        "wallet_balance": 1_000.0,
        "mmr": 0.004,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        liquidation_price(**args)  # type: ignore[arg-type]


# ---------------------------------------------------------------- funding


def test_funding_positive_rate_longs_pay_shorts_receive() -> None:
    # 2 BTC * 50000 * 0.0001 = 10
    assert funding_payment("long", 2, 50_000, 0.0001) == pytest.approx(-10.0)
    assert funding_payment("short", 2, 50_000, 0.0001) == pytest.approx(10.0)


def test_funding_negative_rate_longs_receive() -> None:
    # 1000 XRP * 1.1 * -0.00219334 = -2.412674 -> long receives 2.412674
    assert funding_payment("long", 1_000, 1.1, -0.00219334) == pytest.approx(2.412674)
    assert funding_payment("short", 1_000, 1.1, -0.00219334) == pytest.approx(-2.412674)


def test_funding_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="side"):
        funding_payment("flat", 1, 1, 0.0001)
    with pytest.raises(ValueError, match="size"):
        funding_payment("long", -1, 1, 0.0001)
    with pytest.raises(ValueError, match="mark_price"):
        funding_payment("long", 1, 0, 0.0001)
    assert funding_payment("long", 0, 1, 0.0001) == 0.0


# ---------------------------------------------------------------- tiers


def test_maintenance_tier_picks_last_floor_at_or_below() -> None:
    tiers = BINANCE_BTC_TIERS
    assert maintenance_tier(0, tiers) == (0.004, 0.0)
    assert maintenance_tier(49_999.99, tiers) == (0.004, 0.0)
    assert maintenance_tier(50_000, tiers) == (0.005, 50.0)
    assert maintenance_tier(599_999, tiers) == (0.005, 50.0)
    assert maintenance_tier(600_000, tiers) == (0.01, 3_050.0)
    assert maintenance_tier(1e12, tiers) == (0.25, 11_348_050.0)


def test_maintenance_tier_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        maintenance_tier(1, [])
    with pytest.raises(ValueError, match="non-negative"):
        maintenance_tier(-1, BINANCE_BTC_TIERS)
    with pytest.raises(ValueError, match="below the first tier"):
        maintenance_tier(5, [(10.0, 0.01, 0.0)])


@pytest.mark.parametrize("tiers", [BINANCE_BTC_TIERS, DEFAULT_TIERS])
def test_published_tables_are_continuous(tiers: list[tuple[float, float, float]]) -> None:
    # cum is chosen so maintenance margin does not jump at a floor
    for (_, mmr_below, cum_below), (floor, mmr, cum) in itertools.pairwise(tiers):
        assert floor * mmr_below - cum_below == pytest.approx(floor * mmr - cum)
        assert maintenance_margin(floor, tiers) == pytest.approx(floor * mmr - cum)


def test_tiered_long_uses_tier_at_liquidation_not_at_entry() -> None:
    # 1 BTC long at 52000 (entry notional in the 50k tier), WB 5200 (10x).
    # 50k tier: (5200 + 50 - 52000) / (0.005 - 1) = 46750 / 0.995 = 46984.92..: notional < 50k,
    # so that tier is inconsistent. 0 tier: (5200 - 52000) / (0.004 - 1) = 46800 / 0.996
    # = 46987.9518..: notional < 50k, consistent.
    lp = liquidation_price_tiered("long", 1, 52_000, 5_200, BINANCE_BTC_TIERS)
    assert lp == pytest.approx(46_987.951807228916, rel=1e-15)
    entry_tier = liquidation_price("long", 1, 52_000, 5_200, 0.005, 50)
    assert entry_tier == pytest.approx(46_984.92462311558, rel=1e-15)


def test_tiered_short_uses_tier_at_liquidation_not_at_entry() -> None:
    # 1 BTC short at 48000 (entry in the 0 tier), WB 4800 (10x).
    # 0 tier: (4800 + 48000) / 1.004 = 52589.64..: notional >= 50k, inconsistent.
    # 50k tier: (4800 + 50 + 48000) / 1.005 = 52850 / 1.005 = 52587.0646..: consistent.
    lp = liquidation_price_tiered("short", 1, 48_000, 4_800, BINANCE_BTC_TIERS)
    assert lp == pytest.approx(52_587.06467661692, rel=1e-15)


def test_tiered_large_position() -> None:
    # 100 BTC at 60000 (6M notional), WB 600000: 3M tier (2.5%, cum 48050)
    # long  (600000 + 48050 - 6e6) / (2.5 - 100) = 5351950 / 97.5 = 54891.794871...
    # short (600000 + 48050 + 6e6) / (2.5 + 100) = 6648050 / 102.5 = 64859.024390...
    assert liquidation_price_tiered(
        "long", 100, 60_000, 600_000, BINANCE_BTC_TIERS
    ) == pytest.approx(54_891.794871794875, rel=1e-14)
    assert liquidation_price_tiered(
        "short", 100, 60_000, 600_000, BINANCE_BTC_TIERS
    ) == pytest.approx(64_859.0243902439, rel=1e-14)


def test_tiered_discontinuous_table() -> None:
    # Margin jumps from 0 to 50% of notional at notional 1000 (not a published shape).
    tiers = [(0.0, 0.0, 0.0), (1_000.0, 0.5, 0.0)]
    # Short 1 at 800, WB 300: below price 1000 the margin is 300 - (P - 800) > 0 = MM,
    # safe; at 1000 it is 100 < 500: the position turns unsafe exactly at the jump,
    # although neither tier's own root (1100 and 1100 / 1.5 = 733) lies in its bracket.
    assert liquidation_price_tiered("short", 1, 800, 300, tiers) == pytest.approx(1_000.0)
    # Long 1 at 1200, WB 300: above 1000 the margin is 300 + (P - 1200) vs MM 0.5 * P,
    # unsafe up to the root 1800 of the 50% tier: the highest unsafe price wins.
    assert liquidation_price_tiered("long", 1, 1_200, 300, tiers) == pytest.approx(1_800.0)


@pytest.mark.parametrize("size", [0, 0.0, -1.0])
def test_tiered_refuses_a_size_that_is_not_positive_like_the_single_tier_formula(
    size: float,
) -> None:
    # a flat size divided the tier floors by zero: ZeroDivisionError, not the ValueError
    # naming the argument that every other formula of the module raises
    with pytest.raises(ValueError, match="size must be a positive finite number"):
        liquidation_price_tiered("long", size, 60_000, 1_000, BINANCE_BTC_TIERS)


# ---------------------------------------------------------------- properties

sides = st.sampled_from(["long", "short"])
sizes = st.floats(0.001, 1_000)
prices = st.floats(0.01, 100_000)
leverages = st.floats(1, 125)
mmrs = st.floats(0, 0.5)


@settings(max_examples=300, deadline=None)
@given(
    side=sides,
    size=sizes,
    entry=prices,
    leverage=leverages,
    mmr=mmrs,
    cum_share=st.floats(0, 0.01),
    other_mm=st.floats(0, 10_000),
    other_upnl=st.floats(-10_000, 10_000),
)
def test_margin_balance_equals_maintenance_at_lp(
    side: str,
    size: float,
    entry: float,
    leverage: float,
    mmr: float,
    cum_share: float,
    other_mm: float,
    other_upnl: float,
) -> None:
    s = 1 if side == "long" else -1
    notional = size * entry
    wallet = notional / leverage + other_mm
    cum = cum_share * notional
    lp = liquidation_price(
        side,
        size,
        entry,
        wallet,
        mmr,
        cum,
        other_maintenance_margin=other_mm,
        other_unrealized_pnl=other_upnl,
    )
    assert lp >= 0
    margin_balance = wallet + other_upnl + s * size * (lp - entry)
    maintenance = other_mm + size * lp * mmr - cum
    scale = notional + wallet + abs(other_upnl) + other_mm
    if lp > 0:
        assert margin_balance == pytest.approx(maintenance, abs=1e-9 * scale)
    else:  # clamped: the position is safe (long) or unsafe (short) at every price
        at_zero = wallet + other_upnl - s * size * entry - (other_mm - cum)
        assert (at_zero >= -1e-9 * scale) if s > 0 else (at_zero <= 1e-9 * scale)


@st.composite
def continuous_tables(draw: st.DrawFn) -> list[tuple[float, float, float]]:
    """Random tier tables like the published ones: rising rates, cum keeps margin continuous."""
    count = draw(st.integers(1, 6))
    floors = sorted(set(draw(st.lists(st.floats(100, 1e7), min_size=count, max_size=count))))
    rates = sorted(draw(st.lists(st.floats(0.001, 0.3), min_size=len(floors) + 1, unique=True)))
    tiers = [(0.0, rates[0], 0.0)]
    for floor, rate in zip(floors, rates[1:], strict=False):
        _, prev_rate, prev_cum = tiers[-1]
        tiers.append((floor, rate, prev_cum + floor * (rate - prev_rate)))
    return tiers


@settings(max_examples=300, deadline=None)
@given(
    side=sides,
    size=sizes,
    entry=prices,
    leverage=leverages,
    tiers=continuous_tables(),
    other_upnl=st.floats(-1_000, 1_000),
)
def test_tiered_lp_is_consistent_with_its_own_tier(
    side: str,
    size: float,
    entry: float,
    leverage: float,
    tiers: list[tuple[float, float, float]],
    other_upnl: float,
) -> None:
    s = 1 if side == "long" else -1
    wallet = size * entry / leverage
    lp = liquidation_price_tiered(side, size, entry, wallet, tiers, other_unrealized_pnl=other_upnl)
    scale = size * entry + wallet + abs(other_upnl)
    if lp > 0:
        margin_balance = wallet + other_upnl + s * size * (lp - entry)
        assert margin_balance == pytest.approx(
            maintenance_margin(size * lp, tiers), abs=1e-9 * scale
        )
    # the answer is on the right side everywhere: safe a bit on the safe side of LP
    probe = lp * (1 + 1e-6) + 1e-6 if s > 0 else lp * (1 - 1e-6)
    if probe > 0:
        balance = wallet + other_upnl + s * size * (probe - entry)
        assert balance > maintenance_margin(size * probe, tiers) - 1e-9 * scale


@settings(max_examples=200, deadline=None)
@given(size=sizes, entry=prices, leverage=leverages, mmr=mmrs)
def test_lower_leverage_moves_lp_away_from_entry(
    size: float, entry: float, leverage: float, mmr: float
) -> None:
    tight = size * entry / leverage
    loose = tight * 2
    assert liquidation_price("long", size, entry, loose, mmr) <= liquidation_price(
        "long", size, entry, tight, mmr
    )
    assert liquidation_price("short", size, entry, loose, mmr) >= liquidation_price(
        "short", size, entry, tight, mmr
    )
