"""The exchange sandbox's funding: Kraken's deposit and withdrawal subset (private POST
``DepositMethods``, ``DepositAddresses``, ``DepositStatus``, ``Withdraw``, ``WithdrawStatus``),
over the ``SandboxVenue``'s balances, as ccxt's ``fetch_deposit_address``, ``fetch_deposits``,
``withdraw`` and ``fetch_withdrawals`` call them.

- **Withdrawals** go to a withdrawal key set up on the account (Kraken's ``key``: a named,
  pre-approved address), ``withdraw_keys`` here: key name -> (asset, address). An ``address``
  sent with the key must be the key's. The amount plus the asset's withdrawal fee
  (``withdraw_fees``) must be available (balance less what resting orders hold); both leave the
  balance at once, and the withdrawal is ``Initial``, then ``Pending`` and ``Success`` (with a
  transaction id) ``withdraw_settle_s`` later on the venue's clock. ``fail_withdrawal`` (control
  API) makes it ``Failure`` and returns amount and fee.
- **Deposits** are made by the control API (``POST /sandbox/deposit {"asset", "amount",
  "txid"}``): credited at once, listed ``Success``. Every asset has one deposit method; a token's
  (``Ethereum (ERC20)``) has one address per asset, derived from the asset's name.

Refusals are Kraken's ``EFunding:`` errors. What this module may not do: I/O, or read a clock
but through the venue's ``now``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.money import ZERO, DecimalLike, to_decimal
from connectors.sandbox.exchange_orders import KrakenError
from connectors.sandbox.exchange_venue import SandboxVenue

TOKEN_METHOD = "Ethereum (ERC20)"
FIAT_METHOD = "Bank Frick (SWIFT)"
_WITHDRAW_PARAMS = frozenset({"asset", "key", "amount", "address"})
_STATUS_PARAMS = frozenset({"asset", "method", "start", "end", "cursor"})


@dataclass(slots=True)
class Movement:
    """One deposit or withdrawal (times in venue seconds)."""

    refid: str
    kind: str  # "deposit" | "withdrawal"
    asset: str
    amount: Decimal
    fee: Decimal
    address: str
    time: float
    status: str = "Initial"
    txid: str | None = None


class Funding:
    """Deposits and withdrawals of the sandbox account (module docstring)."""

    def __init__(
        self,
        venue: SandboxVenue,
        *,
        withdraw_keys: Mapping[str, tuple[str, str]] | None = None,
        withdraw_fees: Mapping[str, DecimalLike] | None = None,
        withdraw_settle_s: float = 0.0,
    ) -> None:
        self._venue = venue
        self.withdraw_keys = dict(withdraw_keys or {})
        self.withdraw_fees = {a: to_decimal(f) for a, f in (withdraw_fees or {}).items()}
        self.withdraw_settle_s = withdraw_settle_s
        self.movements: dict[str, Movement] = {}

    def handlers(self) -> dict[str, Callable[[dict[str, str]], Any]]:
        """The private methods this serves, by Kraken's name."""
        return {
            "DepositMethods": self._deposit_methods,
            "DepositAddresses": self._deposit_addresses,
            "DepositStatus": lambda p: self._status(p, "deposit"),
            "Withdraw": self._withdraw,
            "WithdrawStatus": lambda p: self._status(p, "withdrawal"),
        }

    # ---- deposits ------------------------------------------------------------------------------

    def _asset(self, params: Mapping[str, str]) -> str:
        asset = params.get("asset", "")
        if asset not in self._venue.asset_decimals:
            raise KrakenError("EQuery:Unknown asset")
        return asset

    def _method(self, asset: str) -> str:
        return FIAT_METHOD if asset.startswith("Z") else TOKEN_METHOD

    def _deposit_methods(self, params: dict[str, str]) -> list[dict[str, Any]]:
        _only(params, {"asset", "aclass"})
        asset = self._asset(params)
        method = self._method(asset)
        return [{"method": method, "limit": False, "fee": "0.0000000000",
                 "gen-address": method == TOKEN_METHOD}]  # fmt: skip

    def _deposit_addresses(self, params: dict[str, str]) -> list[dict[str, Any]]:
        _only(params, {"asset", "method", "new", "amount"})
        asset = self._asset(params)
        if params.get("method") != self._method(asset) or asset.startswith("Z"):
            raise KrakenError("EFunding:Invalid method")
        return [{"address": deposit_address(asset), "expiretm": "0", "new": False}]

    def deposit(self, asset: str, amount: DecimalLike, txid: str) -> Movement:
        """Credit a deposit now (the control API)."""
        if asset not in self._venue.asset_decimals:
            raise KrakenError("EQuery:Unknown asset")
        value = to_decimal(amount)
        if value <= 0:
            raise ValueError("a deposit needs a positive amount")
        self._venue.set_balance(asset, self._venue.balance(asset) + value)
        movement = self._add("deposit", asset, value, ZERO, deposit_address(asset))
        movement.status, movement.txid = "Success", txid
        return movement

    # ---- withdrawals ---------------------------------------------------------------------------

    def _withdraw(self, params: dict[str, str]) -> dict[str, Any]:
        _only(params, _WITHDRAW_PARAMS)
        asset = self._asset(params)
        key = params.get("key", "")
        if key not in self.withdraw_keys or self.withdraw_keys[key][0] != asset:
            raise KrakenError("EFunding:Unknown withdraw key")
        address = self.withdraw_keys[key][1]
        if params.get("address") not in (None, "", address):
            raise KrakenError("EFunding:Invalid withdraw address")
        try:
            amount = Decimal(params.get("amount", ""))
        except InvalidOperation:
            raise KrakenError("EGeneral:Invalid arguments:amount") from None
        places = self._venue.asset_decimals[asset]
        if not amount.is_finite() or amount <= 0 or amount != round(amount, places):
            raise KrakenError("EGeneral:Invalid arguments:amount")
        fee = self.withdraw_fees.get(asset, ZERO)
        held = self._venue.holds().get(asset, ZERO)
        if amount + fee > self._venue.balance(asset) - held:
            raise KrakenError("EFunding:Insufficient funds")
        self._venue.set_balance(asset, self._venue.balance(asset) - amount - fee)
        return {"refid": self._add("withdrawal", asset, amount, fee, address).refid}

    def fail_withdrawal(self, refid: str) -> None:
        """The withdrawal fails: amount and fee go back to the balance (the control API)."""
        movement = self.movements.get(refid)
        if movement is None or movement.kind != "withdrawal":
            raise KrakenError("EFunding:Unknown reference id")
        self._advance(movement)
        if movement.status == "Success":
            raise KrakenError("EFunding:Withdrawal already completed")
        movement.status = "Failure"
        asset = movement.asset
        self._venue.set_balance(asset, self._venue.balance(asset) + movement.amount + movement.fee)

    # ---- listing -------------------------------------------------------------------------------

    def _status(self, params: dict[str, str], kind: str) -> list[dict[str, Any]]:
        _only(params, _STATUS_PARAMS)
        asset = params.get("asset")
        start = float(params.get("start", "-inf"))
        end = float(params.get("end", "inf"))
        rows = []
        for movement in reversed(self.movements.values()):  # newest first
            self._advance(movement)
            if (
                movement.kind == kind
                and asset in (None, movement.asset)
                and start < movement.time <= end
            ):
                rows.append(self._json(movement))
        return rows

    def _advance(self, movement: Movement) -> None:
        """A withdrawal's status as the venue's clock has moved it on."""
        if movement.kind != "withdrawal" or movement.status in ("Success", "Failure"):
            return
        if self._venue.now() >= movement.time + self.withdraw_settle_s:
            movement.status = "Success"
            movement.txid = "0x" + hashlib.sha256(movement.refid.encode()).hexdigest()
        else:
            movement.status = "Pending"

    def _json(self, m: Movement) -> dict[str, Any]:
        places = self._venue.asset_decimals[m.asset]
        return {
            "method": self._method(m.asset),
            "aclass": "currency",
            "asset": m.asset,
            "refid": m.refid,
            "txid": m.txid,
            "info": m.address,
            "amount": f"{m.amount:.{places}f}",
            "fee": f"{m.fee:.{places}f}",
            "time": int(m.time),
            "status": m.status,
        }

    def _add(self, kind: str, asset: str, amount: Decimal, fee: Decimal, address: str) -> Movement:
        refid = f"F{len(self.movements) + 1:05d}-PEGBT-{'DEPOS' if kind == 'deposit' else 'WTHDR'}"
        movement = Movement(refid, kind, asset, amount, fee, address, self._venue.now())
        self.movements[refid] = movement
        return movement


def deposit_address(asset: str) -> str:
    """The account's deposit address for a token (stable per asset)."""
    return "0x" + hashlib.sha256(f"pegbot-sandbox/{asset}".encode()).hexdigest()[:40]


def _only(params: Mapping[str, str], supported: frozenset[str] | set[str]) -> None:
    for name in params:
        if name not in supported:
            raise KrakenError(f"EGeneral:Invalid arguments:{name}")
