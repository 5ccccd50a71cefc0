"""The ledger: cash and positions per venue, in-flight mint/redeem requests, and PnL.

Exact Decimal throughout (``bot.ledger.exact``): no float ever enters a balance. Cash is USD per
account, where an account is a venue (broker, exchange, pool wallet) or an issuer (the account
that pays for mints and receives redemptions); USDC is counted at par with USD.

Who calls what (the engine is the only writer; strategies read it through ``LedgerView``):
- ``deposit_cash`` / ``deposit_position`` at start: contributions, not PnL.
- ``apply_fill`` for every fill; idempotent by (venue, trade_id).
- ``track_request`` when a mint/redeem is submitted, ``apply_request_update`` for every issuer
  update; idempotent by (request_id, state) and tolerant of skipped states.
- ``accrue_funding`` on a timer: interest on capital locked in in-flight requests.
- ``apply_funding_payment`` for every perpetual funding payment (``FundingPayment``, ADR 0018):
  its signed amount onto the venue's cash, once per (venue, payment_id), component
  ``perp_funding``.
- ``track_transfer`` when a transfer is submitted, ``apply_transfer_update`` for every answer of
  its venue; idempotent by (transfer_id, state). SENT debits the source (amount + fees, component
  ``transfer_fees``), the amount is in transit (valued at its mark, USD at par) until ARRIVED
  credits the destination; FAILED/REJECTED after SENT returns it (``bot.ledger.transfers``).
- ``equity`` / ``pnl`` / ``snapshot`` for reports; ``version`` says whether anything changed
  since an earlier look (a report may reuse what it derived from the book while it is unchanged).

The ledger performs no I/O, reads no clock (times come from the fills and updates) and never
rejects what a venue says happened: validation of intents is ``bot.risk``'s job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

from bot.ledger.exact import ZERO, exact, from_float, funding_charge
from bot.ledger.positions import Positions
from bot.ledger.reports import InFlightSummary, LedgerSnapshot, PnlBreakdown, VenueBalances
from bot.ledger.requests import STAGE, FundingLock, TrackedRequest
from bot.ledger.transfers import TransferBook
from bot.model import (
    Currency,
    Fill,
    FundingPayment,
    LegRole,
    MintRedeemRequest,
    RequestState,
    RequestUpdate,
    Transfer,
    TransferUpdate,
)

_HEDGE_ROLES = (LegRole.HEDGE, LegRole.UNWIND)


@dataclass(frozen=True, slots=True)
class _Book:
    """What valuation needs from the book, independent of the marks, as of one ``version``:
    the terms ``equity`` and ``pnl`` visit, in the order they visit them, and the cost totals."""

    version: int
    cash: Decimal  # sum of every account's cash
    positions: tuple[tuple[str, Decimal, Decimal], ...]  # (instrument, qty, basis), qty != 0
    requests: tuple[tuple[str, Decimal, Decimal, Decimal], ...]  # (token, owned, basis, receivable)
    transit: tuple[tuple[str, Decimal, Decimal], ...]  # (asset, amount, basis) of sent transfers
    costs: Decimal  # venue fees + gas + issuer fees + funding + transfer fees + perp funding
    realized: Decimal  # realized trading - costs


class Ledger:
    """Balances and PnL of the whole book. Implements ``strategies.base.LedgerView``."""

    def __init__(self) -> None:
        self._cash: dict[str, Decimal] = {}
        self._positions = Positions()
        self._contributions = ZERO
        self._realized_trading = ZERO  # closed quantity at average cost, before costs
        self._venue_fees = ZERO
        self._gas = ZERO
        self._issuer_fees = ZERO
        self._hedge_slippage = ZERO
        self._funding = ZERO
        self._perp_funding = ZERO  # perpetual funding paid (received < 0)
        # inventory carry: the starting positions and their hedge (LegRole.INVENTORY fills),
        # instrument -> (signed qty, cost); valued at the marks it is the ``inventory_carry``
        self._carry: dict[str, tuple[Decimal, Decimal]] = {}
        self._deposited: dict[str, Decimal] = {}
        self._seen_fills: set[tuple[str, str]] = set()
        self._requests: dict[str, TrackedRequest] = {}  # not yet terminal
        self._finished: dict[str, RequestState] = {}  # terminal: later updates are stale
        self._locks: list[FundingLock] = []
        self._transfers = TransferBook(self._cash, self._positions)
        self._version = 0
        self._book: _Book | None = None

    @property
    def version(self) -> int:
        """A counter bumped by every change to the book (deposits, fills, request tracking and
        updates, funding charges): equal versions mean equal balances, positions, requests and
        PnL components. Bumped before the change is made, so a change that raised half-way
        still counts."""
        return self._version

    # -- LedgerView -------------------------------------------------------------------------

    def position(self, venue: str, instrument: str) -> Decimal:
        """Signed quantity of ``instrument`` held at ``venue`` (tokens in flight excluded)."""
        return self._positions.qty(venue, instrument)

    def position_basis(self, venue: str, instrument: str) -> Decimal:
        """The signed USD paid for the position of ``instrument`` at ``venue`` (qty x entry)."""
        return self._positions.basis(venue, instrument)

    def cash(self, venue: str) -> Decimal:
        """USD (USDC at par) at a venue or issuer account."""
        return self._cash.get(venue, ZERO)

    def in_flight(self, token: str) -> list[MintRedeemRequest]:
        """Copies of the non-terminal requests for ``token``, oldest first; ``state`` is the
        furthest stage the ledger has applied (PENDING_SUBMIT until the issuer answers)."""
        return [replace(t.request) for t in self._requests.values() if t.request.token == token]

    def in_flight_view(self, token: str) -> tuple[MintRedeemRequest, ...]:
        """``in_flight`` without the copies, for the checks run on every event and answer (risk,
        exposure): the ledger's own records, to be read and never changed."""
        return tuple(t.request for t in self._requests.values() if t.request.token == token)

    def owned_in_flight(self, token: str) -> Decimal:
        """Tokens of ``token`` in flight that are ours at market risk: a priced mint's, an
        accepted redeem's (``TrackedRequest.owned_tokens``)."""
        total = ZERO
        for t in self._requests.values():
            if t.request.token == token:
                total += t.owned_tokens
        return total

    # -- contributions ----------------------------------------------------------------------

    @property
    def contributions(self) -> Decimal:
        """Capital put in (cash plus positions at their deposit price), the zero of PnL."""
        return self._contributions

    def deposit_cash(self, account: str, amount: Decimal) -> None:
        """Add starting cash to a venue or issuer account (negative = withdrawal)."""
        self._version += 1
        with exact():
            self._cash[account] = self.cash(account) + amount
            self._contributions += amount

    def deposit_position(self, venue: str, instrument: str, qty: Decimal, price: Decimal) -> None:
        """Add a starting position valued at ``price`` (its cost basis and its contribution;
        its later mark-to-market is inventory carry)."""
        self._version += 1
        with exact():
            self._contributions += qty * price
            self._realized_trading += self._positions.trade((venue, instrument), qty, price)
            self._deposited[instrument] = self.deposited(instrument) + qty
            self._add_carry(instrument, qty, price)

    def deposited(self, instrument: str) -> Decimal:
        """The starting quantity of ``instrument`` deposited, over every venue."""
        return self._deposited.get(instrument, ZERO)

    def _add_carry(self, instrument: str, qty: Decimal, price: Decimal) -> None:
        held, cost = self._carry.get(instrument, (ZERO, ZERO))
        self._carry[instrument] = (held + qty, cost + qty * price)

    # -- fills ------------------------------------------------------------------------------

    def apply_fill(self, fill: Fill, reference_price: float = 0.0) -> bool:
        """Apply one execution; False (and no change) if (venue, trade_id) was applied before.

        Position moves by side x qty; the venue's cash by -(side x qty x price) - fee - gas.
        ``reference_price`` (the order's fair value when decided) measures hedge slippage for
        HEDGE and UNWIND fills: side x (price - reference) x qty, positive = cost.
        """
        key = (fill.venue, fill.trade_id)
        if key in self._seen_fills:
            return False
        if fill.qty <= 0 or fill.price < 0:
            raise ValueError(
                f"fill {fill.venue}/{fill.trade_id}: qty {fill.qty} price {fill.price}"
            )
        self._version += 1
        with exact():
            dq = fill.qty * fill.side
            self._realized_trading += self._positions.trade(
                (fill.venue, fill.instrument), dq, fill.price
            )
            self._cash[fill.venue] = self.cash(fill.venue) - dq * fill.price - fill.fee_usd
            self._cash[fill.venue] -= fill.gas_usd
            self._venue_fees += fill.fee_usd
            self._gas += fill.gas_usd
            if fill.role in _HEDGE_ROLES and reference_price > 0:
                self._hedge_slippage += dq * (fill.price - from_float(reference_price))
            elif fill.role is LegRole.INVENTORY:
                self._add_carry(fill.instrument, dq, fill.price)
        self._seen_fills.add(key)
        return True

    def charge_gas(self, venue: str, gas_id: str, gas_usd: Decimal) -> bool:
        """Charge gas paid without a fill (a reverted transaction, a range order's mint or
        withdrawal) to ``venue``'s cash, component ``gas``; False (and no change) if ``gas_id``
        was charged before."""
        return self._charge(venue, f"gas:{gas_id}", gas_usd, gas=True)

    def charge_fee(self, venue: str, fee_id: str, amount_usd: Decimal) -> bool:
        """Charge a fee the venue took apart from any fill (``VenueFee``) to its cash, component
        ``venue_fees``; False (and no change) if that fee was charged before."""
        return self._charge(venue, f"fee:{fee_id}", amount_usd, gas=False)

    def _charge(self, venue: str, key_id: str, usd: Decimal, *, gas: bool) -> bool:
        """A cost with no fill: off ``venue``'s cash once per ``key_id``, into ``gas`` or
        ``venue_fees``."""
        key = (venue, key_id)
        if key in self._seen_fills:
            return False
        self._version += 1
        with exact():
            self._cash[venue] = self.cash(venue) - usd
            if gas:
                self._gas += usd
            else:
                self._venue_fees += usd
        self._seen_fills.add(key)
        return True

    def apply_funding_payment(self, payment: FundingPayment) -> bool:
        """Book a perpetual funding payment: ``amount_usd`` (received > 0) onto the venue's
        cash, component ``perp_funding`` (paid > 0); False (and no change) if that
        (venue, payment_id) was booked before."""
        key = (payment.venue, f"funding:{payment.payment_id}")
        if key in self._seen_fills:
            return False
        self._version += 1
        with exact():
            self._cash[payment.venue] = self.cash(payment.venue) + payment.amount_usd
            self._perp_funding -= payment.amount_usd
        self._seen_fills.add(key)
        return True

    # -- mint / redeem ----------------------------------------------------------------------

    def track_request(
        self, request: MintRedeemRequest, venue: str, cash_account: str | None = None
    ) -> bool:
        """Start tracking a submitted request (no balance moves). ``venue``: where minted tokens
        will land, or where redeemed tokens are taken from; ``cash_account``: the account that
        pays for a mint or is paid for a redeem (default: the issuer's). False if already known."""
        rid = request.request_id
        if rid in self._requests or rid in self._finished:
            return False
        copy = replace(
            request, state=RequestState.PENDING_SUBMIT, price=ZERO, fee_usd=ZERO, reason=""
        )
        self._version += 1
        self._requests[rid] = TrackedRequest(copy, venue, cash_account or request.issuer)
        return True

    def apply_request_update(
        self,
        request: MintRedeemRequest,
        update: RequestUpdate,
        venue: str,
        cash_account: str | None = None,
    ) -> bool:
        """Apply an issuer update; False (and no change) if it is stale or a duplicate.

        MINT: PRICED debits the issuer account price x qty + fee and the tokens are in flight;
        SETTLED credits them to ``venue``. REDEEM: ACCEPTED takes the tokens from ``venue`` (in
        flight to the issuer); PRICED makes price x qty - fee receivable; SETTLED credits it to
        the issuer account. Skipped states are applied in order (a SETTLED mint that was never
        seen PRICED is priced first). REJECTED/CANCELED returns whatever is in flight, refunds
        issuer fees and undoes a priced redeem's PnL. Price and fee come from the update when
        it carries a price, else from ``request``. ``venue`` and ``cash_account`` (default: the
        issuer's account) are recorded on first sight and ignored afterwards. UNKNOWN and PENDING_SUBMIT only start tracking.
        """
        rid = request.request_id
        if update.request_id != rid:
            raise ValueError(f"update for {update.request_id} applied to request {rid}")
        if rid in self._finished:
            return False
        if STAGE[update.state] == 0:
            return self.track_request(request, venue, cash_account)
        self.track_request(request, venue, cash_account)
        tracked = self._requests[rid]
        if STAGE[update.state] <= tracked.stage:
            return False
        price, fee = (
            (update.price, update.fee_usd) if update.price > 0 else (request.price, request.fee_usd)
        )
        terminal_failure = update.state in (RequestState.REJECTED, RequestState.CANCELED)
        needs_price = tracked.stage < STAGE[RequestState.PRICED] and not terminal_failure
        if needs_price and update.state is not RequestState.ACCEPTED and price <= 0:
            raise ValueError(f"request {rid}: {update.state} without a price")
        self._version += 1
        with exact():
            if terminal_failure:
                self._unwind(tracked, update)
            else:
                for step in (RequestState.ACCEPTED, RequestState.PRICED, RequestState.SETTLED):
                    if tracked.stage < STAGE[step] <= STAGE[update.state]:
                        self._advance(tracked, step, update.ts_ns, price, fee)
        if tracked.request.state.is_terminal:
            del self._requests[rid]
            self._finished[rid] = tracked.request.state
        return True

    def _advance(
        self, t: TrackedRequest, step: RequestState, ts_ns: int, price: Decimal, fee: Decimal
    ) -> None:
        req = t.request
        key = (t.venue, req.token)
        if step is RequestState.ACCEPTED and not t.is_mint:
            t.tokens = req.qty
            t.basis = self._positions.release(key, req.qty)
            self._lock(t, t.basis, ts_ns)
        elif step is RequestState.PRICED:
            req.price, req.fee_usd, req.priced_ns = price, fee, ts_ns
            self._issuer_fees += fee
            if t.is_mint:
                t.tokens, t.basis = req.qty, price * req.qty
                t.cash = t.basis + fee
                self._cash[t.cash_account] = self.cash(t.cash_account) - t.cash
            else:
                self._realized_trading += price * req.qty - t.basis
                t.cash = price * req.qty - fee
            self._lock(t, t.cash, ts_ns)
        elif step is RequestState.SETTLED:
            req.settled_ns = ts_ns
            if t.is_mint:
                self._realized_trading += self._positions.receive(key, t.tokens, t.basis)
            else:
                self._cash[t.cash_account] = self.cash(t.cash_account) + t.cash
            self._lock(t, None, ts_ns)
        req.state = step

    def _unwind(self, t: TrackedRequest, update: RequestUpdate) -> None:
        req = t.request
        priced = t.stage >= STAGE[RequestState.PRICED]
        if priced:
            self._issuer_fees -= req.fee_usd
        if t.is_mint and priced:
            self._cash[t.cash_account] = self.cash(t.cash_account) + t.cash
        elif not t.is_mint and t.stage >= STAGE[RequestState.ACCEPTED]:
            if priced:
                self._realized_trading -= req.price * req.qty - t.basis
            key = (t.venue, req.token)
            self._realized_trading += self._positions.receive(key, t.tokens, t.basis)
        self._lock(t, None, update.ts_ns)
        req.state, req.reason = update.state, update.reason

    def _lock(self, t: TrackedRequest, notional: Decimal | None, ts_ns: int) -> None:
        """End the request's current funding lock at ``ts_ns``; open one at ``notional`` if it
        is positive (a redeem whose fee exceeds its proceeds locks nothing: we owe, not lend)."""
        if t.lock is not None:
            t.lock.end_ns = ts_ns
            t.lock = None
        if notional is not None and notional > 0:
            t.lock = FundingLock(t.cash_account, notional, ts_ns)
            self._locks.append(t.lock)

    # -- transfers --------------------------------------------------------------------------

    def open_transfers(self) -> list[Transfer]:
        """Copies of the non-terminal transfers, oldest first; ``state`` is the furthest stage
        the ledger has applied (PENDING_SUBMIT until the venue says it left)."""
        return self._transfers.copies()

    def in_transit(self, asset: str) -> Decimal:
        """How much of ``asset`` (a token symbol, or "USD") has left one of our accounts and not
        yet arrived at another: ours, at no venue."""
        total = ZERO
        with exact():
            for t in self._transfers.open:
                if t.transfer.asset == asset:
                    total += t.in_transit
        return total

    def available(self, account: str, asset: str) -> Decimal:
        """What ``account`` holds of ``asset`` ("USD": its cash; a token: its position) less
        what its transfers not yet sent will take (amount and fees)."""
        held = self.cash(account) if asset == Currency.USD else self.position(account, asset)
        with exact():
            for t in self._transfers.open:
                held -= t.held_back(account, asset)
        return held

    def track_transfer(self, transfer: Transfer) -> bool:
        """Start tracking a submitted transfer (no balance moves). False if already known."""
        if self._transfers.knows(transfer.transfer_id):
            return False
        self._version += 1
        self._transfers.track(transfer)
        return True

    def apply_transfer_update(self, transfer: Transfer, update: TransferUpdate) -> bool:
        """Apply a transfer venue's answer; False (and no change) if stale or a duplicate.

        SENT debits the source: USD amount + ``fee_usd`` from its cash; tokens: amount +
        ``fee_tokens`` from its position (the amount keeps its cost basis in transit, the fee
        tokens' basis is a cost) and ``fee_usd`` from its cash. ARRIVED credits the amount to the
        destination; FAILED, or REJECTED after SENT, returns it to the source. A later state
        reached without SENT seen applies SENT first with the update's fees; REJECTED before
        SENT moves nothing. Fees are component ``transfer_fees``.
        """
        tid = transfer.transfer_id
        if update.transfer_id != tid:
            raise ValueError(f"update for {update.transfer_id} applied to transfer {tid}")
        if not self._transfers.is_news(tid, update):
            return False
        self.track_transfer(transfer)
        self._version += 1
        with exact():
            self._realized_trading += self._transfers.apply(tid, update)
        return True

    # -- funding ----------------------------------------------------------------------------

    def accrue_funding(self, now_ns: int, rate_apy: Decimal | float) -> Decimal:
        """Charge funding on locked capital up to ``now_ns``; returns the amount charged.

        Locked capital: the cash paid for a priced mint until it settles; the cost basis of
        redeemed tokens until priced, then the receivable until settled. Each lock accrues
        notional x rate x dt / 365 days from where the previous call left it (a lock that ended
        between calls is charged up to its end), each charge rounded to ``FUNDING_QUANTUM``,
        and debited from the cash of the request's issuer account: that account funds the
        primary market. Component ``funding``. A float rate is read as its shortest repr.

        Called on every heartbeat, so a call with nothing to charge (no locks, or every lock
        already charged up to ``now_ns``) returns ZERO without touching the book or ``version``.
        """
        locks = self._locks
        if not locks:
            return ZERO
        for lock in locks:
            if _funded_upto(lock, now_ns) > lock.funded_to_ns:
                break
        else:  # nothing to charge: only forget the locks that are done
            if any(lock.done for lock in locks):
                self._locks = [lock for lock in locks if not lock.done]
            return ZERO
        rate = rate_apy if isinstance(rate_apy, Decimal) else from_float(rate_apy)
        charged = ZERO
        self._version += 1
        with exact():
            for lock in locks:
                upto = _funded_upto(lock, now_ns)
                if upto <= lock.funded_to_ns:
                    continue
                charge = funding_charge(lock.notional, rate, upto - lock.funded_to_ns)
                lock.funded_to_ns = upto
                self._cash[lock.account] = self.cash(lock.account) - charge
                self._funding += charge
                charged += charge
        self._locks = [lock for lock in locks if not lock.done]
        return charged

    # -- valuation --------------------------------------------------------------------------

    def equity(self, marks: Mapping[str, Decimal]) -> Decimal:
        """Cash + positions at marks + in-flight tokens at marks + in-flight receivables.

        ``marks`` maps instrument -> USD price; one is needed for every non-zero holding
        (``ValueError`` names the first one missing).
        """
        book = self._current_book()
        with exact():
            return _value(book, marks)[0]

    def pnl(self, marks: Mapping[str, Decimal]) -> PnlBreakdown:
        """PnL at ``marks`` with its realized/unrealized split and cost components."""
        book = self._current_book()
        with exact():
            equity, unrealized = _value(book, marks)
            total = equity - self._contributions
            carry = ZERO
            for instrument, (held, cost) in self._carry.items():
                carry += held * _mark(marks, instrument) - cost if held else -cost
            return PnlBreakdown(
                total=total,
                realized=book.realized,
                unrealized=unrealized,
                spread_captured=total - carry + book.costs + self._hedge_slippage,
                inventory_carry=carry,
                venue_fees=self._venue_fees,
                gas=self._gas,
                issuer_fees=self._issuer_fees,
                hedge_slippage=self._hedge_slippage,
                funding=self._funding,
                transfer_fees=self._transfers.fees,
                perp_funding=self._perp_funding,
            )

    def _current_book(self) -> _Book:
        """The mark-independent valuation terms, rebuilt only when ``version`` has moved."""
        book = self._book
        if book is not None and book.version == self._version:
            return book
        with exact():
            costs = (
                self._venue_fees
                + self._gas
                + self._issuer_fees
                + self._funding
                + self._transfers.fees
                + self._perp_funding
            )
            book = _Book(
                version=self._version,
                cash=sum(self._cash.values(), ZERO),
                positions=tuple(
                    (instrument, qty, basis)
                    for (_, instrument), qty, basis in self._positions.items()
                    if qty
                ),
                requests=tuple(
                    (t.request.token, t.owned_tokens, t.owned_basis, t.receivable)
                    for t in self._requests.values()
                ),
                transit=tuple(
                    (t.transfer.asset, t.in_transit, t.basis)
                    for t in self._transfers.open
                    if t.in_transit
                ),
                costs=costs,
                realized=self._realized_trading - costs,
            )
        self._book = book
        return book

    def snapshot(self) -> LedgerSnapshot:
        """Cash and non-zero positions per venue/account; in-flight mints and redeems per token;
        transfers in transit per asset."""
        venues: dict[str, VenueBalances] = {}
        for account, cash in self._cash.items():
            venues[account] = VenueBalances(cash, {})
        for (venue, instrument), qty, _ in self._positions.items():
            if qty:
                venues.setdefault(venue, VenueBalances(ZERO, {})).positions[instrument] = qty
        mints: dict[str, InFlightSummary] = {}
        redeems: dict[str, InFlightSummary] = {}
        with exact():
            for t in self._requests.values():
                book = mints if t.is_mint else redeems
                token = t.request.token
                prev = book.get(token, InFlightSummary(0, ZERO, ZERO))
                cash = t.cash if t.stage >= STAGE[RequestState.PRICED] else ZERO
                book[token] = InFlightSummary(
                    prev.count + 1, prev.qty + t.request.qty, prev.cash + cash
                )
            in_transit: dict[str, Decimal] = {}
            for tt in self._transfers.open:
                if tt.in_transit:
                    asset = tt.transfer.asset
                    in_transit[asset] = in_transit.get(asset, ZERO) + tt.in_transit
        return LedgerSnapshot(venues, mints, redeems, in_transit)


