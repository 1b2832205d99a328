"""What the networked engines share about names and partitions."""

from __future__ import annotations

import re
import zlib

_PREFIX = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


def partition_of(key: str, partitions: int) -> int:
    # crc32, not hash(): every process and every release must agree on a key's partition.
    return zlib.crc32(key.encode()) % partitions


def check_prefix(prefix: str) -> None:
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"broker prefix must be dotted words, got {prefix!r}")
