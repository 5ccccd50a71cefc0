"""Cross-venue repair (strategies/cross_venue.py): when one leg of a trade ends short, the pair
trades the difference back, and the tokens its fills bought and sold balance again.

The first tests run the whole kernel (``Node`` with the simulated venues: an exact ``SimPool``
and the ``SimExchange`` walking its book) and make a leg fail the way it fails in a backtest:
the pool moves during the swap's inclusion latency so the sale reverts for slippage, or the
book's size shrinks before the IOC arrives. The hypothesis test drives the strategy over a real
market state and ledger with venue answers drawn at random (partial fills, reverts, refusals,
late fills) and checks after every event that the pair's legs balance, or a leg of the pair
works, or the imbalance is younger than ``repair_deadline_s`` (else it was given up, recorded).
"""

from __future__ import annotations

from decimal import Decimal
from functools import partial
from typing import Any

from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as hs

from bot.clock import SimClock
from bot.config import Settings
from bot.intents import PlaceOrder
from bot.model import Fill, Order, OrderState, Side
from bot.node import Node, calendar_around
from connectors.sim.adapters import sim_adapters
from connectors.sim.pool import SimPool
from strategies.cross_venue import CrossVenueStrategy, PairView
from tests.test_cross_venue import NOW, Context, _order, funded, pool_at

D = Decimal
NS = 1_000_000_000
MS = 1_000_000


def world_settings(**cross: Any) -> Settings:
    return Settings(
        stocks={"AAPL": {"broker": "alpaca"}},
        tokens={"AAPLx": {"underlying": "AAPL", "issuer": "x", "venues": ["kraken", "uni"]}},
        venues={
            "alpaca": {"kind": "broker"},
            "kraken": {
                "kind": "exchange",
                "taker_fee_bps": 26,
                "entry_latency_ms": 30,
                "response_latency_ms": 30,
            },
            "uni": {
                "kind": "pool",
                "gas_per_swap": 150_000,
                "entry_latency_ms": 12_000,
                "response_latency_ms": 100,
            },
        },  # fmt: skip
        issuers={"x": {"model": "delayed_request"}},
        risk={"max_order_notional_usd": 10_000_000, "collar_bps": 5000},
        strategy={
            "name": "cross_venue",
            "cross_venue": {
                "pairs": [{"token": "AAPLx", "venues": ["uni", "kraken"]}],
                "cooldown_s": 0,
                "max_qty": 20,
                **cross,
            },
        },
    )


class World:
    """The kernel with the simulated venues: a pool at ``pool_price`` and kraken's book."""

    def __init__(self, pool_price: float, **cross: Any) -> None:
        self.settings = world_settings(**cross)
        self.clock = SimClock(NOW)
        self.node = Node(
            self.settings,
            self.clock,
            calendar_around(NOW, NOW + 86_400 * NS),
            partial(sim_adapters, seed=1),
        )
        self.engine, self.ledger, self.market = self.node.engine, self.node.ledger, self.node.market
        self.market.pools["uni"] = pool_at(pool_price)
        self.pool = SimPool("uni", self.settings.venues["uni"], self.market, self.clock)
        self.pool.bind(self.engine)
        self.node.venues["uni"] = self.pool
        self.ledger.deposit_cash("kraken", D(100_000))
        self.ledger.deposit_cash("uni", D(1000))
        self.ledger.deposit_position("uni", "AAPLx", D(100), D(230))
        self.ledger.deposit_position("kraken", "AAPLx", D(100), D(230))
        self.engine.on_quote("AAPL", 229.9, 100.0, 230.1, 100.0, NOW)
        self.engine.start()

    def book(self, bid: float, ask: float, size: float = 50.0) -> None:
        self.engine.on_book_top("kraken", "AAPLx", bid, size, ask, size, self.clock.now_ns())

    def other_trader_sells(self, tokens: int) -> None:
        """A swap by someone else: ``tokens`` sold into the pool as exact input."""
        self.pool.in_step = False  # no recording to stay in step with
        self.pool.apply_recorded_swap(tokens * 10**18, 0, 0, 0)

    def advance(self, seconds: float) -> None:
        self.clock.advance_to(self.clock.now_ns() + int(seconds * NS))

    def pair_gap(self) -> Decimal:
        """Tokens bought less sold by every fill of the pair's groups."""
        fills = [f for f in self.engine.fills if f.group_id.startswith("xv-")]
        return sum((f.qty if f.side is Side.BUY else -f.qty for f in fills), D(0))

    def reasons(self) -> list[str]:
        return [d.reason for d in self.engine.decisions]


