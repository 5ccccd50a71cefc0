"""A perpetual-futures venue through ccxt's async client: Bybit's v5 linear (USDT) perpetuals,
the 24/7 hedge the broker cannot give on weekends (ADR 0019). It reports the facts of ADR 0018.

Orders are the token exchange's (``CcxtExchange``, whose order code this class inherits rather
than repeats): ``submit_order`` never blocks, the client id is durable (Bybit's ``orderLinkId``),
a lost answer is resolved by client id, fills come from the venue's executions once each, keyed
by the venue's trade id; quantities are tokens (one per contract, checked at connect). What
differs is the market (the venue's perpetual id, ``resolve_perp_market``) and what a perpetual
adds:

- ``perp_state``: mark, index, funding rate, next funding time (and the predicted rate where the
  venue gives one) from ccxt's ``fetch_funding_rate`` (Bybit: its tickers answer);
- ``positions``: each open position with the venue's entry, mark and liquidation price
  (``fetch_positions``); an instrument without one is flat;
- ``margin``: collateral, equity and maintenance margin from ``fetch_balance`` and the
  positions;
- ``new_funding_payments``: the venue's funding history (``fetch_funding_history``), each
  payment once, by the venue's id, oldest first (the ledger also books each id once, so a
  restart that reads the history again changes nothing);
- ``watch``: a task that reports all three through ``VenueEvents`` (``on_perp_state``,
  ``on_margin``, ``on_funding_payment``) every ``PerpPolling.period_s`` (each state also to
  ``on_state`` when set: the daemon's recorder); a failed round is one
  warning line without any secret, and the next comes after an exponential back-off
  (``Backoff``) until the venue answers again.

What this module may not do: block the caller, report a funding payment twice, or put a secret
in a log line, a reason or a repr.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import SecretStr

from bot.clock import Clock
from bot.logging import get_logger
from bot.model import (
    Currency,
    FundingPayment,
    MarginStatus,
    PerpPosition,
    PerpState,
    VenueKind,
)
from connectors.exchanges.ccxt_backoff import Backoff
from connectors.exchanges.ccxt_perp_facts import (
    NS_PER_MS,
    funding_payment,
    margin_status,
    perp_position,
    perp_state,
    position_qty,
)
from connectors.exchanges.ccxt_venue import CcxtExchange
from connectors.exchanges.ccxt_working import OrderPolling
from connectors.exchanges.symbols import TokenMarket, UnknownSymbolError, resolve_perp_market
from connectors.exchanges.venues import venue_quirks

log = get_logger("pegbot.ccxt")


@dataclass(frozen=True, slots=True)
class PerpPolling:
    """How the venue's perpetual state is followed."""

    period_s: float = 5.0  # one round of state, positions and funding payments
    retry_first_s: float = 0.5  # the first wait after a failed round ...
    retry_max_s: float = 30.0  # ... doubling up to this
    # the first funding-history read reaches this far back from the connect: 0 by default, as the
    # payments before are in the opening balance a live run books (bot/daemon.py _open_ledger)
    funding_lookback_s: float = 0.0
    funding_slack_s: float = 3_600.0  # later reads start this long before the newest payment


