"""Bad flags of `data download`, refused in one line before any request: `--out` naming
a file said "(File exists)" after loading the markets; a --since in
the future, without --until, was said to be "not before --until", a flag not given."""

import asyncio
from pathlib import Path

import pytest

from perps_bot.cli.app import main
from perps_emulator import EmulatorServer


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--since", "2024-01-01", "--out", "a-file"], "cannot write to a-file: not a folder"),
        (["--since", "2999-01-01"], "bad --since '2999-01-01': 2999-01-01T00:00:00.000Z is in"
                                    " the future (now "),
    ],
    ids=["out-is-a-file", "since-in-the-future"],
)  # fmt: skip
async def test_a_bad_flag_is_one_line_before_any_request(
    emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], flags: list[str], said: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("PERPS_BOT__EXCHANGE__BASE_URL", emulator.base_url)
    monkeypatch.setenv("PERPS_BOT__RUN__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("not a folder\n")
    with pytest.raises(SystemExit) as done:
        await asyncio.to_thread(main, ["data", "download", "--symbols", "BTC-PERP", *flags])
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.count("\n") == 1, err
    assert said in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
    assert [r.path for r in emulator.requests] == []
