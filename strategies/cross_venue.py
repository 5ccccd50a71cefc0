"""Cross-venue arbitrage: the same token bought on one venue and sold on another (docs/cross_venue.md).

Token against token, with no issuer leg and no hedge: a pool against an exchange book, two
pools, or two exchanges (``[[strategy.cross_venue.pairs]]``). Inventory is held on both sides,
so both legs go out at once: the strategy sells only tokens it holds at the selling venue and
buys only with cash it holds at the buying venue (and that venue's gas), at their worst prices.
Inventory drifts (tokens pile up where they are cheap, cash where they are rich); the
rebalancer (``bot.rebalancer``, ADR 0011) moves it back by transfers when it leaves its
``[rebalance.*]`` bands. This strategy never asks for a transfer itself.

On every market event of a token, each pair's two directions get a cheap check (best prices
after fees); only a gap wider than ``min_edge_bps`` is sized: the closed-form optimum against
a pool (``strategies.cross_sizing``: the tick walk on v3), the crossing of marginal prices
between two pools, ``choose_size_piecewise`` at the levels' ends between two books; bounded by
inventory, cash, ``max_qty``, the order cap and the books' depth; then the size is priced exactly
on the 0.001 grid around it (``bot.amm`` integer math for a pool, ``walk_levels`` for a book) and
every component recorded in a ``Decision``: both legs, both fees, gas, the net. While no cheap
check can pass, the token holds (``Quiet`` bands): the engine passes over the prices inside them.

A pair has at most one group in flight; it is free again when both legs have ended (a fill or
an order's end: facts, never intents) and the tokens its fills bought and sold balance. When a
leg ends short (a swap reverted, an IOC canceled or filled in part), the pair repairs the
difference: it trades it back on whichever of its venues does so cheapest now, re-priced
exactly, within ``repair_max_loss_bps`` of what the filled leg paid (or fetched), at most
``repair_attempts`` legs and for at most ``repair_deadline_s``; past those the imbalance is the
rebalancer's. The balance follows fills only. Pure and synchronous: reads the context, returns
intents.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from itertools import accumulate
from typing import TYPE_CHECKING, NamedTuple

from bot.amm.errors import AmmRevert
from bot.model import Fill, Order, Side
from strategies.base import Decision, Idle, Quiet, band_room
from strategies.costs import Direction, NetEdge, gas_usd, token_fill_on_pool, walk_levels
from strategies.cross_sizing import (
    Optimum,
    PoolCurve,
    best_on_grid,
    book_tokens_for_cash,
    optimal_size,
    pool_tokens_for_cash,
    pools_size,
    v3_curve,
)
from strategies.legs import QTY_QUANTUM, protected_price, to_qty, token_order, worst_token_price
from strategies.opportunity import QTY_STEP, VenueView, expected_price
from strategies.sizing import choose_size, choose_size_piecewise
from strategies.taken_depth import TakenDepth

if TYPE_CHECKING:
    from bot.config import CrossVenueConfig, Settings
    from bot.intents import Intent
    from bot.market import PoolMarket
    from strategies.base import StrategyContext

NS = 1_000_000_000
NEVER = sys.maxsize
ACTION = "cross_venue"
SEARCH_STEPS = 12  # ladder rungs of the search for a size that clears min_edge_bps
SKIPS = frozenset(("stale", "limit", "edge"))  # decision codes that are skips
HOLD_MIN_ROOM = 1e-6  # a hold whose bands would be narrower than 0.01 bps is not worth it


class Leg(NamedTuple):
    """One side of a direction as the sizing sees it: the venue, whether we buy there, its
    taker fee rate (books), its gas per swap in USD (pools) and its market."""

    venue: VenueView
    buy: bool
    fee: float
    gas: float
    pool: PoolMarket | None
    levels: list[tuple[float, float]]  # a book's side we trade against, best first, gross


@dataclass(slots=True)
class PairView:
    """One configured pair and its state: the group in flight and the last skip."""

    token: str
    a: VenueView
    b: VenueView
    group_id: str = ""  # the group in flight ("" = free)
    last_action_ns: int = -(1 << 62)
    last_code: str = ""
    last_decision: Decision | None = None
    legs_short: int = 0  # groups whose legs did not both fill in full
    seq: int = 0
    directions: tuple[tuple[VenueView, VenueView], ...] = field(default_factory=tuple)
    # the fills of the pair's legs since its tokens last balanced: tokens and USD (fees and
    # gas in), the repair's reference prices; only fills change them
    bought: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    sold: Decimal = Decimal(0)
    proceeds: Decimal = Decimal(0)
    short_since_ns: int = -1  # when no leg worked any more with the tokens apart (-1: none)
    repairs: int = 0  # repair legs sent for the current imbalance
    abandoned: Decimal = Decimal(0)  # imbalance given up to the rebalancer, tokens (+ = long)

    @property
    def gap(self) -> Decimal:
        """Tokens bought less tokens sold by the pair's legs since they last balanced."""
        return self.bought - self.sold

    def book(self, fill: Fill) -> None:
        """A fill of one of the pair's legs."""
        usd = fill.qty * fill.price
        if fill.side is Side.BUY:
            self.bought += fill.qty
            self.cost += usd + fill.fee_usd + fill.gas_usd
        else:
            self.sold += fill.qty
            self.proceeds += usd - fill.fee_usd - fill.gas_usd

    def balanced(self) -> None:
        """The legs balance (or the rest is given up): a new imbalance starts from nothing."""
        self.bought = self.cost = self.sold = self.proceeds = Decimal(0)
        self.short_since_ns, self.repairs = -1, 0


