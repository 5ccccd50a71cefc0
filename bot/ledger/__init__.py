"""The ledger: exact cash and positions per venue, in-flight mint/redeem, funding, and PnL.

``Ledger`` (bot/ledger/core.py) is the book; ``PnlBreakdown`` and ``LedgerSnapshot`` are what it
reports. The package is split by idea: ``exact`` (the Decimal contexts and the two places that
round), ``positions`` (cost basis and realized PnL), ``requests`` (in-flight requests and the
capital they lock), ``transfers`` (cash and tokens between our accounts), ``reports`` (the
output types). No module here performs I/O or reads a clock.
"""

from bot.ledger.core import Ledger
from bot.ledger.exact import BASIS_QUANTUM, FUNDING_QUANTUM, NS_PER_YEAR
from bot.ledger.reports import InFlightSummary, LedgerSnapshot, PnlBreakdown, VenueBalances
from bot.ledger.transfers import TransferView, debits

__all__ = [
    "BASIS_QUANTUM",
    "FUNDING_QUANTUM",
    "NS_PER_YEAR",
    "InFlightSummary",
    "Ledger",
    "LedgerSnapshot",
    "PnlBreakdown",
    "TransferView",
    "VenueBalances",
    "debits",
]
