"""Transfers through the real engine and the simulated transfer network: bank wires against the
cut-off, weekends and NYSE holidays, ramps and token withdrawals with their exact fees, failures
and refusals that return or keep the funds, and the requester told of every answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from pathlib import Path

import pytest

from bot.backtest.runner import Backtest
from bot.config import RebalanceConfig, Settings, TransferRouteConfig, load_config
from bot.intents import Intent, RequestTransfer
from bot.model import Currency, Transfer, TransferState
from bot.sessions import eastern_ns
from strategies.base import StrategyContext
from tests.conftest import DEFAULT_CONFIG
from tests.user_strategy import NoTrades

D = Decimal
USD = Currency.USD
MS = 1_000_000
S = 1_000_000_000
HOUR = 3600 * S
# Thanksgiving week 2026: Monday 23rd to Friday 27th (a half day), Thursday 26th a holiday
MONDAY, TUESDAY, WEDNESDAY = date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25)
FRIDAY, SATURDAY, NEXT_MONDAY = date(2026, 11, 27), date(2026, 11, 28), date(2026, 11, 30)
SENT, ARRIVED, FAILED, REJECTED = (
    TransferState.SENT,
    TransferState.ARRIVED,
    TransferState.FAILED,
    TransferState.REJECTED,
)

ROUTES = {
    "wire": TransferRouteConfig(
        kind="bank_wire",
        source="kraken",
        destination="xstocks",
        fee_flat_usd=D("15"),
        latency_s=2 * 3600,
        opens=time(9, 0),
        cutoff=time(17, 0),
    ),
    "ramp": TransferRouteConfig(
        kind="usdc_ramp", source="uniswap", destination="xstocks", fee_bps=D("3"), latency_s=900
    ),
    "withdraw": TransferRouteConfig(
        kind="token_withdrawal",
        source="kraken",
        destination="uniswap",
        assets=["AAPLx"],
        fee_flat_tokens=D("0.02"),
        gas_usd=D("4"),
        latency_s=1200,
    ),
    "bounce": TransferRouteConfig(
        kind="usdc_ramp", source="uniswap", destination="xstocks", latency_s=600, fail_rate=1.0
    ),
}


class Desk(NoTrades):
    """A strategy that trades nothing: it asks for the transfers queued in ``asks`` on its next
    call (start or timer) and keeps every transfer it is told about."""

    name = "desk"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.asks: list[Intent] = []
        self.told: list[tuple[str, TransferState, str]] = []

    def _asks(self) -> list[Intent]:
        asks, self.asks = self.asks, []
        return asks

    def on_start(self, ctx: StrategyContext) -> list[Intent] | None:
        return self._asks()

    def on_timer(self, ctx: StrategyContext, name: str) -> list[Intent] | None:
        return self._asks()

    def on_transfer(self, ctx: StrategyContext, transfer: Transfer) -> list[Intent] | None:
        self.told.append((transfer.transfer_id, transfer.state, transfer.reason.split(":")[0]))
        return None


@dataclass
class Run:
    bt: Backtest
    desk: Desk

    def ask_at(self, ts_ns: int, *asks: Intent) -> None:
        """Start the engine at ``ts_ns`` with ``asks`` (heartbeats then come every minute)."""
        self.bt.clock.now = ts_ns
        self.desk.asks = list(asks)
        self.bt.engine.start()

    def until(self, ts_ns: int) -> None:
        self.bt.clock.advance_to(ts_ns)

    def answers(self) -> list[tuple[str, TransferState, int]]:
        return [(t.transfer_id, u.state, u.ts_ns) for t, u in self.bt.engine.transfer_log]


@pytest.fixture()
def run(calm_feed: Path) -> Run:
    base = load_config(DEFAULT_CONFIG)
    settings = base.model_copy(
        update={"transfers": ROUTES, "rebalance": RebalanceConfig(enabled=False)}
    )
    bt = Backtest(settings, feed=calm_feed, strategy=Desk)
    assert isinstance(bt.strategy, Desk)
    return Run(bt, bt.strategy)


def wire(amount: str) -> RequestTransfer:
    return RequestTransfer("wire", USD, D(amount), "kraken", "xstocks", fee_usd=D("15"))


def test_a_wire_before_the_cutoff_leaves_at_once_and_lands_after_two_business_hours(
    run: Run,
) -> None:
    ledger = run.bt.ledger
    run.ask_at(eastern_ns(MONDAY, time(14, 0)), wire("40000"))
    [t] = run.bt.engine.executor.transfers.values()
    assert (t.state, ledger.cash("kraken")) == (TransferState.PENDING_SUBMIT, D("100000"))
    assert ledger.available("kraken", USD) == D("59985")  # amount and fee held back

    left = eastern_ns(MONDAY, time(14, 0)) + 50 * MS  # after the request leg
    run.until(left + 50 * MS)  # and the answer leg
    assert ledger.cash("kraken") == D("59985")
    assert ledger.in_transit(USD) == D("40000")
    assert ledger.cash("xstocks") == D("600000")

    run.until(eastern_ns(TUESDAY))
    assert run.answers() == [(t.transfer_id, SENT, left), (t.transfer_id, ARRIVED, left + 2 * HOUR)]
    assert ledger.cash("xstocks") == D("640000")
    assert ledger.in_transit(USD) == D(0)
    assert ledger.pnl({}).transfer_fees == D("15")
    assert run.desk.told == [(t.transfer_id, SENT, ""), (t.transfer_id, ARRIVED, "")]


def test_business_hours_left_at_the_cutoff_carry_over_to_the_next_business_morning(
    run: Run,
) -> None:
    submitted = eastern_ns(MONDAY, time(15, 30))
    run.ask_at(submitted, wire("10000"))
    run.until(eastern_ns(WEDNESDAY))
    left = submitted + 50 * MS
    # 1.5 hours to the 17:00 cut-off, the other half hour from Tuesday's 09:00 opening
    arrived = eastern_ns(TUESDAY, time(9, 30)) + 50 * MS
    assert [(s, ts) for _, s, ts in run.answers()] == [(SENT, left), (ARRIVED, arrived)]


def test_a_wire_after_the_cutoff_before_thanksgiving_leaves_on_friday(run: Run) -> None:
    run.ask_at(eastern_ns(WEDNESDAY, time(17, 30)), wire("10000"))
    run.until(eastern_ns(FRIDAY, time(8, 59)))
    assert [s for _, s, _ in run.answers()] == []  # Thursday is an NYSE holiday: no wires
    assert run.bt.ledger.cash("kraken") == D("100000")
    run.until(eastern_ns(SATURDAY))
    friday_open = eastern_ns(FRIDAY, time(9, 0))
    assert [(s, ts) for _, s, ts in run.answers()] == [
        (SENT, friday_open),
        (ARRIVED, friday_open + 2 * HOUR),
    ]
    assert run.bt.ledger.cash("xstocks") == D("610000")


def test_a_wire_asked_for_on_a_saturday_leaves_on_monday_morning(run: Run) -> None:
    run.ask_at(eastern_ns(SATURDAY, time(11, 0)), wire("10000"))
    run.until(eastern_ns(NEXT_MONDAY, time(12, 0)))
    monday_open = eastern_ns(NEXT_MONDAY, time(9, 0))
    assert [(s, ts) for _, s, ts in run.answers()] == [
        (SENT, monday_open),
        (ARRIVED, monday_open + 2 * HOUR),
    ]


def test_a_usdc_ramp_runs_on_a_saturday_and_charges_its_bps(run: Run) -> None:
    ledger = run.bt.ledger
    start = eastern_ns(SATURDAY, time(3, 0))
    ramp = RequestTransfer("ramp", USD, D("20000"), "uniswap", "xstocks", fee_usd=D("6"))
    run.ask_at(start, ramp)
    run.until(start + HOUR)
    left = start + 50 * MS
    assert [(s, ts) for _, s, ts in run.answers()] == [(SENT, left), (ARRIVED, left + 900 * S)]
    assert ledger.cash("uniswap") == D("50000") - D("20000") - D("6")  # 3 bps of 20,000
    assert ledger.cash("xstocks") == D("620000")
    [(_, sent), _] = run.bt.engine.transfer_log
    assert (sent.fee_usd, sent.fee_tokens) == (D("6"), D(0))


def test_a_token_withdrawal_pays_its_fee_in_tokens_and_its_gas_in_usd(run: Run) -> None:
    ledger = run.bt.ledger
    ledger.deposit_position("kraken", "AAPLx", D("200"), D("230"))
    start = eastern_ns(MONDAY, time(20, 0))
    withdraw = RequestTransfer(
        "withdraw", "AAPLx", D("50"), "kraken", "uniswap", fee_usd=D("4"), fee_tokens=D("0.02")
    )
    run.ask_at(start, withdraw)
    run.until(start + 100 * MS)
    assert ledger.position("kraken", "AAPLx") == D("149.98")
    assert ledger.cash("kraken") == D("99996")
    assert ledger.in_transit("AAPLx") == D("50")
    run.until(start + HOUR)
    assert ledger.position("uniswap", "AAPLx") == D("50")
    assert ledger.in_transit("AAPLx") == D(0)
    assert ledger.pnl({"AAPLx": D("240")}).transfer_fees == D("4") + D("0.02") * D("230")


def test_a_failed_transfer_comes_back_to_its_source_and_keeps_its_fee(run: Run) -> None:
    ledger = run.bt.ledger
    start = eastern_ns(MONDAY, time(10, 0))
    run.ask_at(start, RequestTransfer("bounce", USD, D("30000"), "uniswap", "xstocks"))
    run.until(start + 100 * MS)
    assert ledger.cash("uniswap") == D("20000")
    run.until(start + HOUR)
    [sent, failed] = run.answers()
    assert (failed[1], failed[2]) == (FAILED, start + 50 * MS + 600 * S)
    assert ledger.cash("uniswap") == D("50000")
    assert ledger.cash("xstocks") == D("600000")
    assert run.desk.told[-1] == (sent[0], FAILED, "RETURNED")


def test_risk_refuses_a_transfer_the_source_cannot_pay_and_tells_the_requester(
    run: Run,
) -> None:
    start = eastern_ns(MONDAY, time(10, 0))
    run.ask_at(start, wire("60000"), wire("39990"))  # the second would overdraw by 5 cents
    refused = run.bt.engine.executor.transfers["pb-t-00000002"]
    assert refused.state is REJECTED
    assert refused.reason == "transfer takes 40005 USD from kraken: 39985 available"
    assert run.desk.told == [("pb-t-00000002", REJECTED, "transfer takes 40005 USD from kraken")]
    assert run.bt.risk.rejections["overdraw"] == 1
    run.until(start + HOUR)
    assert run.bt.ledger.cash("kraken") == D("39985")


def test_a_wire_the_source_can_no_longer_pay_when_it_leaves_is_refused_and_moves_nothing(
    run: Run,
) -> None:
    ledger = run.bt.ledger
    run.ask_at(eastern_ns(SATURDAY, time(11, 0)), wire("90000"))
    ledger.deposit_cash("kraken", D("-50000"))  # spent before the wire leaves on Monday
    run.until(eastern_ns(NEXT_MONDAY, time(12, 0)))
    [(tid, state, ts)] = run.answers()
    assert (state, ts) == (REJECTED, eastern_ns(NEXT_MONDAY, time(9, 0)))
    assert run.desk.told == [(tid, REJECTED, "INSUFFICIENT_FUNDS")]
    assert ledger.cash("kraken") == D("50000")
    assert ledger.open_transfers() == []


def test_the_network_refuses_a_route_that_does_not_go_that_way(run: Run) -> None:
    start = eastern_ns(MONDAY, time(10, 0))
    run.bt.ledger.deposit_position("uniswap", "AAPLx", D("10"), D("230"))
    wrong = RequestTransfer("withdraw", "AAPLx", D("5"), "uniswap", "alpaca")
    run.ask_at(start, wrong)
    run.until(start + HOUR)
    assert [s for _, s, _ in run.answers()] == [REJECTED]
    assert run.desk.told[0][1:] == (REJECTED, "WRONG_WAY")
    assert run.bt.ledger.position("uniswap", "AAPLx") == D("10")