class Priced(NamedTuple):
    """A size priced exactly: both legs' USD, fees, gas and the net."""

    qty: float
    buy_usd: float  # cash the buy leg pays (a pool: fee included)
    sell_usd: float  # cash the sell leg receives (a pool: fee taken)
    buy_fee: float  # book taker fees (a pool's fee is inside its leg)
    sell_fee: float
    gas: float
    net: float

    @property
    def bps(self) -> float:
        """The net in bps of what the sale fetches before its fee."""
        notional = self.sell_usd + self.sell_fee
        return self.net / notional * 1e4 if notional > 0.0 else 0.0


class CrossVenueStrategy(Idle):
    """Token-against-token arbitrage across venues; see the module docstring."""

    name = "cross_venue"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cfg: CrossVenueConfig = settings.strategy.cross_venue
        self._pairs: dict[str, list[PairView]] = {}
        self._groups: dict[str, PairView] = {}
        self._order_cap = float(settings.risk.max_order_notional_usd)
        self._collar = float(settings.risk.collar_bps) * 1e-4
        self._gas: dict[str, float] = {}
        self._fees: dict[str, float] = {}
        self._taken = TakenDepth()  # what our orders took that the books do not show yet
        for pair in self.cfg.pairs:
            views = []
            for name in pair.venues:
                vc = settings.venues[name]
                fee = float(vc.taker_fee_bps) if vc.kind == "exchange" else 0.0
                venue = VenueView(name, vc.kind, pair.token, fee)
                venue.band = self.quiet(pair.token).band(name, pair.token)  # the engine's one
                views.append(venue)
                self._fees[name] = fee * 1e-4
                self._gas[name] = (
                    gas_usd(vc.gas_per_swap, vc.base_fee_gwei, vc.priority_fee_gwei, vc.eth_usd)
                    if vc.kind == "pool"
                    else 0.0
                )
            a, b = views
            self._pairs.setdefault(pair.token, []).append(
                PairView(pair.token, a, b, directions=((a, b), (b, a)))
            )

    # ---- Strategy protocol: the handlers ``Idle`` does not answer for it ----------------------

    def on_market(self, ctx: StrategyContext, token: str) -> list[Intent] | None:
        pairs = self._pairs.get(token)
        if pairs is None:
            return None
        watch = self.quiet(token)
        watch.hold_until_ns = 0  # a hold stands only as long as nothing calls
        watch.events = 0  # events passed over repeat no record: the cheap check keeps none
        out: list[Intent] = []
        busy: set[str] = set()  # venues a group of this call already trades on
        for pair in pairs:
            if pair.a.name in busy or pair.b.name in busy:
                continue
            if pair.group_id:  # in flight, or its legs ended apart and await a repair
                intents = self._settle(ctx, pair) if pair.short_since_ns >= 0 else None
            else:
                intents = self._evaluate(ctx, pair)
            if intents:
                out.extend(intents)
                busy.update((pair.a.name, pair.b.name))
        if not out and watch.read:
            self._hold(ctx, watch, pairs)
        return out or None

    def _hold(self, ctx: StrategyContext, watch: Quiet, pairs: list[PairView]) -> None:
        """Let the engine pass over the token's top-of-book and pool events while no cheap
        check can pass: every direction of every pair failed it (none in flight), and each
        venue's prices stay in a band where none of those comparisons changes its answer.

        A direction fails with ``r = sale / (purchase x threshold) < 1``; the sale's price may
        rise and the purchase's fall by ``band_room(1/r - 1)`` each before it could pass. A
        book's bid bounds its sales (up only), its ask its purchases (down only); a pool's spot
        is both, bounded through its sqrtPriceX96 (a third of the room: the price is its
        square). Lifted by any call and by every fill or order's end."""
        threshold = 1.0 + self.cfg.min_edge_bps * 1e-4
        up: dict[str, float] = {}  # the room of each venue's sale price upward
        down: dict[str, float] = {}  # ... and of its purchase price downward
        views: dict[str, VenueView] = {}
        for pair in pairs:
            if pair.group_id:
                return
            for buy_v, sell_v in pair.directions:
                buy_px = buy_v.prices(ctx.market)[1] * buy_v.buy_factor
                sell_px = sell_v.prices(ctx.market)[0] * sell_v.sell_factor
                ratio = sell_px / (buy_px * threshold)
                if not ratio < 1.0:  # passes, or a price is missing (nan)
                    return
                room = band_room(1.0 / ratio - 1.0)
                up[sell_v.name] = min(up.get(sell_v.name, math.inf), room)
                down[buy_v.name] = min(down.get(buy_v.name, math.inf), room)
                views[sell_v.name], views[buy_v.name] = sell_v, buy_v
        if not min(*up.values(), *down.values()) > HOLD_MIN_ROOM:
            return
        for name, v in views.items():
            rise, fall = up.get(name, math.inf), down.get(name, math.inf)
            if v.is_pool:  # the spot both ways: through the sqrt price
                s0 = float(v.sqrt_seen)
                if v.token0:
                    v.band.set(s0 * (1.0 - fall / 3), s0 * (1.0 + rise / 3), 0.0, 0.0)
                else:
                    v.band.set(s0 * (1.0 - rise / 3), s0 * (1.0 + fall / 3), 0.0, 0.0)
            else:
                bid, ask, _ = v.prices(ctx.market)
                v.band.set(-math.inf, bid * (1.0 + rise), ask * (1.0 - fall), math.inf)
        watch.hold_until_ns = NEVER

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> list[Intent] | None:
        self._lift()
        pair = self._groups.get(fill.group_id)
        if pair is None:
            return None
        pair.book(fill)
        if not pair.group_id:  # a late fill of a group that had ended: repaired under its id
            pair.group_id = fill.group_id
        return self._settle(ctx, pair)

    def on_order(self, ctx: StrategyContext, order: Order) -> list[Intent] | None:
        self._lift()
        pair = self._groups.get(order.group_id)
        if pair is None or pair.group_id != order.group_id:
            return None
        if order.filled_qty < order.qty:
            pair.legs_short += 1
            reason = (
                f"{order.side.name.lower()} leg on {order.venue} filled {order.filled_qty} of "
                f"{order.qty} ({order.state.value}"
                + (f": {order.reason}" if order.reason else "")
                + ")"
            )
            self._record(ctx, pair, "leg_short", reason, None, taken=False, force=True)
        return self._settle(ctx, pair)

    def _lift(self) -> None:
        """A fill or an order's end: every hold is lifted (ADR 0009)."""
        for token in self._pairs:
            self.quiet(token).hold_until_ns = 0

    # ---- deciding ------------------------------------------------------------------------------

    def _settle(self, ctx: StrategyContext, pair: PairView) -> list[Intent] | None:
        """Once none of the group's legs works any more (its fills booked): free the pair if
        the tokens bought and sold balance, else repair the difference."""
        if ctx.open_orders(pair.group_id):
            return None
        gap = pair.gap
        if abs(gap) < QTY_QUANTUM:  # balanced (a rest below the order quantum is dust)
            if gap:
                pair.abandoned += gap
            if pair.repairs:
                self._record(ctx, pair, "repaired", "legs balance again after "
                             f"{pair.repairs} repair leg(s)", None, taken=False, force=True)  # fmt: skip
            pair.balanced()
            pair.group_id = ""
            return None
        if pair.short_since_ns < 0:
            pair.short_since_ns = ctx.now_ns
        return self._repair(ctx, pair, gap)

    def _repair(self, ctx: StrategyContext, pair: PairView, gap: Decimal) -> list[Intent] | None:
        """Trade ``gap`` tokens back (sell them when long, buy them when short) on the pair's
        venue that does it cheapest now, priced exactly, or give up past the attempts or the
        deadline. The repair's worst price keeps it within ``repair_max_loss_bps`` of the
        filled leg's price per token, fees and gas in, and inside the risk collar. After a
        repair leg that ended short the next waits ``cooldown_s`` (the book it met must move)."""
        cfg = self.cfg
        now = ctx.now_ns
        late = now - pair.short_since_ns > cfg.repair_deadline_s * NS
        if pair.repairs >= cfg.repair_attempts or late:
            cause = "the deadline passed" if late else f"{pair.repairs} repair leg(s)"
            reason = f"repair given up after {cause}: {_signed(gap)} tokens left to the rebalancer"
            self._record(ctx, pair, "abandoned", reason, None, taken=False, force=True)
            pair.abandoned += gap
            pair.balanced()
            pair.group_id = ""
            return None
        if pair.repairs and now - pair.last_action_ns < cfg.cooldown_s * NS:
            return None  # a wait is not a decision: it ends on its own
        sell = gap > 0
        side = Side.SELL if sell else Side.BUY
        qty = abs(gap).quantize(QTY_QUANTUM, rounding=ROUND_DOWN)
        # the filled leg's price per token, fees and gas in: what the repair is measured against
        ref = float(pair.cost / pair.bought) if sell else float(pair.proceeds / pair.sold)
        best: tuple[tuple[float, float], Leg, Decimal, tuple[float, ...]] | None = None
        why: list[str] = []
        for v in (pair.a, pair.b):
            if self._stale(ctx, v):
                continue
            leg = self._leg(ctx, pair.token, v, not sell)
            priced = self._repair_price(ctx, pair, leg, qty, ref)
            if isinstance(priced, str):
                why.append(priced)
                continue
            worst, numbers = priced
            # the venue that closes the most of the gap, then the one that does it cheapest
            rank = (numbers[0], numbers[4] if sell else -numbers[4])
            if best is None or rank > best[0]:
                best = (rank, leg, worst, numbers)
        if best is None:
            reason = f"repair of {_signed(gap)} tokens waits: {'; '.join(why) or 'stale books'}"
            self._record(ctx, pair, "repair_wait", reason, None, taken=False)
            return None
        _, leg, worst, numbers = best
        pair.repairs += 1
        pair.last_action_ns = now
        v = leg.venue
        deadline = now + int(cfg.swap_deadline_s * NS)
        q, usd = numbers[0], numbers[1]
        qty = to_qty(q)
        order = token_order(v.name, v.kind, pair.token, side, qty, worst, pair.group_id,
                            _fair(ctx, pair.token, usd / q), deadline)  # fmt: skip
        self._took(ctx, leg, q)
        loss = numbers[6]
        reason = (
            f"repair {pair.repairs} of {cfg.repair_attempts}: {side.name.lower()} {qty} on "
            f"{v.name} (legs {_signed(gap)} tokens apart), {loss:.1f} bps worse than the filled leg"
        )
        keys = ("qty", "usd", "fee", "gas", "per_token", "filled_leg_per_token", "loss_bps")
        components = dict(zip(keys, numbers, strict=True))
        self._record(ctx, pair, "repair", reason, None, taken=True, components=components)
        if pair.last_decision is not None:
            pair.last_decision.group_id = pair.group_id
        return [order]

    def _repair_price(
        self, ctx: StrategyContext, pair: PairView, leg: Leg, qty: Decimal, ref: float
    ) -> tuple[Decimal, tuple[float, ...]] | str:
        """A repair of ``qty`` on ``leg``'s venue priced exactly: its worst price and
        ``(qty, usd, fee, gas, per token, ref, loss bps)``, or why it cannot go there."""
        cfg = self.cfg
        sell = not leg.buy
        name, q = leg.venue.name, float(qty)
        filled, usd = _fill(leg, q)
        if filled < q * (1.0 - 1e-9) and leg.pool is None:  # a book: what its depth shows
            qty = to_qty(math.floor(filled / QTY_STEP + 1e-9) * QTY_STEP)
            q = float(qty)
            filled, usd = _fill(leg, q) if qty > 0 else (0.0, 0.0)
        if not qty > 0 or filled < q * (1.0 - 1e-9):
            return f"{name} cannot take {qty}"
        fee, gas = usd * leg.fee, leg.gas
        per = (usd - fee - gas) / q if sell else (usd + fee + gas) / q
        loss = (ref - per if sell else per - ref) / ref * 1e4
        if loss > cfg.repair_max_loss_bps:
            return f"{name} {loss:.1f} bps worse than the filled leg > {cfg.repair_max_loss_bps:g}"
        # the gross price at the loss limit, and slippage past the exact quote
        limit = cfg.repair_max_loss_bps * 1e-4
        bound = (
            (ref * (1.0 - limit) + gas / q) / (1.0 - leg.fee)
            if sell
            else (ref * (1.0 + limit) - gas / q) / (1.0 + leg.fee)
        )
        side = Side.SELL if sell else Side.BUY
        direction = Direction.PREMIUM if sell else Direction.DISCOUNT
        expected = expected_price(ctx.market, leg.venue, direction, q, usd)
        worst = worst_token_price(
            protected_price(bound, expected, side, cfg.max_slippage_bps), side
        )
        fair = _fair(ctx, pair.token, usd / q)
        if float(worst - Decimal(repr(fair))) * side > fair * self._collar:
            return f"{name}'s price {worst} is outside the risk collar around {fair:.2f}"
        ledger = ctx.ledger
        if sell:
            short = qty > ledger.position(name, pair.token) or float(ledger.cash(name)) < gas
        else:
            need = qty * worst * (1 + Decimal(repr(leg.fee))) + Decimal(repr(gas))
            short = need > ledger.cash(name)
        if short:
            return f"{name} holds too few {'tokens' if sell else 'cash'}"
        return worst, (q, usd, fee, gas, per, ref, loss)

    def _evaluate(self, ctx: StrategyContext, pair: PairView) -> list[Intent] | None:
        """The better direction of ``pair`` after the cheap check, sized and priced; taken
        when its net clears both minimums, else recorded as a skip."""
        now = ctx.now_ns
        threshold = 1.0 + self.cfg.min_edge_bps * 1e-4
        best: tuple[Leg, Leg, Priced, Optimum, str] | None = None
        skip: tuple[str, str, Priced | None] | None = None
        for buy_v, sell_v in pair.directions:
            # the cheap check: the best sale after fees beats the best purchase after fees
            buy_px = buy_v.prices(ctx.market)[1] * buy_v.buy_factor
            sell_px = sell_v.prices(ctx.market)[0] * sell_v.sell_factor
            if not sell_px >= buy_px * threshold:  # also nan: a side missing
                continue
            stale = self._stale(ctx, buy_v, sell_v)
            if stale:
                skip = ("stale", f"stale book: {stale}", None)
                continue
            if now - pair.last_action_ns < self.cfg.cooldown_s * NS:
                return None  # a cooldown is not a decision: it ends on its own
            buy = self._leg(ctx, pair.token, buy_v, True)
            sell = self._leg(ctx, pair.token, sell_v, False)
            limit, bound = self._limit(ctx, pair.token, buy, sell)

            def exact(q: float, buy: Leg = buy, sell: Leg = sell) -> float:
                return self._price(buy, sell, q).net

            found = _optimum(buy, sell, limit, exact)
            if found.qty < QTY_STEP:
                code = "limit" if limit < QTY_STEP else "edge"
                reason = (
                    f"size 0: {bound} limit"
                    if code == "limit"
                    else f"buy {buy_v.name} sell {sell_v.name}: no size pays after fees"
                )
                skip = skip or (code, reason, None)
                continue
            qty, _ = best_on_grid(found.qty, limit, exact, QTY_STEP)
            if qty <= 0.0:
                continue
            priced = self._price(buy, sell, qty)
            if priced.net >= self.cfg.min_edge_usd and priced.bps < self.cfg.min_edge_bps:
                smaller = self._clearing_bps(buy, sell, qty)
                if smaller is not None:  # the most USD among the sizes that clear both
                    priced, found = smaller, found._replace(stop="bps")
            if best is None or priced.net > best[2].net:
                best = (buy, sell, priced, found, bound)
        if best is None:
            if skip is not None:
                self._record(ctx, pair, skip[0], skip[1], skip[2], taken=False)
            return None
        buy, sell, priced, found, bound = best
        bps = priced.bps
        where = f"buy {buy.venue.name} sell {sell.venue.name}"
        if priced.net < self.cfg.min_edge_usd or bps < self.cfg.min_edge_bps:
            reason = (
                f"{where}: edge {bps:.1f} bps ${priced.net:.2f} after fees and gas "
                f"< min {self.cfg.min_edge_bps:g} bps ${self.cfg.min_edge_usd:g}"
            )
            self._record(ctx, pair, "edge", reason, priced, taken=False, found=found)
            return None
        return self._take(ctx, pair, buy, sell, priced, found, bound, bps)

    def _clearing_bps(self, buy: Leg, sell: Leg, optimum: float) -> Priced | None:
        """The profit optimum clears ``min_edge_usd`` but not ``min_edge_bps``: the gas weighs
        less on a larger size, the price impact more, so a smaller size may clear both. The
        ladder and golden-section search of ``strategies.sizing`` over ``(0, optimum]`` finds
        the one earning the most USD; None when none clears both."""

        def edge(q: float) -> NetEdge:
            priced = self._price(buy, sell, q)
            return NetEdge(q, priced.net, priced.bps)

        choice = choose_size(
            edge, optimum, steps=SEARCH_STEPS, min_edge_bps=self.cfg.min_edge_bps,
            min_edge_usd=self.cfg.min_edge_usd, quantum=QTY_STEP,
        )  # fmt: skip
        return self._price(buy, sell, choice.qty) if choice.eligible else None

    def _stale(self, ctx: StrategyContext, *views: VenueView) -> str:
        max_age = self.cfg.max_book_age_s * NS
        lost = ctx.market.disconnected
        for v in views:
            ts = v.prices(ctx.market)[2]
            if (ts >= 0 and ctx.now_ns - ts > max_age) or v.name in lost:
                return v.name
        return ""

    def _leg(self, ctx: StrategyContext, token: str, v: VenueView, buy: bool) -> Leg:
        if v.is_pool:
            return Leg(v, buy, 0.0, self._gas[v.name], ctx.market.pools[v.name], [])
        book = ctx.market.books[v.key]  # less what we took and the book still shows
        levels = self._taken.levels(v.key, not buy, book.levels(not buy))
        return Leg(v, buy, self._fees[v.name], 0.0, None, levels)

    def _took(self, ctx: StrategyContext, leg: Leg, qty: float) -> None:
        """An order of ``qty`` on ``leg``'s book goes out: note the depth it takes."""
        if leg.pool is None:
            book = ctx.market.books[leg.venue.key]
            self._taken.note(leg.venue.key, not leg.buy, book.levels(not leg.buy), qty)

    def _limit(self, ctx: StrategyContext, token: str, buy: Leg, sell: Leg) -> tuple[float, str]:
        """The largest size both accounts allow, and the name of the bound: tokens held where
        they are sold, cash where they are bought (at the worst price the leg accepts, gas
        kept back on a pool), ``max_qty``, the order cap, the book's depth."""
        ledger = ctx.ledger
        slip = 1.0 + self.cfg.max_slippage_bps * 1e-4
        limits = [("max_qty", self.cfg.max_qty)]
        held = float(ledger.position(sell.venue.name, token))
        if sell.pool is not None:  # the sale's gas comes out of the wallet's cash
            held = held if float(ledger.cash(sell.venue.name)) >= sell.gas else 0.0
        limits.append(("inventory", held))
        # a book's depth before the cash: a cash bound that buys the whole book names the depth
        if buy.pool is None:
            limits.append(("depth", sum(s for _, s in buy.levels)))
        if sell.pool is None:
            limits.append(("depth", sum(s for _, s in sell.levels)))
        cash = float(ledger.cash(buy.venue.name)) - buy.gas
        if buy.pool is not None:
            curve = _curve(buy.pool, True)
            limits.append(("cash", pool_tokens_for_cash(curve, max(cash, 0.0) / slip)))
        else:
            asks = [(p * (1.0 + buy.fee), s) for p, s in buy.levels]
            limits.append(("cash", book_tokens_for_cash(asks, max(cash, 0.0) / slip)))
        px = max(buy.venue.prices(ctx.market)[1], sell.venue.prices(ctx.market)[0])
        if px > 0.0:
            limits.append(("max order notional", self._order_cap / (px * slip)))
        name, qty = min(limits, key=lambda x: x[1])
        return max(math.floor(qty / QTY_STEP + 1e-9) * QTY_STEP, 0.0), name

    def _price(self, buy: Leg, sell: Leg, qty: float) -> Priced:
        """Both legs of ``qty`` tokens as they execute: a pool's exact swap, a book's walk."""
        bought, buy_usd = _fill(buy, qty)
        sold, sell_usd = _fill(sell, qty)
        buy_fee = buy_usd * buy.fee
        sell_fee = sell_usd * sell.fee
        gas = buy.gas + sell.gas
        net = sell_usd - sell_fee - buy_usd - buy_fee - gas
        if bought < qty * (1.0 - 1e-9) or sold < qty * (1.0 - 1e-9):
            net = -math.inf  # a venue cannot take the whole size
        return Priced(qty, buy_usd, sell_usd - sell_fee, buy_fee, sell_fee, gas, net)

    # ---- acting and recording --------------------------------------------------------------------

    def _take(
        self, ctx: StrategyContext, pair: PairView, buy: Leg, sell: Leg, priced: Priced,
        found: Optimum, bound: str, bps: float,
    ) -> list[Intent] | None:  # fmt: skip
        qty = to_qty(priced.qty)
        if qty < QTY_QUANTUM:
            return None
        q = priced.qty
        slip = self.cfg.max_slippage_bps
        market = ctx.market
        # each leg's worst price: max_slippage_bps past what it was priced at, and never past
        # the price at which the whole trade breaks even with the other leg as priced
        buy_expected = expected_price(market, buy.venue, Direction.DISCOUNT, q, priced.buy_usd)
        sell_gross = priced.sell_usd + priced.sell_fee
        sell_expected = expected_price(market, sell.venue, Direction.PREMIUM, q, sell_gross)
        buy_even = (priced.sell_usd - priced.gas) / (q * (1.0 + buy.fee))
        sell_even = (priced.buy_usd + priced.buy_fee + priced.gas) / (q * (1.0 - sell.fee))
        buy_worst = worst_token_price(
            protected_price(buy_even, buy_expected, Side.BUY, slip), Side.BUY
        )
        sell_worst = worst_token_price(
            protected_price(sell_even, sell_expected, Side.SELL, slip), Side.SELL
        )
        # the ledger never goes negative: the buy at its worst price, fee and gas within cash
        need = qty * buy_worst * (1 + Decimal(repr(buy.fee))) + Decimal(repr(buy.gas))
        if need > ctx.ledger.cash(buy.venue.name) or qty > ctx.ledger.position(
            sell.venue.name, pair.token
        ):
            reason = f"buy {buy.venue.name} sell {sell.venue.name}: worst prices exceed cash"
            self._record(ctx, pair, "limit", reason, priced, taken=False, found=found)
            return None
        fair = _fair(ctx, pair.token, (buy_expected + sell_expected) * 0.5)
        pair.seq += 1
        group_id = f"xv-{pair.token}-{pair.a.name}-{pair.b.name}-{pair.seq}"
        deadline = ctx.now_ns + int(self.cfg.swap_deadline_s * NS)
        intents: list[Intent] = [
            token_order(buy.venue.name, buy.venue.kind, pair.token, Side.BUY, qty, buy_worst,
                        group_id, fair, deadline),
            token_order(sell.venue.name, sell.venue.kind, pair.token, Side.SELL, qty, sell_worst,
                        group_id, fair, deadline),
        ]  # fmt: skip
        pair.group_id = group_id
        pair.last_action_ns = ctx.now_ns
        self._groups[group_id] = pair
        self._took(ctx, buy, q)
        self._took(ctx, sell, q)
        at = {
            "limit": f"the {bound} limit",
            "depth": "the depth walked",
            "bps": "the largest gain that clears min_edge_bps",
        }.get(found.stop, "the profit optimum")
        reason = (
            f"buy {buy.venue.name} sell {sell.venue.name}: edge {bps:.1f} bps "
            f"${priced.net:.2f}, size at {at} ({found.stop}"
            + (f", {found.ranges} pool range(s))" if found.ranges else ")")
        )
        self._record(ctx, pair, "taken", reason, priced, taken=True, found=found)
        if pair.last_decision is not None:
            pair.last_decision.group_id = group_id
        return intents

    def _record(
        self, ctx: StrategyContext, pair: PairView, code: str, reason: str, priced: Priced | None,
        *, taken: bool, found: Optimum | None = None, force: bool = False,
        components: dict[str, float] | None = None,
    ) -> None:  # fmt: skip
        """Record a decision; a skip with the same code as the pair's last one only counts."""
        last = pair.last_decision
        if not (taken or force) and last is not None and not last.taken and pair.last_code == code:
            last.repeats += 1
            return
        components = dict(components or {})
        net = bps = 0.0
        qty = components.get("qty", 0.0)
        if priced is not None:
            qty, net, bps = priced.qty, priced.net, priced.bps
            components = {
                "qty": qty,
                "buy_usd": priced.buy_usd,
                "sell_usd": priced.sell_usd,
                "gross": priced.sell_usd + priced.sell_fee - priced.buy_usd,
                "buy_fee": priced.buy_fee,
                "sell_fee": priced.sell_fee,
                "gas": priced.gas,
                "net": net,
                "net_bps": bps,
            }
            if found is not None:
                components["optimum_qty"] = found.qty
                components["pool_ranges"] = float(found.ranges)
        decision = Decision(
            ts_ns=ctx.now_ns,
            token=pair.token,
            action="skip" if code in SKIPS else ACTION,
            reason=reason,
            premium_bps=0.0,
            qty=qty,
            edge_usd=net,
            edge_bps=bps,
            components=components,
            taken=taken,
        )
        ctx.record(decision)
        pair.last_decision, pair.last_code = decision, code


