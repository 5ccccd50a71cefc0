"""A token's order book (and its public trades) on an exchange through ccxt: pegbot's
``MarketDataSource``.

The book is read with REST ``fetch_order_book`` every ``interval_s``; ccxt pro's
``watch_order_book`` is not used (docs/connectors.md, "Websockets": ccxt's Kraken subscribes
under its upper-cased unified symbol, ``AAPLX/USD``, not the venue's ``AAPLx/USD``). With
``trades=True`` the same round reads ``fetch_trades`` and hands each trade printed since the
previous round to ``on_trade`` once (keyed by the venue's trade id; trades from before
``connect`` are not reported), price and size as the venue printed them, side the aggressor's. A book that changed reaches the sink under pegbot's names: the source's venue name and the
token's symbol (``AAPLx``), never ccxt's (``AAPLX/USD``), stamped with the receive time from the
clock the source was given. With ``depth`` 1 it is ``on_book_top``; with more, a snapshot of up to
``depth`` levels a side as ``on_book_level`` rows, bids then asks best first, the first row flagged
``FLAG_FIRST`` (the engine clears the book) and the last ``FLAG_LAST`` (the engine refreshes the
top and tells the strategy), so a strategy hears of one book once.

Connection states (``on_connection``), reported when they change:

- CONNECTED after a book was read (again);
- STALE when a read fails (an unreachable venue, or an answer that cannot be read: logged in one
  line), or when the book has not changed for ``stale_after_s`` on the clock;
- RECONNECTING after ``failures_to_reconnect`` reads in a row failed (or the first one, at
  start): the client is closed and a new one loads the markets again, with back-off, until a
  book is read;
- CLOSED after ``close``, or when the venue no longer lists the token (a one-line detail).

What this module may not do: place orders, block the sink, or let ccxt's decimal rounding reach
the caller (each task isolates its decimal context).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.clock import Clock
from bot.feeds.schema import Side
from bot.logging import get_logger
from connectors.base import ConnectionState, MarketDataSink
from connectors.exchanges.book_outlet import ASK, BID, BookOutlet, Levels, Printed
from connectors.exchanges.ccxt_backoff import Backoff
from connectors.exchanges.ccxt_session import CcxtSession
from connectors.exchanges.symbols import TokenMarket, UnknownSymbolError, resolve_token_market
from connectors.exchanges.venues import isolate_decimal_context, venue_quirks

log = get_logger("pegbot.ccxt")


@dataclass(frozen=True, slots=True)
class BookPolling:
    """How often the book is read and when it counts as stale."""

    interval_s: float = 1.0
    stale_after_s: float = 300.0  # unchanged this long (clock time) is STALE; 0: never
    failures_to_reconnect: int = 3
    reconnect_first_s: float = 1.0
    reconnect_max_s: float = 30.0
    request_timeout_s: float = 10.0


class BookSource:
    """What the REST and the websocket book sources share: the token's names, the ccxt session,
    the outlet to the sink, ``connect`` (a first attempt, then the source's loop) and ``close``."""

    def __init__(
        self,
        name: str,
        ccxt_id: str,
        *,
        token: str,
        underlying: str,
        quote: str,
        clock: Clock,
        depth: int,
        session: CcxtSession,
        stale_after_s: float,
        trades: bool,
    ) -> None:
        if depth < 1:
            raise ValueError(f"{name}: book depth must be at least 1, got {depth}")
        self.name = name
        self.token = token
        self.quirks = venue_quirks(ccxt_id)
        self.depth = depth
        self.trades = trades
        self._underlying = underlying
        self._quote = quote
        self._clock = clock
        self._session = session
        self._market: TokenMarket | None = None
        self._outlet = BookOutlet(
            name, token, depth=depth, clock=clock, stale_after_s=stale_after_s
        )
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.quirks.ccxt_id!r}, {self.token!r})"

    @property
    def market(self) -> TokenMarket | None:
        return self._market

    @property
    def state(self) -> ConnectionState | None:
        return self._outlet.state

    def bind(self, sink: MarketDataSink) -> None:
        self._outlet.sink = sink

    async def connect(self) -> None:
        """Load the markets, resolve the token's market and read the book once, then keep
        reading it in a task. A token the venue does not list is ``UnknownSymbolError``; an
        unreachable venue is not an error here: the source reports RECONNECTING and retries."""
        if self._task is not None:
            return
        await asyncio.get_running_loop().create_task(self._first_attempt())
        self._task = self._session.spawn(self._run())

    async def close(self) -> None:
        self._task = None
        await self._session.close()
        self._outlet.report(ConnectionState.CLOSED, "closed")

    async def _first_attempt(self) -> None:
        isolate_decimal_context()
        try:
            await self._start()
        except UnknownSymbolError:
            await self._session.close_client()
            raise
        except Exception as exc:  # down at start: the loop reconnects
            await self._failed(exc)

    async def _start(self) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        raise NotImplementedError

    async def _failed(self, exc: BaseException) -> None:
        raise NotImplementedError

    async def _stream(self) -> None:
        raise NotImplementedError

    async def _stream_while_listed(self, backoff: Backoff) -> None:
        """The websocket sources' loop: (re)connect when there is no client, ``_stream`` until
        it fails, ``_failed``, wait ``backoff``; CLOSED once the venue no longer lists the
        token."""
        while True:
            try:
                if self._session.client is None or self._market is None:
                    await self._start()
                await self._stream()
            except UnknownSymbolError as exc:
                await self._session.close_client()
                log.error("book_symbol_gone", venue=self.name, reason=str(exc))
                self._outlet.report(ConnectionState.CLOSED, str(exc))
                return
            except Exception as exc:  # the websocket broke, or the venue is down
                await self._failed(exc)
            await asyncio.sleep(backoff.next_delay())


