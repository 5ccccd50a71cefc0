"""Structured logging for every pegbot process, with secrets redacted before anything is written.

:func:`configure_logging` routes both structlog loggers (:func:`get_logger`) and the standard
``logging`` records of libraries (web3, ccxt, aiohttp, alpaca-py) through one handler: JSON lines
when the stream is not a terminal, a readable console line on a terminal. Timestamps come from a
settable source (:func:`set_time_source`) so a backtest logs simulated time; the default is the wall
clock from :mod:`bot.clock`. :func:`bind_context` attaches per-task context (instrument, venue,
client order id) through structlog's contextvars.

Redaction, applied last before rendering, to every key and value, nested ones included:
values of keys whose name contains one of :data:`SECRET_KEY_PARTS` (case-insensitive) and pydantic
``SecretStr``/``SecretBytes`` values become ``"***"``, and every occurrence of a string passed to
:func:`register_secret` is replaced by ``"***"`` anywhere, exception text included. Tracebacks are
rendered without local variables.

What this module may not do: read the wall clock itself (it asks :mod:`bot.clock`), or write any
text that has not gone through redaction.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from contextvars import Token
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, TextIO, cast

import structlog
from pydantic import SecretBytes, SecretStr
from structlog.contextvars import (
    bind_contextvars,
    bound_contextvars,
    clear_contextvars,
    merge_contextvars,
    unbind_contextvars,
)
from structlog.processors import ExceptionRenderer
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from bot.clock import wall_time_ns

MASK = "***"
SECRET_KEY_PARTS = (
    "secret",
    "password",
    "private_key",
    "api_key",
    "access_token",
    "auth_token",
    "api_token",
    "refresh_token",
    "bearer",
    "passphrase",
    "authorization",
)
"""A key whose lower-cased name contains one of these has its value masked. Plain "token" is
not in the list: in this domain it names the tokenized stock (``token="AAPLx"``)."""

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

# Keys structlog's ProcessorFormatter uses internally (a LogRecord and a flag); removed before
# rendering, so passed through untouched.
_PROCESSOR_META = frozenset({"_record", "_from_structlog"})

_lock = threading.Lock()
_secrets: set[str] = set()
_secret_pattern: re.Pattern[str] | None = None
_time_source: Callable[[], int] = wall_time_ns
_handler: logging.Handler | None = None
_generation = 0  # bumped by every (re)configuration: loggers handed out rebind on their next call


def register_secret(value: str) -> None:
    """Mask every future occurrence of ``value`` in log output (empty strings are ignored)."""
    global _secret_pattern
    if not value:
        return
    with _lock:
        _secrets.add(value)
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _secret_pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact_text(text: str) -> str:
    """``text`` with every registered secret replaced by ``"***"``; for error messages too."""
    pattern = _secret_pattern
    return pattern.sub(MASK, text) if pattern is not None else text


@lru_cache(maxsize=4096)
def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in SECRET_KEY_PARTS)


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, SecretStr | SecretBytes):
        return MASK
    if isinstance(value, Mapping):
        return {
            _redact(k): MASK if isinstance(k, str) and _is_secret_key(k) else _redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    # Anything else would be repr()'d by the renderer after us: repr it here, then redact.
    return redact_text(repr(value))


def redact_event(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the redaction described in the module docstring."""
    return {
        key: value if key in _PROCESSOR_META else MASK if _is_secret_key(key) else _redact(value)
        for key, value in event_dict.items()
    }


def set_time_source(source: Callable[[], int] | None) -> None:
    """Use ``source()`` (ns since the epoch UTC) for log timestamps; None restores the wall clock.

    A backtest passes ``lambda: sim_clock.now`` so its log lines carry simulated time.
    """
    global _time_source
    _time_source = source if source is not None else wall_time_ns


