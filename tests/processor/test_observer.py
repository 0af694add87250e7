"""The stream's backlog becomes gauges from ``XINFO GROUPS`` (processor.observer), polled apart from ingestion so
that a stalled batch never freezes the gauges that would show it."""

from processor.observer import StreamObserver

from .fakes import FakeRedis


async def test_the_group_lag_and_pending_count_become_gauges(metrics):
    redis = FakeRedis()
    await StreamObserver(redis, "s", "processor", metrics).poll()  # type: ignore[arg-type]  # a fake standing in for the real one
    value = metrics.registry.get_sample_value
    assert value("processor_stream_lag") == 3 and value("processor_stream_pending") == 2
    assert redis.calls == [("xinfo_groups", "s")]
