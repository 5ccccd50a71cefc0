"""The money and matching of the perpetual sandbox (``perp.py`` is its HTTP face): linear USDT
perpetuals on tokenized stocks, one cross-margined account, a clock the test moves.

- Each contract has a mark and an index the test sets (``set_mark``), a funding rate it sets
  (``set_funding_rate``) and a funding interval (Bybit's ``fundingInterval``, minutes). Funding is
  settled at every multiple of the interval since the epoch that the clock passes (``advance``):
  a position of signed size ``q`` pays ``q * mark * rate`` (a long pays a positive rate, a short
  receives it), taken from the wallet and recorded as one ``Funding`` execution with its own id,
  its fee what was paid and its side the one that would close the position (ADR 0019 reads both
  from ccxt's sample of Bybit's answer).
- The book is one level each side around the mark: bid ``mark - spread``, ask ``mark + spread``.
  A market order, or a limit that crosses, fills in full at the touch as taker; a limit that does
  not cross rests and fills at its limit as maker once the mark moves through it. Fees are
  charged on the notional at the contract's taker or maker rate.
- The account is one position per contract (one-way mode), its average entry price and the USDT
  wallet. Realized PnL and fees go to the wallet; equity adds the unrealized PnL at the mark.
  The average entry price is kept to 8 decimal places (half-even), so every PnL is exact.
  Initial margin is ``|q| * mark / leverage``, maintenance margin ``|q| * mark * mmr``; the
  liquidation price is where the account's equity would meet the position's maintenance margin
  (one position in the account): ``(q * entry - wallet) / (q - mmr * |q|)``, at the tick, rounded
  toward the mark; none when it is not positive.
- An order is refused (one line, Bybit's code) for an unknown symbol, a size off the step or below
  the minimum, a duplicate client id (``orderLinkId``), or an initial margin above the available
  balance.

What this module may not do: read the wall clock (time is ``now_ms``, moved by the caller), or
answer HTTP.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any

from bot.money import ZERO, money_context, to_decimal

MS_PER_MIN = 60_000
ENTRY_STEP = Decimal("0.00000001")  # the average entry price is kept to 8 places, so PnL is exact


class PerpRefusal(Exception):
    """A request the venue refuses: Bybit's ``retCode`` and ``retMsg``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class Contract:
    """One linear perpetual as the venue lists it."""

    symbol: str  # "AAPLXUSDT"
    base_coin: str  # "AAPLX"
    tick: Decimal
    qty_step: Decimal
    min_qty: Decimal
    funding_interval_min: int = 480
    taker_fee: Decimal = Decimal("0.00055")
    maker_fee: Decimal = Decimal("0.0002")
    mmr: Decimal = Decimal("0.01")  # maintenance margin rate
    max_leverage: Decimal = Decimal(20)
    mark: Decimal = ZERO
    index: Decimal = ZERO
    spread: Decimal = ZERO  # half the bid-ask, around the mark
    funding_rate: Decimal = ZERO
    last_price: Decimal = ZERO

    @property
    def bid(self) -> Decimal:
        return self.mark - self.spread

    @property
    def ask(self) -> Decimal:
        return self.mark + self.spread


@dataclass(slots=True)
class Position:
    qty: Decimal = ZERO  # signed: long > 0
    entry: Decimal = ZERO
    realized: Decimal = ZERO
    leverage: Decimal = Decimal(10)
    created_ms: int = 0
    updated_ms: int = 0


@dataclass(slots=True)
class PerpOrder:
    order_id: str
    link_id: str
    symbol: str
    side: str  # "Buy" | "Sell"
    order_type: str  # "Limit" | "Market"
    qty: Decimal
    price: Decimal | None
    tif: str
    created_ms: int
    status: str = "New"  # New | Filled | Cancelled | Rejected
    filled: Decimal = ZERO
    cost: Decimal = ZERO
    fee: Decimal = ZERO
    updated_ms: int = 0

    @property
    def sign(self) -> int:
        return 1 if self.side == "Buy" else -1


@dataclass(slots=True)
class Execution:
    """A trade of ours or a funding settlement (``exec_type`` "Trade" | "Funding")."""

    exec_id: str
    exec_type: str
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    fee: Decimal  # what we paid (negative: received)
    fee_rate: Decimal
    time_ms: int
    order_id: str = ""
    link_id: str = ""
    is_maker: bool = False
    mark: Decimal = ZERO


