"""Small hand-made run stores for report tests (no orchestrator involved).

RunBuilder keeps its own average-cost position book, so a test writes fills as
"buy 1 at 100" and the stored realized_pnl / position_after / entry_after are
what a ledger would have written.
"""

import json
from pathlib import Path
from typing import Any

from perps_bot.domain import Fill, Liquidity, Side
from perps_bot.storage import RunRecord, RunStore
from tests.harness.settings import CANARY_RISK

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000

# Thresholds low enough for small hand-made runs to pass.
EASY_PROMOTION: dict[str, Any] = {
    "min_trades": 2,
    "min_days": 1.0,
    "min_win_rate": 0.5,
    "min_sharpe": 0.5,
    "max_drawdown": 0.2,
    "max_liquidations": 0,
    "max_error_lines": 0,
    "sharpe_period": "1d",
}
#: the same in the canary profile, without its shipped out-of-sample gate
EASY_CANARY: dict[str, Any] = EASY_PROMOTION | {"require_walkforward": False, "min_dsr": None}

#: what a stage's own broker, risk and account need (the canary's ceilings)
_STAGE_HEAD = {
    "canary": "broker: {kind: ccxt}\n" + CANARY_RISK,
    "prod": "broker: {kind: ccxt}\n",
}


def stage_profiles(root: Path, **promotion: dict[str, Any]) -> None:
    """Local profiles root/config/profiles/STAGE.yaml (canary=..., prod=...) with that
    `promotion:`: the criteria `promote --to STAGE` holds a run to, with the run's own
    (the stricter of each), when run from `root`."""
    folder = root / "config" / "profiles"
    folder.mkdir(parents=True, exist_ok=True)
    for stage, section in promotion.items():
        text = f"profile: {stage}\n{_STAGE_HEAD[stage]}promotion: {json.dumps(section)}\n"
        (folder / f"{stage}.yaml").write_text(text)


