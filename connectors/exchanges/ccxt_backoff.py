"""Exponential back-off for the ccxt connectors' polling and reconnects.

The first wait is ``first_s``; each ``next_delay`` doubles it up to ``max_s``; ``reset`` starts
over (something changed, or a connection came back). What this module may not do: sleep or read a
clock; the caller waits.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    first_s: float
    max_s: float
    factor: float = 2.0
    _next_s: float = field(init=False)

    def __post_init__(self) -> None:
        if not 0 < self.first_s <= self.max_s or self.factor < 1:
            raise ValueError(
                f"back-off needs 0 < first_s <= max_s and factor >= 1, got "
                f"{self.first_s}, {self.max_s}, {self.factor}"
            )
        self._next_s = self.first_s

    def next_delay(self) -> float:
        """The wait before the next attempt; the one after is longer, up to ``max_s``."""
        delay = self._next_s
        self._next_s = min(self._next_s * self.factor, self.max_s)
        return delay

    def reset(self) -> None:
        self._next_s = self.first_s
