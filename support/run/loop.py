"""One asyncio event loop on a background thread, for every I/O of the whole run.

behave runs an async step's coroutine on a loop that only turns while that step runs, so a CMS stub or a
viewer's reader living there would stall between steps. Everything lives here instead, and steps hand
coroutines over with :meth:`BackgroundLoop.run`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ..clock import BACKSTOP, SETTLE, within

T = TypeVar("T")


class BackgroundLoop:
    """An event loop running forever on a daemon thread until :meth:`close`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="suite-io", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = BACKSTOP) -> T:
        """Run ``coro`` on the background loop and return its result (or raise its exception)."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(None if timeout is None else within(timeout))
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"{getattr(coro, '__qualname__', coro)} did not finish within {timeout} s") from None

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """Call a plain function on the background loop's thread (the CMS stub and the viewers belong to it)."""

        async def call() -> T:
            return function(*args)

        return self.run(call())

    def close(self) -> None:
        """Cancel what is left, stop the loop and join its thread."""
        if not self.loop.is_running():
            return

        async def _cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.run(_cancel_all(), timeout=SETTLE)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=SETTLE)
            self.loop.close()
