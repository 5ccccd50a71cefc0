"""The node: one assembly of the kernel, for every environment (ADR 0015).

A node is the engine with everything it is built from: the clock, the session calendar, the
market state, the tokens, the issuers' session rules, the ledger, risk, the strategy chosen by
name (strategies/registry.py) and the exposure monitor. Environments differ only in the clock
and in the *adapters* a factory builds from those parts:

- ``backtest``: a ``SimClock`` and the simulated venues, issuers and transfer network, driven by
  the feed replay (bot/backtest/, which also owns the replay's run-ahead and the report's
  sampling);
- ``sandbox``, ``paper``, ``live``: a ``LiveClock`` and the real connectors (bot/live.py), with
  market-data sources that hand their events to the engine.

What this module may not do: know which environment it runs in, or read a feed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from bot.clock import Clock
from bot.config import Settings
from bot.engine import Engine
from bot.errors import ConnectError, PegbotError
from bot.exposure import ExposureMonitor
from bot.journal import Journal, MemoryJournal
from bot.ledger import Ledger
from bot.logging import get_logger
from bot.market import IssuerState, MarketState
from bot.model import MultiplierStep, TokenizedStock
from bot.perp.contracts import perp_contracts
from bot.rebalancer import Rebalancer
from bot.risk import RiskEngine
from bot.sessions import IssuerSessionRule, SessionCalendar
from connectors.base import IssuerVenue, MarketDataSource, OrderVenue, TransferVenue
from strategies.base import Strategy
from strategies.registry import build_strategy

log = get_logger("pegbot.node")

ENVIRONMENTS = ("backtest", "sandbox", "paper", "live")
OPEN_CHECK_S = 0.1
"""How often a run looks whether its starting holdings have a mark yet: the strategy starts
once they are booked at it, in a backtest as in a live run."""


def to_ns(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def date_of(ns: int) -> date:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).date()


def calendar_around(start_ns: int, end_ns: int) -> SessionCalendar:
    """The NYSE calendar from a week before ``start_ns`` to two weeks after ``end_ns``."""
    return SessionCalendar(
        date_of(start_ns) - timedelta(days=7), date_of(end_ns) + timedelta(days=14)
    )


def build_tokens(settings: Settings) -> dict[str, TokenizedStock]:
    return {
        sym: TokenizedStock(
            symbol=sym,
            underlying=t.underlying,
            issuer=t.issuer,
            chain=t.chain,
            contract=t.contract,
            decimals=t.decimals,
            multipliers=[MultiplierStep(0, Decimal(1))]
            + [MultiplierStep(to_ns(m.at), m.value) for m in t.multipliers],
        )
        for sym, t in settings.tokens.items()
    }


def pool_tokens(settings: Settings) -> dict[str, str]:
    """Pool venue -> the token it trades (from the config)."""
    out: dict[str, str] = {}
    for venue, vcfg in settings.venues.items():
        if vcfg.kind == "pool":
            for sym, tok in settings.tokens.items():
                if venue in tok.venues:
                    out[venue] = sym
    return out


@dataclass
class NodeParts:
    """What adapters are built from: the kernel's state, before the engine exists."""

    settings: Settings
    clock: Clock
    calendar: SessionCalendar
    market: MarketState
    tokens: dict[str, TokenizedStock]
    issuer_rules: dict[str, IssuerSessionRule]
    ledger: Ledger


@dataclass
class Adapters:
    """The environment's side of a node: where orders, requests and transfers go, and where
    market data comes from. ``venues`` is kept by reference: a venue added later (a pool the
    replay opens) is routed to."""

    venues: dict[str, OrderVenue]
    issuers: dict[str, IssuerVenue]
    transfers: Mapping[str, TransferVenue] = field(default_factory=dict)
    sources: list[MarketDataSource] = field(default_factory=list)


AdapterFactory = Callable[[NodeParts], Adapters]


