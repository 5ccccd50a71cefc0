"""Withdrawals from an exchange account through ccxt, as pegbot's ``TransferVenue``; and the
account's deposit address and deposits, read for whoever sends one in.

A transfer whose route is one of ``routes`` and whose source is this exchange account is a
withdrawal: ``submit_transfer`` never blocks; a task calls ccxt's ``withdraw`` to the route's
withdrawal key (Kraken's ``key``: an address approved on the account, ``address`` checked against
it when given) and the answers come through ``VenueEvents.on_transfer_update``, as the simulated
network's do (connectors/sim/transfers.py):

- REJECTED with one line when pegbot refuses it (no such route, not from this account, another
  asset, not connected), or the venue does (``insufficient funds: EFunding:Insufficient funds``);
- SENT, with the fee the venue charged, once ``fetch_withdrawals`` lists it (the withdraw answer
  carries only the venue's reference id);
- ARRIVED when the venue says it succeeded (``ok``; its transaction id is logged: the venue's
  view, not a receipt at the destination), FAILED when it says it failed (the venue returns the
  funds).

An unknown outcome (a timeout, a lost connection) is not a rejection. Kraken takes no client id
for a withdrawal, so the transfer is looked for among the withdrawals listed since it was asked
for: one of the same asset and amount not claimed by another transfer. Not there after
``unknown_grace_s``, it is REJECTED saying so. Following polls ``fetch_withdrawals`` per asset with
back-off, only while withdrawals are followed.

A deposit into this account is sent by its source (the wallet): ``deposit_address(asset)`` says
where to, ``deposits(asset)`` what arrived. Fees: a token's withdrawal fee is ``fee_tokens``, a
USD one ``fee_usd``.

What this module may not do: send anything but withdrawals, block the caller, answer a transfer
twice in one state, or put a secret in a log line, a reason or a repr.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import SecretStr

from bot.clock import Clock
from bot.logging import get_logger
from bot.model import Currency, Transfer, TransferState, TransferUpdate
from bot.money import ZERO, to_decimal
from connectors.base import VenueEvents
from connectors.exchanges.ccxt_backoff import Backoff
from connectors.exchanges.ccxt_session import CcxtSession, VenueUnavailableError
from connectors.exchanges.symbols import UnknownSymbolError, resolve_token_market
from connectors.exchanges.venues import venue_quirks

log = get_logger("pegbot.ccxt")

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class WithdrawalRoute:
    """Where a route's withdrawals go: ``asset`` (pegbot's: ``AAPLx``, ``USD``) to the venue's
    withdrawal key ``key``; ``address``, when given, is checked by the venue against the key's."""

    asset: str
    key: str
    address: str | None = None


@dataclass(frozen=True, slots=True)
class TransferPolling:
    first_s: float = 2.0
    max_s: float = 60.0
    unknown_grace_s: float = 120.0
    history_slack_s: float = 300.0
    request_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class DepositAddress:
    asset: str
    address: str
    tag: str | None  # a memo the venue needs with the address (None: none)


@dataclass(frozen=True, slots=True)
class Movement:
    """A deposit or withdrawal as the venue lists it (amounts exact, fee in the asset)."""

    refid: str
    asset: str
    amount: Decimal
    fee: Decimal
    status: str  # ccxt's: pending, ok, failed, canceled
    txid: str | None
    timestamp_ms: int | None


@dataclass(slots=True, eq=False)
class _Withdrawal:
    transfer: Transfer
    route: WithdrawalRoute
    code: str
    asked_ms: int
    refid: str = ""
    lost_ns: int = 0  # the withdraw's answer was lost at this time (0: it was not)
    state: TransferState = TransferState.PENDING_SUBMIT
    told: set[TransferState] = field(default_factory=set)


