"""One mint/redeem opportunity: the per-token view the strategy keeps, and how a candidate venue
is costed and sized.

``TokenView``/``VenueView`` hold what the fast path needs precomputed (fee factors, the pool's
price scale, the multiplier in force and when it next changes) plus the token's decision state.
``plan_candidate`` chooses the path (inventory-first, mint-first, redeem), the size limits, the
exposure window, and runs ``strategies.sizing`` over ``strategies.costs``.

No I/O, no clock: everything comes from the ``StrategyContext`` and the settings passed in.
"""

from __future__ import annotations

import math
import sys
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from statistics import NormalDist
from typing import TYPE_CHECKING, NamedTuple

from bot.amm.errors import AmmRevert
from bot.issuer_latency import IssuerLatency
from bot.market import PoolMarket
from strategies.arb_groups import Path
from strategies.base import Band, Quiet
from strategies.costs import (
    NO_EXPOSURE,
    YEAR_S,
    CostParams,
    Direction,
    EdgeBreakdown,
    EdgeModel,
    NetEdge,
    exposure_window,
    gas_usd,
    token_fill_on_pool,
    walk_levels,
)
from strategies.sizing import (
    SizeChoice,
    SizeLimit,
    binding_limit,
    choose_size,
    choose_size_piecewise,
)
from strategies.volatility import KINDS, PremiumStats, RealizedVariance, prior_rates

if TYPE_CHECKING:
    from bot.config import IssuerConfig, Settings
    from bot.market import Book, IssuerState, MarketState, TopOfBook
    from bot.model import MultiplierStep, TokenizedStock
    from bot.sessions import MarketSession
    from strategies.base import Decision, StrategyContext
    from strategies.legs import HedgeForm

NS = 1_000_000_000
NEVER = sys.maxsize
QTY_STEP = 0.001  # sizes are searched on a grid of a thousandth of a token (legs.QTY_QUANTUM)
# The size search stops refining at a bracket this fraction of the binding limit: the profit
# curve is flat at its optimum, so a finer size earns nothing that shows (half the evaluations).
SIZE_TOLERANCE = 0.002


