"""Bybit's v5 answer shapes for the perpetual sandbox (perp.py): a linear instrument, a ticker, an
order and an execution, numbers as strings, times in milliseconds, as ccxt's Bybit class reads
them (``parse_market``, ``parse_ticker``/``parse_funding_rate``, ``parse_order``, ``parse_trade``
and ``parse_income``).

What this module may not do: change the venue's state.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bot.money import ZERO
from connectors.sandbox.perp_venue import Contract, Execution, PerpOrder, PerpVenue


def text(value: Decimal | None) -> str:
    """A number as Bybit writes it: plain digits, no exponent; empty for none."""
    return "" if value is None else format(value.normalize(), "f") if value else "0"


def ticker(venue: PerpVenue, contract: Contract) -> dict[str, Any]:
    """One linear contract as the tickers answer lists it."""
    return {
        "symbol": contract.symbol,
        "lastPrice": text(contract.last_price or contract.mark),
        "indexPrice": text(contract.index),
        "markPrice": text(contract.mark),
        "prevPrice24h": text(contract.mark),
        "price24hPcnt": "0",
        "highPrice24h": text(contract.mark),
        "lowPrice24h": text(contract.mark),
        "openInterest": "0",
        "turnover24h": "0",
        "volume24h": "0",
        "fundingRate": text(contract.funding_rate),
        "nextFundingTime": str(venue.next_funding_ms(contract)),
        "predictedDeliveryPrice": "",
        "basisRate": "",
        "deliveryFeeRate": "",
        "deliveryTime": "0",
        "bid1Price": text(contract.bid),
        "bid1Size": "100",
        "ask1Price": text(contract.ask),
        "ask1Size": "100",
    }


def instrument(contract: Contract) -> dict[str, Any]:
    return {
        "symbol": contract.symbol,
        "contractType": "LinearPerpetual",
        "status": "Trading",
        "baseCoin": contract.base_coin,
        "quoteCoin": "USDT",
        "settleCoin": "USDT",
        "launchTime": "1767225600000",
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": str(-int(contract.tick.as_tuple().exponent)),
        "leverageFilter": {
            "minLeverage": "1",
            "maxLeverage": text(contract.max_leverage),
            "leverageStep": "0.01",
        },
        "priceFilter": {
            "minPrice": text(contract.tick),
            "maxPrice": "99999",
            "tickSize": text(contract.tick),
        },
        "lotSizeFilter": {
            "maxOrderQty": "10000",
            "minOrderQty": text(contract.min_qty),
            "qtyStep": text(contract.qty_step),
            "postOnlyMaxOrderQty": "10000",
            "maxMktOrderQty": "5000",
            "minNotionalValue": "5",
        },
        "unifiedMarginTrade": True,
        "fundingInterval": contract.funding_interval_min,
        "copyTrading": "none",
        "upperFundingRate": "0.005",
        "lowerFundingRate": "-0.005",
        "isPreListing": False,
        "preListingInfo": None,
    }


def order_row(order: PerpOrder) -> dict[str, Any]:
    average = order.cost / order.filled if order.filled else ZERO
    return {
        "orderId": order.order_id,
        "orderLinkId": order.link_id,
        "blockTradeId": "",
        "symbol": order.symbol,
        "price": text(order.price) or "0",
        "qty": text(order.qty),
        "side": order.side,
        "isLeverage": "",
        "positionIdx": 0,
        "orderStatus": order.status,
        "cancelType": "CancelByUser" if order.status == "Cancelled" else "UNKNOWN",
        "rejectReason": "EC_NoError",
        "avgPrice": text(average) if order.filled else "",
        "leavesQty": text(order.qty - order.filled) if order.status == "New" else "0",
        "leavesValue": "0",
        "cumExecQty": text(order.filled),
        "cumExecValue": text(order.cost),
        "cumExecFee": text(order.fee),
        "timeInForce": order.tif,
        "orderType": order.order_type,
        "stopOrderType": "",
        "triggerPrice": "0",
        "takeProfit": "0",
        "stopLoss": "0",
        "reduceOnly": False,
        "closeOnTrigger": False,
        "createdTime": str(order.created_ms),
        "updatedTime": str(order.updated_ms),
    }


def execution_row(execution: Execution) -> dict[str, Any]:
    return {
        "symbol": execution.symbol,
        "orderId": execution.order_id,
        "orderLinkId": execution.link_id,
        "side": execution.side,
        "orderType": "UNKNOWN" if execution.exec_type == "Funding" else "Limit",
        "execId": execution.exec_id,
        "execType": execution.exec_type,
        "execPrice": text(execution.price),
        "execQty": text(execution.qty),
        "execValue": text(execution.qty * execution.price),
        "execFee": text(execution.fee),
        "feeRate": text(execution.fee_rate),
        "feeCurrency": "",
        "isMaker": execution.is_maker,
        "markPrice": text(execution.mark),
        "indexPrice": "",
        "execTime": str(execution.time_ms),
        "orderQty": "0",
        "orderPrice": "0",
        "leavesQty": "0",
        "closedSize": "0",
        "stopOrderType": "UNKNOWN",
        "seq": "1",
    }
