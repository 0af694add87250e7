"""The live channel's format (processor.live_channel), both halves: what the ingest loop publishes reads back as
the same positions, numbered from 1 per publisher, and the reader's count of missing numbers is right. Other
instances see only these bytes, so a drift between the halves would lose or garble live positions silently."""

from processor import live_channel
from processor.live_channel import Publisher, Sequences

from .fakes import position

EVENT = "7f0c1b9e-3c1a-4d8e-9a43-5b1f2e3d4c5a"
T0, T1 = "2026-05-02T11:00:00.000Z", "2026-05-02T11:00:01.000Z"


def test_what_a_publisher_sends_reads_back_numbered_from_one():
    publisher = Publisher("host-1")
    positions = [position(EVENT, "d1", T0, lat=1.5, altitude=None, satellites=7), position(EVENT, "d2", T1)]
    first = live_channel.parse(publisher.message(positions, 1000.25))
    second = live_channel.parse(publisher.message(positions[:1], 1001.0))
    assert publisher.id.startswith("host-1/") and Publisher("host-1").id != publisher.id  # a new one per start
    assert (first.publisher, first.seq, first.published) == (publisher.id, 1, 1000.25)
    assert (second.seq, second.published) == (2, 1001.0)
    assert first.positions() == positions and second.positions() == positions[:1]


def test_sequences_report_what_went_missing():
    seqs = Sequences(limit=2)
    assert seqs.observe("a", 5) == 0  # first sight
    assert seqs.observe("a", 6) == 0
    assert seqs.observe("a", 9) == 2
    assert seqs.observe("b", 1) == 0
    assert seqs.observe("c", 1) == 0  # "a" is forgotten (limit 2)
    assert seqs.observe("a", 20) == 0
    seqs.forget()
    assert seqs.observe("b", 7) == 0