class VenueView:
    """A token venue with the fast path's numbers precomputed."""

    __slots__ = (
        "name", "kind", "is_pool", "key", "sell_factor", "buy_factor", "scale", "token0",
        "issuer_fee", "pool_keep", "top", "sqrt_seen", "spot", "band", "accounts", "reserved",
        "adverse_bps", "fill_rate", "sent",
    )  # fmt: skip

    def __init__(
        self, name: str, kind: str, token: str, taker_fee_bps: float, issuer_fee_bps: float = 0.0
    ) -> None:
        self.name = name
        self.kind = kind
        self.is_pool = kind == "pool"
        self.key = (name, token)
        # What one unit of token price is worth against fair value after the costs every trade
        # pays in proportion: the venue fee and the issuer's bps fee (mint on a premium, redeem
        # on a discount). The fast path compares with these, so it never sends the slow path an
        # opportunity those fees alone already kill. Pools: the fee tier, set in init_pool.
        self.issuer_fee = issuer_fee_bps * 1e-4
        self.sell_factor = (1.0 - taker_fee_bps * 1e-4) / (1.0 + self.issuer_fee)
        self.buy_factor = (1.0 + taker_fee_bps * 1e-4) / (1.0 - self.issuer_fee)
        self.scale = 0.0  # pools: (sqrtPriceX96 * scale) ** 2 is token1 per token0
        self.token0 = True
        self.pool_keep = 1.0  # pools: 1 - fee tier, set in init_pool
        self.top: TopOfBook | None = None  # exchanges: the book's top, once it exists
        self.sqrt_seen = -1  # pools: the sqrt price ``spot`` was computed for
        self.spot = math.nan
        self.band = Band()  # while the token holds (token_views gives the engine's one)
        self.accounts: VenueAccounts | None = None  # sizing's ledger reads, per ledger version
        # our own token order still out on this venue: the depth (a book) or the pool state it
        # will take, which the market data does not show yet (``Reservation``)
        self.reserved: Reservation | None = None
        # what our own token orders here met (``learn``): how far the price had moved against
        # them by the time they ended, and how much of them filled; priors: nothing, all
        self.adverse_bps = 0.0
        self.fill_rate = 1.0
        self.sent: dict[str, tuple[Direction, float]] = {}  # group -> (side, price when sent)

    def learn(self, group_id: str, market: MarketState, filled: float) -> None:
        """A token order of ``group_id`` ended having filled ``filled`` of itself: weigh in the
        move of this venue's price since it was sent (against us: positive) and the fill."""
        sent = self.sent.pop(group_id, None)
        if sent is None:
            return
        direction, price = sent
        bid, ask, _ = self.prices(market)
        now = bid if direction is Direction.PREMIUM else ask
        if now == now and price > 0.0:
            moved = (
                (price - now) / price if direction is Direction.PREMIUM else (now - price) / price
            )
            self.adverse_bps += LEARN_WEIGHT * (moved * 1e4 - self.adverse_bps)
        self.fill_rate += LEARN_WEIGHT * (filled - self.fill_rate)

    def init_pool(self, market: MarketState) -> None:
        info = market.pools[self.name].info
        self.token0 = info.token_is_token0
        self.scale = 2.0**-96 * 10.0 ** ((info.decimals0 - info.decimals1) / 2)
        fee = info.fee_pips * 1e-6
        self.pool_keep = 1.0 - fee
        self.sell_factor = (1.0 - fee) / (1.0 + self.issuer_fee)
        self.buy_factor = 1.0 / ((1.0 - fee) * (1.0 - self.issuer_fee))

    def spot_at(self, market: MarketState, sqrt_price_x96: int) -> float:
        """A pool's spot price (quote per token, before fees) at ``sqrt_price_x96``, cached."""
        if self.scale == 0.0:
            self.init_pool(market)
        r = sqrt_price_x96 * self.scale
        self.spot = r * r if self.token0 else 1.0 / (r * r)
        self.sqrt_seen = sqrt_price_x96
        return self.spot

    def prices(self, market: MarketState) -> tuple[float, float, int]:
        """(best bid, best ask, data timestamp) before fees; a pool's spot price is both sides
        and its timestamp is -1 (its state is exact until the next swap: never stale)."""
        if self.is_pool:
            pm = market.pools.get(self.name)
            if pm is None:
                return math.nan, math.nan, 0
            sqrt_price = pm.pool.sqrt_price_x96
            price = self.spot if sqrt_price == self.sqrt_seen else self.spot_at(market, sqrt_price)
            return price, price, -1
        book = market.books.get(self.key)
        if book is None:
            return math.nan, math.nan, 0
        return book.top.bid, book.top.ask, book.top.ts_ns


LEARN_WEIGHT = 0.2  # each token order's outcome weighs this much against the ones before
MIN_FILL_RATE = 0.05  # the expected gas per filled swap is at most 20 swaps' worth


class Reservation(NamedTuple):
    """A token order of ``group_id`` still out on a venue: ``qty`` tokens on ``direction``'s
    side, placed when the book's top had ``book_ts_ns`` (a book) — two groups never size
    against the same displayed depth, or price the same pool state twice."""

    group_id: str
    direction: Direction
    qty: float
    book_ts_ns: int


