"""Wake-ups between processes on one machine through Unix datagram sockets in one folder.

Each process that waits on a channel binds one socket `<channel>.<pid>.<token>` in the folder; a
signal sends one byte to every socket of that channel (a `scandir` and one `sendto` each, some
microseconds) and sets this process's own waiter directly. A socket whose process is gone
(kill -9 leaves the file behind) refuses the byte and is unlinked. A full socket buffer means the
waiter has bytes to read already, so the byte is dropped. Nothing here blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import socket
import tempfile
from pathlib import Path

from orderflow.adapters.wakeup.signal_event import take

# sockaddr_un holds about 107 bytes; a longer folder is replaced by a short one named after it.
_MAX_PATH = 100


def _short_folder(folder: Path) -> Path:
    absolute = folder.resolve()
    if len(str(absolute)) + 40 <= _MAX_PATH:
        return absolute
    digest = hashlib.sha256(str(absolute).encode()).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"orderflow-wakeup-{digest}"


class UnixSocketWakeup:
    def __init__(self, folder: Path | str) -> None:
        self.folder = _short_folder(Path(folder))
        self._token = f"{os.getpid()}.{os.urandom(4).hex()}"
        self._bound: dict[str, tuple[socket.socket, asyncio.Event]] = {}
        self._sender: socket.socket | None = None

    def signal(self, channel: str) -> None:
        own = self._bound.get(channel)
        if own is not None:
            own[1].set()
        prefix = f"{channel}."
        mine = f"{channel}.{self._token}"
        try:
            entries = [e for e in os.scandir(self.folder) if e.name.startswith(prefix)]
        except FileNotFoundError:
            return  # nobody has waited yet
        if self._sender is None:
            self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sender.setblocking(False)
        for entry in entries:
            if entry.name == mine:
                continue
            try:
                self._sender.sendto(b"\1", entry.path)
            except ConnectionRefusedError:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)  # its process is gone
            except OSError as exc:
                # EAGAIN: its buffer is full, so it has a wake-up waiting; ENOENT: just closed.
                if exc.errno not in (errno.EAGAIN, errno.ENOENT, errno.ENOBUFS):
                    raise

    async def wait(self, channel: str, timeout: float) -> bool:
        event = self._listen(channel)
        return await take(event, timeout)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for channel, (sock, _) in self._bound.items():
            loop.remove_reader(sock.fileno())
            sock.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.folder / f"{channel}.{self._token}")
        self._bound.clear()
        if self._sender is not None:
            self._sender.close()
            self._sender = None

    def _listen(self, channel: str) -> asyncio.Event:
        bound = self._bound.get(channel)
        if bound is not None:
            return bound[1]
        self.folder.mkdir(parents=True, exist_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(str(self.folder / f"{channel}.{self._token}"))
        event = asyncio.Event()
        asyncio.get_running_loop().add_reader(sock.fileno(), _drain, sock, event)
        self._bound[channel] = (sock, event)
        return event


def _drain(sock: socket.socket, event: asyncio.Event) -> None:
    with contextlib.suppress(BlockingIOError):
        while sock.recv(64):
            pass
    event.set()
