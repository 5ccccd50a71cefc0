"""The orders the ccxt exchange connector follows, from the moment one is sent until the venue
has ended it and all its fills are reported, and what the venue's answers mean for them.

Each order moves ``sending`` -> ``working`` (the venue has it; its id is known) or ``unknown`` (the
answer was lost; it is asked for by client id) -> ``done``. A trade is new to an order until its
venue trade id has been reported once; an order the venue ended is done once the fills reported
add up to what the venue says it filled.

What this module may not do: send a request, tell the engine, or read a clock (times are given).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bot.model import Fill, Order, OrderState
from bot.money import ZERO
from connectors.exchanges.ccxt_orders import OrderTerms, end_of_order, filled_amount
from connectors.exchanges.symbols import TokenMarket

NS_PER_S = 1_000_000_000
ENDED = frozenset({"closed", "canceled", "expired", "rejected"})  # ccxt's order statuses

Ending = tuple[OrderState | None, str]
"""How an order ended: the state to report (None: its fills told, it filled in full) and why."""


@dataclass(frozen=True, slots=True)
class OrderPolling:
    """How the connector follows working orders."""

    first_s: float = 0.5  # the wait after a round in which something changed
    max_s: float = 8.0  # the longest wait while nothing changes
    unknown_grace_s: float = 30.0  # a lost order still unknown to the venue after this never
    # reached it
    history_slack_s: float = 300.0  # trades and closed orders are read from this long before the
    # oldest working order was sent (the venue's clock may differ from ours)
    request_timeout_s: float = 10.0


@dataclass(slots=True, eq=False)
class WorkingOrder:
    """One of our orders as the connector follows it."""

    order: Order  # the executor's order (read only here)
    market: TokenMarket
    terms: OrderTerms
    sent_ns: int
    phase: str = "sending"  # sending -> working | unknown -> done
    venue_id: str = ""
    lost: str = ""  # why the outcome is unknown
    lost_ns: int = 0
    trades: set[str] = field(default_factory=set)  # venue trade ids reported
    filled: Decimal = ZERO  # what the reported fills add up to
    venue_order: Mapping[str, Any] | None = None  # the venue's last view of it
    cancel_wanted: bool = False
    cancel_in_flight: bool = False

    @property
    def client_id(self) -> str:
        return self.order.client_id

    def behind(self) -> bool:
        """The venue filled more than the fills reported so far."""
        return self.venue_order is not None and filled_amount(self.venue_order) > self.filled

    def ending(self) -> Ending | None:
        """How the order ended, once the venue ended it and all its fills are in (else None)."""
        view = self.venue_order
        if view is None or view.get("status") not in ENDED or self.behind():
            return None
        return end_of_order(view, self.terms.amount, self.order) or (None, "")


class WorkingOrders:
    """Our orders at one venue until each is done, by client id and by the venue's order id."""

    def __init__(self) -> None:
        self._by_client: dict[str, WorkingOrder] = {}
        self._by_venue: dict[str, WorkingOrder] = {}

    def __contains__(self, client_id: str) -> bool:
        return client_id in self._by_client

    def __iter__(self) -> Iterator[WorkingOrder]:
        return iter(list(self._by_client.values()))

    def get(self, client_id: str) -> WorkingOrder | None:
        return self._by_client.get(client_id)

    def add(self, working: WorkingOrder) -> None:
        self._by_client[working.client_id] = working

    def follow(self, working: WorkingOrder, venue_id: str) -> None:
        working.phase, working.venue_id = "working", venue_id
        self._by_venue[venue_id] = working

    def lose(self, working: WorkingOrder, why: str, now_ns: int) -> None:
        working.phase, working.lost, working.lost_ns = "unknown", why, now_ns

    def finish(self, working: WorkingOrder) -> bool:
        """Done with ``working``; False if it was done already."""
        if working.phase == "done":
            return False
        working.phase = "done"
        self._by_client.pop(working.client_id, None)
        self._by_venue.pop(working.venue_id, None)
        return True

    def has_work(self) -> bool:
        """Something to poll for: an order the venue works, or one whose answer was lost."""
        return any(w.phase in ("working", "unknown") for w in self._by_client.values())

    def lost(self) -> list[WorkingOrder]:
        return [w for w in self._by_client.values() if w.phase == "unknown"]

    def by_symbol(self) -> dict[str, list[WorkingOrder]]:
        """The orders the venue works, by the ccxt symbol of their market."""
        groups: dict[str, list[WorkingOrder]] = {}
        for working in self._by_client.values():
            if working.phase == "working":
                groups.setdefault(working.market.symbol, []).append(working)
        return groups

    def new_trades(self, trades: list[dict[str, Any]]) -> list[tuple[WorkingOrder, dict[str, Any]]]:
        """The trades of our orders not reported yet, oldest first."""
        fresh = [
            (self._by_venue[t["order"]], t)
            for t in trades
            if t.get("order") in self._by_venue
            and str(t["id"]) not in self._by_venue[t["order"]].trades
        ]
        fresh.sort(key=lambda pair: (pair[1].get("timestamp") or 0, str(pair[1]["id"])))
        return fresh

    @staticmethod
    def reported(working: WorkingOrder, fill: Fill) -> bool:
        """Count ``fill`` as reported; False if its trade was reported before."""
        if fill.trade_id in working.trades:
            return False
        working.trades.add(fill.trade_id)
        working.filled += fill.qty
        return True


def since_ms(group: list[WorkingOrder], slack_s: float) -> int:
    """From when (ms since the epoch) to read trades and closed orders for ``group``."""
    oldest = min(w.sent_ns for w in group)
    return max(0, oldest - int(slack_s * NS_PER_S)) // 1_000_000