class Node:
    """The kernel assembled from ``settings`` with the adapters ``adapters`` builds."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        calendar: SessionCalendar,
        adapters: AdapterFactory,
        *,
        strategy: Strategy | None = None,
        journal: Journal | None = None,
        id_prefix: str = "pb",
        history: int | None = None,
    ) -> None:
        """``history``: what the engine keeps in memory (``Engine``'s; None: everything)."""
        self.settings = settings
        self.clock = clock
        self.calendar = calendar
        self.market = MarketState()
        for name, icfg in settings.issuers.items():
            self.market.issuers[name] = IssuerState(
                name, fee_flat_usd=icfg.fee_flat_usd, fee_bps=icfg.fee_bps
            )
        self.tokens = build_tokens(settings)
        self.issuer_rules = {
            name: IssuerSessionRule(
                calendar,
                accept=i.accept_sessions,
                execute=i.execute_sessions,
                weekend=i.weekend_session,
            )
            for name, i in settings.issuers.items()
        }
        self.ledger = Ledger()
        self.parts = NodeParts(
            settings, clock, calendar, self.market, self.tokens, self.issuer_rules, self.ledger
        )
        self.adapters = adapters(self.parts)
        self.venues = self.adapters.venues
        self.issuers = self.adapters.issuers
        self.sources = self.adapters.sources
        self.risk = RiskEngine(
            settings.risk,
            mint_venues={n: i.deliver_to for n, i in settings.issuers.items() if i.deliver_to},
            perps=perp_contracts(settings),
            perp_margin_buffer=settings.strategy.perp_margin_buffer,
        )
        self.strategy = strategy if strategy is not None else build_strategy(settings)
        self.pool_tokens = pool_tokens(settings)
        self.engine = Engine(
            settings=settings,
            clock=clock,
            sessions=calendar,
            issuer_sessions=self.issuer_rules,
            market=self.market,
            tokens=self.tokens,
            ledger=self.ledger,
            risk=self.risk,
            strategy=self.strategy,
            venues=self.venues,
            issuers=self.issuers,
            journal=journal if journal is not None else MemoryJournal(),
            transfers=self.adapters.transfers,
            rebalancer=Rebalancer(settings.rebalance, settings.transfers),
            id_prefix=id_prefix,
            history=history,
        )
        self.exposure = ExposureMonitor(
            settings,
            self.tokens,
            self.ledger,
            self.market,
            calendar,
            self.order_works,
            in_transit=self.ledger.in_transit,
        )
        self.engine.after_answer = lambda: self.exposure.observe(clock.now_ns())
        # a token sale on an exchange or pool needs the tokens, less what working sells offer
        self.risk.no_short = frozenset(
            n for n, v in settings.venues.items() if v.kind in ("exchange", "pool")
        )
        self.risk.working_sells = self.engine.executor.working_sells
        # the kill switch lets through what moves a stock's net delta toward zero
        executor = self.engine.executor
        self.risk.delta_effect = lambda o: self.exposure.order_effect(
            o.instrument, o.side, o.qty, clock.now_ns(), executor.open_orders()
        )
        for source in self.sources:
            source.bind(self.engine)
        self._instruments_of: dict[str, set[str]] = {}

    def order_works(self, stock: str) -> bool:
        """An order on ``stock`` or one of its tokens works now (the exposure exemption)."""
        instruments = self._instruments_of.get(stock)
        if instruments is None:
            instruments = self._instruments_of[stock] = {stock} | {
                sym for sym, t in self.settings.tokens.items() if t.underlying == stock
            }
            for contract in perp_contracts(self.settings).values():  # its perpetuals too
                if contract.token in instruments:
                    instruments.add(contract.instrument)
        return any(o.instrument in instruments for o in self.engine.executor.open_orders())

    # ---- live lifecycle (the replay drives a backtest node without these) -------------------
    def _live_parts(self) -> list[Any]:
        seen: dict[int, Any] = {}
        for part in (
            *self.venues.values(),
            *self.issuers.values(),
            *self.adapters.transfers.values(),
        ):
            seen.setdefault(id(part), part)
        return [p for p in seen.values() if hasattr(p, "connect")]

    async def connect(self) -> None:
        """Connect every venue, issuer and transfer route, then every market-data source (so
        nothing is traded on before the venues answer). A part that cannot connect raises its
        one-line error; whatever connected before it is closed."""
        opened: list[Any] = []
        try:
            for part in [*self._live_parts(), *self.sources]:
                try:
                    await part.connect()
                except PegbotError:
                    raise
                except Exception as exc:  # a connector's own error: one line, with its name
                    log.debug("connect_failed", part=repr(part), exc_info=True)
                    name = getattr(part, "name", type(part).__name__)
                    text = " ".join(str(exc).split()) or type(exc).__name__
                    raise ConnectError(f"cannot connect {name}: {text}") from None
                opened.append(part)
        except BaseException:
            for part in reversed(opened):
                await _close_quietly(part)
            raise
        self._opened = opened

    async def close(self) -> None:
        for part in reversed(getattr(self, "_opened", [])):
            await _close_quietly(part)
        self._opened = []


async def _close_quietly(part: Any) -> None:
    try:
        await part.close()
    except Exception as exc:  # closing must go on with the rest
        log.warning("close_failed", part=repr(part), error=str(exc))
