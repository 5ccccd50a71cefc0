"""Kraken's REST answer shapes for the exchange sandbox: assets, ticker, depth, balances, orders and
trades, numbers as strings at the pair's decimals, as Kraken sends them.

Fields follow what ccxt's Kraken class reads (``parse_order``, ``parse_trade``, ``parse_ticker``,
``parse_order_book``, ``parse_balance``). The ticker's statistics come from the sandbox's own trades
(its whole tape, not a rolling day). What this module may not do: change the venue's state.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from bot.money import ZERO, money_context
from connectors.sandbox.exchange_orders import Pair, SandboxOrder, SandboxTrade
from connectors.sandbox.exchange_venue import Print, Quote, SandboxVenue


def fixed(value: Decimal, places: int) -> str:
    return f"{value:.{places}f}"


def asset_altname(asset: str) -> str:
    """Kraken's legacy four-letter ids carry an X (crypto) or Z (fiat) prefix: ZUSD is USD."""
    return asset[1:] if len(asset) == 4 and asset[0] in "XZ" else asset


def assets(venue: SandboxVenue) -> dict[str, Any]:
    """The Assets result for every asset the pairs name (derived: no recorded answer exists)."""
    aclass: dict[str, str] = {}
    for entry in venue.asset_pairs.values():
        aclass.setdefault(entry["base"], entry.get("aclass_base", "currency"))
        aclass.setdefault(entry["quote"], entry.get("aclass_quote", "currency"))
    return {
        asset: {
            "aclass": aclass[asset],
            "altname": asset_altname(asset),
            "decimals": decimals,
            "display_decimals": decimals,
            "status": "enabled",
        }
        for asset, decimals in sorted(venue.asset_decimals.items())
    }


def public_trades(pair: Pair, tape: list[Print]) -> list[list[Any]]:
    """Trades as the public Trades endpoint lists them: price, volume, time, b/s, m/l, misc,
    trade id."""
    return [
        [
            fixed(t.price, pair.price_decimals),
            fixed(t.vol, pair.lot_decimals),
            round(t.time, 4),
            "b" if t.side == "buy" else "s",
            "l" if t.ordertype == "limit" else "m",
            "",
            t.trade_id,
        ]
        for t in tape
    ]


def depth(pair: Pair, bids: list[Quote], asks: list[Quote], updated: float) -> dict[str, Any]:
    def side(levels: list[Quote]) -> list[list[Any]]:
        return [
            [fixed(price, pair.price_decimals), fixed(size, pair.lot_decimals), int(updated)]
            for price, size in levels
        ]

    return {"asks": side(asks), "bids": side(bids)}


def ticker(
    pair: Pair, bids: list[Quote], asks: list[Quote], tape: list[SandboxTrade]
) -> dict[str, Any]:
    def top(levels: list[Quote]) -> list[str]:
        if not levels:
            return []
        price, size = levels[0]
        return [fixed(price, pair.price_decimals), str(int(size)), fixed(size, pair.lot_decimals)]

    def px(value: Decimal) -> str:
        return fixed(value, pair.price_decimals)

    with money_context():
        volume = sum((t.vol for t in tape), ZERO)
        notional = sum((t.price * t.vol for t in tape), ZERO)
        cost_step = Decimal(1).scaleb(-pair.cost_decimals)
        vwap_value = (notional / volume).quantize(cost_step, ROUND_HALF_EVEN) if volume else ZERO
    vwap = fixed(vwap_value, pair.cost_decimals)
    vol = fixed(volume, pair.lot_decimals)
    prices = [t.price for t in tape]
    return {
        "a": top(asks),
        "b": top(bids),
        "c": [px(tape[-1].price), fixed(tape[-1].vol, pair.lot_decimals)] if tape else [],
        "v": [vol, vol],
        "p": [vwap, vwap],
        "t": [len(tape), len(tape)],
        "l": [px(min(prices))] * 2 if tape else [],
        "h": [px(max(prices))] * 2 if tape else [],
        "o": px(tape[0].price) if tape else None,
    }


def balances(venue: SandboxVenue, *, extended: bool) -> dict[str, Any]:
    """Balance (amounts) or BalanceEx (amount and what resting orders hold)."""
    result: dict[str, Any] = {}
    for asset, (amount, held) in venue.balances().items():
        places = venue.asset_decimals[asset]
        total = fixed(amount, places)
        result[asset] = {"balance": total, "hold_trade": fixed(held, places)} if extended else total
    return result


def order_description(order: SandboxOrder) -> str:
    pair = order.pair
    head = f"{order.side} {fixed(order.volume, pair.lot_decimals)} {pair.altname} @ "
    if order.price is None:
        return head + "market"
    return head + f"limit {fixed(order.price, pair.price_decimals)}"


def order_info(order: SandboxOrder, *, with_trades: bool) -> dict[str, Any]:
    """One order as OpenOrders, ClosedOrders and QueryOrders list it."""
    pair = order.pair
    cost_places = pair.cost_decimals
    with money_context():
        average = order.cost / order.vol_exec if order.vol_exec else ZERO
    info: dict[str, Any] = {
        "refid": None,
        "userref": order.userref,
        "status": order.status,
        "opentm": order.opentm,
        "starttm": 0,
        "expiretm": 0,
        "descr": {
            "pair": pair.altname,
            "type": order.side,
            "ordertype": order.ordertype,
            "price": fixed(order.price, pair.price_decimals) if order.price is not None else "0",
            "price2": "0",
            "leverage": "none",
            "order": order_description(order),
            "close": "",
        },
        "vol": fixed(order.volume, pair.lot_decimals),
        "vol_exec": fixed(order.vol_exec, pair.lot_decimals),
        "cost": fixed(order.cost, cost_places),
        "fee": fixed(order.fee, cost_places),
        "price": fixed(average, cost_places),
        "stopprice": fixed(ZERO, cost_places),
        "limitprice": fixed(ZERO, cost_places),
        "misc": "",
        "oflags": "fciq,post" if order.post_only else "fciq",
        "reason": order.reason,
    }
    if order.cl_ord_id is not None:
        info["cl_ord_id"] = order.cl_ord_id
    if order.closetm is not None:
        info["closetm"] = order.closetm
    if with_trades and order.trade_ids:
        info["trades"] = list(order.trade_ids)
    return info


def trade_info(trade: SandboxTrade) -> dict[str, Any]:
    """One of our trades as TradesHistory lists it."""
    pair = trade.pair
    return {
        "ordertxid": trade.ordertxid,
        "postxid": trade.txid,
        "pair": pair.pair_id,
        "time": trade.time,
        "type": trade.side,
        "ordertype": trade.ordertype,
        "price": fixed(trade.price, pair.price_decimals),
        "cost": fixed(trade.cost, pair.cost_decimals),
        "fee": fixed(trade.fee, pair.cost_decimals),
        "vol": fixed(trade.vol, pair.lot_decimals),
        "margin": fixed(ZERO, pair.cost_decimals),
        "leverage": "0",
        "misc": "",
        "trade_id": trade.trade_id,
        "maker": trade.maker,
    }
