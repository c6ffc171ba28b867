"""Resume through the session's controls: a strategy paused while its market moved on
states again, at once, the position it wants (its signals while paused were dropped),
instead of holding the other side until its next signal (a whole cycle for sma_cross)."""

from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest

from perps_bot.config import Settings, load_settings
from perps_bot.domain import MarketEvent
from perps_bot.orchestrator.runner import run_bot
from perps_bot.server.session import Session
from tests.harness.scripted import ScriptedFeed, quotes
from tests.harness.venue import ScriptedVenue

START_MS = 1_704_067_200_000
SYMBOL = "BTC-PERP"
# 1 s bars of sma_cross fast=2 / slow=3: the up regime at 13, short at 7, long at 16;
# then (paused) the averages cross down at 3 and stay down
PRICES = [1_000.0 * p for p in (10, 10, 10, 13, 7, 7, 16, 16, 5, 5, 5, 3, 3, 3, 3, 3, 3)]
PAUSE_AT, RESUME_AT = 9, 14  # event numbers (1-based), before the event is played


class ControlledFeed(ScriptedFeed):
    """Plays its events, calling `controls[n]` before the n-th one."""

    def __init__(
        self, events: Sequence[MarketEvent], controls: dict[int, Callable[[], object]]
    ) -> None:
        super().__init__(events)
        self.controls = controls

    async def batches(self) -> AsyncIterator[Sequence[MarketEvent]]:
        async for batch in super().batches():
            control = self.controls.get(self.done)
            if control is not None:
                control()
            yield batch


def _fast_sma_cross(tmp_path: Path) -> Settings:
    """A dev-fast sma_cross 2/3 on one-second bars of one symbol: it turns often."""
    return load_settings("dev", {
        "run": {"dev_fast": True, "symbols": [SYMBOL], "log_dir": str(tmp_path / "logs"),
                "data_dir": str(tmp_path / "data"), "live_view": False},
        "strategy": {"name": "sma_cross", "timeframe": "1s", "params": {"fast": 2, "slow": 3}},
    })  # fmt: skip


async def test_a_resumed_sma_cross_takes_the_side_it_turned_to_while_paused(
    tmp_path: Path,
) -> None:
    cfg = _fast_sma_cross(tmp_path)
    session = Session("s1", controls=True, created_at=0, portfolio_ids=[])
    answers: list[dict[str, object]] = []

    def control(action: str) -> Callable[[], object]:
        def act() -> None:
            assert session.run is not None
            pid = session.run.orchestrator.portfolios[0].id
            answers.append(session.control(pid, action))

        return act

    feed = ControlledFeed(quotes(SYMBOL, PRICES, start_ms=START_MS),
                          {PAUSE_AT: control("pause"), RESUME_AT: control("resume")})  # fmt: skip
    venue = ScriptedVenue([])
    result = await run_bot(cfg, feed=feed, venue=venue, progress=False, attach=session.attached)
    assert result.status == "completed"
    assert [a["paused"] for a in answers] == [True, False]
    sides = [(o.side.value, o.reason) for o in venue.submitted]
    assert sides[:2] == [("sell", "sma_cross down 2/3"), ("buy", "sma_cross up 2/3")], sides
    # paused through the cross down: resumed, it goes short at once, not a cycle later
    assert sides[2:] == [("sell", "sma_cross resume: wants short")], sides
    assert venue.submitted[2].created_ts == START_MS + (RESUME_AT - 1) * 1_000


# 1 s bars of sma_cross fast=2 / slow=3: short at 7, long at 16, and long to the end
LONG_PRICES = [1_000.0 * p for p in (10, 10, 10, 13, 7, 7, 16, 16, 16, 17, 18, 19, 20, 21)]


@pytest.mark.parametrize(
    ("flatten_at", "resume_at"),
    [(10, 10), (10, 11), (10, 12)],
    ids=["resume-before-the-close-is-sent", "resume-before-its-fill", "resume-after-its-fill"],
)
async def test_a_resume_right_after_a_flatten_takes_the_strategys_side_again(
    tmp_path: Path, flatten_at: int, resume_at: int
) -> None:
    """Long, flattened and resumed at once: the strategy's restatement was computed
    against the long position its books still showed (the closing order had not gone
    out, or its fill had not come back), so it wanted nothing, and the close left the
    portfolio flat while the strategy wanted long. Whatever the order of the closing
    fill and the resume, the portfolio ends long again."""
    cfg = _fast_sma_cross(tmp_path)
    session = Session("s1", controls=True, created_at=0, portfolio_ids=[])

    def control(action: str) -> Callable[[], object]:
        def act() -> None:
            assert session.run is not None
            session.control(session.run.orchestrator.portfolios[0].id, action)

        return act

    controls: dict[int, list[Callable[[], object]]] = {}
    controls.setdefault(flatten_at, []).append(control("flatten"))
    controls.setdefault(resume_at, []).append(control("resume"))
    feed = ControlledFeed(quotes(SYMBOL, LONG_PRICES, start_ms=START_MS),
                          {n: _all(acts) for n, acts in controls.items()})  # fmt: skip
    venue = ScriptedVenue([])
    result = await run_bot(cfg, feed=feed, venue=venue, progress=False, attach=session.attached)
    assert result.status == "completed"
    sides = [(o.side.value, o.reason) for o in venue.submitted]
    assert sides[:3] == [("sell", "sma_cross down 2/3"), ("buy", "sma_cross up 2/3"),
                         ("sell", "flatten (session API)")], sides  # fmt: skip
    assert sides[3:] == [("buy", "sma_cross resume: wants long")], sides
    close, again = venue.submitted[2:]
    assert again.size == close.size, "the position the flatten closed, held again"


def _all(acts: Sequence[Callable[[], object]]) -> Callable[[], object]:
    def act() -> None:
        for one in acts:
            one()

    return act