def format_ns(ts_ns: int) -> str:
    """``2026-11-27T18:00:00.000000001Z``: ISO 8601 UTC with all nine digits of nanoseconds."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z"


def _add_timestamp(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    event_dict["timestamp"] = format_ns(_time_source())
    return event_dict


def _exception_renderer(json: bool) -> Processor:
    if json:
        return ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
    # Plain text traceback (never shows locals), rendered into the event dict before redaction so
    # that exception messages are redacted; the console renderer prints that string as it is.
    return structlog.processors.format_exc_info


def configure_logging(
    level: str = "info", *, json: bool | None = None, stream: TextIO | None = None
) -> None:
    """Send all logging to ``stream`` (default stderr) at ``level`` and above.

    ``json=None`` picks JSON lines unless ``stream`` is a terminal. Calling it again replaces the
    previous configuration (handlers installed by others on the root logger are left alone).
    """
    global _handler
    level_no = _LEVELS.get(level.lower())
    if level_no is None:
        allowed = ", ".join(sorted(_LEVELS))
        raise ValueError(f"unknown log level {level!r}; allowed: {allowed}")
    out = stream if stream is not None else sys.stderr
    is_tty = out.isatty()
    as_json = (not is_tty) if json is None else json

    # Everything up to redaction runs where the record is made, so even a foreign handler on the
    # root logger only ever sees a redacted event dict from structlog loggers.
    prepare: list[Processor] = [
        merge_contextvars,
        structlog.processors.add_log_level,
        _add_timestamp,
        _exception_renderer(as_json),
        redact_event,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(
            colors=is_tty, exception_formatter=structlog.dev.plain_traceback
        )
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *prepare],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    with _lock:
        if _handler is not None:
            root.removeHandler(_handler)
        root.addHandler(handler)
        _handler = handler
    root.setLevel(level_no)
    _reconfigured()
    structlog.configure(
        processors=[*prepare, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Not cached: a reconfiguration (tests, CLI flags) must reach loggers already handed out.
        cache_logger_on_first_use=False,
    )


def reset_logging() -> None:
    """Undo :func:`configure_logging`: remove its handler, restore structlog's defaults.

    Registered secrets stay registered for the life of the process.
    """
    global _handler
    with _lock:
        if _handler is not None:
            logging.getLogger().removeHandler(_handler)
            _handler = None
    structlog.reset_defaults()
    _reconfigured()
    set_time_source(None)


def _reconfigured() -> None:
    global _generation
    _generation += 1


class _Logger:
    """What :func:`get_logger` hands out: structlog's logger bound once per configuration.

    structlog's own lazy proxy, uncached, builds a new bound logger on every call (about 20 us,
    paid on the hot path even for a level that is filtered out); cached on first use it would
    keep the configuration of that moment. This one binds on first use and again after each
    :func:`configure_logging` or :func:`reset_logging`, so a call costs an attribute lookup and
    a comparison, and a filtered-out level is structlog's no-op.
    """

    __slots__ = ("_name", "_initial", "_generation", "_bound")

    def __init__(self, name: str | None, initial: dict[str, Any]) -> None:
        self._name = name
        self._initial = initial
        self._generation = -1
        self._bound: Any = None

    def _logger(self) -> Any:
        if self._generation != _generation:
            # bind() resolves structlog's proxy into a logger of the current configuration
            self._bound = structlog.get_logger(self._name, **self._initial).bind()
            self._generation = _generation
        return self._bound

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._logger(), attr)


def get_logger(name: str | None = None, **initial: Any) -> FilteringBoundLogger:
    """A structlog logger (the logger's ``name`` and the ``initial`` key/values bound to it)
    that follows :func:`configure_logging`: every module takes its logger from here."""
    return cast(FilteringBoundLogger, _Logger(name, initial))


def bind_context(**kv: Any) -> Mapping[str, Token[Any]]:
    """Attach ``kv`` to every log line of the current task/thread (e.g. instrument, venue).

    Returns tokens for ``structlog.contextvars.reset_contextvars(**tokens)``.
    """
    return bind_contextvars(**kv)


def unbind_context(*keys: str) -> None:
    unbind_contextvars(*keys)


def clear_context() -> None:
    clear_contextvars()


def bound_context(**kv: Any) -> AbstractContextManager[None]:
    """``with bound_context(client_order_id=...):`` binds ``kv`` for the block only."""
    return bound_contextvars(**kv)