class TokenView:
    """Per-token configuration and state: the cached multiplier and the skip collapse."""

    __slots__ = (
        "symbol", "underlying", "issuer", "broker", "venues", "params", "stock", "steps",
        "mult", "mult_dec", "next_step_ns", "last_action_ns", "last_decision", "last_code",
        "rejected_premium", "rejected_up", "recost_ns", "token_failures", "backoff_until_ns",
        "quiet_until_ns", "quiet_epoch", "gates_until_ns", "gates_epoch", "gates_form",
        "gates_closed", "quote", "issuer_state", "watch", "quote_band", "hold_counts",
        "inventory_hedged", "latency", "priced", "variance", "premiums", "pending_wake_ns",
    )  # fmt: skip

    def __init__(self, symbol: str, underlying: str, issuer: str, broker: str) -> None:
        self.symbol, self.underlying, self.issuer, self.broker = symbol, underlying, issuer, broker
        self.venues: tuple[VenueView, ...] = ()
        self.params: dict[str, CostParams] = {}
        self.stock: TokenizedStock | None = None
        self.steps: list[MultiplierStep] | None = None
        self.mult = 1.0
        self.mult_dec = Decimal(1)
        self.next_step_ns = -1  # forces a refresh on first use
        self.last_action_ns = -NEVER
        self.last_decision: Decision | None = None
        self.last_code = ""
        self.rejected_premium = 0.0
        self.rejected_up = True  # the skip's premium was above fair value (else a discount)
        self.recost_ns = -NEVER  # a sub-threshold skip is costed again from then on
        self.token_failures = 0  # consecutive token legs that came back short
        self.backoff_until_ns = -NEVER
        # a skip whose cause cannot change before this time or before the next lifecycle event
        # (fill, order end, issuer answer: ``epoch``) is not re-checked until then
        self.quiet_until_ns = -NEVER
        self.quiet_epoch = -1
        # every gate passed and holds until this time or the next lifecycle event (``epoch``),
        # but for the per-event checks (pause, quote crossed or stale unless the market is closed)
        self.gates_until_ns = 0
        self.gates_epoch = -1
        self.gates_form: HedgeForm | None = None
        self.gates_closed = False
        self.quote: TopOfBook | None = None  # the underlying's broker quote, once it exists
        self.issuer_state: IssuerState | None = None
        self.watch = Quiet(symbol)  # the engine passes over the token's events while it holds
        self.quote_band = self.watch.band(broker, underlying)
        self.hold_counts = True  # whether events passed over repeat the last skip
        # (starting inventory, multiplier) the inventory hedge was last sized for
        self.inventory_hedged: tuple[Decimal, Decimal] | None = None
        self.latency: IssuerLatency | None = None  # built on first use (needs the calendar)
        # (now, quantile, priced_ns) last answered: the latency model is a pure function of both
        self.priced: tuple[int, float, int] | None = None
        self.pending_wake_ns = 0  # legs waiting to go out cannot before then (``_flush``)
        # what the feed says about risk, sampled on the strategy's timer (strategies.volatility)
        self.variance = RealizedVariance(dict.fromkeys(KINDS, 0.0), 1.0, 1.0)
        self.premiums: dict[str, PremiumStats] = {}

    def refresh_multiplier(self, now: int) -> None:
        """Cache the multiplier in force at ``now`` and when the next step activates."""
        assert self.stock is not None
        steps = self.steps = self.stock.multipliers
        i = bisect_right([s.effective_ns for s in steps], now) - 1
        self.mult_dec = steps[max(i, 0)].multiplier
        self.mult = float(self.mult_dec)
        self.next_step_ns = steps[i + 1].effective_ns if i + 1 < len(steps) else NEVER


def expected_price(
    market: MarketState, v: VenueView, direction: Direction, qty: float, token_usd: float
) -> float:
    """The price the token leg of ``qty`` was costed at: on a pool the exact quote's average
    (``token_usd / qty``); on a book the last level the walk touched (an IOC limit there takes
    the whole size as the book stood)."""
    average = token_usd / qty
    book = None if v.is_pool else market.books.get(v.key)
    if book is None:
        return average
    left, price = qty, average
    for px, size in book.levels(direction is Direction.PREMIUM):
        price, left = px, left - size
        if left <= 0.0:
            break
    return price


def token_views(settings: Settings) -> dict[str, TokenView]:
    """A view per configured token, with its venues and cost parameters."""
    views: dict[str, TokenView] = {}
    for symbol, tc in settings.tokens.items():
        stock = settings.stocks.get(tc.underlying)
        view = TokenView(symbol, tc.underlying, tc.issuer, stock.broker if stock else "")
        venues = []
        for name in tc.venues:
            vc = settings.venues[name]
            fee = float(vc.taker_fee_bps) if vc.kind == "exchange" else 0.0
            issuer_bps = issuer_fee_bps(settings.issuers.get(tc.issuer))
            venue = VenueView(name, vc.kind, symbol, fee, issuer_bps)
            venue.band = view.watch.band(name, symbol)
            venues.append(venue)
            view.params[name] = cost_params(settings, tc.issuer, view.broker, name)
        view.venues = tuple(venues)
        cfg = settings.strategy
        half_life = cfg.vol_half_life_s
        view.variance = RealizedVariance(
            prior_rates(cfg.annual_vol, cfg.intraday_variance_share), cfg.vol_prior_s, half_life
        )
        basis_rate = cfg.basis_vol * cfg.basis_vol / YEAR_S  # calendar time: tokens trade 24/7
        view.premiums = {
            v.name: PremiumStats(basis_rate, cfg.premium_half_life_s, PRIOR_SAMPLES, half_life)
            for v in venues
        }
        views[symbol] = view
    return views


