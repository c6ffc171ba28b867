"""The emulator's two kinds of failure, kept apart because they go to different people.

- ``EmulatorError``: the emulator was set up or driven wrongly (a public host, an
  unknown symbol, a bad control body). It is the test author's or rehearser's
  mistake, so it is a plain exception with a one-line message; a command that wraps
  the emulator turns it into its own user-facing error.
- ``BinanceError``: the emulated exchange refuses a request. It becomes an HTTP answer
  in Binance's shape, so that the client under test (ccxt) maps it exactly as it
  would map the real exchange's answer.
"""


class EmulatorError(Exception):
    """Bad emulator setup or control input (one-line message)."""


class BinanceError(Exception):
    """An error answer in Binance's shape: HTTP ``status`` with {"code": code, "msg": msg}."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status


def mandatory(name: str) -> BinanceError:
    """Binance's answer to a missing parameter (-1102)."""
    return BinanceError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def illegal(name: str) -> BinanceError:
    """Binance's answer to a parameter that does not parse (-1100)."""
    return BinanceError(-1100, f"Illegal characters found in parameter '{name}'.")