@dataclass(slots=True)
class PerpVenue:
    """The whole venue: contracts, the account, orders, executions, the clock."""

    contracts: dict[str, Contract]
    wallet: Decimal = ZERO
    settle_coin: str = "USDT"
    now_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    positions: dict[str, Position] = field(default_factory=dict)
    orders: dict[str, PerpOrder] = field(default_factory=dict)
    executions: list[Execution] = field(default_factory=list)

    # ---- what the test moves -----------------------------------------------------------------

    def contract(self, symbol: str) -> Contract:
        try:
            return self.contracts[symbol]
        except KeyError:
            raise PerpRefusal(10001, f"params error: symbol invalid ({symbol})") from None

    def set_mark(self, symbol: str, mark: Any, index: Any = None, spread: Any = None) -> None:
        """Move the mark (and the index, and the half spread); resting orders it crosses fill."""
        contract = self.contract(symbol)
        contract.mark = to_decimal(mark)
        contract.index = to_decimal(index) if index is not None else contract.mark
        if spread is not None:
            contract.spread = to_decimal(spread)
        for order in list(self.orders.values()):
            if order.symbol == symbol and order.status == "New":
                self._try_fill(order, resting=True)

    def set_funding_rate(self, symbol: str, rate: Any) -> None:
        self.contract(symbol).funding_rate = to_decimal(rate)

    def advance(self, ms: int) -> list[Execution]:
        """Move the clock ``ms`` forward, settling every funding time passed; the settlements."""
        settled: list[Execution] = []
        end = self.now_ms + ms
        while True:
            due = min((self.next_funding_ms(c), c.symbol) for c in self.contracts.values())
            if due[0] > end:
                break
            self.now_ms = due[0]
            settled.extend(self._settle_funding(self.contracts[due[1]]))
        self.now_ms = end
        return settled

    def next_funding_ms(self, contract: Contract) -> int:
        """The next funding time after now (a multiple of the interval since the epoch)."""
        interval = contract.funding_interval_min * MS_PER_MIN
        return (self.now_ms // interval + 1) * interval

    def _settle_funding(self, contract: Contract) -> list[Execution]:
        position = self.positions.get(contract.symbol)
        if position is None or not position.qty:
            self.now_ms += 1  # past this funding time
            return []
        with money_context():
            paid = position.qty * contract.mark * contract.funding_rate
            self.wallet -= paid
        execution = Execution(
            exec_id=str(uuid.uuid4()),
            exec_type="Funding",
            symbol=contract.symbol,
            side="Sell" if position.qty > 0 else "Buy",  # the side that closes it, as Bybit's
            qty=abs(position.qty),
            price=contract.mark,
            fee=paid,
            fee_rate=contract.funding_rate,
            time_ms=self.now_ms,
            mark=contract.mark,
        )
        self.executions.append(execution)
        self.now_ms += 1
        return [execution]

    # ---- orders ------------------------------------------------------------------------------

    def create_order(self, params: dict[str, Any]) -> PerpOrder:
        contract = self.contract(str(params.get("symbol")))
        link_id = str(params.get("orderLinkId") or "")
        if link_id and any(o.link_id == link_id for o in self.orders.values()):
            raise PerpRefusal(110072, "OrderLinkedID is duplicate")
        side = params.get("side")
        if side not in ("Buy", "Sell"):
            raise PerpRefusal(10001, f"params error: side invalid ({side})")
        order_type = params.get("orderType")
        if order_type not in ("Limit", "Market"):
            raise PerpRefusal(10001, f"params error: orderType invalid ({order_type})")
        qty = to_decimal(str(params.get("qty")))
        if qty < contract.min_qty or qty % contract.qty_step:
            raise PerpRefusal(
                10001, f"The number of contracts exceeds minimum limit allowed: {qty}"
            )
        price = None
        if order_type == "Limit":
            price = to_decimal(str(params.get("price")))
            if price <= 0 or price % contract.tick:
                raise PerpRefusal(10001, f"params error: price invalid ({price})")
        order = PerpOrder(
            order_id=str(uuid.uuid4()),
            link_id=link_id,
            symbol=contract.symbol,
            side=side,
            order_type=order_type,
            qty=qty,
            price=price,
            tif=str(params.get("timeInForce") or ("IOC" if order_type == "Market" else "GTC")),
            created_ms=self.now_ms,
            updated_ms=self.now_ms,
        )
        self._check_margin(order, contract)
        self.orders[order.order_id] = order
        self._try_fill(order, resting=False)
        if order.status == "New" and order.tif in ("IOC", "FOK"):
            order.status = "Cancelled"
        return order

    def _check_margin(self, order: PerpOrder, contract: Contract) -> None:
        position = self.positions.get(contract.symbol) or Position()
        after = abs(position.qty + order.sign * order.qty)
        if after <= abs(position.qty):
            return  # reduces the position
        price = order.price if order.price is not None else contract.ask
        with money_context():
            needed = (after - abs(position.qty)) * price / position.leverage
        if needed > self.available():
            raise PerpRefusal(110007, "ab not enough for new order")

    def cancel_order(self, params: dict[str, Any]) -> PerpOrder:
        order = self.find(params)
        if order is None or order.status != "New":
            raise PerpRefusal(110001, "order not exists or too late to cancel")
        order.status = "Cancelled"
        order.updated_ms = self.now_ms
        return order

    def find(self, params: dict[str, Any]) -> PerpOrder | None:
        order_id = params.get("orderId")
        link_id = params.get("orderLinkId")
        for order in self.orders.values():
            if (order_id and order.order_id == order_id) or (link_id and order.link_id == link_id):
                return order
        return None

    def _try_fill(self, order: PerpOrder, *, resting: bool) -> None:
        contract = self.contracts[order.symbol]
        touch = contract.ask if order.sign > 0 else contract.bid
        if order.price is not None and (touch - order.price) * order.sign > 0:
            return  # does not cross
        price = order.price if resting and order.price is not None else touch
        rate = contract.maker_fee if resting else contract.taker_fee
        with money_context():
            fee = order.qty * price * rate
        self._apply_trade(contract, order.sign * order.qty, price, fee)
        order.status, order.filled, order.updated_ms = "Filled", order.qty, self.now_ms
        with money_context():
            order.cost, order.fee = order.qty * price, fee
        contract.last_price = price
        self.executions.append(
            Execution(
                exec_id=str(uuid.uuid4()),
                exec_type="Trade",
                symbol=order.symbol,
                side=order.side,
                qty=order.qty,
                price=price,
                fee=fee,
                fee_rate=rate,
                time_ms=self.now_ms,
                order_id=order.order_id,
                link_id=order.link_id,
                is_maker=resting,
                mark=contract.mark,
            )
        )

    def _apply_trade(
        self, contract: Contract, change: Decimal, price: Decimal, fee: Decimal
    ) -> None:
        position = self.positions.setdefault(contract.symbol, Position(created_ms=self.now_ms))
        with money_context():
            old = position.qty
            new = old + change
            if old == 0 or (old > 0) == (change > 0):  # opens or adds
                entry = (old * position.entry + change * price) / new
                position.entry = entry.quantize(ENTRY_STEP, ROUND_HALF_EVEN)
            else:  # reduces, closes or flips
                closed = min(abs(change), abs(old))
                pnl = closed * (price - position.entry) * (1 if old > 0 else -1)
                position.realized += pnl
                self.wallet += pnl
                if new == 0:
                    position.entry = ZERO
                elif (new > 0) != (old > 0):
                    position.entry = price
            position.qty = new
            self.wallet -= fee
        position.updated_ms = self.now_ms

    # ---- the account -------------------------------------------------------------------------

    def unrealized(self, symbol: str) -> Decimal:
        position = self.positions.get(symbol)
        if position is None or not position.qty:
            return ZERO
        with money_context():
            return position.qty * (self.contracts[symbol].mark - position.entry)

    def initial_margin(self, symbol: str) -> Decimal:
        position = self.positions.get(symbol) or Position()
        with money_context():
            return abs(position.qty) * self.contracts[symbol].mark / position.leverage

    def maintenance_margin(self, symbol: str) -> Decimal:
        position = self.positions.get(symbol) or Position()
        contract = self.contracts[symbol]
        with money_context():
            return abs(position.qty) * contract.mark * contract.mmr

    def equity(self) -> Decimal:
        with money_context():
            return self.wallet + sum((self.unrealized(s) for s in self.positions), ZERO)

    def available(self) -> Decimal:
        with money_context():
            used = sum((self.initial_margin(s) for s in self.positions), ZERO)
            return max(ZERO, self.equity() - used)

    def liquidation_price(self, symbol: str) -> Decimal | None:
        """Where equity meets the position's maintenance margin, at the tick toward the mark."""
        position = self.positions.get(symbol)
        if position is None or not position.qty:
            return None
        contract = self.contracts[symbol]
        q = position.qty
        with money_context():
            price = (q * position.entry - self.wallet) / (q - contract.mmr * abs(q))
            rounding = ROUND_CEILING if q > 0 else ROUND_FLOOR
            price = (price / contract.tick).to_integral_value(rounding) * contract.tick
        return price if price > 0 else None
