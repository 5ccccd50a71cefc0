"""MintRedeemStrategy on real market objects, a real session calendar and real issuer rules.

The context below is a StrategyContext over those real objects with a dict ledger: it is the
context the strategy reads, not a stand-in for any logic. Unless a test says otherwise the costs
are exact: no broker or issuer fees beyond the ones named, and no risk terms (``exact``), so the
intents' prices follow from the numbers by hand.

Setup: AAPL quoted 199.75 / 200.25 (mid 200.00), AAPLx worth 1.02 shares (fair 204.00), the token
on an exchange ``kraken`` and a v3 pool ``uni``; the broker ``alpaca``; the issuer ``backed``
prices in regular hours, 60 s after it can.
"""

from __future__ import annotations

import calendar as pycal
from decimal import Decimal
from typing import Any

import pytest

from bot.amm.price import sqrt_price_x96_from_price
from bot.amm.tick_math import get_tick_at_sqrt_ratio
from bot.amm.v3_pool import V3Pool
from bot.config import Settings
from bot.intents import CancelOrder, PlaceOrder, RequestMintRedeem
from bot.issuer_latency import IssuerLatency
from bot.market import IssuerState, MarketState, PoolInfo, PoolMarket
from bot.model import (
    Fill,
    LegRole,
    MintRedeemRequest,
    MultiplierStep,
    Order,
    OrderState,
    OrderType,
    RequestKind,
    RequestState,
    Side,
    TimeInForce,
    TokenizedStock,
)
from bot.sessions import IssuerSessionRule, SessionCalendar
from strategies.base import Decision
from strategies.costs import Direction, token_fill_on_pool
from strategies.legs import slices
from strategies.mint_redeem import MintRedeemStrategy
from strategies.volatility import prior_rates, segments

NS = 1_000_000_000
MS = 1_000_000
CAL = SessionCalendar("2025-06-02", "2025-06-20")


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> int:
    return pycal.timegm((y, mo, d, h, mi, s)) * NS


TUESDAY_11 = utc(2025, 6, 3, 15)  # 11:00 EDT, regular session
TUESDAY_17 = utc(2025, 6, 3, 21)  # 17:00 EDT, after-hours
FRIDAY_16 = utc(2025, 6, 6, 20)  # the close before the weekend
SATURDAY_NOON = utc(2025, 6, 7, 16)

EXACT: dict[str, Any] = {
    "funding_rate_apy": 0.0,
    "risk_premium_sigmas": 0.0,
    "gap_vol_multiple": 0.0,
    "cooldown_s": 0.0,
    "premium_half_life_s": 1e15,  # no decay of the premium before a mint-first sale
}


def settings(**strategy: Any) -> Settings:
    return Settings(
        stocks={"AAPL": {"broker": "alpaca"}},
        tokens={"AAPLx": {"underlying": "AAPL", "issuer": "backed", "venues": ["kraken"]}},
        venues={
            "alpaca": {"kind": "broker", "sec_fee_bps": 0, "taf_per_share_usd": 0},
            "kraken": {"kind": "exchange", "taker_fee_bps": 0},
            "uni": {"kind": "pool", "gas_per_swap": 0},
        },
        issuers={
            "backed": {
                "model": "delayed_request",
                "fee_bps": 10,
                "execute_sessions": "regular",
                "latency_s": 60,
                "settle_s": 600,
            }
        },
        strategy=strategy,
    )


class Ledger:
    """Positions and cash in dicts: what the strategy may read of a ledger."""

    def __init__(self) -> None:
        self.positions: dict[tuple[str, str], Decimal] = {}
        self.cash_by_venue: dict[str, Decimal] = {
            "alpaca": Decimal(1_000_000),
            "kraken": Decimal(1_000_000),
            "backed": Decimal(1_000_000),
        }
        self.deposits: dict[str, Decimal] = {}

    @property
    def version(self) -> int:
        """Tests write the dicts directly: the version is a fingerprint of their contents."""
        return hash((frozenset(self.positions.items()), frozenset(self.cash_by_venue.items())))

    def position(self, venue: str, instrument: str) -> Decimal:
        return self.positions.get((venue, instrument), Decimal(0))

    def cash(self, venue: str) -> Decimal:
        return self.cash_by_venue.get(venue, Decimal(0))

    def in_flight(self, token: str) -> list[MintRedeemRequest]:
        return []

    def deposited(self, instrument: str) -> Decimal:
        return self.deposits.get(instrument, Decimal(0))


class Context:
    """A StrategyContext over a real MarketState, SessionCalendar and IssuerSessionRule."""

    def __init__(self, s: Settings, now_ns: int) -> None:
        self.now_ns = now_ns
        self.market = MarketState()
        self.ledger = Ledger()
        self.sessions = CAL
        self.issuer_sessions = {
            name: IssuerSessionRule(CAL, accept=i.accept_sessions, execute=i.execute_sessions)
            for name, i in s.issuers.items()
        }
        self.tokens = {
            "AAPLx": TokenizedStock(
                "AAPLx", "AAPL", "backed", multipliers=[MultiplierStep(0, Decimal("1.02"))]
            )
        }
        self.decisions: list[Decision] = []
        self.orders: list[Order] = []

    def open_orders(self, group_id: str | None = None) -> list[Order]:
        return [o for o in self.orders if group_id is None or o.group_id == group_id]

    def record(self, decision: Decision) -> None:
        self.decisions.append(decision)

    def quote_stock(
        self, bid: float, ask: float, size: float = 1000.0, ts: int | None = None
    ) -> None:
        q = self.market.quote("AAPL")
        q.bid, q.bid_size, q.ask, q.ask_size = bid, size, ask, size
        q.ts_ns = self.now_ns if ts is None else ts

    def quote_token(self, bid: float, ask: float, size: float = 50.0) -> None:
        self.market.book("kraken", "AAPLx").set_top(bid, size, ask, size, self.now_ns)


def setup(
    now_ns: int, token_bid: float, token_ask: float, **strategy: Any
) -> tuple[MintRedeemStrategy, Context]:
    s = settings(**{**EXACT, **strategy})
    ctx = Context(s, now_ns)
    ctx.quote_stock(199.75, 200.25)
    ctx.quote_token(token_bid, token_ask)
    strat = MintRedeemStrategy(s)
    strat.on_start(ctx)
    return strat, ctx


