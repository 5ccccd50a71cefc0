"""A book's depth less what we already took from it and the feed has not shown yet.

An IOC sized against a level takes from it at once, but the level's recorded size stays in the
market data until the venue's next update of that level. A second order sized against the same
levels in the meantime counts the same size twice and comes back short. ``TakenDepth`` keeps, per
(book, side, price), the level's size when we took from it and how much we took; while the level
still shows that size, that much is not there. Once the level's size changes (or it leaves the
book) the update includes what we took, and the note is forgotten. The simulated exchange decides
what an order may take by the same rule (``connectors.sim.exchange``), and a real venue's feed
catches up the same way: the level is updated, so the note is dropped.

No clock, no I/O; a strategy owns one and calls ``note`` when it sends an order that takes.
"""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["TakenDepth"]

_DUST = 1e-12


class TakenDepth:
    """Size taken per (book key, side, price) that the book does not show yet."""

    __slots__ = ("_taken",)

    def __init__(self) -> None:
        # (book, is_bid) -> price -> (the level's recorded size when taken, size taken)
        self._taken: dict[tuple[Hashable, bool], dict[float, tuple[float, float]]] = {}

    def levels(
        self, book: Hashable, is_bid: bool, recorded: list[tuple[float, float]]
    ) -> list[tuple[float, float]]:
        """``recorded`` levels (price, size; best first) less what we took and they still
        show; notes on levels that changed or left are forgotten."""
        notes = self._taken.get((book, is_bid))
        if not notes:
            return recorded
        kept: dict[float, tuple[float, float]] = {}
        out: list[tuple[float, float]] = []
        for price, size in recorded:
            note = notes.get(price)
            if note is not None and note[0] == size:
                kept[price] = note
                size -= note[1]
                if size <= _DUST:
                    continue
            out.append((price, size))
        if kept:
            self._taken[(book, is_bid)] = kept
        else:
            del self._taken[(book, is_bid)]
        return out

    def note(
        self, book: Hashable, is_bid: bool, recorded: list[tuple[float, float]], qty: float
    ) -> None:
        """An order takes ``qty`` from ``recorded`` (the book's levels as they show, best
        first) now: walk them from the best, past what was taken before."""
        notes = self._taken.setdefault((book, is_bid), {})
        left = qty
        for price, size in recorded:
            if left <= _DUST:
                break
            before = notes.get(price)
            already = before[1] if before is not None and before[0] == size else 0.0
            take = min(size - already, left)
            if take <= 0.0:
                continue
            notes[price] = (size, already + take)
            left -= take
        if not notes:
            del self._taken[(book, is_bid)]

    def __len__(self) -> int:
        return sum(len(n) for n in self._taken.values())
