"""The one base class for failures the user caused or can fix (bad profile, bad data,
unknown strategy, exchange setup, missing promotion). Its message is a complete
one-line explanation: the CLI prints it and exits with code 2, no traceback."""


class PerpsBotError(Exception):
    """A user-facing error with a one-line message."""
