"""End-to-end hedge latency on the sandbox (issue 8 §6): from the engine seeing a token fill to
the broker sandbox acknowledging the hedge order that the fill led to.

    python -m bench.hedge_latency --state DIR [--config config/sandbox.toml] [--seconds 120]

Runs the live node exactly as ``pegbot run`` does (``bot.daemon.LiveRun``: the real alpaca-py,
ccxt and web3 clients, the ledger opened from the sandbox's accounts, the mint/redeem strategy on
the wall clock) against the sandbox running in ``--state`` (``pegbot sandbox up --state DIR``),
with three probes on the engine, timed with ``perf_counter_ns``:

- a token fill reaches ``Engine.on_fill`` (the connector has seen it: for ccxt, the poll that
  read the trade);
- the strategy's hedge for that arbitrage is handed to the executor (``place``);
- the broker's ACCEPTED for that hedge reaches ``Engine.on_order_update`` (the REST answer or
  the trade stream, whichever came first).

It prints JSON lines like bench/run.py: per hedge, fill -> place, place -> acknowledged and
fill -> acknowledged, as p50 / p90 / max in milliseconds, with the number of hedges. Token fills
come only when the flow generator moves the token off fair value: a run without one says so
and exits 1. Not part of ``make bench`` (it needs a running sandbox and minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class HedgeProbe:
    """Times each hedge from the token fill before it to the broker's acknowledgement."""

    token_fill_ns: dict[str, int] = field(default_factory=dict)  # group -> its last token fill
    hedges: dict[str, tuple[int, int]] = field(default_factory=dict)  # client id -> fill, place
    samples: list[tuple[int, int, int]] = field(default_factory=list)  # fill, place, ack (ns)
    token_fills: int = 0

    def install(self, engine: Any) -> None:
        """Wrap the engine's answers and the executor's ``place`` (on this instance only)."""
        from bot.model import LegRole, OrderState

        on_fill, on_order_update = engine.on_fill, engine.on_order_update
        executor = engine.executor
        place = executor.place
        clock = time.perf_counter_ns

        def fill(f: Any) -> None:
            if f.role is LegRole.TOKEN:
                order = executor.orders.get(f.client_id)
                group = f.group_id or (order.group_id if order is not None else "")
                if group:
                    self.token_fill_ns[group] = clock()
                    self.token_fills += 1
            on_fill(f)

        def placed(intent: Any, now_ns: int) -> Any:
            order = place(intent, now_ns)
            seen = self.token_fill_ns.get(intent.group_id)
            if intent.role is LegRole.HEDGE and seen is not None:
                self.hedges[order.client_id] = (seen, clock())
            return order

        def update(u: Any) -> None:
            timed = self.hedges.pop(u.client_id, None) if u.state is OrderState.ACCEPTED else None
            if timed is not None:
                self.samples.append((timed[0], timed[1], clock()))
            on_order_update(u)

        engine.on_fill = fill
        engine.on_order_update = update
        executor.place = placed

    def report(self) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = [
            {"name": "hedge_latency_token_fills", "value": self.token_fills, "unit": "fills"},
            {"name": "hedge_latency_hedges", "value": len(self.samples), "unit": "orders"},
        ]
        if not self.samples:
            return lines
        at = np.array(self.samples, dtype=np.int64)
        spans = {
            "fill_to_place": at[:, 1] - at[:, 0],
            "place_to_ack": at[:, 2] - at[:, 1],
            "fill_to_ack": at[:, 2] - at[:, 0],
        }
        for label, ns in spans.items():
            p50, p90 = np.percentile(ns / 1e6, [50, 90]).tolist()
            for stat, value in (("p50", p50), ("p90", p90), ("max", float(ns.max()) / 1e6)):
                lines.append({"name": f"hedge_latency_{label}_{stat}", "value": round(value, 2),
                              "unit": "ms"})  # fmt: skip
        return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hedge_latency", description=__doc__)
    parser.add_argument("--state", type=Path, required=True, help="the running sandbox's state")
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "sandbox.toml")
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args(argv)

    import bot.daemon as daemon
    from bot.config import load_config
    from bot.logging import configure_logging
    from bot.node import Node

    configure_logging("warning")
    settings = load_config(args.config)
    sandbox = settings.sandbox.model_copy(update={"state": args.state, "manage": False})
    settings = settings.model_copy(update={"sandbox": sandbox})
    probe = HedgeProbe()

    class ProbedNode(Node):
        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, **k)
            probe.install(self.engine)

    setattr(daemon, "Node", ProbedNode)  # noqa: B010 - LiveRun builds its node through this name
    run = daemon.LiveRun(settings, args.config, 0, args.seconds)
    code = asyncio.run(run.main())
    for line in probe.report():
        print(json.dumps(line), flush=True)
    if not probe.samples:
        print(f"bench: no hedge in {args.seconds:g} s ({probe.token_fills} token fills)",
              file=sys.stderr)  # fmt: skip
        return 1
    return code


if __name__ == "__main__":
    raise SystemExit(main())