def _funded_upto(lock: FundingLock, now_ns: int) -> int:
    """How far ``lock`` should be charged at ``now_ns``: now, or its end if it ended before."""
    return now_ns if lock.end_ns is None else min(lock.end_ns, now_ns)


def _value(book: _Book, marks: Mapping[str, Decimal]) -> tuple[Decimal, Decimal]:
    """(equity, unrealized) of ``book`` at ``marks``; call inside ``exact()``.

    Equity: cash + positions at marks + in-flight tokens at marks + in-flight receivables +
    transfers in transit (tokens at marks, USD at par). Unrealized: positions and in-flight
    tokens (requests and transfers) at marks minus their cost basis. Each sum adds its terms in
    the book's order (positions, then requests, then transfers).
    """
    total = book.cash
    unrealized = ZERO
    for instrument, qty, basis in book.positions:
        value = qty * _mark(marks, instrument)
        total += value
        unrealized += value - basis
    for token, owned, basis, receivable in book.requests:
        if owned:
            value = owned * _mark(marks, token)
            total += value
            unrealized += value - basis
        total += receivable
    for asset, amount, basis in book.transit:
        if asset == Currency.USD:
            total += amount
        else:
            value = amount * _mark(marks, asset)
            total += value
            unrealized += value - basis
    return total, unrealized


def _mark(marks: Mapping[str, Decimal], instrument: str) -> Decimal:
    mark = marks.get(instrument)
    if mark is None:
        raise ValueError(f"no mark for {instrument}")
    return mark
