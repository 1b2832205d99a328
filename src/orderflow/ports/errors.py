"""Errors a storage adapter raises in the project's own terms (the driver's error is the cause).

StorageError
├── WriteConflictError      a write broke a uniqueness rule: a racing writer took the same key
└── ConcurrentUpdateError   an order changed between reading and writing it: try again
"""

from __future__ import annotations


class StorageError(Exception):
    pass


class WriteConflictError(StorageError):
    pass


class ConcurrentUpdateError(StorageError):
    pass
