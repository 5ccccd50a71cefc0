"""The live environments' adapters (``sandbox``, ``paper``, ``live``): the real connectors of
connectors/, built from the config for a node (bot/node.py, ADR 0015), reached where
bot/live_endpoints.py says (the config's URLs and keys, or the running sandbox's).

What this module may not do: read a secret's value into a log, an error or a repr.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from functools import partial
from typing import Any

from bot.config import IssuerConfig, Settings, VenueConfig
from bot.errors import InputError
from bot.live_endpoints import (
    Endpoint,
    config_problems,
    endpoints_for,
    sandbox_wallet_key,
)
from bot.model import IssuerModel, MintRedeemRequest, RequestKind
from bot.node import Adapters, NodeParts
from connectors.base import ConnectionState, IssuerVenue, MarketDataSource, OrderVenue

__all__ = [
    "PerpStateSource",
    "PoolSource",
    "build_sources",
    "config_problems",
    "endpoints_for",
    "live_adapters",
    "sandbox_wallet_key",
]


def build_sources(settings: Settings, clock: Any) -> list[MarketDataSource]:
    """The market-data sources of the configured live environment, unconnected and unbound
    (``pegbot record`` records what they send)."""
    from bot.ledger import Ledger
    from bot.market import MarketState
    from bot.node import build_tokens, calendar_around

    now = clock.now_ns()
    parts = NodeParts(
        settings,
        clock,
        calendar_around(now, now),
        MarketState(),
        build_tokens(settings),
        {},
        Ledger(),
    )
    adapters = live_adapters(parts, endpoints=endpoints_for(settings))
    perps = [PerpStateSource(v) for v in adapters.venues.values() if hasattr(v, "perp_state")]
    return [*adapters.sources, *perps]


def live_adapters(parts: NodeParts, *, endpoints: dict[str, Endpoint]) -> Adapters:
    """The real connectors for every venue the config trades, and their market-data sources."""
    settings, clock = parts.settings, parts.clock
    venues: dict[str, OrderVenue] = {}
    sources: list[MarketDataSource] = []
    for name, v in settings.venues.items():
        end = endpoints[name]
        if v.kind == "broker":
            venue, quotes = _alpaca(name, v, end, settings, clock, parts)
            venues[name] = venue
            if quotes is not None:
                sources.append(quotes)
        elif v.kind == "exchange":
            venue_x, books = _ccxt(name, v, end, settings, clock)
            venues[name] = venue_x
            sources.extend(books)
        elif v.kind == "perpetual":
            venues[name] = _ccxt_perp(name, v, end, clock)
        else:
            venues[name], pool_source = _pool(name, v, end, parts)
            sources.append(pool_source)
    issuers: dict[str, IssuerVenue] = {
        name: _issuer(name, i, endpoints, parts, venues) for name, i in settings.issuers.items()
    }
    from bot.live_transfers import live_transfers

    return Adapters(venues, issuers, live_transfers(parts, endpoints, venues), sources)


def _issuer(
    name: str,
    i: IssuerConfig,
    endpoints: dict[str, Endpoint],
    parts: NodeParts,
    venues: dict[str, OrderVenue],
) -> IssuerVenue:
    """The issuer's adapter by model (connectors/issuers); it pays from, and delivers to, the
    wallet of its ``cash_account`` (a pool venue), sending through that venue's transaction
    manager: one writer of the wallet's nonces in the node."""
    from connectors.issuers.delayed_request import DelayedRequestIssuer
    from connectors.issuers.firm_quote import FirmQuoteIssuer
    from connectors.issuers.order_processor import OrderProcessorIssuer
    from connectors.issuers.wallet import ChainWallet

    end = endpoints[f"issuer:{name}"]
    wallet = endpoints.get(i.cash_account) if i.cash_account else None
    if wallet is None or not wallet.wallet_key:
        raise InputError(
            f"issuers.{name}.cash_account: a live issuer is paid from a wallet: name the pool "
            "venue whose wallet_key pays its mints"
        )
    tokens = [sym for sym, t in parts.settings.tokens.items() if t.issuer == name]
    token = tokens[0] if tokens else ""
    processor = str(end.extra.get("processor", ""))
    txm = getattr(venues.get(i.cash_account), "txm", None)
    common: dict[str, Any] = {"clock": parts.clock, "rpc_url": wallet.url, "token": token}
    if txm is not None:
        common["wallet"] = ChainWallet(wallet.url, tx_manager=txm, one_adapter=True)
    else:
        common["private_key"] = wallet.wallet_key
    if i.model is IssuerModel.DELAYED_REQUEST:
        return DelayedRequestIssuer(
            name, url=end.url, api_key=end.key, limit_price=_limit_price(parts, i), **common
        )
    if i.model is IssuerModel.FIRM_QUOTE:
        return FirmQuoteIssuer(name, url=end.url, api_key=end.key, processor=processor, **common)
    return OrderProcessorIssuer(
        name, processor=processor, limit_price=_limit_price(parts, i), **common
    )


