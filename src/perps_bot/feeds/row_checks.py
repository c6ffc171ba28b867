"""Row checks shared by the candle, mark and funding loaders (feeds.loaders).

A check is a Problem: a boolean mask over rows plus how to describe the problem at
a flagged row. All checks of a file run as numpy expressions over whole columns,
then the earliest flagged row is reported, as one line naming the file, the
1-based row, its time and the problem. One pass, no per-row Python.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from perps_bot.domain import DAY_MS, format_duration, iso_utc
from perps_bot.feeds.base import FeedError
from perps_bot.feeds.readers import FloatArray, IntArray

# A row mask and how to describe the problem at a flagged row index.
Problem = tuple[npt.NDArray[np.bool_], Callable[[int], str]]


def detect_interval(name: str, ts: IntArray) -> int:
    """The most common positive step between consecutive timestamps (ms)."""
    if ts.shape[0] < 2:
        raise FeedError(f"{name}: need at least 2 rows to detect the candle interval")
    diffs = np.diff(ts)
    first = int(diffs[0])
    if first > 0 and np.count_nonzero(diffs == first) * 2 > diffs.shape[0]:
        return first  # the common case: a regular file, decided without sorting
    positive = diffs[diffs > 0]
    if positive.shape[0] == 0:
        raise FeedError(f"{name}: need at least 2 distinct timestamps to detect the interval")
    values, counts = np.unique(positive, return_counts=True)
    return int(values[int(np.argmax(counts))])


def shifted(diff_mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """A mask over diffs (row i vs i-1) aligned to rows (row 0 never flagged)."""
    return np.concatenate(([False], diff_mask))


def describe_const(text: str) -> Callable[[int], str]:
    return lambda i: text


def describe_value(text: str, values: FloatArray) -> Callable[[int], str]:
    return lambda i: f"{text} {float(values[i])!r}"


def time_problems(
    name: str,
    ts: IntArray,
    rows: IntArray,
    interval: int,
    *,
    fill_gaps: bool,
    what: str,
    shown: IntArray | None = None,
) -> list[Problem]:
    """Duplicate, alignment and gap checks on timestamps that must be strictly regular.

    Rows out of order are raised at once: in an unsorted file every later gap or
    duplicate is a symptom, and a swapped pair would otherwise show up as a 'gap'."""
    diffs = np.diff(ts)
    step = format_duration(interval)

    def previous(i: int) -> str:
        return safe_iso(int(ts[i - 1]))

    def gap(i: int) -> str:
        missing = int(diffs[i - 1] // interval) - 1
        hint = "" if what != "candles" else "; --fill-gaps inserts flat candles"
        return f"gap: {missing} {what} missing after {previous(i)} (interval {step}{hint})"

    dup_hint = "" if fill_gaps else "; --fill-gaps drops exact duplicates"
    if what != "candles":
        dup_hint = f" after flooring to {step} (check account.funding_interval){dup_hint}"
    refuse_unsorted(name, ts, rows)
    problems: list[Problem] = [
        (shifted(diffs == 0), lambda i: f"duplicate timestamp{dup_hint}"),
        (
            shifted((diffs > 0) & (diffs % interval != 0)),
            lambda i: (
                f"step {format_duration(int(diffs[i - 1]))} from {previous(i)}"
                f" is not a multiple of the {step} interval"
            ),
        ),
    ]
    if not fill_gaps:
        problems.append((shifted(diffs > interval), gap))
    return problems


def refuse_unsorted(name: str, ts: IntArray, rows: IntArray) -> None:
    """The first row earlier than the one before it. Checked before the interval is
    detected: a file listed newest first (as some exchanges export) has no positive
    step, and was refused as having fewer than 2 distinct timestamps."""
    diffs = np.diff(ts)
    order = " (newest first? sort the rows oldest first)" if bool(np.all(diffs < 0)) else ""

    def message(i: int) -> str:
        return f"not sorted{order}: earlier than the previous row {safe_iso(int(ts[i - 1]))}"

    raise_first(name, ts, rows, [(shifted(diffs < 0), message)])


def raise_first(name: str, ts: IntArray, rows: IntArray, problems: list[Problem]) -> None:
    """Raise FeedError for the earliest row with any problem (first listed problem wins)."""
    found = first_problem(problems)
    if found is not None:
        i, text = found
        raise FeedError(f"{name}: row {int(rows[i])} ({safe_iso(int(ts[i]))}): {text}")


def first_problem(problems: list[Problem]) -> tuple[int, str] | None:
    """The earliest flagged row's index and its problem (first listed wins), or None."""
    if not problems:
        return None
    bad = problems[0][0].copy()
    for mask, _ in problems[1:]:
        bad |= mask
    if not bad.any():
        return None
    i = int(np.argmax(bad))
    return i, next(text for mask, text in problems if mask[i])(i)


def safe_iso(ts_ms: int) -> str:
    try:
        return iso_utc(ts_ms)
    except (OverflowError, OSError, ValueError):
        return f"{ts_ms} ms"


def off_grid(ts: IntArray, interval: int) -> list[Problem]:
    """Candle open times off their interval's grid (multiples of it since the epoch, for
    an interval that divides a day): close times, a local time read as UTC, resampled
    data. Funding would settle and bars close at the wrong instants. Longer intervals
    (3d, 1w: exchanges open weeks on Mondays) have no such grid and are not checked."""
    if interval <= 0 or DAY_MS % interval:
        return []
    offset = ts % interval

    def message(i: int) -> str:
        past = format_duration(int(offset[i]))
        return (
            f"not on the {format_duration(interval)} grid ({past} past it): timestamps"
            " must be candle open times in UTC"
        )

    return [(offset != 0, message)]
