"""A simulated transfer network: bank wires, USDC ramps and token withdrawals between our own
accounts, answering on the simulated clock like any simulated venue.

Routes come from the config (``[transfers.ROUTE]``, ``bot.config.TransferRouteConfig``):

* ``bank_wire``: USD between broker, issuer and exchange accounts. A wire leaves (SENT) on a
  business day (an NYSE trading day, ``bot.sessions``) between ``opens`` and ``cutoff`` New York
  time; one submitted after the cut-off or on any other day leaves at ``opens`` on the next
  business day. It arrives after ``latency_s`` of business time (seconds between ``opens`` and
  ``cutoff`` of business days), so a wire sent late in the day lands the next business morning.
* ``usdc_ramp``: USD to or from the wallet's USDC, any day and hour; arrives ``latency_s`` later.
* ``token_withdrawal``: tokens between an exchange and the wallet, any time; arrives after
  ``latency_s`` (the confirmations).

A latency is normal(``latency_s``, ``latency_jitter_s``) clipped at 0 (drawn from the seeded rng
only when the jitter is > 0). With probability ``fail_rate`` (one draw per transfer, only when
> 0) a transfer FAILs at its arrival time instead: the amount goes back to the source, the fees
stay paid. Fees are the route's (``TransferRouteConfig.fees``), charged at SENT.

A transfer leaves only if the source covers amount and fees at that instant: the network reads
our ledger as the venues' balances (``Balances``), less what it has sent and the engine has not
heard of yet; otherwise it is REJECTED. Reasons start with a code: UNKNOWN_ROUTE, WRONG_WAY,
WRONG_ASSET, MIN_AMOUNT, INSUFFICIENT_FUNDS; a failure says RETURNED. Requests reach the network
after the route's entry leg and answers the engine after its response leg (``VenueLink``).

What this module may not do: answer synchronously, change the ledger, read the wall clock.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from bot.clock import NS_PER_SECOND, Clock
from bot.config import TransferRouteConfig
from bot.ledger import debits
from bot.model import Currency, Transfer, TransferState, TransferUpdate
from bot.money import ZERO
from bot.sessions import EASTERN, SessionCalendar, eastern_ns
from connectors.base import VenueEvents
from connectors.sim.latency import LatencyModel, VenueLink

_ONE_DAY = timedelta(days=1)


class Balances(Protocol):
    """What the network reads of an account (the ledger in a backtest)."""

    def cash(self, venue: str) -> Decimal: ...

    def position(self, venue: str, instrument: str) -> Decimal: ...


class SimTransferNetwork:
    """Every configured route, each with its own request and answer legs."""

    name = "transfers"

    def __init__(
        self,
        routes: Mapping[str, TransferRouteConfig],
        clock: Clock,
        calendar: SessionCalendar,
        rng: random.Random,
        balances: Balances,
    ) -> None:
        self.routes = dict(routes)
        self._clock = clock
        self._calendar = calendar
        self._rng = rng
        self._balances = balances
        # no jitter on the legs: an answer reaches the engine exactly response_ns after it left
        self._links = {
            name: VenueLink(clock, LatencyModel(r.entry_latency_ms, r.response_latency_ms))
            for name, r in self.routes.items()
        }
        self._unrouted = VenueLink(clock, LatencyModel(50.0, 50.0))  # answers unknown routes
        self._leaving: dict[tuple[str, str], Decimal] = {}  # sent, not yet heard by the engine

    # ---- TransferVenue ---------------------------------------------------------------------

    def bind(self, events: VenueEvents) -> None:
        for link in (*self._links.values(), self._unrouted):
            link.bind(events)

    def submit_transfer(self, transfer: Transfer) -> None:
        link = self._links.get(transfer.route, self._unrouted)
        link.at_venue(lambda: self._arrive(transfer, link))

    # ---- the network -----------------------------------------------------------------------

    def _arrive(self, t: Transfer, link: VenueLink) -> None:
        route = self.routes.get(t.route)
        reason = ""
        if route is None:
            reason = f"UNKNOWN_ROUTE: no route '{t.route}'"
        elif not route.connects(t.source, t.destination):
            reason = f"WRONG_WAY: {t.route} does not go from {t.source} to {t.destination}"
        elif t.asset not in route.assets:
            reason = f"WRONG_ASSET: {t.route} moves {', '.join(route.assets)}, not {t.asset}"
        elif t.amount <= 0 or t.amount < route.min_amount:
            reason = f"MIN_AMOUNT: {t.amount} below {route.min_amount}"
        if route is None or reason:
            self._answer(link, t, TransferState.REJECTED, reason=reason)
            return
        now = self._clock.now_ns()
        leaves = self._wire_leaves_at(route, now) if route.kind == "bank_wire" else now
        self._clock.schedule(leaves, lambda: self._leave(t, route, link))

    def _leave(self, t: Transfer, route: TransferRouteConfig, link: VenueLink) -> None:
        fee_usd, fee_tokens = route.fees(t.asset, t.amount)
        takes = {
            (t.source, asset): amount
            for asset, amount in debits(t.asset, t.amount, fee_usd, fee_tokens).items()
        }
        for (account, asset), amount in takes.items():
            if self._held(account, asset) < amount:
                reason = f"INSUFFICIENT_FUNDS: {account} cannot pay {amount} {asset}"
                self._answer(link, t, TransferState.REJECTED, reason=reason)
                return
        self._answer(link, t, TransferState.SENT, fee_usd, fee_tokens)
        for key, amount in takes.items():
            self._leaving[key] = self._leaving.get(key, ZERO) + amount
        heard_at = self._clock.now_ns() + link.latency.response_ns()
        self._clock.schedule(heard_at, lambda: self._heard(takes))

        delay_s = route.latency_s
        if route.latency_jitter_s > 0:
            delay_s = max(0.0, self._rng.gauss(route.latency_s, route.latency_jitter_s))
        fails = route.fail_rate > 0 and self._rng.random() < route.fail_rate
        now = self._clock.now_ns()
        if route.kind == "bank_wire":
            arrives = self._business_add(route, now, delay_s)
        else:
            arrives = now + round(delay_s * NS_PER_SECOND)
        state = TransferState.FAILED if fails else TransferState.ARRIVED
        reason = f"RETURNED: {t.route} sent it back" if fails else ""
        self._clock.schedule(arrives, lambda: self._answer(link, t, state, reason=reason))

    def _held(self, account: str, asset: str) -> Decimal:
        if asset == Currency.USD:
            held = self._balances.cash(account)
        else:
            held = self._balances.position(account, asset)
        return held - self._leaving.get((account, asset), ZERO)

    def _heard(self, takes: dict[tuple[str, str], Decimal]) -> None:
        """The engine has applied a SENT: the ledger's balances show it now."""
        for key, amount in takes.items():
            self._leaving[key] -= amount

    def _answer(
        self,
        link: VenueLink,
        t: Transfer,
        state: TransferState,
        fee_usd: Decimal = ZERO,
        fee_tokens: Decimal = ZERO,
        reason: str = "",
    ) -> None:
        now = self._clock.now_ns()
        link.answer(TransferUpdate(t.route, t.transfer_id, state, now, fee_usd, fee_tokens, reason))

    # ---- business time (bank wires) --------------------------------------------------------

    def _business_hours(self, route: TransferRouteConfig, day: date) -> tuple[int, int] | None:
        if not self._calendar.is_trading_day(day):
            return None
        return eastern_ns(day, route.opens), eastern_ns(day, route.cutoff)

    def _wire_leaves_at(self, route: TransferRouteConfig, ts_ns: int) -> int:
        """Now if within business hours, else the next business day's opening."""
        day = _eastern_date(ts_ns)
        while True:
            hours = self._business_hours(route, day)
            if hours is not None and ts_ns < hours[1]:
                return max(ts_ns, hours[0])
            day += _ONE_DAY

    def _business_add(self, route: TransferRouteConfig, ts_ns: int, seconds: float) -> int:
        """``ts_ns`` plus ``seconds`` counted only inside business hours."""
        remaining = round(seconds * NS_PER_SECOND)
        day = _eastern_date(ts_ns)
        while True:
            hours = self._business_hours(route, day)
            if hours is not None:
                start = max(ts_ns, hours[0])
                if start + remaining <= hours[1]:
                    return start + remaining
                remaining -= max(0, hours[1] - start)
            day += _ONE_DAY


def _eastern_date(ts_ns: int) -> date:
    return datetime.fromtimestamp(ts_ns // NS_PER_SECOND, EASTERN).date()