PRIOR_SAMPLES = 60.0  # the premium's prior weighs as much as an hour of one-minute samples


def issuer_fee_bps(ic: IssuerConfig | None) -> float:
    """What the issuer takes in bps of notional: its fee and its spread (a mint priced above the
    mid, a redeem below)."""
    return float(ic.fee_bps) + float(ic.spread_bps) if ic is not None else 0.0


def cost_params(settings: Settings, issuer: str, broker: str, venue: str) -> CostParams:
    """The configured cost inputs of trading a token of ``issuer`` on ``venue``."""
    cfg = settings.strategy
    ic, vc, bc = settings.issuers.get(issuer), settings.venues[venue], settings.venues.get(broker)
    gas = 0.0
    if vc.kind == "pool":
        gas = gas_usd(vc.gas_per_swap, vc.base_fee_gwei, vc.priority_fee_gwei, vc.eth_usd)
    return CostParams(
        issuer_fee_flat_usd=float(ic.fee_flat_usd) if ic else 0.0,
        issuer_fee_bps=float(ic.fee_bps) if ic else 0.0,
        issuer_spread_bps=float(ic.spread_bps) if ic else 0.0,
        gas_usd=gas,
        exchange_fee_bps=float(vc.taker_fee_bps) if vc.kind == "exchange" else 0.0,
        commission_per_share_usd=float(bc.commission_per_share_usd) if bc else 0.0,
        sec_fee_bps=float(bc.sec_fee_bps) if bc else 0.0,
        taf_per_share_usd=float(bc.taf_per_share_usd) if bc else 0.0,
        taf_max_usd=float(bc.taf_max_usd) if bc else 0.0,
        funding_rate_apy=cfg.funding_rate_apy,
        risk_premium_sigmas=cfg.risk_premium_sigmas,
        gap_vol_multiple=cfg.gap_vol_multiple,
    )


_LIVE_FEES: dict[tuple[int, Decimal, Decimal], tuple[CostParams, CostParams]] = {}


def live_issuer_fees(market: MarketState, issuer: str, params: CostParams) -> CostParams:
    """The issuer's announced fees (``IssuerState``) override the configured ones once known."""
    state = market.issuers.get(issuer)
    if state is None or not (state.fee_flat_usd or state.fee_bps):
        return params
    # keyed by identity (the configured params live as long as the strategy; hashing all
    # their fields on every costing cost more than the rest of this function)
    key = (id(params), state.fee_flat_usd, state.fee_bps)
    hit = _LIVE_FEES.get(key)
    if hit is None or hit[0] is not params:  # fees change rarely: build each combination once
        if len(_LIVE_FEES) > 256:
            _LIVE_FEES.clear()
        hit = _LIVE_FEES[key] = (
            params,
            replace(
                params,
                issuer_fee_flat_usd=float(state.fee_flat_usd),
                issuer_fee_bps=float(state.fee_bps),
            ),
        )
    return hit[1]


@dataclass(frozen=True, slots=True)
class Plan:
    """A costed and sized candidate."""

    venue: VenueView
    direction: Direction
    path: Path
    choice: SizeChoice[EdgeBreakdown]
    limit: SizeLimit
    premium_bps: float

    @property
    def net_usd(self) -> float:
        edge = self.choice.edge
        return edge.net_usd if edge is not None else -math.inf


class Candidate(NamedTuple):
    """A venue whose top of book passed the cheap check, and in which direction."""

    venue: VenueView
    direction: Direction
    premium_bps: float  # raw top-of-book premium (negative: discount) against fair value
    data_ts_ns: int


