"""A local broker that unmodified alpaca-py talks to: Alpaca's trading and stock-data APIs.

:class:`BrokerSandbox` serves, on one 127.0.0.1 port, the REST paths of the trading API and the
market-data API (broker_rest.py) and their websockets (broker_stream.py), over one account
(broker_account.py), one order desk (broker_desk.py) and one quote board moved by a seeded random
walk or by the caller (quotes.py). Point alpaca-py at it with ``url_override``::

    TradingClient(key, secret, paper=True, url_override=sandbox.url)
    StockHistoricalDataClient(key, secret, url_override=sandbox.url)
    TradingStream(key, secret, paper=True, url_override=sandbox.trading_stream_url)
    StockDataStream(key, secret, url_override=sandbox.data_stream_url("iex"))

Time comes from a :class:`bot.clock.Clock`: a :class:`~bot.clock.LiveClock` for a running
sandbox, a :class:`~bot.clock.SimClock` that a test moves with :meth:`BrokerSandbox.advance_to`
(a Tuesday 11:00 ET regular session, a Saturday, without waiting). Sessions come from the NYSE
calendar in :mod:`bot.sessions`. :class:`SandboxThread` runs a sandbox on its own event loop for
synchronous callers (tests; alpaca-py's REST clients are synchronous).

What this module may not do: listen anywhere but 127.0.0.1, or print or log the keys.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType, TracebackType
from typing import Any, TypeVar

from aiohttp import web

from bot.clock import Clock, SimClock, Stopwatch
from bot.sessions import EASTERN, SessionCalendar
from connectors.sandbox.broker_account import Account
from connectors.sandbox.broker_desk import OrderDesk
from connectors.sandbox.broker_fees import FeeRates, RegulatoryFees
from connectors.sandbox.broker_rest import BrokerRest, RateWindow
from connectors.sandbox.broker_stream import FEEDS, StreamHub
from connectors.sandbox.quotes import QuoteBoard, RandomWalk, StockQuote

HOST = "127.0.0.1"
T = TypeVar("T")


@dataclass(frozen=True)
class BrokerSandboxConfig:
    """What the sandbox lists, how its account starts and how its market moves."""

    api_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    symbols: Mapping[str, Decimal] = field(
        default_factory=lambda: MappingProxyType({"AAPL": Decimal("190")})
    )
    """Listed stocks and their opening mid price."""
    cash: Decimal = Decimal(100_000)
    shorting_enabled: bool = False
    pattern_day_trader: bool = False
    """The flag the account starts with (it also turns on after four day trades in five days)."""
    buying_power_counts_unsettled: bool = True
    """``buying_power`` includes sale proceeds not settled yet (T+1), as Alpaca's does (DOMAIN.md):
    orders may spend them. False: only settled cash counts."""
    overnight_enabled: bool = False
    regulatory_fees: FeeRates | None = None
    """Rates of the SEC and TAF fees sales pay (as FEE account activities); None: no fees."""
    data_feeds: frozenset[str] = frozenset({"iex"})
    """Feeds the keys are entitled to (iex, sip, overnight); others answer 403 / error 409."""
    rate_limit_per_min: int = 200
    seed: int = 7
    quote_interval_s: float | None = 1.0
    """Seconds between random-walk steps; None: quotes move only by :meth:`set_quote`."""
    step_bps: float = 5.0
    spread_bps: float = 4.0
    size_range: tuple[int, int] = (100, 500)
    calendar_days: int = 400
    """How far ahead of the clock's start the session calendar reaches."""
    port: int = 0
    """0 picks a free port."""


