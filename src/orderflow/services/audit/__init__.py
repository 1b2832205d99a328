"""The audit: every invariant of the stored orders, stock and money, checked at once."""

from orderflow.services.audit.invariants import INVARIANTS, Violation, run_audit

__all__ = ["INVARIANTS", "Violation", "run_audit"]
