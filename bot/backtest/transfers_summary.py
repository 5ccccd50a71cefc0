"""summary.json's ``transfers``: what moved between our accounts, by which route, at what cost.

``transfer_marks`` turns the engine's transfer log (every venue answer it applied) into the
run record's ``TransferMark``s; ``transfers_summary`` adds them up, exactly:

- ``count``: transfers that left their source (SENT, or a later state that says so);
  ``by_route``: the same per route; ``by_state``: every transfer's last answer
  (``sent`` = still in transit at the end; ``rejected`` includes refusals before leaving);
- ``fees_usd``: the USD fees charged, ``fee_tokens``: fees paid in tokens, per token;
- ``moved``: amounts that arrived, per asset ("USD" or a token symbol);
- ``in_transit``: per asset at the end, as the ledger has it.

Pure functions of what they are given: no ledger reads, no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from bot.backtest.record import TransferMark
from bot.model import Transfer, TransferState, TransferUpdate


def transfer_marks(log: Iterable[tuple[Transfer, TransferUpdate]]) -> list[TransferMark]:
    """One mark per applied answer, in the order the engine applied them."""
    return [
        TransferMark(
            ts_ns=u.ts_ns,
            transfer_id=t.transfer_id,
            route=t.route,
            asset=t.asset,
            amount=t.amount,
            source=t.source,
            destination=t.destination,
            state=str(u.state),
            fee_usd=u.fee_usd,
            fee_tokens=u.fee_tokens,
        )
        for t, u in log
    ]


def transfers_summary(
    marks: Sequence[TransferMark], in_transit: Mapping[str, Decimal]
) -> dict[str, Any]:
    """The figures above, from the marks and the ledger's in-transit amounts."""
    last: dict[str, TransferMark] = {}
    left: dict[str, TransferMark] = {}  # the answer that said it left (it carries the fees)
    for m in marks:
        last[m.transfer_id] = m
        if m.state != TransferState.REJECTED and m.transfer_id not in left:
            left[m.transfer_id] = m
    fee_tokens: dict[str, Decimal] = {}
    for m in left.values():
        if m.fee_tokens:
            fee_tokens[m.asset] = fee_tokens.get(m.asset, Decimal(0)) + m.fee_tokens
    moved: dict[str, Decimal] = {}
    for m in last.values():
        if m.state == TransferState.ARRIVED:
            moved[m.asset] = moved.get(m.asset, Decimal(0)) + m.amount
    return {
        "count": len(left),
        "by_route": dict(sorted(Counter(m.route for m in left.values()).items())),
        "by_state": dict(sorted(Counter(m.state for m in last.values()).items())),
        "fees_usd": sum((m.fee_usd for m in left.values()), Decimal(0)),
        "fee_tokens": dict(sorted(fee_tokens.items())),
        "moved": dict(sorted(moved.items())),
        "in_transit": {asset: amount for asset, amount in sorted(in_transit.items()) if amount},
    }
