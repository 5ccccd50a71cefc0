"""Live issuer adapters, one per issuer model of DOMAIN.md (docs/issuers.md): the on-chain order
processor (order_processor.py), the firm quote settled on chain (firm_quote.py) and the delayed
request over HTTP (delayed_request.py). Each is a kernel ``IssuerVenue`` that answers through
``VenueEvents.on_request_update``; ``terms.py`` holds the arithmetic they share with the issuer
sandbox, ``wallet.py`` the minimal on-chain sender."""