class RunBuilder:
    def __init__(
        self,
        store: RunStore,
        run_id: str = "run-1",
        *,
        kind: str = "dev",
        profile: str = "dev",
        status: str = "completed",
        initial_balance: float = 10_000.0,
        promotion: dict[str, Any] | None = None,
        start_ts: int | None = T0,
        end_ts: int | None = None,
        error_lines: int = 0,
        fingerprint: str = "fp-sma-1",
        strategy: str = "sma_cross",
        created_at: int = 1,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        cfg = dict(config or {})
        if promotion is not None:
            cfg["promotion"] = promotion
        self.record = RunRecord(
            run_id=run_id,
            profile=profile,
            kind=kind,
            seed=42,
            config_hash="cafe",
            config_json=json.dumps(cfg, sort_keys=True),
            strategy=strategy,
            strategy_params=json.dumps({"fast": 10, "slow": 30}),
            strategy_fingerprint=fingerprint,
            code_version="0.1.0",
            symbols=json.dumps(["BTC-PERP", "ETH-PERP"]),
            initial_balance=initial_balance,
            created_at=created_at,
            start_ts=start_ts,
            end_ts=end_ts,
            status=status,
            error_lines=error_lines,
            warning_lines=0,
            detail=None,
        )
        store.create_run(self.record)
        self._pos: dict[str, tuple[float, float]] = {}
        self._n = 0

    def fill(
        self,
        ts: int,
        side: str,
        size: float,
        price: float,
        *,
        symbol: str = "BTC-PERP",
        fee: float = 0.0,
        reason: str = "signal",
        stop: float | None = None,
        liquidation: bool = False,
    ) -> float:
        """Store a fill; returns the realized PnL the builder's ledger computed."""
        pos, entry = self._pos.get(symbol, (0.0, 0.0))
        signed = size if side == "buy" else -size
        realized = 0.0
        if pos == 0 or (pos > 0) == (signed > 0):
            new_pos = pos + signed
            entry = (entry * abs(pos) + price * size) / abs(new_pos)
        else:
            closing = min(size, abs(pos))
            realized = closing * (price - entry) * (1 if pos > 0 else -1)
            new_pos = pos + signed
            if abs(new_pos) < 1e-12:
                new_pos, entry = 0.0, 0.0
            elif (new_pos > 0) != (pos > 0):
                entry = price
        self._pos[symbol] = (new_pos, entry)
        self._n += 1
        fill = Fill(
            ts=ts,
            symbol=symbol,
            side=Side(side),
            size=size,
            price=price,
            fee=fee,
            liquidity=Liquidity.TAKER,
            client_id=f"c{self._n}",
            correlation_id=f"k{self._n}",
            reason=reason,
            is_liquidation=liquidation,
            stop_price=stop,
        )
        self.store.add_fill(
            self.run_id, fill, realized_pnl=realized, position_after=new_pos, entry_after=entry
        )
        return realized

    def equity(self, ts: int, equity: float, cash: float | None = None, upnl: float = 0.0) -> None:
        self.store.add_equity(
            self.run_id, ts, equity, equity - upnl if cash is None else cash, upnl
        )

    def curve(self, points: list[tuple[int, float]]) -> None:
        for ts, value in points:
            self.equity(ts, value)

    def funding(
        self, ts: int, payment: float, *, symbol: str = "BTC-PERP", position: float = 1.0
    ) -> None:
        self.store.add_funding(self.run_id, ts, symbol, 0.0001, 100.0, position, payment)

    def excursion(
        self, open_ts: int, close_ts: int, mae: float, mfe: float, *, symbol: str = "BTC-PERP"
    ) -> None:
        self.store.add_excursion(self.run_id, symbol, open_ts, close_ts, mae, mfe)

    def denial(self, ts: int, code: str, *, symbol: str = "BTC-PERP") -> None:
        self.store.add_denial(self.run_id, ts, symbol, code, "detail", "corr")

    def done(self) -> str:
        self.store.flush()
        return self.run_id


def new_store(path: Path) -> RunStore:
    return RunStore(path)


def passing_run(
    store: RunStore,
    run_id: str = "run-pass",
    *,
    kind: str = "dev",
    profile: str = "dev",
    created_at: int = 1,
    fingerprint: str = "fp-sma-1",
    promotion: dict[str, Any] | None = None,
) -> str:
    """Two winning trades and one small loser over three days, rising equity with one dip:
    passes EASY_PROMOTION."""
    b = RunBuilder(
        store,
        run_id,
        kind=kind,
        profile=profile,
        promotion=promotion if promotion is not None else EASY_PROMOTION,
        end_ts=T0 + 3 * DAY,
        created_at=created_at,
        fingerprint=fingerprint,
    )
    b.fill(T0 + HOUR, "buy", 1.0, 100.0, fee=0.1, stop=95.0)
    b.fill(T0 + 5 * HOUR, "sell", 1.0, 110.0, fee=0.1, reason="take_profit")
    b.fill(T0 + DAY + HOUR, "sell", 2.0, 100.0, fee=0.2, symbol="ETH-PERP")
    b.fill(T0 + DAY + 2 * HOUR, "buy", 2.0, 101.0, fee=0.2, symbol="ETH-PERP", reason="stop")
    b.fill(T0 + 2 * DAY, "buy", 1.0, 100.0, fee=0.1)
    b.fill(T0 + 2 * DAY + 6 * HOUR, "sell", 1.0, 130.0, fee=0.1, reason="end_of_run")
    b.curve(
        [
            (T0, 10_000.0),
            (T0 + DAY, 10_100.0),
            (T0 + DAY + 12 * HOUR, 10_050.0),
            (T0 + 2 * DAY, 10_150.0),
            (T0 + 3 * DAY, 10_400.0),
        ]
    )
    b.denial(T0 + HOUR, "MAX_ORDER_NOTIONAL")
    b.denial(T0 + 2 * HOUR, "MAX_ORDER_NOTIONAL")
    b.denial(T0 + 3 * HOUR, "STALE_MARKET_DATA")
    return b.done()
