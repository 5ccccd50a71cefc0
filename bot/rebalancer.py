"""The rebalancer: policy that keeps cash and tokens in the accounts that need them.

Under a persistent premium the strategy sells tokens on the exchange (its cash grows), hedges at
the broker and mints through the issuer (the issuer account drains). The rebalancer holds every
account that has a band (``[rebalance.cash.ACCOUNT]``, ``[rebalance.tokens."VENUE:TOKEN"]``) near
its target by asking for transfers over the configured routes (``[transfers.ROUTE]``):

* An account's level is what it holds (``Ledger.available``: less what its unsent transfers
  will take) plus what is on its way to it (transfers submitted or sent, not yet arrived), so a
  transfer in flight is counted once and never sent twice.
* An account below ``target - band`` is refilled toward its target from accounts above their
  targets (largest surplus first); an account above ``target + band`` sends its surplus to
  accounts below their targets (largest shortfall first). A donor gives only what its level has
  above its target, and of what it holds now (fees included) never so much that it would be left
  below its target minus band: no source leaves its band, no account is overdrawn.
* The route between two accounts is ``[rebalance.routes]."SOURCE>DESTINATION"``, else the
  cheapest route that connects them for the asset. A route whose transfer failed or was refused
  rests for ``retry_after_s``. Transfers below ``min_transfer_usd`` / ``min_transfer_tokens``
  are not made. USD amounts are whole cents, token amounts whole micro-tokens (rounded down).

Pure policy: it reads a ``TransferView`` (the ledger) and returns ``RequestTransfer`` intents;
it performs no I/O and reads no clock (the engine passes the time). The engine calls ``plan``
on its heartbeat and after fills, request and transfer updates; it looks at the book at most
every ``check_every_s`` (transfers take minutes to days), and a call with the ledger unchanged
since the last look returns at once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from decimal import ROUND_DOWN, Decimal

from bot.config import BalanceBand, RebalanceConfig, TransferRouteConfig
from bot.intents import RequestTransfer
from bot.ledger import TransferView
from bot.model import Currency, Transfer, TransferState
from bot.money import BPS_PER_UNIT, ZERO, money_context

REQUESTER = "rebalancer"
NEVER_NS = sys.maxsize
USD_QUANTUM = Decimal("0.01")  # transfers move whole cents
TOKEN_QUANTUM = Decimal("0.000001")  # and whole micro-tokens


class Rebalancer:
    """Targets and bands per account; plans the transfers that bring accounts back in band."""

    def __init__(self, config: RebalanceConfig, routes: Mapping[str, TransferRouteConfig]) -> None:
        self.config = config
        self.routes = dict(routes)
        self._bands: dict[str, dict[str, BalanceBand]] = {}  # asset -> account -> band
        if config.cash:
            self._bands[Currency.USD] = dict(config.cash)
        for key, band in config.tokens.items():
            venue, _, token = key.partition(":")
            self._bands.setdefault(token, {})[venue] = band
        self._every_ns = round(config.check_every_s * 1e9)
        self._next_look_ns = 0
        self._planned_version = -1
        self._resting: dict[str, int] = {}  # route -> rests until (ns)
        self._wake_ns = NEVER_NS  # the earliest end of a rest: plan again then

    def plan(self, ledger: TransferView, now_ns: int) -> list[RequestTransfer]:
        """The transfers to ask for now (empty when every account is in band). Looks at the
        book at most every ``check_every_s``, and only if it changed or a route's rest ended;
        an answer about one of its transfers makes it look at the next call."""
        if not self.config.enabled or not self._bands or now_ns < self._next_look_ns:
            return []
        if ledger.version == self._planned_version and now_ns < self._wake_ns:
            return []
        self._planned_version = ledger.version
        self._next_look_ns = now_ns + self._every_ns
        self._resting = {r: t for r, t in self._resting.items() if t > now_ns}
        self._wake_ns = min(self._resting.values(), default=NEVER_NS)
        incoming: dict[tuple[str, str], Decimal] = {}
        for t in ledger.open_transfers():
            key = (t.destination, t.asset)
            incoming[key] = incoming.get(key, ZERO) + t.amount
        spendable: dict[tuple[str, str], Decimal] = {}  # shared across assets: USD fees
        intents: list[RequestTransfer] = []
        for asset, bands in self._bands.items():
            intents += _Plan(self, asset, bands, ledger, incoming, spendable).run()
        return intents

    def on_transfer(self, transfer: Transfer, now_ns: int) -> None:
        """A transfer it asked for changed state: look again at the next call; a route that
        failed or refused rests."""
        self._next_look_ns = now_ns
        if transfer.state in (TransferState.FAILED, TransferState.REJECTED):
            until = now_ns + round(self.config.retry_after_s * 1e9)
            self._resting[transfer.route] = until
            self._wake_ns = min(self._wake_ns, until)

    def route(self, source: str, destination: str, asset: str, amount: Decimal) -> str | None:
        """The route to move ``amount`` of ``asset`` from ``source`` to ``destination``: the
        configured one, else the cheapest that connects them; None if none can (or rests)."""
        chosen = self.config.routes.get(f"{source}>{destination}")
        if chosen is not None:
            return None if chosen in self._resting else chosen
        best: tuple[Decimal, Decimal, str] | None = None
        for name, r in self.routes.items():
            if (
                name in self._resting
                or asset not in r.assets
                or not r.connects(source, destination)
            ):
                continue
            fee_usd, fee_tokens = r.fees(asset, amount)
            key = (fee_tokens, fee_usd, name)
            if best is None or key < best:
                best = key
        return best[2] if best is not None else None


class _Plan:
    """One asset's transfers for one call of ``Rebalancer.plan``."""

    def __init__(
        self,
        owner: Rebalancer,
        asset: str,
        bands: dict[str, BalanceBand],
        ledger: TransferView,
        incoming: dict[tuple[str, str], Decimal],
        spendable: dict[tuple[str, str], Decimal],
    ) -> None:
        self.owner = owner
        self.asset = asset
        self.bands = bands
        self.ledger = ledger
        self.spendable = spendable
        self.is_cash = asset == Currency.USD
        self.minimum = (
            owner.config.min_transfer_usd if self.is_cash else owner.config.min_transfer_tokens
        )
        with money_context():
            self.level = {
                a: self._spendable(a, asset) + incoming.get((a, asset), ZERO) for a in bands
            }
        self.intents: list[RequestTransfer] = []

    def run(self) -> list[RequestTransfer]:
        self._restore("below", self._shortfall, self._surplus)
        self._restore("above", self._surplus, self._shortfall)
        return self.intents

    def _restore(
        self, side: str, gap: Callable[[str], Decimal], other_gap: Callable[[str], Decimal]
    ) -> None:
        """Move every account whose ``gap`` (shortfall below, or surplus above, its target)
        exceeds its band back toward its target, with the accounts on the other side of their
        targets, the farthest first."""
        out = [a for a, b in self.bands.items() if gap(a) > b.band]
        for account in sorted(out, key=lambda a: (gap(a), a), reverse=True):
            others = [a for a in self.bands if other_gap(a) > 0]
            for other in sorted(others, key=lambda a: (other_gap(a), a), reverse=True):
                if gap(account) < self.minimum:
                    break
                source, destination = (other, account) if side == "below" else (account, other)
                self._move(source, destination, account, side)

    def _shortfall(self, account: str) -> Decimal:
        return self.bands[account].target - self.level[account]

    def _surplus(self, account: str) -> Decimal:
        return self.level[account] - self.bands[account].target

    def _spendable(self, account: str, asset: str) -> Decimal:
        key = (account, asset)
        if key not in self.spendable:
            self.spendable[key] = self.ledger.available(account, asset)
        return self.spendable[key]

    def _move(self, source: str, destination: str, out_of_band: str, side: str) -> None:
        """Move what ``destination`` lacks of its target, as far as ``source`` can give: what
        it has above its target, and of what it holds now (with the route's fees) no more than
        would leave it below its target minus band."""
        if source == destination:
            return
        wanted = min(self._shortfall(destination), self._surplus(source))
        name = self.owner.route(source, destination, self.asset, wanted)
        if name is None:
            return
        route = self.owner.routes[name]
        with money_context():
            floor = max(ZERO, self.bands[source].target - self.bands[source].band)
            cap = min(self._surplus(source), self._spendable(source, self.asset) - floor)
            flat = route.fee_flat_usd if self.is_cash else route.fee_flat_tokens
            most = (cap - flat) / (1 + route.fee_bps / BPS_PER_UNIT)
            quantum = USD_QUANTUM if self.is_cash else TOKEN_QUANTUM
            amount = min(wanted, most).quantize(quantum, rounding=ROUND_DOWN)
            if amount < self.minimum:
                return
            fee_usd, fee_tokens = route.fees(self.asset, amount)
            usd = (source, Currency.USD)
            if not self.is_cash and fee_usd > self._spendable(*usd):
                return  # cannot pay the gas or fee from its cash
            taken = amount + (fee_usd if self.is_cash else fee_tokens)
            self.level[source] -= taken
            self.spendable[(source, self.asset)] -= taken
            if not self.is_cash:
                self.spendable[usd] -= fee_usd
            self.level[destination] += amount
        band = self.bands[out_of_band]
        self.intents.append(
            RequestTransfer(
                route=name,
                asset=self.asset,
                amount=amount,
                source=source,
                destination=destination,
                fee_usd=fee_usd,
                fee_tokens=fee_tokens,
                requested_by=REQUESTER,
                reason=f"{out_of_band} {side} its band {band.target} +/- {band.band} {self.asset}",
            )
        )
