"""Ledger conservation, by property: no sequence of fills, duplicates, mint/redeem lifecycles
(in any order, with skipped, stale and repeated updates), transfers between accounts (the same)
or funding accruals creates or destroys value beyond the recorded costs and the trades' price
differences to the marks; no float ever enters a balance.

The model below is independent of the ledger's bookkeeping: it knows only each trade's price
difference to the mark, each request's stage, fees and gas, and where tokens went.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal, localcontext

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from bot.ledger import FUNDING_QUANTUM, NS_PER_YEAR, Ledger
from bot.model import (
    Currency,
    Fill,
    LegRole,
    MintRedeemRequest,
    RequestKind,
    RequestState,
    RequestUpdate,
    Side,
    Transfer,
    TransferState,
    TransferUpdate,
)

D = Decimal
VENUES = ("kraken", "bybit", "alpaca")
TOKENS = ("AAPLx", "TSLAx")
INSTRUMENTS = (*TOKENS, "AAPL")
ISSUER = "backed"

money = st.decimals(min_value=D("0"), max_value=D("25"), places=2)
qtys = st.decimals(min_value=D("0.000001"), max_value=D("1000"), places=6)
marks = st.decimals(min_value=D("0.01"), max_value=D("5000"), places=2)
offsets = st.sampled_from([D(0), D(0), D(0), D("0.01"), D("-0.01"), D("1.37"), D("-2.5")])
sides = st.sampled_from([Side.BUY, Side.SELL])

# how far along a request state is, as the issuer protocol defines it (not the ledger's table)
RANK = {
    RequestState.UNKNOWN: 0,
    RequestState.PENDING_SUBMIT: 0,
    RequestState.ACCEPTED: 1,
    RequestState.PRICED: 2,
    RequestState.SETTLED: 3,
    RequestState.REJECTED: 3,
    RequestState.CANCELED: 3,
}


# how far along a transfer state is, as the transfer protocol defines it
TRANSFER_RANK = {
    TransferState.PENDING_SUBMIT: 0,
    TransferState.UNKNOWN: 0,
    TransferState.SENT: 1,
    TransferState.ARRIVED: 2,
    TransferState.FAILED: 2,
    TransferState.REJECTED: 2,
}
ACCOUNTS = (*VENUES, ISSUER)


@dataclass
class ModelTransfer:
    transfer: Transfer
    state: TransferState = TransferState.PENDING_SUBMIT
    left: bool = False  # debited at the source (SENT applied)


@dataclass
class ModelRequest:
    request: MintRedeemRequest
    venue: str
    state: RequestState = RequestState.PENDING_SUBMIT
    price: Decimal = D(0)
    fee: Decimal = D(0)

    @property
    def failed(self) -> bool:
        return self.state in (RequestState.REJECTED, RequestState.CANCELED)

    @property
    def priced(self) -> bool:
        return RANK[self.state] >= 2 and not self.failed


class LedgerConservation(RuleBasedStateMachine):
    """Expected equity = contributions + sum of (trade value at mark - trade price) - costs."""

    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger()
        self.marks: dict[str, Decimal] = {}
        self.applied: list[Fill] = []
        self.trade_value = D(0)  # sum over fills of side x qty x (mark - price)
        self.fees = D(0)
        self.gas = D(0)
        self.funding = D(0)
        self.positions: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        self.requests: list[ModelRequest] = []
        self.contributions = D(0)
        self.transfers: list[ModelTransfer] = []
        self.transfer_usd_fees = D(0)
        self.transfer_token_fees = D(0)  # fee tokens at their marks

    @initialize(
        prices=st.tuples(marks, marks, marks),
        cash=st.decimals(min_value=D(0), max_value=D(100_000), places=2),
    )
    def start(self, prices: tuple[Decimal, Decimal, Decimal], cash: Decimal) -> None:
        self.marks = dict(zip(INSTRUMENTS, prices, strict=True))
        for venue in (*VENUES, ISSUER):
            self.ledger.deposit_cash(venue, cash)
        self.ledger.deposit_position("kraken", "AAPLx", D(50), self.marks["AAPLx"])
        self.positions[("kraken", "AAPLx")] = D(50)
        self.contributions = 4 * cash + 50 * self.marks["AAPLx"]

    @rule(
        venue=st.sampled_from(VENUES),
        instrument=st.sampled_from(INSTRUMENTS),
        side=sides,
        qty=qtys,
        offset=offsets,
        fee=money,
        gas=money,
        role=st.sampled_from(list(LegRole)),
    )
    def fill(
        self,
        venue: str,
        instrument: str,
        side: Side,
        qty: Decimal,
        offset: Decimal,
        fee: Decimal,
        gas: Decimal,
        role: LegRole,
    ) -> None:
        price = max(self.marks[instrument] + offset, D("0.01"))
        trade_id = f"t{len(self.applied)}"
        f = Fill(venue, instrument, "c", trade_id, side, qty, price, 0, fee, gas, role)
        assert self.ledger.apply_fill(f, reference_price=float(self.marks[instrument]))
        self.applied.append(f)
        with localcontext() as ctx:
            ctx.prec = 80
            self.trade_value += side * qty * (self.marks[instrument] - price)
            self.positions[(venue, instrument)] += side * qty
        self.fees += fee
        self.gas += gas

    @precondition(lambda self: self.applied)
    @rule(data=st.data())
    def duplicate_fill(self, data: st.DataObject) -> None:
        f = data.draw(st.sampled_from(self.applied))
        before = self.ledger.snapshot(), self.ledger.pnl(self.marks)
        assert not self.ledger.apply_fill(f)
        assert (self.ledger.snapshot(), self.ledger.pnl(self.marks)) == before

    @rule(
        kind=st.sampled_from(list(RequestKind)),
        token=st.sampled_from(TOKENS),
        qty=qtys,
        venue=st.sampled_from(VENUES),
    )
    def submit_request(self, kind: RequestKind, token: str, qty: Decimal, venue: str) -> None:
        req = MintRedeemRequest(f"r{len(self.requests)}", ISSUER, token, kind, qty, 0)
        assert self.ledger.track_request(req, venue)
        self.requests.append(ModelRequest(req, venue))

    @precondition(lambda self: self.requests)
    @rule(
        data=st.data(),
        state=st.sampled_from(list(RequestState)),
        offset=offsets,
        fee=money,
        ts_ns=st.integers(min_value=0, max_value=10**15),
    )
    def request_update(
        self, data: st.DataObject, state: RequestState, offset: Decimal, fee: Decimal, ts_ns: int
    ) -> None:
        m = data.draw(st.sampled_from(self.requests))
        req = m.request
        price = max(self.marks[req.token] + offset, D("0.01"))
        upd = RequestUpdate(ISSUER, req.request_id, state, ts_ns, price, fee)
        before = self.ledger.snapshot(), self.ledger.pnl(self.marks)
        applies = RANK[state] > RANK[m.state] and RANK[m.state] < 3
        assert self.ledger.apply_request_update(req, upd, m.venue) is applies
        if not applies:
            assert (self.ledger.snapshot(), self.ledger.pnl(self.marks)) == before
            return
        at_venue_before = _at_venue(m)
        if RANK[m.state] < 2 and RANK[state] >= 2:
            m.price, m.fee = price, fee
        m.state = state
        self.positions[(m.venue, req.token)] += _at_venue(m) - at_venue_before

    @rule(
        asset=st.sampled_from([Currency.USD, *TOKENS]),
        amount=qtys,
        source=st.sampled_from(ACCOUNTS),
        destination=st.sampled_from(ACCOUNTS),
    )
    def submit_transfer(self, asset: str, amount: Decimal, source: str, destination: str) -> None:
        t = Transfer(f"x{len(self.transfers)}", "route", asset, amount, source, destination, 0)
        assert self.ledger.track_transfer(t)
        assert not self.ledger.track_transfer(t)
        self.transfers.append(ModelTransfer(t))

    @precondition(lambda self: self.transfers)
    @rule(
        data=st.data(),
        state=st.sampled_from(list(TransferState)),
        fee_usd=money,
        fee_tokens=st.sampled_from([D(0), D(0), D("0.05"), D("1.000001")]),
        ts_ns=st.integers(min_value=0, max_value=10**15),
    )
    def transfer_update(
        self,
        data: st.DataObject,
        state: TransferState,
        fee_usd: Decimal,
        fee_tokens: Decimal,
        ts_ns: int,
    ) -> None:
        m = data.draw(st.sampled_from(self.transfers))
        t = m.transfer
        if t.asset == Currency.USD:
            fee_tokens = D(0)
        upd = TransferUpdate("route", t.transfer_id, state, ts_ns, fee_usd, fee_tokens)
        before = self.ledger.snapshot(), self.ledger.pnl(self.marks)
        applies = TRANSFER_RANK[state] > TRANSFER_RANK[m.state]
        assert self.ledger.apply_transfer_update(t, upd) is applies
        if not applies:
            assert (self.ledger.snapshot(), self.ledger.pnl(self.marks)) == before
            return
        token = t.asset != Currency.USD
        if not m.left and state is not TransferState.REJECTED:
            m.left = True
            self.transfer_usd_fees += fee_usd
            if token:
                self.transfer_token_fees += fee_tokens * self.marks[t.asset]
                self.positions[(t.source, t.asset)] -= t.amount + fee_tokens
        if token and state is TransferState.ARRIVED:
            self.positions[(t.destination, t.asset)] += t.amount
        elif token and m.left and state in (TransferState.FAILED, TransferState.REJECTED):
            self.positions[(t.source, t.asset)] += t.amount
        m.state = state

    @rule(
        now_ns=st.integers(min_value=0, max_value=10**15),
        rate=st.sampled_from([0.0, 0.05, 0.0725, 1.0]),
    )
    def accrue(self, now_ns: int, rate: float) -> None:
        before = self.ledger.equity(self.marks)
        charged = self.ledger.accrue_funding(now_ns, rate)
        assert charged >= 0
        assert self.ledger.equity(self.marks) == before - charged
        self.funding += charged

    def issuer_effects(self) -> tuple[Decimal, Decimal]:
        """(value at marks of priced requests, their issuer fees)."""
        value, fees = D(0), D(0)
        for m in self.requests:
            if m.priced:
                mark = self.marks[m.request.token]
                diff = mark - m.price if m.request.kind is RequestKind.MINT else m.price - mark
                value += m.request.qty * diff
                fees += m.fee
        return value, fees

    @invariant()
    def equity_changes_only_by_price_differences_and_costs(self) -> None:
        if not self.marks:
            return
        with localcontext() as ctx:
            ctx.prec = 80
            issuer_value, issuer_fees = self.issuer_effects()
            expected = (
                self.contributions
                + self.trade_value
                + issuer_value
                - self.fees
                - self.gas
                - issuer_fees
                - self.funding
                - self.transfer_usd_fees
                - self.transfer_token_fees
            )
            assert self.ledger.equity(self.marks) == expected
            pnl = self.ledger.pnl(self.marks)
            assert pnl.total == expected - self.contributions
            assert pnl.realized + pnl.unrealized == pnl.total
            assert pnl.venue_fees == self.fees
            assert pnl.gas == self.gas
            assert pnl.issuer_fees == issuer_fees
            assert pnl.funding == self.funding
            assert pnl.transfer_fees >= self.transfer_usd_fees
            if not self.transfer_token_fees:
                assert pnl.transfer_fees == self.transfer_usd_fees

    @invariant()
    def in_transit_is_what_left_and_has_not_arrived_or_returned(self) -> None:
        for asset in (Currency.USD, *TOKENS):
            expected = sum(
                (
                    m.transfer.amount
                    for m in self.transfers
                    if m.transfer.asset == asset and m.state is TransferState.SENT
                ),
                D(0),
            )
            assert self.ledger.in_transit(asset) == expected
            assert self.ledger.snapshot().in_transit.get(asset, D(0)) == expected

    @invariant()
    def no_float_enters_a_balance(self) -> None:
        snap = self.ledger.snapshot()
        values = [*snap.in_transit.values()]
        for balances in snap.venues.values():
            values += [balances.cash, *balances.positions.values()]
        if self.marks:
            values += list(self.ledger.pnl(self.marks).as_dict().values())
        assert all(type(v) is Decimal for v in values)

    @invariant()
    def positions_follow_fills_and_token_transfers(self) -> None:
        for (venue, instrument), qty in self.positions.items():
            assert self.ledger.position(venue, instrument) == qty

    @invariant()
    def in_flight_lists_exactly_the_open_requests(self) -> None:
        for token in TOKENS:
            listed = {r.request_id for r in self.ledger.in_flight(token)}
            open_ = {
                m.request.request_id
                for m in self.requests
                if m.request.token == token and RANK[m.state] < 3
            }
            assert listed == open_


def _at_venue(m: ModelRequest) -> Decimal:
    """What the request has changed at its venue: a settled mint's tokens landed; a redeem's
    tokens left on acceptance (and come back if it fails)."""
    if m.request.kind is RequestKind.MINT:
        return m.request.qty if m.state is RequestState.SETTLED else D(0)
    return -m.request.qty if RANK[m.state] >= 1 and not m.failed else D(0)


LedgerConservation.TestCase.settings = settings(max_examples=150, stateful_step_count=40)
TestLedgerConservation = LedgerConservation.TestCase


@given(
    mark=marks,
    trades=st.lists(st.tuples(sides, qtys, money, money, st.sampled_from(VENUES)), max_size=30),
    repeats=st.lists(st.integers(min_value=0, max_value=29), max_size=10),
)
def test_trades_at_the_mark_cost_exactly_their_fees_and_gas(
    mark: Decimal,
    trades: list[tuple[Side, Decimal, Decimal, Decimal, str]],
    repeats: list[int],
) -> None:
    ledger = Ledger()
    ledger.deposit_cash("kraken", D(1_000))
    before = ledger.equity({"AAPLx": mark})
    fills = [
        Fill(venue, "AAPLx", "c", f"t{i}", side, qty, mark, i, fee, gas)
        for i, (side, qty, fee, gas, venue) in enumerate(trades)
    ]
    for f in fills:
        assert ledger.apply_fill(f)
    for i in repeats:
        if i < len(fills):
            assert not ledger.apply_fill(fills[i])
    costs = sum((f.fee_usd + f.gas_usd for f in fills), D(0))
    assert ledger.equity({"AAPLx": mark}) == before - costs


@given(
    mark=marks,
    qty=qtys,
    fee=money,
    path=st.sampled_from(
        [
            (RequestState.ACCEPTED, RequestState.PRICED, RequestState.SETTLED),
            (RequestState.PRICED, RequestState.SETTLED),
            (RequestState.SETTLED,),
            (RequestState.ACCEPTED, RequestState.PRICED, RequestState.REJECTED),
        ]
    ),
    kind=st.sampled_from(list(RequestKind)),
)
def test_request_priced_at_the_mark_changes_equity_only_by_its_fee(
    mark: Decimal, qty: Decimal, fee: Decimal, path: tuple[RequestState, ...], kind: RequestKind
) -> None:
    ledger = Ledger()
    ledger.deposit_cash(ISSUER, D(10_000_000))
    ledger.deposit_position("kraken", "AAPLx", D(1_000), mark)
    start = ledger.equity({"AAPLx": mark})
    req = MintRedeemRequest("r1", ISSUER, "AAPLx", kind, qty, 0)
    for ts, state in enumerate(path):
        assert ledger.apply_request_update(
            req, RequestUpdate(ISSUER, "r1", state, ts, mark, fee), "kraken"
        )
        expected_cost = fee if RANK[state] >= 2 and state is not RequestState.REJECTED else 0
        assert ledger.equity({"AAPLx": mark}) == start - expected_cost


@settings(max_examples=200)
@given(
    notional=st.decimals(min_value=D("0.01"), max_value=D(10_000_000), places=2),
    rate=st.decimals(min_value=D(0), max_value=D("0.5"), places=4),
    cuts=st.lists(st.integers(min_value=1, max_value=10 * 86_400 * 10**9), max_size=8),
)
def test_funding_accrues_notional_times_rate_times_time_whatever_the_timer(
    notional: Decimal, rate: Decimal, cuts: list[int]
) -> None:
    ledger = Ledger()
    ledger.deposit_cash(ISSUER, notional)
    mint = MintRedeemRequest("m1", ISSUER, "AAPLx", RequestKind.MINT, D(1), 0)
    ledger.apply_request_update(
        mint, RequestUpdate(ISSUER, "m1", RequestState.PRICED, 0, notional), "kraken"
    )
    end = 10 * 86_400 * 10**9 + 1
    charged = sum((ledger.accrue_funding(t, rate) for t in sorted(cuts)), D(0))
    charged += ledger.accrue_funding(end, rate)
    with localcontext() as ctx:
        ctx.prec = 80
        exact = notional * rate * end / NS_PER_YEAR
    # each call rounds once, to half a quantum
    assert abs(charged - exact) <= (len(cuts) + 1) * FUNDING_QUANTUM / 2
    assert ledger.pnl({"AAPLx": notional}).funding == charged
    assert ledger.cash(ISSUER) == -charged


@given(
    mark=marks,
    asset=st.sampled_from([Currency.USD, "AAPLx"]),
    amount=qtys,
    fee_usd=money,
    fee_tokens=st.sampled_from([D(0), D("0.5"), D("0.000001")]),
    path=st.sampled_from(
        [
            (TransferState.SENT, TransferState.ARRIVED),
            (TransferState.ARRIVED,),
            (TransferState.SENT, TransferState.FAILED),
            (TransferState.SENT, TransferState.REJECTED),
            (TransferState.REJECTED,),
        ]
    ),
)
def test_a_transfer_changes_equity_only_by_its_fees(
    mark: Decimal,
    asset: str,
    amount: Decimal,
    fee_usd: Decimal,
    fee_tokens: Decimal,
    path: tuple[TransferState, ...],
) -> None:
    ledger = Ledger()
    ledger.deposit_cash("kraken", D(1_000_000))
    ledger.deposit_position("kraken", "AAPLx", D(5_000), mark)
    marks_ = {"AAPLx": mark}
    start = ledger.equity(marks_)
    if asset == Currency.USD:
        fee_tokens = D(0)
    t = Transfer("x1", "wire", asset, amount, "kraken", ISSUER, 0)
    assert ledger.track_transfer(t)
    for ts, state in enumerate(path, start=1):
        upd = TransferUpdate("wire", "x1", state, ts, fee_usd, fee_tokens)
        assert ledger.apply_transfer_update(t, upd)
        assert not ledger.apply_transfer_update(t, upd)
        left = path[0] is not TransferState.REJECTED
        cost = fee_usd + fee_tokens * mark if left else D(0)
        assert ledger.equity(marks_) == start - cost
        pnl = ledger.pnl(marks_)
        assert pnl.realized + pnl.unrealized == pnl.total == -cost
