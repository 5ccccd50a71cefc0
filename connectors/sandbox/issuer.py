"""The issuer sandbox: one issuer of AAPLx that serves all three issuer models of DOMAIN.md on
the local chain, priced at the broker sandbox's quote (docs/issuers.md).

- Order processor (``broker_order``, Dinari): watches the processor's ``OrderCreated`` events
  (issuer_orders.py) and fills each order on chain ``fill_latency_s`` after it saw it, at the
  broker's ask (mint) or bid (redeem), or cancels it with a reason.
- Firm quote (``firm_quote``, Ondo): ``POST /v1/quotes`` answers a quote signed with the issuer's
  quote key, valid ``quote_valid_s`` of chain time; the requester settles it on chain itself
  (issuer_http.py).
- Delayed request (``delayed_request``, Backed): ``POST /v1/requests`` takes a request paid for by
  a deposit to the treasury, executes it ``request_latency_s`` later at the mid, and mints the
  tokens (refunding unused cash) or pays the cash ``settle_s`` after that (issuer_requests.py).

Every price is the broker's share price x the token's multiplier, moved by ``spread_bps`` against
the requester, in whole USDC units per token rounded in the issuer's favour. Refusals on terms:
MIN_NOTIONAL below ``min_notional_usd``, MAX_LIMIT_REACHED beyond ``session_limit_usd`` of
notional priced in one issuer session (the simulated issuer's ``SessionNotional``; a firm quote
counts when quoted, an order when filled, a delayed request when executed). Sessions come from
``IssuerSessionRule`` on the real NYSE calendar: a request arriving when the accept rule is closed
is refused MARKET_CLOSED (a firm quote also when the execute rule is); work due while the execute
rule is closed waits for its open. Timers run on the clock given (a ``SimClock`` in tests), so a
test can move time to an open; latencies are on that clock too, except a quote's answer delay.
Faults: ``IssuerFaults`` (issuer_faults.py).

What this module may not do: listen beyond 127.0.0.1, or put a key in a log line or repr.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web

from bot.clock import NS_PER_SECOND, Clock
from bot.logging import get_logger, register_secret
from bot.model import IssuerModel, RequestKind
from bot.money import BPS_PER_UNIT, money_context
from bot.sessions import EASTERN, IssuerSessionRule, SessionCalendar
from connectors.issuers.terms import price_units, usd
from connectors.sandbox.issuer_chain import IssuerChain
from connectors.sandbox.issuer_faults import IssuerFaults
from connectors.sandbox.issuer_http import IssuerHttp
from connectors.sandbox.issuer_orders import OrderWatcher
from connectors.sandbox.issuer_prices import BrokerQuotes
from connectors.sandbox.issuer_requests import DelayedRequests
from connectors.sim.issuer_limits import SessionNotional

log = get_logger("pegbot.sandbox.issuer")
HOST = "127.0.0.1"
MULTIPLIER_ONE = 10**18


@dataclass(frozen=True)
class IssuerSandboxConfig:
    """Where the issuer's chain and broker are, its keys, and how it behaves."""

    chain_url: str
    processor: str
    operator: str  # fills and cancels orders, mints for delayed requests (unlocked account)
    treasury: str  # receives mint cash and deposits, pays redeems (unlocked account)
    quote_key: str = field(repr=False)  # signs firm quotes; the processor's quoteSigner
    broker_url: str
    broker_key: str = field(repr=False)
    broker_secret: str = field(repr=False)
    api_key: str = field(repr=False)  # what clients send as X-Api-Key
    symbol: str = "AAPL"
    token: str = "AAPLx"
    accept_sessions: str = "always"
    execute_sessions: str = "24/5"
    weekend_session: bool = False
    fill_latency_s: float = 2.0
    """Order processor: from seeing an order to filling it (at the execute open if later)."""
    quote_latency_s: float = 0.1
    """Firm quote: how long the answer takes (wall time)."""
    quote_valid_s: int = 30
    """Firm quote: lifetime, in seconds of chain time."""
    request_latency_s: float = 5.0
    """Delayed request: from acceptance to pricing (at the execute open if later)."""
    settle_s: float = 2.0
    """Delayed request: from pricing to the tokens or cash delivered."""
    spread_bps: Decimal = Decimal(0)
    min_notional_usd: Decimal = Decimal(0)
    session_limit_usd: Decimal = Decimal(0)
    """Notional priced (filled, quoted, executed) per issuer session; 0: no limit."""
    poll_s: float = 0.2
    """How often the chain is read for new orders."""
    port: int = 0
    calendar_days: int = 400


