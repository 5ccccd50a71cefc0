"""The exchange sandbox's market: Kraken-style pairs, the sandbox's own order book per pair, our
orders, their trades and the account's balances, matched the way Kraken's spot book matches as far
as pegbot uses it. The HTTP side (``exchange.py``) turns this into Kraken's REST answers.

- Pairs come from a Kraken AssetPairs ``result`` (the recorded real response, or ``DEFAULT_PAIRS``):
  price tick, lot and cost decimals, ordermin, costmin and the first fee tier are read from it.
- The book is seeded and moved by ``set_book`` (a test, or a flow generator through the control
  API). Our resting orders are not shown in it.
- An aggressive order walks the opposite levels best first, up to its limit, and trades each
  level's price and size, taking that size out of the book (one trade per level). Market and IOC
  orders cancel what is left (status ``canceled`` keeping the filled volume, as Kraken reports an
  IOC residual); GTC limits rest (``open``); a post-only order that would take is canceled.
- A resting order fills at its own price, as maker, when ``set_book`` puts opposite levels at or
  through it, against their size (which those fills consume).
- Balances move by exactly a trade's cost +- fee (``exchange_orders.py`` rounds them). A limit
  buy needs volume x limit x (1 + taker) available, a market buy its planned cost and fee, a sell
  its volume; resting orders hold the same.

Refusals are ``KrakenError`` carrying the string Kraken puts in ``error``. What this module may not
do: I/O, or read the clock except through the ``now`` it was given.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bot.money import ZERO, DecimalLike, money_context, to_decimal
from connectors.sandbox.exchange_orders import (
    ORDER_FLAGS,
    KrakenError,
    Pair,
    SandboxOrder,
    SandboxTrade,
    check_client_id,
    decimal_arg,
)


@dataclass(slots=True)
class _Level:
    price: Decimal
    size: Decimal


@dataclass(slots=True)
class _Book:
    bids: list[_Level] = field(default_factory=list)  # best (highest) first
    asks: list[_Level] = field(default_factory=list)  # best (lowest) first
    updated: float = 0.0


def _levels(raw: Iterable[tuple[DecimalLike, DecimalLike]], *, descending: bool) -> list[_Level]:
    levels = [_Level(to_decimal(price), to_decimal(size)) for price, size in raw]
    if any(level.price <= 0 or level.size <= 0 for level in levels):
        raise ValueError("book levels need a positive price and size")
    return sorted(levels, key=lambda level: level.price, reverse=descending)


Quote = tuple[Decimal, Decimal]


@dataclass(frozen=True, slots=True)
class Print:
    """One trade on the public tape: ours, or another participant's (``print_trade``)."""

    pair: Pair
    time: float
    price: Decimal
    vol: Decimal
    side: str  # the aggressor's: "buy" or "sell"
    ordertype: str  # the aggressor's: "market" or "limit"
    trade_id: int


def _quotes(levels: list[_Level]) -> list[Quote]:
    return [(level.price, level.size) for level in levels]


def _priority(order: SandboxOrder) -> tuple[Decimal, str]:
    """Price priority (the best bid or ask first), then time (txids count up)."""
    limit = order.price if order.price is not None else ZERO  # resting orders are limits
    return (-limit if order.is_buy else limit), order.txid


def _crosses(side_is_buy: bool, level_price: Decimal, limit: Decimal | None) -> bool:
    if limit is None:
        return True
    return level_price <= limit if side_is_buy else level_price >= limit


