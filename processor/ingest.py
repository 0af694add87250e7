"""The consumer-group loop: read, validate, dead-letter, store, dispatch to this instance's fans, publish,
acknowledge.

Acknowledgement is the last step of a batch, so a crash or an outage at any point leaves the entries
pending and they are read again (own pending at start, others' through ``XAUTOCLAIM``). Storing is
idempotent, so redelivery costs a duplicate count, never a second row or a second broadcast.

The positions a batch stored go to this instance's own fans straight after the commit, not through the live
channel: on its way to a viewer a position then waits for two replies (``XREADGROUP``, the ``INSERT``) instead of
four (also ``PUBLISH`` and the pub/sub message), each behind whatever dispatch is in progress (bench/ANALYSIS.md,
"Issue 14, item 2"). They are handed to a dispatcher task of their own, so that the fan-out of one batch overlaps
the round trips of the next instead of adding to them; at most :data:`LOCAL_BACKLOG` batches wait for it, beyond
which the loop waits too (the entries then wait in the stream, where nothing is lost). Other instances still
receive the positions through ``PUBLISH``; the live reader skips this instance's own messages (docs/processor.md
section 5).

With a backlog, batches go through three stages at once: while one batch's ``INSERT`` runs, the next one is read and
validated and the one before (committed) is handed to the fans, published and acknowledged. The next ``INSERT``
goes out as soon as the previous one returns, so PostgreSQL's share of a batch (~12 ms of its CPU per 500) and the
Processor's (~10 ms: validation, routing, the live message, the ``XACK``) overlap instead of adding up. Batches are
still stored one after another on one connection, in stream order, and each is published and acknowledged after
its own commit, in the same order (bench/ANALYSIS.md, "Issue 21, item 2").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from .backoff import Backoff
from .config import Config
from .hub import Hub
from .live_channel import Publisher
from .metrics import Metrics
from .routing import RoutedPosition
from .store import Store, StoreResult
from .telemetry import Position, Rejection, validate

__all__ = ["Ingest"]

logger = logging.getLogger("processor.ingest")

#: Batches of this instance's positions that may wait for its dispatcher before the loop waits too.
LOCAL_BACKLOG = 2

Entry = tuple[bytes, dict[bytes, bytes] | None]
Rejected = tuple[bytes, dict[bytes, bytes], Rejection]


@dataclass(slots=True)
class Batch:
    """One batch read and validated, not yet stored: every entry id (all are acknowledged together), the valid
    positions, the rejected entries, and when its handling began (for ``processor_ingest_batch_seconds``)."""

    ids: list[bytes]
    valid: list[Position]
    rejected: list[Rejected]
    started: float


def prepare(entries: Sequence[Entry]) -> Batch:
    """Validate a batch (pure: no I/O), so that it can run while the previous batch's ``INSERT`` is in flight."""
    started = time.perf_counter()
    ids = []
    valid: list[Position] = []
    rejected: list[Rejected] = []
    for entry_id, fields in entries:
        ids.append(entry_id)
        if not fields:  # deleted from the stream while pending: nothing left to store
            continue
        result = validate(entry_id.decode("ascii"), fields)
        if isinstance(result, Rejection):
            rejected.append((entry_id, fields, result))
        else:
            valid.append(result)
    return Batch(ids, valid, rejected, started)


