"""Alerts through apprise (SPEC 12): a local json:// target receives halt, trade_closed,
daily_summary and run_end of a dev run; a target that never answers does not slow
the run; the rate limit drops and sums up; error log lines alert; URLs are masked in
`config show` and in the logs; a URL apprise does not know is one line and exit 2."""

import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from perps_bot.config import AlertsConfig, ConfigError, Settings, load_settings
from perps_bot.domain import MarketEvent
from perps_bot.monitoring.alerts import Alerts, AlertSender
from perps_bot.orchestrator.run_process import INTERRUPTED
from perps_bot.orchestrator.runner import Run, RunResult, run_bot_sync
from tests.conftest import REPO
from tests.durable.helpers import checkpointer_of
from tests.harness.alert_receiver import alert_receiver
from tests.harness.scripted import ScriptedFeed, quotes

#: drawdown limits a dev run passes within its first simulated hours: it halts
HALTING = {"max_drawdown": 0.00005, "reducing_drawdown": 0.00005}


@pytest.fixture
def receiver() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """A json:// webhook on a free loopback port; yields (port, bodies received)."""
    with alert_receiver() as target:
        yield target


def _settings(tmp: Path, alerts: dict[str, Any] | None = None, **overrides: Any) -> Settings:
    """A dev-fast run of 30 hours (seed 5) in `tmp`, with `alerts`."""
    config: dict[str, Any] = {"run": {"dev_fast": True, "duration": "30h", "seed": 5,
                                      "log_dir": str(tmp / "logs"),
                                      "data_dir": str(tmp / "data")}, **overrides}  # fmt: skip
    if alerts is not None:
        config["alerts"] = alerts
    return load_settings("dev", config)


def _run(tmp: Path, alerts: dict[str, Any] | None = None, **overrides: Any) -> RunResult:
    return run_bot_sync(_settings(tmp, alerts, **overrides), progress=False)


def test_json_target_receives_halt_trades_daily_summary_and_run_end(
    tmp_path: Path, receiver: tuple[int, list[dict[str, Any]]]
) -> None:
    port, received = receiver
    alerts = {"urls": [f"json://127.0.0.1:{port}"], "max_per_minute": 1000}
    result = _run(tmp_path, alerts, risk=HALTING)
    titles = [r["title"] for r in received]
    assert "perps-bot dev: HALTED" in titles
    closed = [r for r in received if r["title"] == "perps-bot dev: trade closed"]
    events = [json.loads(line) for line in (tmp_path / "logs" / "events.jsonl").open()]
    assert len(closed) == sum(e["type"] == "trade_closed" for e in events) > 0
    assert "net PnL=" in closed[0]["message"] and "entry=" in closed[0]["message"]
    daily = [r["message"] for r in received if r["title"] == "perps-bot dev: daily summary"]
    assert len(daily) == 1 and daily[0].startswith("2024-01-01: ")  # 30 h: one midnight
    assert titles[-1] == "perps-bot dev: run ended"
    assert received[-1]["message"].startswith(f"run {result.run_id} ended: completed")
    assert f"equity {result.final_equity:,.2f}" in received[-1]["message"]


def test_only_the_events_in_alerts_on_are_sent(
    tmp_path: Path, receiver: tuple[int, list[dict[str, Any]]]
) -> None:
    port, received = receiver
    _run(tmp_path, {"urls": [f"json://127.0.0.1:{port}"], "on": ["halt", "run_end"]},
         risk=HALTING)  # fmt: skip
    assert [r["title"] for r in received] == ["perps-bot dev: HALTED", "perps-bot dev: run ended"]


def _timed_cli_run(tmp: Path, url: str, **more: str) -> float:
    """Wall seconds of a 30 h dev-fast bot process (start to exit) alerting `url`;
    `more`: environment settings."""
    env = dict(os.environ, **more)
    env.update({"PERPS_BOT__ALERTS__URLS": json.dumps([url]),
                "PERPS_BOT__ALERTS__MAX_PER_MINUTE": "1000",
                "PERPS_BOT__ALERTS__FLUSH_TIMEOUT": "1s",
                "PERPS_BOT__RUN__LOG_DIR": str(tmp / "logs"),
                "PERPS_BOT__RUN__DATA_DIR": str(tmp / "data")})  # fmt: skip
    started = time.monotonic()
    result = _cli("--profile", "dev", "--dev-fast", "--duration", "30h", "--seed", "5", env=env)
    assert result.returncode == 0, result.stderr
    return time.monotonic() - started


