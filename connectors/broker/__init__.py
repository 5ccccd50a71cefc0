"""The stock broker: Alpaca through the real ``alpaca-py`` (docs/connectors.md, "## Alpaca").

- :class:`AlpacaBroker` (alpaca_broker.py) is a ``LiveOrderVenue``: orders (checked first against
  buying power, shorting and pattern day trading), replaces, cancels, lookups by client id,
  balances, account reads, and the ``trade_updates`` stream turned into ``OrderUpdate`` and
  ``Fill``.
- :class:`AlpacaQuotes` (alpaca_quotes.py) is a ``MarketDataSource``: the stock quote stream
  (iex, sip or overnight) with an entitlement fallback, reported through ``on_connection``.

The modules beside them: alpaca_account.py and alpaca_checks.py (the account, positions, clock
and calendar read exact, and the checks before each order), alpaca_replace.py (PATCH an open
order), alpaca_wire.py (Alpaca's order JSON to and from the kernel's model, no
I/O), alpaca_rest.py (the synchronous REST client on worker threads, errors sorted into refused,
unknown outcome and rate limited, with back-off), alpaca_streams.py (alpaca-py's websocket
clients on their own threads, reporting their connection state).
"""

from connectors.broker.alpaca_broker import LIVE_CONFIRMATION, AlpacaBroker, BrokerConnectError
from connectors.broker.alpaca_quotes import ALPACA_STREAM_URLS, AlpacaQuotes
from connectors.broker.alpaca_replace import ReplaceRefused
from connectors.broker.alpaca_rest import Backoff

__all__ = [
    "ALPACA_STREAM_URLS",
    "LIVE_CONFIRMATION",
    "AlpacaBroker",
    "AlpacaQuotes",
    "Backoff",
    "BrokerConnectError",
    "ReplaceRefused",
]