class Sizing(NamedTuple):
    """What a candidate's costing starts from: its path, binding size limit and token price."""

    path: Path
    limit: SizeLimit
    token_px: float  # the venue's bid (premium) or ask (discount) before fees
    book: Book | None


def size_limits(
    ctx: StrategyContext,
    settings: Settings,
    st: TokenView,
    cand: Candidate,
    quote: TopOfBook,
    form: HedgeForm | None,
) -> Sizing:
    """The path of one candidate and the smallest of its size limits (no costing)."""
    cfg, market = settings.strategy, ctx.market
    v = cand.venue
    m = st.mult
    fair = quote.mid * m
    premium = cand.direction is Direction.PREMIUM
    books = v.accounts
    if books is None or books.version != ctx.ledger.version:
        books = v.accounts = _venue_accounts(ctx, settings, st, v)
    inventory = books.inventory
    limits = [SizeLimit("max_qty", cfg.max_qty)]
    path = Path.REDEEM
    if premium:
        floor = books.inventory_floor
        path = Path.INVENTORY_FIRST if inventory > 0.0 and inventory > floor else Path.MINT_FIRST
        if path is Path.INVENTORY_FIRST:
            limits.append(SizeLimit("inventory", inventory))
    bid, ask, _ = v.prices(market)
    token_px = bid if premium else ask
    if form is not None:
        displayed = quote.ask_size if premium else quote.bid_size
        limits.append(SizeLimit("hedge size", displayed / m))
        if premium:
            limits.append(SizeLimit("broker cash", books.broker_cash / (quote.ask * m)))
        elif books.broker_shares is not None:  # no short sales: the hedge sells shares held
            limits.append(SizeLimit("shares held", books.broker_shares / m))
    else:
        limits.append(SizeLimit("unhedged budget", cfg.unhedged_risk_budget_usd / fair))
    book = None if v.is_pool else market.books[v.key]
    if book is not None:
        depth = sum(sz for _, sz in book.levels(premium)) - reserved_depth(v, book, cand.direction)
        limits.append(SizeLimit("token depth", depth))
    if premium and books.has_issuer:  # the issuer account pays for the mint when it is priced
        per_token = fair * books.issuer_fee_factor * mint_price_factor(ctx, settings, st)
        limits.append(SizeLimit("issuer cash", books.issuer_cash / per_token))
    if not premium:
        limits.append(SizeLimit("venue cash", books.venue_cash / (token_px * v.buy_factor)))
    order_cap = books.order_cap
    limits.append(SizeLimit("max order notional", order_cap / max(fair, token_px, quote.ask * m)))
    return Sizing(path, binding_limit(limits), token_px, book)


class VenueAccounts(NamedTuple):
    """What sizing reads from the ledger and the configuration for one token venue, as floats;
    valid while the ledger's ``version`` is unchanged."""

    version: int
    inventory: float  # tokens held at the venue
    inventory_floor: float  # inventory-first only above target - band
    broker_cash: float
    broker_shares: float | None  # shares a discount hedge may sell (None: short sales allowed)
    has_issuer: bool
    issuer_cash: float  # the issuer account's cash less the flat fee
    issuer_fee_factor: float  # 1 + issuer bps (fee and spread)
    venue_cash: float
    order_cap: float  # max order notional


def _may_short(settings: Settings, broker: str) -> bool:
    venue = settings.venues.get(broker)
    return venue is None or venue.shorting_enabled


def _venue_accounts(
    ctx: StrategyContext, settings: Settings, st: TokenView, v: VenueView
) -> VenueAccounts:
    ledger = ctx.ledger
    band = settings.strategy.inventory.get(v.name)
    ic = settings.issuers.get(st.issuer)
    return VenueAccounts(
        version=ledger.version,
        inventory=float(ledger.position(v.name, st.symbol)),
        inventory_floor=float(band.target - band.band) if band is not None else 0.0,
        broker_cash=float(ledger.cash(st.broker)),
        broker_shares=None
        if _may_short(settings, st.broker)
        else max(0.0, float(ledger.position(st.broker, st.underlying))),
        has_issuer=ic is not None,
        issuer_cash=float(ledger.cash(ic.cash_account or st.issuer)) - float(ic.fee_flat_usd)
        if ic
        else 0.0,
        issuer_fee_factor=1.0 + issuer_fee_bps(ic) * 1e-4,
        venue_cash=float(ledger.cash(v.name)),
        order_cap=float(settings.risk.max_order_notional_usd),
    )


