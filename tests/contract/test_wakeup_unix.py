"""Unix-socket wake-ups (one machine): the wake-up contract, plus cleaning up after the dead."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from orderflow.adapters.wakeup import UnixSocketWakeup
from orderflow.ports.wakeup import Wakeup
from tests.contract.wakeup_contract import WakeupContract, WakeupFactory, fresh_channel


class TestUnixSocketWakeup(WakeupContract):
    @pytest.fixture
    def child_factory(self, tmp_path: Path) -> str:
        return f"UnixSocketWakeup({str(tmp_path / 'wakeup')!r})"

    @pytest.fixture
    def make_wakeup(self, tmp_path: Path) -> WakeupFactory:
        async def make() -> Wakeup:
            return UnixSocketWakeup(tmp_path / "wakeup")

        return make


async def test_the_socket_of_a_killed_process_is_removed_by_the_next_signal(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "wakeup"
    channel = fresh_channel()
    code = (
        "import asyncio\n"
        "from orderflow.adapters.wakeup import UnixSocketWakeup\n"
        "async def main():\n"
        f"    w = UnixSocketWakeup({str(folder)!r})\n"
        f"    await w.wait({channel!r}, 0.01)\n"
        "    print('ready', flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    assert await asyncio.wait_for(child.stdout.readline(), 30) == b"ready\n"
    os.kill(child.pid, signal.SIGKILL)
    await child.wait()
    wakeup = UnixSocketWakeup(folder)
    left = [p for p in wakeup.folder.iterdir() if p.name.startswith(channel)]
    assert len(left) == 1  # kill -9 left its socket behind
    started = time.monotonic()
    wakeup.signal(channel)
    assert time.monotonic() - started < 0.5
    assert not left[0].exists()
    await wakeup.close()


def test_a_folder_too_long_for_a_socket_address_is_replaced_by_a_short_one(
    tmp_path: Path,
) -> None:
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    a, b = UnixSocketWakeup(deep), UnixSocketWakeup(deep)
    assert a.folder == b.folder  # every process finds the same one
    assert len(str(a.folder)) < 80
