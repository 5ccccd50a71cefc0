"""Alpaca's JSON and msgpack shapes for what the broker sandbox keeps.

Field names and formats are those alpaca-py's models parse (``alpaca.trading.models``,
``alpaca.data.models`` with ``alpaca.data.mappings``): money and quantities as decimal strings on
the trading API, floats on the market-data API; trading timestamps RFC 3339 in UTC with
microseconds, market-data timestamps with nanoseconds (msgpack Timestamps on the stream).

What this module may not do: change state; it only renders.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import msgpack

from bot.sessions import EASTERN
from connectors.sandbox.broker_account import ZERO, Account, Holding
from connectors.sandbox.broker_desk import Execution, SandboxOrder
from connectors.sandbox.broker_fees import FeeActivity
from connectors.sandbox.quotes import StockQuote, StockTrade, decimal_text

EXCHANGE = "NASDAQ"  # every sandbox listing; alpaca-py checks it against AssetExchange
FEED_VENUE = "V"  # IEX's code in quote and trade messages
_NS = 1_000_000_000
_NINE_PLACES = Decimal("1e-9")
_ACCOUNT_NAMESPACE = uuid.UUID("6b1c6a2e-52a1-4d5e-9d0b-7a1f0c3d2e10")


number = decimal_text


def average(value: Decimal) -> str:
    """An average price, to the 9 decimal places Alpaca gives quantities and prices."""
    return number(value.quantize(_NINE_PLACES))


def iso_us(ts_ns: int) -> str:
    """RFC 3339 UTC with microseconds, as the trading API stamps orders."""
    stamp = datetime.fromtimestamp(ts_ns // _NS, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{ts_ns % _NS // 1000:06d}Z"


def iso_ns(ts_ns: int) -> str:
    """RFC 3339 UTC with nanoseconds, as the market-data API stamps quotes and trades."""
    stamp = datetime.fromtimestamp(ts_ns // _NS, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{ts_ns % _NS:09d}Z"


def iso_eastern(ts_ns: int) -> str:
    """RFC 3339 in New York time (the clock endpoint answers in the exchange's offset)."""
    local = datetime.fromtimestamp(ts_ns // _NS, EASTERN)
    offset = local.strftime("%z")
    stamp = local.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{ts_ns % _NS:09d}{offset[:3]}:{offset[3:]}"


def eastern_date(ts_ns: int) -> date:
    return datetime.fromtimestamp(ts_ns // _NS, EASTERN).date()


_FEE_NAMES = {"REG": "SEC fee", "TAF": "FINRA trading activity fee"}


def fee_activity_json(fee: FeeActivity) -> dict[str, Any]:
    """A FEE non-trade activity as ``GET /v2/account/activities`` lists it."""
    return {
        "id": fee.id,
        "activity_type": "FEE",
        "activity_sub_type": fee.sub_type,
        "date": eastern_date(fee.ts_ns).isoformat(),
        "created_at": iso_us(fee.ts_ns),
        "net_amount": number(-fee.amount),
        "description": f"{_FEE_NAMES[fee.sub_type]} on the sale of {number(fee.qty)} {fee.symbol}",
        "symbol": fee.symbol,
        "qty": number(fee.qty),
        "per_share_amount": None,
        "status": "executed",
    }


def _optional_iso(ts_ns: int | None) -> str | None:
    return None if ts_ns is None else iso_us(ts_ns)


def asset_id(symbol: str) -> str:
    return str(uuid.uuid5(_ACCOUNT_NAMESPACE, f"asset/{symbol}"))


def account_id() -> str:
    return str(uuid.uuid5(_ACCOUNT_NAMESPACE, "account"))


def order_json(order: SandboxOrder) -> dict[str, Any]:
    avg, ticket = order.filled_avg_price, order.ticket
    return {
        "id": order.id,
        "client_order_id": order.client_order_id,
        "created_at": iso_us(order.submitted_ns),
        "updated_at": iso_us(order.updated_ns),
        "submitted_at": iso_us(order.submitted_ns),
        "filled_at": _optional_iso(order.filled_ns),
        "expired_at": _optional_iso(order.expired_ns),
        "canceled_at": _optional_iso(order.canceled_ns),
        "failed_at": _optional_iso(order.failed_ns),
        "replaced_at": _optional_iso(order.replaced_ns),
        "replaced_by": order.replaced_by,
        "replaces": order.replaces,
        "expires_at": _optional_iso(order.expires_ns),
        "asset_id": asset_id(order.symbol),
        "symbol": order.symbol,
        "asset_class": "us_equity",
        "notional": None,
        "qty": number(ticket.qty),
        "filled_qty": number(order.filled_qty),
        "filled_avg_price": None if avg is None else average(avg),
        "order_class": "",
        "order_type": ticket.type,
        "type": ticket.type,
        "side": ticket.side,
        "position_intent": None,
        "time_in_force": ticket.time_in_force,
        "limit_price": None if ticket.limit_price is None else number(ticket.limit_price),
        "stop_price": None,
        "status": order.status,
        "extended_hours": ticket.extended_hours,
        "legs": None,
        "trail_percent": None,
        "trail_price": None,
        "hwm": None,
    }


def trade_update_json(
    event: str, order: SandboxOrder, ts_ns: int, execution: Execution | None
) -> dict[str, Any]:
    """One ``trade_updates`` message as the trading stream sends it."""
    data: dict[str, Any] = {"event": event, "order": order_json(order), "timestamp": iso_us(ts_ns)}
    if execution is not None:
        data["execution_id"] = execution.execution_id
        data["price"] = number(execution.price)
        data["qty"] = number(execution.qty)
        data["position_qty"] = number(execution.position_qty)
    return {"stream": "trade_updates", "data": data}


def position_json(
    symbol: str, holding: Holding, mark: Decimal, qty_held: Decimal
) -> dict[str, Any]:
    value = holding.qty * mark
    pnl = value - holding.cost_basis
    plpc = pnl / abs(holding.cost_basis) if holding.cost_basis else ZERO
    return {
        "asset_id": asset_id(symbol),
        "symbol": symbol,
        "exchange": EXCHANGE,
        "asset_class": "us_equity",
        "asset_marginable": False,
        "avg_entry_price": average(holding.avg_entry_price),
        "qty": number(holding.qty),
        "qty_available": number(holding.qty - qty_held) if holding.qty > 0 else number(holding.qty),
        "side": "long" if holding.qty > 0 else "short",
        "market_value": number(value),
        "cost_basis": number(holding.cost_basis),
        "unrealized_pl": number(pnl),
        "unrealized_plpc": number(plpc.quantize(Decimal("1e-10"))),
        "unrealized_intraday_pl": number(pnl),
        "unrealized_intraday_plpc": number(plpc.quantize(Decimal("1e-10"))),
        "current_price": number(mark),
        "lastday_price": number(mark),
        "change_today": "0",
    }


def account_json(account: Account, ts_ns: int, marks: dict[str, Decimal]) -> dict[str, Any]:
    long, short = account.market_value(marks)
    equity = account.cash + long + short
    power = number(account.buying_power(ts_ns))
    return {
        "id": account_id(),
        "account_number": "PA0SANDBOX01",
        "status": "ACTIVE",
        "crypto_status": "INACTIVE",
        "currency": "USD",
        "cash": number(account.cash),
        "buying_power": power,
        "regt_buying_power": power,
        "daytrading_buying_power": "0",
        "non_marginable_buying_power": power,
        "effective_buying_power": power,
        "accrued_fees": "0",
        "pending_transfer_in": "0",
        "pending_transfer_out": "0",
        "portfolio_value": number(equity),
        "equity": number(equity),
        "last_equity": number(equity),
        "long_market_value": number(long),
        "short_market_value": number(short),
        "initial_margin": "0",
        "maintenance_margin": "0",
        "last_maintenance_margin": "0",
        "sma": "0",
        # shorting needs a margin account at Alpaca; the sandbox lends nothing (buying power is
        # cash either way), but says which kind the account is
        "multiplier": "2" if account.shorting_enabled else "1",
        "pattern_day_trader": account.pattern_day_trader(ts_ns),
        "daytrade_count": account.daytrade_count(ts_ns),
        "shorting_enabled": account.shorting_enabled,
        "trading_blocked": False,
        "transfers_blocked": False,
        "account_blocked": False,
        "trade_suspended_by_user": False,
        "created_at": "2025-01-02T14:30:00.000000Z",
    }


def asset_json(symbol: str, shortable: bool) -> dict[str, Any]:
    return {
        "id": asset_id(symbol),
        "class": "us_equity",
        "exchange": EXCHANGE,
        "symbol": symbol,
        "name": f"{symbol} (sandbox)",
        "status": "active",
        "tradable": True,
        "marginable": False,
        "shortable": shortable,
        "easy_to_borrow": shortable,
        "fractionable": True,
        "attributes": [],
    }


def quote_fields(quote: StockQuote) -> dict[str, Any]:
    """A quote's fields under Alpaca's short keys, without its time (REST and stream differ)."""
    return {
        "ax": FEED_VENUE,
        "ap": float(quote.ask),
        "as": quote.ask_size,
        "bx": FEED_VENUE,
        "bp": float(quote.bid),
        "bs": quote.bid_size,
        "c": ["R"],
        "z": "C",
    }


def trade_fields(trade: StockTrade) -> dict[str, Any]:
    return {
        "i": trade.trade_id,
        "x": FEED_VENUE,
        "p": float(trade.price),
        "s": float(trade.size),
        "c": ["@"],
        "z": "C",
    }


def quote_frame(quote: StockQuote) -> dict[str, Any]:
    """A quote as the market-data stream sends it (``t`` a msgpack Timestamp)."""
    return {"T": "q", "S": quote.symbol, **quote_fields(quote), "t": _stamp(quote.ts_ns)}


def trade_frame(trade: StockTrade) -> dict[str, Any]:
    return {"T": "t", "S": trade.symbol, **trade_fields(trade), "t": _stamp(trade.ts_ns)}


def _stamp(ts_ns: int) -> msgpack.Timestamp:
    return msgpack.Timestamp.from_unix_nano(ts_ns)


def calendar_day_json(
    day: date, open_ns: int, close_ns: int, session_close_ns: int, settles: date
) -> dict[str, str]:
    return {
        "date": day.isoformat(),
        "open": datetime.fromtimestamp(open_ns // _NS, EASTERN).strftime("%H:%M"),
        "close": datetime.fromtimestamp(close_ns // _NS, EASTERN).strftime("%H:%M"),
        "session_open": "0400",
        "session_close": datetime.fromtimestamp(session_close_ns // _NS, EASTERN).strftime("%H%M"),
        "settlement_date": settles.isoformat(),
    }
