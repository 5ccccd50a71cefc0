"""``pegbot run``: the long-lived daemon, a node (bot/node.py) on asyncio.

In the live environments (``sandbox``, ``paper``, ``live``) the clock is the wall clock, the
venues and market data are the real connectors (bot/live.py), and the run goes on until SIGINT or
SIGTERM (or ``--seconds``). Start-up, in order:

1. ``sandbox`` with ``sandbox.manage``: a sandbox is started in ``sandbox.state`` unless one runs
   there already; only one this run started is stopped at exit.
2. The node is assembled, ``/healthz`` is served, every venue and source connects (a part that
   cannot: its one-line error, exit 2, nothing traded). A pool venue with a position manager
   withdraws, as it connects, the range orders an earlier run left resting (a crash:
   ``connectors/evm/orphan_ranges.py``), so the balances below include what they held.
3. The ledger opens with what the venues hold: each account's cash at once, positions at the
   first fair value (the strategy is not started before every holding has a mark); a
   perpetual's open positions at the venue's mark, its cash the collateral less their entry
   notional (``open_perpetual``).
4. The engine starts: heartbeat, then every market event and venue answer as it comes.

At exit: working quotes (orders of role ``quote``, the market maker's) are pulled first: the kill
switch is engaged ("shutdown": the strategy cancels them, risk lets only reducing orders through)
and the run waits up to ``QUOTES_PULL_S`` for the venues to confirm; then the strategy's
``on_stop``, the connectors closed, the book logged (``ledger_closed``:
cash, positions and what is in transit per account, as ``ledger_opened`` at the start) and a
summary printed. The ``backtest`` environment (a paced replay of a feed) is
bot/backtest/paced.py; this module does not import the backtest package for the others.
"""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from bot.clock import NS_PER_SECOND, LiveClock
from bot.config import Settings
from bot.display import utc_text
from bot.errors import InputError
from bot.health import serve_health
from bot.ledger import Ledger
from bot.ledger.exact import exact
from bot.logging import configure_logging, get_logger
from bot.model import Currency, VenueKind
from bot.node import OPEN_CHECK_S, Node, calendar_around

log = get_logger("pegbot.daemon")

MARKS_TIMEOUT_S = 60.0  # the wait for a first quote of every stock held before the ledger opens
CALENDAR_DAYS = 400  # the session calendar a live run is built with
QUOTES_PULL_S = 10.0  # at exit, the wait for the venues to confirm the quotes' cancels


def run_daemon(
    settings: Settings,
    *,
    config_path: Path,
    feed: Path | None = None,
    speed: float | None = None,
    port: int | None = None,
    log_level: str | None = None,
    window: tuple[int | None, int | None] = (None, None),
    seconds: float | None = None,
    record: Path | None = None,
) -> int:
    """Run the configured environment until a signal (or ``seconds``); the exit code."""
    env = settings.run.environment
    if env == "backtest":
        from bot.backtest.paced import run_paced

        return run_paced(
            settings,
            config_path=config_path,
            feed=feed,
            speed=speed,
            port=port,
            log_level=log_level,
            window=window,
        )
    given = [
        name
        for name, value in (
            ("--feed", feed),
            ("--speed", speed),
            ("--start", window[0]),
            ("--end", window[1]),
        )
        if value is not None
    ]
    if given:
        raise InputError(
            f"{', '.join(given)}: only for a replay (run.environment = 'backtest'); "
            f"{config_path} trades the {env} environment"
        )
    configure_logging(log_level or settings.run.log_level)
    return asyncio.run(LiveRun(settings, config_path, port, seconds, record).main())


def run_prefix(now_ns: int) -> str:
    """This run's client-id prefix: 'p' and the start second in base 36 (5 digits: unique for
    about two years), so an account that keeps old ids never sees one again."""
    n = now_ns // NS_PER_SECOND % 36**5
    digits = ""
    for _ in range(5):
        n, d = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[d] + digits
    return "p" + digits