def _limit_price(parts: NodeParts, i: IssuerConfig) -> Any:
    """The issuer's price limit for a request: fair value when it is sent, ``limit_bps`` worse
    (None without a fair value: the adapter sends no unlimited mint)."""
    factor = i.limit_bps / Decimal(10_000)

    def limit(request: MintRedeemRequest) -> Decimal | None:
        tok = parts.tokens.get(request.token)
        quote = parts.market.quotes.get(tok.underlying) if tok is not None else None
        if tok is None or quote is None or not quote.valid:
            return None
        fair = Decimal(repr(quote.mid)) * tok.multiplier_at(parts.clock.now_ns())
        worse = factor if request.kind is RequestKind.MINT else -factor
        return (fair * (1 + worse)).quantize(Decimal("0.000001"))

    return limit


def _alpaca(
    name: str, v: VenueConfig, end: Endpoint, settings: Settings, clock: Any, parts: NodeParts
) -> tuple[OrderVenue, MarketDataSource | None]:
    from connectors.broker.alpaca_broker import AlpacaBroker
    from connectors.broker.alpaca_quotes import ALPACA_STREAM_URLS, AlpacaQuotes

    broker = AlpacaBroker(
        end.key,
        end.secret,
        clock,
        name=name,
        paper=v.paper,
        live_confirmation=v.live_confirmation,
        url_override=end.url or None,
        trading_stream_url=end.stream_url or None,
        price_of=partial(_ask_of, parts),  # market orders' buying-power check
    )
    symbols = [sym for sym, s in settings.stocks.items() if s.broker == name]
    if not symbols:
        return broker, None
    urls = dict(ALPACA_STREAM_URLS)
    urls.update(end.data_stream_urls)
    fallback = v.fallback_feed if v.fallback_feed != v.data_feed else None
    if fallback is not None and fallback not in urls:
        fallback = None
    feed = v.data_feed if v.data_feed in urls else next(iter(end.data_stream_urls), v.data_feed)
    quotes = AlpacaQuotes(
        end.key,
        end.secret,
        symbols,
        clock,
        name=name,
        feed=feed,
        fallback_feed=fallback,
        stream_urls=urls,
    )
    return broker, quotes


def _ask_of(parts: NodeParts, symbol: str) -> Decimal | None:
    """The latest ask of ``symbol`` at its broker (None before its first quote)."""
    quote = parts.market.quotes.get(symbol)
    return Decimal(repr(quote.ask)) if quote is not None and quote.valid else None


def _ccxt(
    name: str, v: VenueConfig, end: Endpoint, settings: Settings, clock: Any
) -> tuple[OrderVenue, list[MarketDataSource]]:
    from connectors.exchanges.ccxt_book import BookPolling, CcxtBook
    from connectors.exchanges.ccxt_venue import CcxtExchange
    from connectors.exchanges.ccxt_watch_book import CcxtWatchBook
    from connectors.exchanges.ccxt_ws_book import CcxtWsBook

    ccxt_id = v.ccxt_id or ("kraken" if settings.run.environment == "sandbox" else name)
    tokens = {sym: t.underlying for sym, t in settings.tokens.items() if name in t.venues}
    exchange = CcxtExchange(
        name,
        ccxt_id,
        tokens=tokens,
        quote=v.quote_currency,
        clock=clock,
        api_key=end.key or None,
        secret=end.secret or None,
        base_url=end.url or None,
    )

    def book(token: str, underlying: str) -> MarketDataSource:
        if v.book_stream == "websocket":  # docs/connectors.md, "Websockets"
            stream = CcxtWsBook if ccxt_id == "kraken" else CcxtWatchBook  # Kraken's v2 / unified
            return stream(
                name, ccxt_id, token=token, underlying=underlying, quote=v.quote_currency,
                clock=clock, depth=v.book_depth, base_url=end.url or None, trades=True,
            )  # fmt: skip
        return CcxtBook(
            name, ccxt_id, token=token, underlying=underlying, quote=v.quote_currency,
            clock=clock, depth=v.book_depth, base_url=end.url or None,
            polling=BookPolling(interval_s=v.book_interval_s), trades=True,
        )  # fmt: skip

    books = [book(sym, underlying) for sym, underlying in tokens.items()]
    return exchange, books


def _ccxt_perp(name: str, v: VenueConfig, end: Endpoint, clock: Any) -> OrderVenue:
    """The perpetual through ccxt (ADR 0019): the venue's contract ``perp_market_id`` traded as
    the config's instrument (in the sandbox, by default, its Bybit contract). Its state, margin
    and funding are read once the run trades (``LiveRun`` starts ``watch``), so the opening
    balance and the payments never overlap."""
    from bot.perp.contracts import perp_contract
    from connectors.exchanges.ccxt_perp import CcxtPerpVenue, PerpPolling

    market_id = v.perp_market_id or str(end.extra.get("market_id", ""))
    return CcxtPerpVenue(
        name,
        v.ccxt_id or str(end.extra.get("ccxt_id", name)),
        perpetuals={perp_contract(name, v).instrument: market_id},
        settle=v.settle_currency,
        clock=clock,
        api_key=end.key or None,
        secret=end.secret or None,
        base_url=end.url or None,
        perp_polling=PerpPolling(period_s=v.perp_poll_s),
    )


