"""The names a server bound to loopback answers to: the defence against DNS rebinding.

A web page whose own domain is made to resolve to 127.0.0.1 (DNS rebinding) talks to
a loopback server from the visitor's browser as a same-origin page: no CORS rule
stops it, and on loopback there is no token. What gives it away is the `Host` header:
the browser sends the page's domain there and a page cannot change it. So, as
Jupyter and other local servers do, a server bound to loopback refuses (403) a
request whose Host is not a loopback name: localhost, or a loopback address such as
127.0.0.1 or [::1] (an address cannot be rebound), with any port. Names added in
`PERPS_BOT__SERVER__ALLOWED_HOSTS` (comma-separated) are accepted too, for a proxy
on the machine that passes its own Host on. A server bound beyond loopback checks
no name: it is reached by any of the machine's names, and its token keeps pages out.
"""

import ipaddress
import os
import re
from collections.abc import Mapping

from perps_bot.domain import short

HOSTS_ENV = "PERPS_BOT__SERVER__ALLOWED_HOSTS"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})  # the bind addresses

#: a Host header: a name or a bracketed IPv6 address, then an optional port
_HOST = re.compile(r"(?P<name>\[[^\]]*\]|[^:\[\]]*)(?::\d*)?")


def allowed_hosts(bind: str, environ: Mapping[str, str] = os.environ) -> frozenset[str] | None:
    """The names a server bound to `bind` accepts beyond the loopback ones (lower case,
    without their port), or None when it checks no Host (bound beyond loopback)."""
    if bind not in LOOPBACK:
        return None
    names = (_name(item.strip()) for item in environ.get(HOSTS_ENV, "").split(","))
    return frozenset(name for name in names if name)


def refusal(host: str | None, extra: frozenset[str]) -> str | None:
    """Why a request with this Host header is refused, or None when it is accepted. A
    request without one (HTTP/1.0) is accepted: a browser always sends it."""
    if not host:
        return None
    name = _name(host)
    if name in extra or name == "localhost" or _loopback_address(name):
        return None
    names = ["localhost", "127.0.0.1", "[::1]", *sorted(extra)]
    known = f"{short(', '.join(names[:-1]), 120)} or {short(names[-1], 40)}"
    return (f"refused Host {short(host, 60)!r}: this server on loopback answers to {known}"
            f" (any port; {HOSTS_ENV} adds names)")  # fmt: skip


def _name(host: str) -> str:
    """The name of a Host header, lower case, IPv6 brackets kept ('' when malformed)."""
    found = _HOST.fullmatch(host)
    return found.group("name").lower() if found else ""


def _loopback_address(name: str) -> bool:
    try:
        return ipaddress.ip_address(name.removeprefix("[").removesuffix("]")).is_loopback
    except ValueError:
        return False
