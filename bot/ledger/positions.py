"""Positions and their cost basis per (venue, instrument), for the realized/unrealized split.

A position carries its signed quantity and its cost basis (the signed USD paid for it: positive
for a long, negative for a short; average cost = basis / quantity). Adding in the direction of
the position adds to the basis; trading against it closes at the average cost and realizes
``proceeds - released basis``. The split between realized and unrealized PnL is the only place a
division happens (``exact.prorate``); the ledger's totals never depend on it.

Plain bookkeeping: no cash, no fees, no I/O. ``Ledger`` calls it inside ``exact()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from bot.ledger.exact import ZERO, prorate

Key = tuple[str, str]  # (venue, instrument)


class Positions:
    """Signed quantity and cost basis per (venue, instrument)."""

    __slots__ = ("_qty", "_basis")

    def __init__(self) -> None:
        self._qty: dict[Key, Decimal] = {}
        self._basis: dict[Key, Decimal] = {}

    def qty(self, venue: str, instrument: str) -> Decimal:
        return self._qty.get((venue, instrument), ZERO)

    def basis(self, venue: str, instrument: str) -> Decimal:
        return self._basis.get((venue, instrument), ZERO)

    def items(self) -> Iterator[tuple[Key, Decimal, Decimal]]:
        """(key, qty, basis) for every position ever touched (zero ones included)."""
        for key, qty in self._qty.items():
            yield key, qty, self._basis.get(key, ZERO)

    def trade(self, key: Key, dq: Decimal, price: Decimal) -> Decimal:
        """Buy (dq > 0) or sell (dq < 0) ``|dq|`` at ``price``; returns the realized PnL of the
        part that closed an opposite position (exact: closes at ``price``)."""
        return self._add(key, dq, dq * price, price)

    def receive(self, key: Key, qty: Decimal, basis: Decimal) -> Decimal:
        """Tokens arriving (a settled mint, a returned redeem) with their cost basis; returns the
        realized PnL if they cover a short."""
        return self._add(key, qty, basis, None)

    def release(self, key: Key, qty: Decimal) -> Decimal:
        """Tokens leaving without a price (sent to the issuer in a redeem); returns the cost basis
        they take with them. A long gives up basis pro rata; any quantity beyond the long is left
        as a short at zero basis (the venue held fewer tokens than left it: a reconciliation
        problem the ledger records rather than hides)."""
        q = self._qty.get(key, ZERO)
        b = self._basis.get(key, ZERO)
        taken = prorate(b, min(qty, q), q) if q > 0 else ZERO
        self._qty[key] = q - qty
        self._basis[key] = b - taken
        return taken

    def _add(self, key: Key, dq: Decimal, cost: Decimal, price: Decimal | None) -> Decimal:
        q = self._qty.get(key, ZERO)
        b = self._basis.get(key, ZERO)
        if q == 0 or (q > 0) == (dq > 0):
            self._qty[key] = q + dq
            self._basis[key] = b + cost
            return ZERO
        closing = min(abs(dq), abs(q))
        released = prorate(b, closing, abs(q))
        incoming = (
            closing * price * (1 if dq > 0 else -1)
            if price is not None
            else prorate(cost, closing, abs(dq))
        )
        # long closed by a sale: incoming = -proceeds, released = cost given up;
        # short covered by a purchase: incoming = cost paid, released = -proceeds received.
        realized = -(incoming + released)
        self._qty[key] = q + dq
        self._basis[key] = b - released + (cost - incoming)
        return realized
