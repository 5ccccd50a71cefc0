"""Configuration: pydantic-settings models, TOML files, environment overrides, secret references.

A config file is TOML (see config/*.toml and docs/config.md). Environment variables override it
with the ``PEGBOT_`` prefix and ``__`` as the nested delimiter, e.g.
``PEGBOT_RISK__MAX_ORDER_NOTIONAL_USD=5000``. Secrets never live in TOML: a config names where a
secret comes from (``{ env = "NAME" }`` or ``{ file = "/path" }``) and ``resolve_secret`` reads it
into a ``SecretStr``. ``load_config`` raises ``ConfigError`` with one line per problem.
"""

from __future__ import annotations

import os
import tomllib
from datetime import datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.errors import ConfigError
from bot.model import Currency, IssuerModel
from bot.money import ZERO, bps_of, money_context

ENV_PREFIX = "PEGBOT_"
ENV_DELIMITER = "__"


class Strict(BaseModel):
    """Every section rejects unknown keys, so a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(Strict):
    """Where a secret comes from: an environment variable or a file. Never the secret itself."""

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env or file")
        return self

    def describe(self) -> str:
        return f"env:{self.env}" if self.env else f"file:{self.file}"


class VenueConfig(Strict):
    """A venue: broker (underlying shares), exchange (token order book), pool (AMM) or
    perpetual (a perpetual future on a token, ADR 0018)."""

    kind: Literal["broker", "exchange", "pool", "perpetual"]
    entry_latency_ms: float = Field(50.0, ge=0, description="order entry leg latency")
    response_latency_ms: float = Field(50.0, ge=0, description="venue answer leg latency")
    # broker
    commission_per_share_usd: Decimal = Field(Decimal(0), ge=0)
    sec_fee_bps: Decimal = Field(Decimal("0.278"), ge=0, description="SEC fee on sells, bps")
    taf_per_share_usd: Decimal = Field(Decimal("0.000166"), ge=0, description="FINRA TAF, sells")
    taf_max_usd: Decimal = Field(Decimal("8.30"), ge=0)
    overnight_enabled: bool = False
    shorting_enabled: bool = Field(
        True, description="broker: the account may sell short (false: hedges sell shares held)"
    )
    # exchange
    maker_fee_bps: Decimal = Decimal(0)
    taker_fee_bps: Decimal = Field(Decimal(10), ge=0)
    fill_model: Literal["queue", "intensity"] = "queue"
    intensity_a: float = Field(1.0, gt=0, description="fills/s at zero distance: A in A*exp(-k*d)")
    intensity_k: float = Field(0.5, gt=0, description="decay per bps of distance from the top")
    intensity_distance: Literal["top_bps", "mid_price"] = Field(
        "top_bps",
        description="intensity model's distance: bps behind the same-side top, or USD from the mid",
    )
    # pool
    gas_per_swap: int = Field(150_000, ge=0)
    base_fee_gwei: float = Field(20.0, ge=0)
    priority_fee_gwei: float = Field(0.05, ge=0)
    eth_usd: float = Field(3000.0, gt=0)
    # live connectors (sandbox, paper, live; a sandbox run fills the endpoints and keys in)
    api_key: SecretRef | None = None
    api_secret: SecretRef | None = None
    url: str = Field("", description="API base URL override ('' = the venue's own)")
    paper: bool = Field(True, description="broker: Alpaca's paper API")
    live_confirmation: str = Field(
        "", description="broker: must read 'trade real money at Alpaca' with paper = false"
    )
    stream_url: str = Field("", description="broker: trade-updates stream URL override")
    data_feed: Literal["iex", "sip", "overnight"] = Field("iex", description="broker: quote feed")
    fallback_feed: Literal["iex", "sip", "overnight"] | None = Field(
        "iex", description="broker: feed used when data_feed is not entitled"
    )
    data_stream_urls: dict[str, str] = Field(
        default_factory=dict, description="broker: feed -> market-data stream URL override"
    )
    ccxt_id: str = Field("", description="exchange: the ccxt exchange id ('' = the venue name)")
    quote_currency: str = Field("USD", description="exchange: what the token is quoted in")
    book_depth: int = Field(5, ge=1, description="exchange: book levels read")
    book_interval_s: float = Field(1.0, gt=0, description="exchange: book read period")
    book_stream: Literal["rest", "websocket"] = Field(
        "rest", description="exchange: book read by REST polling or streamed over the websocket"
    )
    # perpetual (ADR 0018; fees are taker_fee_bps / maker_fee_bps)
    perp_token: str = Field("", description="perpetual: the token the contract tracks")
    perp_instrument: str = Field(
        "", description="perpetual: the contract's symbol ('' = the token's name + '-PERP')"
    )
    contract_size: Decimal = Field(Decimal(1), gt=0, description="perpetual: tokens a contract")
    funding_interval_s: int = Field(
        28_800, gt=0, description="perpetual: seconds between funding times (from the epoch)"
    )
    maintenance_margin: Decimal = Field(
        Decimal("0.05"), gt=0, lt=1, description="perpetual: maintenance fraction of notional"
    )
    perp_spread_bps: Decimal = Field(
        Decimal(4), ge=0, description="perpetual (simulated): a market order fills this past mark"
    )
    rpc_url: str = Field("", description="pool: JSON-RPC HTTP URL")
    ws_url: str = Field("", description="pool: JSON-RPC websocket URL (logs)")
    chain_id: int | None = Field(None, description="pool: the chain id the RPC must report")
    pool_address: str = Field("", description="pool: the Uniswap v3 pool's address")
    quote_address: str = Field("", description="pool: the quote ERC-20's address (USDC)")
    router: str = Field("", description="pool: SwapRouter address")
    quoter: str = Field("", description="pool: QuoterV2 address")
    position_manager: str = Field(
        "", description="pool: NonfungiblePositionManager address (range orders; '': refused)"
    )
    range_poll_s: float = Field(
        2.0, gt=0, description="pool (live): seconds between reads of resting range orders"
    )
    confirmations: int = Field(1, ge=0, description="pool: blocks before a log counts")
    wallet_key: SecretRef | None = Field(None, description="pool: the wallet's private key")
    # the live perpetual venue through ccxt (ADR 0019; keys are api_key / api_secret)
    perp_market_id: str = Field(
        "", description="perpetual (live): the venue's own id of the contract ('AAPLXUSDT')"
    )
    settle_currency: str = Field(
        "USDT", description="perpetual (live): the settlement currency's ccxt code"
    )
    perp_poll_s: float = Field(
        5.0, gt=0, description="perpetual (live): seconds between mark, funding and margin reads"
    )


class IssuerConfig(Strict):
    """An issuer's primary market (DOMAIN.md: three models)."""

    model: IssuerModel
    fee_flat_usd: Decimal = Field(Decimal(0), ge=0)
    fee_bps: Decimal = Field(Decimal(0), ge=0)
    min_notional_usd: Decimal = Field(Decimal(0), ge=0)
    accept_sessions: str = Field("always", description="when requests are accepted")
    execute_sessions: str = Field("regular", description="when requests are priced/executed")
    weekend_session: bool = False
    latency_s: float = Field(60.0, ge=0, description="mean time from executable to priced")
    latency_jitter_s: float = Field(30.0, ge=0, description="std-dev of that time")
    latency_tail_prob: float = Field(
        0.02, ge=0, le=1, description="delayed model: share of requests executed in the slow tail"
    )
    latency_tail_business_days: int = Field(
        3, ge=1, description="delayed model: the tail's guarantee, T+N business days"
    )
    settle_s: float = Field(600.0, ge=0, description="time from priced to tokens/cash delivered")
    deliver_to: str = Field("", description="venue whose inventory minted tokens land in")
    cash_account: str = Field(
        "", description="account that pays mints and is paid for redeems ('' = the issuer's own)"
    )
    quote_valid_s: float = Field(30.0, gt=0, description="firm_quote: quote lifetime")
    quote_submit_s: float = Field(
        12.0, ge=0, description="firm_quote: from the quote to the request landing on chain"
    )
    spread_bps: Decimal = Field(
        Decimal(0), ge=0, lt=10_000, description="mints at mid x (1 + spread), redeems x (1 - s)"
    )
    session_limit_usd: Decimal = Field(
        Decimal(0), ge=0, description="notional priced per issuer session; 0 = no limit"
    )
    api_key: SecretRef | None = None
    url: str = Field("", description="live: the issuer's API (firm_quote, delayed_request)")
    processor: str = Field("", description="live: the order-processor contract's address")
    limit_bps: Decimal = Field(
        Decimal(300), ge=0, description="live: a mint pays at most this far over fair value"
    )


