"""Token exchanges through ccxt: one wrapper, each venue's quirks declared as data (venues.py), and
tokenized-stock symbols resolved through the venue's own ids (symbols.py)."""
