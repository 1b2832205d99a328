"""The process supervisor behind `orderflow run`: starts each service as a child process,
restarts one that dies, and on SIGINT/SIGTERM stops them all gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import structlog

from orderflow.services.runtime.retrying import RESTART_PROCESS

log = structlog.get_logger()


@dataclass(frozen=True)
class ChildSpec:
    name: str
    args: tuple[str, ...]  # arguments to `python -m orderflow`


class Supervisor:
    def __init__(
        self, children: Sequence[ChildSpec], env: Mapping[str, str], stop_timeout: float = 30.0
    ) -> None:
        self._children = children
        self._env = dict(env)
        self._stop_timeout = stop_timeout
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._started_at: dict[str, float] = {}
        self.stopping = asyncio.Event()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        for child in self._children:
            await self._spawn(child)

    async def _spawn(self, child: ChildSpec) -> None:
        self._procs[child.name] = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "orderflow",
            *child.args,
            env=self._env,
            preexec_fn=_die_with_parent,
        )
        self._started_at[child.name] = asyncio.get_running_loop().time()
        log.info("started", child=child.name, pid=self._procs[child.name].pid)

    async def run_until_stopped(self) -> None:
        """Restart children that exit on their own until asked to stop."""
        restarts: dict[str, int] = {}
        loop = asyncio.get_running_loop()
        while not self.stopping.is_set():
            waits = {asyncio.create_task(p.wait()): name for name, p in self._procs.items()}
            stop_wait = asyncio.create_task(self.stopping.wait())
            done, _ = await asyncio.wait([*waits, stop_wait], return_when=asyncio.FIRST_COMPLETED)
            for task in [*waits, stop_wait]:
                if task not in done:
                    task.cancel()
            if self.stopping.is_set():
                break
            for task in done:
                name = waits.get(task)
                if name is None:
                    continue
                code = self._procs[name].returncode
                # Crash loops back off; a child that had been running a while starts afresh.
                stable = loop.time() - self._started_at[name] > _STABLE_AFTER
                restarts[name] = 1 if stable else restarts.get(name, 0) + 1
                delay = RESTART_PROCESS.delay(restarts[name])
                log.error("child exited; restarting", child=name, code=code, restart_in=delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), delay)
                if self.stopping.is_set():
                    break
                spec = next(c for c in self._children if c.name == name)
                await self._spawn(spec)
        await self.stop()

    async def stop(self) -> None:
        for proc in self._procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for name, proc in self._procs.items():
            try:
                await asyncio.wait_for(proc.wait(), self._stop_timeout)
            except TimeoutError:
                log.error("child did not stop in time; killing", child=name)
                proc.kill()
                await proc.wait()
        log.info("all services stopped")


_STABLE_AFTER = 60.0  # seconds of running that reset a child's restart backoff


def _die_with_parent() -> None:
    """Linux: a child gets SIGTERM (and stops gracefully) if the supervisor dies without
    stopping it, e.g. when it is killed with SIGKILL, instead of running on as an orphan."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


def child_env(overrides: Mapping[str, str]) -> dict[str, str]:
    return {**os.environ, **overrides}


def in_forked_child(job: Callable[[], str]) -> str:
    """Run `job` in a forked child and return what it returned; raise if it failed.

    What the job imports and allocates dies with the child, so a long-lived parent stays small.
    Call it before any thread or event loop exists (fork copies only the calling thread).
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        code = 1
        try:
            with os.fdopen(write_end, "wb") as out:
                out.write(job().encode())
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as answer:
        result = answer.read().decode()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("preparing failed (see the error above)")
    return result