class BrokerSandbox:
    """The sandbox server; every method runs on the event loop that :meth:`start` ran on."""

    def __init__(
        self,
        config: BrokerSandboxConfig,
        clock: Clock,
        *,
        monotonic_ns: Callable[[], int] | None = None,
    ) -> None:
        """``monotonic_ns`` paces the rate limit (wall time by default, whatever the clock)."""
        self.config = config
        self.clock = clock
        today = datetime.fromtimestamp(clock.now_ns() // 1_000_000_000, EASTERN).date()
        self.calendar = SessionCalendar(
            today - timedelta(days=10), today + timedelta(days=config.calendar_days)
        )
        self.board = QuoteBoard(clock, dict(config.symbols), config.spread_bps)
        self.account = Account(
            self.calendar,
            cash=config.cash,
            shorting_enabled=config.shorting_enabled,
            pattern_day_trader=config.pattern_day_trader,
            buying_power_counts_unsettled=config.buying_power_counts_unsettled,
        )
        keys = (config.api_key, config.secret_key)
        # The hub hears a quote before the desk trades on it, so a quote reduced by a fill
        # reaches the stream after the quote it was taken from.
        self.streams = StreamHub(keys, config.data_feeds)
        self.board.quote_listeners.append(self.streams.on_quote)
        self.board.trade_listeners.append(self.streams.on_trade)
        self.desk = OrderDesk(
            clock,
            self.calendar,
            self.board,
            self.account,
            overnight_enabled=config.overnight_enabled,
            seed=config.seed,
            fees=None if config.regulatory_fees is None else RegulatoryFees(config.regulatory_fees),
        )
        self.desk.on_update.append(self.streams.on_trade_update)
        self.walk = (
            None
            if config.quote_interval_s is None
            else RandomWalk(
                self.board,
                clock,
                self.calendar,
                seed=config.seed,
                interval_s=config.quote_interval_s,
                step_bps=config.step_bps,
                spread_bps=config.spread_bps,
                size_range=config.size_range,
            )
        )
        self.rest = BrokerRest(
            clock=clock,
            calendar=self.calendar,
            board=self.board,
            account=self.account,
            desk=self.desk,
            keys=keys,
            rates=RateWindow(config.rate_limit_per_min, monotonic_ns or Stopwatch().elapsed_ns),
            data_feeds=config.data_feeds,
        )
        self.app = web.Application()
        self.rest.install(self.app)
        self.app.router.add_get("/stream", self.streams.trading_stream)
        for path in FEEDS:
            self.app.router.add_get(path, self.streams.data_stream)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, self.config.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        if self.walk is not None:
            self.walk.start()

    async def stop(self) -> None:
        if self.walk is not None:
            self.walk.stop()
        await self.streams.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> BrokerSandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """Base URL of both REST APIs (alpaca-py appends /v2/...)."""
        return f"http://{HOST}:{self.port}"

    @property
    def trading_stream_url(self) -> str:
        return f"ws://{HOST}:{self.port}/stream"

    def data_stream_url(self, feed: str = "iex") -> str:
        path = next((p for p, f in FEEDS.items() if f == feed), None)
        if path is None:
            raise ValueError(f"unknown feed {feed!r}; the sandbox serves {sorted(FEEDS.values())}")
        return f"ws://{HOST}:{self.port}{path}"

    # ---- driving the market ------------------------------------------------------------------

    def set_quote(
        self, symbol: str, bid: Decimal, ask: Decimal, bid_size: int, ask_size: int
    ) -> StockQuote:
        """Replace a quote now; working orders trade on it."""
        return self.board.set_quote(symbol, bid, ask, bid_size, ask_size)

    def advance_to(self, ts_ns: int) -> None:
        """Move a simulated clock (SimClock only), firing quote steps, expiries, sessions."""
        if not isinstance(self.clock, SimClock):
            raise TypeError("advance_to needs the sandbox to run on a SimClock")
        self.clock.advance_to(ts_ns)

    def reject_next_order(self) -> None:
        """The next routed order is rejected by the simulated execution venue."""
        self.desk.reject_next_order()


class SandboxThread:
    """Runs a :class:`BrokerSandbox` on a private event loop in a daemon thread.

    ``with SandboxThread(config, clock) as box:`` starts it (``box.url`` and the stream URLs are
    ready) and stops it on exit. Every driving method hops onto the loop and waits for it.
    """

    def __init__(self, config: BrokerSandboxConfig, clock: Clock) -> None:
        self.sandbox = BrokerSandbox(config, clock)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="broker-sandbox", daemon=True
        )

    def __enter__(self) -> SandboxThread:
        self._thread.start()
        self._run(self.sandbox.start())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._run(self.sandbox.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    def _run(self, coroutine: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the sandbox's loop and return its result."""
        done: Future[T] = Future()

        def run() -> None:
            try:
                done.set_result(fn(*args))
            except BaseException as error:  # handed to the caller's thread
                done.set_exception(error)

        self._loop.call_soon_threadsafe(run)
        return done.result(timeout=30)

    @property
    def url(self) -> str:
        return self.sandbox.url

    @property
    def trading_stream_url(self) -> str:
        return self.sandbox.trading_stream_url

    def data_stream_url(self, feed: str = "iex") -> str:
        return self.sandbox.data_stream_url(feed)

    def set_quote(
        self, symbol: str, bid: str, ask: str, bid_size: int, ask_size: int
    ) -> StockQuote:
        return self.call(
            self.sandbox.set_quote, symbol, Decimal(bid), Decimal(ask), bid_size, ask_size
        )

    def advance_to(self, ts_ns: int) -> None:
        self.call(self.sandbox.advance_to, ts_ns)

    def reject_next_order(self) -> None:
        self.call(self.sandbox.reject_next_order)

    def wait_for_trade_listener(self, timeout: float = 10) -> None:
        """Block until a trading stream listens to trade_updates."""
        streams = self.sandbox.streams
        self._run(streams.until(lambda: streams.trade_listeners() > 0), timeout)

    def wait_for_subscription(self, channel: str, symbol: str, timeout: float = 10) -> None:
        """Block until a market-data stream subscribed ``channel`` for ``symbol``."""
        streams = self.sandbox.streams
        self._run(streams.until(lambda: streams.subscribed(channel, symbol)), timeout)

    def drop_stream_connections(self) -> None:
        """Close every websocket from the server side (clients see the connection drop)."""
        self._run(self.sandbox.streams.close_all())

    @property
    def rate_limited(self) -> int:
        """Requests answered 429 so far."""
        return self.sandbox.rest.rates.refused
