"""The perpetual contracts a config declares (``kind = "perpetual"`` venues), as ``PerpContract``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.model import PerpContract

if TYPE_CHECKING:
    from bot.config import Settings, VenueConfig


def perp_contract(name: str, v: VenueConfig) -> PerpContract:
    """The contract of perpetual venue ``name``."""
    return PerpContract(
        venue=name,
        instrument=v.perp_instrument or f"{v.perp_token}-PERP",
        token=v.perp_token,
        contract_size=v.contract_size,
        funding_interval_s=v.funding_interval_s,
        maintenance_margin=v.maintenance_margin,
    )


def perp_contracts(settings: Settings) -> dict[str, PerpContract]:
    """Venue name -> its contract, for every perpetual venue."""
    return {
        name: perp_contract(name, v) for name, v in settings.venues.items() if v.kind == "perpetual"
    }


def perps_of_token(settings: Settings) -> dict[str, list[PerpContract]]:
    """Token -> the perpetuals that track it."""
    out: dict[str, list[PerpContract]] = {}
    for contract in perp_contracts(settings).values():
        out.setdefault(contract.token, []).append(contract)
    return out
