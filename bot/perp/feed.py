"""A perpetual's state as a recorded-feed row (``EventKind.PERP_STATE``, docs/feeds.md) and back.

``price`` carries the mark as a float for readers that only want a number; the exact values are
decimal strings in ``value`` (JSON): ``mark``, ``index``, ``funding_rate`` and, when the venue
gives one, ``predicted_rate``; ``ts_effective`` is the next funding time. Feeds without such rows
replay as before.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

from bot.errors import FeedError
from bot.model import PerpState

_FIELDS = ("mark", "index", "funding_rate")


def perp_state_value(mark: Decimal, index: Decimal, rate: Decimal,
                     predicted: Decimal | None = None) -> str:  # fmt: skip
    """The ``value`` JSON of a PERP_STATE row."""
    body = {"mark": str(mark), "index": str(index), "funding_rate": str(rate)}
    if predicted is not None:
        body["predicted_rate"] = str(predicted)
    return json.dumps(body, separators=(",", ":"))


def perp_state_of(
    venue: str, instrument: str, value: str | None, next_funding_ns: int | None, ts_ns: int
) -> PerpState:
    """A PERP_STATE row as a ``PerpState``; FeedError naming what is wrong with a bad row."""
    where = f"PERP_STATE row of {venue}/{instrument} at {ts_ns}"
    try:
        body = json.loads(value or "")
        numbers = {k: Decimal(body[k]) for k in _FIELDS}
        predicted = body.get("predicted_rate")
        predicted_rate = Decimal(predicted) if predicted is not None else None
    except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
        raise FeedError(f"{where}: value must be JSON with {', '.join(_FIELDS)} ({exc})") from None
    if not numbers["mark"] > 0 or next_funding_ns is None:
        raise FeedError(f"{where}: needs a positive mark and a next funding time")
    return PerpState(
        venue=venue,
        instrument=instrument,
        mark=numbers["mark"],
        index=numbers["index"],
        funding_rate=numbers["funding_rate"],
        next_funding_ns=int(next_funding_ns),
        ts_ns=ts_ns,
        predicted_rate=predicted_rate,
    )