class MultiplierConfig(Strict):
    at: datetime
    value: Decimal = Field(gt=0)


class TokenConfig(Strict):
    """A tokenized stock and where it trades."""

    underlying: str
    issuer: str
    venues: list[str] = Field(min_length=1)
    chain: str = "ethereum"
    contract: str = ""
    decimals: int = Field(18, ge=0, le=36)
    multipliers: list[MultiplierConfig] = Field(default_factory=list)


class StockConfig(Strict):
    broker: str


class InventoryBand(Strict):
    target: Decimal = Field(Decimal(0), ge=0, description="token inventory to hold, in tokens")
    band: Decimal = Field(Decimal(0), ge=0, description="tolerated distance before rebalancing")


class CrossVenuePair(Strict):
    """Two venues that trade the same token against each other (strategies/cross_venue.py)."""

    token: str = Field(description="the token both venues trade")
    venues: list[str] = Field(
        min_length=2, max_length=2, description="the two venues: a pool and an exchange, or two"
    )


class CrossVenueConfig(Strict):
    """Parameters of strategies/cross_venue.py: token against token across venues."""

    pairs: list[CrossVenuePair] = Field(
        default_factory=list, description="the venue pairs arbitraged against each other"
    )
    min_edge_bps: float = Field(10.0, ge=0, description="net edge after fees and gas, bps")
    min_edge_usd: float = Field(5.0, ge=0, description="net edge after fees and gas, USD")
    max_qty: float = Field(500.0, gt=0, description="largest size traded at once, tokens")
    max_book_age_s: float = Field(30.0, gt=0, description="an older book is stale: stand aside")
    cooldown_s: float = Field(5.0, ge=0, description="min time between trades of one pair")
    max_slippage_bps: float = Field(
        30.0, ge=0, description="each leg's worst price this far past its expected price"
    )
    swap_deadline_s: float = Field(60.0, gt=0, description="a pool leg reverts if later")
    repair_attempts: int = Field(
        3, ge=0, description="repair legs sent at most when a leg ends short (0: no repair)"
    )
    repair_max_loss_bps: float = Field(
        100.0, ge=0, description="a repair's price, net of fees and gas, vs the filled leg's, bps"
    )
    repair_deadline_s: float = Field(
        300.0, gt=0, description="how long after a leg ended short a repair is still tried"
    )


