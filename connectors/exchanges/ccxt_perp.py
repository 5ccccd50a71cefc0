"""A perpetual-futures venue through ccxt's async client: Bybit's v5 linear (USDT) perpetuals,
the 24/7 hedge the broker cannot give on weekends (ADR 0019).

Orders are the token exchange's (``CcxtExchange``, whose order code this class inherits rather
than repeats): ``submit_order`` never blocks, the client id is durable (Bybit's ``orderLinkId``),
a lost answer is resolved by client id, fills come from the venue's executions once each, keyed
by the venue's trade id. What differs is the market (the venue's perpetual id, resolved by
``resolve_perp_market``) and what a perpetual adds:

- ``perp_state``: mark, index, funding rate, next funding time (and the predicted rate where the
  venue gives one) from ccxt's ``fetch_funding_rate`` (Bybit: its tickers answer);
- ``positions``: each instrument's position with margin, leverage, unrealized PnL and the
  venue's liquidation price (``fetch_positions``; a flat instrument is a zero position);
- ``margin``: the settlement currency's wallet, available balance and equity
  (``fetch_balance``) with the positions' margins;
- ``new_funding_payments``: the venue's funding history (``fetch_funding_history``), each
  payment once, by the venue's id, oldest first;
- ``watch``: a task that does all three every ``PerpPolling.period_s`` and reports them to the
  bound ``PerpEvents``; a failed round is one warning line without any secret, and the next
  round comes after an exponential back-off (``Backoff``) until the venue answers again.

What this module may not do: block the caller, report a funding payment twice, or put a secret
in a log line, a reason or a repr.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from bot.clock import Clock
from bot.logging import get_logger
from connectors.exchanges.ccxt_backoff import Backoff
from connectors.exchanges.ccxt_perp_facts import (
    NS_PER_MS,
    FundingPayment,
    MarginAccount,
    PerpEvents,
    PerpPosition,
    PerpState,
    funding_payment,
    margin_account,
    perp_position,
    perp_state,
)
from connectors.exchanges.ccxt_venue import CcxtExchange
from connectors.exchanges.ccxt_working import OrderPolling
from connectors.exchanges.symbols import TokenMarket, resolve_perp_market
from connectors.exchanges.venues import venue_quirks

log = get_logger("pegbot.ccxt")


@dataclass(frozen=True, slots=True)
class PerpPolling:
    """How the venue's perpetual state is followed."""

    period_s: float = 5.0  # one round of state, positions and funding payments
    retry_first_s: float = 0.5  # the first wait after a failed round ...
    retry_max_s: float = 30.0  # ... doubling up to this
    funding_lookback_s: float = 86_400.0  # the first funding-history read reaches this far back


class CcxtPerpVenue(CcxtExchange):
    """Orders, positions, margin and funding of one perpetuals account. ``perpetuals`` maps
    pegbot's instrument name to the venue's market id (``{"AAPLx-PERP": "AAPLXUSDT"}``);
    ``settle`` is the settlement currency's ccxt code (``USDT``)."""

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
        self._perp_events: PerpEvents | None = None
        self._funding_seen: set[str] = set()
        self._funding_since_ms: int | None = None
        self._watcher: asyncio.Task[Any] | None = None

    def __repr__(self) -> str:
        return f"CcxtPerpVenue({self.name!r}, {self.quirks.ccxt_id!r})"

    def _resolve_markets(self, client: Any) -> dict[str, TokenMarket]:
        return {
            instrument: resolve_perp_market(
                client, instrument, market_id=market_id, quirks=self.quirks
            )
            for instrument, market_id in self._tokens.items()
        }

    def bind_perp(self, events: PerpEvents) -> None:
        self._perp_events = events

    async def close(self) -> None:
        self._watcher = None  # its task is the session's: close cancels it
        await super().close()

    # ---- reads -------------------------------------------------------------------------------

    async def perp_state(self, instrument: str) -> PerpState:
        """The instrument's mark, index and funding as the venue states them now."""
        market = self._market(instrument)
        rate = await self._session.ask("fetch_funding_rate", market.symbol)
        return perp_state(rate, self.name, market, self._now())

    async def positions(self) -> dict[str, PerpPosition]:
        """Every traded instrument's position (zero where the venue lists none)."""
        answer = await self._session.ask("fetch_positions")
        by_symbol = {p.get("symbol"): p for p in answer}
        now = self._now()
        return {
            instrument: perp_position(by_symbol.get(market.symbol, {}), self.name, market, now)
            for instrument, market in self.markets.items()
        }

    async def margin(self, positions: Mapping[str, PerpPosition] | None = None) -> MarginAccount:
        """The settlement currency's account with the positions' margins (read if not given)."""
        if positions is None:
            positions = await self.positions()
        balance = await self._session.ask("fetch_balance")
        return margin_account(
            balance, list(positions.values()), self.name, self.settle, self._now()
        )

    async def new_funding_payments(self) -> list[FundingPayment]:
        """The funding payments not returned before, oldest first."""
        if self._funding_since_ms is None:
            lookback_ms = int(self.perp_polling.funding_lookback_s * 1000)
            self._funding_since_ms = max(0, self._now() // NS_PER_MS - lookback_ms)
        history = await self._session.ask("fetch_funding_history", None, self._funding_since_ms)
        by_symbol = {m.symbol: m for m in self.markets.values()}
        now = self._now()
        fresh = []
        for income in sorted(history, key=lambda i: (i.get("timestamp") or 0, str(i.get("id")))):
            market = by_symbol.get(income.get("symbol"))
            if market is None or str(income.get("id")) in self._funding_seen:
                continue
            payment = funding_payment(
                income, self.name, market, now, paid_is_positive=self.quirks.funding_paid_positive
            )
            self._funding_seen.add(payment.payment_id)
            fresh.append(payment)
        return fresh

    def _market(self, instrument: str) -> TokenMarket:
        market = self.markets.get(instrument)
        if market is None:
            traded = ", ".join(sorted(self.markets)) or "none"
            raise KeyError(f"{self.name}: {instrument} is not traded here (perpetuals: {traded})")
        return market

    # ---- the watch ---------------------------------------------------------------------------

    def watch(self) -> asyncio.Task[Any]:
        """Start (once) the task that reports state, positions and funding every period."""
        if self._watcher is None or self._watcher.done():
            self._watcher = self._session.spawn(self._watch_loop())
        return self._watcher

    async def report_round(self) -> None:
        """One round: each instrument's state, the positions, the new funding payments."""
        states = [await self.perp_state(instrument) for instrument in self.markets]
        positions = await self.positions()
        payments = await self.new_funding_payments()
        events = self._perp_events
        if events is None:
            log.error("unbound_perp_venue", venue=self.name)
            return
        for state in states:
            events.on_perp_state(state)
        for position in positions.values():
            events.on_perp_position(position)
        for payment in payments:
            events.on_funding_payment(payment)

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
