"""Pure domain: order state machine, money, messages and errors. No I/O lives here."""