FAIR = 200.0 * 1.02


def hedge(side: Side, **kw: Any) -> PlaceOrder:
    fields: dict[str, Any] = {
        "venue": "alpaca", "instrument": "AAPL", "side": side, "qty": Decimal("51"),
        "order_type": OrderType.MARKET, "role": LegRole.HEDGE, "group_id": "AAPLx-1",
        "reference_price": 200.0,
    }  # fmt: skip
    fields.update(kw)
    return PlaceOrder(**fields)


def token_fill(side: Side, qty: str, price: str) -> Fill:
    return Fill("kraken", "AAPLx", "k1", "t-k1", side, Decimal(qty), Decimal(price), TUESDAY_11,
                role=LegRole.TOKEN, group_id="AAPLx-1")  # fmt: skip


def test_premium_with_inventory_sells_hedges_and_mints_with_the_multiplier() -> None:
    strat, ctx = setup(TUESDAY_11, 208.0, 209.0)
    ctx.ledger.positions[("kraken", "AAPLx")] = Decimal(100)
    intents = strat.on_market(ctx, "AAPLx")
    # 50 tokens (the displayed bid) for 10400; hedge 51 shares at 200.25; unwind half-spread
    # 51 * 0.25; issuer fee 10 bps of 50 * 204: net = 10400 - 10212.75 - 12.75 - 10.2 = 164.3,
    # so break-even is (10400 - 164.3) / 50 = 204.714; the sale's worst price is the bid it
    # was costed at less max_slippage_bps (30): 208 * 0.997 = 207.376, above break-even
    assert intents == [
        PlaceOrder(
            "kraken", "AAPLx", Side.SELL, Decimal("50"), OrderType.LIMIT, Decimal("207.3760"),
            TimeInForce.IOC, False, LegRole.TOKEN, "AAPLx-1", FAIR,
        ),
        hedge(Side.BUY),
    ]  # fmt: skip
    # the mint restores what the sale actually took from inventory
    assert strat.on_fill(ctx, token_fill(Side.SELL, "50", "208")) == [
        RequestMintRedeem(
            "backed", "AAPLx", RequestKind.MINT, Decimal("50"), "AAPLx-1", FAIR, venue="kraken"
        )
    ]
    (decision,) = ctx.decisions
    assert decision.taken and decision.action == "mint_and_sell"
    assert decision.edge_usd == pytest.approx(164.3, abs=1e-9)
    assert decision.components["issuer_fee"] == pytest.approx(10.2, abs=1e-9)
    assert decision.premium_bps == pytest.approx((208.0 / FAIR - 1) * 1e4)
    assert decision.reason == (
        "inventory-first on kraken, hedged: edge 161.1 bps $164.30, size at the token depth limit"
    )


def test_priced_mint_unwinds_the_filled_hedge() -> None:
    strat, ctx = setup(TUESDAY_11, 208.0, 209.0)
    ctx.ledger.positions[("kraken", "AAPLx")] = Decimal(100)
    strat.on_market(ctx, "AAPLx")
    fill = Fill("alpaca", "AAPL", "c1", "t1", Side.BUY, Decimal(51), Decimal("200.25"), TUESDAY_11,
                role=LegRole.HEDGE, group_id="AAPLx-1")  # fmt: skip
    assert strat.on_fill(ctx, fill) is None
    req = MintRedeemRequest("r1", "backed", "AAPLx", RequestKind.MINT, Decimal(50), TUESDAY_11,
                            "AAPLx-1", RequestState.PRICED, Decimal("204.1"))  # fmt: skip
    assert strat.on_request(ctx, req) == [hedge(Side.SELL, role=LegRole.UNWIND)]
    assert strat.groups.awaiting("AAPLx") == 0


def test_discount_buys_tokens_sells_the_hedge_and_redeems_once_bought() -> None:
    strat, ctx = setup(TUESDAY_11, 199.0, 200.0)
    intents = strat.on_market(ctx, "AAPLx")
    # 50 tokens at 200 = 10000; hedge proceeds 51 * 199.75 = 10187.25; net = 187.25 - 12.75
    # - 10.2 = 164.3, so break-even is (10000 + 164.3) / 50 = 203.286; the buy's worst price
    # is the ask it was costed at plus max_slippage_bps (30): 200 * 1.003 = 200.6
    assert intents == [
        PlaceOrder(
            "kraken", "AAPLx", Side.BUY, Decimal("50"), OrderType.LIMIT, Decimal("200.6000"),
            TimeInForce.IOC, False, LegRole.TOKEN, "AAPLx-1", FAIR,
        ),
        hedge(Side.SELL),
    ]  # fmt: skip
    assert ctx.decisions[0].action == "buy_and_redeem"
    bought = Fill("kraken", "AAPLx", "c1", "t1", Side.BUY, Decimal(50), Decimal(200), TUESDAY_11,
                  role=LegRole.TOKEN, group_id="AAPLx-1")  # fmt: skip
    assert strat.on_fill(ctx, bought) == [
        RequestMintRedeem(
            "backed", "AAPLx", RequestKind.REDEEM, Decimal("50"), "AAPLx-1", FAIR, venue="kraken"
        )
    ]


def test_token_leg_that_does_not_trade_unwinds_the_hedge_mints_nothing_and_backs_off() -> None:
    strat, ctx = setup(TUESDAY_11, 208.0, 209.0)
    ctx.ledger.positions[("kraken", "AAPLx")] = Decimal(100)
    strat.on_market(ctx, "AAPLx")
    strat.on_fill(ctx, hedge_fill(Side.BUY))
    unfilled = Order("k1", "kraken", "AAPLx", Side.SELL, Decimal(50), OrderType.LIMIT,
                     Decimal("204.714"), TimeInForce.IOC, role=LegRole.TOKEN, group_id="AAPLx-1",
                     state=OrderState.CANCELED, reason="unfilled")  # fmt: skip
    assert strat.on_order(ctx, unfilled) == [hedge(Side.SELL, role=LegRole.UNWIND)]
    assert strat.groups.awaiting("AAPLx") == 0
    assert ctx.decisions[-1].reason == "AAPLx-1: token leg canceled: unfilled, traded 0.000"
    ctx.now_ns += 2 * NS
    ctx.quote_stock(199.75, 200.25)
    ctx.quote_token(208.0, 209.0)
    assert strat.on_market(ctx, "AAPLx") is None
    assert ctx.decisions[-1].reason == "backing off 3 s after 1 short token leg(s)"
    ctx.now_ns += 3 * NS
    ctx.quote_stock(199.75, 200.25)
    ctx.quote_token(208.0, 209.0)
    intents = strat.on_market(ctx, "AAPLx")
    assert intents is not None and intents[0].group_id == "AAPLx-2"


