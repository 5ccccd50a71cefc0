"""Current market state as the bot sees it: broker quotes, token books, pools, issuers, oracles.

The engine is the only writer. Strategies and risk read it through ``MarketState``. Prices here
are floats (signal math); exact amounts live in the ledger and in pool integers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.amm.v3_pool import V3Pool
    from bot.model import PerpState

NAN = math.nan


class TopOfBook:
    """Best bid and ask with sizes; nan when a side is empty or unknown."""

    __slots__ = ("bid", "bid_size", "ask", "ask_size", "ts_ns")

    def __init__(self) -> None:
        self.bid = NAN
        self.bid_size = 0.0
        self.ask = NAN
        self.ask_size = 0.0
        self.ts_ns = 0

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) * 0.5

    @property
    def valid(self) -> bool:
        # nan compares False, so this also rejects missing sides
        return 0.0 < self.bid <= self.ask


class Book:
    """A price-level book for one instrument on one exchange. When only top-of-book is known
    (``set_top``), the top is the whole visible book."""

    __slots__ = ("top", "bids", "asks", "_levels_only_top")

    def __init__(self) -> None:
        self.top = TopOfBook()
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self._levels_only_top = True

    def set_top(self, bid: float, bid_size: float, ask: float, ask_size: float, ts_ns: int) -> None:
        t = self.top
        t.bid = bid
        t.bid_size = bid_size
        t.ask = ask
        t.ask_size = ask_size
        t.ts_ns = ts_ns
        self._levels_only_top = True

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()

    def set_level(self, is_bid: bool, price: float, size: float, ts_ns: int) -> None:
        side = self.bids if is_bid else self.asks
        if size <= 0.0:
            side.pop(price, None)
        else:
            side[price] = size
        self._levels_only_top = False
        self.top.ts_ns = ts_ns

    def refresh_top(self) -> None:
        """Recompute the top from levels after a batch of ``set_level`` calls."""
        t = self.top
        if self.bids:
            t.bid = max(self.bids)
            t.bid_size = self.bids[t.bid]
        else:
            t.bid, t.bid_size = NAN, 0.0
        if self.asks:
            t.ask = min(self.asks)
            t.ask_size = self.asks[t.ask]
        else:
            t.ask, t.ask_size = NAN, 0.0

    def levels(self, is_bid: bool) -> list[tuple[float, float]]:
        """Visible levels best first. With top-of-book only, the single top level."""
        if self._levels_only_top:
            t = self.top
            px, sz = (t.bid, t.bid_size) if is_bid else (t.ask, t.ask_size)
            return [(px, sz)] if sz > 0.0 and px == px else []
        side = self.bids if is_bid else self.asks
        return sorted(side.items(), reverse=is_bid)


@dataclass(slots=True)
class PoolInfo:
    """Static parameters of a pool and which side is the token."""

    venue: str
    token: str  # the tokenized stock's symbol
    quote: str  # e.g. USDC
    token_is_token0: bool
    decimals0: int
    decimals1: int
    fee_pips: int
    tick_spacing: int


@dataclass(slots=True)
class PoolMarket:
    """A pool's exact state (the same object the simulated pool trades against) and its info."""

    info: PoolInfo
    pool: V3Pool
    ts_ns: int = 0


@dataclass(slots=True)
class IssuerState:
    """What the bot knows about an issuer right now."""

    name: str
    paused: bool = False
    fee_flat_usd: Decimal = Decimal(0)
    fee_bps: Decimal = Decimal(0)
    last_event_ns: int = 0


@dataclass(slots=True)
class OracleRound:
    price: float = NAN
    round_id: int = 0
    ts_ns: int = 0


@dataclass(slots=True)
class MarketState:
    """Everything the engine has seen, keyed the way venues name things.

    quotes: broker top of book per stock symbol. books: (exchange venue, instrument) -> Book.
    pools: pool venue -> PoolMarket. issuers: issuer name -> IssuerState.
    """

    quotes: dict[str, TopOfBook] = field(default_factory=dict)
    books: dict[tuple[str, str], Book] = field(default_factory=dict)
    pools: dict[str, PoolMarket] = field(default_factory=dict)
    issuers: dict[str, IssuerState] = field(default_factory=dict)
    oracles: dict[str, OracleRound] = field(default_factory=dict)
    # perpetual instrument -> its latest state (mark, index, funding; ADR 0018)
    perps: dict[str, PerpState] = field(default_factory=dict)
    gas_price_gwei: float = 20.0
    eth_usd: float = 3000.0
    # a live source that is not connected (connectors.base.ConnectionState values): its data is
    # stale; a source never reported (the replay) counts as connected
    disconnected: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def quote(self, symbol: str) -> TopOfBook:
        q = self.quotes.get(symbol)
        if q is None:
            q = self.quotes[symbol] = TopOfBook()
        return q

    def book(self, venue: str, instrument: str) -> Book:
        key = (venue, instrument)
        b = self.books.get(key)
        if b is None:
            b = self.books[key] = Book()
        return b
