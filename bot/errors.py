"""Errors that reach a user as one line and a non-zero exit (the CLI prints ``error: <message>``).

Raise these for bad input (config, feed, venue answers, CLI arguments). The message names what is
wrong and where; it never contains a secret. Anything else escaping the CLI is a bug.
"""

from __future__ import annotations


class PegbotError(Exception):
    """Base class: a problem the user can fix; printed as one line, exit code ``exit_code``."""

    exit_code = 2


class ConfigError(PegbotError):
    """The configuration is invalid. ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class FeedError(PegbotError):
    """A feed is missing, of another schema version, malformed, or lacks a needed instrument."""


class ConnectError(PegbotError):
    """A venue, issuer or market-data source of a live run cannot be connected: nothing trades."""


class InputError(PegbotError):
    """A source file or CLI argument is unusable."""