def test_a_target_that_never_answers_does_not_slow_the_run(
    tmp_path: Path, silent_target: int, receiver: tuple[int, list[dict[str, Any]]]
) -> None:
    """The bot's process ends at most alerts.flush_timeout (1 s) later than with a target
    that answers, though every alert would wait 30 s for its answer: it waited for
    them (apprise's worker threads, joined at exit) and ended 30 s later."""
    answering = _timed_cli_run(tmp_path / "answering", f"json://127.0.0.1:{receiver[0]}")
    assert receiver[1], "the answering target got the run's alerts"
    url = f"json://127.0.0.1:{silent_target}?rto=30&cto=30"
    halting = {f"PERPS_BOT__RISK__{k.upper()}": str(v) for k, v in HALTING.items()}
    slow = _timed_cli_run(tmp_path / "slow", url, **halting)
    assert slow < answering + 1.0 + 5.0, (answering, slow)  # 5 s: a loaded machine
    events = [json.loads(line) for line in (tmp_path / "slow" / "logs" / "events.jsonl").open()]
    latencies = [e["latency_ms"] for e in events if e["type"] == "order" and e["latency_ms"]]
    assert latencies and max(latencies) < 1_000
    log_text = (tmp_path / "slow" / "logs" / "perps_bot.log").read_text()
    assert re.search(r"not delivered within 1.0s .*: perps-bot dev: HALTED: ", log_text)
    # the target is named masked, if at all (its bare port number can be a price: 60571.4)
    assert f"127.0.0.1:{silent_target}" not in log_text and "json://127" not in log_text


def test_rate_limit_drops_and_sums_up_what_it_dropped() -> None:
    delivered: list[tuple[str, str]] = []
    now = [0.0]
    sender = AlertSender([("test://********", lambda t, b: delivered.append((t, b)) is None)],
                         max_per_minute=3, clock=lambda: now[0])  # fmt: skip
    sent = [sender.send("trade_closed", "t", f"trade {i}") for i in range(5)]
    assert sent == [True, True, True, False, False]
    now[0] = 30.0
    assert not sender.send("error", "t", "failed")  # still within the same minute
    now[0] = 61.0
    assert sender.send("run_end", "t", "ended")
    assert sender.close(5.0)
    bodies = [b for _, b in delivered]
    assert bodies[:3] == ["trade 0", "trade 1", "trade 2"]
    assert bodies[3] == "ended\n(3 alerts dropped by the rate limit: 1 error, 2 trade_closed)"
    assert len(bodies) == 4 and sender.sent == 4


def test_drops_left_at_the_end_are_summed_up_in_a_last_alert() -> None:
    delivered: list[str] = []
    sender = AlertSender([("x", lambda t, b: delivered.append(b) is None)], max_per_minute=1)
    sender.send("trade_closed", "t", "one")
    sender.send("trade_closed", "t", "two")
    assert sender.close(5.0)
    assert delivered == ["one", "1 alerts dropped by the rate limit: 1 trade_closed"]


def test_a_failing_target_is_counted_and_logged_masked(caplog: pytest.LogCaptureFixture) -> None:
    def broken(title: str, body: str) -> bool:
        raise ConnectionError("tgram://123:SECRET/456 refused")

    sender = AlertSender([("tgram://********", broken)], max_per_minute=10, retry_s=())
    sender.send("halt", "t", "b")
    with caplog.at_level(logging.WARNING, logger="perps_bot.alerts"):
        assert sender.close(5.0)
    assert sender.failed == 1 and sender.sent == 0
    assert "tgram://********" in caplog.text and "SECRET" not in caplog.text


def test_error_log_lines_alert_until_the_run_closes_its_alerts() -> None:
    delivered: list[tuple[str, str]] = []
    config = AlertsConfig(on=["error"])
    alerts = Alerts(config, name="perps-bot dev",
                    targets=[("x", lambda t, b: delivered.append((t, b)) is None)])  # fmt: skip
    logging.getLogger("perps_bot.run").error("venue refused us for good: %s", "banned")
    logging.getLogger("perps_bot.run").warning("only a warning")
    assert alerts.close()
    logging.getLogger("perps_bot.run").error("after the run")
    assert delivered == [("perps-bot dev: error", "venue refused us for good: banned")]


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "perps_bot", *args], cwd=REPO, text=True,
                          capture_output=True, timeout=120, env=env)  # fmt: skip


