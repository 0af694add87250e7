"""Everything one run shares: services, schema, the CMS stub, the Processor, the I/O loop.

``environment.py`` only calls :meth:`Suite.start` and :meth:`Suite.stop`; the order of things and the clean-up
live here. Whatever :meth:`start` got as far as starting, :meth:`stop` stops, so a failed start or Ctrl-C
leaves no process and no temporary directory behind.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from ..clock import BACKSTOP, STEP
from ..cms.directus_stub import DirectusStub
from ..database.postgres import Database
from ..fans.browser import Chromium, find_chromium
from ..fans.browser_pages import WebSite
from ..processes.processor_process import ProcessorProcess
from ..services import Endpoints, ServiceProvider, start_services
from ..services.ports import free_port
from ..services.records import record_folder
from ..trackers.publisher import TelemetryPublisher
from .loop import BackgroundLoop
from .settings import Settings

T = TypeVar("T")


class Suite:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = BackgroundLoop()
        self.provider: ServiceProvider | None = None
        self.endpoints: Endpoints | None = None
        #: Why ``services=auto`` passed over a provider, said once in the run's header.
        self.services_note: str | None = None
        self.db: Database | None = None
        self.stub = DirectusStub()
        self.publisher: TelemetryPublisher | None = None
        self.http: aiohttp.ClientSession | None = None
        self.processors: list[ProcessorProcess] = []
        #: The fans' web site (the live map page) and the browser that visits it (@browser scenarios).
        self.web_site = WebSite()
        chromium, self.browser_missing = find_chromium(settings.chromium)
        self.chromium = Chromium(chromium)
        self.browser_skip_said = False
        self.run_dir = Path(tempfile.mkdtemp(prefix="live-suite-run-"))
        if not settings.keep_logs:
            record_folder(self.run_dir)  # deleted by the next run if this one is killed
        #: Seconds spent in each phase of start-up, for the run's summary and the benchmarks.
        self.timings: dict[str, float] = {}

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = BACKSTOP) -> T:
        """Run a coroutine on the suite's I/O loop (from a step or hook)."""
        return self.loop.run(coro, timeout)

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """Call a plain function on the suite's I/O loop, where the CMS stub and the viewers live."""
        return self.loop.call(function, *args)

    # -- start -----------------------------------------------------------------------------------------

    def start(self, *, processor: bool = True) -> None:
        """Services, schema, CMS stand-in, web site, publisher and HTTP client, then (unless ``processor`` is
        False: bench/ starts its own) the main Processor. ``timings`` records each phase."""
        began = time.monotonic()
        started = start_services(
            self.settings.services, redis_image=self.settings.redis_image,
            postgres_image=self.settings.postgres_image, redis_url=self.settings.redis_url,
            database_url=self.settings.database_url,
        )
        self.provider, self.endpoints, self.services_note = started.provider, started.endpoints, started.note
        self.timings["services"] = time.monotonic() - began

        began = time.monotonic()
        self.run(self._open_clients())
        self.timings["schema"] = time.monotonic() - began

        if not processor:
            return
        began = time.monotonic()
        self.processor = self.start_processor("main")
        self.timings["processor"] = time.monotonic() - began

    async def _open_clients(self) -> None:
        assert self.endpoints is not None
        self.db = Database(self.endpoints.database_url)
        await self.db.open()
        await self.db.load_schema()
        await self.stub.start()
        await self.web_site.start()  # before any Processor: its origin goes into their allow-list
        self.publisher = TelemetryPublisher(self.endpoints.redis_url, self.endpoints.stream)
        self.http = aiohttp.ClientSession()

    def processor_env(self, name: str, port: int, *, without: Sequence[str] = (), **overrides: str) -> dict[str, str]:
        """The environment of one Processor instance (docs/processor.md, section 1), less the variables named in
        ``without``."""
        assert self.endpoints is not None
        env = {
            "PROCESSOR_REDIS_URL": self.endpoints.redis_url,
            "PROCESSOR_DATABASE_URL": self.endpoints.database_url,
            "PROCESSOR_DIRECTUS_URL": self.stub.url,
            "PROCESSOR_HOST": "127.0.0.1",
            "PROCESSOR_PORT": str(port),
            "PROCESSOR_STREAM": self.endpoints.stream,
            "PROCESSOR_CONSUMER": f"suite-{name}",
            "PROCESSOR_ALLOWED_ORIGINS": f"https://live.example.test,{self.web_site.origin}",
            "PROCESSOR_LOG_LEVEL": "INFO",
        }
        env.update(overrides)
        return {key: value for key, value in env.items() if key not in without}

    def start_processor(self, name: str, *, without: Sequence[str] = (), **overrides: str) -> ProcessorProcess:
        """Start one more Processor instance and wait until it is healthy."""
        port = free_port()
        process = ProcessorProcess(self.settings.processor_cmd,
                                   self.processor_env(name, port, without=without, **overrides),
                                   self.run_dir / f"processor-{name}.log", port)
        self.processors.append(process)
        process.start()
        assert self.http is not None
        self.run(process.wait_healthy(self.http), timeout=BACKSTOP)
        return process

    def describe(self) -> str:
        assert self.provider is not None
        phases = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in self.timings.items())
        note = f"{self.services_note}\n" if self.services_note else ""
        return f"{note}{self.provider.describe()}\nstarted in: {phases}"

    # -- stop ------------------------------------------------------------------------------------------

    def stop(self) -> None:
        for process in self.processors:
            process.stop()
        try:
            self.run(self._close_clients(), timeout=STEP)
        finally:
            self.loop.close()
            if self.provider is not None:
                self.provider.stop()
            if not self.settings.keep_logs:
                shutil.rmtree(self.run_dir, ignore_errors=True)

    async def _close_clients(self) -> None:
        await self.chromium.close()
        await self.web_site.close()
        if self.http is not None:
            await self.http.close()
        if self.publisher is not None:
            await self.publisher.close()
        if self.db is not None:
            await self.db.close()
        await self.stub.close()
