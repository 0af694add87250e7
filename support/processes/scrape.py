"""The Processor's ``/metrics``, parsed with prometheus_client's own parser, compared as deltas.

Counters only grow over a run that many scenarios share, so a scenario asserts on how much a counter moved
since its own baseline, never on its absolute value.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from ..clock import ANSWER, within

Sample = tuple[str, tuple[tuple[str, str], ...]]


class MetricsSnapshot:
    """Every sample of one scrape, by (sample name, sorted labels)."""

    def __init__(self, samples: Mapping[Sample, float]) -> None:
        self.samples = dict(samples)

    @classmethod
    def parse(cls, text: str) -> MetricsSnapshot:
        samples: dict[Sample, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return cls(samples)

    def value(self, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples whose labels include ``labels`` (0 when there are none yet)."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= set(ls))

    def delta(self, since: MetricsSnapshot, name: str, **labels: str) -> float:
        return self.value(name, **labels) - since.value(name, **labels)


async def scrape(base_url: str, session: aiohttp.ClientSession) -> MetricsSnapshot:
    async with session.get(f"{base_url}/metrics", timeout=aiohttp.ClientTimeout(total=within(ANSWER))) as response:
        response.raise_for_status()
        return MetricsSnapshot.parse(await response.text())