def test_config_show_masks_the_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    env = dict(os.environ)
    env["PERPS_BOT__ALERTS__URLS"] = '["tgram://123456:SECRETTOKEN/789", "json://10.1.2.3:9"]'
    shown = _cli("config", "show", "--format", "json", env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["alerts"]["urls"] == ["tgram://********", "json://********"]
    assert "SECRETTOKEN" not in shown.stdout and "10.1.2.3" not in shown.stdout


def test_an_unknown_alert_url_is_one_line_and_exit_2() -> None:
    import os

    env = dict(os.environ)
    env["PERPS_BOT__ALERTS__URLS"] = '["nosuchservice://SECRETTOKEN"]'
    result = _cli("--profile", "dev", "--dev-fast", "--duration", "1h", env=env)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "not an apprise URL" in lines[0], result.stderr
    assert "SECRETTOKEN" not in result.stderr


@pytest.mark.parametrize(
    "profile",
    [
        "alerts:\n  urls: tgram://123456:SECRETTOKEN/789\n",  # one URL, not a list of them
        "alerts: tgram://123456:SECRETTOKEN/789\n",  # the section as a URL
        "exchange:\n  api_key: 123456789\n",  # a key that is not text
    ],
)
def test_a_secret_given_in_the_wrong_shape_is_not_shown_in_the_error(
    tmp_path: Path, profile: str
) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(profile)
    with pytest.raises(ConfigError) as caught:
        load_settings(str(path))
    message = str(caught.value)
    assert message.startswith("config error: ") and "\n" not in message
    assert "SECRETTOKEN" not in message and "123456" not in message, message


def test_a_wrong_setting_beside_the_secrets_is_still_shown(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("alerts:\n  urls: ['json://127.0.0.1:9']\n  max_per_minute: -3\n")
    with pytest.raises(ConfigError, match=r"alerts\.max_per_minute: .*\(got -3\)"):
        load_settings(str(path))


def test_alerts_on_written_in_a_profile_file(tmp_path: Path) -> None:
    """`on:` is the key's name (SPEC 12: `alerts.on`), though YAML 1.1 reads a bare `on`
    as the boolean true; values written yes / off are still booleans."""
    path = tmp_path / "mine.yaml"
    path.write_text("alerts:\n  on: [halt, run_end]\nrun:\n  dev_fast: yes\n  live_view: off\n")
    settings = load_settings(str(path))
    assert settings.alerts.on == ["halt", "run_end"]
    assert settings.run.dev_fast is True and settings.run.live_view is False


def test_the_rate_limit_never_drops_the_rare_alerts(
    tmp_path: Path, receiver: tuple[int, list[dict[str, Any]]]
) -> None:
    """With the default 20 a minute, a dev run's first minute of closed trades used the
    budget: its halt, daily summary and run_end were dropped, only counted in the last
    'alerts dropped' message. Those come once (a halt, a day, a run) and always go."""
    port, received = receiver
    result = _run(tmp_path, {"urls": [f"json://127.0.0.1:{port}"]}, risk=HALTING)
    titles = [r["title"] for r in received]
    assert 0 < titles.count("perps-bot dev: trade closed") <= 20  # still limited
    for what in ("HALTED", "daily summary", "run ended"):
        assert titles.count(f"perps-bot dev: {what}") == 1, (what, titles)
    ended = next(r["message"] for r in received if r["title"] == "perps-bot dev: run ended")
    assert ended.startswith(f"run {result.run_id} ended: completed")
    counts = [m.split("dropped by the rate limit: ")[1] for m in (r["message"] for r in received)
              if "dropped by the rate limit" in m]  # fmt: skip
    assert counts and all(set(re.findall(r"[a-z_]+", c)) == {"trade_closed"} for c in counts)


def test_the_daily_summary_of_several_portfolios_names_each_at_the_days_end(
    tmp_path: Path, receiver: tuple[int, list[dict[str, Any]]]
) -> None:
    """The summary of a run with several portfolios listed the account's equity with no
    name, and took the equity of whichever portfolio's first line of the next day came
    first (the day's end for the others): the summary of one day mixed two days. Now
    the account is named and every equity is the last one of the day; the trades and
    their PnL are those of the run's report closed that day."""
    port, received = receiver
    btc, eth = "BTC-PERP", "ETH-PERP"
    result = _run(tmp_path, {"urls": [f"json://127.0.0.1:{port}"], "on": ["daily_summary"]},
                  run={"dev_fast": True, "duration": "30h", "seed": 5, "symbols": [btc, eth],
                       "log_dir": str(tmp_path / "logs"), "data_dir": str(tmp_path / "data")},
                  portfolios=[{"id": "a", "strategy": "sma_cross", "symbols": [btc]},
                              {"id": "b", "strategy": "mean_reversion", "symbols": [eth]}],
                  )  # fmt: skip
    (summary,) = [r["message"] for r in received]
    midnight = 1_704_153_600_000  # 2024-01-02
    events = [json.loads(line) for line in (tmp_path / "logs" / "events.jsonl").open()]
    last = {e.get("portfolio", "account"): e["equity"] for e in events
            if e["type"] == "equity" and e["ts"] < midnight}  # fmt: skip
    assert result.report is not None
    trades = [t for p in result.report.portfolios for t in p.trades if t.close_ts < midnight]
    assert summary == (
        f"2024-01-01: {len(trades)} trades closed, net PnL {sum(t.net_pnl for t in trades):,.2f};"
        f" equity account {last['account']:,.2f}, a {last['a']:,.2f}, b {last['b']:,.2f}"
    )


class _BrokenFeed(ScriptedFeed):
    """Plays its quotes, then fails: the run fails."""

    async def batches(self) -> AsyncIterator[Sequence[MarketEvent]]:
        async for batch in super().batches():
            yield batch
        raise RuntimeError("the feed broke")


def test_a_run_that_fails_sends_one_run_end_that_says_so(
    tmp_path: Path, receiver: tuple[int, list[dict[str, Any]]]
) -> None:
    port, received = receiver
    config = {"run": {"dev_fast": True, "seed": 5, "log_dir": str(tmp_path / "logs"),
                      "data_dir": str(tmp_path / "data"), "live_view": False},
              "alerts": {"urls": [f"json://127.0.0.1:{port}"], "on": ["run_end"]}}  # fmt: skip
    feed = _BrokenFeed(quotes("BTC-PERP", [100.0] * 5, start_ms=1_704_067_200_000))
    with pytest.raises(RuntimeError, match="the feed broke"):
        run_bot_sync(load_settings("dev", config), feed=feed, progress=False)
    assert len(received) == 1, received
    assert "ended: failed (RuntimeError: the feed broke)" in received[0]["message"]


@contextlib.asynccontextmanager
async def _interrupted_in_the_evening(run: Run) -> AsyncIterator[None]:
    """A checkpoint at 18:00 of the first day, then Ctrl-C."""
    orchestrator, checkpointer = run.orchestrator, checkpointer_of(run)

    def after_batch() -> None:
        checkpointer()
        evening = 1_704_067_200_000 + 18 * 3_600_000
        if (orchestrator.last_ts or 0) >= evening and not orchestrator.stop_requested:
            checkpointer.save()
            orchestrator.request_stop(INTERRUPTED, interrupt=True)

    orchestrator.after_batch = after_batch
    yield


def test_the_daily_summary_of_a_resumed_run_is_the_uninterrupted_runs(
    tmp_path: Path, receiver: tuple[int, list[dict[str, Any]]]
) -> None:
    """A run resumed at 18:00 summed up its day at midnight with only the 6 hours it
    saw (its trades before the restart lost): it sums up the whole day, as a run that
    was not stopped does, and once."""
    port, received = receiver
    alerts = {"urls": [f"json://127.0.0.1:{port}"], "on": ["daily_summary"]}
    _run(tmp_path / "whole", alerts)
    (whole,) = [r["message"] for r in received]
    assert re.match(r"2024-01-01: [1-9]\d* trades closed", whole), whole
    received.clear()
    settings = _settings(tmp_path, alerts)
    first = run_bot_sync(settings, progress=False, attach=_interrupted_in_the_evening)
    assert first.status == "interrupted" and received == []
    run_bot_sync(settings, progress=False, resume=first.run_id)
    assert [r["message"] for r in received] == [whole]


@contextlib.asynccontextmanager
async def _stopped_after_midnight(run: Run) -> AsyncIterator[None]:
    """A checkpoint at 18:00 of the first day and none for the time that passes, then
    Ctrl-C at 02:00 of the next."""
    orchestrator, checkpointer = run.orchestrator, checkpointer_of(run)
    checkpointer.every_s = 1e9
    day = 1_704_067_200_000

    def after_batch() -> None:
        checkpointer()
        now = orchestrator.last_ts or 0
        if now >= day + 18 * 3_600_000 and checkpointer.saved == 0:
            checkpointer.save()
        if now >= day + 26 * 3_600_000 and not orchestrator.stop_requested:
            orchestrator.request_stop(INTERRUPTED, interrupt=True)

    orchestrator.after_batch = after_batch
    yield


def test_a_daily_summary_sent_before_the_stop_is_not_sent_again_by_the_resumed_run(
    tmp_path: Path, receiver: tuple[int, list[dict[str, Any]]]
) -> None:
    port, received = receiver
    alerts = {"urls": [f"json://127.0.0.1:{port}"], "on": ["daily_summary"]}
    _run(tmp_path / "whole", alerts)
    whole = [r["message"] for r in received]
    received.clear()
    settings = _settings(tmp_path, alerts)
    first = run_bot_sync(settings, progress=False, attach=_stopped_after_midnight)
    assert first.status == "interrupted" and [r["message"] for r in received] == whole
    run_bot_sync(settings, progress=False, resume=first.run_id)
    assert [r["message"] for r in received] == whole


def test_a_halt_restored_at_start_is_not_paged_again(
    tmp_path: Path, receiver: tuple[int, list[dict[str, Any]]]
) -> None:
    """A run that starts halted by an earlier run's halt says so on its console and in
    its log (`restored from run ...`); its alerts do not page the old halt as a new one
    at every restart."""
    port, received = receiver
    alerts = {"urls": [f"json://127.0.0.1:{port}"], "on": ["halt", "run_end"]}
    _run(tmp_path, alerts, risk=HALTING)
    assert [r["title"] for r in received].count("perps-bot dev: HALTED") == 1
    received.clear()
    for _ in range(2):
        _run(tmp_path, alerts, risk=HALTING)
    assert [r["title"] for r in received] == ["perps-bot dev: run ended"] * 2, received
    log_text = (tmp_path / "logs" / "perps_bot.log").read_text()
    assert log_text.count("RISK STATE HALTED (restored from run ") == 2


def test_a_resumed_run_sends_again_only_the_alerts_no_target_accepted(tmp_path: Path) -> None:
    """The replay of a run killed mid-batch makes its lines again: an alert a target
    accepted before the kill is not sent again, one it never got (refused, or still
    queued) is."""
    log = tmp_path / "alerts.sent"
    config = AlertsConfig(on=["trade_closed", "halt"])

    def line(ts: int, **data: Any) -> dict[str, Any]:
        return {"run_id": "r1", "ts": ts, "correlation_id": None, **data}

    trade = line(1_000, type="trade_closed", symbol="BTC-PERP", side="long", size=0.01,
                 entry_price=100.0, exit_price=101.0, net_pnl=0.01, return_pct=1.0,
                 reason="x")  # fmt: skip
    halt = line(2_000, type="state_change", state="HALTED", detail="max drawdown")
    delivered: list[str] = []

    def refuses_halts(title: str, body: str) -> bool:
        delivered.append(body)
        return "HALT" not in title

    first = Alerts(config, name="n", sent_log=log, targets=[("x", refuses_halts)], retry_s=())
    first.rules("trade_closed", trade)
    first.rules("state_change", halt)  # refused by the target: not sent
    assert first.close() and len(delivered) == 2
    again: list[str] = []
    resumed = Alerts(config, name="n", sent_log=log, resumed=True,
                     targets=[("x", lambda t, b: again.append(b) is None)])  # fmt: skip
    for type_, replayed in (("trade_closed", trade), ("state_change", halt)):
        resumed.rules(type_, replayed)
    resumed.rules("trade_closed", trade | {"ts": 3_000})  # a later trade, the same text
    assert resumed.close()
    assert again == delivered[1:] + delivered[:1], again
