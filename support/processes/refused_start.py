"""A Processor that must refuse to start: started like any other, expected to exit on its own, promptly.

docs/processor.md, section 1: a malformed setting makes the Processor exit with status 2 and one line naming the
variable. The suite starts it with :meth:`Suite.processor_env` plus the bad setting, waits for it to exit (it is
stopped, and the step fails, if it is still running after the deadline) and returns what it said.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from ..clock import SETTLE, within
from ..run.suite import Suite
from ..services.ports import free_port
from .processor_process import ProcessorProcess


@dataclass(frozen=True)
class Refusal:
    """How a Processor that should not have started ended: its exit status (``None``: it kept running) and
    everything it wrote."""

    status: int | None
    output: str


def start_refused(suite: Suite, name: str, *, timeout: float = SETTLE, **overrides: str) -> Refusal:
    """Start a Processor with ``overrides``; wait up to ``timeout`` seconds for it to exit by itself."""
    port = free_port()
    process = ProcessorProcess(suite.settings.processor_cmd, suite.processor_env(name, port, **overrides),
                               suite.run_dir / f"processor-{name}.log", port)
    suite.processors.append(process)  # stopped with the run if something below fails
    process.start()
    assert process.proc is not None
    try:
        status: int | None = process.proc.wait(within(timeout))
    except subprocess.TimeoutExpired:
        status = None
    process.stop()
    suite.processors.remove(process)
    return Refusal(status, process.log_path.read_text(errors="replace") if process.log_path.exists() else "")
