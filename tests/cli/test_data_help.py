"""`data download --help` said `--until` is "exclusive", yet the funding settlement at
--until is downloaded (the backtest settles one at the last candle's close): which
rows a range holds is said for candles and for funding."""

from typer.testing import CliRunner

from perps_bot.cli.app import app


def test_the_help_says_which_candles_and_settlements_the_range_holds() -> None:
    result = CliRunner().invoke(app, ["data", "download", "--help"], env={"COLUMNS": "400"},
                                terminal_width=400)  # fmt: skip
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.replace("│", " ").split())
    assert "candles that open at or after it" in text, text  # --since
    assert "candles that close at or before it" in text, text  # --until
    assert "funding settlements at or after --since and at or before --until" in text, text
    assert "exclusive" not in text, text