def test_a_sale_into_the_pool_that_reverts_is_repaired_by_selling_the_tokens_bought() -> None:
    w = World(pool_price=240.0)
    w.book(229.9, 230.0)  # the pool is rich: buy at kraken, sell into the pool
    sent = [o for o in w.engine.executor.orders.values()]
    assert {(o.venue, o.side) for o in sent} == {("kraken", Side.BUY), ("uni", Side.SELL)}
    qty = sent[0].qty
    w.advance(1)  # kraken's IOC filled; the swap waits 12 s for inclusion
    assert w.pair_gap() == qty
    # another trader takes the wick before our swap lands: the sale reverts for slippage
    w.other_trader_sells(200)  # the pool falls to 226.5
    w.advance(12)
    short = next(d for d in w.engine.decisions if "leg on uni filled 0" in d.reason)
    assert "slippage" in short.reason
    repair = next(d for d in w.engine.decisions if d.reason.startswith("repair 1 of 3"))
    assert repair.taken and repair.components["qty"] == float(qty)
    # the pool is now below kraken's bid: the tokens go back at kraken, where it is cheapest
    legs = [o for o in w.engine.executor.orders.values() if o.group_id == sent[0].group_id]
    assert (legs[-1].venue, legs[-1].side, legs[-1].qty) == ("kraken", Side.SELL, qty)
    w.advance(1)
    assert w.pair_gap() == 0
    assert "legs balance again after 1 repair leg(s)" in w.reasons()
    assert w.ledger.position("kraken", "AAPLx") == D(100)  # bought and sold back there
    # the pair is free again: the next wick is traded
    assert _pair(w).group_id == ""


def test_a_partial_ioc_on_the_book_is_repaired_by_buying_the_rest() -> None:
    w = World(pool_price=240.0)
    w.book(229.9, 230.0)
    sent = list(w.engine.executor.orders.values())
    qty = sent[0].qty
    w.book(229.9, 230.0, size=5.0)  # the ask shrinks before the IOC arrives (30 ms)
    w.advance(1)
    buy = next(o for o in sent if o.side is Side.BUY)
    assert buy.state is OrderState.CANCELED and buy.filled_qty == D(5)
    w.book(229.9, 230.0, size=50.0)  # the book refills
    w.advance(12)  # the pool's sale lands in full: sold more than bought, the rest bought back
    assert w.pair_gap() == 0
    repairs = [d for d in w.engine.decisions if d.reason.startswith("repair ")]
    assert len(repairs) >= 1 and repairs[0].components["qty"] == float(qty - 5)
    assert all("buy" in d.reason for d in repairs)


def test_a_repair_beyond_the_loss_limit_waits_then_is_given_up_at_the_deadline() -> None:
    w = World(pool_price=240.0, repair_max_loss_bps=10, repair_deadline_s=60)
    w.book(229.9, 230.0)
    w.advance(1)
    w.other_trader_sells(200)
    w.book(200.0, 200.1)  # kraken's bid falls 13%: selling there now loses far more than 10 bps
    w.advance(12)
    waits = [d for d in w.engine.decisions if "waits" in d.reason]
    assert waits and "worse than the filled leg > 10" in waits[0].reason
    gap = w.pair_gap()
    assert gap > 0
    w.advance(61)
    w.book(200.0, 200.1)  # an event after the deadline
    given_up = [d for d in w.engine.decisions if d.reason.startswith("repair given up")]
    assert given_up and f"{gap.normalize():+f} tokens left to the rebalancer" in given_up[0].reason
    pair = _pair(w)
    assert pair.group_id == "" and pair.abandoned == gap


def _pair(world: World) -> PairView:
    strategy = world.node.strategy
    assert isinstance(strategy, CrossVenueStrategy)
    return strategy._pairs["AAPLx"][0]


