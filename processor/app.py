"""Wiring and lifecycle: listen at once, connect in the background, shut down gracefully.

The port is open before Redis or PostgreSQL answer so that orchestration sees a live process whose
``/healthz`` explains what is missing, instead of a crash loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from websockets.asyncio.server import serve

from . import config as config_module
from .backoff import Backoff
from .config import Config, ConfigError
from .corrections import Corrections
from .directus import Directus
from .health import Health
from .hub import Hub
from .ingest import Ingest
from .live import LiveReader
from .logs import setup as setup_logging
from .metrics import Metrics
from .observer import StreamObserver
from .server import Server, ViewerConnection
from .store import SchemaError, Store

__all__ = ["main", "run"]

logger = logging.getLogger("processor.app")

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_SCHEMA = 3
HARD_DEADLINE = 4.8  # seconds from the signal to the end of main(): the contract says 5


class App:
    """The running Processor: every component and the tasks that drive them."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.metrics = Metrics()
        self.redis = aioredis.Redis.from_url(
            config.redis_url,
            socket_timeout=config.redis_timeout,
            socket_connect_timeout=min(config.redis_timeout, 2.0),
            # A broken connection is retried once, on a new one; a timeout is not: the command may have run, and
            # a read blocked on a frozen Redis must fail at PROCESSOR_REDIS_TIMEOUT, not at twice that
            # (docs/processor.md section 2, /healthz).
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            health_check_interval=10,
        )
        self.store = Store(config.database_url)
        self.directus = Directus(config.directus_url, config.directus_timeout)
        self.hub = Hub(self.metrics, config.client_queue)
        self.ingest = Ingest(config, self.redis, self.store, self.metrics, self.hub)
        self.health = Health(self.redis, self.store, lambda: self.ingest.running)
        self.server = Server(config, self.metrics, self.hub, self.directus, self.store, self.health)
        self.corrections = Corrections(self.store, self.hub, self.metrics)
        self.live = LiveReader(self.redis, config.live_channel, self.hub, self.metrics,
                               lag_limit=config.live_lag_limit_ms / 1000, resync=self.corrections.request_resync,
                               own=self.ingest.publisher.id)
        self.observer = StreamObserver(self.redis, config.stream, config.group, self.metrics)
        self.stopping = asyncio.Event()
        self.exit_code = EXIT_OK
        self.tasks: list[asyncio.Task[None]] = []
        self.ingest_task: asyncio.Task[None] | None = None

    async def _connect_store(self) -> None:
        """Connect to PostgreSQL with backoff, check the schema, then start consuming."""
        backoff = Backoff()
        while True:
            try:
                if self.store.pool is None:
                    await self.store.connect()
                await self.store.check_schema()
                break
            except SchemaError as exc:
                print(f"schema error: {exc}", file=sys.stderr, flush=True)
                self.exit_code = EXIT_SCHEMA
                self.stopping.set()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = backoff.next()
                logger.warning("postgres unavailable (%s: %s); retrying in %.1f s", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
        logger.info("postgres connected")
        await self._check_triggers()
        self.tasks += [
            asyncio.create_task(self.corrections.listen(), name="corrections-listen"),
            asyncio.create_task(self.corrections.work(), name="corrections-work"),
        ]
        self.ingest_task = asyncio.create_task(self.ingest.run(), name="ingest")
        await self.health.probe()  # let /healthz see it now rather than at the next tick

    async def _check_triggers(self) -> None:
        """Missing correction triggers are a warning, not an exit: live positions still flow; maps are then
        corrected only by the next position or snapshot (docs/processor.md section 7)."""
        try:
            missing = await self.store.missing_triggers()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database went away again: the listener's own retries will say so
            logger.warning("could not check the correction triggers: %s: %s", type(exc).__name__, exc)
            return
        if missing:
            logger.warning("corrections will not reach open maps: the database lacks the trigger(s) %s",
                           ", ".join(missing))

    async def run(self) -> int:
        config = self.config
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stopping.set)
        ws_server = await serve(
            self.server.handler,
            config.host,
            config.port,
            process_request=self.server.process_request,
            create_connection=ViewerConnection,  # the viewer's cookie and user, typed, from the upgrade to the handler
            compression=None,
            max_size=config.max_frame_bytes,
            ping_interval=config.ping_interval,
            ping_timeout=config.ping_timeout,
            close_timeout=2.0,
            open_timeout=max(10.0, config.directus_timeout + 2.0),
            server_header=None,
            backlog=4096,
            reuse_address=True,
        )
        logger.info("listening on %s:%d", config.host, config.port)
        self.tasks = [
            asyncio.create_task(self.health.run(), name="health"),
            asyncio.create_task(self._connect_store(), name="connect-store"),
            asyncio.create_task(self.live.run(), name="live"),
            asyncio.create_task(self.observer.run(), name="observe"),
        ]
        await self.stopping.wait()
        if self.exit_code == EXIT_OK:
            logger.info("shutting down")
        _exit_by_deadline(self)
        await self._shutdown(ws_server)
        return self.exit_code

    async def _shutdown(self, ws_server: object) -> None:
        config = self.config
        started = asyncio.get_running_loop().time()
        self.ingest.stop()
        ws_server.close()  # type: ignore[attr-defined]  # stop accepting; close clients with 1001
        ingest = self.ingest_task
        if ingest is not None:
            if self.ingest.reading:
                ingest.cancel()  # nothing in hand: drop the blocking read
            done, _ = await asyncio.wait([ingest], timeout=config.shutdown_timeout)
            if not done:
                logger.warning("the batch in hand did not finish within %.1f s; it stays pending",
                               config.shutdown_timeout)
                ingest.cancel()
        remaining = max(0.1, HARD_DEADLINE - 0.5 - (asyncio.get_running_loop().time() - started))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ws_server.wait_closed(), remaining)  # type: ignore[attr-defined]  # websockets' Server type does not declare wait_closed
        for task in [*self.tasks, *([ingest] if ingest else [])]:
            task.cancel()
        await asyncio.gather(*self.tasks, *([ingest] if ingest else []), return_exceptions=True)
        for closing in (self.store.close(), self.directus.close(), self.redis.aclose()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(closing, 0.3)
        logger.info("stopped")


def _exit_by_deadline(app: App) -> None:
    """The contract's exit within 5 s (section 8) holds even if a library's task ignores cancellation or a thread
    of the loop's executor hangs while the loop closes: past the deadline, the process ends with its status."""

    def give_up() -> None:
        logging.getLogger(__name__).error("shutdown did not finish within %.1f s; exiting", HARD_DEADLINE + 0.1)
        logging.shutdown()
        os._exit(app.exit_code)

    watchdog = threading.Timer(HARD_DEADLINE + 0.1, give_up)
    watchdog.daemon = True  # never keeps a finished process alive
    watchdog.start()


async def main(config: Config) -> int:
    return await App(config).run()


def run() -> int:
    """Parse configuration, run the service, return the process exit status."""
    try:
        config = config_module.load()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr, flush=True)
        return EXIT_CONFIG
    setup_logging(config.log_level)
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(main(config))
