"""Project exception for everything that stops the exchange client from being built."""

from perps_bot.domain import PerpsBotError


class ExchangeSetupError(PerpsBotError):
    """The ccxt client cannot be built from the profile: one-line message, CLI exit code 2.

    Raised for a missing api key/secret when private access is asked for, an unknown
    exchange id, a malformed ``base_url``, demo mode on an exchange without it, or a
    symbol that cannot be mapped.
    """
