"""Snapshot queries coalesced per event: a thousand fans opening the same map at once cost a few queries.

Exactness (docs/processor.md section 4, "Snapshot/live boundary"): a subscriber starts holding live positions
*before* it asks for a snapshot, and may only share a query that has not started yet. So per event there is at
most one query running and one group waiting: everyone who asks while a query runs joins the waiting group,
whose query starts when the running one ends, and nobody joins a group once its query has started.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from .boundary import SharedWatermarks, watermarks
from .websocket_framing import websocket_text

__all__ = ["Snapshot", "SnapshotQueries"]

logger = logging.getLogger("processor.snapshots")


#: What a snapshot query returns: the encoded ``subscribed`` frame (``Store.snapshot_frame``) and ``(device_id, ts)``
#: per position.
Rendered = tuple[bytes, list[tuple[str, str]]]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One query's answer, prepared once for all its subscribers: the encoded ``subscribed`` frame, the
    boundary's watermarks, and the frame as a WebSocket frame for direct writes."""

    frame: bytes
    watermark: Mapping[str, str]
    wire: bytes


class SnapshotQueries:
    """Runs ``fetch(event_id)`` for groups of subscribers; see the module docstring for who may share."""

    def __init__(self, fetch: Callable[[str], Awaitable[Rendered]], timeout: float = 5.0,
                 counted: Callable[[], None] | None = None) -> None:
        self.fetch = fetch
        self.timeout = timeout
        self.counted = counted  # called once per query run (processor_snapshot_queries_total)
        self.waiting: dict[str, asyncio.Future[Snapshot]] = {}
        self.running: dict[str, asyncio.Task[None]] = {}
        self.tasks: set[asyncio.Task[None]] = set()  # every query task, referenced until done
        self.queries = 0  # how many queries ran (for tests and the bench)
        self.watermarks = SharedWatermarks()  # equal watermarks of one event: one dict for every query

    def get(self, event_id: str) -> asyncio.Future[Snapshot]:
        """The snapshot of a query not started yet (call after the subscriber began holding). Await it through
        :func:`asyncio.shield`: other subscribers share it."""
        future = self.waiting.get(event_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            future.add_done_callback(_retrieve)
            self.waiting[event_id] = future
            task = asyncio.create_task(self._run(event_id, future), name=f"snapshot-{event_id}")
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return future

    async def _run(self, event_id: str, future: asyncio.Future[Snapshot]) -> None:
        previous = self.running.get(event_id)
        current = asyncio.current_task()
        assert current is not None
        self.running[event_id] = current
        try:
            if previous is not None:
                await asyncio.wait([previous])  # one query per event at a time; meanwhile more subscribers join
            if self.waiting.get(event_id) is future:
                del self.waiting[event_id]  # from here on nobody joins: the query starts after every member held
            self.queries += 1
            if self.counted is not None:
                self.counted()
            frame, marks = await asyncio.wait_for(self.fetch(event_id), self.timeout)
            if not future.done():
                watermark = self.watermarks.share(event_id, watermarks(marks))
                future.set_result(Snapshot(frame, watermark, websocket_text(frame)))
        except asyncio.CancelledError:
            if not future.done():
                future.cancel()
            raise
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
        finally:
            if self.waiting.get(event_id) is future:
                del self.waiting[event_id]
            if self.running.get(event_id) is current:
                del self.running[event_id]


def _retrieve(future: asyncio.Future[Snapshot]) -> None:
    """Mark a failure as seen: every subscriber may have given up waiting, and each one that did not logs it."""
    if not future.cancelled():
        future.exception()
