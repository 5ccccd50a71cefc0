"""The sandbox's flow generator: a process that moves the local market so that premiums and
discounts appear between the token and the stock::

    python -m connectors.sandbox.flow --state DIR [--seed N] [--pool-interval-s 2] ...

It reads the endpoints the pieces wrote (``DIR/{broker,exchange,chain}.ready.json``) and, each on
its own interval:

- **pool**: trades the AAPLx/USDC pool to a target price, the broker's mid times a premium that
  follows a seeded mean-reverting walk (an Ornstein-Uhlenbeck step in bps, with an occasional
  wick: a jump of 150-400 bps either way that then decays). One ``exactInputSingle`` from its own
  account with the target as the price limit, so the trade's size is whatever moves the price
  there (at most ``max_trade_usd``);
- **exchange**: replaces the AAPLx/USD book (``/sandbox/book``) with five seeded levels a side
  around the broker's mid times its own premium walk; resting orders it crosses fill; when the
  perpetual sandbox runs (``DIR/perp.ready.json``), its mark follows: that book's centre, the
  index the broker's mid (``/sandbox/mark``);
- **broker**: while the broker has a session, now and then moves AAPL's quote by a seeded jump
  (the broker sandbox's control API, ``/sandbox/quote``); the quote walk goes on from there.

Every draw comes from a generator seeded by ``--seed`` and the activity's name, so a seed gives
the same premiums and wicks (the prices they are applied to move with the broker's live walk).
Once it has done one round of all three it writes ``DIR/flow.ready.json``. SIGTERM stops it
between steps (exit 0); a piece it cannot reach is one line ``error: ...`` and exit 2.

What this module may not do: reach anything but the endpoints in the ready files (127.0.0.1), or
trade from any account but the chain's ``flow_trader``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.evm.deploy import TransactionFailed
from connectors.sandbox.flow_pool import PoolTrader
from connectors.sandbox.quotes import spread_around
from connectors.sandbox.serve import (
    DEFAULT_SEED,
    Stopped,
    fail,
    ready_path,
    stop_on_signals,
    write_ready,
)
from connectors.sandbox.serve_exchange import CENT, seeded_book

_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy


@dataclass(frozen=True)
class FlowRates:
    """How often and how hard the flow moves each venue (every field is a CLI option)."""

    pool_interval_s: float = 2.0
    exchange_interval_s: float = 1.0
    broker_interval_s: float = 5.0
    premium_sigma_bps: float = 8.0
    """The pool premium's noise per step."""
    premium_reversion: float = 0.15
    """The share of the premium that decays each step (a wick halves in about four steps)."""
    wick_probability: float = 0.03
    wick_min_bps: float = 150.0
    wick_max_bps: float = 400.0
    exchange_sigma_bps: float = 4.0
    exchange_wick_probability: float = 0.01
    broker_jump_probability: float = 0.2
    broker_jump_bps: float = 10.0
    max_trade_usd: float = 5_000_000.0


class PremiumWalk:
    """A premium in bps: ``x <- x * (1 - reversion) + N(0, sigma)``, plus now and then a wick
    (a jump of ``wick_bps`` either way)."""

    def __init__(
        self,
        rng: random.Random,
        *,
        sigma_bps: float,
        reversion: float,
        wick_probability: float,
        wick_bps: tuple[float, float],
    ) -> None:
        self._rng = rng
        self._sigma = sigma_bps
        self._keep = 1.0 - reversion
        self._wick_probability = wick_probability
        self._wick_bps = wick_bps
        self.bps = 0.0

    def step(self) -> tuple[float, bool]:
        """The next premium in bps, and whether a wick came with it."""
        rng = self._rng
        self.bps = self.bps * self._keep + rng.gauss(0.0, self._sigma)
        wick = rng.random() < self._wick_probability
        if wick:
            self.bps += rng.choice((-1.0, 1.0)) * rng.uniform(*self._wick_bps)
        return self.bps, wick


@dataclass(frozen=True)
class BrokerQuote:
    bid: Decimal
    ask: Decimal
    bid_size: int
    ask_size: int
    session: str

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


def control_call(url: str, body: dict[str, Any] | None = None) -> Any:
    """GET (no body) or POST JSON to a sandbox control endpoint; the answer's JSON."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with _LOCAL.open(request, timeout=10) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        raise FlowError(
            f"{url} answered {exc.code}: {exc.read().decode(errors='replace')}"
        ) from None
    except OSError as exc:
        raise FlowError(f"{url} did not answer: {exc}") from None


class FlowError(RuntimeError):
    """A piece of the sandbox did not answer as it should."""


def json_or_none(path: Path) -> dict[str, Any] | None:
    """A ready file's fields, None when there is none (a piece the sandbox may lack)."""
    try:
        fields: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise FlowError(f"{path}: {exc}") from None
    return fields


def read_ready(state: Path, piece: str) -> dict[str, Any]:
    path = ready_path(state, piece)
    fields = json_or_none(path)
    if fields is None:
        raise FlowError(f"{path}: no such file (start the sandbox's {piece} first)")
    return fields