class LiveRun:
    """One live run of the daemon (module docstring)."""

    def __init__(
        self,
        settings: Settings,
        config_path: Path,
        port: int | None,
        seconds: float | None,
        record: Path | None = None,
    ) -> None:
        """``record``: a feed directory the market data the run sees is also written to
        (bot/record/), which ``pegbot backtest --feed`` replays."""
        self.record = record
        self.recorder: Any = None
        self.settings = settings
        self.config_path = config_path
        self.port = port
        self.seconds = seconds
        self.node: Node | None = None
        self.started_sandbox = False
        self.trading = False
        self.opened_ns = 0

    async def main(self) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await self._sandbox_up()
            return await self._run(stop)
        finally:
            if self.started_sandbox:
                await asyncio.to_thread(self._sandbox_down)

    async def _run(self, stop: asyncio.Event) -> int:
        from bot.live import endpoints_for, live_adapters

        settings = self.settings
        endpoints = endpoints_for(settings)
        clock = LiveClock(asyncio.get_running_loop())
        now = clock.now_ns()
        self.opened_ns = now
        calendar = calendar_around(
            now, now + int(timedelta(days=CALENDAR_DAYS).total_seconds()) * NS_PER_SECOND
        )
        self.node = node = Node(
            settings,
            clock,
            calendar,
            partial(live_adapters, endpoints=endpoints),
            id_prefix=run_prefix(now),
            history=settings.run.history,  # a long-lived daemon keeps the last ones in memory
        )
        runner, bound = await serve_health(self._status, settings, self.port)
        try:
            log.info(
                "daemon_started",
                environment=settings.run.environment,
                config=str(self.config_path),
                health=f"http://{settings.run.health_host}:{bound}/healthz",
                venues=sorted(node.venues),
                sources=[repr(s) for s in node.sources],
            )
            self._start_recording(node)
            await node.connect()
            try:
                await self._open_ledger(stop)
                if not stop.is_set():
                    node.engine.start()
                    for venue in node.venues.values():  # a live perpetual's reads (ADR 0019)
                        watch = getattr(venue, "watch", None)
                        if watch is not None:
                            watch()
                    if self.recorder is not None:
                        self.recorder.run_started()
                    self.trading = True
                    log.info("trading", strategy=type(node.strategy).__name__)
                    await self._wait(stop)
            finally:
                if self.trading:
                    await self._pull_quotes(node)
                    node.engine.stop()
                await node.close()
                if self.recorder is not None:
                    rows = await asyncio.to_thread(self.recorder.close)
                    log.info("recorded", rows=rows, out=str(self.record))
        finally:
            await runner.cleanup()
        self._print_summary()
        return 0

    async def _pull_quotes(self, node: Node) -> None:
        """Resting quotes do not outlive the run (module docstring): kill switch, then wait for
        the venues' answers; what is still working after ``QUOTES_PULL_S`` is logged."""
        from bot.model import LegRole

        def quotes() -> list[str]:
            return [o.client_id for o in node.engine.open_orders() if o.role is LegRole.QUOTE]

        if not quotes():
            return
        node.engine.engage_kill_switch("shutdown")
        deadline = time.monotonic() + QUOTES_PULL_S
        while quotes() and time.monotonic() < deadline:
            await asyncio.sleep(OPEN_CHECK_S)
        left = quotes()
        if left:
            log.warning("quotes_left_working", client_ids=left)
        else:
            log.info("quotes_pulled")

    async def _wait(self, stop: asyncio.Event) -> None:
        try:
            await asyncio.wait_for(stop.wait(), self.seconds)
        except TimeoutError:
            log.info("run_time_over", seconds=self.seconds)

    def _start_recording(self, node: Node) -> None:
        """Every source hands its events to the engine, then to the recorder; a pool's state
        is recorded as it is loaded, a perpetual's each time its watch reads it."""
        if self.record is None:
            return
        from bot.record.recorder import FeedRecorder
        from bot.record.tee import Tee

        brokers = {sym: s.broker for sym, s in self.settings.stocks.items()}
        self.recorder = FeedRecorder(
            self.record, node.clock, quote_venues=brokers, source=f"run:{self.config_path}"
        )
        tee = Tee(node.engine, self.recorder)
        for source in node.sources:
            source.bind(tee)
            if hasattr(source, "on_loaded"):
                source.on_loaded = partial(self.recorder.pool_state, source.name)
        for venue in node.venues.values():  # a live perpetual's marks and funding rates
            if hasattr(venue, "on_state"):
                venue.on_state = self.recorder.perp_state

    # ---- the opening book ----------------------------------------------------------------
    async def _open_ledger(self, stop: asyncio.Event) -> None:
        """Every account's cash and holdings, as its venue states them (module docstring, 3)."""
        node = self.node
        assert node is not None
        holdings: list[tuple[str, str, Decimal]] = []
        known = set(node.settings.stocks) | set(node.settings.tokens)
        for name, venue in node.venues.items():
            if getattr(venue, "kind", None) is VenueKind.PERPETUAL:
                await open_perpetual(node.ledger, name, venue)
                continue
            balances = getattr(venue, "balances", None)
            if balances is None:
                continue
            for asset, amount in (await balances()).items():
                if asset == Currency.USD.value:
                    node.ledger.deposit_cash(name, amount)
                elif asset in known and amount:
                    holdings.append((name, asset, amount))
        deadline = time.monotonic() + MARKS_TIMEOUT_S
        while holdings and not stop.is_set():
            marks = node.engine.marks()
            if all(inst in marks for _, inst, _ in holdings):
                for account, inst, qty in holdings:
                    node.ledger.deposit_position(account, inst, qty, marks[inst])
                break
            if time.monotonic() > deadline:
                missing = sorted({inst for _, inst, _ in holdings if inst not in marks})
                raise InputError(
                    f"no quote for {', '.join(missing)} within {MARKS_TIMEOUT_S:g} s: the "
                    "holdings cannot be valued, nothing is traded"
                )
            await asyncio.sleep(OPEN_CHECK_S)
        log.info("ledger_opened", **_book(node))

    # ---- health and summary --------------------------------------------------------------
    def _status(self) -> tuple[bool, dict[str, Any]]:
        node = self.node
        if node is None:
            return False, {"engine_alive": False}
        disconnected = dict(node.market.disconnected)
        return self.trading, {
            "engine_alive": self.trading,
            "environment": self.settings.run.environment,
            "time": utc_text(node.clock.now_ns()),
            "fills": node.engine.counters["trades"],
            "decisions": node.engine.counters["decisions"],
            "disconnected": disconnected,
            "config": str(self.config_path),
        }

    def _print_summary(self) -> None:
        node = self.node
        if node is None:
            return
        engine = node.engine
        if self.trading:  # the book as the run leaves it: what moved, and what is in transit
            log.info("ledger_closed", **_book(node))
        marks = engine.marks()
        try:
            pnl = node.ledger.pnl(marks)
            pnl_text = f"{pnl.total:,.2f} USD"
        except ValueError:
            pnl_text = "not known (a holding without a mark)"
        wall = (node.clock.now_ns() - self.opened_ns) / NS_PER_SECOND
        print(f"{self.settings.run.environment} run of {wall:,.1f} s: pnl {pnl_text}")
        c = engine.counters
        print(
            f"decisions {c['decisions']} ({c['decisions_taken']} taken)  "
            f"trades {c['trades']}  mints {c['mints']}  redeems {c['redeems']}  "
            f"hedges {c['hedges']}  transfers {c['transfers']}  "
            f"open orders {len(engine.executor.open_orders())}"
        )
        node.exposure.observe(node.clock.now_ns(), answer=False)  # a last look at the book
        for stock, ex in sorted(node.exposure.summary().items()):
            delta = Decimal(str(ex["final_net_delta_shares"]))
            print(f"exposure {stock}: final net delta {delta:f} shares")

    # ---- the managed sandbox -------------------------------------------------------------
    async def _sandbox_up(self) -> None:
        s = self.settings
        if s.run.environment != "sandbox" or not s.sandbox.manage:
            return
        from connectors.sandbox.launcher import up
        from connectors.sandbox.launcher_state import SandboxState, all_running

        state = Path(s.sandbox.state)
        recorded = SandboxState.load(state)
        if recorded is not None and recorded.complete and all_running(recorded):
            log.info("sandbox_running", state=str(state))
            return
        lines = await asyncio.to_thread(up, state, s.sandbox.seed)
        self.started_sandbox = True
        for line in lines:
            log.info("sandbox", line=line)

    def _sandbox_down(self) -> None:
        from connectors.sandbox.launcher import down

        for line in down(Path(self.settings.sandbox.state)):
            log.info("sandbox", line=line)


async def open_perpetual(ledger: Ledger, name: str, venue: Any) -> None:
    """A perpetual account's opening book: each open position at the venue's mark, and as cash
    the collateral less the positions' entry notional, so the ledger's equity (cash + qty x
    mark) is the venue's (collateral + unrealised PnL) and later fills book as on any venue."""
    margin = await venue.margin()
    positions = await venue.positions()
    with exact():
        entry = sum((p.qty * p.entry_price for p in positions.values()), Decimal(0))
        ledger.deposit_cash(name, margin.collateral_usd - entry)
    for instrument, position in sorted(positions.items()):
        ledger.deposit_position(name, instrument, position.qty, position.mark)


def _book(node: Node) -> dict[str, Any]:
    """The ledger's cash and positions per account, and what is in transit, as log fields."""
    snap = node.ledger.snapshot()
    return {
        "cash": {v: str(b.cash) for v, b in snap.venues.items()},
        "positions": {
            v: {i: str(q) for i, q in b.positions.items()} for v, b in snap.venues.items()
        },
        "in_transit": {asset: str(amount) for asset, amount in snap.in_transit.items()},
    }
