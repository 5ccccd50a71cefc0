"""The capital cycle end to end: on a launch premium the issuer account drains into exchange and
wallet cash; with the rebalancer on it is refilled by wires and ramps and the strategy keeps
minting, and summary.json's ``transfers`` adds up exactly what the transfer venues answered."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from bot.backtest.record import RunRecord
from bot.backtest.runner import Backtest
from bot.config import Settings, load_config
from bot.feeds.synth import generate
from bot.model import Currency, RequestKind, TransferState
from tests.conftest import DEFAULT_CONFIG

ISSUER_CASH = Decimal(150_000)  # a quarter of the default: the premium drains it in hours


@pytest.fixture(scope="module")
def premium_feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("feeds") / "launch-premium-2d"
    generate("launch-premium", 2, 7, out)
    return out


def _settings(rebalance: bool) -> Settings:
    base = load_config(DEFAULT_CONFIG, environ={})
    cash = {**base.backtest.initial_cash_usd, "xstocks": ISSUER_CASH}
    return base.model_copy(
        update={
            "backtest": base.backtest.model_copy(update={"initial_cash_usd": cash}),
            "rebalance": base.rebalance.model_copy(update={"enabled": rebalance}),
        }
    )


def _run(feed: Path, rebalance: bool) -> tuple[Backtest, RunRecord]:
    bt = Backtest(_settings(rebalance), feed=feed)
    return bt, bt.run()


@pytest.fixture(scope="module")
def dry(premium_feed: Path) -> tuple[Backtest, RunRecord]:
    return _run(premium_feed, rebalance=False)


@pytest.fixture(scope="module")
def cycled(premium_feed: Path) -> tuple[Backtest, RunRecord]:
    return _run(premium_feed, rebalance=True)


def _last_mint_ns(bt: Backtest) -> int:
    mints = bt.engine.executor.requests.values()
    return max(r.requested_ns for r in mints if r.kind is RequestKind.MINT)


def test_rebalancing_refills_the_issuer_account_and_the_strategy_keeps_minting(
    dry: tuple[Backtest, RunRecord], cycled: tuple[Backtest, RunRecord]
) -> None:
    (dry_bt, dry_record), (cycled_bt, cycled_record) = dry, cycled
    assert dry_record.summary["transfers"]["count"] == 0
    assert dry_bt.engine.transfer_log == []
    arrived_at_issuer = [
        t
        for t, u in cycled_bt.engine.transfer_log
        if u.state is TransferState.ARRIVED and t.destination == "xstocks"
    ]
    assert arrived_at_issuer
    assert cycled_record.summary["mints"] > dry_record.summary["mints"]
    assert _last_mint_ns(cycled_bt) > _last_mint_ns(dry_bt)
    assert cycled_bt.ledger.cash("xstocks") > dry_bt.ledger.cash("xstocks")


def test_summary_transfers_are_the_sums_of_what_the_transfer_venues_answered(
    cycled: tuple[Backtest, RunRecord],
) -> None:
    bt, record = cycled
    log = bt.engine.transfer_log
    sent = [(t, u) for t, u in log if u.state is TransferState.SENT]
    arrived = [t for t, u in log if u.state is TransferState.ARRIVED]
    assert sent and len({t.transfer_id for t, _ in sent}) == len(sent)
    summary = record.summary["transfers"]
    assert summary["count"] == len(sent)
    assert summary["by_route"] == dict(sorted(Counter(t.route for t, _ in sent).items()))
    assert summary["fees_usd"] == sum((u.fee_usd for _, u in sent), Decimal(0))
    fee_tokens: dict[str, Decimal] = {}
    moved: dict[str, Decimal] = {}
    for t, u in sent:
        if u.fee_tokens:
            fee_tokens[t.asset] = fee_tokens.get(t.asset, Decimal(0)) + u.fee_tokens
    for t in arrived:
        moved[t.asset] = moved.get(t.asset, Decimal(0)) + t.amount
    assert summary["fee_tokens"] == fee_tokens
    assert summary["moved"] == moved and Currency.USD in moved
    in_transit = {a: bt.ledger.in_transit(a) for a in (Currency.USD, *bt.settings.tokens)}
    assert summary["in_transit"] == {a: q for a, q in in_transit.items() if q}
    # the PnL component: the USD fees, plus the cost basis of any tokens paid as fees
    transfer_fees = Decimal(record.summary["pnl_components"]["transfer_fees"])
    assert (transfer_fees > summary["fees_usd"]) is bool(fee_tokens)
    assert sum(summary["by_state"].values()) == len({t.transfer_id for t, _ in log})
    assert len(record.transfers) == len(log)
