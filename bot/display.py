"""How quantities and instants are written for a person: log lines, the CLI summary, the report.

``qty_text`` drops float noise (``30.400000000000002``) and trailing zeros (``100.000000``) and
never uses an exponent; ``utc_text`` writes an instant in ISO 8601 UTC with a ``Z``. Only text
comes out: the ledger and summary.json keep their exact values.

What this module may not do: round anything that is stored or computed with (display only).
"""

from __future__ import annotations

import decimal
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

QTY_PLACES = 9
"""Most decimals a quantity is shown with: a billionth of a share or token. Float sizes carry
noise past that, and 18-decimal token dust is not something a reader acts on."""

_WIDE = decimal.Context(prec=80, rounding=ROUND_HALF_EVEN)
_NS_PER_S = 1_000_000_000


def qty_text(value: Decimal | float | int | str, places: int = QTY_PLACES) -> str:
    """``value`` rounded half-even to ``places`` decimals, without trailing zeros or exponent.

    ``Decimal("100.000000000000000000")`` -> ``"100"``, ``30.400000000000002`` -> ``"30.4"``.
    A float is read by its shortest repr; a non-finite value is written as Python writes it.
    """
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not number.is_finite():
        return str(value)
    rounded = number.quantize(Decimal(1).scaleb(-min(places, QTY_PLACES)), context=_WIDE)
    text = format(rounded, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def utc_text(ts_ns: int) -> str:
    """``ts_ns`` as ``2026-11-24T14:30:00Z``, with the fraction of a second only when there is
    one (``...:00.25Z``)."""
    seconds, nanos = divmod(ts_ns, _NS_PER_S)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        text += f".{nanos:09d}".rstrip("0")
    return text + "Z"
