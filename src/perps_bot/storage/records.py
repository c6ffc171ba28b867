"""Row types read back from the store (what reports and promotion consume)."""

from dataclasses import dataclass

#: One fill as round trips read it (`RunStore.fill_rows`): symbol, side, size, price, fee,
#: realized_pnl, position_after, ts, stop_price, reason, is_liquidation (0 or 1). A plain
#: tuple, because a long backtest has a fill per signal and the report reads them all:
#: building a `FillRecord` per row cost more than replaying the round trips.
FillRow = tuple[str, str, float, float, float, float, float, int, float | None, str, int]

#: One excursion as round trips read it (`RunStore.excursion_rows`): symbol, open_ts,
#: close_ts, mae, mfe (the fields of `ExcursionRecord`, in its order), for the same reason.
ExcursionRow = tuple[str, int, int, float, float]


@dataclass(frozen=True, slots=True)
class RunRecord:
    run_id: str
    profile: str
    kind: str
    seed: int
    config_hash: str
    config_json: str
    strategy: str
    strategy_params: str
    strategy_fingerprint: str
    code_version: str
    symbols: str
    initial_balance: float
    created_at: int
    start_ts: int | None
    end_ts: int | None
    status: str
    error_lines: int
    warning_lines: int
    detail: str | None
    pid: int | None = None  # the process that wrote the run (schema 4)
    host: str | None = None
    #: a run with several portfolios: the account's run has a child run per portfolio
    parent_run_id: str | None = None
    portfolio: str = "main"
    #: the strategy fingerprint without what it trades on beyond its code (a plan
    #: file's content): what --resume compares (schema 9; None: an older run)
    code_fingerprint: str | None = None


@dataclass(frozen=True, slots=True)
class FillRecord:
    seq: int
    ts: int
    symbol: str
    side: str
    size: float
    price: float
    fee: float
    liquidity: str
    client_id: str
    correlation_id: str
    reason: str
    is_liquidation: bool
    stop_price: float | None
    realized_pnl: float
    position_after: float
    entry_after: float


@dataclass(frozen=True, slots=True)
class FundingRecord:
    ts: int
    symbol: str
    rate: float
    mark: float
    position: float
    payment: float


@dataclass(frozen=True, slots=True)
class ExcursionRecord:
    """Worst and best unrealized price PnL of one round trip, tracked live by the
    orchestrator (from every price it saw, intra-candle extremes included)."""

    symbol: str
    open_ts: int
    close_ts: int
    mae: float
    mfe: float


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order as stored (`RunStore.orders`): its latest status and fills."""

    client_id: str
    portfolio: str
    symbol: str
    side: str
    order_type: str
    size: float
    filled: float
    avg_price: float
    status: str
    reason: str
    created: int
    updated: int


@dataclass(frozen=True, slots=True)
class PromotionRecord:
    promotion_id: int
    strategy_fingerprint: str
    strategy: str
    stage: str
    run_id: str
    created_at: int
    criteria: str
