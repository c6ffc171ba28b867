"""Fault injection: scripted misbehaviour of the emulated exchange, consumed in order.

A fault matches a request by HTTP method and path (default POST /fapi/v1/order, the
call retries care about; "*" matches any) and fires ``count`` times, after letting the
first ``after`` matching requests through untouched (a failure that starts mid-way,
e.g. the second account read of a start-up). Control
endpoints under /_emulator/ are never faulted. Kinds and what the client sees:

- ``status``: HTTP ``status`` (default 503) with an HTML body; the request is NOT
  processed. ccxt: 500/502/503 -> ExchangeNotAvailable, 504 -> RequestTimeout.
- ``rate_limit``: HTTP 429 (or ``status=418``) with Binance's -1003 JSON and a
  Retry-After header; not processed. ccxt: DDoSProtection (429 is raised as
  DDoSProtection itself by binance.handle_errors; RateLimitExceeded is a subclass
  ccxt only uses from the generic status table).
- ``error_code``: HTTP ``status`` (default 400) with {"code": code, "msg": msg}; not
  processed. ccxt maps the code exactly as the real exchange would.
- ``timeout``: the request is lost: the answer waits ``delay_s`` and then is an HTTP
  504 WITHOUT processing the request. Use a client timeout shorter than delay_s.
- ``malformed``: HTTP 200 with a body that is not JSON; not processed.
- ``accept_then_timeout``: the request IS processed (the order exists) and the answer
  is then held back ``delay_s``: the client times out without knowing the outcome,
  which is the case an idempotent retry must handle.
- ``late``: the request reaches the matching engine only after ``delay_s`` (a slow
  path inside the exchange): it is processed then, or refused with -1021 when its
  ``timestamp + recvWindow`` has passed by then (the receive window is what makes a
  late request harmless). The client has usually timed out long before.
- ``unknown_then_execute``: Binance's -1007 ("execution status unknown", HTTP 503)
  comes back at once, and the order IS executed ``delay_s`` later (within the
  receive window). ccxt: RequestTimeout. A client that resends on it doubles.
- ``rewrite``: the request IS processed and its JSON answer (the object, or each
  object of a list) has ``fields`` set to the values given (null, a string where a
  number belongs, a negative quantity): a well-formed answer that is wrong.
- ``repeat``: the request IS processed and each row of its JSON list answer appears
  twice (a trade listed again, as overlapping pages can): the same row, not a new one.
- ``hole``: the request IS processed and the rows of its JSON list answer whose first
  value (a kline's open time) lies in [``fields["from"]``, ``fields["until"]``) are
  left out: an exchange missing candles of an outage in its history.

``rate_limit`` answers carry ``Retry-After: retry_after`` (seconds, default 1).
"""

from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

FaultKind = Literal[
    "status",
    "rate_limit",
    "error_code",
    "timeout",
    "malformed",
    "accept_then_timeout",
    "late",
    "unknown_then_execute",
    "rewrite",
    "repeat",
    "hole",
]
#: kinds whose request is processed (now or later) instead of being answered by the fault
PROCESSED_KINDS = (
    "accept_then_timeout",
    "late",
    "unknown_then_execute",
    "rewrite",
    "repeat",
    "hole",
)
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
DEFAULT_STATUS = {"status": 503, "rate_limit": 429, "error_code": 400}
DEFAULT_MESSAGES = {
    -1000: "An unknown error occurred while processing the request.",
    -1001: "Internal error; unable to process your request. Please try again.",
    -1003: "Too many requests; current limit is 2400 requests per minute.",
    -1007: "Timeout waiting for response from backend server. Send status unknown;"
    " execution status unknown.",
    -1021: "Timestamp for this request is outside of the recvWindow.",
    -1022: "Signature for this request is not valid.",
    -1121: "Invalid symbol.",
    -2011: "Unknown order sent.",
    -2013: "Order does not exist.",
    -2014: "API-key format invalid.",
    -2015: "Invalid API-key, IP, or permissions for action.",
    -2019: "Margin is insufficient.",
    -2022: "ReduceOnly Order is rejected.",
    -4116: "ClientOrderId is duplicated.",
    -4164: "Order's notional must be no smaller than 100 (unless you choose reduce only).",
}


@dataclass(slots=True)
class Fault:
    """One scripted misbehaviour; see the module docstring for each kind."""

    kind: FaultKind
    method: str = "POST"  # "*" matches any method
    path: str = "/fapi/v1/order"  # "*" matches any path
    count: int = 1
    after: int = 0  # matching requests let through before the fault starts firing
    status: int | None = None  # default by kind: 503 status, 429 rate_limit, 400 error_code
    code: int = -1000
    msg: str | None = None
    delay_s: float = 1.0
    retry_after: int = 1  # seconds, rate_limit only
    fields: dict[str, Any] | None = None  # rewrite: the answer's fields to set; hole: from, until

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        if self.count < 1:
            raise ValueError(f"fault count must be >= 1, got {self.count}")
        if self.after < 0:
            raise ValueError(f"fault after must be >= 0, got {self.after}")
        if self.delay_s < 0:
            raise ValueError(f"fault delay_s must be >= 0, got {self.delay_s}")
        if (self.kind in ("rewrite", "hole")) != isinstance(self.fields, dict):
            raise ValueError(
                "a rewrite fault takes fields (an object), as does a hole fault; other kinds none"
            )
        if self.kind == "hole" and not all(
            isinstance((self.fields or {}).get(k), int) for k in ("from", "until")
        ):
            raise ValueError("a hole fault takes fields from and until (ms)")
        self.method = self.method.upper()

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method.upper()) and self.path in ("*", path)

    @property
    def http_status(self) -> int:
        return self.status if self.status is not None else DEFAULT_STATUS.get(self.kind, 200)

    @property
    def message(self) -> str:
        return self.msg if self.msg is not None else DEFAULT_MESSAGES.get(self.code, "Error.")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Fault":
        allowed = set(cls.__dataclass_fields__)
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault field(s): {sorted(unknown)}")
        return cls(**data)


class FaultBook:
    """Pending faults in injection order; the first match fires and is consumed."""

    def __init__(self) -> None:
        self.pending: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self.pending.append(fault)

    def clear(self) -> None:
        self.pending.clear()

    def take(self, method: str, path: str) -> Fault | None:
        for fault in self.pending:
            if fault.matches(method, path):
                if fault.after > 0:
                    fault.after -= 1
                    return None
                fault.count -= 1
                if fault.count == 0:
                    self.pending.remove(fault)
                return fault
        return None
