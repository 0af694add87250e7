"""Fixtures of the Processor's unit tests."""

import pytest

from processor.metrics import Metrics


@pytest.fixture
def metrics():
    """A fresh set of the Processor's metrics (a registry of its own), read back by the tests."""
    return Metrics()
