"""The gateway's SQLite database holds password hashes and refresh tokens: a running gateway's
files (the database and its WAL) are readable by their owner only, whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx

from tests.support.system import System


def test_the_gateway_database_files_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    gateway = System(data_dir, args=("serve", "gateway"))
    old_umask = os.umask(0o002)  # a permissive umask, inherited by the gateway process
    try:
        gateway.start()
    finally:
        os.umask(old_umask)
    try:
        # A write through HTTP, so the WAL and its index exist too.
        registered = httpx.post(
            f"{gateway.public_url}/auth/register",
            json={"email": "ada@example.com", "password": "correct horse", "name": "Ada"},
            timeout=30,
        )
        assert registered.status_code == 202, registered.text
        files = sorted(data_dir.glob("gateway.db*"))
        modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
    finally:
        gateway.stop()
    assert "gateway.db" in modes, modes
    assert all(mode == 0o600 for mode in modes.values()), {k: oct(v) for k, v in modes.items()}
