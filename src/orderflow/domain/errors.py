"""Domain errors.

DomainError                      a rule of the domain was broken (permanent)
├── InvalidMoneyError            bad amount or currency
├── InvalidTransitionError       the state machine refuses a transition
├── OrderNotCancellableError     cancelling an order that already left the warehouse
└── OrderNotResumableError       resuming an order that is not failed, or whose failure undid
                                 a hold or a payment
"""


class DomainError(Exception):
    """Base of every error raised by pure domain code."""


class InvalidMoneyError(DomainError):
    pass


class InvalidTransitionError(DomainError):
    pass


class OrderNotCancellableError(DomainError):
    pass


class OrderNotResumableError(DomainError):
    pass
