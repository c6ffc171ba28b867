"""Queue-position arithmetic for resting limit orders on an L2 book (SPEC 14).

An L2 book shows how much rests at a price, not who is first. A paper order that
joins a level therefore estimates `front`, the quantity ahead of it, and moves the
estimate as the level changes. The rules are the ones published for queue-position
backtesting (hftbacktest's queue models), re-derived here:

* joining: `front = displayed quantity at the order's price` (the order queues
  behind everything that was there first; 0 when it opens a new level). An order
  beyond the book's displayed depth has an unknown queue (`UNSEEN`): it joins behind
  what its level shows when the level first comes into view;
* a trade of `q` at the order's price: `front -= q`; the part of the trade beyond
  `front` (front < 0) executes against the order itself;
* a decrease of the level that trades do not explain, `d = prev - new - traded`, is
  cancellations somewhere in the queue. With `back = prev - front` (quantity behind
  the order) and `p = f(back) / (f(back) + f(front))` the share of the decrease
  assumed to be behind it:

      front' = min(max(front - (1 - p) * d + min(0, back - p * d), 0), new)

  (the max(., 0) is ours: a cancellation moves the order to the front, never through
  it, so only trades execute it);

  `risk_averse` never advances on cancellations (p = 1, only the `min(., new)` cap);
  `power:N` uses f(x) = x^N, `log` uses f(x) = ln(1 + x). An increase of the level
  (new orders) goes behind: front' = min(front, new).

Pure functions of floats, no state: the engine keeps one `QueueSlot` per resting order.
"""

import math
from dataclasses import dataclass

#: Quantities below this are zero.
_EPS = 1e-12
#: `front` of an order whose level lies beyond the displayed depth (never shown yet).
UNSEEN = math.inf


@dataclass(frozen=True, slots=True)
class QueueFunction:
    """How a level's unexplained decrease splits between the front and the back."""

    kind: str  # "risk_averse" | "power" | "log"
    power: float = 1.0

    @classmethod
    def parse(cls, text: str) -> "QueueFunction":
        """'risk_averse', 'log' or 'power:N' (N > 0); ValueError names what was wrong."""
        name = text.strip().lower()
        if name in ("risk_averse", "risk-averse"):
            return cls("risk_averse")
        if name == "log":
            return cls("log")
        if name.startswith("power:"):
            try:
                power = float(name.split(":", 1)[1])
            except ValueError:
                power = math.nan
            if not (math.isfinite(power) and power > 0):
                raise ValueError(f"queue model {text!r}: power:N needs a number N > 0")
            return cls("power", power)
        raise ValueError(f"queue model {text!r}: use risk_averse, power:N or log")

    def __str__(self) -> str:
        return f"power:{self.power:g}" if self.kind == "power" else self.kind

    def weight(self, quantity: float) -> float:
        if self.kind == "log":
            return math.log1p(max(quantity, 0.0))
        return float(max(quantity, 0.0) ** self.power)

    def behind_share(self, front: float, back: float) -> float:
        """p: the probability that a cancellation came from behind the order."""
        if self.kind == "risk_averse":
            return 1.0
        try:
            behind, ahead = self.weight(back), self.weight(front)
        except OverflowError:  # x^N past a float (a high N): the ratio still is one
            return _power_share(front, back, self.power)
        total = behind + ahead
        if total <= 0.0 and self.kind == "power" and front > 0.0 and back > 0.0:
            return _power_share(front, back, self.power)  # both x^N below a float
        return 1.0 if total <= 0.0 else behind / total


def _power_share(front: float, back: float, power: float) -> float:
    """back^N / (back^N + front^N) as 1 / (1 + (front / back)^N), in logarithms."""
    if front <= 0.0:
        return 1.0
    if back <= 0.0:
        return 0.0
    exponent = power * (math.log(front) - math.log(back))
    if exponent > 700.0:  # exp would overflow: the share is 0 to a float's precision
        return 0.0
    return 1.0 / (1.0 + math.exp(exponent))


def after_trade(front: float, quantity: float) -> float:
    """Quantity ahead after a trade of `quantity` at the order's price (may go < 0)."""
    return front - quantity


def after_depth_change(
    func: QueueFunction, front: float, prev_qty: float, new_qty: float, traded: float
) -> float:
    """Quantity ahead after the level went from `prev_qty` to `new_qty`, of which
    `traded` was already accounted for by trades at the price since the last update.
    An order `UNSEEN` so far queues behind what its level shows now."""
    if front == UNSEEN:
        return new_qty
    change = prev_qty - new_qty - traded
    if change < 0.0 or func.kind == "risk_averse":  # growth queues behind; or no advance
        return min(front, new_qty)
    back = max(prev_qty - front, 0.0)
    p = func.behind_share(max(front, 0.0), back)
    advanced = front - (1.0 - p) * change + min(0.0, back - p * change)
    # cancellations move the order up to the front, never through it: only trades execute
    return min(max(advanced, min(front, 0.0)), new_qty)


def executable(front: float, remaining: float, step: float | None) -> float:
    """Quantity of the order that has executed when `front` went below zero: the
    overshoot, capped at what is left and floored to the lot step."""
    if front >= -_EPS or remaining <= _EPS:
        return 0.0
    quantity = min(-front, remaining)
    if step is not None and step > 0:
        quantity = round(math.floor(quantity / step + 1e-9) * step, 12)
    return quantity if quantity > _EPS else 0.0


@dataclass(slots=True)
class QueueSlot:
    """A resting order's place in its level: quantity ahead, the level as last seen,
    trades at the price since that update, and the event time it joined at."""

    front: float
    level_qty: float
    joined_ts: int
    traded: float = 0.0