class MarketMakerTokenConfig(Strict):
    """How strategies/market_maker.py quotes one token (docs/market_making.md)."""

    model: Literal["avellaneda_stoikov", "glft", "symmetric"] = Field(
        "avellaneda_stoikov", description="quoting model; symmetric is the no-skew baseline"
    )
    gamma: float = Field(0.1, gt=0, description="risk aversion, per USD per lot")
    k: float = Field(10.0, gt=0, description="fill intensity decay per USD from the mid")
    A: float = Field(1.0, gt=0, description="fills per second of a quote at the mid")
    sigma: float = Field(0.05, gt=0, description="the fair value's vol, USD per sqrt(second)")
    horizon_s: float = Field(
        3600.0, gt=0, description="avellaneda_stoikov: length of each finite-horizon window"
    )
    venue: str = Field(
        "",
        description="exchange quoted on, or a pool for range liquidity ('' = first exchange)",
    )
    range_width_bps: float = Field(
        50.0, gt=0, description="pool venue: each range reaches this far past its quote"
    )
    quote_size: Decimal = Field(Decimal(1), gt=0, description="tokens per quote: one lot")
    target_inventory: Decimal = Field(
        Decimal(0), ge=0, description="tokens at the venue that count as a flat book"
    )
    max_inventory: Decimal = Field(
        Decimal(10), gt=0, description="hard limit on tokens held away from the target"
    )
    requote_bps: float = Field(
        1.0, ge=0, description="a working quote moves only when its price is this far off"
    )
    price_tick: Decimal = Field(
        Decimal("0.0001"), ge=0, description="quote price grid (0: unrounded)"
    )
    closed_hedge_cost_bps: float = Field(
        0.0, ge=0, description="per side, added while the broker cannot hedge"
    )
    hedge: bool = Field(True, description="hedge token fills (broker, else perpetual)")
    hedge_min_shares: Decimal = Field(
        Decimal("0.01"), gt=0, description="smallest hedge order, shares"
    )
    hedge_band: Decimal = Field(
        Decimal(0), ge=0, description="mint/redeem back to the target beyond it; 0 = never"
    )


class MarketMakerConfig(Strict):
    """Parameters of strategies/market_maker.py: one table per token quoted."""

    tokens: dict[str, MarketMakerTokenConfig] = Field(
        default_factory=dict, description="token -> how it is quoted"
    )