class SandboxVenue:
    """Pairs, books, orders, trades and balances of the one sandbox account."""

    def __init__(
        self,
        asset_pairs: Mapping[str, Mapping[str, Any]],
        *,
        balances: Mapping[str, DecimalLike] | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.asset_pairs = {pair_id: dict(entry) for pair_id, entry in asset_pairs.items()}
        self.pairs = {pid: Pair.from_asset_pair(pid, e) for pid, e in self.asset_pairs.items()}
        self._by_name = {
            name: pair
            for pair in self.pairs.values()
            for name in (pair.pair_id, pair.altname, pair.wsname)
        }
        self.asset_decimals = self._asset_decimals()
        self._books = {pair_id: _Book() for pair_id in self.pairs}
        self._balances: dict[str, Decimal] = {}
        self.orders: dict[str, SandboxOrder] = {}
        self.trades: dict[str, SandboxTrade] = {}
        self.tape: list[Print] = []  # every trade, ours and others', oldest first
        self._now = now
        self.listeners: list[Callable[[], None]] = []  # told after the books or the tape moved
        for asset, amount in (balances or {}).items():
            self.set_balance(asset, amount)

    def _asset_decimals(self) -> dict[str, int]:
        """An asset's ledger decimals: the largest lot_decimals of the pairs it is the base of,
        else the largest cost_decimals of those it quotes (no recorded Assets answer exists)."""
        decimals: dict[str, int] = {}
        for pair in self.pairs.values():
            decimals[pair.base] = max(decimals.get(pair.base, 0), pair.lot_decimals)
        for pair in self.pairs.values():
            if pair.quote not in {p.base for p in self.pairs.values()}:
                decimals[pair.quote] = max(decimals.get(pair.quote, 0), pair.cost_decimals)
        return decimals

    def now(self) -> float:
        return self._now()

    def _moved(self) -> None:
        for listener in self.listeners:
            listener()

    def pair(self, name: str) -> Pair:
        """A pair by its id, altname or wsname."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KrakenError("EQuery:Unknown asset pair") from None

    # balances

    def set_balance(self, asset: str, amount: DecimalLike) -> None:
        if asset not in self.asset_decimals:
            raise KrakenError("EQuery:Unknown asset")
        self._balances[asset] = to_decimal(amount)

    def balance(self, asset: str) -> Decimal:
        return self._balances.get(asset, ZERO)

    def holds(self) -> dict[str, Decimal]:
        """What resting orders hold, per asset."""
        held: dict[str, Decimal] = {}
        with money_context():
            for order in self.open_orders():
                asset, amount = self._needs(order.pair, order.is_buy, order.remaining, order.price)
                held[asset] = held.get(asset, ZERO) + amount
        return held

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Every asset the account has held: (balance, held by resting orders)."""
        held = self.holds()
        return {asset: (amount, held.get(asset, ZERO)) for asset, amount in self._balances.items()}

    def _needs(
        self, pair: Pair, is_buy: bool, volume: Decimal, limit: Decimal | None
    ) -> tuple[str, Decimal]:
        if not is_buy:
            return pair.base, volume
        assert limit is not None  # a market buy is checked against its planned fills instead
        cost = pair.cost_of(limit, volume)
        return pair.quote, cost + max(pair.fee_on(cost, maker=False), ZERO)

    def _available(self, asset: str) -> Decimal:
        return self.balance(asset) - self.holds().get(asset, ZERO)

    # the book

    def set_book(
        self,
        pair_name: str,
        bids: Iterable[tuple[DecimalLike, DecimalLike]],
        asks: Iterable[tuple[DecimalLike, DecimalLike]],
    ) -> None:
        """Replace a pair's book; resting orders it crosses fill at once."""
        pair = self.pair(pair_name)
        book = _Book(_levels(bids, descending=True), _levels(asks, descending=False), self.now())
        if book.bids and book.asks and book.bids[0].price >= book.asks[0].price:
            raise ValueError(f"{pair.altname}: best bid {book.bids[0].price} is not below best ask")
        self._books[pair.pair_id] = book
        resting = [order for order in self.open_orders() if order.pair is pair]
        for order in sorted(resting, key=_priority):
            self._walk(order, order.price, maker=True)
            self._settle(order)
        self._moved()

    def book(self, pair_name: str) -> tuple[list[Quote], list[Quote], float]:
        """(bids, asks, updated): levels best first as (price, size)."""
        book = self._books[self.pair(pair_name).pair_id]
        return _quotes(book.bids), _quotes(book.asks), book.updated

    # orders

    def add_order(
        self,
        *,
        pair: str,
        side: str,
        ordertype: str,
        volume: str,
        price: str | None = None,
        timeinforce: str = "GTC",
        oflags: str = "",
        cl_ord_id: str | None = None,
        userref: int | None = None,
    ) -> SandboxOrder:
        """Take an order as Kraken's AddOrder does; raise ``KrakenError`` where Kraken refuses."""
        spec = self.pair(pair)
        if spec.status != "online":
            raise KrakenError(f"EService:Market in {spec.status} mode")
        if side not in ("buy", "sell"):
            raise KrakenError("EGeneral:Invalid arguments:type")
        if ordertype not in ("limit", "market"):
            raise KrakenError("EGeneral:Invalid arguments:ordertype")
        tif = timeinforce.upper()
        if tif not in ("GTC", "IOC"):
            raise KrakenError("EGeneral:Invalid arguments:timeinforce")
        flags = {flag for flag in oflags.split(",") if flag}
        if not flags <= ORDER_FLAGS:
            raise KrakenError("EGeneral:Invalid arguments:oflags")
        check_client_id(cl_ord_id, userref)
        if cl_ord_id is not None and any(o.cl_ord_id == cl_ord_id for o in self.open_orders()):
            raise KrakenError("EOrder:Duplicate cl_ord_id")
        qty = decimal_arg(volume, "volume", spec.lot_decimals)
        limit = decimal_arg(price, "price", spec.price_decimals) if ordertype == "limit" else None
        if limit is not None and limit % spec.tick != 0:
            raise KrakenError("EGeneral:Invalid arguments:price")
        if qty < spec.ordermin:
            raise KrakenError("EOrder:Order minimum not met")
        is_buy = side == "buy"
        with money_context():
            planned = self._plan(spec, is_buy, qty, limit)
            self._check_cost_and_funds(spec, is_buy, qty, limit, planned)
        order = SandboxOrder(
            txid=f"O{len(self.orders) + 1:05d}-PEGBT-SANDBX",
            pair=spec,
            side=side,
            ordertype=ordertype,
            price=limit,
            volume=qty,
            timeinforce="IOC" if ordertype == "market" else tif,
            post_only="post" in flags,
            cl_ord_id=cl_ord_id,
            userref=userref,
            opentm=self.now(),
        )
        self.orders[order.txid] = order
        if order.post_only and planned:
            self._close(order, "canceled", "Post only order")
            return order
        self._walk(order, None, maker=False)
        if order.remaining and order.timeinforce == "IOC":
            self._close(order, "canceled", "Immediate or cancel")
        self._settle(order)
        self._moved()
        return order

    def _plan(
        self, pair: Pair, is_buy: bool, qty: Decimal, limit: Decimal | None
    ) -> list[tuple[Decimal, Decimal]]:
        """The (price, volume) an aggressive order would trade now, without trading."""
        book = self._books[pair.pair_id]
        planned: list[tuple[Decimal, Decimal]] = []
        left = qty
        for level in book.asks if is_buy else book.bids:
            if not left or not _crosses(is_buy, level.price, limit):
                break
            take = min(level.size, left)
            planned.append((level.price, take))
            left -= take
        return planned

    def _check_cost_and_funds(
        self,
        pair: Pair,
        is_buy: bool,
        qty: Decimal,
        limit: Decimal | None,
        planned: list[tuple[Decimal, Decimal]],
    ) -> None:
        planned_cost = sum((pair.cost_of(price, vol) for price, vol in planned), ZERO)
        cost = pair.cost_of(limit, qty) if limit is not None else planned_cost
        if (limit is not None or planned) and cost < pair.costmin:
            raise KrakenError("EOrder:Order minimum not met")
        if limit is not None or not is_buy:
            asset, need = self._needs(pair, is_buy, qty, limit)
        else:
            asset, need = pair.quote, planned_cost + pair.fee_on(planned_cost, maker=False)
        if need > self._available(asset):
            raise KrakenError("EOrder:Insufficient funds")

    def _walk(self, order: SandboxOrder, at_price: Decimal | None, *, maker: bool) -> None:
        """Trade ``order`` against the opposite levels that cross its limit, at their prices (or
        at ``at_price``, a resting order's own), taking their size out of the book."""
        book = self._books[order.pair.pair_id]
        levels = book.asks if order.is_buy else book.bids
        with money_context():
            while (
                levels and order.remaining and _crosses(order.is_buy, levels[0].price, order.price)
            ):
                level = levels[0]
                take = min(level.size, order.remaining)
                price = level.price if at_price is None else at_price
                self._trade(order, price, take, maker=maker)
                level.size -= take
                if not level.size:
                    levels.pop(0)

    def _trade(self, order: SandboxOrder, price: Decimal, vol: Decimal, *, maker: bool) -> None:
        pair = order.pair
        cost = pair.cost_of(price, vol)
        fee = pair.fee_on(cost, maker=maker)
        sign = 1 if order.is_buy else -1
        self._balances[pair.base] = self.balance(pair.base) + sign * vol
        self._balances[pair.quote] = self.balance(pair.quote) - sign * cost - fee
        order.vol_exec += vol
        order.cost += cost
        order.fee += fee
        number = len(self.trades) + 1
        trade = SandboxTrade(
            txid=f"T{number:05d}-PEGBT-SANDBX",
            ordertxid=order.txid,
            pair=pair,
            time=self.now(),
            side=order.side,
            ordertype=order.ordertype,
            price=price,
            vol=vol,
            cost=cost,
            fee=fee,
            maker=maker,
            trade_id=number,
        )
        self.trades[trade.txid] = trade
        order.trade_ids.append(trade.txid)
        if maker:  # the other side took our resting order
            side, ordertype = ("sell" if order.is_buy else "buy"), "limit"
        else:
            side, ordertype = order.side, order.ordertype
        self.tape.append(Print(pair, trade.time, price, vol, side, ordertype, len(self.tape) + 1))

    def print_trade(
        self, pair_name: str, price: DecimalLike, volume: DecimalLike, side: str
    ) -> Print:
        """Another participant's trade on the public tape (the book is not changed)."""
        if side not in ("buy", "sell"):
            raise ValueError(f"a print's side is buy or sell, not {side!r}")
        p, v = to_decimal(price), to_decimal(volume)
        if p <= 0 or v <= 0:
            raise ValueError("a print needs a positive price and volume")
        pair = self.pair(pair_name)
        done = Print(pair, self.now(), p, v, side, "market", len(self.tape) + 1)
        self.tape.append(done)
        self._moved()
        return done

    def _settle(self, order: SandboxOrder) -> None:
        if order.status == "open" and not order.remaining:
            self._close(order, "closed", None)

    def _close(self, order: SandboxOrder, status: str, reason: str | None) -> None:
        order.status = status
        order.reason = reason
        order.closetm = self.now()

    def cancel(self, *, txid: str | None = None, cl_ord_id: str | None = None) -> int:
        """Cancel open orders by txid, by userref (an integer ``txid``, as Kraken allows) or by
        cl_ord_id; the number canceled. Nothing open to cancel is ``EOrder:Unknown order``."""
        if cl_ord_id is not None:
            targets = [o for o in self.open_orders() if o.cl_ord_id == cl_ord_id]
        elif txid is not None and txid.lstrip("-").isdigit():
            targets = [o for o in self.open_orders() if o.userref == int(txid)]
        else:
            order = self.orders.get(txid or "")
            targets = [order] if order is not None and order.status == "open" else []
        if not targets:
            raise KrakenError("EOrder:Unknown order")
        for order in targets:
            self._close(order, "canceled", "User requested")
        return len(targets)

    def query(self, txids: Iterable[str]) -> list[SandboxOrder]:
        found = [self.orders.get(txid) for txid in txids]
        if not found or any(order is None for order in found):
            raise KrakenError("EOrder:Invalid order")
        return [order for order in found if order is not None]

    def open_orders(self) -> list[SandboxOrder]:
        return [order for order in self.orders.values() if order.status == "open"]

    def closed_orders(self) -> list[SandboxOrder]:
        """Newest first, as Kraken lists them."""
        return [order for order in reversed(self.orders.values()) if order.status != "open"]
