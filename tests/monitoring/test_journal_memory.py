"""The journal holds no more than its buffer: a backtest writes a line per signal, order,
update, fill and equity row, so a byte kept per line is a peak that grows with the run
(compiled with mypyc 1.20, `bytes + bytes` leaked each line's head: +60 MB at 500k
candles)."""

import tracemalloc
from pathlib import Path

from perps_bot.monitoring.journal import Journal


def test_written_lines_are_not_kept_after_a_flush(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "events.jsonl", "run-1", buffer_lines=500)
    data = {"symbol": "SYN-PERP", "side": "buy", "size": 1.0, "reason": "sma_cross up 10/30"}
    lines = 20_000
    tracemalloc.start()
    try:
        for i in range(lines):  # ts and correlation id change every few lines, as an order's
            journal.write("signal", i // 3, dict(data), f"pb-{i // 6}")
        journal.flush()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        journal.close()
    # the lines themselves are about 150 bytes each: 3 MB if they were kept
    assert held < 300_000, f"{held} bytes still held after {lines} lines"
    text = (tmp_path / "events.jsonl").read_text(encoding="utf-8")
    assert text.count("\n") == lines and text.endswith("}\n")
