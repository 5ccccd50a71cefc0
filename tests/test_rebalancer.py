"""The rebalancer's policy on a real ledger: accounts out of band are moved back to target from
accounts above theirs, transfers in flight are counted (never sent twice), no source is taken
below its target minus band or overdrawn, fees are paid out of what a source can give, and a
route that failed rests."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import BalanceBand, RebalanceConfig, TransferRouteConfig
from bot.intents import RequestTransfer
from bot.ledger import Ledger, debits
from bot.model import Currency, Transfer, TransferState, TransferUpdate
from bot.rebalancer import Rebalancer

D = Decimal
USD = Currency.USD
S = 1_000_000_000

ROUTES = {
    "wire": TransferRouteConfig(
        kind="bank_wire", source="kraken", destination="xstocks", fee_flat_usd=D("15")
    ),
    "ramp": TransferRouteConfig(
        kind="usdc_ramp", source="uniswap", destination="xstocks", fee_bps=D("3")
    ),
    "withdraw": TransferRouteConfig(
        kind="token_withdrawal",
        source="kraken",
        destination="uniswap",
        assets=["AAPLx"],
        fee_flat_tokens=D("0.02"),
        gas_usd=D("4"),
    ),
}
CASH = {
    "xstocks": BalanceBand(target=D("600000"), band=D("150000")),
    "kraken": BalanceBand(target=D("100000"), band=D("50000")),
    "uniswap": BalanceBand(target=D("50000"), band=D("25000")),
}
TOKENS = {
    "kraken:AAPLx": BalanceBand(target=D("200"), band=D("150")),
    "uniswap:AAPLx": BalanceBand(target=D("100"), band=D("75")),
}


def policy(**changes: object) -> Rebalancer:
    config = {"cash": CASH, "check_every_s": 0, **changes}
    return Rebalancer(RebalanceConfig.model_validate(config), ROUTES)


def book(**cash: str) -> Ledger:
    ledger = Ledger()
    for account, amount in cash.items():
        ledger.deposit_cash(account, D(amount))
    return ledger


def wire(
    amount: str, reason: str = "xstocks below its band 600000 +/- 150000 USD"
) -> RequestTransfer:
    return RequestTransfer(
        "wire", USD, D(amount), "kraken", "xstocks", D("15"), D(0), "rebalancer", reason
    )


def track(ledger: Ledger, intents: list[RequestTransfer], start: int = 1) -> list[Transfer]:
    """Submit the planned transfers to the ledger as the engine would."""
    made = []
    for n, i in enumerate(intents, start=start):
        t = Transfer(
            f"t{n}", i.route, i.asset, i.amount, i.source, i.destination, 0, fee_usd=i.fee_usd,
            fee_tokens=i.fee_tokens, requested_by=i.requested_by,
        )  # fmt: skip
        assert ledger.track_transfer(t)
        made.append(t)
    return made


def test_accounts_inside_their_bands_are_left_alone() -> None:
    ledger = book(xstocks="460000", kraken="140000", uniswap="30000")
    assert policy().plan(ledger, 0) == []


def test_an_account_below_its_band_is_refilled_to_target_from_the_one_above_its_target() -> None:
    ledger = book(xstocks="400000", kraken="300000", uniswap="50000")
    # kraken gives what it has above its target, less the wire's flat fee
    assert policy().plan(ledger, 0) == [wire("199985")]


def test_a_transfer_in_flight_is_counted_so_nothing_is_sent_twice() -> None:
    ledger = book(xstocks="400000", kraken="300000", uniswap="50000")
    rebalancer = policy()
    [t] = track(ledger, rebalancer.plan(ledger, 0))
    assert rebalancer.plan(ledger, 1) == []  # submitted, not yet sent
    ledger.apply_transfer_update(t, TransferUpdate("wire", "t1", TransferState.SENT, 2, D("15")))
    assert ledger.cash("kraken") == D("100000")
    assert rebalancer.plan(ledger, 3) == []  # in transit
    ledger.apply_transfer_update(t, TransferUpdate("wire", "t1", TransferState.ARRIVED, 4))
    assert ledger.cash("xstocks") == D("599985")
    assert rebalancer.plan(ledger, 5) == []  # arrived: in band


def test_the_largest_surplus_gives_first_and_each_donor_pays_its_route_fees() -> None:
    ledger = book(xstocks="100000", kraken="300000", uniswap="200000")
    # kraken: 200,000 above target, less 15; uniswap: 150,000 above target at 3 bps
    # (150,000 / 1.0003 = 149,955.0134..., whole cents down; its fee 44.986503)
    assert policy().plan(ledger, 0) == [
        wire("199985"),
        RequestTransfer(
            "ramp", USD, D("149955.01"), "uniswap", "xstocks", D("44.986503"), D(0),
            "rebalancer", "xstocks below its band 600000 +/- 150000 USD",
        ),
    ]  # fmt: skip


def test_a_donor_never_gives_what_would_leave_it_below_its_target_minus_band() -> None:
    ledger = book(xstocks="100000", kraken="60000", alpaca="500000")
    # 100,000 on its way to kraken: its level is 160,000, 60,000 above target; but of the
    # 60,000 it holds it keeps its target minus band, 50,000
    ledger.track_transfer(Transfer("in", "wire", USD, D("100000"), "alpaca", "kraken", 0))
    assert policy().plan(ledger, 0) == [wire("9985")]


def test_an_account_above_its_band_sends_its_surplus_to_accounts_below_their_targets() -> None:
    ledger = book(xstocks="500000", kraken="400000", uniswap="50000")
    assert policy().plan(ledger, 0) == [
        wire("100000", "kraken above its band 100000 +/- 50000 USD")
    ]


def test_transfers_below_the_minimum_are_not_made() -> None:
    ledger = book(xstocks="440000", kraken="100500", uniswap="50000")
    assert policy(min_transfer_usd="1000").plan(ledger, 0) == []


def test_the_configured_route_wins_and_otherwise_the_cheapest() -> None:
    routes = {
        **ROUTES,
        "cheap": TransferRouteConfig(
            kind="bank_wire", source="xstocks", destination="kraken", fee_flat_usd=D("10")
        ),
    }
    ledger = book(xstocks="400000", kraken="300000", uniswap="50000")
    cheapest = Rebalancer(RebalanceConfig(cash=CASH, check_every_s=0), routes)
    [t] = cheapest.plan(ledger, 0)
    assert (t.route, t.amount, t.fee_usd) == ("cheap", D("199990"), D("10"))  # two-way route
    chosen = Rebalancer(
        RebalanceConfig(cash=CASH, check_every_s=0, routes={"kraken>xstocks": "wire"}), routes
    )
    assert [t.route for t in chosen.plan(ledger, 0)] == ["wire"]


def test_a_route_that_failed_rests_then_is_used_again() -> None:
    ledger = book(xstocks="400000", kraken="300000", uniswap="50000")
    rebalancer = policy(retry_after_s=3600)
    [t] = track(ledger, rebalancer.plan(ledger, 0))
    ledger.apply_transfer_update(t, TransferUpdate("wire", "t1", TransferState.FAILED, S, D("15")))
    t.state = TransferState.FAILED
    rebalancer.on_transfer(t, S)
    assert rebalancer.plan(ledger, 2 * S) == []
    assert rebalancer.plan(ledger, 3601 * S) == [wire("199970")]  # less the first wire's fee


def test_it_looks_at_the_book_at_most_every_check_interval() -> None:
    ledger = book(xstocks="460000", kraken="140000", uniswap="30000")
    rebalancer = policy(check_every_s=300)
    assert rebalancer.plan(ledger, 0) == []
    ledger.deposit_cash("xstocks", D("-100000"))
    assert rebalancer.plan(ledger, 299 * S) == []
    assert rebalancer.plan(ledger, 300 * S) == [wire("39985")]


def test_tokens_move_by_their_route_with_fee_tokens_and_gas() -> None:
    ledger = book(xstocks="600000", kraken="100000", uniswap="50000")
    ledger.deposit_position("kraken", "AAPLx", D("40"), D("230"))
    ledger.deposit_position("uniswap", "AAPLx", D("300"), D("230"))
    [t] = policy(tokens=TOKENS).plan(ledger, 0)
    assert t == RequestTransfer(
        "withdraw", "AAPLx", D("160"), "uniswap", "kraken", D("4"), D("0.02"), "rebalancer",
        "kraken below its band 200 +/- 150 AAPLx",
    )  # fmt: skip


def test_a_token_transfer_whose_gas_the_source_cannot_pay_is_not_asked_for() -> None:
    ledger = book(xstocks="600000", kraken="100000", uniswap="3")
    ledger.deposit_position("kraken", "AAPLx", D("40"), D("230"))
    ledger.deposit_position("uniswap", "AAPLx", D("300"), D("230"))
    rebalancer = Rebalancer(RebalanceConfig(tokens=TOKENS, check_every_s=0), ROUTES)
    assert rebalancer.plan(ledger, 0) == []


balances = st.decimals(min_value=D(0), max_value=D(1_000_000), places=2)
bands = st.tuples(
    st.decimals(min_value=D(0), max_value=D(800_000), places=0),
    st.decimals(min_value=D(0), max_value=D(300_000), places=0),
)


@settings(max_examples=300, deadline=None)
@given(
    cash=st.tuples(balances, balances, balances),
    targets=st.tuples(bands, bands, bands),
    in_flight=st.lists(
        st.tuples(st.sampled_from(["kraken", "uniswap"]), st.decimals(D(1), D(90_000), places=2)),
        max_size=3,
    ),
)
def test_no_plan_overdraws_a_source_takes_it_out_of_band_or_repeats_itself(
    cash: tuple[Decimal, Decimal, Decimal],
    targets: tuple[tuple[Decimal, Decimal], ...],
    in_flight: list[tuple[str, Decimal]],
) -> None:
    accounts = ("xstocks", "kraken", "uniswap")
    ledger = book(**{a: str(c) for a, c in zip(accounts, cash, strict=True)})
    for n, (source, amount) in enumerate(in_flight):
        ledger.track_transfer(Transfer(f"f{n}", "x", USD, amount, source, "xstocks", 0))
    config_bands = {
        a: BalanceBand(target=t, band=b) for a, (t, b) in zip(accounts, targets, strict=True)
    }
    rebalancer = Rebalancer(RebalanceConfig(cash=config_bands, check_every_s=0), ROUTES)
    before = {a: ledger.available(a, USD) for a in accounts}
    planned = rebalancer.plan(ledger, 0)
    taken = {a: D(0) for a in accounts}
    for i in planned:
        assert i.amount >= D(1000) and i.source != i.destination
        taken[i.source] += debits(i.asset, i.amount, i.fee_usd, i.fee_tokens)[USD]
    for a in accounts:
        if taken[a]:
            assert taken[a] <= before[a]
            assert before[a] - taken[a] >= config_bands[a].target - config_bands[a].band
    track(ledger, planned, start=100)
    assert rebalancer.plan(ledger, 1) == []
