"""Services, schema, CMS stub and Processor for the load and baseline benchmarks: the suite's own machinery.

:class:`support.run.suite.Suite` already knows how to start embedded valkey + PostgreSQL (or Docker, or external
servers), load ``fixtures/test-schema.sql``, run the Directus stub and start Processors; the bench drives it
phase by phase so baselines can run before (or without) a working Processor.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

from support.processes.processor_process import ProcessorProcess
from support.run.settings import Settings
from support.run.suite import Suite
from support.services.leftovers import sweep_earlier_runs

OUT = Path(__file__).resolve().parent / "out"


class Harness:
    def __init__(self, services: str = "embedded", processor_cmd: str | None = None) -> None:
        userdata = {"services": services, "require_services": "true"}
        if processor_cmd:
            userdata["processor_cmd"] = processor_cmd
        self.settings = Settings.from_userdata(userdata)
        self.suite = Suite(self.settings)
        self.timings: dict[str, float] = {}

    # -- start -----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Services, schema, stub, publisher and HTTP client; no Processor yet (after ending what a killed run
        left running, as the suite does)."""
        if cleaned := sweep_earlier_runs():
            print(cleaned, flush=True)
        self.suite.start(processor=False)
        self.timings["services"] = self.suite.timings["services"]
        self.timings["schema"] = self.suite.timings["schema"]

    def start_processor(self, name: str = "main", **overrides: str) -> ProcessorProcess:
        began = time.monotonic()
        process = self.suite.start_processor(name, **overrides)
        self.timings[f"processor-{name}"] = time.monotonic() - began
        if name == "main":
            self.suite.processor = process
        return process

    def stop_processor(self, process: ProcessorProcess) -> None:
        self.keep_log(process)
        process.stop()
        if process in self.suite.processors:
            self.suite.processors.remove(process)

    # -- access ----------------------------------------------------------------------------------------

    @property
    def endpoints(self) -> Any:
        assert self.suite.endpoints is not None
        return self.suite.endpoints

    def run(self, coro: Any, timeout: float | None = 120.0) -> Any:
        return self.suite.run(coro, timeout)

    @property
    def postgres_log(self) -> list[str]:
        """The embedded PostgreSQL's recent output lines (empty for other providers)."""
        server = getattr(self.suite.provider, "postgres", None)
        return list(getattr(server, "lines", []))

    def describe(self) -> str:
        assert self.suite.provider is not None
        return self.suite.provider.describe()

    # -- stop ------------------------------------------------------------------------------------------

    def keep_log(self, process: ProcessorProcess) -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy(process.log_path, OUT / process.log_path.name)
        except OSError as exc:  # a missing log must not lose the measurements; say so instead
            print(f"could not keep {process.log_path.name}: {exc}", file=sys.stderr)

    def stop(self) -> None:
        for process in self.suite.processors:
            self.keep_log(process)
        self.suite.stop()
