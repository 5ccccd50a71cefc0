"""A long-lived daemon keeps only the last ``run.history`` decisions, fills, answers and ended
orders in memory (the journal and the logs keep everything): the engine trades exactly as it
does with everything kept, its totals are counted, and a late answer for an order that left
memory still reaches the ledger."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from bot.backtest.runner import Backtest
from bot.model import Fill, LegRole, Side
from tests import mm_world

HISTORY = 100


def test_bounded_history_trades_exactly_as_unbounded_and_counts_the_totals(
    tmp_path: Path,
) -> None:
    feed = mm_world.write_feed(tmp_path / "feed", 3, seconds=600)
    cfg = mm_world.settings(tmp_path, feed.path, hedge=True, gamma=0.01, requote_bps=0.5)
    full, kept = Backtest(cfg), Backtest(cfg, history=HISTORY)
    full.run()
    kept.run()
    engine = kept.engine
    # the same trading: every fill and the ledger's books
    assert [f.trade_id for f in engine.fills] == [f.trade_id for f in full.engine.fills][-HISTORY:]
    assert engine.counters == full.engine.counters
    assert kept.ledger.snapshot() == full.ledger.snapshot()
    # memory: the last HISTORY of each, the orders still working, and the totals counted
    ended_all = [o for o in full.engine.executor.orders.values() if o.state.is_terminal]
    assert len(ended_all) > 3 * HISTORY  # the run made enough orders to drop some
    orders = engine.executor.orders
    assert len(orders) <= HISTORY + len(engine.executor.open_orders())
    assert len(engine.decisions) == min(HISTORY, len(full.engine.decisions))
    assert engine.counters["decisions"] == len(full.engine.decisions)
    assert engine.counters["trades"] == len(full.engine.fills) > HISTORY
    # an answer for an order that left memory: the ledger books it once, nothing breaks
    gone = next(o for o in ended_all if o.client_id not in orders)
    late = Fill(gone.venue, gone.instrument, gone.client_id, "late-1", Side.BUY, Decimal(1),
                Decimal(100), kept.clock.now_ns(), role=LegRole.QUOTE, group_id=gone.group_id)  # fmt: skip
    before = kept.ledger.position(gone.venue, gone.instrument)
    engine.on_fill(late)
    engine.on_fill(late)  # again: applied once
    assert kept.ledger.position(gone.venue, gone.instrument) == before + 1
