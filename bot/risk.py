"""Pre-trade risk: every intent passes ``RiskEngine.check`` before the executor may act on it.

Checks, in order (the first failure is the verdict):
1. kill switch: while engaged only risk-reducing orders pass (an order that moves its venue
   position toward zero without crossing it) and cancels; mint/redeem requests are blocked, since
   a request commits capital for a settlement window and cannot be taken back.
2. fair value: the intent's ``reference_price``, else ``mark(instrument)``; without one an order
   is rejected ("no fair value to collar against") and a request cannot be valued.
3. price collar: a limit price (or a swap's worst price) worse for us than ``collar_bps`` from
   fair value is rejected — a buy above ``fair + band``, a sell below ``fair - band``; exactly at
   the band passes. A limit on the side that protects us (a sale's minimum far above fair value,
   in a wick) is not a risk: it only refuses to trade worse than it.
4. order notional: qty x price <= ``max_order_notional_usd`` (price = limit price, else fair value).
5. position: |exposure after| x price <= ``max_position_usd`` for the instrument at that venue.
   For a token, exposure counts in-flight requests: unsettled mints (their tokens will land
   here; with ``mint_venues`` known only those whose issuer delivers to this venue) and
   accepted, unpriced redeems (their tokens left the venue but their price is not fixed, so
   their risk is still ours). A mint is checked at its issuer's delivery venue; a redeem only
   reduces exposure and skips this check.

Orders at a perpetual venue (ADR 0018) also: a size in whole contracts, and a position-increasing
order must leave the account's margin equity (its cash + positions at mark, as the ledger books
it) at or above maintenance x (1 + ``perp_margin_buffer``) after it, valued at the order's price;
a reducing order always passes this check.

Transfers (``RequestTransfer``) are checked apart: blocked by the kill switch (capital stays
where it is while the bot is stopped); a positive amount between two different accounts; and
the source must be able to pay it: the amount plus the quoted fees in each asset may not exceed
what the account has available (``TransferView.available``: its balance less what its unsent
transfers will take), so no account goes negative.

Reads only what it is given (a ``LedgerView`` and a mark function); performs no I/O, reads no
clock and changes nothing but its own kill-switch flag and rejection counter.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Context, Decimal, localcontext

from bot.config import RiskConfig
from bot.exposure import TOLERANCE_SHARES
from bot.intents import CancelOrder, Intent, PlaceOrder, RequestMintRedeem, RequestTransfer
from bot.ledger import TransferView, debits
from bot.model import MintRedeemRequest, PerpContract, RequestKind, RequestState, Side
from strategies.base import LedgerView

MarkFn = Callable[[str], Decimal | None]
"""Fair value of an instrument in USD, or None when unknown."""

_BPS = Decimal(10_000)
_ZERO = Decimal(0)
_PRECISE = Context(prec=60)  # limits compare exactly: "at the limit passes, one cent over fails"


@dataclass(frozen=True, slots=True)
class RiskVerdict:
    """``ok``, or a one-line ``reason`` and a stable ``code`` (the key of ``rejections``)."""

    ok: bool
    reason: str = ""
    code: str = ""


PASS = RiskVerdict(True)


def _no_mark(instrument: str) -> Decimal | None:
    return None


class RiskEngine:
    """Pre-trade checks against ``RiskConfig``, a kill switch and a count of rejections.

    ``mint_venues`` maps issuer -> the venue its minted tokens land in (``IssuerConfig.deliver_to``);
    without it a mint's landing venue is unknown and every in-flight mint counts everywhere.
    ``rejections`` counts rejections by ``RiskVerdict.code`` for the backtest summary.
    """

    def __init__(
        self,
        config: RiskConfig,
        *,
        mint_venues: Mapping[str, str] | None = None,
        perps: Mapping[str, PerpContract] | None = None,
        perp_margin_buffer: float = 0.0,
    ) -> None:
        """``perps``: perpetual venue -> its contract; ``perp_margin_buffer``: the margin kept
        above maintenance, as a fraction of it."""
        self.config = config
        self.perps: dict[str, PerpContract] = dict(perps or {})
        self._margin_factor = 1 + Decimal(repr(perp_margin_buffer))
        self.mint_venues: dict[str, str] = dict(mint_venues or {})
        self.rejections: Counter[str] = Counter()
        self._kill_reason: str | None = None
        # venues where a sale needs the tokens held (exchanges and pools: nothing is lent), and
        # what working sells there already offer (the executor's); set by the node
        self.no_short: frozenset[str] = frozenset()
        self.working_sells: Callable[[str, str], Decimal] | None = None
        # under the kill switch: (the stock's net delta with working orders, the order's change
        # to it) in shares, None when the order moves no stock (bot/exposure.py); set by the node
        self.delta_effect: Callable[[PlaceOrder], tuple[Decimal, Decimal] | None] | None = None
        # what working orders at a venue may still take of an asset (the executor's): a
        # transfer may not move it away; set by the engine
        self.committed: Callable[[str, str], Decimal] | None = None
        # in-flight exposure per (venue, token), valid for one ledger at one version: the
        # ledger hands out copies of its requests, which costs more than the rest of a check
        self._flight_of: tuple[LedgerView, int] | None = None
        self._flight: dict[tuple[str | None, str], Decimal] = {}

    @property
    def kill_switch(self) -> bool:
        return self._kill_reason is not None

    def engage_kill_switch(self, reason: str) -> None:
        """Block everything except cancels and risk-reducing orders until released."""
        self._kill_reason = reason or "engaged"

    def release_kill_switch(self) -> None:
        self._kill_reason = None

    def check(self, intent: Intent, ledger: LedgerView, mark: MarkFn = _no_mark) -> RiskVerdict:
        """The verdict for one intent; a rejection is counted in ``rejections``."""
        if isinstance(intent, CancelOrder):
            return PASS
        with localcontext(_PRECISE):
            if isinstance(intent, PlaceOrder):
                verdict = self._check_order(intent, ledger, mark)
            elif isinstance(intent, RequestTransfer):
                verdict = self._check_transfer(intent, ledger)
            else:
                verdict = self._check_request(intent, ledger, mark)
        if not verdict.ok:
            self.rejections[verdict.code] += 1
        return verdict

    def _check_order(self, o: PlaceOrder, ledger: LedgerView, mark: MarkFn) -> RiskVerdict:
        held = ledger.position(o.venue, o.instrument)
        if self._kill_reason is not None and not self._reduces_risk(held, o):
            return _reject("kill_switch", f"kill switch ({self._kill_reason}): only risk-reducing")
        if o.side is Side.SELL and o.venue in self.no_short and self.working_sells is not None:
            free = held - self.working_sells(o.venue, o.instrument)
            if o.qty > free:
                return _reject(
                    "oversell",
                    f"sell {o.qty} {o.instrument} at {o.venue}: {free} held and not already "
                    "offered by working sells",
                )
        fair = _fair_value(o.reference_price, mark, o.instrument)
        if fair is None:
            return _reject("no_fair_value", "no fair value to collar against")
        if o.limit_price is not None:
            band = fair * self.config.collar_bps / _BPS
            if (o.limit_price - fair) * o.side > band:  # worse for us than the band allows
                return _reject(
                    "price_collar",
                    f"limit {o.limit_price} outside fair value {fair} "
                    f"+/- {self.config.collar_bps} bps",
                )
        price = o.limit_price if o.limit_price is not None else fair
        verdict = self._check_notional(o.qty, price)
        if not verdict.ok:
            return verdict
        contract = self.perps.get(o.venue)
        if contract is not None:
            verdict = self._check_margin(o, contract, held, price, ledger, mark)
            if not verdict.ok:
                return verdict
        exposure = held + self._in_flight_exposure(ledger, o.venue, o.instrument)
        return self._check_position(o.instrument, o.venue, exposure + o.side * o.qty, price)

    def _check_margin(
        self,
        o: PlaceOrder,
        contract: PerpContract,
        held: Decimal,
        price: Decimal,
        ledger: LedgerView,
        mark: MarkFn,
    ) -> RiskVerdict:
        """A perpetual order: whole contracts; a position-increasing one keeps the margin
        equity at or above maintenance x (1 + buffer) after it."""
        if o.qty % contract.contract_size:
            return _reject(
                "perp_contract_size",
                f"{o.qty} {o.instrument} is not whole contracts of {contract.contract_size}",
            )
        after = held + o.side * o.qty
        if abs(after) <= abs(held):
            return PASS
        at = mark(o.instrument) or price
        equity = ledger.cash(o.venue) - o.side * o.qty * price + after * at
        needed = abs(after) * at * contract.maintenance_margin * self._margin_factor
        if equity < needed:
            return _reject(
                "perp_margin",
                f"{o.venue} margin equity {equity} after the order < {needed} USD "
                f"(maintenance x {self._margin_factor})",
            )
        return PASS

    def _check_request(self, r: RequestMintRedeem, ledger: LedgerView, mark: MarkFn) -> RiskVerdict:
        if self._kill_reason is not None:
            return _reject("kill_switch", f"kill switch ({self._kill_reason}): no {r.kind}")
        fair = _fair_value(r.reference_price, mark, r.token)
        if fair is None:
            return _reject("no_fair_value", f"no fair value to value the {r.kind} request")
        verdict = self._check_notional(r.qty, fair)
        if not verdict.ok or r.kind is RequestKind.REDEEM:
            return verdict
        venue = r.venue or self.mint_venues.get(r.issuer)
        held = ledger.position(venue, r.token) if venue else _ZERO
        exposure = held + self._in_flight_exposure(ledger, venue, r.token)
        return self._check_position(r.token, venue or r.issuer, exposure + r.qty, fair)

    def _check_transfer(self, t: RequestTransfer, ledger: LedgerView) -> RiskVerdict:
        if self._kill_reason is not None:
            return _reject("kill_switch", f"kill switch ({self._kill_reason}): no transfer")
        if t.amount <= 0 or t.fee_usd < 0 or t.fee_tokens < 0 or t.source == t.destination:
            return _reject(
                "bad_transfer",
                f"transfer of {t.amount} {t.asset} from {t.source} to {t.destination}"
                f" (fees {t.fee_usd} USD, {t.fee_tokens} tokens)",
            )
        if not isinstance(ledger, TransferView):
            return _reject("no_balances", "no account balances to check a transfer against")
        for asset, amount in debits(t.asset, t.amount, t.fee_usd, t.fee_tokens).items():
            available = ledger.available(t.source, asset)
            if self.committed is not None:  # what working orders there may still take
                available -= self.committed(t.source, asset)
            if amount > available:
                return _reject(
                    "overdraw",
                    f"transfer takes {amount} {asset} from {t.source}: {available} available",
                )
        return PASS

    def _check_notional(self, qty: Decimal, price: Decimal) -> RiskVerdict:
        notional = qty * price
        limit = self.config.max_order_notional_usd
        if notional > limit:
            return _reject("max_order_notional", f"order notional {notional} > max {limit} USD")
        return PASS

    def _check_position(
        self, instrument: str, venue: str, after: Decimal, price: Decimal
    ) -> RiskVerdict:
        value = abs(after) * price
        limit = self.config.max_position_usd
        if value > limit:
            return _reject(
                "max_position",
                f"position {instrument}@{venue} would be {after} ({value} USD) > max {limit} USD",
            )
        return PASS

    def _in_flight_exposure(self, ledger: LedgerView, venue: str | None, token: str) -> Decimal:
        of = self._flight_of
        if of is None or of[0] is not ledger or of[1] != ledger.version:
            self._flight_of = (ledger, ledger.version)
            self._flight.clear()
        key = (venue, token)
        total = self._flight.get(key)
        if total is None:
            total = self._flight[key] = self._count_in_flight(ledger, venue, token)
        return total

    def _count_in_flight(self, ledger: LedgerView, venue: str | None, token: str) -> Decimal:
        total = _ZERO
        for req in ledger.in_flight_view(token):
            landing_mint = req.kind is RequestKind.MINT and self._lands_at(req, venue)
            unpriced_redeem = req.kind is RequestKind.REDEEM and req.state is RequestState.ACCEPTED
            if landing_mint or unpriced_redeem:
                total += req.qty
        return total

    def _reduces_risk(self, held: Decimal, o: PlaceOrder) -> bool:
        """What the kill switch lets through: an order that moves its stock's net delta toward
        zero without crossing it (by more than ``TOLERANCE_SHARES`` of rounding), when the delta
        is known (a hedge may open a broker position:
        it reduces the risk); otherwise one that does so for the venue position."""
        effect = self.delta_effect(o) if self.delta_effect is not None else None
        if effect is None:
            return _reduces(held, o)
        delta, change = effect
        # past zero by no more than share rounding (a hedge is whole millionths of a share)
        return (
            delta != 0
            and (delta > 0) != (change > 0)
            and (abs(change) <= abs(delta) + TOLERANCE_SHARES)
        )

    def _lands_at(self, req: MintRedeemRequest, venue: str | None) -> bool:
        target = req.venue or self.mint_venues.get(req.issuer)
        return target is None or venue is None or target == venue


def _reduces(held: Decimal, o: PlaceOrder) -> bool:
    """True if the order moves ``held`` toward zero without crossing it."""
    return held != 0 and (held > 0) != (o.side > 0) and o.qty <= abs(held)


def _fair_value(reference_price: float, mark: MarkFn, instrument: str) -> Decimal | None:
    if reference_price > 0:
        return Decimal(repr(reference_price))
    fair = mark(instrument)
    return fair if fair is not None and fair > 0 else None


def _reject(code: str, reason: str) -> RiskVerdict:
    return RiskVerdict(False, reason, code)