class Bound(NamedTuple):
    """``edge_bound``'s answer: the bounds, the size they are for and its binding limit."""

    usd: float
    bps: float
    qty: float
    limit: str  # the name of the binding size limit


def edge_bound(
    ctx: StrategyContext,
    settings: Settings,
    st: TokenView,
    cand: Candidate,
    quote: TopOfBook,
    form: HedgeForm | None,
) -> Bound:
    """Upper bounds ``(net USD, net bps)`` of every size ``plan_candidate`` could choose, and the
    binding size limit.

    The cost model is linear in the size but for the price walk (which only worsens the token
    leg's price: a book's levels beyond the best, a pool's impact) and the components that are
    never negative (broker fees, funding, basis and gap risk). Dropping those and
    pricing every token at the best price gives ``net(q) <= q * a - flat - gas``. A candidate
    whose bound misses ``min_edge_usd`` or ``min_edge_bps`` cannot be taken: no costing needed.
    """
    v = cand.venue
    m = st.mult
    mid = quote.mid
    fair = mid * m
    params = live_issuer_fees(ctx.market, st.issuer, st.params[v.name])
    sizing = size_limits(ctx, settings, st, cand, quote, form)
    px = sizing.token_px
    exchange = params.exchange_fee_bps * 1e-4
    if cand.direction is Direction.PREMIUM:
        if v.is_pool:  # exact input: the fee comes off the tokens sold, then at most spot
            px *= v.pool_keep
        hedge = m * (quote.ask if form is not None else mid)
        a = px * (1.0 - exchange) - hedge
    else:
        if v.is_pool:  # exact output: at least spot for what reaches the pool, plus the fee
            px /= v.pool_keep
        hedge = m * (quote.bid if form is not None else mid)
        a = hedge - px * (1.0 + exchange)
    a -= (params.issuer_fee_bps + params.issuer_spread_bps) * 1e-4 * fair
    if form is not None:  # the unwind spread is exactly linear: shares * half spread
        a -= m * (quote.ask - quote.bid) * 0.5
    fixed = params.issuer_fee_flat_usd + params.gas_usd
    qty = sizing.limit.qty
    usd = qty * a - fixed if a > 0.0 else -fixed
    return Bound(usd, a / fair * 1e4, qty, sizing.limit.name)


