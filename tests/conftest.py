import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def run(coro):
    """Run a coroutine on a fresh event loop (no pytest-asyncio in the pinned dependencies)."""
    return asyncio.run(coro)


@pytest.fixture
def metrics():
    from processor.metrics import Metrics

    return Metrics()


from hypothesis import settings  # noqa: E402

# Keep the whole lane well under 10 s; raise with HYPOTHESIS_PROFILE=thorough when hunting bugs.
settings.register_profile("lane", max_examples=60, deadline=None, database=None)
settings.register_profile("thorough", max_examples=2000, deadline=None, database=None)
settings.load_profile(__import__("os").environ.get("HYPOTHESIS_PROFILE", "lane"))
