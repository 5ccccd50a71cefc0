"""A simulated perpetual venue (ADR 0018): fills at its mark, funding on its schedule, margin.

The market state (mark, index, funding rate, next funding time) comes from the feed's PERP_STATE
rows through the engine (``Engine.on_perp_state`` calls ``on_perp_state`` here). The venue keeps
its own account: cash (collateral less what positions cost, plus funding, less fees) and one
position per contract, in tokens.

* Orders: market, or a limit taken as IOC (the venue rests nothing). One arrives, and fills at
  once in full at the mark moved ``perp_spread_bps`` / 2 against it (to 1/10000 of a dollar),
  paying ``taker_fee_bps``; a limit the price is beyond is canceled. Refused: no mark yet, a size
  that is not a whole number of contracts, or a position-increasing order after which the
  account's equity would be below maintenance ("insufficient margin").
* Funding: at each funding time (``next_funding_ns`` of the states, every
  ``funding_interval_s``) a position is paid ``-qty x mark x rate`` at that instant's mark and
  rate, reported once as a ``FundingPayment`` with its own id.
* Margin: a ``MarginStatus`` after each fill and funding, and whenever a new mark moves the
  account into or out of a margin call (equity under maintenance). It does not liquidate.

What this module may not do: answer synchronously, read the engine's ledger, or draw random
numbers (it has none to draw).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from bot.clock import Clock
from bot.config import VenueConfig
from bot.market import MarketState
from bot.model import (
    FundingPayment,
    MarginStatus,
    Order,
    OrderState,
    OrderType,
    PerpContract,
    PerpState,
    VenueKind,
)
from bot.perp.margin import funding_amount, margin_after, margin_status
from connectors.sim.answers import execution, order_update
from connectors.sim.latency import LatencyModel
from connectors.sim.venue import SimOrderVenue

PRICE_TICK = Decimal("0.0001")
_BPS = Decimal(10_000)
ZERO = Decimal(0)
NS = 1_000_000_000


class SimPerp(SimOrderVenue):
    """A simulated perpetual on one token (``contract``)."""

    kind = VenueKind.PERPETUAL

    def __init__(
        self,
        name: str,
        config: VenueConfig,
        contract: PerpContract,
        market: MarketState,
        clock: Clock,
        *,
        collateral_usd: Decimal = ZERO,
        latency: LatencyModel | None = None,
    ) -> None:
        super().__init__(name, config, market, clock, latency)
        self.contract = contract
        self.cash = collateral_usd
        self.position = ZERO
        self.basis = ZERO  # signed USD paid for the position (qty x entry)
        self._trade_no = 0
        self._funded: set[int] = set()  # funding times already paid
        self._scheduled: set[int] = set()
        self._in_call = False

    # ---- the account ---------------------------------------------------------------------------
    def margin(self) -> MarginStatus:
        """The account's margin now, at the last mark (none: at entry)."""
        state = self.market.perps.get(self.contract.instrument)
        mark = state.mark if state is not None else self._entry()
        return margin_status(
            self.name,
            self.cash,
            [(self.position, mark, self.basis)] if self.position else [],
            self.contract.maintenance_margin,
            self._clock.now_ns(),
        )

    def _entry(self) -> Decimal:
        return self.basis / self.position if self.position else ZERO

    # ---- market state --------------------------------------------------------------------------
    def on_perp_state(self, state: PerpState) -> None:
        """A new mark and funding rate: schedule its funding time, and report a margin call
        that begins or ends."""
        if state.instrument != self.contract.instrument:
            return
        due = state.next_funding_ns
        if due > self._clock.now_ns() and due not in self._scheduled:
            self._scheduled.add(due)
            self._clock.schedule(due, lambda: self._fund(due))
        if self.position:
            status = self.margin()
            if status.margin_call != self._in_call:
                self._in_call = status.margin_call
                self._link.answer(status)

    def _fund(self, due: int) -> None:
        self._scheduled.discard(due)
        if due in self._funded:
            return
        self._funded.add(due)
        state = self.market.perps.get(self.contract.instrument)
        if state is None:
            return
        interval = self.contract.funding_interval_s * NS
        following = due + interval
        if following not in self._scheduled:  # funding goes on without a new state row
            self._scheduled.add(following)
            self._clock.schedule(following, lambda: self._fund(following))
        if not self.position:
            return
        amount = funding_amount(self.position, state.mark, state.funding_rate)
        self.cash += amount
        payment = FundingPayment(
            venue=self.name,
            instrument=self.contract.instrument,
            payment_id=f"{self.name}-funding-{due}",
            amount_usd=amount,
            rate=state.funding_rate,
            position=self.position,
            mark=state.mark,
            ts_ns=self._clock.now_ns(),
        )
        self._link.answer(payment, self._status())

    def _status(self) -> MarginStatus:
        status = self.margin()
        self._in_call = status.margin_call
        return status

    # ---- orders --------------------------------------------------------------------------------
    def _arrive(self, order: Order) -> None:
        def refuse(reason: str) -> None:
            self._link.answer(order_update(self.name, self._clock, order, OrderState.REJECTED,
                                           reason=reason))  # fmt: skip

        state = self.market.perps.get(order.instrument)
        if order.instrument != self.contract.instrument or state is None:
            refuse(f"no mark for {order.instrument}")
            return
        if order.qty <= 0 or order.qty % self.contract.contract_size:
            refuse(f"size {order.qty} is not whole contracts of {self.contract.contract_size}")
            return
        half = state.mark * self.config.perp_spread_bps / _BPS / 2
        price = (state.mark + order.side * half).quantize(PRICE_TICK, rounding=ROUND_HALF_UP)
        self._seq += 1
        venue_id = f"{self.name}-{self._seq}"
        accepted = order_update(self.name, self._clock, order, OrderState.ACCEPTED, venue_id)
        limit = order.limit_price if order.order_type is OrderType.LIMIT else None
        if limit is not None and (price - limit) * order.side > 0:
            canceled = order_update(self.name, self._clock, order, OrderState.CANCELED,
                                    venue_id, "limit not reached")  # fmt: skip
            self._link.answer(accepted, canceled)
            return
        delta = order.qty * order.side
        fee = order.qty * price * self.config.taker_fee_bps / _BPS
        increases = abs(self.position + delta) > abs(self.position)
        equity, maintenance = margin_after(
            self.cash, self.position, state.mark, delta, price, fee,
            self.contract.maintenance_margin,
        )  # fmt: skip
        if increases and equity < maintenance:
            refuse(f"insufficient margin: equity {equity} < maintenance {maintenance}")
            return
        self._trade(delta, price)
        self.cash -= fee
        self._trade_no += 1
        fill = execution(self.name, self._trade_no, self._clock, order, order.qty, price,
                         fee_usd=fee)  # fmt: skip
        done = order_update(self.name, self._clock, order, OrderState.FILLED, venue_id)
        self._link.answer(accepted, fill, done, self._status())

    def _trade(self, delta: Decimal, price: Decimal) -> None:
        """Move the position by ``delta`` at ``price``: cash pays for it, the basis follows
        (closing at the average entry)."""
        held = self.position
        self.cash -= delta * price
        if held == 0 or (held > 0) == (delta > 0):
            self.basis += delta * price
        else:
            closing = min(abs(delta), abs(held))
            self.basis -= self.basis * closing / abs(held)
            if abs(delta) > abs(held):
                self.basis = (held + delta) * price
        self.position = held + delta

    def _cancel(self, client_id: str) -> None:
        return None  # nothing rests here
