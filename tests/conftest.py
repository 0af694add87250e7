"""Shared by every module of the unit lane: Hypothesis's profiles (async tests run through pytest-asyncio)."""

import os

from hypothesis import settings

# Keep the whole lane well under 10 s; raise with HYPOTHESIS_PROFILE=thorough when hunting bugs.
settings.register_profile("lane", max_examples=60, deadline=None, database=None)
settings.register_profile("thorough", max_examples=2000, deadline=None, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "lane"))