def _curve(pm: PoolMarket, buy: bool) -> PoolCurve:
    info = pm.info
    return v3_curve(pm.pool, info.token_is_token0, info.decimals0, info.decimals1, buy=buy)


def _optimum(buy: Leg, sell: Leg, limit: float, net: Callable[[float], float]) -> Optimum:
    """The continuous optimum of the direction: closed form against a pool, the crossing of
    marginal prices between pools. Between two books the profit is affine between the levels'
    ends: ``choose_size_piecewise`` finds its best grid size from ``net`` at those kinks."""
    if buy.pool is not None and sell.pool is not None:
        return pools_size(_curve(buy.pool, True), _curve(sell.pool, False), limit)
    if buy.pool is not None:  # sell into the book's bids, net of its fee
        bids = [(p * (1.0 - sell.fee), s) for p, s in sell.levels]
        return optimal_size(_curve(buy.pool, True), bids, limit)
    asks = [(p * (1.0 + buy.fee), s) for p, s in buy.levels]
    if sell.pool is not None:  # buy from the book's asks, fee included
        return optimal_size(_curve(sell.pool, False), asks, limit)
    kinks = [*accumulate(s for _, s in buy.levels), *accumulate(s for _, s in sell.levels)]
    # every size eligible: the most USD; the minimums are checked on the size kept
    choice = choose_size_piecewise(
        lambda q: NetEdge(q, net(q), 0.0), limit, kinks, unit_notional=0.0,
        min_edge_bps=-math.inf, min_edge_usd=-math.inf, quantum=QTY_STEP,
    )  # fmt: skip
    qty = choice.qty if choice.edge is not None and choice.edge.net_usd > 0.0 else 0.0
    stop = "limit" if qty >= limit - QTY_STEP / 2 else ("level" if qty > 0.0 else "price")
    return Optimum(qty, stop, 0)


def _fill(leg: Leg, qty: float) -> tuple[float, float]:
    """``(tokens, USD)`` of one leg of ``qty`` tokens: exact on a pool, walked on a book."""
    if leg.pool is not None:
        try:
            return token_fill_on_pool(
                leg.pool, Direction.DISCOUNT if leg.buy else Direction.PREMIUM, qty
            )
        except AmmRevert:
            return 0.0, 0.0
    return walk_levels(leg.levels, qty)


def _signed(qty: Decimal) -> str:
    """A token quantity with its sign, without trailing zeros: ``+18.1``, ``-22.8``."""
    return f"{qty.normalize():+f}"


def _fair(ctx: StrategyContext, token: str, fallback: float) -> float:
    """The token's fair value for the risk collar: the underlying's mid times the multiplier
    when the broker's quote is there, else the midpoint of the two legs' prices."""
    stock = ctx.tokens.get(token)
    if stock is not None:
        quote = ctx.market.quotes.get(stock.underlying)
        if quote is not None and quote.valid:
            return quote.mid * float(stock.multiplier_at(ctx.now_ns))
    return fallback
