"""The transfer routes of a live run (``[transfers.ROUTE]``, ADR 0011) as real transfer venues,
built from the config and the venues bot/live.py has built. Each leg (route, direction, asset)
is carried by one of:

- out of a wallet (a pool venue's account): ``Erc20Transfers`` (connectors/evm/erc20_transfer.py)
  through that venue's transaction manager (the wallet's single nonce writer), to the
  destination's address: another wallet's own, ``deposit_addresses["ACCOUNT:ASSET"]`` when
  given, else an exchange account's deposit address for the asset, read from the exchange
  (``CcxtTransfers.deposit_address``) at connect;
- out of an exchange account: a ``CcxtTransfers`` withdrawal (connectors/exchanges/
  ccxt_transfers.py) to ``withdrawal_keys["ACCOUNT:ASSET"]``, checked against the wallet's
  address when a wallet receives it;
- a ``bank_wire``, or anything out of a broker or issuer account: the operator
  (bot/operator_transfers.py), who is told in one line and answers ``pegbot transfer done``.

``LiveTransfers`` is one ``TransferVenue`` for every route (as the backtest's simulated network
is): it hands each transfer to its leg and refuses one no leg carries. ``route_problems`` says,
one line each, what a route lacks for a live run (``config_problems`` adds them).

What this module may not do: send anything itself, or put a key in a line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from bot.config import Settings, TransferRouteConfig
from bot.errors import InputError
from bot.live_endpoints import Endpoint
from bot.logging import get_logger
from bot.model import Currency, Transfer, TransferState, TransferUpdate
from bot.node import NodeParts
from bot.operator_transfers import OperatorTransfers, operator_folder
from connectors.base import OrderVenue, TransferVenue, VenueEvents

log = get_logger("pegbot.transfers")

USDC_DECIMALS = 6  # the wallet's USD is USDC (the ledger counts it at par)
Leg = tuple[str, str, str, str]  # (route, source, destination, asset)


def legs_of(name: str, r: TransferRouteConfig) -> list[tuple[str, str, str]]:
    """Every (source, destination, asset) the route carries."""
    ways = [(r.source, r.destination)] + ([(r.destination, r.source)] if r.two_way else [])
    return [(src, dst, asset) for src, dst in ways for asset in r.assets]


def carrier(settings: Settings, r: TransferRouteConfig, source: str) -> str:
    """Who carries a leg out of ``source``: ``wallet``, ``exchange`` or ``operator``."""
    if r.kind == "bank_wire":
        return "operator"
    kind = settings.venues[source].kind if source in settings.venues else "issuer"
    return {"pool": "wallet", "exchange": "exchange"}.get(kind, "operator")


def route_problems(settings: Settings) -> list[str]:
    """What the routes lack for a live run, one line each naming the key."""
    problems: list[str] = []
    accounts = set(settings.venues) | set(settings.issuers)
    for name, r in settings.transfers.items():
        where = f"transfers.{name}"
        unknown = [end for end in ("source", "destination") if getattr(r, end) not in accounts]
        for end in unknown:
            problems.append(f"{where}.{end}: unknown venue or issuer '{getattr(r, end)}'")
        if unknown:
            continue
        for src, dst, asset in legs_of(name, r):
            how = carrier(settings, r, src)
            key = f"{src}:{asset}"
            if how == "exchange" and key not in r.withdrawal_keys:
                problems.append(
                    f"{where}.withdrawal_keys: missing '{key}'; the withdrawal key set up on "
                    f"{src} that sends {asset} to {dst}"
                )
            to_kind = settings.venues[dst].kind if dst in settings.venues else "issuer"
            addressed = to_kind in ("pool", "exchange") or f"{dst}:{asset}" in r.deposit_addresses
            if how == "wallet" and not addressed:
                problems.append(
                    f"{where}.deposit_addresses: missing '{dst}:{asset}'; the address the "
                    f"wallet of {src} sends {asset} to for {dst}"
                )
    return problems


def live_transfers(
    parts: NodeParts, endpoints: Mapping[str, Endpoint], venues: Mapping[str, OrderVenue]
) -> dict[str, TransferVenue]:
    """Route name -> the venue carrying it (one ``LiveTransfers`` for all); empty without
    routes."""
    settings = parts.settings
    if not settings.transfers:
        return {}
    network = LiveTransfers(parts, endpoints, venues)
    return dict.fromkeys(settings.transfers, network)


class LiveTransfers:
    """Every route's legs (module docstring)."""

    name = "transfers"

    def __init__(
        self,
        parts: NodeParts,
        endpoints: Mapping[str, Endpoint],
        venues: Mapping[str, OrderVenue],
    ) -> None:
        self._settings = settings = parts.settings
        self._endpoints = endpoints
        self._venues = venues
        self._clock = parts.clock
        self._events: VenueEvents | None = None
        self.legs: dict[Leg, Any] = {}
        self._deposit_to: list[tuple[Any, str, str]] = []  # (erc20 leg, exchange, asset)
        self._readers: dict[str, Any] = {}  # exchange account -> its deposit-address reader
        operator_routes = {
            name: r
            for name, r in settings.transfers.items()
            if any(carrier(settings, r, src) == "operator" for src, _, _ in legs_of(name, r))
        }
        self.operator = (
            OperatorTransfers(
                "operator",
                routes=operator_routes,
                folder=operator_folder(settings),
                clock=parts.clock,
            )
            if operator_routes
            else None
        )
        for name, r in settings.transfers.items():
            for src, dst, asset in legs_of(name, r):
                how = carrier(settings, r, src)
                if how == "operator":
                    leg = self.operator
                elif how == "exchange":
                    leg = self._withdrawal(name, r, src, dst, asset)
                else:
                    leg = self._erc20(name, r, src, dst, asset)
                self.legs[(name, src, dst, asset)] = leg

    def __repr__(self) -> str:
        return f"LiveTransfers({sorted(self._settings.transfers)})"

    # ---- building the legs -------------------------------------------------------------------

    def _ccxt(self, name: str, account: str, routes: Mapping[str, Any]) -> Any:
        from connectors.exchanges.ccxt_transfers import CcxtTransfers

        s = self._settings
        v = s.venues[account]
        end = self._endpoints[account]
        ccxt_id = v.ccxt_id or ("kraken" if s.run.environment == "sandbox" else account)
        tokens = {sym: t.underlying for sym, t in s.tokens.items() if account in t.venues}
        return CcxtTransfers(
            name, ccxt_id, account=account, routes=routes, tokens=tokens,
            quote=v.quote_currency, clock=self._clock, api_key=end.key or None,
            secret=end.secret or None, base_url=end.url or None,
        )  # fmt: skip

    def _withdrawal(
        self, route: str, r: TransferRouteConfig, src: str, dst: str, asset: str
    ) -> Any:
        from connectors.exchanges.ccxt_transfers import WithdrawalRoute

        key = r.withdrawal_keys.get(f"{src}:{asset}")
        if not key:
            raise InputError(f"transfers.{route}.withdrawal_keys: missing '{src}:{asset}'")
        address = r.deposit_addresses.get(f"{dst}:{asset}") or self._wallet_address(dst)
        leg = WithdrawalRoute(asset, key, address)
        return self._ccxt(f"{route}:{src}>{dst}:{asset}", src, {route: leg})

    def _wallet_address(self, account: str) -> str | None:
        txm = getattr(self._venues.get(account), "txm", None)
        return str(txm.address) if txm is not None else None

    def _erc20(self, route: str, r: TransferRouteConfig, src: str, dst: str, asset: str) -> Any:
        from bot.live import _pool_assets
        from connectors.evm.erc20_transfer import Erc20Asset, Erc20Transfers

        s = self._settings
        v = s.venues[src]
        wallet: Any = self._venues[src]  # a pool venue: its transaction manager
        txm = wallet.txm
        pool_token = next(sym for sym, t in s.tokens.items() if src in t.venues)
        token = asset if asset in s.tokens else pool_token
        token_address, quote_address = _pool_assets(src, v, self._endpoints[src], s, token)
        if asset == Currency.USD.value:
            erc20 = Erc20Asset(quote_address, USDC_DECIMALS)
        else:
            erc20 = Erc20Asset(token_address, s.tokens[asset].decimals)
        leg = Erc20Transfers(
            f"{route}:{src}>{dst}:{asset}",
            txm=txm,
            assets={asset: erc20},
            accounts={src: txm.address},
            eth_usd=Decimal(str(v.eth_usd)),
            clock=self._clock,
        )
        address = r.deposit_addresses.get(f"{dst}:{asset}") or self._wallet_address(dst)
        if address is not None:
            leg.accounts[dst] = address
        elif s.venues[dst].kind == "exchange":  # its deposit address, read at connect
            if dst not in self._readers:
                self._readers[dst] = self._ccxt(f"{dst}:deposits", dst, {})
            self._deposit_to.append((leg, dst, asset))
        else:
            raise InputError(f"transfers.{route}.deposit_addresses: missing '{dst}:{asset}'")
        return leg

    # ---- TransferVenue -----------------------------------------------------------------------

    def _parts(self) -> list[Any]:
        seen: dict[int, Any] = {}
        for part in (*self._readers.values(), *self.legs.values()):
            seen.setdefault(id(part), part)
        return list(seen.values())

    def bind(self, events: VenueEvents) -> None:
        self._events = events
        for part in self._parts():
            if part not in self._readers.values():
                part.bind(events)

    async def connect(self) -> None:
        """Connect every leg; read the exchanges' deposit addresses the wallet sends to. A leg
        that cannot connect raises its one-line error (the node closes what connected)."""
        opened: list[Any] = []
        try:
            for part in self._parts():
                await part.connect()
                opened.append(part)
            for leg, exchange, asset in self._deposit_to:
                where = await self._readers[exchange].deposit_address(asset)
                leg.accounts[exchange] = where.address
                log.info("deposit_address", account=exchange, asset=asset, address=where.address)
        except BaseException:
            for part in reversed(opened):
                await part.close()
            raise
        self._opened = opened

    async def close(self) -> None:
        for part in reversed(getattr(self, "_opened", [])):
            try:
                await part.close()
            except Exception as exc:  # closing goes on with the rest
                log.warning("close_failed", part=repr(part), error=str(exc))
        self._opened = []

    def submit_transfer(self, transfer: Transfer) -> None:
        t = transfer
        leg = self.legs.get((t.route, t.source, t.destination, str(t.asset)))
        if leg is not None:
            leg.submit_transfer(t)
            return
        r = self._settings.transfers.get(transfer.route)
        if r is None:
            reason = f"UNKNOWN_ROUTE: no route '{transfer.route}'"
        elif transfer.asset not in r.assets:
            reason = (
                f"WRONG_ASSET: {transfer.route} moves {', '.join(r.assets)}, not {transfer.asset}"
            )
        else:
            reason = (
                f"WRONG_WAY: {transfer.route} does not go from {transfer.source} to "
                f"{transfer.destination}"
            )
        update = TransferUpdate(
            transfer.route, transfer.transfer_id, TransferState.REJECTED, self._clock.now_ns(),
            reason=reason,
        )  # fmt: skip
        asyncio.get_running_loop().call_soon(self._deliver, update)

    def _deliver(self, update: TransferUpdate) -> None:
        if self._events is not None:
            self._events.on_transfer_update(update)