class CcxtBook(BookSource):
    """The order book of ``token`` (whose underlying is ``underlying``) quoted in ``quote`` on
    exchange ``ccxt_id``, reported to the bound sink as venue ``name``."""

    def __init__(
        self,
        name: str,
        ccxt_id: str,
        *,
        token: str,
        underlying: str,
        quote: str,
        clock: Clock,
        depth: int = 1,
        base_url: str | None = None,
        polling: BookPolling | None = None,
        client_factory: Callable[[], Any] | None = None,
        trades: bool = False,
    ) -> None:
        self.polling = polling or BookPolling()
        session = CcxtSession(
            name,
            ccxt_id,
            base_url=base_url,
            timeout_s=self.polling.request_timeout_s,
            client_factory=client_factory,
        )
        super().__init__(
            name, ccxt_id, token=token, underlying=underlying, quote=quote, clock=clock,
            depth=depth, session=session, stale_after_s=self.polling.stale_after_s, trades=trades,
        )  # fmt: skip
        self._failures = 0
        self._trades_seen: dict[str, int] = {}  # trade id -> its venue time (ms)
        self._trades_since_ms: int | None = None  # None: not read yet (the first read is a base)

    # ---- the reading loop --------------------------------------------------------------------

    async def _start(self) -> None:
        await self._read()

    async def _run(self) -> None:
        backoff = Backoff(self.polling.reconnect_first_s, self.polling.reconnect_max_s)
        while True:
            reconnecting = self.state is ConnectionState.RECONNECTING
            await asyncio.sleep(backoff.next_delay() if reconnecting else self.polling.interval_s)
            try:
                await self._read()
            except UnknownSymbolError as exc:
                await self._session.close_client()
                log.error("book_symbol_gone", venue=self.name, reason=str(exc))
                self._outlet.report(ConnectionState.CLOSED, str(exc))
                return
            except Exception as exc:  # the venue is down or slow: stale, then reconnect
                await self._failed(exc)
                continue
            backoff.reset()

    async def _read(self) -> None:
        if self._session.client is None or self._market is None:  # (re)connecting
            client = self._session.open()
            await self._session.ask("load_markets")
            self._market = resolve_token_market(
                client,
                self.token,
                underlying=self._underlying,
                quote=self._quote,
                quirks=self.quirks,
            )
        book = await self._session.ask("fetch_order_book", self._market.symbol, self.depth)
        bids, asks = _side(book.get("bids"), self.depth), _side(book.get("asks"), self.depth)
        printed = await self._read_trades() if self.trades else []
        self._failures = 0
        self._outlet.book(bids, asks)
        self._outlet.trades(printed)

    async def _read_trades(self) -> Printed:
        """Trades printed since the last read, oldest first: ``(price, size, side)``."""
        assert self._market is not None
        since = self._trades_since_ms
        rows = await self._session.ask("fetch_trades", self._market.symbol, since)
        fresh: list[tuple[int, str, float, float, int]] = []
        for row in rows or []:
            trade_id, ms = str(row["id"]), int(row["timestamp"])
            price, size = float(row["price"]), float(row["amount"])
            if not (math.isfinite(price) and math.isfinite(size) and price > 0 and size > 0):
                raise ValueError(f"trade {trade_id}: price {row['price']}, size {row['amount']}")
            if trade_id in self._trades_seen:
                continue
            side = {"buy": BID, "sell": ASK}.get(row.get("side"), int(Side.UNKNOWN))
            fresh.append((ms, trade_id, price, size, side))
        fresh.sort()
        for ms, trade_id, *_ in fresh:
            self._trades_seen[trade_id] = ms
        newest = max([since or 0, *(ms for ms, *_ in fresh)])
        self._trades_seen = {t: ms for t, ms in self._trades_seen.items() if ms >= newest - 1000}
        self._trades_since_ms = newest
        if since is None:  # the first read only marks where the tape stood
            return []
        return [(price, size, side) for _, _, price, size, side in fresh]

    async def _failed(self, exc: BaseException) -> None:
        self._failures += 1
        detail = f"book read failed: {self._session.reason(exc)}"
        log.warning("book_read_failed", venue=self.name, token=self.token, reason=detail)
        never_read = self.state is None  # down from the start: nothing to call stale
        if self._failures < self.polling.failures_to_reconnect and not never_read:
            self._outlet.report(ConnectionState.STALE, detail)
            return
        await self._session.close_client()
        self._outlet.report(ConnectionState.RECONNECTING, detail)


def _side(levels: Any, depth: int) -> Levels:
    """A side's first ``depth`` levels; a level without a positive finite price and size is an
    answer that cannot be read (ValueError)."""
    out = tuple((float(level[0]), float(level[1])) for level in (levels or [])[:depth])
    for price, size in out:
        if not (math.isfinite(price) and math.isfinite(size) and price > 0 and size > 0):
            raise ValueError(f"book level {price} x {size} cannot be read")
    return out
