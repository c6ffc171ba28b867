"""The one base class for failures the user caused or can fix (bad profile, bad data,
unknown strategy, exchange setup, missing promotion). Its message is a complete
one-line explanation: the CLI prints it and exits with code 2, no traceback."""


class PerpsBotError(Exception):
    """A user-facing error with a one-line message."""


def short(text: str, limit: int = 60) -> str:
    """A user's value cut for a one-line message: a huge value must not become a huge
    message (an alias bomb in a profile once made a 312 MB 'one-line' error)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short_path(path: object, limit: int = 80) -> str:
    """A path cut from the left for a one-line message: its end names the file."""
    text = str(path)
    return text if len(text) <= limit else "..." + text[-(limit - 3) :]
