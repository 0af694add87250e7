"""The real Processor with one fault injected, for report_checks/ only: never used by the suite itself.

``REPORT_CHECK_FAULT=live-positions-lost`` makes the Processor store every position but broadcast none,
so a scenario that waits for a live position fails with a viewer inbox and a log to show. The fault lives
here, as a monkeypatch applied before ``python -m processor`` starts, so processor/ carries no test hook.
"""

from __future__ import annotations

import logging
import os
import runpy
import sys
from typing import Any

FAULT_VARIABLE = "REPORT_CHECK_FAULT"
#: The line the broken Processor logs for every position it drops; the report check looks for it.
FAULT_MARKER = "FAULT INJECTED (report check): live position dropped"


def _lose_live_positions() -> None:
    from processor import hub

    logger = logging.getLogger("processor.fault")

    def dispatch_nothing(self: hub.Hub, event_id: str, group: list[Any]) -> tuple[int, int]:
        for position in group:
            logger.warning("%s for device %s", FAULT_MARKER, getattr(position, "device_id", None))
        return len(group), 0

    hub.Hub._dispatch_event = dispatch_nothing  # type: ignore[method-assign]  # the deliberate break


FAULTS = {"live-positions-lost": _lose_live_positions}


def main() -> None:
    fault = os.environ.get(FAULT_VARIABLE, "")
    if fault not in FAULTS:
        sys.exit(f"{FAULT_VARIABLE} must be one of {', '.join(FAULTS)}, got {fault!r}")
    FAULTS[fault]()
    runpy.run_module("processor", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
