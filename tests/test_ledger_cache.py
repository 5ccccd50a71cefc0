"""The ledger's ``version`` and what is reused while it stands still: the valuation terms behind
``pnl``/``equity``, the no-lock fast path of ``accrue_funding``, and the backtest's samples.

Every cached figure is checked against one computed from scratch: a fresh ledger replaying the
same operations (it has never valued anything), hand-rounded funding charges, and a fresh
snapshot at every sample of a real backtest.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.backtest.record import Sample
from bot.backtest.runner import Backtest
from bot.config import load_config
from bot.ledger import FUNDING_QUANTUM, NS_PER_YEAR, Ledger
from bot.ledger.reports import PnlBreakdown
from bot.model import (
    LegRole,
    MintRedeemRequest,
    RequestKind,
    RequestState,
    RequestUpdate,
    Side,
)
from tests.conftest import DEFAULT_CONFIG
from tests.test_ledger import fill, request, update

D = Decimal
S = 1_000_000_000
DAY_NS = 86_400 * S
TOKEN = "AAPLx"
STOCK = "AAPL"
ISSUER = "backed"
MARKS = {TOKEN: D("101.25"), STOCK: D("100.5")}
OTHER_MARKS = {TOKEN: D("99.125"), STOCK: D("100.75")}

Op = Callable[[Ledger], object]


def funded(ledger: Ledger) -> Ledger:
    ledger.deposit_cash("kraken", D(10_000))
    ledger.deposit_cash(ISSUER, D(50_000))
    return ledger


def hand_charge(notional: str, rate: str, dt_ns: int) -> Decimal:
    """notional x rate x dt / 365 days, rounded half-even to 1e-10 USD (the documented rule)."""
    with localcontext() as ctx:
        ctx.prec = 200
        exact = D(notional) * D(rate) * dt_ns / NS_PER_YEAR
        return exact.quantize(FUNDING_QUANTUM, rounding=ROUND_HALF_EVEN)


def changes_version(ledger: Ledger, op: Op) -> bool:
    before = ledger.version
    op(ledger)
    return ledger.version != before


def same_figures(a: Ledger, b: Ledger, marks: dict[str, Decimal]) -> None:
    """Equal values and equal Decimal representations (digits and exponent) everywhere."""
    assert repr(a.pnl(marks).as_dict()) == repr(b.pnl(marks).as_dict())
    assert repr(a.equity(marks)) == repr(b.equity(marks))
    assert repr(a.snapshot()) == repr(b.snapshot())


# -- version -------------------------------------------------------------------------------


def sampled_pnl(pnl: PnlBreakdown) -> dict[str, float]:
    """The ledger's PnL as a backtest samples it: floats, and no perpetual funding in a run
    without a perpetual (these runs have none)."""
    return {k: float(v) for k, v in pnl.as_dict().items() if k != "perp_funding"}


def test_version_moves_on_every_kind_of_change_and_on_nothing_else() -> None:
    ledger = Ledger()
    mint = request("m1", RequestKind.MINT, "10")
    redeem = request("r1", RequestKind.REDEEM, "5")
    moves: list[tuple[str, Op]] = [
        ("deposit cash", lambda b: b.deposit_cash(ISSUER, D(50_000))),
        ("deposit position", lambda b: b.deposit_position("kraken", TOKEN, D(20), D(100))),
        ("fill", lambda b: b.apply_fill(fill("t1", Side.BUY, "2", "100.5", fee="0.1"))),
        ("hedge fill", lambda b: b.apply_fill(fill("h1", Side.SELL, "2", "99", role=LegRole.HEDGE), 99.5)),
        ("track", lambda b: b.track_request(mint, "kraken")),
        ("priced", lambda b: b.apply_request_update(mint, update(mint, RequestState.PRICED, 0, "100", "1"), "kraken")),
        ("funding", lambda b: b.accrue_funding(60 * S, 0.05)),
        ("settled", lambda b: b.apply_request_update(mint, update(mint, RequestState.SETTLED, 90 * S), "kraken")),
        ("redeem accepted", lambda b: b.apply_request_update(redeem, update(redeem, RequestState.ACCEPTED, 120 * S), "kraken")),
        ("redeem canceled", lambda b: b.apply_request_update(redeem, update(redeem, RequestState.CANCELED, 150 * S), "kraken")),
        ("funding to the ends", lambda b: b.accrue_funding(200 * S, 0.05)),
    ]  # fmt: skip
    stills: list[tuple[str, Op]] = [
        ("duplicate fill", lambda b: b.apply_fill(fill("t1", Side.BUY, "2", "100.5", fee="0.1"))),
        ("duplicate track", lambda b: b.track_request(mint, "kraken")),
        ("stale update", lambda b: b.apply_request_update(mint, update(mint, RequestState.PRICED, 0, "100"), "kraken")),
        ("update after terminal", lambda b: b.apply_request_update(redeem, update(redeem, RequestState.PRICED, 0, "1"), "kraken")),
        ("funding, nothing new", lambda b: b.accrue_funding(200 * S, 0.05)),
        ("funding, no locks", lambda b: b.accrue_funding(DAY_NS, 0.05)),
        ("reads", lambda b: (b.pnl(MARKS), b.equity(MARKS), b.snapshot(), b.in_flight(TOKEN), b.cash(ISSUER), b.position("kraken", TOKEN), b.contributions)),
    ]  # fmt: skip
    for name, op in moves:
        assert changes_version(ledger, op), name
    for name, op in stills:
        assert not changes_version(ledger, op), name


def test_version_moves_when_an_update_is_refused_after_it_started_tracking() -> None:
    ledger = funded(Ledger())
    mint = request("m1", RequestKind.MINT, "10")
    before = ledger.version
    with pytest.raises(ValueError, match="without a price"):
        ledger.apply_request_update(mint, update(mint, RequestState.PRICED), "kraken")
    assert ledger.version > before  # the request is tracked: in_flight shows it
    assert [r.request_id for r in ledger.in_flight(TOKEN)] == ["m1"]
    before = ledger.version
    with pytest.raises(ValueError, match="qty"):
        ledger.apply_fill(fill("bad", Side.BUY, "0", "100"))
    assert ledger.version == before  # refused before anything moved


# -- funding -------------------------------------------------------------------------------


def test_accrue_funding_without_locks_charges_nothing_and_touches_nothing() -> None:
    ledger = funded(Ledger())
    ledger.apply_fill(fill("t1", Side.BUY, "3", "100", fee="0.5"))
    mint = request("m1", RequestKind.MINT, "10")
    ledger.track_request(mint, "kraken")  # unpriced: nothing locked yet
    before = (ledger.version, repr(ledger.snapshot()), repr(ledger.pnl(MARKS)))
    for now in (60 * S, 120 * S, DAY_NS):
        charged = ledger.accrue_funding(now, 0.05)
        assert charged == 0 and repr(charged) == "Decimal('0')"
    assert (ledger.version, repr(ledger.snapshot()), repr(ledger.pnl(MARKS))) == before


def test_heartbeat_charges_are_rounded_per_call_exactly_as_before() -> None:
    """A mint locks 1,001 USD from t=30 s to its settlement at t=605 s; a second one locks
    250.5 USD from t=300 s and is never settled. Heartbeats every 60 s charge each lock from
    where the previous call left it, each charge rounded on its own; the settled lock is charged
    up to its end once and then never again."""
    ledger = funded(Ledger())
    first = request("m1", RequestKind.MINT, "10")
    second = request("m2", RequestKind.MINT, "2.5")
    for now in (0, 10 * S):
        assert ledger.accrue_funding(now, 0.05) == 0  # before anything is locked
    ledger.apply_request_update(first, update(first, RequestState.PRICED, 30 * S, "100", "1"), "k")
    funded_to = {"m1": 30 * S}
    spot_checks = {  # computed apart: 1,001 x 5% x 30 s / 365 days is 0.0000476122526...
        1: D("0.0000476123"),  # 30 s of m1
        2: D("0.0000952245"),  # 60 s of m1: not twice the above, each call rounds on its own
        11: D("0.0000079354") + D("0.0000238299"),  # m1's last 5 s, 60 s of m2
    }
    expected_total = D(0)
    cash = ledger.cash(ISSUER)
    for beat in range(1, 16):
        now = beat * 60 * S
        if now == 300 * S:
            ledger.apply_request_update(
                second, update(second, RequestState.PRICED, now, "100", "0.5"), "k"
            )
            funded_to["m2"] = now
            cash = ledger.cash(ISSUER)
        if now == 660 * S:
            ledger.apply_request_update(first, update(first, RequestState.SETTLED, 605 * S), "k")
            cash = ledger.cash(ISSUER)
        expected = D(0)
        for rid, notional, end in (("m1", "1001", 605 * S), ("m2", "250.5", None)):
            if rid not in funded_to:
                continue
            upto = now if end is None else min(now, end)
            if upto > funded_to[rid]:
                expected += hand_charge(notional, "0.05", upto - funded_to[rid])
                funded_to[rid] = upto
        version = ledger.version
        charged = ledger.accrue_funding(now, 0.05)
        assert charged == expected, beat
        assert charged == spot_checks.get(beat, charged)
        assert ledger.version != version  # something was locked at every beat
        cash -= charged
        expected_total += charged
        assert ledger.cash(ISSUER) == cash
        assert ledger.accrue_funding(now, 0.05) == 0  # same instant: nothing more
    assert ledger.pnl(MARKS).funding == expected_total


def test_a_lock_ended_where_funding_stopped_is_dropped_without_a_charge() -> None:
    ledger = funded(Ledger())
    mint = request("m1", RequestKind.MINT, "365")
    ledger.apply_request_update(mint, update(mint, RequestState.PRICED, 0, "100"), "kraken")
    assert ledger.accrue_funding(DAY_NS, 0.1) == D(10)
    ledger.apply_request_update(mint, update(mint, RequestState.SETTLED, DAY_NS), "kraken")
    version, cash = ledger.version, ledger.cash(ISSUER)
    assert ledger.accrue_funding(2 * DAY_NS, 0.1) == 0
    assert (ledger.version, ledger.cash(ISSUER)) == (version, cash)
    assert ledger.pnl({TOKEN: D(100)}).funding == D(10)


# -- valuation reused per version ------------------------------------------------------------


def scripted_ops() -> list[Op]:
    mint = request("m1", RequestKind.MINT, "12")
    redeem = request("r1", RequestKind.REDEEM, "7")
    redeem2 = request("r2", RequestKind.REDEEM, "3")
    return [
        lambda b: b.deposit_cash("kraken", D(10_000)),
        lambda b: b.deposit_cash(ISSUER, D(50_000)),
        lambda b: b.deposit_position("kraken", TOKEN, D(20), D("100.123")),
        lambda b: b.apply_fill(fill("t1", Side.BUY, "3", "101.7", fee="0.26", gas="0.05")),
        lambda b: b.apply_fill(fill("t2", Side.SELL, "5", "102.03", fee="0.31")),
        lambda b: b.apply_fill(fill("h1", Side.SELL, "4", "100.49", venue="alpaca", instrument=STOCK, role=LegRole.HEDGE), 100.5),
        lambda b: b.apply_request_update(mint, update(mint, RequestState.PRICED, 0, "100.7", "1.2"), "kraken"),
        lambda b: b.accrue_funding(60 * S, 0.05),
        lambda b: b.apply_request_update(redeem, update(redeem, RequestState.ACCEPTED, 60 * S), "kraken"),
        lambda b: b.accrue_funding(120 * S, 0.05),
        lambda b: b.apply_request_update(redeem, update(redeem, RequestState.PRICED, 150 * S, "101.3", "0.7"), "kraken"),
        lambda b: b.apply_request_update(mint, update(mint, RequestState.SETTLED, 170 * S), "kraken"),
        lambda b: b.accrue_funding(180 * S, 0.05),
        lambda b: b.apply_request_update(redeem2, update(redeem2, RequestState.ACCEPTED, 180 * S), "kraken"),
        lambda b: b.apply_fill(fill("h2", Side.BUY, "4", "100.61", venue="alpaca", instrument=STOCK, role=LegRole.UNWIND), 100.5),
        lambda b: b.apply_request_update(redeem2, update(redeem2, RequestState.CANCELED, 200 * S), "kraken"),
        lambda b: b.apply_request_update(redeem, update(redeem, RequestState.SETTLED, 240 * S), "kraken"),
        lambda b: b.accrue_funding(300 * S, 0.05),
    ]  # fmt: skip


def test_pnl_after_every_change_equals_a_fresh_ledgers() -> None:
    """One ledger valued after every operation (and twice at two sets of marks in between)
    against a fresh ledger replaying the operations so far, valued once."""
    ops = scripted_ops()
    watched = Ledger()
    for n, op in enumerate(ops, 1):
        op(watched)
        fresh = Ledger()
        for earlier in ops[:n]:
            earlier(fresh)
        for marks in (MARKS, OTHER_MARKS, MARKS):
            same_figures(watched, fresh, marks)
    # deposited 20, bought 3, sold 5, redeemed 7, minted 12 (the other redeem came back)
    assert watched.position("kraken", TOKEN) == D(20) + 3 - 5 - 7 + 12
    assert watched.snapshot().mints == watched.snapshot().redeems == {}


def test_a_fill_after_a_valuation_shows_in_the_next_one() -> None:
    ledger = funded(Ledger())
    ledger.deposit_position("kraken", TOKEN, D(10), D(100))
    before = ledger.pnl(MARKS)
    assert before.unrealized == D("12.50")  # 10 x (101.25 - 100)
    assert ledger.equity(MARKS) == D(60_000) + D("1012.50")
    ledger.apply_fill(fill("t1", Side.BUY, "2", "101", fee="0.25"))
    after = ledger.pnl(MARKS)
    assert after.unrealized == D("12.50") + D("0.50")  # and 2 x (101.25 - 101)
    assert after.total == D("12.50") + D("0.50") - D("0.25")
    assert after.realized == -D("0.25") and after.venue_fees == D("0.25")
    assert ledger.equity(MARKS) == D(60_000) - D("202.25") + 12 * D("101.25")


def test_a_missing_mark_is_named_whatever_was_valued_before() -> None:
    ledger = funded(Ledger())
    ledger.apply_fill(fill("t1", Side.BUY, "2", "101"))
    ledger.apply_fill(fill("h1", Side.SELL, "2", "100", venue="alpaca", instrument=STOCK))
    ledger.pnl(MARKS)
    with pytest.raises(ValueError, match=f"no mark for {TOKEN}"):
        ledger.pnl({STOCK: D(100)})
    with pytest.raises(ValueError, match=f"no mark for {STOCK}"):
        ledger.equity({TOKEN: D(100)})
    assert ledger.pnl(MARKS).total == 2 * D("0.25") - 2 * D("0.5")


def _random_op(kind: int, i: int, qty: Decimal, price: Decimal) -> Op:
    rid = f"q{i % 3}"
    mint = MintRedeemRequest(rid, ISSUER, TOKEN, RequestKind.MINT, qty, requested_ns=0)
    redeem = MintRedeemRequest("x" + rid, ISSUER, TOKEN, RequestKind.REDEEM, qty, 0)
    ts = i * 60 * S
    ops: list[Op] = [
        lambda b: b.apply_fill(fill(f"t{i}", Side.BUY, str(qty), str(price), fee="0.01")),
        lambda b: b.apply_fill(fill(f"s{i}", Side.SELL, str(qty), str(price), gas="0.02")),
        lambda b: b.apply_fill(fill(f"t{i - 1}", Side.BUY, str(qty), str(price))),  # maybe a duplicate
        lambda b: b.apply_fill(fill(f"h{i}", Side.SELL, str(qty), str(price), venue="alpaca", instrument=STOCK, role=LegRole.HEDGE), 100.5),
        lambda b: b.apply_request_update(mint, update(mint, RequestState.PRICED, ts, str(price), "0.5"), "kraken"),
        lambda b: b.apply_request_update(mint, update(mint, RequestState.SETTLED, ts, str(price)), "kraken"),
        lambda b: b.apply_request_update(redeem, update(redeem, RequestState.ACCEPTED, ts), "kraken"),
        lambda b: b.apply_request_update(redeem, update(redeem, RequestState.PRICED, ts, str(price), "0.3"), "kraken"),
        lambda b: b.apply_request_update(redeem, update(redeem, RequestState.CANCELED, ts), "kraken"),
        lambda b: b.apply_request_update(mint, update(mint, RequestState.REJECTED, ts), "kraken"),
        lambda b: b.accrue_funding(ts, 0.05),
        lambda b: b.accrue_funding(ts + 30 * S, D("0.07")),
    ]  # fmt: skip
    return ops[kind % len(ops)]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 11),
            st.decimals(min_value=D("0.001"), max_value=D("50"), places=3),
            st.decimals(min_value=D("90"), max_value=D("110"), places=4),
        ),
        max_size=14,
    )
)
def test_random_histories_value_like_a_fresh_ledger(
    steps: list[tuple[int, Decimal, Decimal]],
) -> None:
    ops: list[Op] = [lambda b: b.deposit_cash("kraken", D(10_000)), funded_issuer]
    ops += [_random_op(kind, i, qty, price) for i, (kind, qty, price) in enumerate(steps, 1)]
    watched = Ledger()
    for n, op in enumerate(ops, 1):
        op(watched)
        fresh = Ledger()
        for earlier in ops[:n]:
            earlier(fresh)
        same_figures(watched, fresh, MARKS)
        same_figures(watched, fresh, OTHER_MARKS)


def funded_issuer(ledger: Ledger) -> None:
    ledger.deposit_cash(ISSUER, D(80_000))


# -- backtest samples ----------------------------------------------------------------------


def test_every_sample_shows_the_ledger_as_it_is_at_that_instant(calm_feed: Path) -> None:
    """Each sample of a real run against a fresh snapshot and PnL taken right after it; the
    reused dicts are shared only between samples where the ledger had not changed."""
    bt = Backtest(load_config(DEFAULT_CONFIG), feed=calm_feed)
    fresh: list[tuple[int, int, dict[str, float], dict[str, float], dict[str, float]]] = []
    sample = bt._sample

    def sample_then_look() -> None:
        engine = bt.engine
        recorded = len(bt.record.samples)
        sample()
        if len(bt.record.samples) == recorded:
            return  # no mark yet for a holding: nothing recorded
        snap = bt.ledger.snapshot()
        fresh.append(
            (
                len(bt.record.samples),
                bt.ledger.version,
                sampled_pnl(bt.ledger.pnl(engine.marks())),
                {
                    f"{venue}:{inst}": float(q)
                    for venue, bal in snap.venues.items()
                    for inst, q in bal.positions.items()
                },
                {venue: float(bal.cash) for venue, bal in snap.venues.items()},
            )
        )
        for token, s in zip(
            bt.settings.tokens, bt.record.samples[-len(bt.settings.tokens) :], strict=True
        ):
            mints, redeems = snap.mints.get(token), snap.redeems.get(token)
            assert s.in_flight_mints == (float(mints.qty) if mints else 0.0)
            assert s.in_flight_redeems == (float(redeems.qty) if redeems else 0.0)

    bt._sample = sample_then_look  # type: ignore[method-assign]
    bt.run()
    assert bt.engine.fills and bt.engine.request_log  # the run did trade and mint
    per_tick: list[tuple[int, Sample]] = []
    for count, version, pnl, inventory, cash in fresh:
        s = bt.record.samples[count - 1]
        assert s.pnl == pnl and list(s.pnl) == list(pnl)
        assert s.inventory == inventory and list(s.inventory) == list(inventory)
        assert s.cash == cash and list(s.cash) == list(cash)
        per_tick.append((version, s))
    changed = 0
    for (v0, s0), (v1, s1) in pairwise(per_tick):
        if v0 == v1:
            assert s1.inventory is s0.inventory and s1.cash is s0.cash
        elif s1.inventory != s0.inventory:
            changed += 1  # a fill or a settled mint between the two samples: new figures
    assert changed >= 1
    fill_ts = [f.ts_ns for f in bt.engine.fills]
    first_after = next(s for _, s in per_tick if s.ts_ns > fill_ts[0])
    before = [s for _, s in per_tick if s.ts_ns < fill_ts[0]][-1]
    assert first_after.inventory != before.inventory


def test_a_sample_after_a_change_shows_it_and_earlier_samples_keep_theirs(
    calm_feed: Path,
) -> None:
    """After the run the marks stand still, so only the ledger moves between these samples."""
    bt = Backtest(load_config(DEFAULT_CONFIG), feed=calm_feed)
    bt.run()
    token = next(iter(bt.settings.tokens))
    issuer = bt.settings.tokens[token].issuer
    ledger = bt.ledger

    def take() -> Sample:
        bt._sample()
        return bt.record.samples[-len(bt.settings.tokens)]

    first = take()
    kept = (dict(first.pnl), dict(first.inventory), dict(first.cash))
    assert take().inventory is first.inventory  # nothing changed: the same figures
    held, kraken_cash, issuer_cash = (
        ledger.position("kraken", token),
        ledger.cash("kraken"),
        ledger.cash(issuer),
    )
    before = ledger.pnl(bt.engine.marks())

    ledger.apply_fill(fill("after-1", Side.BUY, "1.5", "100.25", fee="0.75", venue="kraken"))
    bought = take()
    assert bought.inventory[f"kraken:{token}"] == float(held + D("1.5"))
    assert bought.cash["kraken"] == float(kraken_cash - D("151.125"))  # 1.5 x 100.25 + 0.75
    assert bought.pnl["venue_fees"] == float(before.venue_fees + D("0.75"))
    assert bought.pnl == sampled_pnl(ledger.pnl(bt.engine.marks()))

    mint = MintRedeemRequest("after-m", issuer, token, RequestKind.MINT, D(10), 0)
    now = bt.clock.now_ns()
    ledger.apply_request_update(
        mint, RequestUpdate(issuer, "after-m", RequestState.PRICED, now, D(100), D(1)), "kraken"
    )
    minting = take()
    assert (minting.in_flight_mints, bought.in_flight_mints) == (10.0, 0.0)
    assert minting.cash[issuer] == float(issuer_cash - D(1001))

    charged = ledger.accrue_funding(now + DAY_NS, D("0.0365"))
    assert charged == D("0.1001")  # 1,001 x 3.65% / 365 for one day
    funded = take()
    assert funded.pnl["funding"] == float(before.funding + charged)
    assert funded.cash[issuer] == float(issuer_cash - D(1001) - charged)
    assert funded.pnl["total"] == float(ledger.pnl(bt.engine.marks()).total)
    assert (dict(first.pnl), dict(first.inventory), dict(first.cash)) == kept
