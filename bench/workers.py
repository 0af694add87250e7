"""Helper processes driven over a pipe: the load generator, the viewer fleet, the bare broadcast server.

Each worker is a ``spawn``-ed child (never ``fork``: the parent runs the suite's I/O thread) running one
asyncio loop (uvloop when installed). The parent sends ``(command, kwargs)``; the child awaits the handler's
coroutine of that name and answers ``(True, result)`` or ``(False, traceback text)``. Commands to one worker
run one at a time; different workers run side by side. A worker is a daemon process: it cannot outlive the
bench, and :meth:`Worker.close` ends it (quit, then terminate, then kill) by its own pid.
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import os
import sys
import time
import traceback
from typing import Any

_CTX = multiprocessing.get_context("spawn")


class WorkerError(RuntimeError):
    """The worker's handler raised; the message carries its traceback."""


def _serve(conn: Any, factory: str, options: dict[str, Any]) -> None:  # runs in the child
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        uvloop = None  # type: ignore[assignment]  # optional: the default event loop measures the same thing, a little slower; uvloop is optional
    module_name, _, class_name = factory.partition(":")
    handler = getattr(importlib.import_module(module_name), class_name)(**options)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                command, kwargs = await loop.run_in_executor(None, conn.recv)
            except (EOFError, OSError):
                return  # the parent went away
            if command == "quit":
                try:
                    await handler.shutdown()
                finally:
                    conn.send((True, None))
                return
            try:
                result = await getattr(handler, command)(**kwargs)
                conn.send((True, result))
            except Exception:
                conn.send((False, traceback.format_exc()))

    asyncio.run(main())


class Worker:
    def __init__(self, name: str, factory: str, **options: Any) -> None:
        self.name = name
        self._conn, child = _CTX.Pipe()
        self.proc = _CTX.Process(target=_serve, args=(child, factory, options), name=name, daemon=True)
        self.proc.start()
        child.close()
        self._pending = False

    @property
    def pid(self) -> int:
        assert self.proc.pid is not None
        return self.proc.pid

    def send(self, command: str, **kwargs: Any) -> None:
        """Start a command without waiting for it; collect its answer with :meth:`result`."""
        assert not self._pending, f"{self.name}: a command is already running"
        self._conn.send((command, kwargs))
        self._pending = True

    def result(self, timeout: float = 120.0) -> Any:
        assert self._pending, f"{self.name}: no command running"
        if not self._conn.poll(timeout):
            raise TimeoutError(f"{self.name} did not answer within {timeout} s")
        self._pending = False
        ok, value = self._conn.recv()
        if not ok:
            raise WorkerError(f"{self.name} failed:\n{value}")
        return value

    def call(self, command: str, timeout: float = 120.0, **kwargs: Any) -> Any:
        self.send(command, **kwargs)
        return self.result(timeout)

    def close(self, timeout: float = 10.0) -> None:
        if self.proc.is_alive():
            try:
                if self._pending:  # a command still runs: do not wait for it
                    raise TimeoutError
                self.call("quit", timeout=timeout)
            except Exception as exc:  # the worker may be busy or gone; join() and terminate below settle it
                print(f"worker did not quit cleanly: {type(exc).__name__}", file=sys.stderr)
            self.proc.join(2)
            if self.proc.is_alive():
                self.proc.terminate()
                self.proc.join(3)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join(3)
        self._conn.close()


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (default: this one), from /proc."""
    with open(f"/proc/{pid or os.getpid()}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def memory(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak RSS) of a process, in KiB."""
    result: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                result[key] = int(value.split()[0])
    return result


class CpuMeter:
    """CPU share of one process over a window, as a percentage of one core."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cpu0 = cpu_seconds(pid)
        self.t0 = time.monotonic()

    def percent(self) -> float:
        elapsed = time.monotonic() - self.t0
        return 100.0 * (cpu_seconds(self.pid) - self.cpu0) / elapsed if elapsed > 0 else 0.0


class StealMeter:
    """The share of the machine's CPU time its hypervisor gave to someone else (``steal`` in /proc/stat) over a
    window, in %: on a VM, a neighbour's load shows up here, not in any process of ours, and a cell measured while
    it is high measures the host."""

    def __init__(self) -> None:
        self.t0 = self._read()

    @staticmethod
    def _read() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
        return fields[7], sum(fields)

    def percent(self) -> float:
        steal, total = self._read()
        return 100.0 * (steal - self.t0[0]) / (total - self.t0[1]) if total > self.t0[1] else 0.0