class CcxtPerpVenue(CcxtExchange):
    """Orders, positions, margin and funding of one perpetuals account. ``perpetuals`` maps
    pegbot's instrument name to the venue's market id (``{"AAPLx-PERP": "AAPLXUSDT"}``);
    ``settle`` is the settlement currency's ccxt code (``USDT``)."""

    kind = VenueKind.PERPETUAL

    def __init__(
        self,
        name: str,
        ccxt_id: str,
        *,
        perpetuals: Mapping[str, str],
        settle: str,
        clock: Clock,
        api_key: SecretStr | str | None = None,
        secret: SecretStr | str | None = None,
        base_url: str | None = None,
        polling: OrderPolling | None = None,
        perp_polling: PerpPolling | None = None,
    ) -> None:
        super().__init__(
            name,
            ccxt_id,
            tokens=perpetuals,
            quote=settle,
            clock=clock,
            api_key=api_key,
            secret=secret,
            base_url=base_url,
            polling=polling,
            quirks=venue_quirks(ccxt_id, perpetual=True),
        )
        self.settle = settle
        self.perp_polling = perp_polling or PerpPolling()
        self._funding_seen: dict[str, int] = {}  # payment id -> its time (ms), since the window
        self._funding_since_ms: int | None = None
        self._watcher: asyncio.Task[Any] | None = None
        self.on_state: Callable[[PerpState], None] | None = None
        """Also told each state the watch reports, after the engine (a recorder); its failure
        is one error line, never a lost round."""
        self._on_state_failed = False

    def __repr__(self) -> str:
        return f"CcxtPerpVenue({self.name!r}, {self.quirks.ccxt_id!r})"

    def _resolve_markets(self, client: Any) -> dict[str, TokenMarket]:
        return {
            instrument: resolve_perp_market(
                client, instrument, market_id=market_id, quirks=self.quirks
            )
            for instrument, market_id in self._tokens.items()
        }

    async def connect(self) -> None:
        """The token exchange's connect, then the start of the funding window (the connect)."""
        await super().connect()
        if self._funding_since_ms is None:
            await self._start_funding_window()

    async def close(self) -> None:
        self._watcher = None  # its task is the session's: close cancels it
        await super().close()

    # ---- reads -------------------------------------------------------------------------------

    async def perp_state(self, instrument: str) -> PerpState:
        """The instrument's mark, index and funding as the venue states them now."""
        market = self._market(instrument)
        rate = await self._session.ask("fetch_funding_rate", market.symbol)
        return perp_state(rate, self.name, market, self._now())

    async def _open_positions(self) -> dict[str, Mapping[str, Any]]:
        """The account's open ccxt positions in the traded markets, by instrument."""
        answer = await self._session.ask("fetch_positions")
        by_symbol = {m.symbol: m.token for m in self.markets.values()}
        return {
            by_symbol[p["symbol"]]: p
            for p in answer
            if p.get("symbol") in by_symbol and position_qty(p, f"{self.name} position")
        }

    async def positions(self) -> dict[str, PerpPosition]:
        """Every open position, by instrument (an instrument not here is flat)."""
        now = self._now()
        return {
            instrument: perp_position(raw, self.name, self.markets[instrument], now)
            for instrument, raw in (await self._open_positions()).items()
        }

    async def margin(self) -> MarginStatus:
        """Collateral, equity and maintenance margin of the account, as the venue states them."""
        positions = await self._open_positions()
        balance = await self._session.ask("fetch_balance")
        return margin_status(balance, positions.values(), self.name, self.settle, self._now())

    async def balances(self) -> dict[str, Decimal]:
        """The collateral under ``USD`` (the settlement currency at par, ADR 0018) and each open
        position's signed tokens under its instrument."""
        margin = await self.margin()
        held = {i: p.qty for i, p in (await self.positions()).items()}
        return {Currency.USD.value: margin.collateral_usd, **held}

    async def new_funding_payments(self) -> list[FundingPayment]:
        """The funding payments not returned before, oldest first. The history is read from
        ``_funding_since_ms`` (first: the venue's time now, less the lookback), which follows
        the newest payment seen (less one funding interval of slack): Bybit answers at most 7
        days from the time asked."""
        if self._funding_since_ms is None:
            await self._start_funding_window()
        assert self._funding_since_ms is not None
        history = await self._session.ask("fetch_funding_history", None, self._funding_since_ms)
        by_symbol = {m.symbol: m for m in self.markets.values()}
        fresh = []
        for income in sorted(history, key=lambda i: (i.get("timestamp") or 0, str(i.get("id")))):
            market = by_symbol.get(income.get("symbol"))
            if market is None or str(income.get("id")) in self._funding_seen:
                continue
            fresh.append(funding_payment(income, self.name, market, self.quirks))
        # marked seen only once every row read: a bad row fails the read, not the rows before it
        for payment in fresh:
            self._funding_seen[payment.payment_id] = payment.ts_ns // NS_PER_MS
        if self._funding_seen:
            slack_ms = int(self.perp_polling.funding_slack_s * 1000)
            since = max(self._funding_since_ms, max(self._funding_seen.values()) - slack_ms)
            self._funding_since_ms = since
            self._funding_seen = {i: t for i, t in self._funding_seen.items() if t >= since}
        return fresh

    async def _start_funding_window(self) -> None:
        """The funding history is read from the connect, less the lookback, on the venue's
        clock (ccxt's ``fetch_time``), which stamps the payments: a payment stamped after our
        connect time by a venue clock ahead of ours (the sandbox's, once a test has advanced it)
        was in the opening balance all the same. Ours where the venue gives none."""
        now_ms = self._now() // NS_PER_MS
        client = self._session.client
        if client is not None and client.has.get("fetchTime"):
            try:
                stamp = await self._session.ask("fetch_time")
            except Exception as exc:  # the first funding read will tell if the venue is down
                log.warning("venue_time_unknown", venue=self.name, reason=self._session.reason(exc))
            else:
                now_ms = stamp if isinstance(stamp, int) and stamp > 0 else now_ms
        lookback_ms = int(self.perp_polling.funding_lookback_s * 1000)
        self._funding_since_ms = max(0, now_ms - lookback_ms)

    def _market(self, instrument: str) -> TokenMarket:
        market = self.markets.get(instrument)
        if market is None:
            traded = ", ".join(sorted(self.markets)) or "none"
            raise UnknownSymbolError(
                f"{self.name}: {instrument} is not traded here (perpetuals: {traded})"
            )
        return market

    # ---- the watch ---------------------------------------------------------------------------

    def watch(self) -> asyncio.Task[Any]:
        """Start (once) the task that reports state, positions and funding every period."""
        if self._watcher is None or self._watcher.done():
            self._watcher = self._session.spawn(self._watch_loop())
        return self._watcher

    async def report_round(self) -> None:
        """One round: each instrument's state, the margin, the new funding payments."""
        states = [await self.perp_state(instrument) for instrument in self.markets]
        margin = await self.margin()
        payments = await self.new_funding_payments()
        events = self._events
        if events is None:
            log.error("unbound_venue", venue=self.name)
            return
        for state in states:
            events.on_perp_state(state)
            self._tell_on_state(state)
        events.on_margin(margin)
        for payment in payments:
            events.on_funding_payment(payment)

    def _tell_on_state(self, state: PerpState) -> None:
        if self.on_state is None:
            return
        try:
            self.on_state(state)
        except Exception as exc:
            if not self._on_state_failed:
                self._on_state_failed = True
                log.error("perp_state_hook_failed", venue=self.name, error=str(exc))

    async def _watch_loop(self) -> None:
        polling = self.perp_polling
        backoff = Backoff(polling.retry_first_s, polling.retry_max_s)
        failing = False
        while self._connected:
            try:
                await self.report_round()
            except Exception as exc:  # the venue is down, slow or garbled: ask again, less often
                failing = True
                delay = backoff.next_delay()
                log.warning(
                    "perp_poll_failed",
                    venue=self.name,
                    reason=self._session.reason(exc),
                    retry_in_s=delay,
                )
                await asyncio.sleep(delay)
                continue
            if failing:
                log.info("perp_poll_recovered", venue=self.name)
                failing = False
                backoff.reset()
            await asyncio.sleep(polling.period_s)