def plan_candidate(
    ctx: StrategyContext,
    settings: Settings,
    st: TokenView,
    cand: Candidate,
    quote: TopOfBook,
    form: HedgeForm | None,
    hedgeable: Callable[[MarketSession], bool],
) -> Plan | tuple[str, str]:
    """Choose the path, the limits and the exposure of one candidate and size it; returns a
    ``(code, reason)`` skip when it cannot be costed at all (issuer cannot price in range)."""
    cfg, market, now = settings.strategy, ctx.market, ctx.now_ns
    v, direction = cand.venue, cand.direction
    m = st.mult
    mid = quote.mid
    fair = mid * m
    path, limit, _, book = size_limits(ctx, settings, st, cand, quote, form)
    ic = settings.issuers.get(st.issuer)

    exposure = NO_EXPOSURE
    if not cfg.ignore_settlement and ic is not None:
        try:
            exposure = exposure_window(
                now,
                ctx.sessions,
                priced_ns=priced_ns(ctx, settings, st),
                settle_s=ic.settle_s,
                mint_first=path is Path.MINT_FIRST,
                hedged=form is not None,
                hedgeable=hedgeable,
                underlying=st.variance,
                premium=st.premiums.get(v.name),
            )
        except ValueError:
            return "calendar", f"issuer {st.issuer} cannot price within the session calendar"
        # the multiplier gate covers the trade's whole window, not only the next hour
        window_end = now + int((exposure.lock_s + cfg.multiplier_window_s) * NS)
        if st.next_step_ns != NEVER and st.next_step_ns <= window_end:
            ahead = (st.next_step_ns - now) / NS
            return "multiplier", (
                f"multiplier activation in {ahead:.0f} s, inside the trade's "
                f"{exposure.lock_s:.0f} s window"
            )
    params = live_issuer_fees(market, st.issuer, st.params[v.name])
    half_spread = (quote.ask - quote.bid) * 0.5
    pm = _pool_after_ours(market, v) if v.is_pool else None
    skip = reserved_depth(v, book, direction) if book is not None else 0.0
    decay = exposure.decay if path is Path.MINT_FIRST else 1.0
    adverse = max(v.adverse_bps, 0.0) * 1e-4
    if v.fill_rate < 1.0 and params.gas_usd:  # every attempt pays gas; 1 / fill rate of them
        params = replace(params, gas_usd=params.gas_usd / max(v.fill_rate, MIN_FILL_RATE))

    model = EdgeModel(direction, m, mid, half_spread, exposure, params)
    # what every size of the search reads: the book's side once, the broker's side of its quote
    premium = direction is Direction.PREMIUM
    levels = book.levels(premium) if pm is None and book is not None else []
    hedge_px, hedge_size = (quote.ask, quote.ask_size) if premium else (quote.bid, quote.bid_size)
    hedged = form is not None
    adverse_factor = 1.0 - adverse if premium else 1.0 + adverse

    def legs(q: float) -> tuple[float, float, float | None]:
        """(tokens filled, token leg USD, hedge USD or None) of ``q`` tokens."""
        if pm is not None:
            filled, token_usd = token_fill_on_pool(pm, direction, q)
        else:
            assert book is not None
            filled, token_usd = walk_levels(levels, q, skip)  # token_fill_on_book
        if decay < 1.0:  # mint-first sells after settlement: only part of today's premium left
            token_usd = q * fair + (token_usd - q * fair) * decay
        elif adverse:  # what this venue's price does against us before our order executes
            token_usd *= adverse_factor
        if not hedged:
            return filled, token_usd, None
        shares = q * m  # hedge_fill: the broker's side, limited by the displayed size
        return filled, token_usd, (shares if shares < hedge_size else hedge_size) * hedge_px

    def score(q: float) -> NetEdge:
        filled, token_usd, hedge_usd = legs(q)
        if filled < q * (1.0 - 1e-9):  # the venue cannot take the whole size
            return NetEdge(q, -math.inf, -math.inf)
        return model.net(q, token_usd, hedge_usd)

    def evaluate(q: float) -> EdgeBreakdown:
        filled, token_usd, hedge_usd = legs(q)
        edge = model.breakdown(q, token_usd, hedge_usd)
        if filled < q * (1.0 - 1e-9):
            return replace(edge, net_usd=-math.inf, net_bps=-math.inf)
        return edge

    # the search compares net edges only; the size it keeps (or the best one it rejected) gets
    # its full breakdown, computed the same way
    min_qty = float(ic.min_notional_usd) / fair if ic is not None else 0.0
    if pm is None:  # a book: the edge is affine in the size between the kinks of book_kinks
        scored = choose_size_piecewise(
            score,
            limit.qty,
            book_kinks(levels, skip, hedge_size / m if hedged else math.inf, model),
            unit_notional=fair,
            min_edge_bps=cfg.min_edge_bps,
            min_edge_usd=cfg.min_edge_usd,
            min_qty=min_qty,
            quantum=QTY_STEP,
        )
    else:
        scored = choose_size(
            score,
            limit.qty,
            steps=cfg.ladder_steps,
            min_edge_bps=cfg.min_edge_bps,
            min_edge_usd=cfg.min_edge_usd,
            min_qty=min_qty,
            quantum=QTY_STEP,
            tolerance=SIZE_TOLERANCE * limit.qty,
        )
    kept = scored.edge
    choice = SizeChoice(
        scored.qty,
        evaluate(kept.qty) if kept is not None else None,
        scored.eligible,
        scored.evaluations,
    )
    return Plan(v, direction, path, choice, limit, cand.premium_bps)