class IssuerSandbox:
    """The service; every method runs on the event loop :meth:`start` ran on."""

    def __init__(
        self,
        config: IssuerSandboxConfig,
        clock: Clock,
        *,
        faults: IssuerFaults | None = None,
        calendar: SessionCalendar | None = None,
    ) -> None:
        register_secret(config.api_key)
        self.config = config
        self.clock = clock
        self.faults = faults or IssuerFaults()
        if calendar is None:
            today = datetime.fromtimestamp(clock.now_ns() // NS_PER_SECOND, EASTERN).date()
            calendar = SessionCalendar(
                today - timedelta(days=10), today + timedelta(days=config.calendar_days)
            )
        self.sessions = IssuerSessionRule(
            calendar,
            accept=config.accept_sessions,
            execute=config.execute_sessions,
            weekend=config.weekend_session,
        )
        self.chain = IssuerChain(
            config.chain_url,
            config.processor,
            operator=config.operator,
            treasury=config.treasury,
            quote_key=config.quote_key,
        )
        self.quotes = BrokerQuotes(
            config.broker_url, config.broker_key, config.broker_secret, config.symbol
        )
        self.session_notional = SessionNotional(self.sessions, config.session_limit_usd)
        self._spread = config.spread_bps / BPS_PER_UNIT
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.orders = OrderWatcher(self)
        self.requests = DelayedRequests(self)
        self.http = IssuerHttp(self)

    def __repr__(self) -> str:
        return f"IssuerSandbox({self.config.processor}, port {self.port})"

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self.chain.connect()
        self._runner = web.AppRunner(self.http.app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, HOST, self.config.port).start()
        self.port = self._runner.addresses[0][1]
        self.orders.start()

    async def stop(self) -> None:
        self.orders.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.quotes.close()
        await self.chain.close()

    async def __aenter__(self) -> IssuerSandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    # ---- time and sessions -----------------------------------------------------------------

    def execution_ns(self, latency_s: float) -> int:
        """When work ``latency_s`` from now may run: then, or the execute rule's next open."""
        due = self.clock.now_ns() + round(latency_s * NS_PER_SECOND)
        return self.sessions.next_execution_ns(due)

    def at(self, ts_ns: int, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``work()`` as a task at ``ts_ns`` on the clock."""
        self.clock.schedule(ts_ns, lambda: self.spawn(work()))

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("issuer task failed", error=repr(task.exception()))

    def closed_reason(self, *, execute: bool) -> str:
        """MARKET_CLOSED with the rule, if a request arriving now is refused for the hour."""
        now = self.clock.now_ns()
        if not self.sessions.accepts(now):
            return f"MARKET_CLOSED: the issuer accepts only in '{self.config.accept_sessions}'"
        if execute and not self.sessions.executes(now):
            return f"MARKET_CLOSED: the issuer executes only in '{self.config.execute_sessions}'"
        return ""

    # ---- prices ----------------------------------------------------------------------------

    async def price(self, kind: RequestKind, *, at_mid: bool) -> int:
        """USDC units per token: the broker's mid (or its ask for a mint, bid for a redeem) x
        the multiplier, moved by the spread; ``NoPrice`` if the broker has none."""
        bid, ask = await self.quotes.bid_ask()
        multiplier = await self.chain.multiplier()
        mint = kind is RequestKind.MINT
        with money_context():
            share = (bid + ask) / 2 if at_mid else (ask if mint else bid)
            price = share * Decimal(multiplier) / MULTIPLIER_ONE
            price *= 1 + self._spread if mint else 1 - self._spread
        return price_units(price, round_up=mint)

    def take_notional(self, key: str, notional_units: int) -> str:
        """Why the issuer will not price ``notional_units`` more now (MIN_NOTIONAL,
        MAX_LIMIT_REACHED), or "" having counted it against the session."""
        notional = usd(notional_units)
        minimum = self.config.min_notional_usd
        if minimum and notional < minimum:
            return f"MIN_NOTIONAL: notional {notional} USD below the minimum {minimum} USD"
        now = self.clock.now_ns()
        reason = self.session_notional.refusal(now, notional)
        if not reason:
            self.session_notional.priced(key, now, notional)
        return reason

    def refusal(self, model: IssuerModel) -> str:
        return self.faults.refusal(model)
