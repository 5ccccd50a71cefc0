"""Where a live run's venues are reached (ADR 0015): each venue's endpoint and keys from its
``[venues.<name>]`` and ``[issuers.<name>]`` keys (URLs, addresses, secrets by reference), or, in
the ``sandbox`` environment, from the running sandbox's state file (``pegbot sandbox up`` records
its endpoints and keys there), so config/sandbox.toml names none. ``config_problems`` says, one
line each, what a paper or live config still lacks: ``pegbot config check`` prints them and
``pegbot run`` refuses to start on any.

What this module may not do: read a secret's value into a log, an error or a repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.config import SecretRef, Settings, resolve_secret, secret_refs
from bot.errors import ConfigError, InputError
from bot.model import IssuerModel

#: anvil's default mnemonic (public: every anvil starts with it) and the sandbox wallet's index
#: on it (connectors/sandbox/serve_chain.py: account 4 is the bot's wallet).
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
SANDBOX_WALLET_INDEX = 4

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
    position_manager: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    key: str = field(default="", repr=False)
    secret: str = field(default="", repr=False)
    wallet_key: str = field(default="", repr=False)


def sandbox_wallet_key() -> str:
    """The sandbox wallet's key: anvil's default account 4 (a public test key, never money)."""
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    path = f"m/44'/60'/0'/0/{SANDBOX_WALLET_INDEX}"
    return str(Account.from_mnemonic(ANVIL_MNEMONIC, account_path=path).key.to_0x_hex())


def sandbox_endpoints(settings: Settings) -> dict[str, Endpoint]:
    """Each configured venue's endpoint in the running sandbox (by kind: the broker sandbox
    serves every broker venue, the exchange sandbox every exchange venue, the perpetual sandbox
    every perpetual venue, the chain every pool). Raises InputError when no sandbox runs in
    ``sandbox.state``, or when it lacks the piece a venue needs."""
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
        elif v.kind in ("exchange", "perpetual"):
            piece = "perp" if v.kind == "perpetual" else "exchange"
            e, k = ends.get(piece, {}), keys.get(piece, {})
            if not e:
                raise InputError(
                    f"venues.{name}: the sandbox in {settings.sandbox.state} runs no {piece} "
                    "(started before it had one?): restart it with `pegbot sandbox down` and `up`"
                )
            out[name] = Endpoint(
                url=e.get("url", ""),
                extra={"market_id": e["symbol"], "ccxt_id": "bybit"} if piece == "perp" else {},
                key=k.get("api_key", ""),
                secret=k.get("secret", ""),
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
                position_manager=uni.get("position_manager", ""),
                extra=c,
                wallet_key=sandbox_wallet_key(),
            )
    i, k = ends.get("issuer", {}), keys.get("issuer", {})
    for name in settings.issuers:
        out[f"issuer:{name}"] = Endpoint(
            url=i.get("url", ""),
            chain_id=i.get("chain_id"),
            extra={"processor": i.get("processor", "")},
            key=k.get("api_key", ""),
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
            position_manager=v.position_manager,
            key=_secret(v.api_key, f"venues.{name}.api_key"),
            secret=_secret(v.api_secret, f"venues.{name}.api_secret"),
            wallet_key=_secret(v.wallet_key, f"venues.{name}.wallet_key"),
        )
    for name, i in settings.issuers.items():
        out[f"issuer:{name}"] = Endpoint(
            url=i.url,
            extra={"processor": i.processor},
            key=_secret(i.api_key, f"issuers.{name}.api_key"),
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
    from bot.live_transfers import route_problems  # each leg's keys (bot/live_transfers.py)

    problems += route_problems(settings)
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
        elif v.kind == "perpetual":
            for key in ("api_key", "api_secret"):
                if getattr(v, key) is None:
                    problems.append(
                        f"{where}.{key}: missing; the perpetual venue's trading keys, by reference"
                    )
            if not v.perp_market_id:
                problems.append(f"{where}.perp_market_id: missing; the venue's id of the contract")
        else:
            for key, why in (
                ("rpc_url", "the chain's JSON-RPC HTTP URL"),
                ("ws_url", "the chain's JSON-RPC websocket URL, for the pool's logs"),
                ("pool_address", "the Uniswap v3 pool of the token"),
                ("router", "the SwapRouter the swaps go through"),
                ("quoter", "the QuoterV2 the swaps are priced with"),
                ("quote_address", "the quote token's ERC-20 (USDC)"),
            ):
                if not getattr(v, key):
                    problems.append(f"{where}.{key}: missing; {why}")
            if v.chain_id is None:
                problems.append(f"{where}.chain_id: missing; the chain id the RPC must report")
            for sym, tok in settings.tokens.items():
                if name in tok.venues and not tok.contract:
                    problems.append(f"tokens.{sym}.contract: missing; the token's ERC-20 on chain")
            if v.wallet_key is None:
                problems.append(f"{where}.wallet_key: missing; the wallet's key, by reference")
    for name, i in settings.issuers.items():
        where = f"issuers.{name}"
        pools = [n for n, v in settings.venues.items() if v.kind == "pool"]
        if i.cash_account not in pools:
            problems.append(
                f"{where}.cash_account: missing; the pool venue whose wallet pays the issuer "
                f"({', '.join(pools) or 'none configured'})"
            )
        if i.model is not IssuerModel.BROKER_ORDER:
            if not i.url:
                problems.append(f"{where}.url: missing; the issuer's API")
            if i.api_key is None:
                problems.append(f"{where}.api_key: missing; the issuer API's key, by reference")
        if i.model is not IssuerModel.DELAYED_REQUEST and not i.processor:
            problems.append(f"{where}.processor: missing; the issuer's order-processor contract")
    for key, ref in secret_refs(settings):
        try:
            resolve_secret(ref, key)
        except ConfigError as exc:
            problems.extend(exc.problems)
    return problems


def endpoints_for(settings: Settings) -> dict[str, Endpoint]:
    problems = config_problems(settings)
    if settings.run.environment == "sandbox" and not problems:
        return sandbox_endpoints(settings)
    if problems:
        raise InputError(
            problems[0]
            + (f" (and {len(problems) - 1} more: pegbot config check)" if len(problems) > 1 else "")
        )
    return configured_endpoints(settings)
