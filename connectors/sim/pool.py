"""A simulated Uniswap v3 pool venue: our swaps and the recorded swaps on one exact pool state.

The pool state is ``market.pools[name].pool`` (a :class:`bot.amm.v3_pool.V3Pool`), the same object
the bot reads prices from, so our swaps move the price for everything that follows. An order is a
swap, executed when it reaches the venue (the entry leg stands for the time to inclusion):

* BUY ``qty`` tokens = exact output of the token, paid in the quote token;
* SELL ``qty`` tokens = exact input of the token, for the quote token.

``limit_price`` is the worst acceptable average price in quote units per token, enforced the way
the router's ``amountInMaximum`` / ``amountOutMinimum`` are: in base units, ``floor(limit * qty)``.
A swap beyond it reverts ("slippage: ..."); so does one the pool cannot fill completely, and one
that lands after its ``deadline_ns`` ("Transaction too old", as the router says). A reverted swap
still pays its gas: the rejection carries it (``OrderUpdate.gas_usd``), the ledger charges it,
and ``reverted_gas_usd`` sums it (ADR 0005).

Fill price = quote amount / token amount (exact Decimal of the base-unit integers; a
non-terminating quotient is cut at the money context's 50 digits); ``fee_usd`` is 0 (the pool fee
is inside the price); ``gas_usd`` from ``fees.pool_gas_usd``.

Recorded pool events come in through ``apply_recorded_swap``/``_mint``/``_burn``. A recorded swap
is re-executed as exact input of its positive amount against the current state, so our earlier
impact persists. While no own swap has moved the pool away from the recording (``in_step``), the
re-execution is capped at the recorded post-swap price, which reproduces the recorded state
exactly whatever the original swap's kind: an exact-output swap re-run as plain exact input lands
a few units of sqrtPriceX96 off (9 of the first 90 swaps of the real USDC/WETH 0.05% day do).

A RANGE order (ADR 0021) is a position minted over a one-sided range (``bot.amm.ranges``): the
mint takes the deposit when the order reaches the pool (ACCEPTED, with the mint's gas), or
reverts with its gas when the price is inside the range by then. The pool then tracks fee
growth. After every swap that moves the pool, ours or recorded, each resting range order's claim
(principal if withdrawn now + fees) is compared with what the ledger was last told, and a
change that is a trade is answered as a maker fill (``conversion``): SELL as the price rises
through a SELL range, BUY when it comes back; the fees are in the fill's price. A cancel
withdraws it (burn + collect): the last change is booked (``residue``: token dust as a price-0
fill, quote dust as a ``VenueFee``), then CANCELED with the withdrawal's gas. So the fills of a
withdrawn range order sum exactly to what came back less what went in.

What this module may not do: answer synchronously, or mutate the pool other than by swaps,
mints and burns (no state snapping).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bot.amm.errors import AmmRevert
from bot.amm.ranges import Conversion, RangePlan, conversion, plan_range, residue
from bot.amm.v3_pool import SwapResult, V3Pool
from bot.clock import Clock
from bot.config import VenueConfig
from bot.market import MarketState, PoolMarket
from bot.model import Fill, Order, OrderState, OrderType, OrderUpdate, Side, VenueFee, VenueKind
from bot.money import from_base_units, money_context, to_base_units
from connectors.sim.answers import execution, order_update
from connectors.sim.fees import pool_gas_usd
from connectors.sim.latency import LatencyModel
from connectors.sim.venue import SimOrderVenue

# Exact input large enough that a price-limited swap always reaches its limit.
_UNBOUNDED_INPUT = 2**255 - 1


@dataclass(slots=True)
class _Range:
    """A resting range order: its plan and the claim the ledger was last told (base units)."""

    order: Order
    plan: RangePlan
    token: int
    quote: int


class SimPool(SimOrderVenue):
    """Simulated pool venue over ``market.pools[name]``. The instrument is the token's symbol."""

    kind = VenueKind.POOL

    def __init__(
        self,
        name: str,
        config: VenueConfig,
        market: MarketState,
        clock: Clock,
        *,
        latency: LatencyModel | None = None,
    ) -> None:
        """The pool must already be in ``market.pools[name]``. ``latency`` defaults to the
        config's legs (the entry leg stands for the time to inclusion)."""
        if name not in market.pools:
            raise KeyError(f"pool venue '{name}' has no PoolMarket in MarketState.pools")
        super().__init__(name, config, market, clock, latency)  # swaps never rest: never working
        self.own_swaps = 0
        self.in_step = True  # the pool state equals the recording's (no own impact left)
        self.reverted_gas_usd = Decimal(0)
        self.skipped_liquidity_events = 0
        self._ranges: dict[str, _Range] = {}
        self._positions_minted = 0

    @property
    def pool_market(self) -> PoolMarket:
        return self.market.pools[self.name]

    @property
    def pool(self) -> V3Pool:
        return self.market.pools[self.name].pool

    # ---- OrderVenue ------------------------------------------------------------------------

    def _cancel(self, client_id: str) -> None:
        """Withdraw a range order; a swap never rests, so its cancel is a no-op."""
        r = self._ranges.pop(client_id, None)
        if r is None:
            return
        plan = r.plan
        pool = self.pool
        pool.burn(plan.tick_lower, plan.tick_upper, pool.position_liquidity(client_id), client_id)
        token, quote = self._orient(*pool.collect(client_id))
        trade, dust = residue(token - r.token, quote - r.quote)
        answers: list[Fill | OrderUpdate | VenueFee] = []
        if trade is not None:
            answers.append(self._conversion_fill(r.order, trade))
        if dust:
            _, quote_dec = self._decimals()
            self._seq += 1
            answers.append(
                VenueFee(
                    self.name,
                    f"{self.name}-dust-{self._seq}",
                    -from_base_units(dust, quote_dec),
                    self._clock.now_ns(),
                    f"range order {client_id}: quote rounding at withdrawal",
                )
            )
        answers.append(
            self._update(r.order, OrderState.CANCELED, "canceled", pool_gas_usd(self.config))
        )
        self._link.answer(*answers)

    # ---- range orders (ADR 0021) -----------------------------------------------------------

    def _decimals(self) -> tuple[int, int]:
        """(token decimals, quote decimals)."""
        info = self.pool_market.info
        if info.token_is_token0:
            return info.decimals0, info.decimals1
        return info.decimals1, info.decimals0

    def _orient(self, amount0: int, amount1: int) -> tuple[int, int]:
        """(token, quote) from (token0, token1) amounts."""
        return (amount0, amount1) if self.pool_market.info.token_is_token0 else (amount1, amount0)

    def _place_range(self, order: Order) -> None:
        info = self.pool_market.info
        token_dec, _ = self._decimals()
        raw_qty = to_base_units(order.qty, token_dec) if order.qty > 0 else 0
        if order.limit_price is None or order.range_end is None:
            self._reject(order, "range order needs limit_price and range_end", gas=False)
            return
        pool = self.pool
        try:
            plan = plan_range(
                order.side,
                raw_qty,
                order.limit_price,
                order.range_end,
                token_is_token0=info.token_is_token0,
                decimals0=info.decimals0,
                decimals1=info.decimals1,
                tick_spacing=pool.tick_spacing,
                current_tick=pool.tick,
            )
        except AmmRevert as exc:  # the pool refuses it now: the mint reverts and pays its gas
            self._reject(order, f"mint reverted: {exc}", gas=True)
            return
        except ValueError as exc:  # malformed: refused before any transaction
            self._reject(order, f"range order refused: {exc}", gas=False)
            return
        if pool.position_liquidity(order.client_id):
            self._reject(order, f"range order {order.client_id} already rests", gas=False)
            return
        pool.track_fees()
        token, quote = self._orient(
            *pool.mint(plan.tick_lower, plan.tick_upper, plan.liquidity, order.client_id)
        )
        self._ranges[order.client_id] = _Range(order, plan, token, quote)
        self._positions_minted += 1
        position_id = f"{self.name}-position-{self._positions_minted}"
        gas = pool_gas_usd(self.config)
        self._link.answer(
            order_update(self.name, self._clock, order, OrderState.ACCEPTED, position_id, "", gas)
        )

    def _conversion_fill(self, order: Order, trade: Conversion) -> Fill:
        token_dec, quote_dec = self._decimals()
        qty = from_base_units(trade.token, token_dec)
        with money_context():
            price = from_base_units(trade.quote, quote_dec) / qty
        self._seq += 1
        return execution(
            self.name, self._seq, self._clock, order, qty, price, maker=True, side=trade.side
        )

    def _convert_ranges(self) -> None:
        """Answer the conversions of every resting range order since its last answer."""
        pool = self.pool
        fills = []
        for client_id, r in self._ranges.items():
            claim = pool.claim(client_id)
            token, quote = self._orient(claim.amount0, claim.amount1)
            trade = conversion(token - r.token, quote - r.quote)
            if trade is not None:
                fills.append(self._conversion_fill(r.order, trade))
                r.token, r.quote = token, quote
        if fills:
            self._link.answer(*fills)

    # ---- our swaps -------------------------------------------------------------------------

    def _arrive(self, order: Order) -> None:
        if order.order_type is OrderType.RANGE:
            self._place_range(order)
            return
        if order.deadline_ns and self._clock.now_ns() > order.deadline_ns:
            self._reject(order, "swap reverted: Transaction too old", gas=True)
            return
        info = self.pool_market.info
        token_is_0 = info.token_is_token0
        token_dec = info.decimals0 if token_is_0 else info.decimals1
        quote_dec = info.decimals1 if token_is_0 else info.decimals0
        raw_qty = to_base_units(order.qty, token_dec) if order.qty > 0 else 0
        if raw_qty <= 0:
            self._reject(
                order, f"qty {order.qty} is below one base unit of {info.token}", gas=False
            )
            return
        is_buy = order.side is Side.BUY
        # BUY: pay quote, receive token (token0 out means zero_for_one is False).
        zero_for_one = token_is_0 != is_buy
        try:
            result = self.pool.quote(zero_for_one, -raw_qty if is_buy else raw_qty)
        except AmmRevert as exc:
            self._reject(order, f"swap reverted: {exc}", gas=True)
            return
        token_raw, quote_raw = (
            (result.amount0, result.amount1) if token_is_0 else (result.amount1, result.amount0)
        )
        if abs(token_raw) != raw_qty:
            got = from_base_units(abs(token_raw), token_dec)
            self._reject(
                order, f"insufficient liquidity: pool fills {got} of {order.qty}", gas=True
            )
            return
        quote_amount = from_base_units(abs(quote_raw), quote_dec)
        if order.limit_price is not None:
            with money_context():
                bound_raw = to_base_units(
                    order.limit_price * from_base_units(raw_qty, token_dec), quote_dec
                )
            bound = from_base_units(bound_raw, quote_dec)
            if is_buy and quote_raw > bound_raw:
                reason = f"slippage: would pay {quote_amount} {info.quote}, max {bound}"
                self._reject(order, reason, gas=True)
                return
            if not is_buy and -quote_raw < bound_raw:
                reason = f"slippage: would receive {quote_amount} {info.quote}, min {bound}"
                self._reject(order, reason, gas=True)
                return
        self.pool.swap(zero_for_one, -raw_qty if is_buy else raw_qty)
        if self._ranges:  # our own swap can move the price through our ranges too
            self._convert_ranges()
        self.own_swaps += 1
        self.in_step = False
        qty = from_base_units(raw_qty, token_dec)
        with money_context():
            price = quote_amount / qty
        self._seq += 1
        gas = pool_gas_usd(self.config)
        fill = execution(self.name, self._seq, self._clock, order, qty, price, gas_usd=gas)
        self._link.answer(self._update(order, OrderState.ACCEPTED), fill)

    def _reject(self, order: Order, reason: str, *, gas: bool) -> None:
        spent = Decimal(0)
        if gas:
            spent = pool_gas_usd(self.config)
            self.reverted_gas_usd += spent
            reason = f"{reason} (reverted; gas {spent} USD spent)"
        self._link.answer(self._update(order, OrderState.REJECTED, reason, spent))

    def _update(
        self, order: Order, state: OrderState, reason: str = "", gas: Decimal = Decimal(0)
    ) -> OrderUpdate:
        return order_update(self.name, self._clock, order, state, "", reason, gas)

    # ---- recorded pool events (PoolFeedSink) -----------------------------------------------

    def apply_recorded_swap(
        self, amount0: int, amount1: int, sqrt_price_x96_after: int, tick_after: int
    ) -> None:
        """Re-execute a recorded swap as exact input of its positive amount.

        In step with the recording (no own swap yet, or the state has met the recorded one
        again) the exact input is capped at the recorded post-swap price, which reproduces
        ``sqrt_price_x96_after`` and ``tick_after`` exactly, active liquidity included.
        """
        if amount0 > 0:
            zero_for_one, amount_in = True, amount0
        elif amount1 > 0:
            zero_for_one, amount_in = False, amount1
        else:
            return
        pool = self.pool
        result: SwapResult | None = None
        if self.in_step:
            if sqrt_price_x96_after == pool.sqrt_price_x96:
                return  # dust: the recorded swap did not move the price
            if (sqrt_price_x96_after < pool.sqrt_price_x96) == zero_for_one and (
                pool.move_within_range(sqrt_price_x96_after, tick_after)
            ):
                return  # no initialized tick on the way: the recorded state is the result
            try:
                result = pool.swap(zero_for_one, _UNBOUNDED_INPUT, sqrt_price_x96_after)
            except AmmRevert:  # recorded price on the wrong side: the recording is not ours
                result = None
        if result is None:
            result = pool.swap(zero_for_one, amount_in)
        # Same price and tick with the same positions means the same active liquidity: in step.
        self.in_step = result.sqrt_price_x96 == sqrt_price_x96_after and result.tick == tick_after
        if self._ranges:
            self._convert_ranges()

    def apply_recorded_mint(self, tick_lower: int, tick_upper: int, liquidity: int) -> None:
        """Add recorded liquidity. One the pool state cannot take is counted in
        ``skipped_liquidity_events`` instead of stopping the replay."""
        if liquidity > 0:
            try:
                self.pool.mint(tick_lower, tick_upper, liquidity)
            except AmmRevert:
                self.skipped_liquidity_events += 1

    def apply_recorded_burn(self, tick_lower: int, tick_upper: int, liquidity: int) -> None:
        """Remove recorded liquidity. A burn of a position the state does not hold (minted
        before the recording began) is counted in ``skipped_liquidity_events``."""
        if liquidity > 0:
            try:
                self.pool.burn(tick_lower, tick_upper, liquidity)
            except AmmRevert:
                self.skipped_liquidity_events += 1
