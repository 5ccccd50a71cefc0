"""The live environments' adapters (``sandbox``, ``paper``, ``live``): the real connectors of
connectors/, built from the config for a node (bot/node.py, ADR 0015).

Where each venue is reached comes from its ``[venues.<name>]`` keys (``url``, ``rpc_url``, keys by
reference); in the ``sandbox`` environment from the running sandbox's state file instead
(``pegbot sandbox up`` records its endpoints and keys there), so config/sandbox.toml names no
endpoint. ``config_problems`` says, one line each, what an environment still lacks: ``pegbot
config check`` prints them and ``pegbot run`` refuses to start on any.

What this module may not do: read a secret's value into a log, an error or a repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.config import SecretRef, Settings, VenueConfig, resolve_secret, secret_refs
from bot.errors import ConfigError, InputError
from bot.node import Adapters, NodeParts
from connectors.base import IssuerVenue, MarketDataSource, OrderVenue

LIVE_ENVIRONMENTS = ("sandbox", "paper", "live")


@dataclass
class Endpoint:
    """How one venue is reached: URLs, addresses and the keys' values (never printed)."""

    url: str = ""
    stream_url: str = ""
    data_stream_urls: dict[str, str] = field(default_factory=dict)
    ws_url: str = ""
    chain_id: int | None = None
    pool_address: str = ""
    router: str = ""
    quoter: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    key: str = field(default="", repr=False)
    secret: str = field(default="", repr=False)


def sandbox_endpoints(settings: Settings) -> dict[str, Endpoint]:
    """Each configured venue's endpoint in the running sandbox (by kind: the broker sandbox
    serves every broker venue, the exchange sandbox every exchange venue, the chain every
    pool). Raises InputError when no sandbox runs in ``sandbox.state``."""
    from connectors.sandbox.launcher_state import SandboxState

    state = SandboxState.load(Path(settings.sandbox.state))
    if state is None or not state.complete:
        raise InputError(
            f"no sandbox runs in {settings.sandbox.state}: start one with `pegbot sandbox up` "
            "or set sandbox.manage = true"
        )
    ends, keys = state.endpoints, state.credentials
    out: dict[str, Endpoint] = {}
    for name, v in settings.venues.items():
        if v.kind == "broker":
            b, k = ends.get("broker", {}), keys.get("broker", {})
            out[name] = Endpoint(
                url=b.get("url", ""),
                stream_url=b.get("trading_stream_url", ""),
                data_stream_urls=dict(b.get("data_stream_urls", {})),
                key=k.get("api_key", ""),
                secret=k.get("secret_key", ""),
            )
        elif v.kind == "exchange":
            e, k = ends.get("exchange", {}), keys.get("exchange", {})
            out[name] = Endpoint(
                url=e.get("url", ""), key=k.get("api_key", ""), secret=k.get("secret", "")
            )
        else:
            c = ends.get("chain", {})
            uni = c.get("uniswap", {})
            out[name] = Endpoint(
                url=c.get("url", ""),
                ws_url=c.get("ws_url", ""),
                chain_id=c.get("chain_id"),
                pool_address=c.get("pool", {}).get("address", ""),
                router=uni.get("router", ""),
                quoter=uni.get("quoter", ""),
                extra=c,
            )
    return out


def _secret(ref: SecretRef | None, what: str) -> str:
    return resolve_secret(ref, what).get_secret_value() if ref is not None else ""


def configured_endpoints(settings: Settings) -> dict[str, Endpoint]:
    """Each venue's endpoint from its own config keys (paper and live)."""
    out: dict[str, Endpoint] = {}
    for name, v in settings.venues.items():
        out[name] = Endpoint(
            url=v.url or v.rpc_url,
            stream_url=v.stream_url,
            data_stream_urls=dict(v.data_stream_urls),
            ws_url=v.ws_url,
            chain_id=v.chain_id,
            pool_address=v.pool_address,
            router=v.router,
            quoter=v.quoter,
            key=_secret(v.api_key, f"venues.{name}.api_key"),
            secret=_secret(v.api_secret, f"venues.{name}.api_secret"),
        )
    return out


