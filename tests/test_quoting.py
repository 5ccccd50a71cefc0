"""The quoting models' closed forms, against the formulas worked out in 40-digit Decimal."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest

from strategies.quoting import (
    arrival_term,
    as_reservation,
    as_spread,
    avellaneda_stoikov,
    glft,
    model_quotes,
    symmetric,
)

TOL = 1e-9


def _d(x: float) -> Decimal:
    return Decimal(repr(x))


def _as_exact(
    s: float, q: float, g: float, sig: float, k: float, tau: float
) -> tuple[Decimal, ...]:
    with localcontext() as c:
        c.prec = 40
        s_, q_, g_, sig_, k_, tau_ = map(_d, (s, q, g, sig, k, tau))
        r = s_ - q_ * g_ * sig_ * sig_ * tau_
        spread = g_ * sig_ * sig_ * tau_ + 2 / g_ * (1 + g_ / k_).ln()
        return r, r - spread / 2, r + spread / 2, spread


def _glft_exact(
    s: float, q: float, g: float, sig: float, k: float, a: float
) -> tuple[Decimal, ...]:
    with localcontext() as c:
        c.prec = 40
        s_, q_, g_, sig_, k_, a_ = map(_d, (s, q, g, sig, k, a))
        c1 = (1 + g_ / k_).ln() / g_
        power = ((1 + k_ / g_) * (1 + g_ / k_).ln()).exp()
        c2 = (sig_ * sig_ * g_ / (2 * k_ * a_) * power).sqrt()
        bid = s_ - (c1 + (2 * q_ + 1) / 2 * c2)
        ask = s_ + (c1 - (2 * q_ - 1) / 2 * c2)
        return bid, ask, c1, c2


# (s, q, gamma, sigma, k, tau): the paper's example (s=100, sigma=2, k=1.5, T=1) and a token's
AS_CASES = [
    (100.0, 0.0, 0.1, 2.0, 1.5, 1.0),
    (100.0, 3.0, 0.1, 2.0, 1.5, 0.25),
    (100.0, -7.0, 0.01, 2.0, 1.5, 0.5),
    (231.37, 4.0, 0.5, 0.021, 20.0, 600.0),
    (231.37, -2.5, 2.0, 0.021, 35.0, 3600.0),
]


@pytest.mark.parametrize(("s", "q", "g", "sig", "k", "tau"), AS_CASES)
def test_avellaneda_stoikov_quotes_match_the_closed_form(
    s: float, q: float, g: float, sig: float, k: float, tau: float
) -> None:
    r, bid, ask, spread = _as_exact(s, q, g, sig, k, tau)
    quotes = avellaneda_stoikov(s, q, g, sig, k, tau)
    assert abs(quotes.reservation - float(r)) < TOL
    assert abs(quotes.bid - float(bid)) < TOL
    assert abs(quotes.ask - float(ask)) < TOL
    assert abs(quotes.spread - float(spread)) < TOL
    assert abs(as_spread(g, sig, k, tau) - float(spread)) < TOL
    assert abs(as_reservation(s, q, g, sig, tau) - float(r)) < TOL


def test_the_paper_example_spread() -> None:
    # Avellaneda and Stoikov (2008), gamma = 0.1, k = 1.5: the spread without inventory risk is
    # 20 ln(1 + 1/15) = 1.29 (their table); at T - t = 1 with sigma = 2 it is 0.4 more
    assert 2 * arrival_term(0.1, 1.5) == pytest.approx(1.2907704, abs=1e-7)
    assert as_spread(0.1, 2.0, 1.5, 1.0) == pytest.approx(1.6907704, abs=1e-7)


GLFT_CASES = [
    (100.0, 0.0, 0.1, 2.0, 1.5, 140.0),
    (100.0, 3.0, 0.1, 2.0, 1.5, 140.0),
    (231.37, -4.0, 1.0, 0.021, 20.0, 1.0),
    (231.37, 9.0, 0.05, 0.021, 20.0, 0.3),
    (50.0, 1.0, 1e-4, 0.01, 40.0, 2.0),  # gamma/k tiny: the power tends to e
]


@pytest.mark.parametrize(("s", "q", "g", "sig", "k", "a"), GLFT_CASES)
def test_glft_quotes_match_the_closed_form(
    s: float, q: float, g: float, sig: float, k: float, a: float
) -> None:
    bid, ask, c1, c2 = _glft_exact(s, q, g, sig, k, a)
    quotes = glft(s, q, g, sig, k, a)
    assert abs(quotes.bid - float(bid)) < TOL
    assert abs(quotes.ask - float(ask)) < TOL
    assert abs(quotes.spread - float(2 * c1 + c2)) < TOL  # the spread does not depend on q
    assert abs(quotes.reservation - float(_d(s) - _d(q) * c2)) < TOL
    assert abs(arrival_term(g, k) - float(c1)) < TOL


def test_the_symmetric_baseline_is_the_flat_book_spread_around_the_mid() -> None:
    for s, q, g, sig, k, tau in AS_CASES:
        _, _, _, spread = _as_exact(s, 0.0, g, sig, k, tau)
        quotes = symmetric(s, g, sig, k, tau)
        assert quotes.reservation == s
        assert abs(quotes.bid - float(_d(s) - spread / 2)) < TOL
        assert abs(quotes.ask - float(_d(s) + spread / 2)) < TOL
        assert model_quotes("symmetric", s, q, g, sig, k, 1.0, tau) == quotes


def test_inventory_skews_both_quotes_down_when_long_and_up_when_short() -> None:
    flat = avellaneda_stoikov(100.0, 0.0, 0.1, 2.0, 1.5, 1.0)
    long = avellaneda_stoikov(100.0, 2.0, 0.1, 2.0, 1.5, 1.0)
    short = glft(100.0, -2.0, 0.1, 2.0, 1.5, 140.0)
    assert long.bid < flat.bid and long.ask < flat.ask
    assert short.bid > glft(100.0, 0.0, 0.1, 2.0, 1.5, 140.0).bid
    assert model_quotes("glft", 100.0, -2.0, 0.1, 2.0, 1.5, 140.0, 9.9) == short
    assert model_quotes("avellaneda_stoikov", 100.0, 2.0, 0.1, 2.0, 1.5, 7.0, 1.0) == long