class Flow:
    """The three activities and their seeded draws; ``run`` paces them until stopped."""

    def __init__(self, state: Path, seed: int, rates: FlowRates) -> None:
        self.state, self.rates = state, rates
        broker = read_ready(state, "broker")
        self._quote_url = f"{broker['control_url']}/sandbox/quote?symbol={broker['symbol']}"
        self._set_quote_url = f"{broker['control_url']}/sandbox/quote"
        self._symbol = broker["symbol"]
        exchange = read_ready(state, "exchange")
        self._book_url, self._pair = f"{exchange['control_url']}/book", exchange["pair"]
        perp = json_or_none(ready_path(state, "perp"))
        self._perp = (f"{perp['control_url']}/mark", perp["symbol"]) if perp else None
        self.pool = PoolTrader(read_ready(state, "chain"), rates.max_trade_usd)
        self._broker_rng = random.Random(f"{seed}:broker")
        self._exchange_rng = random.Random(f"{seed}:exchange")
        wicks = (rates.wick_min_bps, rates.wick_max_bps)
        self.pool_premium = PremiumWalk(
            random.Random(f"{seed}:pool"),
            sigma_bps=rates.premium_sigma_bps,
            reversion=rates.premium_reversion,
            wick_probability=rates.wick_probability,
            wick_bps=wicks,
        )
        self.exchange_premium = PremiumWalk(
            self._exchange_rng,
            sigma_bps=rates.exchange_sigma_bps,
            reversion=rates.premium_reversion,
            wick_probability=rates.exchange_wick_probability,
            wick_bps=wicks,
        )

    def broker_quote(self) -> BrokerQuote:
        q = control_call(self._quote_url)
        return BrokerQuote(
            Decimal(q["bid"]), Decimal(q["ask"]), q["bid_size"], q["ask_size"], q["session"]
        )

    def step_broker(self) -> None:
        rng, quote = self._broker_rng, self.broker_quote()
        jump = rng.random() < self.rates.broker_jump_probability
        move = rng.gauss(0.0, self.rates.broker_jump_bps / 10_000)
        if not jump or quote.session == "closed":  # a closed market's quote does not move
            return
        mid = quote.mid * Decimal(str(math.exp(move)))
        spread_bps = float((quote.ask - quote.bid) / quote.mid * 10_000)
        bid, ask = spread_around(mid, spread_bps)
        body = {"symbol": self._symbol, "bid": str(bid), "ask": str(ask)}
        control_call(
            self._set_quote_url, {**body, "bid_size": quote.bid_size, "ask_size": quote.ask_size}
        )
        _log(
            f"broker {self._symbol} {quote.mid:.4f} -> {(bid + ask) / 2:.4f} ({move * 1e4:+.1f} bps)"
        )

    def step_exchange(self) -> None:
        premium, wick = self.exchange_premium.step()
        index = self.broker_quote().mid
        mid = index * Decimal(str(1 + premium / 10_000))
        bids, asks = seeded_book(mid, self._exchange_rng)
        control_call(self._book_url, {"pair": self._pair, "bids": bids, "asks": asks})
        if self._perp is not None:
            mark_url, symbol = self._perp
            control_call(
                mark_url, {"symbol": symbol, "mark": str(mid.quantize(CENT)), "index": str(index)}
            )
        if wick:
            _log(f"exchange wick: book around {mid:.2f} ({premium:+.1f} bps)")

    def step_pool(self) -> None:
        premium, wick = self.pool_premium.step()
        target = float(self.broker_quote().mid) * (1 + premium / 10_000)
        try:
            swap = self.pool.trade_to(target)
        except TransactionFailed as exc:  # logged; the next step tries again
            _log(f"pool: {exc}")
            return
        if swap is not None:
            _log(f"pool {premium:+.1f} bps{' (wick)' if wick else ''}: {swap}")

    def run(self) -> None:
        steps = {
            self.step_broker: self.rates.broker_interval_s,
            self.step_exchange: self.rates.exchange_interval_s,
            self.step_pool: self.rates.pool_interval_s,
        }
        for step in steps:  # one round before saying ready
            step()
        write_ready(self.state, "flow", {"rates": dataclasses.asdict(self.rates)})
        due = {step: time.monotonic() + interval for step, interval in steps.items()}
        while True:
            for step, interval in steps.items():
                now = time.monotonic()
                if due[step] <= now:
                    due[step] = max(due[step] + interval, now)  # late: no burst to catch up
                    step()
            time.sleep(max(0.0, min(due.values()) - time.monotonic()))


def _log(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m connectors.sandbox.flow", description=__doc__.split("\n\n")[0].rstrip(":")
    )
    parser.add_argument("--state", type=Path, required=True, help="the sandbox's state folder")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    for field in dataclasses.fields(FlowRates):
        parser.add_argument(
            f"--{field.name.replace('_', '-')}",
            type=float,
            default=field.default,
            metavar="X",
            help=f"default {field.default:g}",
        )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    stop_on_signals()
    args = arguments(argv)
    rates = FlowRates(**{f.name: getattr(args, f.name) for f in dataclasses.fields(FlowRates)})
    wrong = [
        name
        for name, value in dataclasses.asdict(rates).items()
        if value < 0
        or (name.endswith("interval_s") and value == 0)
        or (name.endswith("probability") and value > 1)
    ]
    if wrong:
        return fail(f"flow: out of range: {', '.join(wrong)}")
    try:
        Flow(args.state, args.seed, rates).run()
    except Stopped:
        pass
    except FlowError as exc:
        return fail(f"flow: {exc}")
    print("flow stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
