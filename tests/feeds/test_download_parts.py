"""The staging folder `<file>.parts/` of a download (feeds.series_files): a folder left
with no page in it (a page whose write failed, a Ctrl-C while the folder was being
removed) stayed behind for good, since it was removed only after folding pages in; and
a page that could not be written (a full disk) was an internal error with a traceback,
leaving the folder and the page's half-written temp file."""

import asyncio
import errno
from pathlib import Path
from typing import Any

import pyarrow.feather as pa_feather
import pytest

from perps_bot.cli.app import main
from perps_bot.feeds.loaders import load_candles
from perps_emulator import EmulatorServer

ARGS = ["data", "download", "--symbols", "BTC-PERP", "--since", "2024-01-01",
        "--until", "2024-01-01T02:00"]  # fmt: skip


async def _download(out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        await asyncio.to_thread(main, [*ARGS, "--out", str(out)])
    return int(done.value.code or 0), capsys.readouterr().err


async def test_a_staging_folder_with_no_page_in_it_is_removed(
    emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("PERPS_BOT__EXCHANGE__BASE_URL", emulator.base_url)
    assert await _download(tmp_path, capsys) == (0, "")
    parts = tmp_path / "BTC-PERP-1m.feather.parts"
    parts.mkdir()  # what a Ctrl-C while it was removed leaves
    (parts / "00000003.feather.tmp").write_bytes(b"ARR")  # and a page cut off mid-write
    assert await _download(tmp_path, capsys) == (0, "")  # nothing to fetch
    assert sorted(p.name for p in tmp_path.iterdir() if ".lock" not in p.name) == [
        "BTC-PERP-1m.feather"
    ]
    assert len(load_candles(tmp_path / "BTC-PERP-1m.feather")) == 120


async def test_a_page_that_cannot_be_written_is_one_line_and_leaves_nothing_behind(
    emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("PERPS_BOT__EXCHANGE__BASE_URL", emulator.base_url)
    monkeypatch.chdir(tmp_path)  # its logs
    out = tmp_path / "out"

    def full_disk(table: Any, dest: Any, *args: Any, **kw: Any) -> None:
        Path(dest).write_bytes(b"ARROW1")  # half a file, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pa_feather, "write_feather", full_disk)
    code, err = await _download(out, capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert "cannot write" in err and "No space left on device" in err, err
    assert [p.name for p in out.iterdir() if ".lock" not in p.name] == []
