"""The signing key of an EVM account: loaded from an encrypted keystore file (the password in an
environment variable) or from an environment variable holding the key itself.

The config names where the key is (a path, a variable name), never the key. A loaded key lives
inside a :class:`Signer`, whose repr and str show the address only; the key's hex (with and
without ``0x``) and the keystore password are registered with ``bot.logging.register_secret`` the
moment they are read, so no log line, error or traceback rendered by pegbot's logging can carry
them. Errors name the file or variable and what is wrong with it, never the value.

What this module may not do: log, return or put into an exception message a key or a password.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.datastructures import SignedTransaction
from eth_account.signers.local import LocalAccount

from bot.logging import register_secret


class KeyLoadError(RuntimeError):
    """The key could not be loaded (one line, without the secret)."""


class Signer:
    """Signs transactions for one account. Only ``address`` is public."""

    __slots__ = ("address", "_account")

    def __init__(self, account: LocalAccount) -> None:
        self.address: str = account.address
        self._account = account

    def __repr__(self) -> str:
        return f"Signer({self.address})"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # never pickled (a pickle would carry the key)
        raise TypeError("a Signer cannot be pickled")

    def sign_transaction(self, tx: dict[str, Any]) -> SignedTransaction:
        signed: SignedTransaction = self._account.sign_transaction(tx)
        return signed


def _signer(key: str | bytes, where: str) -> Signer:
    text = key.hex() if isinstance(key, bytes) else key.strip()
    bare = text.removeprefix("0x")
    register_secret(bare)
    register_secret("0x" + bare)
    try:
        account: LocalAccount = Account.from_key(bytes.fromhex(bare))
    except ValueError:
        raise KeyLoadError(f"{where} does not hold a valid private key") from None
    return Signer(account)


def signer_from_env(variable: str) -> Signer:
    """The key in environment variable ``variable`` (hex, with or without ``0x``)."""
    value = os.environ.get(variable, "")
    if not value.strip():
        raise KeyLoadError(f"environment variable {variable} is not set")
    return _signer(value, f"environment variable {variable}")


def signer_from_keystore(path: Path, password_variable: str) -> Signer:
    """The key in the encrypted keystore file ``path`` (the JSON ``geth``, ``cast wallet`` and
    ``eth_account`` write), decrypted with the password in ``password_variable``."""
    password = os.environ.get(password_variable)
    if password is None:
        raise KeyLoadError(f"environment variable {password_variable} is not set")
    register_secret(password)
    try:
        keystore = json.loads(path.read_text())
    except OSError as exc:
        raise KeyLoadError(f"keystore {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise KeyLoadError(f"keystore {path} is not JSON") from None
    try:
        key = Account.decrypt(keystore, password)
    except ValueError:
        raise KeyLoadError(
            f"keystore {path} cannot be decrypted with the password in {password_variable}"
        ) from None
    except (KeyError, TypeError):
        raise KeyLoadError(f"keystore {path} is not an encrypted key file") from None
    return _signer(bytes(key), f"keystore {path}")


def load_signer(
    *,
    key_variable: str | None = None,
    keystore: Path | None = None,
    password_variable: str | None = None,
) -> Signer:
    """One of: a keystore file with its password variable, or a key variable."""
    if keystore is not None:
        if not password_variable:
            raise KeyLoadError(f"keystore {keystore} needs a password variable")
        return signer_from_keystore(keystore, password_variable)
    if key_variable:
        return signer_from_env(key_variable)
    raise KeyLoadError("no key configured: give a keystore file or a key variable")
