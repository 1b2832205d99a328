"""Money: integer minor units in a known currency, added only to its own currency, formatted with
the currency's number of minor-unit digits."""

from __future__ import annotations

from decimal import Decimal
from functools import reduce
from random import Random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderflow.domain.errors import InvalidMoneyError
from orderflow.domain.money import MAX_AMOUNT, MINOR_UNITS, Money, validate_currency


@pytest.mark.parametrize("amount", [0, 1, 1_999, MAX_AMOUNT])
def test_accepts_integer_minor_units_within_range(amount: int) -> None:
    assert Money(amount, "EUR").amount == amount


@pytest.mark.parametrize(
    "amount",
    [1.0, 19.99, float("nan"), True, False, Decimal("10"), "100", None],
    ids=repr,
)
def test_rejects_anything_but_an_integer_amount(amount: object) -> None:
    with pytest.raises(InvalidMoneyError, match="integer"):
        Money(amount, "EUR")  # type: ignore[arg-type]


@pytest.mark.parametrize("amount", [-1, -MAX_AMOUNT, MAX_AMOUNT + 1, 10**30])
def test_rejects_amounts_out_of_range(amount: int) -> None:
    with pytest.raises(InvalidMoneyError, match="out of range"):
        Money(amount, "EUR")


@pytest.mark.parametrize("currency", ["XXX", "", "EURO", "BTC"])
def test_rejects_unknown_currencies(currency: str) -> None:
    with pytest.raises(InvalidMoneyError, match="unsupported currency"):
        Money(100, currency)
    with pytest.raises(InvalidMoneyError, match="unsupported currency"):
        validate_currency(currency)


def test_zero_is_an_empty_amount_in_the_currency() -> None:
    assert Money.zero("JPY") == Money(0, "JPY")


def test_adds_amounts_of_the_same_currency() -> None:
    assert Money(1_250, "EUR") + Money(750, "EUR") == Money(2_000, "EUR")


def test_adding_different_currencies_raises() -> None:
    with pytest.raises(InvalidMoneyError, match="cannot mix EUR and USD"):
        Money(100, "EUR") + Money(100, "USD")


def test_addition_past_the_maximum_raises() -> None:
    with pytest.raises(InvalidMoneyError, match="out of range"):
        Money(MAX_AMOUNT, "EUR") + Money(1, "EUR")


@pytest.mark.parametrize(
    ("amount", "quantity", "expected"), [(250, 3, 750), (250, 1, 250), (250, 0, 0)]
)
def test_multiplies_by_a_quantity(amount: int, quantity: int, expected: int) -> None:
    assert Money(amount, "GBP") * quantity == Money(expected, "GBP")


@pytest.mark.parametrize("quantity", [-1, 1.5, MAX_AMOUNT + 1], ids=repr)
def test_multiplying_to_a_negative_fractional_or_huge_amount_raises(quantity: object) -> None:
    with pytest.raises(InvalidMoneyError):
        Money(100, "GBP") * quantity  # type: ignore[operator]


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(0, "JPY"), "0 JPY"),
        (Money(1_234, "JPY"), "1234 JPY"),
        (Money(0, "EUR"), "0.00 EUR"),
        (Money(5, "EUR"), "0.05 EUR"),
        (Money(1_234, "EUR"), "12.34 EUR"),
        (Money(100_000, "USD"), "1000.00 USD"),
        (Money(0, "KWD"), "0.000 KWD"),
        (Money(5, "BHD"), "0.005 BHD"),
        (Money(1_234, "KWD"), "1.234 KWD"),
        (Money(MAX_AMOUNT, "EUR"), "10000000000000.00 EUR"),
    ],
    ids=str,
)
def test_formats_with_the_currencys_minor_unit_digits(money: Money, text: str) -> None:
    assert money.format() == text


# --- properties ---------------------------------------------------------------------------

currencies = st.sampled_from(sorted(MINOR_UNITS))
# (unit price, quantity) pairs small enough that any basket stays below MAX_AMOUNT.
lines = st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 1_000)), min_size=1, max_size=20)
fast = settings(max_examples=200, database=None, deadline=None)


@fast
@given(currencies, lines, st.randoms(use_true_random=False))
def test_sum_of_line_totals_is_the_same_in_any_order(
    currency: str, basket: list[tuple[int, int]], rnd: Random
) -> None:
    totals = [Money(price, currency) * quantity for price, quantity in basket]
    shuffled = rnd.sample(totals, len(totals))
    in_order = reduce(Money.__add__, totals, Money.zero(currency))
    reordered = reduce(Money.__add__, shuffled, Money.zero(currency))
    assert in_order == reordered == Money(sum(p * q for p, q in basket), currency)


@fast
@given(currencies, st.integers(0, MAX_AMOUNT))
def test_format_round_trips_the_amount(currency: str, amount: int) -> None:
    number, code = Money(amount, currency).format().split(" ")
    digits = MINOR_UNITS[currency]
    assert code == currency
    assert len(number.partition(".")[2]) == digits
    assert int(number.replace(".", "")) == amount
