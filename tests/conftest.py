"""Shared by every module of the unit lane: the import root, Hypothesis's profiles, and ``run``."""

import asyncio
import os
import sys
from pathlib import Path

from hypothesis import settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Keep the whole lane well under 10 s; raise with HYPOTHESIS_PROFILE=thorough when hunting bugs.
settings.register_profile("lane", max_examples=60, deadline=None, database=None)
settings.register_profile("thorough", max_examples=2000, deadline=None, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "lane"))


def run(coro):
    """Run a coroutine on a fresh event loop. The Processor's tests (tests/processor/) are ``async def`` tests run
    by pytest-asyncio instead; this stays for the suite's tests that still call it."""
    return asyncio.run(coro)
