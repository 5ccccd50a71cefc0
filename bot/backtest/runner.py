"""Assemble a run from a config and a feed, replay it, and produce the run record.

``Backtest`` is used by ``pegbot backtest`` (as fast as possible), by the daemon (paced on the
wall clock) and by ``make bench``: one assembly, one kernel. It builds the simulated clock,
calendar, market state, simulated venues, ledger, risk, strategy and engine; checks that the feed
holds every instrument the config trades; replays; and summarises.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from bot.amm.price import price_from_sqrt_price_x96
from bot.amm.v3_pool import TICK_SPACING_BY_FEE, V3Pool
from bot.backtest.group_results import group_results
from bot.backtest.perp_summary import hedge_by_venue, perp_summary
from bot.backtest.record import RequestMark, RunRecord, Sample, TradeMark
from bot.backtest.replay import (
    ROW_COLUMNS,
    TOP_COLUMNS,
    Pacer,
    PoolFeedSink,
    RunAhead,
    replay,
)
from bot.backtest.summary import max_drawdown
from bot.backtest.transfers_summary import transfer_marks, transfers_summary
from bot.clock import SimClock, Stopwatch
from bot.config import Settings
from bot.errors import FeedError
from bot.feeds.io import FeedReader
from bot.feeds.schema import RUN_STARTED, EventKind
from bot.logging import get_logger, set_time_source
from bot.market import PoolInfo, PoolMarket
from bot.model import Order
from bot.node import OPEN_CHECK_S, Node, calendar_around
from bot.perp.contracts import perp_contracts
from connectors.sim import SimPool
from connectors.sim.adapters import sim_adapters
from strategies.base import Strategy

log = get_logger("pegbot.backtest")


MICRO_USD = Decimal("0.000001")
PACED_BATCH_ROWS = 4096


def fill_rate(orders: Iterable[Order]) -> float | None:
    """The share of the quantity ordered that filled, over every order the run made (risk
    rejections included: nothing of them fills); None when it made none."""
    ordered = filled = Decimal(0)
    for order in orders:
        ordered += order.qty
        filled += order.filled_qty
    return float(filled / ordered) if ordered else None


def _usd(x: Decimal) -> Decimal:
    """Summary money: the ledger is exact to many digits; a report shows micro-dollars."""
    return x.quantize(MICRO_USD)


class Backtest:
    """One assembled run. ``run()`` replays the whole feed and returns the ``RunRecord``."""

    def __init__(
        self,
        settings: Settings,
        *,
        feed: Path | None = None,
        seed: int | None = None,
        log_pnl_every: int = 0,
        strategy: Callable[[Settings], Strategy] | None = None,
        window_start_ns: int | None = None,
        window_end_ns: int | None = None,
        history: int | None = None,
    ) -> None:
        """``strategy`` builds the strategy from the settings (default: the one
        ``strategy.name`` names); ``window_start_ns``/``window_end_ns`` limit the replay to that
        window of the feed (``FeedReader``: state rows before the start are applied at the
        start); ``history`` bounds what the engine keeps in memory as a daemon's does (None:
        everything, which the record and report need)."""
        self.settings = settings
        self.feed_path = Path(feed or settings.backtest.feed)
        self.reader = FeedReader(self.feed_path, start_ns=window_start_ns, end_ns=window_end_ns)
        self._check_feed()
        start_ns = self.reader.start_ns or 0
        end_ns = self.reader.end_ns or start_ns
        seed = settings.backtest.seed if seed is None else seed
        self.seed = seed
        self.log_pnl_every = log_pnl_every
        self.events_so_far = 0
        self.interrupted = False

        self.clock = SimClock(start_ns)
        set_time_source(self.clock.now_ns)  # log lines carry simulated time
        self.node = Node(
            settings,
            self.clock,
            calendar_around(start_ns, end_ns),
            partial(sim_adapters, seed=seed),
            strategy=strategy(settings) if strategy is not None else None,
            history=history,
        )
        node = self.node
        self.calendar = node.calendar
        self.market = node.market
        self.tokens = node.tokens
        self.issuer_rules = node.issuer_rules
        self.venues = node.venues
        self.issuers = node.issuers
        self.ledger = node.ledger
        self.risk = node.risk
        self.strategy = node.strategy
        self.engine = node.engine
        self.exposure = node.exposure
        self.pool_sinks: dict[str, PoolFeedSink] = {}
        for account, amount in settings.backtest.initial_cash_usd.items():
            self.ledger.deposit_cash(account, amount)
        self.record = RunRecord(config_name=str(self.feed_path))
        self._pnl_series: list[float] = []
        self._tokens_deposited = False
        self.opened_ns: int | None = None  # when the strategy started (holdings booked)
        # a recording of a run (it has a RUN row) opens where the run's strategy started
        self._await_run_start = any(
            int(EventKind.RUN) in entry.get("kinds", ())
            for entry in self.reader.manifest.get("instruments", ())
        )
        self._period_ns = int(settings.backtest.sample_interval_s * 1e9)
        self._has_perp = bool(perp_contracts(settings))

    # ---- feed checks -----------------------------------------------------------------------
    def _check_feed(self) -> None:
        have = self.reader.instruments
        venues_in_feed = {v for v, _ in have}
        missing: list[str] = []
        for sym, stock in self.settings.stocks.items():
            if (stock.broker, sym) not in have:
                missing.append(f"stock {sym} at {stock.broker}")
        for sym, tok in self.settings.tokens.items():
            for venue in tok.venues:
                kind = self.settings.venues[venue].kind
                if kind == "pool":
                    if venue not in venues_in_feed:
                        missing.append(f"token {sym} pool {venue}")
                elif (venue, sym) not in have:
                    missing.append(f"token {sym} at {venue}")
        if missing:
            raise FeedError(
                f"feed {self.feed_path} lacks instruments the config trades: {', '.join(missing)}"
            )

    # ---- pools -------------------------------------------------------------------------------
    def _on_pool_state(self, venue: str, instrument: str, row: dict[str, Any]) -> None:
        if venue not in self.settings.venues or venue in self.market.pools:
            return
        try:
            params = json.loads(row["value"] or "{}")
            fee = int(params["fee"])
            pool = V3Pool(
                fee,
                int(params.get("tick_spacing", TICK_SPACING_BY_FEE.get(fee, 60))),
                int(row["sqrt_price_x96"]),
                liquidity=int(row["liquidity"] or 0),
                tick=row["tick"],
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise FeedError(
                f"feed {self.feed_path}: bad POOL_STATE row for {venue}: {exc}"
            ) from None
        token = self.node.pool_tokens.get(venue, params.get("token0", ""))
        info = PoolInfo(
            venue=venue,
            token=token,
            quote=params["token1"] if params.get("token0") == token else params.get("token0", ""),
            token_is_token0=params.get("token0") == token,
            decimals0=int(params.get("decimals0", 18)),
            decimals1=int(params.get("decimals1", 6)),
            fee_pips=fee,
            tick_spacing=pool.tick_spacing,
        )
        self.market.pools[venue] = PoolMarket(info, pool, row["ts_recv"])
        sim = SimPool(venue, self.settings.venues[venue], self.market, self.clock)
        sim.bind(self.engine)
        self.venues[venue] = sim
        self.pool_sinks[venue] = sim

    def pool_price(self, venue: str) -> float:
        pm = self.market.pools.get(venue)
        if pm is None:
            return math.nan
        i = pm.info
        p = price_from_sqrt_price_x96(pm.pool.sqrt_price_x96, i.decimals0, i.decimals1)
        return p if i.token_is_token0 else (1.0 / p if p else math.nan)

    # ---- sampling ----------------------------------------------------------------------------
    # What _sample derives from the ledger alone is kept while ``ledger.version`` is unchanged
    # (most samples: the book moves only on fills, requests and funding), and the whole pnl dict
    # while the marks are unchanged too. Recorded samples share these dicts: they are never
    # mutated once in a Sample (the report and the tests only read them).
    _sampled_version: int = -1
    _sampled_inventory: dict[str, float]
    _sampled_cash: dict[str, float]
    _sampled_in_flight: dict[str, tuple[float, float]]  # token -> (minting, redeeming) qty
    _sampled_pnl: tuple[int, dict[str, Decimal], dict[str, float]] | None = None
    _pnl_float_memo: dict[str, tuple[Decimal, float]] | None = None

    def _deposit_tokens(self) -> bool:
        """Starting token inventory is valued at the first fair value (its contribution);
        False while a token has none yet."""
        pending = self.settings.backtest.initial_tokens
        for key in pending:
            token = key.partition(":")[2]
            fv = self.engine.fair_value(token)
            if fv != fv:
                return False  # no quote yet: try again later
        for key, qty in pending.items():
            venue, _, token = key.partition(":")
            price = Decimal(repr(round(self.engine.fair_value(token), 6)))
            self.ledger.deposit_position(venue, token, qty, price)
        self._tokens_deposited = True
        return True

    def _on_run(self, event: str, ts_ns: int) -> None:
        """A RUN row of a recorded run: its strategy started here, so the replay's does."""
        if event == RUN_STARTED and self._await_run_start and self.opened_ns is None:
            self._await_run_start = False
            self._open(self._period_ns)

    def _open(self, period_ns: int) -> None:
        """Start the strategy once the starting tokens are booked at their first fair value
        (checked every ``OPEN_CHECK_S`` of feed time), as a live run opens its ledger before it
        trades; at once when there are none. A recording of a run opens no earlier than the
        run's strategy started (its RUN row, ``_on_run``): what the run saw before that, the
        replay's strategy does not see either."""
        if self._await_run_start:
            return
        if not self._deposit_tokens():
            self.clock.schedule(
                self.clock.now_ns() + int(OPEN_CHECK_S * 1e9), partial(self._open, period_ns)
            )
            return
        self.opened_ns = self.clock.now_ns()
        self.engine.start(periodic=[(period_ns, self._sample)])

    def _sample_pnl(self, marks: dict[str, Decimal]) -> dict[str, float]:
        """The ledger's PnL at ``marks`` as floats (ValueError: a holding without a mark).

        A component that is the very Decimal converted last time (the ledger hands back the same
        object while it is unchanged) reuses that float; ``float`` of a Decimal is a pure
        function of it, so the figures are the ones a fresh conversion gives."""
        version = self.ledger.version
        last = self._sampled_pnl
        if last is not None and last[0] == version and last[1] == marks:
            return last[2]
        memo = self._pnl_float_memo
        if memo is None:
            memo = self._pnl_float_memo = {}
        pnl: dict[str, float] = {}
        for name, value in self.ledger.pnl(marks).as_dict().items():
            if name == "perp_funding" and not self._has_perp:
                continue  # no perpetual: the chart keeps the components it always had
            hit = memo.get(name)
            if hit is None or hit[0] is not value:
                hit = memo[name] = (value, float(value))
            pnl[name] = hit[1]
        self._sampled_pnl = (version, marks, pnl)
        return pnl

    def _sample_book(self) -> None:
        """Refresh inventory, cash and in-flight figures if the ledger changed since last time."""
        version = self.ledger.version
        if version == self._sampled_version:
            return
        snap = self.ledger.snapshot()
        self._sampled_inventory = {
            f"{venue}:{inst}": float(q)
            for venue, bal in snap.venues.items()
            for inst, q in bal.positions.items()
        }
        self._sampled_cash = {venue: float(bal.cash) for venue, bal in snap.venues.items()}
        in_flight: dict[str, tuple[float, float]] = {}
        for token in self.settings.tokens:
            mints = snap.mints.get(token)
            redeems = snap.redeems.get(token)
            in_flight[token] = (
                float(mints.qty) if mints else 0.0,
                float(redeems.qty) if redeems else 0.0,
            )
        self._sampled_in_flight = in_flight
        self._sampled_version = version

    def _sample(self) -> None:
        engine = self.engine
        if not self._tokens_deposited:
            self._deposit_tokens()
        now = self.clock.now_ns()
        self.exposure.observe(now, answer=False)
        marks = engine.marks()
        try:
            pnl = self._sample_pnl(marks)
        except ValueError:
            return  # a holding without a mark yet (before the first quote)
        self._sample_book()
        inventory = self._sampled_inventory
        cash = self._sampled_cash
        in_flight = self._sampled_in_flight
        session = self.calendar.session_at(now).name
        for token, tcfg in self.settings.tokens.items():
            fv = engine.fair_value(token)
            prices: dict[str, float] = {}
            for venue in tcfg.venues:
                if self.settings.venues[venue].kind == "pool":
                    prices[venue] = self.pool_price(venue)
                else:
                    book = self.market.books.get((venue, token))
                    prices[venue] = book.top.mid if book is not None else math.nan
            premium = {
                v: (p / fv - 1.0) * 1e4 if fv == fv and fv else math.nan for v, p in prices.items()
            }
            minting, redeeming = in_flight[token]
            self.record.samples.append(
                Sample(
                    ts_ns=now,
                    token=token,
                    session=session,
                    fair_value=fv,
                    token_prices=prices,
                    premium_bps=premium,
                    pnl=pnl,
                    inventory=inventory,
                    cash=cash,
                    in_flight_mints=minting,
                    in_flight_redeems=redeeming,
                )
            )
        self._pnl_series.append(pnl["total"])
        if self.log_pnl_every and len(self._pnl_series) % self.log_pnl_every == 0:
            log.info(
                "pnl",
                total=round(pnl["total"], 2),
                spread_captured=round(pnl["spread_captured"], 2),
                fees=round(pnl["venue_fees"] + pnl["gas"] + pnl["issuer_fees"], 2),
                funding=round(pnl["funding"], 2),
                session=session,
            )

    # ---- run ---------------------------------------------------------------------------------
    def run(self, *, pacer: Pacer | None = None, progress: Any = None) -> RunRecord:
        watch = Stopwatch()
        self._open(self._period_ns)

        def on_batch(events: int, ts_ns: int) -> None:
            self.events_so_far = events
            if progress is not None:
                progress(events, ts_ns)

        events = replay(
            self.engine,
            self.clock,
            # paced (the daemon): small batches, so progress and /healthz move every few seconds
            self.reader.iter_routed_ahead(
                TOP_COLUMNS, ROW_COLUMNS, PACED_BATCH_ROWS if pacer is not None else 32_768
            ),
            run_ahead=RunAhead(self.settings, self.engine.quiets, self.venues),
            pool_sinks=self.pool_sinks,
            on_pool_state=self._on_pool_state,
            on_run=self._on_run,
            pacer=pacer,
            progress=on_batch,
        )
        if self.engine.started:
            self.engine.stop()
        self.events_so_far = events
        self.interrupted = events < self.reader.events
        wall = watch.elapsed_s()
        self._sample()  # the final state
        self.exposure.finish(self.clock.now_ns())
        self._finish(events, wall)
        return self.record

    def _finish(self, events: int, wall: float) -> None:
        rec = self.record
        rec.decisions = list(self.engine.decisions)
        rec.transfers = transfer_marks(self.engine.transfer_log)
        for f in self.engine.fills:
            rec.trades.append(
                TradeMark(
                    f.ts_ns,
                    f.venue,
                    f.instrument,
                    int(f.side),
                    float(f.qty),
                    float(f.price),
                    str(f.role),
                    f.group_id,
                )
            )
        for req, upd in self.engine.request_log:
            rec.requests.append(
                RequestMark(
                    upd.ts_ns,
                    req.issuer,
                    req.token,
                    str(req.kind),
                    str(upd.state),
                    float(req.qty),
                    float(upd.price or req.price),
                    req.request_id,
                )
            )
        marks = self.engine.marks()
        pnl = self.ledger.pnl(marks)
        snap = self.ledger.snapshot()
        counters = self.engine.counters
        rec.groups = group_results(
            rec.decisions,
            self.engine.fills,
            list(self.engine.executor.requests.values()),
            self.engine.reverted_gas,
            marks,
        )
        rec.summary = {
            "feed": str(self.feed_path),
            "seed": self.seed,
            "events": events,
            "interrupted": self.interrupted,
            "wall_seconds": round(wall, 3),
            "events_per_second": round(events / wall, 1) if wall > 0 else None,
            "sim_start_ns": self.reader.start_ns,
            "sim_end_ns": self.clock.now_ns(),
            "pnl_usd": _usd(pnl.total),
            # the strategy's own result: the PnL less what holding the starting inventory made
            "strategy_pnl_usd": _usd(pnl.total - pnl.inventory_carry),
            "contributions": _usd(self.ledger.contributions),
            "nav_start": _usd(self.ledger.contributions),
            "nav_end": _usd(self.ledger.contributions + pnl.total),
            "pnl_components": {k: _usd(v) for k, v in pnl.as_dict().items() if k != "total"},
            "max_drawdown_usd": max_drawdown([0.0, *self._pnl_series]),
            "trades": counters["trades"],
            "mints": counters["mints"],
            "redeems": counters["redeems"],
            "hedges": counters["hedges"],
            "orders": len(self.engine.executor.orders),
            "fill_rate": fill_rate(self.engine.executor.orders.values()),
            "risk_rejections": sum(self.risk.rejections.values()),
            "risk_rejections_by_reason": dict(self.risk.rejections),
            "decisions": len(rec.decisions),
            "decisions_taken": sum(1 for d in rec.decisions if d.taken),
            "final_inventory": {
                venue: {inst: q for inst, q in bal.positions.items()}
                for venue, bal in snap.venues.items()
            },
            "final_cash": {venue: _usd(bal.cash) for venue, bal in snap.venues.items()},
            "transfers": transfers_summary(rec.transfers, snap.in_transit),
            "in_flight": {
                "mints": {t: str(s.qty) for t, s in snap.mints.items()},
                "redeems": {t: str(s.qty) for t, s in snap.redeems.items()},
            },
            "exposure": self.exposure.summary(),
            "groups": [g.as_summary() for g in rec.groups],
        }
        rec.exposure = {sym: ex.series for sym, ex in self.exposure.stocks.items()}
        contracts = perp_contracts(self.settings)
        if self._has_perp:  # the perpetual's figures (ADR 0018); absent without one
            rec.summary["perp"] = perp_summary(
                contracts, self.engine.funding_log, self.engine.fills, rec.decisions,
                counters["margin_calls"],
            )  # fmt: skip
            brokers = {sym: stock.broker for sym, stock in self.settings.stocks.items()}
            venues = hedge_by_venue(self.engine.fills, brokers, contracts, self.tokens)
            if any(perp for points in venues.values() for _, _, perp in points):
                rec.hedge_venues = venues  # the hedge was on a perpetual at some time
        else:  # a run without a perpetual reports the components it always did
            rec.summary["pnl_components"].pop("perp_funding", None)


__all__ = ["Backtest", "EventKind"]