class StrategyConfig(Strict):
    """Parameters of strategies/mint_redeem.py (docs/config.md explains each)."""

    name: str = Field(
        "mint_redeem", description="a registered strategy, or a class as 'module:ClassName'"
    )
    min_edge_bps: float = Field(15.0, ge=0)
    min_edge_usd: float = Field(5.0, ge=0)
    max_qty: float = Field(500.0, gt=0, description="largest size evaluated, tokens")
    ladder_steps: int = Field(12, ge=1, le=200)
    funding_rate_apy: float = Field(0.05, ge=0)
    annual_vol: float = Field(0.30, gt=0, description="prior of the underlying's annual vol")
    intraday_variance_share: float = Field(
        0.75, gt=0, lt=1, description="prior: share of a day's variance in its regular session"
    )
    basis_vol: float = Field(0.15, gt=0, description="prior of the premium's annual vol")
    premium_half_life_s: float = Field(
        86_400.0, gt=0, description="prior of the premium's half-life"
    )
    vol_prior_s: float = Field(
        86_400.0, gt=0, description="seconds of evidence the variance priors weigh"
    )
    vol_half_life_s: float = Field(
        432_000.0, gt=0, description="half-life of the evidence: the trailing window"
    )
    latency_quantile: float = Field(
        0.9, gt=0, lt=1, description="issuer latency priced at this quantile"
    )
    risk_premium_sigmas: float = Field(1.0, ge=0, description="sigmas of basis charged")
    gap_vol_multiple: float = Field(2.0, ge=0, description="sigmas of unhedged time charged")
    overnight_hedge: bool = False
    unhedged_risk_budget_usd: float = Field(0.0, ge=0)
    multiplier_window_s: float = Field(3600.0, ge=0)
    cooldown_s: float = Field(5.0, ge=0, description="min time between actions per token")
    max_in_flight: int = Field(1, ge=1, description="arbitrages per token awaiting the issuer")
    max_quote_age_s: float = Field(30.0, gt=0, description="older data is stale: stand aside")
    hedge_slippage_bps: float = Field(10.0, ge=0, description="limit price band for DAY limits")
    inventory: dict[str, InventoryBand] = Field(default_factory=dict)
    ignore_settlement: bool = Field(False, description="naive variant for comparisons only")
    hedge_initial_inventory: bool = Field(
        True, description="hedge the starting token inventory at the broker's first session"
    )
    # legs that come back short (docs/strategy.md §7)
    max_slippage_bps: float = Field(
        30.0, ge=0, description="token legs: worst price at most this far past the expected one"
    )
    swap_deadline_s: float = Field(60.0, gt=0, description="a pool swap reverts if later")
    sale_attempts: int = Field(4, ge=1, description="offers of unsold minted tokens per redeem")
    sale_retry_s: float = Field(30.0, ge=0, description="wait before offering the rest again")
    sale_reprice_bps: float = Field(5.0, ge=0, description="each new offer this much lower")
    retry_s: float = Field(5.0, ge=0, description="wait after a refused hedge or request")
    retry_cap_s: float = Field(300.0, ge=0, description="longest wait between retries")
    request_attempts: int = Field(3, ge=1, description="issuer refusals before stranded")
    hedge_reprice_s: float = Field(60.0, gt=0, description="re-place a hedge working this long")
    # the perpetual hedge (ADR 0018, docs/perpetual.md)
    perp_hedge: bool = Field(
        False, description="hedge on a configured perpetual when cheaper or the broker is closed"
    )
    perp_margin_buffer: float = Field(
        0.5, ge=0, description="risk: perp equity kept above maintenance x (1 + this)"
    )
    perp_migrate_at_open: bool = Field(
        True, description="move perpetual hedges to the broker when its session opens"
    )
    perp_basis_sigmas: float = Field(
        1.0, ge=0, description="sigmas of perp-vs-underlying basis charged over the holding"
    )
    perp_basis_vol_bps: float = Field(
        30.0, ge=0, description="the perp basis's std-dev per sqrt(day), bps"
    )
    perp_min_liquidation_distance: float = Field(
        0.10, ge=0, lt=1, description="no perp hedge whose liquidation is nearer than this"
    )
    hedge_deadline_s: float = Field(
        300.0, gt=0, description="longest a hedge may work before exposure counts as a breach"
    )
    cross_venue: CrossVenueConfig = Field(
        default_factory=CrossVenueConfig, description="strategies/cross_venue.py's parameters"
    )
    market_maker: MarketMakerConfig = Field(
        default_factory=MarketMakerConfig, description="strategies/market_maker.py's tokens"
    )

    @field_validator("name")
    @classmethod
    def _known_strategy(cls, name: str) -> str:
        from strategies.registry import REGISTRY, is_import_path

        if name not in REGISTRY and not is_import_path(name):
            known = ", ".join(sorted(REGISTRY))
            raise ValueError(f"unknown strategy '{name}'; known: {known}, or 'module:ClassName'")
        return name


class RiskConfig(Strict):
    max_order_notional_usd: Decimal = Field(Decimal(50_000), gt=0)
    max_position_usd: Decimal = Field(Decimal(200_000), gt=0)
    collar_bps: Decimal = Field(Decimal(500), gt=0)


