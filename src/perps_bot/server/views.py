"""What the API and the dashboard show, as plain JSON values: a session, its portfolios
(live from the running run's books, or as stored once it ended), its closed trades and
its equity curve (from the store)."""

from typing import TYPE_CHECKING, Any

from perps_bot import domain
from perps_bot.domain import TradingState, iso_utc, parse_duration
from perps_bot.ledger import Ledger
from perps_bot.metrics.trades import stored_trades
from perps_bot.orchestrator.portfolio import Portfolio
from perps_bot.orchestrator.wiring import Run
from perps_bot.risk import RiskGate
from perps_bot.storage import RunRecord, RunStore, StoreError

if TYPE_CHECKING:
    from perps_bot.server.session import Session


def session(s: "Session") -> dict[str, Any]:
    """Status, run id, risk state, started and ends of a session."""
    out: dict[str, Any] = {
        "session_id": s.id,
        "status": s.status,
        "detail": s.detail,
        "run_id": s.run_id,
        "created_at": iso_utc(s.created_at),
        "controls": s.controls,
    }
    run = s.run
    if run is None:
        return out | s.ended
    orchestrator = run.orchestrator
    duration = run.settings.run.duration_ms
    start = orchestrator.first_ts or run.start_ms
    out |= {
        "profile": run.settings.profile,
        "mode": str(run.preflight.mode),
        "risk_state": str(orchestrator.trading_state),
        "started": iso_utc(start),
        "ends": iso_utc(start + duration) if duration is not None else None,
        "now": iso_utc(orchestrator.last_ts) if orchestrator.last_ts else None,
        "portfolios": [
            {"id": p.id, "strategy": p.strategy.name, "paused": p.paused,
             "risk_state": str(p.risk.state)}
            for p in orchestrator.portfolios
        ],
    }  # fmt: skip
    return out


def ended_run(store: RunStore, run_id: str) -> dict[str, Any]:
    """What `session` shows of a run that ended, as stored: its profile, and when it
    started and ended (its last event's time); {} when the store does not have it."""
    try:
        run = store.run(run_id)
    except StoreError:
        return {}
    return {
        "profile": run.profile,
        "started": None if run.start_ts is None else iso_utc(run.start_ts),
        "ends": None if run.end_ts is None else iso_utc(run.end_ts),
    }


def portfolios(run: Run, s: "Session") -> dict[str, Any]:
    """Every portfolio of the running session, the account and the last prices."""
    orchestrator = run.orchestrator
    account = run.ledger
    return {
        "session_id": s.id,
        "ts": orchestrator.last_ts,
        "prices": dict(orchestrator.last_prices),
        "account": {
            "equity": account.equity(),
            "cash": account.wallet_balance(),
            "unrealized_pnl": account.unrealized_pnl(),
            "pnl": account.equity() - account.initial_balance(),
            "risk_state": str(orchestrator.trading_state),
        },
        "portfolios": [_portfolio(p) for p in orchestrator.portfolios],
    }


def _portfolio(p: Portfolio) -> dict[str, Any]:
    ledger = p.ledger
    equity = ledger.equity()
    return {
        "id": p.id,
        "strategy": p.strategy.name,
        "run_id": p.rec.run_id,
        "paused": p.paused,
        "capital": ledger.initial_balance(),
        "equity": equity,
        "cash": ledger.wallet_balance(),
        "pnl": equity - ledger.initial_balance(),
        "realized_pnl": ledger.realized_pnl(),
        "unrealized_pnl": ledger.unrealized_pnl(),
        "fees": ledger.fees_paid(),
        "funding": ledger.funding_total(),
        "risk": risk(p.risk, equity),
        "positions": [_position(ledger, symbol) for symbol in ledger.symbols()],
    }


def _position(ledger: Ledger, symbol: str) -> dict[str, Any]:
    size, entry, mark = (ledger.position_size(symbol), ledger.entry_price(symbol),
                         ledger.mark_price(symbol))  # fmt: skip
    leverage = ledger.leverage(symbol)
    isolated = ledger.isolated_margin(symbol)
    return {
        "symbol": symbol,
        "size": size,
        "entry_price": entry,
        "mark_price": mark,
        "unrealized_pnl": size * (mark - entry),
        "liquidation_price": ledger.liquidation_price(symbol),
        "leverage": leverage,
        "margin": isolated if isolated else abs(size) * mark / leverage,
    }


def risk(gate: RiskGate, equity: float) -> dict[str, Any]:
    """The trading state with the headroom left to the drawdown and daily-loss limits
    (fractions: 0.03 = 3 % more may be lost before the limit)."""
    state, cfg = gate.export_state(), gate.cfg
    peak, start = state.peak or equity, state.day_start_equity or equity
    drawdown = (peak - equity) / peak if peak > 0 else 0.0
    daily = (start - equity) / start if start > 0 else 0.0
    return {
        "state": state.state,
        "detail": state.detail,
        "drawdown": drawdown,
        "max_drawdown": cfg.max_drawdown,
        "drawdown_headroom": cfg.max_drawdown - drawdown,
        "daily_loss": daily,
        "daily_loss_limit": cfg.daily_loss_limit,
        "daily_loss_headroom": cfg.daily_loss_limit - daily,
    }