def test_premium_without_inventory_mints_first_hedges_when_priced_sells_on_arrival() -> None:
    strat, ctx = setup(TUESDAY_11, 208.0, 209.0)
    assert strat.on_market(ctx, "AAPLx") == [
        RequestMintRedeem(
            "backed", "AAPLx", RequestKind.MINT, Decimal("50"), "AAPLx-1", FAIR, venue="kraken"
        )
    ]
    req = MintRedeemRequest("r1", "backed", "AAPLx", RequestKind.MINT, Decimal(50), TUESDAY_11,
                            "AAPLx-1", RequestState.PRICED, Decimal("204.1"))  # fmt: skip
    assert strat.on_request(ctx, req) == [hedge(Side.SELL)]
    strat.on_fill(ctx, Fill("alpaca", "AAPL", "c2", "t2", Side.SELL, Decimal(51), Decimal("199.75"),
                            TUESDAY_11, role=LegRole.HEDGE, group_id="AAPLx-1"))  # fmt: skip
    req.state = RequestState.SETTLED
    # the tokens are here: sell them at fair value; the hedge stays on until they are sold
    assert strat.on_request(ctx, req) == [
        PlaceOrder(
            "kraken", "AAPLx", Side.SELL, Decimal("50"), OrderType.LIMIT, Decimal("204.0000"),
            TimeInForce.IOC, False, LegRole.TOKEN, "AAPLx-1", FAIR,
        ),
    ]  # fmt: skip
    # the sale fills: now, and only now, the hedge is bought back
    assert strat.on_fill(ctx, token_fill(Side.SELL, "50", "204")) == [
        hedge(Side.BUY, role=LegRole.UNWIND)
    ]
    assert strat.groups.awaiting("AAPLx") == 0


def test_premium_below_min_edge_is_skipped_with_its_reason_and_collapsed() -> None:
    strat, ctx = setup(TUESDAY_11, 205.0, 205.5)  # +49 bps raw
    # at every size: net = 50 * 205 - 51 * 200.25 - 12.75 - 10.2 = 14.3 on 10200 = 14.0 bps
    assert strat.on_market(ctx, "AAPLx") is None
    assert strat.on_market(ctx, "AAPLx") is None
    (skip,) = ctx.decisions
    assert skip.action == "skip" and not skip.taken
    assert skip.reason == "edge 14.0 bps < min 15"
    assert skip.repeats == 2
    assert skip.edge_usd == pytest.approx(14.3, abs=1e-9)
    assert skip.components["gross"] == pytest.approx(50 * 205.0 - 51 * 200.25, abs=1e-9)


def test_raw_premium_under_min_edge_returns_before_any_decision() -> None:
    strat, ctx = setup(TUESDAY_11, 204.2, 204.4)  # +9.8 bps
    assert strat.on_market(ctx, "AAPLx") is None
    assert ctx.decisions == []


def test_weekend_has_no_hedge_so_no_arbitrage() -> None:
    strat, ctx = setup(SATURDAY_NOON, 210.0, 211.0, **{"funding_rate_apy": 0.05})
    ctx.quote_stock(199.75, 200.25, ts=FRIDAY_16)
    ctx.ledger.positions[("kraken", "AAPLx")] = Decimal(100)
    assert strat.on_market(ctx, "AAPLx") is None
    assert [(d.action, d.reason) for d in ctx.decisions] == [("skip", "no hedge: weekend")]


def test_naive_variant_trades_the_weekend_the_settlement_aware_one_skips() -> None:
    strat, ctx = setup(SATURDAY_NOON, 210.0, 211.0, ignore_settlement=True)
    ctx.quote_stock(199.75, 200.25, ts=FRIDAY_16)
    ctx.ledger.positions[("kraken", "AAPLx")] = Decimal(100)
    intents = strat.on_market(ctx, "AAPLx")
    assert intents is not None
    assert [(i.role, i.side) for i in intents if isinstance(i, PlaceOrder)] == [
        (LegRole.TOKEN, Side.SELL),
        (LegRole.HEDGE, Side.BUY),
    ]
    assert intents[1] == hedge(Side.BUY)  # a market DAY order into a closed market
    assert ctx.decisions[0].components["gap_risk"] == 0.0


def test_weekend_with_an_unhedged_budget_prices_the_gap_in_trading_time_and_declines() -> None:
    strat, ctx = setup(
        SATURDAY_NOON, 207.5, 208.5, unhedged_risk_budget_usd=100_000.0, risk_premium_sigmas=1.0,
        gap_vol_multiple=2.0,
    )  # fmt: skip
    ctx.quote_stock(199.75, 200.25, ts=FRIDAY_16)
    ctx.ledger.positions[("kraken", "AAPLx")] = Decimal(100)
    assert strat.on_market(ctx, "AAPLx") is None
    (skip,) = ctx.decisions
    assert skip.reason.startswith("edge ")
    # unhedged from now until the issuer prices (Monday's open plus the latency at its 0.9
    # quantile): every second is gap, at the prior variance of its kind of time (a weekend
    # second, a weeknight's, the pre-market's, the regular session's)
    latency = IssuerLatency(strat.settings.issuers["backed"], CAL, ctx.issuer_sessions["backed"])
    priced = latency.execution_ns(0.9, SATURDAY_NOON)
    assert priced > utc(2025, 6, 9, 13, 30)  # Monday 09:30 EDT
    rates = prior_rates(0.30, 0.75)
    variance = sum(rates[kind] * t for kind, t in segments(CAL, SATURDAY_NOON, priced))
    assert skip.components["gap_s"] == (priced - SATURDAY_NOON) / NS
    assert skip.components["gap_risk"] == pytest.approx(
        2 * variance**0.5 * skip.components["notional"], rel=1e-9
    )