class BacktestConfig(Strict):
    feed: Path = Path("data/sample")
    seed: int = 7
    # A starting balance cannot be negative: no account goes negative (DESIGN.md).
    initial_cash_usd: dict[str, Annotated[Decimal, Field(ge=0)]] = Field(default_factory=dict)
    initial_tokens: dict[str, Annotated[Decimal, Field(ge=0)]] = Field(
        default_factory=dict, description="'venue:token' -> quantity"
    )
    sample_interval_s: float = Field(300.0, gt=0, description="report sampling period")


class RunConfig(Strict):
    environment: Literal["backtest", "sandbox", "paper", "live"] = Field(
        "backtest", description="what `pegbot run` trades on (docs/config.md)"
    )
    speed: float = Field(2000.0, gt=0, description="backtest: sim seconds per wall second")
    health_host: str = "127.0.0.1"
    health_port: int = Field(8787, ge=0, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    heartbeat_s: float = Field(60.0, gt=0)
    state: Path = Field(
        Path(".pegbot"), description="live runs: the daemon's state (operator transfers/)"
    )
    history: int = Field(
        10_000,
        ge=100,
        description="live runs: decisions, fills, answers and ended orders kept in memory "
        "(the journal and logs keep all); a backtest keeps everything",
    )


class SandboxConfig(Strict):
    """The local sandbox a ``sandbox`` run trades on (``pegbot sandbox up``)."""

    state: Path = Field(Path(".sandbox"), description="its state folder")
    manage: bool = Field(
        True, description="`pegbot run` starts it if none runs, and stops what it started"
    )
    seed: int = Field(7, description="the sandbox's seed when the run starts it")


class TransferRouteConfig(Strict):
    """A way to move cash or tokens between two of our accounts (ADR 0011): a bank wire, a USDC
    on/off ramp, or a token withdrawal/deposit between an exchange and the wallet."""

    kind: Literal["bank_wire", "usdc_ramp", "token_withdrawal"]
    source: str
    destination: str
    assets: list[str] = Field(
        default_factory=lambda: [Currency.USD.value], min_length=1, description="USD or tokens"
    )
    two_way: bool = Field(True, description="also from destination to source, on the same terms")
    fee_flat_usd: Decimal = Field(Decimal(0), ge=0, description="USD per transfer, sender's cash")
    fee_bps: Decimal = Field(Decimal(0), ge=0, lt=10_000, description="of the amount, in its asset")
    fee_flat_tokens: Decimal = Field(Decimal(0), ge=0, description="token routes: per transfer")
    gas_usd: Decimal = Field(Decimal(0), ge=0, description="token routes: chain cost, USD")
    latency_s: float = Field(600.0, ge=0, description="bank_wire: business seconds; else seconds")
    latency_jitter_s: float = Field(0.0, ge=0, description="std-dev of the latency")
    opens: time = Field(time(9, 0), description="bank_wire: business hours start, New York time")
    cutoff: time = Field(time(17, 0), description="bank_wire: later wires leave the next day")
    fail_rate: float = Field(0.0, ge=0, le=1, description="share of transfers that come back")
    min_amount: Decimal = Field(Decimal(0), ge=0, description="smaller transfers are refused")
    entry_latency_ms: float = Field(50.0, ge=0, description="request leg to the venue's API")
    response_latency_ms: float = Field(50.0, ge=0, description="answer leg back")
    # live runs (bot/live_transfers.py, docs/transfers.md)
    withdrawal_keys: dict[str, str] = Field(
        default_factory=dict,
        description="live: 'ACCOUNT:ASSET' -> the exchange's withdrawal key name out of ACCOUNT",
    )
    deposit_addresses: dict[str, str] = Field(
        default_factory=dict,
        description="live: 'ACCOUNT:ASSET' -> the chain address that credits ACCOUNT",
    )

    @field_validator("withdrawal_keys", "deposit_addresses")
    @classmethod
    def _account_asset_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            account, sep, asset = key.partition(":")
            if not (account and sep and asset):
                raise ValueError(f"'{key}': expected 'ACCOUNT:ASSET'")
            if not text.strip():
                raise ValueError(f"'{key}': empty")
        return value

    def fees(self, asset: str, amount: Decimal) -> tuple[Decimal, Decimal]:
        """(USD, tokens) the sender pays on top of ``amount``: ``fee_flat_usd`` (plus ``gas_usd``
        on token routes) from its cash, and ``fee_bps`` of the amount in the asset moved (plus
        ``fee_flat_tokens`` on token routes)."""
        with money_context():
            share = bps_of(amount, self.fee_bps) if self.fee_bps else ZERO
            if asset == Currency.USD:
                return self.fee_flat_usd + share, ZERO
            return self.fee_flat_usd + self.gas_usd, self.fee_flat_tokens + share

    def connects(self, source: str, destination: str) -> bool:
        """Whether this route moves funds from ``source`` to ``destination``."""
        if (source, destination) == (self.source, self.destination):
            return True
        return self.two_way and (source, destination) == (self.destination, self.source)


class BalanceBand(Strict):
    """A balance the rebalancer holds an account at: moved back to ``target`` once it is more
    than ``band`` away (counting transfers in flight)."""

    target: Decimal = Field(ge=0, description="balance to hold (USD, or tokens)")
    band: Decimal = Field(Decimal(0), ge=0, description="tolerated distance from the target")


class RebalanceConfig(Strict):
    """The rebalancer's policy (bot/rebalancer.py): targets and bands per account, which route
    between two accounts, and the smallest transfer worth making."""

    enabled: bool = True
    min_transfer_usd: Decimal = Field(Decimal(1000), gt=0, description="smallest cash transfer")
    min_transfer_tokens: Decimal = Field(Decimal(1), gt=0, description="smallest token transfer")
    retry_after_s: float = Field(3600.0, ge=0, description="a route that failed rests this long")
    check_every_s: float = Field(300.0, ge=0, description="how often balances are looked at")
    cash: dict[str, BalanceBand] = Field(default_factory=dict, description="account -> band")
    tokens: dict[str, BalanceBand] = Field(
        default_factory=dict, description="'venue:TOKEN' -> band"
    )
    routes: dict[str, str] = Field(
        default_factory=dict, description="'source>destination' -> route name"
    )


class Settings(BaseSettings):
    """The whole configuration."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_DELIMITER,
        extra="forbid",
        frozen=True,
    )

    stocks: dict[str, StockConfig] = Field(default_factory=dict)
    tokens: dict[str, TokenConfig] = Field(default_factory=dict)
    venues: dict[str, VenueConfig] = Field(default_factory=dict)
    issuers: dict[str, IssuerConfig] = Field(default_factory=dict)
    strategy: StrategyConfig = StrategyConfig()
    strategies: dict[str, StrategyConfig] = Field(
        default_factory=dict,
        description="named strategies a backtest runs side by side, each on its own ledger",
    )
    risk: RiskConfig = RiskConfig()
    backtest: BacktestConfig = BacktestConfig()
    run: RunConfig = RunConfig()
    sandbox: SandboxConfig = SandboxConfig()
    transfers: dict[str, TransferRouteConfig] = Field(default_factory=dict)
    rebalance: RebalanceConfig = RebalanceConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # environment over file (init); no dotenv, no secrets dir: secrets are referenced
        return (env_settings, init_settings)


def _cross_check(s: Settings) -> list[str]:
    problems: list[str] = []
    for sym, stock in s.stocks.items():
        v = s.venues.get(stock.broker)
        if v is None:
            problems.append(f"stocks.{sym}.broker: unknown venue '{stock.broker}'")
        elif v.kind != "broker":
            problems.append(
                f"stocks.{sym}.broker: venue '{stock.broker}' is a {v.kind}, not a broker"
            )
    for sym, tok in s.tokens.items():
        if tok.underlying not in s.stocks:
            problems.append(f"tokens.{sym}.underlying: unknown stock '{tok.underlying}'")
        if tok.issuer not in s.issuers:
            problems.append(f"tokens.{sym}.issuer: unknown issuer '{tok.issuer}'")
        for venue in tok.venues:
            v = s.venues.get(venue)
            if v is None:
                problems.append(f"tokens.{sym}.venues: unknown venue '{venue}'")
            elif v.kind in ("broker", "perpetual"):
                problems.append(f"tokens.{sym}.venues: '{venue}' is a {v.kind}, not a token venue")
    for name, v in s.venues.items():
        if v.kind == "perpetual" and v.perp_token not in s.tokens:
            problems.append(f"venues.{name}.perp_token: unknown token '{v.perp_token}'")
    for name, iss in s.issuers.items():
        if iss.deliver_to and iss.deliver_to not in s.venues:
            problems.append(f"issuers.{name}.deliver_to: unknown venue '{iss.deliver_to}'")
        if iss.cash_account and iss.cash_account not in s.venues:
            problems.append(f"issuers.{name}.cash_account: unknown venue '{iss.cash_account}'")
    problems += _check_market_maker(s)
    for where, strategy in [("strategy", s.strategy)] + [
        (f"strategies.{name}", cfg) for name, cfg in s.strategies.items()
    ]:
        for key in strategy.inventory:
            if key not in s.venues:
                problems.append(f"{where}.inventory.{key}: unknown venue '{key}'")
        for n, pair in enumerate(strategy.cross_venue.pairs):
            at = f"{where}.cross_venue.pairs[{n}]"
            traded = s.tokens.get(pair.token)
            if traded is None:
                problems.append(f"{at}.token: unknown token '{pair.token}'")
            elif pair.venues[0] == pair.venues[1]:
                problems.append(f"{at}.venues: the same venue twice")
            else:
                problems += [
                    f"{at}.venues: '{v}' is not one of token {pair.token}'s venues"
                    for v in pair.venues
                    if v not in traded.venues
                ]
    if "strategy" in s.strategies:
        problems.append("strategies.strategy: 'strategy' names the [strategy] table; rename it")
    for key in s.backtest.initial_cash_usd:
        if key not in s.venues and key not in s.issuers:
            problems.append(f"backtest.initial_cash_usd.{key}: unknown venue or issuer '{key}'")
    for key in s.backtest.initial_tokens:
        venue, _, token = key.partition(":")
        if venue not in s.venues or token not in s.tokens:
            problems.append(f"backtest.initial_tokens.{key}: expected 'venue:token' of known names")
    problems += _check_transfers(s)
    return problems


def _check_market_maker(s: Settings) -> list[str]:
    """Each quoted token is known and its venue is an exchange or a pool that lists it."""
    problems: list[str] = []
    for sym, mm in s.strategy.market_maker.tokens.items():
        where = f"strategy.market_maker.tokens.{sym}"
        tok = s.tokens.get(sym)
        if tok is None:
            problems.append(f"{where}: unknown token '{sym}'")
            continue
        exchanges = [v for v in tok.venues if v in s.venues and s.venues[v].kind == "exchange"]
        quotable = [v for v in tok.venues if v in s.venues and s.venues[v].kind == "pool"]
        if mm.venue and mm.venue not in exchanges + quotable:
            problems.append(f"{where}.venue: '{mm.venue}' is not an exchange or pool listing {sym}")
        elif not mm.venue and not exchanges:
            problems.append(f"{where}: {sym} is listed on no exchange venue")
    return problems


def _check_transfers(s: Settings) -> list[str]:
    """Transfer routes join known accounts with assets their kind can move; the rebalancer's
    bands name known accounts that some route reaches, and its route choices connect them."""
    problems: list[str] = []
    accounts = set(s.venues) | set(s.issuers)
    pools = {name for name, v in s.venues.items() if v.kind == "pool"}
    token_venues = {name for name, v in s.venues.items() if v.kind in ("exchange", "pool")}
    for name, r in s.transfers.items():
        where = f"transfers.{name}"
        for end in ("source", "destination"):
            if getattr(r, end) not in accounts:
                problems.append(f"{where}.{end}: unknown venue or issuer '{getattr(r, end)}'")
        if r.source == r.destination:
            problems.append(f"{where}: source and destination are the same account")
        cash_route = r.kind != "token_withdrawal"
        for asset in r.assets:
            if cash_route and asset != Currency.USD:
                problems.append(f"{where}.assets: a {r.kind} moves USD only, not '{asset}'")
            elif not cash_route and asset not in s.tokens:
                problems.append(f"{where}.assets: unknown token '{asset}'")
        if r.kind == "usdc_ramp" and not {r.source, r.destination} & pools:
            problems.append(f"{where}: a usdc_ramp has the wallet (a pool venue) at one end")
        if r.kind == "token_withdrawal" and not {r.source, r.destination} <= token_venues:
            problems.append(f"{where}: a token_withdrawal joins exchange or pool venues")
        if r.kind == "bank_wire" and r.opens >= r.cutoff:
            problems.append(f"{where}.opens: must be before the cutoff {r.cutoff}")
        problems += _check_live_keys(s, name, r)
    reb = s.rebalance
    holdings = [(f"cash.{a}", a, Currency.USD.value, a in accounts) for a in reb.cash]
    for key in reb.tokens:
        venue, _, token = key.partition(":")
        holdings.append((f"tokens.{key}", venue, token, venue in s.venues and token in s.tokens))
    for where, account, asset, known in holdings:
        if not known:
            token_band = where.startswith("tokens.")
            what = "'venue:TOKEN' of known names" if token_band else "a known venue or issuer"
            problems.append(f"rebalance.{where}: expected {what}")
        elif not any(
            asset in r.assets and account in (r.source, r.destination) for r in s.transfers.values()
        ):
            problems.append(f"rebalance.{where}: no transfer route moves {asset} there or away")
    for key, route in reb.routes.items():
        source, sep, destination = key.partition(">")
        chosen = s.transfers.get(route)
        if not sep:
            problems.append(f"rebalance.routes.{key}: expected 'source>destination'")
        elif chosen is None:
            problems.append(f"rebalance.routes.{key}: unknown transfer route '{route}'")
        elif not chosen.connects(source, destination):
            problems.append(f"rebalance.routes.{key}: route '{route}' does not go that way")
    return problems


def _check_live_keys(s: Settings, name: str, r: TransferRouteConfig) -> list[str]:
    """A withdrawal key names an exchange end of the route and an asset it moves; a deposit
    address an end of the route, an asset it moves, and a 0x address."""
    problems: list[str] = []
    exchanges = {n for n, v in s.venues.items() if v.kind == "exchange"}
    for field_name, table in (("withdrawal_keys", r.withdrawal_keys),
                              ("deposit_addresses", r.deposit_addresses)):  # fmt: skip
        for key, value in table.items():
            where = f"transfers.{name}.{field_name}.{key}"
            account, _, asset = key.partition(":")
            if account not in (r.source, r.destination):
                problems.append(f"{where}: '{account}' is not an end of the route")
            elif field_name == "withdrawal_keys" and account not in exchanges:
                problems.append(f"{where}: '{account}' is not an exchange venue")
            if asset not in r.assets:
                problems.append(f"{where}: the route does not move '{asset}'")
            if field_name == "deposit_addresses" and not _is_address(value):
                problems.append(f"{where}: '{value}' is not a 0x address of 40 hex digits")
    return problems


def _is_address(text: str) -> bool:
    digits = text.removeprefix("0x")
    return (
        text.startswith("0x")
        and len(digits) == 40
        and all(c in "0123456789abcdefABCDEF" for c in digits)
    )


def _format_validation_error(exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        kind = err["type"]
        if kind == "extra_forbidden":
            lines.append(f"{loc}: unknown key")
        elif kind == "missing":
            lines.append(f"{loc}: required key is missing")
        else:
            msg = err["msg"].removeprefix("Value error, ")  # our own validators' words
            lines.append(f"{loc}: {msg}")
    return lines


def load_config(path: Path, environ: dict[str, str] | None = None) -> Settings:
    """Read a TOML config, apply environment overrides, validate everything.

    Raises ConfigError listing every problem, one line each, as ``PATH: what is wrong`` (naming
    the key where there is one).
    """
    try:
        settings = _load(path, environ)
    except ConfigError as exc:
        raise ConfigError([f"{path}: {line}" for line in exc.problems]) from None
    return settings


def _load(path: Path, environ: dict[str, str] | None) -> Settings:
    if path.is_dir():
        raise ConfigError(["is a directory, not a config file"])
    if not path.exists():
        raise ConfigError(["no such file"])
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"cannot be read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigError(["not valid TOML: not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"not valid TOML: {exc}"]) from None
    saved = None
    if environ is not None:
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(environ)
    try:
        return settings_from_data(data)
    finally:
        if saved is not None:
            os.environ.clear()
            os.environ.update(saved)


def settings_from_data(data: dict[str, Any]) -> Settings:
    """Settings from a config's parsed TOML (environment overrides applied), validated and
    cross-checked; ConfigError with one line per problem, naming the key."""
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc)) from None
    problems = _cross_check(settings)
    if problems:
        raise ConfigError(problems)
    return settings


def resolve_secret(ref: SecretRef, what: str) -> SecretStr:
    """Read a referenced secret. The error names the reference, never the value."""
    if ref.env is not None:
        value = os.environ.get(ref.env)
        if not value:
            raise ConfigError([f"{what}: secret environment variable {ref.env} is not set"])
        return SecretStr(value)
    assert ref.file is not None
    try:
        return SecretStr(ref.file.read_text().strip())
    except OSError:
        raise ConfigError([f"{what}: secret file {ref.file} cannot be read"]) from None


def secret_refs(s: Settings) -> list[tuple[str, SecretRef]]:
    """Every secret reference in the config with its key path."""
    refs: list[tuple[str, SecretRef]] = []
    for name, v in s.venues.items():
        for field_name in ("api_key", "api_secret", "wallet_key"):
            ref = getattr(v, field_name)
            if ref is not None:
                refs.append((f"venues.{name}.{field_name}", ref))
    for name, i in s.issuers.items():
        if i.api_key is not None:
            refs.append((f"issuers.{name}.api_key", i.api_key))
    return refs


def render_effective(s: Settings) -> tuple[str, list[str]]:
    """The effective config as JSON text with every secret shown only as its reference, and
    the problems found resolving secret references (a referenced secret that is missing)."""
    import json

    problems: list[str] = []
    for key, ref in secret_refs(s):
        try:
            resolve_secret(ref, key)
        except ConfigError as exc:
            problems.extend(exc.problems)
    data = s.model_dump(mode="json")
    for key, ref in secret_refs(s):
        node: Any = data
        parts = key.split(".")
        for p in parts[:-1]:
            node = node[p]
        node[parts[-1]] = f"<secret from {ref.describe()}>"
    return json.dumps(data, indent=2, sort_keys=True), problems