class Ingest:
    """Consumes ``config.stream`` through ``config.group`` until :meth:`stop` is called."""

    def __init__(self, config: Config, redis: aioredis.Redis, store: Store, metrics: Metrics,
                 hub: Hub | None = None) -> None:
        self.config = config
        self.redis = redis
        self.store = store
        self.metrics = metrics
        #: This instance's fans: what a batch stored is handed to their dispatcher right after the commit.
        self.hub = hub
        self._local: asyncio.Queue[list[RoutedPosition]] = asyncio.Queue(LOCAL_BACKLOG)
        self._dispatcher: asyncio.Task[None] | None = None
        self.running = False  # for /healthz: the loop runs and Redis answers it
        self.stopping = asyncio.Event()
        self.reading = False  # blocked in XREADGROUP: safe to cancel at shutdown
        self._ahead: asyncio.Task[Batch | None] | None = None  # the next batch, read while one is stored
        #: the next batch, stored while the previous one is handed out, published and acknowledged
        self._storing: asyncio.Task[tuple[Batch, StoreResult | None] | None] | None = None
        self._next_claim = 0.0
        #: Who this instance is on the live channel (unique per start) and its last message number there.
        self.publisher = Publisher(config.consumer)

    # -- lifecycle -------------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            if self._dispatcher is not None:  # stopping: the fans' connections are being closed anyway
                self._dispatcher.cancel()
                self._dispatcher = None

    async def _run(self) -> None:
        backoff = Backoff()
        while not self.stopping.is_set():
            try:
                await self._ensure_group()
                self.running = True
                backoff.reset()
                await self._consume()
            except asyncio.CancelledError:
                raise
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    logger.warning("consumer group %s vanished; recreating it", self.config.group)
                    continue
                self.running = False
                delay = backoff.next()
                logger.error("redis error: %s; retrying in %.1f s", exc, delay)
                await self._sleep(delay)
            except Exception as exc:
                self.running = False
                delay = backoff.next()
                logger.warning("redis unavailable (%s: %s); retrying in %.1f s", type(exc).__name__, exc, delay)
                await self._sleep(delay)
        self.running = False

    async def _sleep(self, delay: float) -> None:
        try:
            await asyncio.wait_for(self.stopping.wait(), delay)
        except TimeoutError:
            return  # the backoff delay elapsed without a stop request: carry on

    def stop(self) -> None:
        self.stopping.set()

    async def _ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(
                self.config.stream, self.config.group, id=self.config.group_start_id, mkstream=True
            )
            logger.info("created consumer group %s on %s", self.config.group, self.config.stream)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # -- reading ---------------------------------------------------------------------------------------

    async def _consume(self) -> None:
        config = self.config
        # Our own pending entries first: what a previous run of this consumer read but never acknowledged.
        while not self.stopping.is_set():
            entries = await self._read("0", block=None)
            if not entries:
                break
            await self.handle(entries)
        self._next_claim = 0.0
        try:
            while not self.stopping.is_set():
                if time.monotonic() >= self._next_claim:
                    await self._settle()  # one INSERT at a time: the batch stored ahead is finished first
                    await self._claim()
                    self._next_claim = time.monotonic() + config.claim_idle_ms / 2000
                    continue
                stored: StoreResult | None
                if self._storing is not None:  # stored while the previous batch was finished
                    done = await self._storing
                    self._storing = None
                    if done is None:
                        continue
                    batch, stored = done
                else:
                    if self._ahead is not None:
                        next_batch, self._ahead = await self._ahead, None
                    else:
                        # Never block past the next claim, so idle work is taken over every CLAIM_IDLE_MS / 2.
                        until_claim = int((self._next_claim - time.monotonic()) * 1000)
                        self.reading = True
                        try:
                            entries = await self._read(">", block=max(1, min(config.read_block_ms, until_claim)))
                        finally:
                            self.reading = False
                        next_batch = prepare(entries) if entries else None
                    if next_batch is None:
                        continue
                    batch = next_batch
                    self._read_ahead_after(batch)
                    stored = await self._store_part(batch)
                if self._ahead is not None:
                    # A backlog: the next batch's INSERT goes out now, while this committed one is handed to the
                    # fans, published and acknowledged (and the one after is read and validated meanwhile).
                    self._storing = asyncio.create_task(self._store_ahead(self._ahead), name="ingest-store-ahead")
                    self._ahead = None
                    await asyncio.sleep(0)  # let it send its INSERT before this batch's work
                await self._finish(batch, stored)
            await self._settle()  # stopping: what was stored ahead is finished too
            if self._ahead is not None:  # stopping: what was read ahead is in hand too, so it is finished
                batch_ahead, self._ahead = await self._ahead, None
                if batch_ahead is not None:
                    await self._handle(batch_ahead)
        except Exception:
            await self._salvage()
            raise
        finally:
            storing, self._storing = self._storing, None
            if storing is not None:  # cancelled: an INSERT cut short is rolled back, its entries read again
                storing.cancel()
            ahead, self._ahead = self._ahead, None
            if ahead is not None:  # an error or a cancel: its entries stay pending and are read again
                if ahead.done() and not ahead.cancelled() and ahead.exception() is not None:
                    logger.debug("the read ahead failed too: %s", ahead.exception())
                ahead.cancel()

    def _read_ahead_after(self, batch: Batch) -> None:
        """Start reading the next batch if ``batch`` was full (a backlog).

        A backlog: read and validate the next batch while this one is stored (without blocking; batches are still
        stored one after another, in order, each acknowledged after its commit). Only then: a read ahead of a
        partial batch would split the traffic into more, smaller batches, each costing its round trips
        (measured: more batches, no lower latency)."""
        if len(batch.ids) >= self.config.read_count:
            self._ahead = asyncio.create_task(self._read_batch(), name="ingest-read-ahead")

    async def _store_ahead(self, ahead: asyncio.Task[Batch | None]) -> tuple[Batch, StoreResult | None] | None:
        """Store the batch being read ahead, as soon as it is validated (the previous batch is committed)."""
        batch = await ahead
        if batch is None:
            return None
        self._read_ahead_after(batch)
        return batch, await self._store_part(batch)

    async def _settle(self) -> None:
        """Finish the batch stored ahead, if any."""
        if self._storing is not None:
            done = await self._storing
            self._storing = None
            if done is not None:
                await self._finish(*done)

    async def _salvage(self) -> None:
        """After a failure (Redis, while a batch was published or acknowledged): the batch stored ahead may be
        committed already, so it is finished as far as it goes rather than dropped: its positions reach this
        instance's fans and its live message is numbered, so if its ``PUBLISH`` fails too other instances see the
        gap and resynchronise; its entries, unacknowledged, are read again as duplicates. Never silent loss."""
        storing, self._storing = self._storing, None
        if storing is None:
            return
        try:
            done = await storing
            if done is not None:
                await self._finish(*done)
        except Exception as exc:  # the first failure is the one reported; this one follows from it
            logger.debug("finishing the batch stored ahead failed too: %s: %s", type(exc).__name__, exc)

    async def _read_batch(self) -> Batch | None:
        """Read (without blocking) and validate the next batch: the read ahead of a backlog."""
        entries = await self._read(">", block=None)
        return prepare(entries) if entries else None

    async def _read(self, start: str, block: int | None) -> list[Entry]:
        response = await self.redis.xreadgroup(
            self.config.group, self.config.consumer, {self.config.stream: start},
            count=self.config.read_count, block=block,
        )
        if not response:
            return []
        entries: list[Entry] = []
        for _stream, items in cast("list[tuple[bytes, list[Entry]]]", response):
            entries.extend(items)
        return entries

    async def _claim(self) -> None:
        """Take over entries idle for longer than ``CLAIM_IDLE_MS`` (a dead instance's work)."""
        cursor: Any = "0-0"
        while not self.stopping.is_set():
            response = await self.redis.xautoclaim(
                self.config.stream, self.config.group, self.config.consumer,
                min_idle_time=self.config.claim_idle_ms, start_id=cursor, count=self.config.read_count,
            )
            cursor, entries = response[0], response[1]
            if entries:
                logger.info("claimed %d idle entries", len(entries))
                await self.handle(entries)
            if cursor in (b"0-0", "0-0"):
                return

    # -- one batch -------------------------------------------------------------------------------------

    async def handle(self, entries: Sequence[Entry]) -> None:
        """Dead-letter, store, dispatch, publish and acknowledge one batch, in that order."""
        await self._handle(prepare(entries))

    async def _handle(self, batch: Batch) -> None:
        await self._finish(batch, await self._store_part(batch))

    async def _store_part(self, batch: Batch) -> StoreResult | None:
        """Dead-letter a batch's malformed entries, then store its valid positions (committed on return)."""
        rejected = batch.rejected
        if rejected:
            await self._dead_letter(rejected)
            for _, _, rejection in rejected:
                self.metrics.dead_letter.labels(rejection.reason).inc()
        return await self._store(batch.valid) if batch.valid else None

    async def _finish(self, batch: Batch, stored: StoreResult | None) -> None:
        """Count, hand to this instance's fans, publish and acknowledge a committed batch."""
        routed = stored.routed if stored is not None else []
        if stored is not None:
            self.metrics.stored.inc(stored.inserted)
            self.metrics.duplicates.inc(stored.duplicates)
            self.metrics.orphans.inc(stored.orphans)
        if routed and self.hub is not None and self.hub.events:
            # This instance's own fans first, straight after the commit (docs/processor.md section 5): only newly
            # inserted positions are routed, so a redelivered batch dispatches nothing again.
            await self._dispatch_here(routed)
        async with self.redis.pipeline(transaction=False) as pipe:  # PUBLISH and XACK in one round trip
            if routed:  # numbered even if the PUBLISH fails: receivers then see the gap and resync
                pipe.publish(self.config.live_channel, self.publisher.message(routed, time.time()))
            pipe.xack(self.config.stream, self.config.group, *batch.ids)
            await pipe.execute()

        self.metrics.batch_seconds.observe(time.perf_counter() - batch.started)
        logger.debug(
            "batch of %d: %d stored, %d duplicate, %d dead-lettered, %d routed",
            len(batch.ids), stored.inserted if stored else 0, stored.duplicates if stored else 0,
            len(batch.rejected), len(routed),
        )

    async def _dispatch_here(self, routed: list[RoutedPosition]) -> None:
        """Hand a batch's routed positions to this instance's dispatcher (waiting while it is behind)."""
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch_local(), name="ingest-dispatch")
        await self._local.put(routed)

    async def _dispatch_local(self) -> None:
        """Fan out this instance's batches to its fans, in the order they were stored."""
        assert self.hub is not None
        while True:
            routed = await self._local.get()
            while not self._local.empty():  # behind: what waits goes out with it, one write per fan for all
                routed = routed + self._local.get_nowait()
            try:
                await self.hub.dispatch(routed)
            except Exception:  # a defect, not an outage: say so and carry on with the next batch
                logger.exception("dispatching %d stored position(s) failed", len(routed))

    async def _dead_letter(self, rejected: Sequence[Rejected]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for entry_id, fields, rejection in rejected:
                logger.info("dead-lettering %s: %s (%s)", entry_id.decode("ascii"), rejection.reason, rejection.detail)
                record: dict[FieldT, EncodableT] = {key: value for key, value in fields.items()}
                record[b"reason"] = rejection.reason
                record[b"detail"] = rejection.detail
                record[b"source_id"] = entry_id
                pipe.xadd(self.config.dead_stream, record)
            await pipe.execute()

    async def _store(self, positions: Sequence[Position]) -> StoreResult:
        """Insert, retrying with backoff while PostgreSQL fails; nothing is acknowledged meanwhile."""
        backoff = Backoff()
        while True:
            try:
                return await self.store.insert(positions)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = backoff.next()
                logger.warning(
                    "storing a batch of %d failed (%s: %s); retrying in %.1f s",
                    len(positions), type(exc).__name__, exc, delay,
                )
                await asyncio.sleep(delay)  # even when stopping: the shutdown timeout bounds this
