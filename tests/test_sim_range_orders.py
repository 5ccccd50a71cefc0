"""Range orders on the simulated pool (ADR 0021): one-sided liquidity that fills as swaps move the
price through it and back, whose fills sum exactly to what its withdrawal returns; and the fee
growth underneath, which never lets positions claim more than the pool holds."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.amm.errors import AmmRevert
from bot.amm.ranges import conversion, plan_range, residue
from bot.amm.tick_math import get_sqrt_ratio_at_tick
from bot.amm.v3_pool import V3Pool
from bot.clock import SimClock
from bot.config import VenueConfig
from bot.market import MarketState, PoolInfo, PoolMarket
from bot.model import (
    Fill,
    Order,
    OrderState,
    OrderType,
    OrderUpdate,
    Side,
    VenueFee,
)
from bot.money import from_base_units, to_base_units
from connectors.sim.fees import pool_gas_usd
from connectors.sim.pool import SimPool

MS = 1_000_000
T0 = 1_704_800_000 * 1_000_000_000
TOKEN, USDC = 18, 6
TICK = -223_290  # about 201 USDC per AAPLx with AAPLx as token0


class Answers:
    def __init__(self) -> None:
        self.items: list[object] = []

    def on_order_update(self, update: OrderUpdate) -> None:
        self.items.append(update)

    def on_fill(self, fill: Fill) -> None:
        self.items.append(fill)

    def on_venue_fee(self, fee: VenueFee) -> None:
        self.items.append(fee)


class World:
    """One pool venue (AAPLx/USDC 0.3%, wide liquidity around 200) and its answers."""

    def __init__(self, token_is_token0: bool = True) -> None:
        self.token0 = token_is_token0
        tick = TICK if token_is_token0 else -TICK
        pool = V3Pool(3000, 60, get_sqrt_ratio_at_tick(tick))
        pool.mint(tick - 6000 - 30, tick + 6000 + 30, 10**16)
        dec0, dec1 = (TOKEN, USDC) if token_is_token0 else (USDC, TOKEN)
        info = PoolInfo("uni", "AAPLx", "USDC", token_is_token0, dec0, dec1, 3000, 60)
        self.market = MarketState()
        self.market.pools["uni"] = PoolMarket(info, pool)
        self.clock = SimClock(T0)
        config = VenueConfig.model_validate(
            {"kind": "pool", "entry_latency_ms": 200, "response_latency_ms": 100}
        )
        self.gas = pool_gas_usd(config)
        self.venue = SimPool("uni", config, self.market, self.clock)
        self.answers = Answers()
        self.venue.bind(self.answers)
        self._n = 0

    @property
    def pool(self) -> V3Pool:
        return self.venue.pool

    def settle(self) -> None:
        self.clock.advance_to(self.clock.now + 400 * MS)

    def order(self, side: Side, qty: str, near: str, far: str) -> Order:
        self._n += 1
        order = Order(
            f"r{self._n}", "uni", "AAPLx", side, Decimal(qty), OrderType.RANGE,
            Decimal(near), range_end=Decimal(far),
        )  # fmt: skip
        self.venue.submit_order(order)
        self.settle()
        return order

    def swap(self, side: Side, qty: str) -> None:
        """Someone else's swap through the pool (the venue's own swap path, answers ignored)."""
        self._n += 1
        order = Order(f"s{self._n}", "uni", "AAPLx", side, Decimal(qty), OrderType.MARKET)
        self.venue.submit_order(order)
        self.settle()

    def cancel(self, order: Order) -> None:
        self.venue.cancel_order(order.client_id)
        self.settle()

    def fills(self, client_id: str) -> list[Fill]:
        return [a for a in self.answers.items if isinstance(a, Fill) and a.client_id == client_id]

    def updates(self, client_id: str) -> list[OrderUpdate]:
        items = self.answers.items
        return [a for a in items if isinstance(a, OrderUpdate) and a.client_id == client_id]

    def booked(self, client_id: str) -> tuple[Decimal, Decimal]:
        """Token and quote the fills of a range order moved into our wallet (signed), the
        withdrawal's quote dust included, summed at 100 digits (a fill's price is the quote
        over the tokens cut at 50 digits, so qty x price is the quote to about 1e-45)."""
        token = quote = Decimal(0)
        with localcontext() as ctx:
            ctx.prec = 100
            for f in self.fills(client_id):
                token += f.side * f.qty
                quote -= f.side * f.qty * f.price
            for a in self.answers.items:
                if isinstance(a, VenueFee) and client_id in a.detail:
                    quote -= a.amount_usd
        return token, quote

    def price(self) -> float:
        ratio = self.pool.sqrt_price_x96 / 2**96
        raw = ratio * ratio
        return raw * 10 ** (TOKEN - USDC) if self.token0 else 10 ** (TOKEN - USDC) / raw


def _as_units(raw_token: int, raw_quote: int) -> tuple[Decimal, Decimal]:
    return from_base_units(raw_token, TOKEN), from_base_units(raw_quote, USDC)


@pytest.mark.parametrize("token_is_token0", [True, False])
def test_a_sell_range_fills_as_the_price_rises_through_it_and_back_as_it_falls(
    token_is_token0: bool,
) -> None:
    w = World(token_is_token0)
    start = w.price()
    order = w.order(Side.SELL, "10", "203", "207")
    (accepted,) = w.updates(order.client_id)
    assert accepted.state is OrderState.ACCEPTED and accepted.gas_usd == w.gas
    assert w.fills(order.client_id) == []
    w.swap(Side.BUY, "15")  # lifts the price into the range
    assert 203 < w.price() < 207, (start, w.price())
    up = w.fills(order.client_id)
    assert up and all(f.side is Side.SELL and f.liquidity == "maker" for f in up)
    assert all(Decimal(203) * Decimal("0.99") < f.price < Decimal(207) for f in up)
    sold = sum(f.qty for f in up)
    assert Decimal(0) < sold < Decimal(10)
    w.swap(Side.SELL, "30")  # back below the range: the position buys its tokens back
    down = w.fills(order.client_id)[len(up) :]
    assert down and all(f.side is Side.BUY for f in down)
    claim = w.pool.claim(order.client_id)
    assert claim.fees0 + claim.fees1 > 0  # it earned the pool fee both ways
    w.cancel(order)
    done = w.updates(order.client_id)[-1]
    assert done.state is OrderState.CANCELED and done.gas_usd == w.gas


@pytest.mark.parametrize("token_is_token0", [True, False])
def test_the_fills_of_a_withdrawn_range_order_sum_exactly_to_what_came_back(
    token_is_token0: bool,
) -> None:
    for side, near, far, push in (
        (Side.SELL, "203", "206", Side.BUY),
        (Side.BUY, "199", "196", Side.SELL),
    ):
        w = World(token_is_token0)
        order = w.order(side, "7.5", near, far)
        pool = w.pool
        info = w.market.pools["uni"].info
        plan = plan_range(
            side, to_base_units(Decimal("7.5"), TOKEN), Decimal(near), Decimal(far),
            token_is_token0=token_is_token0, decimals0=info.decimals0,
            decimals1=info.decimals1, tick_spacing=60, current_tick=TICK if token_is_token0
            else -TICK,
        )  # fmt: skip
        w.swap(push, "9")
        w.swap(push.opposite, "4")
        w.swap(push, "12")
        # withdraw and compare what the pool returns with what the fills booked
        liquidity = pool.position_liquidity(order.client_id)
        assert liquidity == plan.liquidity
        probe = pool.copy()
        probe.burn(plan.tick_lower, plan.tick_upper, liquidity, order.client_id)
        back0, back1 = probe.collect(order.client_id)
        back_token, back_quote = (back0, back1) if token_is_token0 else (back1, back0)
        w.cancel(order)
        token, quote = w.booked(order.client_id)
        want_token, want_quote = _as_units(
            back_token - plan.deposit_token, back_quote - plan.deposit_quote
        )
        assert token == want_token  # the token to the wei
        assert abs(quote - want_quote) < Decimal("1e-40")  # USDC to 1e-40 (see booked)
        assert w.pool.position_liquidity(order.client_id) == 0


def test_a_range_holding_the_price_at_arrival_reverts_and_pays_gas() -> None:
    w = World()
    order = w.order(Side.SELL, "5", "195", "210")  # the price, ~200, is inside
    (rejected,) = w.updates(order.client_id)
    assert rejected.state is OrderState.REJECTED and rejected.gas_usd == w.gas
    assert "mint reverted" in rejected.reason and "is not wholly above the pool's price" in (
        rejected.reason
    )
    assert w.venue.reverted_gas_usd == w.gas


@pytest.mark.parametrize(
    ("side", "near", "far", "qty", "message"),
    [
        (Side.SELL, "204", "202", "5", "must lie above the near edge"),
        (Side.BUY, "196", "198", "5", "must lie below the near edge"),
        (Side.SELL, "202", "204", "0", "qty must be positive"),
    ],
)
def test_a_malformed_range_order_is_refused_without_gas(
    side: Side, near: str, far: str, qty: str, message: str
) -> None:
    w = World()
    order = w.order(side, qty, near, far)
    (rejected,) = w.updates(order.client_id)
    assert rejected.state is OrderState.REJECTED and rejected.gas_usd == 0
    assert message in rejected.reason


def test_conversion_and_residue_rules() -> None:
    assert conversion(-5, 1000) is not None and conversion(-5, 1000).side is Side.SELL  # type: ignore[union-attr]
    assert conversion(5, -1000).side is Side.BUY  # type: ignore[union-attr]
    assert conversion(0, 7) is None and conversion(3, 7) is None and conversion(-1, 0) is None
    trade, dust = residue(-1, 0)
    assert trade is not None and (trade.side, trade.token, trade.quote, dust) == (
        Side.SELL,
        1,
        0,
        0,
    )
    assert residue(0, 3) == (None, 3)
    trade, dust = residue(-4, 9)
    assert trade is not None and (trade.token, trade.quote, dust) == (4, 9, 0)


_swaps = st.lists(
    st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 40)), min_size=1, max_size=12
)


@settings(max_examples=40, deadline=None)
@given(
    swaps=_swaps,
    token_is_token0=st.booleans(),
    widths=st.tuples(st.integers(1, 6), st.integers(1, 6)),
)
def test_after_every_swap_the_booked_fills_trail_the_claim_only_by_carried_dust(
    swaps: list[tuple[Side, int]], token_is_token0: bool, widths: tuple[int, int]
) -> None:
    """The ledger's view of each resting range order (its fills) equals the pool's claim, less a
    carried change that is not a trade; and the pool can always pay every claim."""
    w = World(token_is_token0)
    sell = w.order(Side.SELL, "6", "203", str(203 + widths[0]))
    buy = w.order(Side.BUY, "6", "199", str(199 - widths[1]))
    deposits = {}
    for order in (sell, buy):
        claim = w.pool.claim(order.client_id)
        assert claim.principal0 + claim.principal1 > 0
        info = w.market.pools["uni"].info
        plan = plan_range(
            order.side, to_base_units(Decimal(6), TOKEN), order.limit_price,
            order.range_end, token_is_token0=token_is_token0,  # type: ignore[arg-type]
            decimals0=info.decimals0, decimals1=info.decimals1, tick_spacing=60,
            current_tick=TICK if token_is_token0 else -TICK,
        )  # fmt: skip
        deposits[order.client_id] = plan
    for side, size in swaps:
        try:
            w.swap(side, str(Decimal(size) / 4))
        except AmmRevert:
            continue
        for order in (sell, buy):
            plan = deposits[order.client_id]
            claim = w.pool.claim(order.client_id)
            c0, c1 = claim.amount0, claim.amount1
            c_token, c_quote = (c0, c1) if token_is_token0 else (c1, c0)
            b_token, b_quote = w.booked(order.client_id)
            carry_token = c_token - plan.deposit_token - to_base_units(b_token, TOKEN)
            carry_quote = c_quote - plan.deposit_quote - round(b_quote * 10**USDC)
            assert conversion(carry_token, carry_quote) is None, (carry_token, carry_quote)
            assert abs(carry_token) <= 2 and abs(carry_quote) <= 2
    for order in (sell, buy):
        w.cancel(order)
    for order in (sell, buy):
        plan = deposits[order.client_id]
        assert w.updates(order.client_id)[-1].state is OrderState.CANCELED
        assert w.pool.position_liquidity(order.client_id) == 0


_pool_ops = st.lists(
    st.tuples(st.booleans(), st.integers(10**15, 3 * 10**18)), min_size=1, max_size=25
)


@settings(max_examples=60, deadline=None)
@given(ops=_pool_ops, spans=st.lists(st.tuples(st.integers(-40, 40), st.integers(1, 30)),
                                     min_size=1, max_size=4))  # fmt: skip
def test_the_pool_can_always_pay_every_position_its_principal_and_fees(
    ops: list[tuple[bool, int]], spans: list[tuple[int, int]]
) -> None:
    """Every unit of liquidity is owned, so what the positions may claim (principal rounded
    down, fees by fee growth) never exceeds what the pool holds, and the pool keeps at most a
    few wei per swap step beyond it; the fees they earned are what the swaps paid."""
    pool = V3Pool(3000, 60, get_sqrt_ratio_at_tick(TICK))
    pool.track_fees()
    held = [0, 0]
    owners = []
    for i, (offset, width) in enumerate(spans):
        lower = (TICK // 60 + offset) * 60
        a0, a1 = pool.mint(lower, lower + width * 60, 10**15 * (i + 1), f"p{i}")
        held[0] += a0
        held[1] += a1
        owners.append(f"p{i}")
    for zero_for_one, amount in ops:
        try:
            result = pool.swap(zero_for_one, amount)
        except AmmRevert:
            continue
        held[0] += result.amount0
        held[1] += result.amount1
        claims = [pool.claim(o) for o in owners]
        owed0 = sum(c.amount0 for c in claims)
        owed1 = sum(c.amount1 for c in claims)
        assert owed0 <= held[0] and owed1 <= held[1]
        assert held[0] - owed0 <= 4 * len(owners) + 2 * len(ops)
        assert held[1] - owed1 <= 4 * len(owners) + 2 * len(ops)
    # withdrawing everything returns the claims exactly
    for o in owners:
        claim = pool.claim(o)
        lower, upper = pool._positions[o].tick_lower, pool._positions[o].tick_upper
        pool.burn(lower, upper, pool.position_liquidity(o), o)
        assert pool.collect(o) == (claim.amount0, claim.amount1)
