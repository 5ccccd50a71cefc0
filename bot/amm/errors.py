"""The one exception the AMM math raises: a call the on-chain contract would revert.

The message starts with the contract's revert reason where it has one (``'SPL'``, ``'LS'``,
``'T'`` ...) so a failure can be matched to the Solidity source.
"""

from __future__ import annotations


class AmmRevert(ValueError):
    """The contract would revert on these inputs (overflow, bad tick, bad price limit, ...)."""
