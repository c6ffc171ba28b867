"""Alerts a trader relies on that no journal line of the run makes: a run the next
start finds crashed (its process died: it could not say so itself); an alert the
receiver refused, tried again and, if never accepted, written down."""

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from perps_bot.config import load_settings
from perps_bot.monitoring.alerts import AlertSender
from perps_bot.orchestrator.runner import run_bot_sync
from tests.harness.alert_receiver import alert_receiver


def _settings(tmp: Path, alerts: dict[str, Any] | None = None) -> Any:
    run = {"dev_fast": True, "duration": "2h", "seed": 5, "log_dir": str(tmp / "logs"),
           "data_dir": str(tmp / "data"), "live_view": False}  # fmt: skip
    return load_settings("dev", {"run": run, **({"alerts": alerts} if alerts else {})})


def test_a_run_found_crashed_at_the_next_start_is_alerted_once(tmp_path: Path) -> None:
    """A bot killed (OOM, kill -9, power cut) left its run `running`; the next start
    marked it crashed with a WARNING only, which no alert carries: the trader learnt of
    the crash from nothing. The start that finds it sends its run_end: crashed."""
    first = run_bot_sync(_settings(tmp_path), progress=False)
    db = next((tmp_path / "data").glob("*.sqlite"))
    with sqlite3.connect(db) as con:  # as a killed process leaves it (its pid is gone)
        con.execute("UPDATE runs SET status='running', pid=NULL, host=NULL")
    con.close()
    with alert_receiver() as (port, received):
        alerts = {"urls": [f"json://127.0.0.1:{port}"], "on": ["run_end"]}
        second = run_bot_sync(_settings(tmp_path, alerts), progress=False)
        run_bot_sync(_settings(tmp_path, alerts), progress=False)  # nothing crashed since
    crashed = [r["message"] for r in received if f"run {first.run_id} " in r["message"]]
    assert len(crashed) == 1, received
    assert crashed[0].startswith(f"run {first.run_id} ended: crashed"), crashed
    assert second.run_id in crashed[0]
    assert [r["title"] for r in received].count("perps-bot dev: run ended") == 3


def test_an_alert_the_receiver_refuses_is_tried_again_then_written_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A receiver down for a moment (restarting) lost the halt alert at its one try, and
    the log said only 'alert to json://******** was not accepted': not which alert, nor
    what it said. It is tried again (after `retry_s` pauses); one never accepted is
    written in the run log with its title and text."""
    tries: list[str] = []
    pauses: list[float] = []
    third_try = threading.Event()  # the run goes on meanwhile (its end cuts pauses short)

    def back_at_third_try(title: str, body: str) -> bool:
        tries.append(body)
        if len(tries) >= 3:
            third_try.set()
        return len(tries) >= 3

    def never(title: str, body: str) -> bool:
        tries.append(body)
        if len(tries) >= 3:
            third_try.set()
        raise ConnectionError("json://10.9.8.7:1234/SECRET refused")

    sender = AlertSender([("json://********", back_at_third_try)], max_per_minute=10,
                         retry_s=(1.0, 5.0), pause=pauses.append)  # fmt: skip
    sender.send("halt", "perps-bot dev: HALTED", "trading halted: max drawdown")
    assert third_try.wait(30)
    assert sender.close(5.0)
    assert tries == ["trading halted: max drawdown"] * 3 and pauses == [1.0, 5.0]
    assert sender.sent == 1
    pauses.clear()
    tries.clear()
    third_try.clear()
    with caplog.at_level(logging.WARNING, logger="perps_bot.alerts"):
        sender = AlertSender([("json://********", never)], max_per_minute=10,
                             retry_s=(1.0, 5.0), pause=pauses.append)  # fmt: skip
        sender.send("halt", "perps-bot dev: HALTED", "trading halted: max drawdown")
        assert third_try.wait(30)
        sender.send("run_end", "perps-bot dev: run ended", "run r1 ended: completed")
        assert sender.close(5.0)
    # a target down gets one try per message until it accepts one: no pauses again
    assert pauses == [1.0, 5.0] and sender.failed == 2
    halt, end = [r.getMessage() for r in caplog.records]
    assert "json://********" in halt and "3 tries" in halt and "ConnectionError" in halt
    assert "perps-bot dev: HALTED" in halt and "trading halted: max drawdown" in halt
    assert "1 tries" in end and "run r1 ended: completed" in end
    assert "SECRET" not in caplog.text and "10.9.8.7" not in caplog.text