def book_kinks(
    levels: list[tuple[float, float]], skip: float, hedge_cap: float, model: EdgeModel
) -> list[float]:
    """The sizes (tokens) where the edge against a book changes slope; between them every term
    of ``EdgeModel`` is affine in the size. Where the walk passes from one level to the next
    (after the ``skip`` our own order takes), where the hedge reaches the broker's displayed
    size (``hedge_cap`` tokens), and where the FINRA fee reaches its cap."""
    out: list[float] = []
    depth = -skip
    for _, size in levels:
        depth += size
        if depth > 0.0:
            out.append(depth)
    if hedge_cap < math.inf:
        out.append(hedge_cap)
        if model.taf > 0.0 and model.taf_max < math.inf:
            out.append(model.taf_max / model.taf / model.multiplier)
    return out


def priced_ns(ctx: StrategyContext, settings: Settings, st: TokenView) -> int:
    """When the issuer leg of a request made now is priced, at the configured quantile of the
    issuer's latency distribution (``bot.issuer_latency``: the wait for its window included)."""
    now, quantile = ctx.now_ns, settings.strategy.latency_quantile
    last = st.priced
    if last is not None and last[0] == now and last[1] == quantile:
        return last[2]  # a costing asks twice: the issuer cash limit and the exposure window
    latency = st.latency
    if latency is None:
        ic = settings.issuers[st.issuer]
        latency = st.latency = IssuerLatency(ic, ctx.sessions, ctx.issuer_sessions.get(st.issuer))
    at = latency.execution_ns(quantile, now)
    st.priced = (now, quantile, at)
    return at


def mint_price_factor(ctx: StrategyContext, settings: Settings, st: TokenView) -> float:
    """How far above fair value a mint requested now may be priced, at the latency quantile's
    z-score of the underlying's move until then (1 when the price is fixed now)."""
    cfg = settings.strategy
    if cfg.ignore_settlement or st.issuer not in settings.issuers:
        return 1.0
    now = ctx.now_ns
    try:
        variance = st.variance.variance(ctx.sessions, now, priced_ns(ctx, settings, st))
    except ValueError:
        return 1.0
    return math.exp(_z(cfg.latency_quantile) * math.sqrt(variance))


def _z(q: float) -> float:
    z = _Z.get(q)
    if z is None:
        z = _Z[q] = NormalDist().inv_cdf(min(max(q, 1e-9), 1.0 - 1e-9))
    return z


_Z: dict[float, float] = {}


def reserved_depth(v: VenueView, book: Book, direction: Direction) -> float:
    """Tokens of the book's ``direction`` side our own order still out will take; a reservation
    lapses once the book moves (the sim and the venue then show what is left)."""
    r = v.reserved
    if r is None or r.direction is not direction or r.book_ts_ns != book.top.ts_ns:
        return 0.0
    return r.qty


def _pool_after_ours(market: MarketState, v: VenueView) -> PoolMarket | None:
    """The pool as our swap still out will leave it (it lands a slot after it is sent)."""
    pm = market.pools.get(v.name)
    r = v.reserved
    if pm is None or r is None:
        return pm
    pool = pm.pool.copy()
    sell = r.direction is Direction.PREMIUM
    info = pm.info
    decimals = info.decimals0 if info.token_is_token0 else info.decimals1
    raw = int(Decimal(repr(r.qty)).scaleb(decimals))
    try:
        pool.swap(info.token_is_token0 == sell, raw if sell else -raw)
    except AmmRevert:
        return pm
    return PoolMarket(info, pool, pm.ts_ns)


def rejection(settings: Settings, plan: Plan) -> tuple[str, str]:
    """``(code, reason)`` of a plan with no eligible size."""
    cfg = settings.strategy
    if plan.limit.qty < QTY_STEP:
        return "limit", f"size 0: {plan.limit.name} limit"
    edge = plan.choice.edge
    if edge is None or not math.isfinite(edge.net_usd):
        return "limit", f"no executable size on {plan.venue.name}"
    if edge.net_bps < cfg.min_edge_bps:
        return "edge", f"edge {edge.net_bps:.1f} bps < min {cfg.min_edge_bps:g}"
    if edge.net_usd < cfg.min_edge_usd:
        return "edge", f"edge ${edge.net_usd:.2f} < min ${cfg.min_edge_usd:g}"
    return "limit", f"below the issuer's minimum notional ({plan.limit.name} {plan.limit.qty:g})"
