"""Each arbitrage's predicted net edge at decision time against what it realized.

A group's realized PnL is its own cash flows — the fills of its legs (price, fee, gas), the gas of
its reverted swaps, the cash its mints paid and its redeems received — plus whatever it still
holds at the end (tokens, shares) valued at the final marks: the same marks the ledger's PnL
uses. The groups' results plus the inventory carry and the transfers' fees add up to the run's
PnL only approximately (funding is charged to accounts, not groups); the table is for reading one
decision against its outcome, not for accounting.

Pure: reads the engine's records after a run; no I/O.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from bot.model import Fill, MintRedeemRequest, RequestKind, RequestState
from strategies.base import Decision

ZERO = Decimal(0)
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class GroupResult:
    group_id: str
    token: str
    decided_ns: int
    action: str
    qty: float
    predicted_usd: float  # the net edge the cost model expected
    realized_usd: Decimal  # cash flows plus what the group holds, at the final marks
    open: bool  # still holding tokens or shares (waiting on the issuer, stranded)

    def as_summary(self) -> dict[str, object]:
        return {
            "group": self.group_id,
            "token": self.token,
            "decided_ns": self.decided_ns,
            "action": self.action,
            "qty": self.qty,
            "predicted_usd": round(self.predicted_usd, 2),
            "realized_usd": str(self.realized_usd.quantize(CENT)),
            "open": self.open,
        }


def group_results(
    decisions: Sequence[Decision],
    fills: Sequence[Fill],
    requests: Sequence[MintRedeemRequest],
    reverted_gas: Mapping[str, Decimal],
    marks: Mapping[str, Decimal],
) -> list[GroupResult]:
    """One result per taken decision that started a group, in decision order."""
    cash: dict[str, Decimal] = defaultdict(Decimal)
    held: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for f in fills:
        if not f.group_id:
            continue
        cash[f.group_id] -= f.side * f.qty * f.price + f.fee_usd + f.gas_usd
        held[f.group_id][f.instrument] += f.side * f.qty
    for group, gas in reverted_gas.items():
        cash[group] -= gas
    for r in requests:
        if r.state not in (RequestState.PRICED, RequestState.SETTLED) or not r.group_id:
            continue
        mint = r.kind is RequestKind.MINT
        cash[r.group_id] += (-1 if mint else 1) * r.price * r.qty - r.fee_usd
        held[r.group_id][r.token] += r.qty if mint else -r.qty
    out: list[GroupResult] = []
    started: set[str] = set()
    for d in decisions:
        if not d.taken or not d.group_id or d.group_id in started:
            continue  # a later decision of a group (a repair leg) did not start it
        started.add(d.group_id)
        holdings = held.get(d.group_id, {})
        value = sum((qty * marks.get(inst, ZERO) for inst, qty in holdings.items() if qty), ZERO)
        out.append(
            GroupResult(
                group_id=d.group_id,
                token=d.token,
                decided_ns=d.ts_ns,
                action=d.action,
                qty=d.qty,
                predicted_usd=d.edge_usd,
                realized_usd=cash.get(d.group_id, ZERO) + value,
                open=any(qty for qty in holdings.values()),
            )
        )
    return out
