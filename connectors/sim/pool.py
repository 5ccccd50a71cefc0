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

What this module may not do: answer synchronously, or mutate the pool other than by swaps,
mints and burns (no state snapping).
"""

from __future__ import annotations

from decimal import Decimal

from bot.amm.errors import AmmRevert
from bot.amm.v3_pool import SwapResult, V3Pool
from bot.clock import Clock
from bot.config import VenueConfig
from bot.market import MarketState, PoolMarket
from bot.model import Order, OrderState, OrderUpdate, Side, VenueKind
from bot.money import from_base_units, money_context, to_base_units
from connectors.sim.answers import execution, order_update
from connectors.sim.fees import pool_gas_usd
from connectors.sim.latency import LatencyModel
from connectors.sim.venue import SimOrderVenue

# Exact input large enough that a price-limited swap always reaches its limit.
_UNBOUNDED_INPUT = 2**255 - 1


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

    @property
    def pool_market(self) -> PoolMarket:
        return self.market.pools[self.name]

    @property
    def pool(self) -> V3Pool:
        return self.market.pools[self.name].pool

    # ---- OrderVenue ------------------------------------------------------------------------

    def cancel_order(self, client_id: str) -> None:
        """A no-op: a swap executes as soon as it reaches the pool and never rests."""

    # ---- our swaps -------------------------------------------------------------------------

    def _arrive(self, order: Order) -> None:
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
