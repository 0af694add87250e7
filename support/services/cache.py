"""The suite's cache folder, shared by its runs on one machine: the PostgreSQL template and binaries
(support/services/embedded.py) and every run's record of what it started (support/services/records.py).

Its own module so that the records can find it without importing a provider."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT = "/var/tmp/live-telemetry-suite"


def cache_dir() -> Path:
    """``SUITE_CACHE_DIR``, default :data:`DEFAULT`: on disk (not ``/tmp``), so a warm start survives a reboot."""
    return Path(os.environ.get("SUITE_CACHE_DIR", DEFAULT))