def test_after_hours_hedge_is_a_day_limit_with_extended_hours_off_the_mark() -> None:
    strat, ctx = setup(TUESDAY_17, 208.0, 209.0)
    ctx.ledger.positions[("kraken", "AAPLx")] = Decimal(100)
    intents = strat.on_market(ctx, "AAPLx")
    assert intents is not None
    assert intents[1] == hedge(
        Side.BUY, order_type=OrderType.LIMIT, limit_price=Decimal("200.20"), extended_hours=True
    )  # mark 200.00 + 10 bps


def test_issuer_paused_stands_aside() -> None:
    strat, ctx = setup(TUESDAY_11, 208.0, 209.0)
    ctx.market.issuers["backed"] = IssuerState("backed", paused=True)
    assert strat.on_market(ctx, "AAPLx") is None
    assert ctx.decisions[0].reason == "issuer backed paused"


def test_multiplier_activation_window_stands_aside() -> None:
    strat, ctx = setup(TUESDAY_11, 208.0, 209.0)
    ctx.tokens["AAPLx"].schedule_multiplier(TUESDAY_11 + 1800 * NS, Decimal("1.03"))
    assert strat.on_market(ctx, "AAPLx") is None
    assert ctx.decisions[0].reason == "multiplier activation in 1800 s"


def test_the_multiplier_gate_covers_the_trade_s_whole_window() -> None:
    strat, ctx = setup(TUESDAY_11, 208.0, 209.0)
    ctx.ledger.positions[("kraken", "AAPLx")] = Decimal(100)
    # 65 minutes ahead: past the one-hour window, but inside the trade's own window (priced
    # after the latency's 0.9 quantile and delivered 600 s later) plus that hour
    ctx.tokens["AAPLx"].schedule_multiplier(TUESDAY_11 + 3900 * NS, Decimal("1.03"))
    assert strat.on_market(ctx, "AAPLx") is None
    (skip,) = ctx.decisions
    assert skip.reason.startswith("multiplier activation in 3900 s, inside the trade's ")
    assert skip.reason.endswith(" s window")


def test_two_groups_never_size_against_the_same_displayed_depth() -> None:
    strat, ctx = setup(TUESDAY_11, 208.0, 209.0, max_in_flight=2)
    ctx.ledger.positions[("kraken", "AAPLx")] = Decimal(200)
    ctx.market.book("kraken", "AAPLx").set_top(208.0, 30.0, 209.0, 30.0, TUESDAY_11)
    first = strat.on_market(ctx, "AAPLx")
    assert first is not None and first[0].qty == Decimal(30)
    ctx.now_ns += 62 * MS  # the book has not moved: its 30 tokens are ours already
    ctx.quote_stock(199.75, 200.25)
    assert strat.on_market(ctx, "AAPLx") is None
    assert ctx.decisions[-1].reason == "size 0: token depth limit"
    # the IOC fills: our order no longer takes depth, and a book that moved shows what is left
    fill = Fill("kraken", "AAPLx", "o1", "t1", Side.SELL, Decimal(30), Decimal(208), ctx.now_ns,
                role=LegRole.TOKEN, group_id="AAPLx-1")  # fmt: skip
    strat.on_fill(ctx, fill)
    ctx.now_ns += NS
    ctx.market.book("kraken", "AAPLx").set_top(208.0, 20.0, 209.0, 30.0, ctx.now_ns)
    ctx.quote_stock(199.75, 200.25)
    second = strat.on_market(ctx, "AAPLx")
    assert second is not None and second[0].group_id == "AAPLx-2"
    assert second[0].qty == Decimal(20)


def test_stale_quote_in_regular_hours_stands_aside() -> None:
    strat, ctx = setup(TUESDAY_11, 208.0, 209.0)
    ctx.quote_stock(199.75, 200.25, ts=TUESDAY_11 - 60 * NS)
    assert strat.on_market(ctx, "AAPLx") is None
    assert ctx.decisions[0].reason == "stale quote: AAPL 60 s old"


def test_one_group_in_flight_per_token_then_cooldown() -> None:
    strat, ctx = setup(TUESDAY_11, 208.0, 209.0, cooldown_s=30.0)
    ctx.ledger.positions[("kraken", "AAPLx")] = Decimal(100)
    assert strat.on_market(ctx, "AAPLx") is not None
    assert strat.on_market(ctx, "AAPLx") is None
    assert ctx.decisions[-1].reason == "1 group(s) awaiting the issuer"
    req = MintRedeemRequest("r1", "backed", "AAPLx", RequestKind.MINT, Decimal(50), TUESDAY_11,
                            "AAPLx-1", RequestState.PRICED, Decimal("204.1"))  # fmt: skip
    strat.on_request(ctx, req)
    ctx.now_ns += 10 * NS
    ctx.quote_stock(199.75, 200.25)
    assert strat.on_market(ctx, "AAPLx") is None
    assert ctx.decisions[-1].reason == "cooldown: 10.0 s since the last action"
    ctx.now_ns += 20 * NS
    ctx.quote_stock(199.75, 200.25)
    ctx.quote_token(208.0, 209.0)
    intents = strat.on_market(ctx, "AAPLx")
    assert intents is not None and intents[0].group_id == "AAPLx-2"