def _pool(
    name: str, v: VenueConfig, end: Endpoint, parts: NodeParts
) -> tuple[OrderVenue, MarketDataSource]:
    """The pool's swap venue and its watcher (connectors/evm): one transaction manager per
    wallet, the single writer of its nonces."""
    from connectors.evm.keys import _signer
    from connectors.evm.pool_venue import PoolVenueSettings, UniswapV3Venue
    from connectors.evm.pool_watcher import V3PoolWatcher, WatcherSettings
    from connectors.evm.tx_manager import TxManager

    settings = parts.settings
    tokens = [sym for sym, t in settings.tokens.items() if name in t.venues]
    if len(tokens) != 1:
        raise InputError(f"venues.{name}: a pool trades exactly one token, found {len(tokens)}")
    token = tokens[0]
    token_address, quote_address = _pool_assets(name, v, end, settings, token)
    if end.chain_id is None:
        raise InputError(f"venues.{name}.chain_id: missing; the chain id the RPC must report")
    signer = _signer(end.wallet_key, f"venues.{name}.wallet_key")
    txm = TxManager(end.url, signer, chain_id=end.chain_id)
    venue = UniswapV3Venue(
        name,
        txm=txm,
        rpc_url=end.url,
        chain_id=end.chain_id,
        pool_address=end.pool_address,
        router_address=end.router,
        quoter_address=end.quoter,
        token=token,
        token_address=token_address,
        quote="USD",  # USDC at par: the account's cash
        quote_address=quote_address,
        eth_usd=Decimal(str(v.eth_usd)),
        clock=parts.clock,
        settings=PoolVenueSettings(range_poll_s=v.range_poll_s),
        position_manager_address=end.position_manager,
    )
    watcher = V3PoolWatcher(
        name,
        rpc_url=end.url,
        chain_id=end.chain_id,
        pool_address=end.pool_address,
        token=token,
        token_address=token_address,
        quote="USD",
        clock=parts.clock,
        ws_url=end.ws_url or None,
        settings=WatcherSettings(confirmations=v.confirmations),
    )
    return venue, PoolSource(watcher, parts)


def _pool_assets(
    name: str, v: VenueConfig, end: Endpoint, settings: Settings, token: str
) -> tuple[str, str]:
    """The token's and the quote's ERC-20 addresses: the sandbox chain's, or the config's."""
    deployed = end.extra.get("tokens", {})
    token_address = deployed.get(token, {}).get("address") or settings.tokens[token].contract
    quote_address = deployed.get("USDC", {}).get("address") or v.quote_address
    for key, value in (
        (f"tokens.{token}.contract", token_address),
        (f"venues.{name}.quote_address", quote_address),
    ):
        if not value:
            raise InputError(f"{key}: missing; the ERC-20 the pool trades")
    return str(token_address), str(quote_address)


class PoolSource:
    """A pool watcher as the node's source: its pool state is installed in the market (the
    engine prices swaps on it) before it follows the chain."""

    def __init__(self, watcher: Any, parts: NodeParts) -> None:
        self.watcher = watcher
        self.name = watcher.name
        self._market = parts.market
        self.on_loaded: Any = None  # called with the PoolMarket once loaded (a recorder)

    def __repr__(self) -> str:
        return f"PoolSource({self.watcher.name!r})"

    def bind(self, sink: Any) -> None:
        self.watcher.bind(sink)

    async def connect(self) -> None:
        pool = self._market.pools[self.name] = await self.watcher.load()
        if self.on_loaded is not None:
            self.on_loaded(pool)
        await self.watcher.connect()

    async def close(self) -> None:
        await self.watcher.close()


class PerpStateSource:
    """A live perpetual as a source of ``pegbot record``: each instrument's state read every
    ``perp_poll_s`` and handed to ``on_state`` (the recorder's ``perp_state``, set by
    ``record_sources``); a failed read is one warning line and the next comes a period later.
    Its margin and funding payments are the account's, not market data: not read here. (A
    trading run gets the states from the venue's watch instead, bot/daemon.py.)"""

    def __init__(self, venue: Any) -> None:
        self.venue = venue
        self.name = venue.name
        self.on_state: Any = None
        self._sink: Any = None
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"PerpStateSource({self.name!r})"

    def bind(self, sink: Any) -> None:
        self._sink = sink

    async def connect(self) -> None:
        await self.venue.connect()
        if self._sink is not None:
            self._sink.on_connection(self.name, ConnectionState.CONNECTED)
        self._task = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        from bot.logging import get_logger

        while True:
            try:
                for instrument in self.venue.markets:
                    state = await self.venue.perp_state(instrument)
                    if self.on_state is not None:
                        self.on_state(state)
            except Exception as exc:  # the venue is down or garbled: read again next period
                get_logger("pegbot.record").warning(
                    "perp_read_failed", source=self.name, error=type(exc).__name__
                )
            await asyncio.sleep(self.venue.perp_polling.period_s)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.venue.close()
        if self._sink is not None:
            self._sink.on_connection(self.name, ConnectionState.CLOSED)