# ---- hypothesis: any mix of venue answers ----------------------------------------------------

# one answer per order: the share that fills, how the order ends, whether a fill comes late
answer = hs.tuples(
    hs.sampled_from([0, 1, 3, 5, 10]),  # tenths filled
    hs.sampled_from([OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED]),
    hs.booleans(),  # the fill arrives after the order's end
    hs.integers(0, 400),  # seconds until the answer
)


@examples(max_examples=60, deadline=None)
@given(answers=hs.lists(answer, min_size=1, max_size=12), gaps=hs.lists(hs.integers(1, 90)))
def test_after_every_event_the_legs_balance_or_a_leg_works_or_the_deadline_has_not_passed(
    answers: list[tuple[int, OrderState, bool, int]], gaps: list[int]
) -> None:
    deadline_s = 300
    ctx = funded(Context(pool_price=240.0, bid=229.9, ask=230.0))
    strategy = CrossVenueStrategy(_settings(deadline_s))
    pair = strategy._pairs["AAPLx"][0]
    booked = [D(0)]  # tokens bought less sold by every fill of the pair's legs
    late: list[tuple[Order, Decimal]] = []
    n = [0]

    def place(intents: list[Any] | None) -> None:
        for i in intents or []:
            if isinstance(i, PlaceOrder):
                n[0] += 1
                ctx.orders.append(_order(i, f"c{n[0]}"))

    def fill(order: Order, qty: Decimal) -> None:
        if qty <= 0:
            return
        price = D("230") if order.venue == "kraken" else D("240")
        f = Fill(order.venue, "AAPLx", order.client_id, f"t{n[0]}-{order.client_id}",
                 order.side, qty, price, ctx.now_ns, group_id=order.group_id)  # fmt: skip
        ctx.ledger.apply_fill(f)
        booked[0] += qty if order.side is Side.BUY else -qty
        place(strategy.on_fill(ctx, f))
        check()

    def check() -> None:
        # the strategy's balance follows the fills, and what it gave up is on record
        assert pair.gap + pair.abandoned == booked[0]
        if pair.gap:
            working = [o for o in ctx.orders if o.group_id == pair.group_id]
            young = ctx.now_ns - pair.short_since_ns <= deadline_s * NS
            assert working or (pair.short_since_ns >= 0 and young), "imbalance left unattended"
            assert pair.repairs <= 3
        if pair.abandoned:
            assert any(d.reason.startswith("repair given up") for d in ctx.decisions)

    place(strategy.on_market(ctx, "AAPLx"))
    queue = list(answers)
    waits = iter(gaps)
    for _ in range(60):
        if not ctx.orders:
            if not queue and not late:
                break
            ctx.now_ns += next(waits, 30) * NS  # time passes, the market calls again
            place(strategy.on_market(ctx, "AAPLx"))
            check()
            for order, qty in late:  # a late fill of an order that already ended
                fill(order, qty)
            late.clear()
            continue
        order = ctx.orders[0]
        tenths, end, is_late, after = queue.pop(0) if queue else (10, OrderState.FILLED, False, 1)
        ctx.now_ns += after * NS
        qty = (order.qty * tenths / 10).quantize(D("0.001"))
        if end is OrderState.FILLED:
            qty = order.qty
        if not is_late or end is OrderState.FILLED:
            order.filled_qty = qty
            order.state = end if qty < order.qty else OrderState.FILLED
            ctx.orders.remove(order)
            fill(order, qty)
            if order.state is not OrderState.FILLED:
                place(strategy.on_order(ctx, order))
                check()
        else:  # the order ends first, its fill comes after
            order.state = end
            ctx.orders.remove(order)
            place(strategy.on_order(ctx, order))
            check()
            late.append((order, qty))
    # with every later answer a full fill, the legs balance or the rest was given up on record
    assert pair.gap == 0 or ctx.orders or ctx.now_ns - pair.short_since_ns <= deadline_s * NS


def _settings(deadline_s: int) -> Settings:
    from tests.test_cross_venue import settings

    return settings(repair_deadline_s=deadline_s, max_qty=50)