def config_problems(settings: Settings) -> list[str]:
    """What the configured environment lacks before it can trade, one line each."""
    env = settings.run.environment
    if env not in LIVE_ENVIRONMENTS:
        return []
    problems: list[str] = []
    live_brokers = [n for n, v in settings.venues.items() if v.kind == "broker" and not v.paper]
    if env == "paper" and live_brokers:
        problems.append(
            f"venues.{live_brokers[0]}.paper: false in a paper run (set run.environment = 'live')"
        )
    if env == "sandbox":
        return problems
    for name, v in settings.venues.items():
        where = f"venues.{name}"
        if v.kind == "broker":
            for key in ("api_key", "api_secret"):
                if getattr(v, key) is None:
                    problems.append(
                        f'{where}.{key}: missing; Alpaca needs {{ env = "APCA_API_KEY_ID" }}-style '
                        "references to the account's keys"
                    )
            if env == "live" and (v.paper or not v.live_confirmation):
                problems.append(
                    f"{where}: live trading needs paper = false and live_confirmation = "
                    "'trade real money at Alpaca'"
                )
        elif v.kind == "exchange":
            for key in ("api_key", "api_secret"):
                if getattr(v, key) is None:
                    problems.append(
                        f"{where}.{key}: missing; the exchange's trading keys, by reference"
                    )
        else:
            for key, why in (
                ("rpc_url", "the chain's JSON-RPC HTTP URL"),
                ("ws_url", "the chain's JSON-RPC websocket URL, for the pool's logs"),
                ("pool_address", "the Uniswap v3 pool of the token"),
                ("router", "the SwapRouter the swaps go through"),
            ):
                if not getattr(v, key):
                    problems.append(f"{where}.{key}: missing; {why}")
            if v.chain_id is None:
                problems.append(f"{where}.chain_id: missing; the chain id the RPC must report")
            if v.wallet_key is None:
                problems.append(f"{where}.wallet_key: missing; the wallet's key, by reference")
    for key, ref in secret_refs(settings):
        try:
            resolve_secret(ref, key)
        except ConfigError as exc:
            problems.extend(exc.problems)
    return problems


def endpoints_for(settings: Settings) -> dict[str, Endpoint]:
    if settings.run.environment == "sandbox":
        return sandbox_endpoints(settings)
    problems = config_problems(settings)
    if problems:
        raise InputError(
            problems[0]
            + (f" (and {len(problems) - 1} more: pegbot config check)" if len(problems) > 1 else "")
        )
    return configured_endpoints(settings)


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
    return live_adapters(parts, endpoints=endpoints_for(settings)).sources


def live_adapters(parts: NodeParts, *, endpoints: dict[str, Endpoint]) -> Adapters:
    """The real connectors for every venue the config trades, and their market-data sources."""
    settings, clock = parts.settings, parts.clock
    venues: dict[str, OrderVenue] = {}
    sources: list[MarketDataSource] = []
    for name, v in settings.venues.items():
        end = endpoints[name]
        if v.kind == "broker":
            venue, quotes = _alpaca(name, v, end, settings, clock)
            venues[name] = venue
            if quotes is not None:
                sources.append(quotes)
        elif v.kind == "exchange":
            venue_x, books = _ccxt(name, v, end, settings, clock)
            venues[name] = venue_x
            sources.extend(books)
        else:
            pool_parts = _pool(name, v, end, parts)
            if pool_parts is not None:
                venues[name] = pool_parts[0]
                sources.append(pool_parts[1])
    issuers: dict[str, IssuerVenue] = {}
    return Adapters(venues, issuers, {}, sources)


def _alpaca(
    name: str, v: VenueConfig, end: Endpoint, settings: Settings, clock: Any
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


def _ccxt(
    name: str, v: VenueConfig, end: Endpoint, settings: Settings, clock: Any
) -> tuple[OrderVenue, list[MarketDataSource]]:
    from connectors.exchanges.ccxt_book import BookPolling, CcxtBook
    from connectors.exchanges.ccxt_venue import CcxtExchange

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
    books: list[MarketDataSource] = [
        CcxtBook(
            name,
            ccxt_id,
            token=sym,
            underlying=underlying,
            quote=v.quote_currency,
            clock=clock,
            depth=v.book_depth,
            base_url=end.url or None,
            polling=BookPolling(interval_s=v.book_interval_s),
        )
        for sym, underlying in tokens.items()
    ]
    return exchange, books


def _pool(
    name: str, v: VenueConfig, end: Endpoint, parts: NodeParts
) -> tuple[OrderVenue, MarketDataSource] | None:
    """The pool's venue and watcher (connectors/evm); None while they are not built."""
    return None