def stored_portfolios(store: RunStore, s: "Session") -> dict[str, Any]:
    """The portfolios of a session that is not running, as its store has them, and the
    account's last equity and PnL (once its run is made)."""
    out: list[dict[str, Any]] = []
    for pid, run in portfolio_runs(store, s):
        equity = store.last_equity(run.run_id)
        positions = [{"symbol": sym, "size": size, "entry_price": entry}
                     for sym, (size, entry) in sorted(store.positions(run.run_id).items())
                     if size != 0.0]  # fmt: skip
        out.append({"id": pid, "strategy": run.strategy, "run_id": run.run_id,
                    "capital": run.initial_balance, "equity": equity,
                    "pnl": None if equity is None else equity - run.initial_balance,
                    "positions": positions})  # fmt: skip
    view: dict[str, Any] = {"session_id": s.id, "status": s.status, "portfolios": out}
    if out and s.run_id is not None:
        equity = store.last_equity(s.run_id)
        pnl = None if equity is None else equity - store.run(s.run_id).initial_balance
        view["account"] = {"equity": equity, "pnl": pnl}
    return view


def trades(store: RunStore, s: "Session", limit: int | None) -> list[dict[str, Any]]:
    """Closed round trips of every portfolio (trades.csv's columns and the portfolio),
    by close time; the last `limit` of them."""
    rows: list[dict[str, Any]] = []
    for pid, run in portfolio_runs(store, s):
        for t in stored_trades(store, run.run_id):
            rows.append({
                "trade_id": t.trade_id, "portfolio": pid, "symbol": t.symbol,
                "side": t.side, "open_time": iso_utc(t.open_ts),
                "close_time": iso_utc(t.close_ts), "size": t.size,
                "entry_price": t.entry_price, "exit_price": t.exit_price,
                "gross_pnl": t.gross_pnl, "fees": t.fees, "funding": t.funding,
                "net_pnl": t.net_pnl, "exit_reason": t.exit_reason,
                "r_multiple": t.r_multiple, "mae": t.mae, "mfe": t.mfe,
            })  # fmt: skip
    rows.sort(key=lambda r: (r["close_time"], r["portfolio"], r["trade_id"]))
    return rows[-limit:] if limit else rows


def fill_count(store: RunStore, s: "Session") -> int:
    """The session's fills so far, liquidations included (every portfolio's)."""
    return sum(store.fill_count(run.run_id) for _, run in portfolio_runs(store, s))


def portfolio_run_id(s: "Session", pid: str) -> str | None:
    """The run whose equity curve is portfolio `pid`'s (the session's own run when it
    has one portfolio); None before the run is made."""
    if s.run_id is None:
        return None
    return domain.portfolio_run_id(s.run_id, pid, len(s.portfolio_ids) > 1)


def curves(store: RunStore, s: "Session", points: int) -> list[tuple[str, dict[str, Any]]]:
    """The dashboard chart's curves, each thinned to about `points` snapshots: the
    account's when there are several portfolios, then each portfolio's. A session whose
    run is not made yet has them all, empty: the page names its traces from them and
    extends them as the stream brings points."""
    several = len(s.portfolio_ids) > 1
    runs = [(domain.ACCOUNT, s.run_id)] if several else []
    runs += [(pid, portfolio_run_id(s, pid)) for pid in s.portfolio_ids]
    return [(name, equity(store, run_id, points)) for name, run_id in runs]


def equity(store: RunStore, run_id: str | None, points: int) -> dict[str, Any]:
    """The stored equity curve of `run_id`, thinned to about `points` snapshots (none
    before the run is made: `run_id` None)."""
    if run_id is None:
        return {"run_id": None, "ts": [], "equity": []}
    ts: list[int] = []
    values: list[float] = []
    for chunk in store.iter_equity(run_id):
        ts.extend(chunk.ts.tolist())
        values.extend(chunk.equity.tolist())
    step = max(1, -(-len(ts) // points)) if points > 0 else 1
    keep = list(range(0, len(ts), step))
    if ts and keep[-1] != len(ts) - 1:
        keep.append(len(ts) - 1)  # the last snapshot is always there
    return {"run_id": run_id, "ts": [ts[i] for i in keep], "equity": [values[i] for i in keep]}


def portfolio_runs(store: RunStore, s: "Session") -> list[tuple[str, RunRecord]]:
    """(portfolio id, its run) of each portfolio of the session's run."""
    if s.run_id is None:
        return []
    try:
        children = store.children(s.run_id)
        if children:
            return [(c.portfolio, c) for c in children]
        return [(s.portfolio_ids[0] if s.portfolio_ids else "main", store.run(s.run_id))]
    except StoreError:
        return []


def run_problems(s: "Session", now_ms: int) -> list[str]:
    """Why the running session `s` cannot trade as it should, for `/health`: its market
    data older than its `risk.stale_after` (a run on the wall clock: simulated time is
    not judged), an exchange that is not answering (the venue's circuit is open), a
    portfolio HALTED (it sends no order until resume-trading lifts the halt)."""
    run = s.run
    if run is None:
        return []
    found = []
    orchestrator = run.orchestrator
    if not run.simulated:
        age = now_ms - (orchestrator.last_ts or run.start_ms)
        limit = run.settings.risk.stale_after
        if age > parse_duration(limit):
            found.append(f"session {s.id}: no market data for {age / 1000:.1f}s"
                         f" (stale_after {limit})")  # fmt: skip
    if orchestrator.venue.circuit_open:
        found.append(f"session {s.id}: the exchange is not answering (circuit open)")
    for p in orchestrator.portfolios:
        if p.risk.state is TradingState.HALTED:
            found.append(f"session {s.id}: portfolio {p.id} HALTED ({p.risk.state_detail})")
    return found
