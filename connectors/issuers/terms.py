"""The money arithmetic of the issuer contract (OrderProcessor.sol), repeated off chain exactly,
and the firm quote's EIP-712 digest. Shared by the adapters and the issuer sandbox, so both sides
compute the escrow, the notional and the fee the contract will.

Units: tokens in 1e-18 (18 decimals), cash in USDC units (1e-6 USD); a price is cash units per
whole token. A notional rounds in the issuer's favour (up for a mint, down for a redeem); the fee
is ``fee_flat`` units plus ``fee_bps`` of the notional, rounded up.

What this module may not do: any I/O, or float arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from bot.model import RequestKind
from bot.money import money_context

TOKEN_UNIT = 10**18
CASH_UNIT = 10**6
BPS = 10_000
MINT, REDEEM = 0, 1  # the contract's kinds

QUOTE_TYPE = (
    "Quote(uint8 kind,address requester,uint256 qty,uint256 price,uint256 expiry,uint256 nonce)"
)
_DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
DOMAIN_NAME, DOMAIN_VERSION = "PegbotOrderProcessor", "1"


class TermsError(ValueError):
    """A request the contract cannot express (a quantity finer than a token unit, say)."""


def kind_code(kind: RequestKind) -> int:
    return MINT if kind is RequestKind.MINT else REDEEM


def token_units(qty: Decimal) -> int:
    """``qty`` tokens in token units; exact or ``TermsError``."""
    with money_context():
        units = qty * TOKEN_UNIT
    if units != units.to_integral_value() or units <= 0:
        raise TermsError(f"INVALID_QTY: {qty} is not a positive multiple of 1e-18")
    return int(units)


def price_units(price_usd: Decimal, *, round_up: bool) -> int:
    """USD per token as cash units per token, rounded up or down to a unit."""
    with money_context():
        scaled = price_usd * CASH_UNIT
    return int(scaled.to_integral_value(rounding=ROUND_CEILING if round_up else ROUND_FLOOR))


def usd(units: int) -> Decimal:
    """Cash units (or a price in cash units per token) as exact USD."""
    return tidy(Decimal(units).scaleb(-6))


def tidy(value: Decimal) -> Decimal:
    """``value`` without trailing zeros (190.100000 -> 190.1), never in exponent form."""
    value = value.normalize()
    return value.quantize(Decimal(1)) if value.as_tuple().exponent > 0 else value  # type: ignore[operator]


def tokens(units: int) -> Decimal:
    return Decimal(units).scaleb(-18)


def notional_units(qty: int, price: int, *, round_up: bool) -> int:
    product = qty * price
    return -(-product // TOKEN_UNIT) if round_up else product // TOKEN_UNIT


def fee_units(notional: int, fee_flat: int, fee_bps: int) -> int:
    return fee_flat + -(-(notional * fee_bps) // BPS)


def mint_escrow(qty: int, max_price: int, fee_flat: int, fee_bps: int) -> int:
    """The cash a mint order escrows: the notional at ``max_price`` and its fee."""
    notional = notional_units(qty, max_price, round_up=True)
    return notional + fee_units(notional, fee_flat, fee_bps)


@dataclass(frozen=True)
class Settlement:
    """What a fill or settled quote moved, as the contract computed it (cash units)."""

    kind: RequestKind
    qty: int
    price: int
    notional: int
    fee: int

    @property
    def cash(self) -> int:
        """Cash paid for a mint, received for a redeem."""
        return (
            self.notional + self.fee if self.kind is RequestKind.MINT else self.notional - self.fee
        )

    def price_usd(self) -> Decimal:
        return usd(self.price)

    def fee_usd(self) -> Decimal:
        """The fee as the kernel counts it: the cash moved minus price x qty, exactly, so the
        ledger's ``cash_usd`` equals the cash that moved (the notional's rounding to a cash unit
        counts as fee)."""
        with money_context():
            gross = self.price_usd() * tokens(self.qty)
            moved = usd(self.cash)
            return tidy(moved - gross if self.kind is RequestKind.MINT else gross - moved)


def settlement(kind: RequestKind, qty: int, price: int, fee_flat: int, fee_bps: int) -> Settlement:
    notional = notional_units(qty, price, round_up=kind is RequestKind.MINT)
    return Settlement(kind, qty, price, notional, fee_units(notional, fee_flat, fee_bps))


@dataclass(frozen=True)
class FirmQuote:
    """A firm quote as the contract takes it (``OrderProcessor.Quote``)."""

    kind: int
    requester: str
    qty: int
    price: int
    expiry: int  # unix seconds, inclusive
    nonce: int

    def as_tuple(self) -> tuple[int, str, int, int, int, int]:
        return (
            self.kind,
            to_checksum_address(self.requester),
            self.qty,
            self.price,
            self.expiry,
            self.nonce,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "requester": to_checksum_address(self.requester),
            "qty": str(self.qty),
            "price": str(self.price),
            "expiry": self.expiry,
            "nonce": str(self.nonce),
        }

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> FirmQuote:
        return cls(
            kind=int(str(raw["kind"])),
            requester=to_checksum_address(str(raw["requester"])),
            qty=int(str(raw["qty"])),
            price=int(str(raw["price"])),
            expiry=int(str(raw["expiry"])),
            nonce=int(str(raw["nonce"])),
        )


def quote_digest(chain_id: int, processor: str, quote: FirmQuote) -> bytes:
    """The EIP-712 digest the issuer signs and ``OrderProcessor.quoteDigest`` computes."""
    domain = keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                keccak(text=_DOMAIN_TYPE),
                keccak(text=DOMAIN_NAME),
                keccak(text=DOMAIN_VERSION),
                chain_id,
                to_checksum_address(processor),
            ],
        )
    )
    struct = keccak(
        encode(
            ["bytes32", "uint8", "address", "uint256", "uint256", "uint256", "uint256"],
            [keccak(text=QUOTE_TYPE), *quote.as_tuple()],
        )
    )
    return keccak(b"\x19\x01" + domain + struct)


def client_ref(request_id: str) -> bytes:
    """The 32-byte reference an order carries on chain for our request id."""
    return keccak(text=request_id)


def quote_nonce(requester: str, reference: str) -> int:
    """One nonce per requester and client reference, so a quote asked for twice can settle once."""
    return int.from_bytes(
        keccak(encode(["address", "string"], [to_checksum_address(requester), reference])), "big"
    )
