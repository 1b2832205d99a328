"""Money as integer minor units plus an ISO 4217 currency code."""

from __future__ import annotations

from dataclasses import dataclass

from orderflow.domain.errors import InvalidMoneyError

# Currencies we accept, with their number of minor-unit digits (ISO 4217).
MINOR_UNITS: dict[str, int] = {
    "AUD": 2, "BRL": 2, "CAD": 2, "CHF": 2, "CNY": 2, "CZK": 2, "DKK": 2, "EUR": 2,
    "GBP": 2, "HKD": 2, "HUF": 2, "INR": 2, "JPY": 0, "KRW": 0, "MXN": 2, "NOK": 2,
    "NZD": 2, "PLN": 2, "SEK": 2, "SGD": 2, "USD": 2, "ZAR": 2, "BHD": 3, "KWD": 3,
}  # fmt: skip

# Far above any real basket, far below where a float or a database integer overflows.
MAX_AMOUNT = 10**15


def validate_currency(code: str) -> str:
    if code not in MINOR_UNITS:
        raise InvalidMoneyError(f"unsupported currency {code!r}")
    return code


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise InvalidMoneyError("amount must be an integer number of minor units")
        if not 0 <= self.amount <= MAX_AMOUNT:
            raise InvalidMoneyError(f"amount {self.amount} out of range")
        validate_currency(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __mul__(self, quantity: int) -> Money:
        return Money(self.amount * quantity, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise InvalidMoneyError(f"cannot mix {self.currency} and {other.currency}")

    def format(self) -> str:
        digits = MINOR_UNITS[self.currency]
        if digits == 0:
            return f"{self.amount} {self.currency}"
        major, minor = divmod(self.amount, 10**digits)
        return f"{major}.{minor:0{digits}d} {self.currency}"
