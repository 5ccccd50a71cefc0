"""Log output: redaction of secrets everywhere, no locals in tracebacks, sim timestamps, context."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from bot.logging import (
    bind_context,
    bound_context,
    clear_context,
    configure_logging,
    format_ns,
    get_logger,
    redact_text,
    register_secret,
    reset_logging,
    set_time_source,
)

SIM_NS = 1_700_000_000_123_456_789
SIM_ISO = "2023-11-14T22:13:20.123456789Z"
SECRET = "sk-live-7f3a9c2e1d4b"


@pytest.fixture(autouse=True)
def _clean_logging() -> Iterator[None]:
    register_secret(SECRET)
    yield
    clear_context()
    reset_logging()


def capture(level: str = "debug", *, as_json: bool = True) -> io.StringIO:
    buf = io.StringIO()
    configure_logging(level, json=as_json, stream=buf)
    set_time_source(lambda: SIM_NS)
    return buf


def lines(buf: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def fail_with_secret_in_message() -> None:
    wallet_private_hex = "0xdeadbeefcafe0123456789"
    connected = len(wallet_private_hex) > 0
    raise PermissionError(f"alpaca refused key {SECRET} (connected={connected})")


def test_json_line_carries_event_level_sim_timestamp_and_fields() -> None:
    buf = capture()
    get_logger("test").info("quote", instrument="TSLAx", bid=101.23)
    assert lines(buf) == [
        {
            "event": "quote",
            "instrument": "TSLAx",
            "bid": 101.23,
            "level": "info",
            "timestamp": SIM_ISO,
        }
    ]


@pytest.mark.parametrize("as_json", [True, False])
def test_registered_secret_never_appears_in_message_fields_or_exception(as_json: bool) -> None:
    buf = capture(as_json=as_json)
    log = get_logger("test")
    log.info(f"connecting with {SECRET}", url=f"wss://x/?k={SECRET}", nested={"a": [SECRET]})
    log.warning("saw %s", SECRET)
    try:
        fail_with_secret_in_message()
    except PermissionError as exc:
        log.exception("auth failed")
        log.error("wrapped", error=exc)
    try:
        try:
            fail_with_secret_in_message()
        except PermissionError as inner:
            raise RuntimeError("outer") from inner
    except RuntimeError:
        log.exception("chained")
    out = buf.getvalue()
    assert SECRET not in out
    assert out.count("***") >= 7
    assert "alpaca refused key ***" in out


@pytest.mark.parametrize("as_json", [True, False])
def test_traceback_is_rendered_without_local_variable_values(as_json: bool) -> None:
    buf = capture(as_json=as_json)
    try:
        fail_with_secret_in_message()
    except PermissionError:
        get_logger("test").exception("auth failed")
    out = buf.getvalue()
    assert "fail_with_secret_in_message" in out  # the frame is there ...
    assert "0xdeadbeefcafe0123456789" not in out  # ... its locals are not
    assert "wallet_private_hex" not in out


@pytest.mark.parametrize("as_json", [True, False])
def test_standard_library_records_are_redacted_too(as_json: bool) -> None:
    buf = capture(as_json=as_json)
    logging.getLogger("web3.providers").warning("request failed for %s", SECRET)
    try:
        fail_with_secret_in_message()
    except PermissionError:
        logging.getLogger("ccxt").exception("ccxt error")
    out = buf.getvalue()
    assert SECRET not in out
    assert "web3.providers" in out
    assert "request failed for ***" in out


def test_values_of_secret_looking_keys_are_masked_at_any_depth() -> None:
    buf = capture()
    get_logger("test").info(
        "config",
        api_key="AKXYZ",
        ALPACA_SECRET_KEY="shh",
        headers={"Authorization": "Bearer abc", "Accept": "json"},
        wallet={"private_key": "0xabc", "address": "0x1"},
        passphrase="pp",
        access_token="tok",
        venue="kraken",
    )
    (line,) = lines(buf)
    assert line["api_key"] == "***"
    assert line["ALPACA_SECRET_KEY"] == "***"
    assert line["headers"] == {"Authorization": "***", "Accept": "json"}
    assert line["wallet"] == {"private_key": "***", "address": "0x1"}
    assert line["passphrase"] == "***"
    assert line["access_token"] == "***"
    assert line["venue"] == "kraken"


def test_secret_str_values_are_masked_under_any_key() -> None:
    buf = capture()
    get_logger("test").info("settings", broker_login=SecretStr("hunter2"), items=[SecretStr("x")])
    (line,) = lines(buf)
    assert line["broker_login"] == "***"
    assert line["items"] == ["***"]
    assert "hunter2" not in buf.getvalue()


def test_objects_are_rendered_by_repr_after_redaction_and_decimals_as_text() -> None:
    from decimal import Decimal

    buf = capture()
    get_logger("test").info("fill", price=Decimal("101.23"), error=ValueError(f"bad {SECRET}"))
    (line,) = lines(buf)
    assert line["price"] == "101.23"
    assert line["error"] == "ValueError('bad ***')"


def test_bound_context_appears_on_lines_and_is_removed_after_the_block() -> None:
    buf = capture()
    log = get_logger("test")
    bind_context(venue="alpaca")
    with bound_context(client_order_id="pb-42"):
        log.info("inside")
    log.info("outside")
    inside, outside = lines(buf)
    assert inside["venue"] == outside["venue"] == "alpaca"
    assert inside["client_order_id"] == "pb-42"
    assert "client_order_id" not in outside


def test_level_filters_lower_records_for_both_logger_kinds() -> None:
    buf = capture("warning")
    get_logger("test").info("dropped")
    logging.getLogger("aiohttp").info("dropped too")
    get_logger("test").warning("kept")
    assert [line["event"] for line in lines(buf)] == ["kept"]


def test_unknown_level_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="'verbose'; allowed: critical, debug, error"):
        configure_logging("verbose")


def test_json_is_chosen_when_the_stream_is_not_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    piped = io.StringIO()
    configure_logging(stream=piped)
    set_time_source(lambda: SIM_NS)
    get_logger("test").info("piped")
    assert json.loads(piped.getvalue())["event"] == "piped"

    tty = Terminal()
    configure_logging(stream=tty)
    set_time_source(lambda: SIM_NS)
    get_logger("test").info("on a terminal")
    text = tty.getvalue()
    assert SIM_ISO in text
    assert "on a terminal" in text
    assert "\x1b[" in text  # coloured for a terminal
    assert not text.lstrip().startswith("{")


def test_time_source_none_restores_the_wall_clock() -> None:
    buf = capture()
    set_time_source(None)
    get_logger("test").info("now")
    (line,) = lines(buf)
    assert line["timestamp"] != SIM_ISO
    assert str(line["timestamp"]).startswith("20")


def test_format_ns_prints_all_nine_fraction_digits_in_utc() -> None:
    assert format_ns(0) == "1970-01-01T00:00:00.000000000Z"
    assert format_ns(SIM_NS) == SIM_ISO
    assert format_ns(1) == "1970-01-01T00:00:00.000000001Z"


def test_redact_text_masks_longest_registered_secret_first() -> None:
    register_secret("abcd1234")
    register_secret("abcd1234-extended")
    register_secret("")  # ignored, would otherwise match everywhere
    assert redact_text("x abcd1234-extended y abcd1234 z") == "x *** y *** z"
    assert redact_text("nothing here") == "nothing here"
