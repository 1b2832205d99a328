"""Domain errors.

DomainError                      a rule of the domain was broken (permanent)
├── InvalidMoneyError            bad amount or currency
├── InvalidTransitionError       the state machine refuses a transition
└── OrderNotCancellableError     cancelling an order that already left the warehouse
"""


class DomainError(Exception):
    """Base of every error raised by pure domain code."""


class InvalidMoneyError(DomainError):
    pass


class InvalidTransitionError(DomainError):
    pass


class OrderNotCancellableError(DomainError):
    pass
