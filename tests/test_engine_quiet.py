"""The engine honours a strategy's promises (strategies.base.Quiet): while a token is quiet, or
held with every price inside its bands, market events are passed over and counted; anything
else reaches ``on_market``; issuer events always reach the strategy."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bot.backtest.runner import Backtest
from bot.config import Settings, load_config
from bot.feeds import schema
from bot.intents import Intent
from strategies.base import Quiet, StrategyContext
from strategies.mint_redeem import MintRedeemStrategy
from strategies.opportunity import NEVER
from tests.conftest import DEFAULT_CONFIG


class Listening(MintRedeemStrategy):
    """Records which tokens ``on_market`` and ``on_issuer_event`` were called for; decides
    nothing. Its ``Quiet`` is the test's to set."""

    def __init__(self, config: Settings) -> None:
        super().__init__(config)
        self.calls: list[str] = []
        self.promise = Quiet("AAPLx")

    def quiet(self, token: str) -> Quiet:
        return self.promise

    def on_market(self, ctx: StrategyContext, token: str) -> list[Intent] | None:
        self.calls.append(token)
        return None

    def on_issuer_event(self, ctx: StrategyContext, token: str) -> list[Intent] | None:
        self.calls.append("issuer:" + token)
        return None


@pytest.fixture()
def bt(calm_feed: Path) -> Backtest:
    run = Backtest(load_config(DEFAULT_CONFIG), feed=calm_feed, strategy=Listening)
    run.engine.start()  # until then every event only updates the market state
    return run


def _strategy(bt: Backtest) -> Listening:
    assert isinstance(bt.strategy, Listening)
    return bt.strategy


def test_a_quiet_token_is_passed_over_until_its_time_and_each_event_counted(bt: Backtest) -> None:
    s = _strategy(bt)
    bt.clock.now = 1_000
    s.promise.until_ns = 2_000
    quote = bt.engine.quote_handler("AAPL")
    quote(230.0, 100.0, 230.02, 100.0, 1_000)
    bt.engine.on_book_top("kraken", "AAPLx", 231.0, 5.0, 231.2, 5.0, 1_000)
    assert s.calls == [] and s.promise.events == 2
    assert bt.market.quotes["AAPL"].bid == 230.0  # the state is updated all the same
    bt.clock.now = 2_000
    quote(230.01, 100.0, 230.03, 100.0, 2_000)
    assert s.calls == ["AAPLx"] and s.promise.events == 2


def test_a_held_token_is_passed_over_only_while_every_price_stays_in_its_band(
    bt: Backtest,
) -> None:
    s = _strategy(bt)
    bt.clock.now = 1_000
    s.promise.hold_until_ns = 5_000
    s.promise.band("alpaca", "AAPL").set(229.9, 230.1, 229.95, 230.15)
    quote = bt.engine.quote_handler("AAPL")
    quote(230.0, 100.0, 230.02, 100.0, 1_000)  # inside
    quote(229.9, 100.0, 230.15, 100.0, 1_000)  # on the edges: inside
    assert s.calls == [] and s.promise.events == 2
    quote(230.11, 100.0, 230.12, 100.0, 1_000)  # bid above its band
    quote(230.0, 100.0, 229.94, 100.0, 1_000)  # ask below its band
    quote(230.05, 100.0, 230.0, 100.0, 1_000)  # both inside, but crossed
    quote(math.nan, 0.0, 230.0, 100.0, 1_000)  # a side missing
    assert s.calls == ["AAPLx"] * 4 and s.promise.events == 2
    # an instrument without a band set is unbounded; a blocked one always calls
    bt.engine.on_book_top("kraken", "AAPLx", 231.0, 5.0, 231.2, 5.0, 1_000)
    assert len(s.calls) == 4 and s.promise.events == 3
    s.promise.band("kraken", "AAPLx").set(math.inf, -math.inf, math.inf, -math.inf)  # empty
    bt.engine.on_book_top("kraken", "AAPLx", 231.0, 5.0, 231.2, 5.0, 1_000)
    assert len(s.calls) == 5
    bt.clock.now = 5_000  # the hold has run out
    quote(230.0, 100.0, 230.02, 100.0, 5_000)
    assert len(s.calls) == 6 and s.promise.events == 3


def test_issuer_events_always_reach_the_strategy(bt: Backtest) -> None:
    s = _strategy(bt)
    s.promise.until_ns = 10**19
    bt.engine.on_issuer_event("xstocks", "AAPLx", schema.ISSUER_PAUSED, None, None)
    assert s.calls == ["issuer:AAPLx"]
    assert bt.market.issuers["xstocks"].paused


def test_the_real_strategy_books_passed_over_events_as_repeats_and_lifts_its_promises(
    calm_feed: Path,
) -> None:
    bt = Backtest(load_config(DEFAULT_CONFIG), feed=calm_feed)
    strategy = bt.strategy
    assert isinstance(strategy, MintRedeemStrategy)
    record = bt.run()
    watch = strategy.quiet("AAPLx")
    assert watch.events == 0  # booked when the run stopped
    assert sum(d.repeats for d in record.decisions) <= record.summary["events"]
    watch.until_ns, watch.hold_until_ns = 10**19, 10**19
    strategy.on_issuer_event(bt.engine, "AAPLx")  # a lifecycle event lifts every promise,
    assert watch.until_ns == 0  # then the token is looked at afresh: in the calm feed's last
    assert watch.hold_until_ns == NEVER  # state no venue is near a threshold, until forever


def test_a_lost_connection_marks_its_source_stale_and_lifts_every_promise(bt: Backtest) -> None:
    from connectors.base import ConnectionState

    s = _strategy(bt)
    s.promise.until_ns = 10**19
    bt.engine.on_connection("kraken", ConnectionState.RECONNECTING, "socket closed")
    assert bt.market.disconnected == {"kraken": "reconnecting"}
    # MintRedeemStrategy.on_connection is a lifecycle event: the strategy's own promises lift
    assert all(st.watch.until_ns == 0 for st in s._tokens.values())
    bt.engine.on_connection("kraken", ConnectionState.CONNECTED)
    assert bt.market.disconnected == {}


def test_before_the_engine_starts_events_update_the_market_but_reach_no_strategy(
    calm_feed: Path,
) -> None:
    """A live run values its holdings on the first quotes before it trades: until
    ``Engine.start`` no event reaches the strategy, and nothing it could answer is acted on."""
    run = Backtest(load_config(DEFAULT_CONFIG), feed=calm_feed, strategy=Listening)
    s = _strategy(run)
    run.clock.now = 1_000
    run.engine.quote_handler("AAPL")(230.0, 100.0, 230.02, 100.0, 1_000)
    run.engine.on_book_top("kraken", "AAPLx", 231.0, 5.0, 231.2, 5.0, 1_000)
    run.engine.on_issuer_event("xstocks", "AAPLx", "paused", None, None)
    assert s.calls == [] and run.market.quotes["AAPL"].bid == 230.0
    run.engine.start()
    run.engine.quote_handler("AAPL")(230.01, 100.0, 230.03, 100.0, 1_000)
    assert s.calls == ["AAPLx"]