def test_pool_premium_swaps_with_a_worst_price_and_sizes_against_price_impact() -> None:
    s = settings(**EXACT)
    s = s.model_copy(
        update={"tokens": {"AAPLx": s.tokens["AAPLx"].model_copy(update={"venues": ["uni"]})}}
    )
    ctx = Context(s, TUESDAY_11)
    ctx.quote_stock(199.75, 200.25)
    sqrt_p = sqrt_price_x96_from_price(212.0, 18, 6)  # token0 = AAPLx (18), token1 = USDC (6)
    tick = get_tick_at_sqrt_ratio(sqrt_p)
    pool = V3Pool(3000, 60, sqrt_p)
    pool.mint((tick // 60 - 20) * 60, (tick // 60 + 20) * 60, 2 * 10**15)
    ctx.market.pools["uni"] = PoolMarket(
        PoolInfo("uni", "AAPLx", "USDC", True, 18, 6, 3000, 60), pool
    )
    ctx.ledger.positions[("uni", "AAPLx")] = Decimal(500)
    strat = MintRedeemStrategy(s)
    strat.on_start(ctx)
    intents = strat.on_market(ctx, "AAPLx")
    assert intents is not None
    token_leg = intents[0]
    assert isinstance(token_leg, PlaceOrder)
    assert (token_leg.venue, token_leg.side, token_leg.order_type) == (
        "uni",
        Side.SELL,
        OrderType.MARKET,
    )
    decision = ctx.decisions[0]
    # price impact stops the size short of every configured limit, at the profit optimum
    assert 0 < decision.qty < 50 and decision.reason.endswith("size at the profit optimum")
    assert token_leg.qty == Decimal(repr(decision.qty))
    # the swap's minimum output: the exact quote's average price less max_slippage_bps (30),
    # rounded up (in our favour), above break-even here; a deadline one swap_deadline_s away
    average = token_fill_on_pool(ctx.market.pools["uni"], Direction.PREMIUM, decision.qty)[1]
    floor = average / decision.qty * 0.997
    break_even = (average - decision.edge_usd) / decision.qty
    assert floor > break_even
    assert token_leg.limit_price == Decimal(repr(round(floor, 8))).quantize(
        Decimal("0.0001"), rounding="ROUND_CEILING"
    )
    assert token_leg.deadline_ns == TUESDAY_11 + 60 * NS
    # on a pool the hedge follows the swap's fill (a revert then costs gas, not a round trip)
    assert len(intents) == 1
    swapped = Fill("uni", "AAPLx", "u1", "t-u1", Side.SELL, token_leg.qty, Decimal("211"),
                   TUESDAY_11, role=LegRole.TOKEN, group_id="AAPLx-1")  # fmt: skip
    mint, hedge_leg = strat.on_fill(ctx, swapped) or []
    assert isinstance(hedge_leg, PlaceOrder) and isinstance(mint, RequestMintRedeem)
    assert (hedge_leg.side, hedge_leg.qty) == (Side.BUY, (token_leg.qty * Decimal("1.02")))

    def net(q: float) -> float:  # the exact-cost edge of q tokens, from the pool's own quote
        proceeds = token_fill_on_pool(ctx.market.pools["uni"], Direction.PREMIUM, q)[1]
        return proceeds - 1.02 * q * 200.25 - 1.02 * q * 0.25 - 0.001 * q * FAIR

    assert decision.edge_usd == pytest.approx(net(decision.qty), abs=1e-9)
    assert net(decision.qty) >= max(net(decision.qty * 0.95), net(decision.qty * 1.05))


def priced(state: RequestState = RequestState.PRICED, reason: str = "") -> MintRedeemRequest:
    return MintRedeemRequest(
        "r1", "backed", "AAPLx", RequestKind.MINT, Decimal(50), TUESDAY_11, "AAPLx-1", state,
        Decimal("204.1"), reason=reason,
    )  # fmt: skip


def hedge_fill(side: Side, qty: str = "51") -> Fill:
    return Fill("alpaca", "AAPL", "h1", "t-h1", side, Decimal(qty), Decimal("200.25"), TUESDAY_11,
                role=LegRole.HEDGE, group_id="AAPLx-1")  # fmt: skip


def test_unwind_priced_over_the_weekend_waits_for_monday_and_is_noted_once() -> None:
    friday_1559 = utc(2025, 6, 6, 19, 59)
    strat, ctx = setup(friday_1559, 208.0, 209.0)
    ctx.ledger.positions[("kraken", "AAPLx")] = Decimal(100)
    assert strat.on_market(ctx, "AAPLx") is not None
    strat.on_fill(ctx, hedge_fill(Side.BUY))
    ctx.now_ns = utc(2025, 6, 7, 0, 5)  # Friday 20:05 EDT: priced after the close
    assert strat.on_request(ctx, priced()) is None
    assert strat.on_timer(ctx, "heartbeat") is None
    waiting = [d for d in ctx.decisions if d.action == "waiting"]
    assert [(d.reason, d.repeats) for d in waiting] == [
        ("AAPLx-1: 1 broker leg(s) wait: no session takes a broker order now", 1)
    ]
    ctx.now_ns = utc(2025, 6, 9, 13, 31)  # Monday 09:31 EDT
    ctx.quote_stock(199.75, 200.25)
    assert strat.on_timer(ctx, "heartbeat") == [hedge(Side.SELL, role=LegRole.UNWIND)]
    assert strat.on_timer(ctx, "heartbeat") is None  # placed once


def test_issuer_refusal_keeps_the_hedge_asks_again_then_strands_the_group() -> None:
    strat, ctx = setup(TUESDAY_11, 208.0, 209.0)
    ctx.ledger.positions[("kraken", "AAPLx")] = Decimal(100)
    strat.on_market(ctx, "AAPLx")
    mint = RequestMintRedeem(
        "backed", "AAPLx", RequestKind.MINT, Decimal("50"), "AAPLx-1", FAIR, venue="kraken"
    )
    assert strat.on_fill(ctx, token_fill(Side.SELL, "50", "208")) == [mint]
    assert strat.on_fill(ctx, hedge_fill(Side.BUY)) is None
    # 50 tokens were sold and not yet minted back: the 51 shares stay, the mint is asked again
    refused = priced(RequestState.REJECTED, "MARKET_PAUSED")
    assert strat.on_request(ctx, refused) is None
    assert ctx.decisions[-1].action == "issuer_refused"
    assert ctx.decisions[-1].reason == (
        "AAPLx-1: issuer rejected: MARKET_PAUSED; asked again, hedged"
    )
    assert strat.groups.awaiting("AAPLx") == 1
    ctx.now_ns += 5 * NS  # the retry waits 5 s
    assert strat.on_timer(ctx, "heartbeat") == [mint]
    refused2 = MintRedeemRequest("r2", "backed", "AAPLx", RequestKind.MINT, Decimal(50), ctx.now_ns,
                                 "AAPLx-1", RequestState.REJECTED, reason="MARKET_PAUSED")  # fmt: skip
    assert strat.on_request(ctx, refused2) is None
    ctx.now_ns += 10 * NS  # then 10 s
    assert strat.on_timer(ctx, "heartbeat") == [mint]
    refused3 = MintRedeemRequest("r3", "backed", "AAPLx", RequestKind.MINT, Decimal(50), ctx.now_ns,
                                 "AAPLx-1", RequestState.REJECTED, reason="MARKET_PAUSED")  # fmt: skip
    assert strat.on_request(ctx, refused3) is None  # the third refusal: stranded, still hedged
    assert ctx.decisions[-1].action == "stranded"
    assert ctx.decisions[-1].reason == (
        "AAPLx-1: issuer rejected: MARKET_PAUSED; 50 tokens stay, hedge kept"
    )
    assert strat.groups.awaiting("AAPLx") == 0
    group = strat.groups.get("AAPLx-1")
    assert group is not None and group.hedge_position == group.hedge_target() == Decimal(51)
    ctx.now_ns += 20 * NS  # a stranded group still asks, at the longest wait only
    assert strat.on_timer(ctx, "heartbeat") is None
    ctx.now_ns += 280 * NS
    assert strat.on_timer(ctx, "heartbeat") == [mint]


def test_partial_token_buy_redeems_what_was_bought_and_unwinds_the_excess_hedge() -> None:
    strat, ctx = setup(TUESDAY_11, 199.0, 200.0)
    strat.on_market(ctx, "AAPLx")
    strat.on_fill(ctx, hedge_fill(Side.SELL))
    bought = Fill("kraken", "AAPLx", "k1", "t-k1", Side.BUY, Decimal(20), Decimal(200), TUESDAY_11,
                  role=LegRole.TOKEN, group_id="AAPLx-1")  # fmt: skip
    assert strat.on_fill(ctx, bought) is None
    ioc_rest = Order("k1", "kraken", "AAPLx", Side.BUY, Decimal(50), OrderType.LIMIT,
                     Decimal("203.286"), TimeInForce.IOC, role=LegRole.TOKEN, group_id="AAPLx-1",
                     state=OrderState.CANCELED, filled_qty=Decimal(20))  # fmt: skip
    # 20 tokens are hedged by 20.4 shares: 30.6 of the 51 sold are bought back
    assert strat.on_order(ctx, ioc_rest) == [
        RequestMintRedeem(
            "backed", "AAPLx", RequestKind.REDEEM, Decimal("20"), "AAPLx-1", FAIR, venue="kraken"
        ),
        hedge(Side.BUY, qty=Decimal("30.6"), role=LegRole.UNWIND),
    ]


def test_priced_mint_cancels_a_working_hedge_and_unwinds_what_filled() -> None:
    strat, ctx = setup(TUESDAY_17, 208.0, 209.0)  # after-hours: the hedge is a resting limit
    ctx.ledger.positions[("kraken", "AAPLx")] = Decimal(100)
    strat.on_market(ctx, "AAPLx")
    strat.on_fill(ctx, hedge_fill(Side.BUY, "30"))
    ctx.orders.append(
        Order(
            "h1",
            "alpaca",
            "AAPL",
            Side.BUY,
            Decimal(51),
            OrderType.LIMIT,
            Decimal("200.20"),
            extended_hours=True,
            role=LegRole.HEDGE,
            group_id="AAPLx-1",
            state=OrderState.PARTIALLY_FILLED,
            filled_qty=Decimal(30),
        )  # fmt: skip
    )
    unwind = hedge(Side.SELL, qty=Decimal("30"), order_type=OrderType.LIMIT,
                   limit_price=Decimal("199.80"), extended_hours=True, role=LegRole.UNWIND)  # fmt: skip
    assert strat.on_request(ctx, priced()) == [CancelOrder("alpaca", "h1"), unwind]
    # a fill that raced the cancel is unwound too
    assert strat.on_fill(ctx, hedge_fill(Side.BUY, "5")) == [
        hedge(Side.SELL, qty=Decimal("5"), order_type=OrderType.LIMIT,
              limit_price=Decimal("199.80"), extended_hours=True, role=LegRole.UNWIND)
    ]  # fmt: skip


TUESDAY_22 = utc(2025, 6, 4, 2)  # 22:00 EDT: the overnight session before Wednesday


def test_overnight_needs_both_the_strategy_and_the_account_enabled() -> None:
    strat, ctx = setup(TUESDAY_22, 208.0, 209.0, overnight_hedge=True)
    ctx.ledger.positions[("kraken", "AAPLx")] = Decimal(100)
    assert strat.on_market(ctx, "AAPLx") is None
    assert ctx.decisions[-1].reason == "no hedge: overnight hedging not enabled"

    s = settings(**EXACT, overnight_hedge=True)
    alpaca = s.venues["alpaca"].model_copy(update={"overnight_enabled": True})
    s = s.model_copy(update={"venues": {**s.venues, "alpaca": alpaca}})
    strat = MintRedeemStrategy(s)
    strat.on_start(ctx)
    intents = strat.on_market(ctx, "AAPLx")
    assert intents is not None
    assert intents[1] == hedge(
        Side.BUY, order_type=OrderType.LIMIT, limit_price=Decimal("200.20"), extended_hours=True
    )


def test_an_empty_issuer_account_limits_the_mint_to_nothing() -> None:
    strat, ctx = setup(TUESDAY_11, 208.0, 209.0)
    ctx.ledger.positions[("kraken", "AAPLx")] = Decimal(100)
    ctx.ledger.cash_by_venue["backed"] = Decimal(0)
    assert strat.on_market(ctx, "AAPLx") is None
    assert ctx.decisions[-1].reason == "size 0: issuer cash limit"


def test_edge_bound_is_an_upper_bound_of_the_costed_edge() -> None:
    from strategies.legs import MARKET_DAY
    from strategies.opportunity import Candidate, edge_bound, plan_candidate

    for bid, ask, direction in (
        (205.0, 205.5, Direction.PREMIUM),
        (202.0, 202.5, Direction.DISCOUNT),
    ):
        strat, ctx = setup(TUESDAY_11, bid, ask)
        st = strat._tokens["AAPLx"]
        st.stock = ctx.tokens["AAPLx"]
        st.refresh_multiplier(ctx.now_ns)
        v = st.venues[0]
        px = bid if direction is Direction.PREMIUM else ask
        cand = Candidate(v, direction, (px / FAIR - 1.0) * 1e4, ctx.now_ns)
        quote = ctx.market.quotes["AAPL"]
        plan = plan_candidate(
            ctx, strat.settings, st, cand, quote, MARKET_DAY, strat.gates.hedgeable
        )
        assert not isinstance(plan, tuple) and plan.choice.edge is not None
        usd, bps, qty, _ = edge_bound(ctx, strat.settings, st, cand, quote, MARKET_DAY)
        assert qty == plan.limit.qty
        assert usd >= plan.choice.edge.net_usd - 1e-9
        assert bps >= plan.choice.edge.net_bps - 1e-9


def test_a_held_skip_is_rechecked_by_the_bound_and_only_counted() -> None:
    strat, ctx = setup(TUESDAY_11, 205.0, 205.5, min_edge_bps=15)  # edge 14.0 bps, see above
    assert strat.on_market(ctx, "AAPLx") is None
    ctx.now_ns += 61 * NS  # past the re-costing interval: the bound proves no size can pay
    ctx.quote_stock(199.75, 200.25)
    ctx.quote_token(205.0, 205.5)
    assert strat.on_market(ctx, "AAPLx") is None
    (skip,) = ctx.decisions
    assert skip.reason == "edge 14.0 bps < min 15" and skip.repeats == 2
    ctx.now_ns += 61 * NS  # a richer token: the bound passes and the opportunity is costed
    ctx.quote_stock(199.75, 200.25)
    ctx.quote_token(206.0, 206.5)
    intents = strat.on_market(ctx, "AAPLx")
    assert intents is not None and ctx.decisions[-1].taken


def _count_bounds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The binding limits of every edge bound the strategy asks for."""
    import strategies.mint_redeem as module

    limits: list[str] = []
    real = module.edge_bound

    def counted(*args: Any) -> Any:
        bound = real(*args)
        limits.append(bound.limit)
        return bound

    monkeypatch.setattr(module, "edge_bound", counted)
    return limits


def test_a_skip_no_size_can_lift_is_recosted_on_the_ten_minute_timer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bounds = _count_bounds(monkeypatch)
    strat, ctx = setup(TUESDAY_11, 205.0, 205.5, min_edge_bps=15)  # edge 14.0 bps: no size pays
    for step_s, asked in ((0, 0), (61, 1), (61, 1), (9 * 60, 2)):
        ctx.now_ns += step_s * NS
        ctx.quote_stock(199.75, 200.25)
        ctx.quote_token(205.0, 205.5)
        assert strat.on_market(ctx, "AAPLx") is None
        assert len(bounds) == asked, step_s
    (skip,) = ctx.decisions
    assert skip.reason == "edge 14.0 bps < min 15" and skip.repeats == 4


def test_a_skip_a_displayed_size_binds_is_recosted_each_minute_and_taken_when_it_grows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bounds = _count_bounds(monkeypatch)
    strat, ctx = setup(TUESDAY_11, 206.0, 206.5, min_edge_usd=50.0)
    ctx.quote_stock(199.75, 200.25, size=10.0)  # the hedge can take 10 shares: too small to pay
    assert strat.on_market(ctx, "AAPLx") is None
    assert ctx.decisions[-1].reason.startswith("edge $") and not ctx.decisions[-1].taken
    ctx.now_ns += 61 * NS
    ctx.quote_stock(199.75, 200.25, size=10.0)
    ctx.quote_token(206.0, 206.5)
    assert strat.on_market(ctx, "AAPLx") is None
    assert bounds == ["hedge size"]
    ctx.now_ns += 61 * NS  # a minute on, the broker shows more: the size pays now
    ctx.quote_stock(199.75, 200.25, size=1000.0)
    ctx.quote_token(206.0, 206.5)
    assert strat.on_market(ctx, "AAPLx") is not None
    assert ctx.decisions[-1].taken


def test_a_skipped_premium_that_turns_into_a_discount_is_looked_at_again_at_once() -> None:
    strat, ctx = setup(TUESDAY_11, 205.0, 205.5, min_edge_bps=15)  # +49 bps, edge 14.0: skip
    assert strat.on_market(ctx, "AAPLx") is None
    assert ctx.decisions[-1].reason == "edge 14.0 bps < min 15"
    ctx.now_ns += NS  # a second later the token is about as far below fair value: it pays
    ctx.quote_stock(199.75, 200.25)
    ctx.quote_token(202.44, 202.94)
    assert abs(202.94 / FAIR - 1.0) * 1e4 < 54.0  # inside the premium's trigger (49 + 5 bps)
    assert strat.on_market(ctx, "AAPLx") is not None
    assert ctx.decisions[-1].taken and ctx.decisions[-1].premium_bps < 0


def test_a_venue_learns_the_move_against_our_orders_and_their_fill_rate() -> None:
    strat, ctx = setup(TUESDAY_11, 208.0, 209.0)
    ctx.ledger.positions[("kraken", "AAPLx")] = Decimal(100)
    assert strat.on_market(ctx, "AAPLx") is not None  # sells 50 at the 208 bid
    # by the time the IOC ends, the bid has fallen to 206.96 (50 bps against us) and nothing
    # filled: one outcome weighs 0.2 against the priors (no move, everything fills)
    ctx.quote_token(206.96, 208.0)
    ioc = Order("k1", "kraken", "AAPLx", Side.SELL, Decimal(50), OrderType.LIMIT, Decimal("207.376"),
                TimeInForce.IOC, role=LegRole.TOKEN, group_id="AAPLx-1",
                state=OrderState.CANCELED)  # fmt: skip
    strat.on_order(ctx, ioc)
    (kraken,) = strat._tokens["AAPLx"].venues
    assert kraken.adverse_bps == pytest.approx(0.2 * 50.0, rel=1e-9)
    assert kraken.fill_rate == pytest.approx(0.8, rel=1e-12)
    # the next costing prices the token 10 bps lower than the book shows
    ctx.now_ns += 3600 * NS
    ctx.quote_stock(199.75, 200.25)
    ctx.quote_token(208.0, 209.0)
    strat.on_market(ctx, "AAPLx")
    taken = ctx.decisions[-1]
    assert taken.components["token"] == pytest.approx(50 * 208.0 * (1 - 0.001), rel=1e-12)


def test_a_hedge_larger_than_one_order_may_be_goes_in_slices_within_the_cap() -> None:
    assert slices(Decimal(100), 200.0, 50_000.0) == [Decimal(100)]
    # 99% of 10,000 at 200 is 49.5 shares an order
    assert slices(Decimal(120), 200.0, 10_000.0) == [Decimal("49.5"), Decimal("49.5"), Decimal(21)]
    strat, ctx = setup(TUESDAY_11, 204.0, 204.1)  # no premium: only the inventory hedge
    s = strat.settings
    s = s.model_copy(update={"risk": s.risk.model_copy(update={"max_order_notional_usd": 50_000})})
    strat = MintRedeemStrategy(s)
    ctx.ledger.deposits = {"AAPLx": Decimal(500)}  # 510 shares at 200: 102,000 USD
    intents = strat.on_start(ctx) or []
    assert [(i.side, i.qty, i.role) for i in intents if isinstance(i, PlaceOrder)] == [
        (Side.SELL, Decimal("247.5"), LegRole.INVENTORY),
        (Side.SELL, Decimal("247.5"), LegRole.INVENTORY),
        (Side.SELL, Decimal(15), LegRole.INVENTORY),
    ]


def test_a_venue_whose_live_feed_is_lost_is_stale_until_it_is_back() -> None:
    strat, ctx = setup(TUESDAY_11, 208.0, 209.0)
    ctx.ledger.positions[("kraken", "AAPLx")] = Decimal(100)
    ctx.market.disconnected["kraken"] = "reconnecting"  # the engine's on_connection keeps this
    assert strat.on_connection(ctx, "kraken", "reconnecting") is None
    assert strat.on_market(ctx, "AAPLx") is None
    assert ctx.decisions[-1].reason == "stale book: kraken"
    ctx.market.disconnected["alpaca"] = "gap"  # the broker's feed: no arbitrage at all
    del ctx.market.disconnected["kraken"]
    strat.on_connection(ctx, "kraken", "connected")
    assert strat.on_market(ctx, "AAPLx") is None
    assert ctx.decisions[-1].reason == "broker feed alpaca gap"
    del ctx.market.disconnected["alpaca"]
    strat.on_connection(ctx, "alpaca", "connected")
    intents = strat.on_market(ctx, "AAPLx")
    assert intents is not None and intents[0].venue == "kraken"


def test_without_short_sales_a_discount_is_sized_to_the_shares_held_at_the_broker() -> None:
    s = settings(**EXACT)
    no_shorts = s.venues["alpaca"].model_copy(update={"shorting_enabled": False})
    s = s.model_copy(update={"venues": {**s.venues, "alpaca": no_shorts}})
    ctx = Context(s, TUESDAY_11)
    ctx.quote_stock(199.75, 200.25)
    ctx.quote_token(199.0, 200.0)
    strat = MintRedeemStrategy(s)
    strat.on_start(ctx)
    assert not strat.on_market(ctx, "AAPLx")  # no shares to sell: no hedge, no arbitrage
    assert ctx.decisions[-1].reason.endswith("shares held limit")
    ctx.ledger.positions[("alpaca", "AAPL")] = Decimal("20.4")  # 20 tokens' worth at x1.02
    ctx.now_ns += 600 * 1_000_000_000  # past the skip's promise (a fill would lift it at once)
    ctx.quote_stock(199.75, 200.25)
    ctx.quote_token(199.0, 200.0)
    intents = strat.on_market(ctx, "AAPLx")
    assert intents is not None, [d.reason for d in ctx.decisions]
    assert [(i.instrument, i.side, i.qty) for i in intents if isinstance(i, PlaceOrder)] == [
        ("AAPLx", Side.BUY, Decimal("20")),
        ("AAPL", Side.SELL, Decimal("20.4")),
    ]


def test_a_rest_below_the_issuers_minimum_is_never_asked_and_stays_hedged() -> None:
    base = settings(**EXACT)
    terms = base.issuers["backed"].model_copy(update={"min_notional_usd": Decimal(1000)})
    s = base.model_copy(update={"issuers": {"backed": terms}})
    ctx = Context(s, TUESDAY_11)
    ctx.quote_stock(199.75, 200.25)
    ctx.quote_token(208.0, 209.0)
    strat = MintRedeemStrategy(s)
    strat.on_start(ctx)
    ctx.ledger.positions[("kraken", "AAPLx")] = Decimal(100)
    strat.on_market(ctx, "AAPLx")
    assert strat.on_fill(ctx, hedge_fill(Side.BUY)) is None
    # the sale of 50 comes back with 2 tokens traded: a mint of 2 (408 USD) is below 1000 USD
    assert strat.on_fill(ctx, token_fill(Side.SELL, "2", "208")) is None
    ioc_rest = Order("k1", "kraken", "AAPLx", Side.SELL, Decimal(50), OrderType.LIMIT,
                     Decimal("204.9"), TimeInForce.IOC, role=LegRole.TOKEN, group_id="AAPLx-1",
                     state=OrderState.CANCELED, filled_qty=Decimal(2))  # fmt: skip
    # the 2.04 shares that offset the 2 tokens sold stay; the other 48.96 are sold back
    assert strat.on_order(ctx, ioc_rest) == [
        hedge(Side.SELL, qty=Decimal("48.96"), role=LegRole.UNWIND)
    ]
    notes = [d for d in ctx.decisions if d.action == "below_minimum"]
    assert [d.reason for d in notes] == [
        "AAPLx-1: mint not asked: 2.000 tokens below the issuer's minimum of 1000 USD; hedge kept"
    ]
    assert strat.groups.awaiting("AAPLx") == 0  # stranded: it blocks no new arbitrage
    group = strat.groups.get("AAPLx-1")
    assert group is not None and group.stranded and group.hedge_target() == Decimal("2.04")
    for _ in range(12):  # an hour of heartbeats: the issuer is never asked for it
        ctx.now_ns += 300 * NS
        intents = strat.on_timer(ctx, "heartbeat") or []
        assert not [i for i in intents if isinstance(i, RequestMintRedeem)]
