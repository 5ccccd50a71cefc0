"""Exact money: float intake by repr, display rounding, bps, base-unit conversion."""

from __future__ import annotations

import decimal
import math
from decimal import Decimal

import pytest

from bot.money import (
    MONEY_CONTEXT,
    apply_bps,
    bps,
    bps_of,
    fmt_usd,
    from_base_units,
    money_context,
    to_base_units,
    to_decimal,
    usd,
)

UINT256_MAX = 2**256 - 1


def test_floats_enter_by_their_shortest_repr() -> None:
    assert to_decimal(101.23) == Decimal("101.23")
    assert str(to_decimal(101.23)) == "101.23"
    assert to_decimal(0.1) + to_decimal(0.2) == Decimal("0.3")
    assert to_decimal(1e-18) == Decimal("1E-18")
    assert to_decimal(-0.0) == 0


def test_ints_strings_and_decimals_convert_exactly() -> None:
    assert to_decimal(10**30 + 1) == Decimal("1000000000000000000000000000001")
    assert to_decimal(" 12.3400 ") == Decimal("12.3400")
    exact = Decimal("0.000000000000000001")
    assert to_decimal(exact) is exact


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "NaN", "Infinity", Decimal("NaN")])
def test_non_finite_amounts_are_rejected(bad: float | str | Decimal) -> None:
    with pytest.raises(ValueError, match="finite"):
        to_decimal(bad)


def test_unparsable_strings_and_non_numbers_are_rejected() -> None:
    with pytest.raises(ValueError, match="not a number: '12,5'"):
        to_decimal("12,5")
    with pytest.raises(TypeError, match="bool"):
        to_decimal(True)
    with pytest.raises(TypeError, match="list"):
        to_decimal([1])  # type: ignore[arg-type]


def test_usd_rounds_half_even_to_cents_from_the_decimal_value() -> None:
    assert usd("2.675") == Decimal("2.68")
    assert usd("2.665") == Decimal("2.66")
    assert usd(2.675) == Decimal("2.68")  # round(2.675, 2) on the float gives 2.67
    assert usd(7) == Decimal("7.00")
    assert str(usd("0.005")) == "0.00"


def test_fmt_usd_formats_sign_separators_and_cents() -> None:
    assert fmt_usd(Decimal("1234567.891")) == "$1,234,567.89"
    assert fmt_usd(-0.5) == "-$0.50"
    assert fmt_usd("-0.001") == "$0.00"
    assert fmt_usd(0) == "$0.00"


def test_bps_is_part_over_whole_times_ten_thousand() -> None:
    assert bps(1, 400) == Decimal(25)
    assert bps(Decimal("101.23") - 100, 100) == Decimal(123)
    assert bps(-3, 1000) == Decimal(-30)
    with pytest.raises(ValueError, match="zero whole"):
        bps(1, 0)


def test_bps_of_and_apply_bps_are_exact() -> None:
    assert bps_of(1000, 25) == Decimal("2.5")
    assert bps_of(Decimal("0.20"), Decimal("12.5")) == Decimal("0.00025")
    assert apply_bps(100, 25) == Decimal("100.25")
    assert apply_bps(100, -25) == Decimal("99.75")
    assert apply_bps(Decimal("293.17"), 400) == Decimal("304.8968")


def test_to_base_units_scales_exactly() -> None:
    assert to_base_units(Decimal("1.5"), 18) == 1_500_000_000_000_000_000
    assert to_base_units(Decimal("123.45"), 2) == 12345
    assert to_base_units(Decimal("1E+3"), 6) == 1_000_000_000
    assert to_base_units(7, 0) == 7
    assert to_base_units("0.00000001", 8) == 1


def test_to_base_units_rounds_toward_zero() -> None:
    assert to_base_units(Decimal("1.0000000000000000009"), 18) == 10**18
    assert to_base_units(Decimal("0.999"), 2) == 99
    assert to_base_units(Decimal("-1.9"), 0) == -1
    assert to_base_units(Decimal("0.0000000000000000001"), 18) == 0


def test_base_units_round_trip_uint256_max_at_18_decimals() -> None:
    amount = from_base_units(UINT256_MAX, 18)
    assert (
        str(amount)
        == "115792089237316195423570985008687907853269984665640564039457.584007913129639935"
    )
    assert to_base_units(amount, 18) == UINT256_MAX


def test_from_base_units_is_exact_and_keeps_the_sign() -> None:
    assert from_base_units(1, 18) == Decimal("1E-18")
    assert str(from_base_units(1, 18)) == "1E-18"
    assert from_base_units(-5, 2) == Decimal("-0.05")
    assert from_base_units(0, 6) == 0
    assert from_base_units(1_500_000, 6) == Decimal("1.5")


def test_base_unit_conversions_reject_bad_arguments() -> None:
    with pytest.raises(ValueError, match="decimals"):
        to_base_units(1, -1)
    with pytest.raises(ValueError, match="decimals"):
        from_base_units(1, 256)
    with pytest.raises(TypeError, match="int"):
        from_base_units(True, 18)
    with pytest.raises(TypeError, match="int"):
        from_base_units(1.0, 18)  # type: ignore[arg-type]


def test_money_context_keeps_fifty_digits_where_the_default_keeps_28() -> None:
    big, one = Decimal(10**40), Decimal(1)
    with decimal.localcontext(decimal.Context()):
        assert big + one == Decimal("1E+40")  # the default 28 digits lose the 1
    with money_context() as ctx:
        assert ctx.prec == MONEY_CONTEXT.prec == 50
        assert big + one == Decimal(10**40 + 1)
        with pytest.raises(decimal.DivisionByZero):
            one / Decimal(0)