class CcxtTransfers:
    """Withdrawals of exchange account ``account`` (pegbot's venue name) on ``ccxt_id`` by the
    routes in ``routes`` (route name -> ``WithdrawalRoute``); ``tokens`` maps pegbot's token
    symbols to their underlying (how the venue's currency code is found), ``quote`` is the cash
    currency (pegbot's ``USD``)."""

    def __init__(
        self,
        name: str,
        ccxt_id: str,
        *,
        account: str,
        routes: Mapping[str, WithdrawalRoute],
        tokens: Mapping[str, str],
        quote: str,
        clock: Clock,
        api_key: SecretStr | str | None = None,
        secret: SecretStr | str | None = None,
        base_url: str | None = None,
        polling: TransferPolling | None = None,
        client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.name = name
        self.account = account
        self.routes = dict(routes)
        self.quirks = venue_quirks(ccxt_id)
        self.polling = polling or TransferPolling()
        self._tokens = dict(tokens)
        self._quote = quote
        self._clock = clock
        self._session = CcxtSession(
            name, ccxt_id, api_key=api_key, secret=secret, base_url=base_url,
            timeout_s=self.polling.request_timeout_s, exact_numbers=True,
            client_factory=client_factory,
        )  # fmt: skip
        self._codes: dict[str, str] = {}  # pegbot asset -> ccxt currency code
        self._events: VenueEvents | None = None
        self._following: dict[str, _Withdrawal] = {}  # transfer id -> withdrawal
        self._claimed: set[str] = set()  # venue reference ids adopted by a transfer
        self._poller: asyncio.Task[Any] | None = None
        self._wake = asyncio.Event()

    def __repr__(self) -> str:
        return f"CcxtTransfers({self.name!r}, {self.quirks.ccxt_id!r})"

    # ---- connection --------------------------------------------------------------------------

    def bind(self, events: VenueEvents) -> None:
        self._events = events

    async def connect(self) -> None:
        """Load the venue's markets and currencies, and resolve every asset a route moves. A
        token the venue does not list is ``UnknownSymbolError``; a venue down,
        ``VenueUnavailableError``."""
        client = self._session.open()
        try:
            await self._session.ask("load_markets")
            codes = {Currency.USD.value: self._quote}
            for token, underlying in self._tokens.items():
                market = resolve_token_market(
                    client, token, underlying=underlying, quote=self._quote, quirks=self.quirks
                )
                codes[token] = market.balance_code
        except Exception as exc:
            await self._session.close_client()
            if isinstance(exc, UnknownSymbolError):
                raise
            reason = self._session.reason(exc)
            raise VenueUnavailableError(f"{self.name}: cannot load markets: {reason}") from None
        for route_name, route in self.routes.items():
            if route.asset not in codes:
                await self._session.close_client()
                raise UnknownSymbolError(
                    f"{self.name}: route {route_name} moves {route.asset}, which is not a token "
                    f"traded here or {Currency.USD.value}"
                )
        self._codes = codes

    async def close(self) -> None:
        await self._session.close()
        self._poller = None
        if self._following:
            log.warning("closed_with_transfers", venue=self.name,
                        transfer_ids=sorted(self._following))  # fmt: skip

    # ---- TransferVenue -----------------------------------------------------------------------

    def submit_transfer(self, transfer: Transfer) -> None:
        """Withdraw as a task; the answers come through ``on_transfer_update``."""
        route = self.routes.get(transfer.route)
        reason = ""
        if transfer.transfer_id in self._following:
            log.warning("duplicate_transfer", venue=self.name, transfer_id=transfer.transfer_id)
            return
        if route is None:
            reason = f"UNKNOWN_ROUTE: {self.name} has no route '{transfer.route}'"
        elif transfer.source != self.account:
            reason = (
                f"WRONG_WAY: {self.name} withdraws from {self.account} only, not from "
                f"{transfer.source} (a deposit is sent by its source: deposit_address())"
            )
        elif transfer.asset != route.asset:
            reason = f"WRONG_ASSET: {transfer.route} moves {route.asset}, not {transfer.asset}"
        elif transfer.amount <= 0:
            reason = f"MIN_AMOUNT: {transfer.amount} is not a positive amount"
        elif not self._codes:
            reason = f"NOT_CONNECTED: {self.name} is not connected"
        if route is None or reason:
            update = self._update(transfer, TransferState.REJECTED, reason=reason)
            asyncio.get_running_loop().call_soon(self._tell_update, update)
            return
        asked_ms = self._clock.now_ns() // 1_000_000
        withdrawal = _Withdrawal(transfer, route, self._codes[route.asset], asked_ms)
        self._following[transfer.transfer_id] = withdrawal
        self._session.spawn(self._withdraw(withdrawal))

    async def _withdraw(self, w: _Withdrawal) -> None:
        amount = format(w.transfer.amount, "f")
        try:
            answer = await self._session.ask(
                "withdraw", w.code, amount, w.route.address, {"key": w.route.key}
            )
        except Exception as exc:  # a refusal, or an unknown outcome
            refused = self._session.refusal(exc)
            if refused is not None:
                self._end(w, TransferState.REJECTED, refused)
                return
            w.lost_ns = self._clock.now_ns()
            log.warning("withdrawal_outcome_unknown", venue=self.name,
                        transfer_id=w.transfer.transfer_id, reason=self._session.reason(exc))  # fmt: skip
        else:
            w.refid = str(answer.get("id") or "")
            self._claimed.add(w.refid)
        self._poll_soon()

    # ---- following ---------------------------------------------------------------------------

    def _poll_soon(self) -> None:
        self._wake.set()
        if self._poller is None or self._poller.done():
            self._poller = self._session.spawn(self._poll_loop())

    async def _poll_loop(self) -> None:
        backoff = Backoff(self.polling.first_s, self.polling.max_s)
        while self._following:
            self._wake.clear()
            try:
                if await self.poll():
                    backoff.reset()
            except Exception as exc:  # the venue is down or slow, or answered garbage
                log.warning("withdrawal_poll_failed", venue=self.name,
                            reason=self._session.reason(exc))  # fmt: skip
            try:
                await asyncio.wait_for(self._wake.wait(), backoff.next_delay())
                backoff.reset()
            except TimeoutError:
                pass
        self._poller = None

    async def poll(self) -> bool:
        """One round: read the withdrawals of every asset followed; report what changed."""
        changed = False
        by_code: dict[str, list[_Withdrawal]] = {}
        for w in self._following.values():
            by_code.setdefault(w.code, []).append(w)
        for code, group in by_code.items():
            since = min(w.asked_ms for w in group) - int(self.polling.history_slack_s * 1000)
            listed = [_movement(row, code) for row in await self._session.ask(
                "fetch_withdrawals", code, since)]  # fmt: skip
            for w in group:
                changed |= self._settle(w, listed)
        return changed

    def _settle(self, w: _Withdrawal, listed: list[Movement]) -> bool:
        if not w.refid:  # its answer was lost: find it by asset and amount
            # the venue's clock may differ from ours: anything listed since the slack counts
            earliest = w.asked_ms - int(self.polling.history_slack_s * 1000)
            found = next(
                (m for m in listed if m.refid not in self._claimed
                 and m.amount == w.transfer.amount and (m.timestamp_ms or 0) >= earliest),
                None,
            )  # fmt: skip
            if found is None:
                grace_ns = int(self.polling.unknown_grace_s * NS_PER_S)
                if self._clock.now_ns() - w.lost_ns < grace_ns:
                    return False
                reason = "not at the venue after its answer was lost"
                self._end(w, TransferState.REJECTED, reason)
                return True
            w.refid = found.refid
            self._claimed.add(found.refid)
            log.info("withdrawal_found", venue=self.name, transfer_id=w.transfer.transfer_id,
                     refid=found.refid)  # fmt: skip
        movement = next((m for m in listed if m.refid == w.refid), None)
        if movement is None:
            return False
        changed = False
        if TransferState.SENT not in w.told and movement.status in ("pending", "ok", "failed"):
            self._tell(w, TransferState.SENT, movement.fee)
            changed = True
        if movement.status == "ok":
            log.info("withdrawal_done", venue=self.name, transfer_id=w.transfer.transfer_id,
                     txid=movement.txid)  # fmt: skip
            self._end(w, TransferState.ARRIVED)
            return True
        if movement.status in ("failed", "canceled"):
            self._end(w, TransferState.FAILED, f"RETURNED: {self.name} says {movement.status}")
            return True
        return changed

    # ---- reads -------------------------------------------------------------------------------

    async def deposit_address(self, asset: str) -> DepositAddress:
        """Where to send ``asset`` (pegbot's name) into this account."""
        answer = await self._session.ask("fetch_deposit_address", self._code(asset))
        return DepositAddress(asset, str(answer["address"]), answer.get("tag"))

    async def deposits(self, asset: str, since_ms: int | None = None) -> list[Movement]:
        code = self._code(asset)
        return [_movement(row, code) for row in await self._session.ask(
            "fetch_deposits", code, since_ms)]  # fmt: skip

    async def withdrawals(self, asset: str, since_ms: int | None = None) -> list[Movement]:
        code = self._code(asset)
        return [_movement(row, code) for row in await self._session.ask(
            "fetch_withdrawals", code, since_ms)]  # fmt: skip

    def _code(self, asset: str) -> str:
        code = self._codes.get(asset)
        if code is None:
            raise UnknownSymbolError(f"{self.name}: {asset} is not an asset of this connector")
        return code

    # ---- answers -----------------------------------------------------------------------------

    def _tell(self, w: _Withdrawal, state: TransferState, fee: Decimal = ZERO) -> None:
        if state in w.told:
            return
        w.told.add(state)
        w.state = state
        token = w.route.asset != Currency.USD.value
        update = self._update(
            w.transfer, state, fee_usd=ZERO if token else fee, fee_tokens=fee if token else ZERO
        )
        self._tell_update(update)

    def _end(self, w: _Withdrawal, state: TransferState, reason: str = "") -> None:
        self._following.pop(w.transfer.transfer_id, None)
        if state in w.told:
            return
        w.told.add(state)
        self._tell_update(self._update(w.transfer, state, reason=reason))

    def _update(
        self,
        t: Transfer,
        state: TransferState,
        *,
        fee_usd: Decimal = ZERO,
        fee_tokens: Decimal = ZERO,
        reason: str = "",
    ) -> TransferUpdate:
        now = self._clock.now_ns()
        return TransferUpdate(t.route, t.transfer_id, state, now, fee_usd, fee_tokens, reason)

    def _tell_update(self, update: TransferUpdate) -> None:
        if self._events is None:
            log.error("unbound_venue", venue=self.name, transfer_id=update.transfer_id)
            return
        self._events.on_transfer_update(update)


def _movement(row: Mapping[str, Any], code: str) -> Movement:
    """A ccxt transaction as a ``Movement`` (a row that cannot be read raises ValueError)."""
    fee = row.get("fee") or {}
    if row.get("currency") not in (code, None) or row.get("id") in (None, ""):
        raise ValueError(f"not a {code} transaction: {str(row.get('info'))[:80]}")
    return Movement(
        refid=str(row["id"]),
        asset=code,
        amount=to_decimal(row["amount"]),
        fee=to_decimal(fee.get("cost") or 0),
        status=str(row.get("status")),
        txid=row.get("txid"),
        timestamp_ms=row.get("timestamp"),
    )
