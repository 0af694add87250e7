"""An instance overwhelmed on purpose: frozen (SIGSTOP) while another instance stores and publishes positions,
then thawed, so that the live-channel messages waiting in its socket are older than its lag bound
(``PROCESSOR_LIVE_LAG_LIMIT_MS``, docs/processor.md section 5, "Falling behind").

Deterministic: the frozen instance cannot dispatch anything, the other one's messages carry their publish time,
and the instance stays frozen until they are older than its bound.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from ..clock import RECOVER
from ..scenario.world import World
from ..trackers.record import Report
from ..waiting import eventually
from .instances import Instance, ScenarioInstances

#: The lag bound of the instance a scenario overwhelms (milliseconds): short, so that the scenario is quick.
LAG_BOUND_MS = 300


async def overwhelm(world: World, instances: ScenarioInstances, frozen: Instance, storing: Instance, tracker: str,
                    count: int, start: datetime) -> list[Report]:
    """Freeze ``frozen``; have ``tracker`` report ``count`` positions (the scenario's latest round), which
    ``storing`` stores and publishes; keep ``frozen`` frozen until those messages are older than its bound; thaw
    it (always)."""
    device_id = world.device(tracker)
    frozen.process.pause()  # the whole group: a launcher's child Processor freezes too
    try:
        reports = await world.publish_burst([tracker], count, start)

        async def published() -> tuple[bool, str]:
            # Stored by ``storing`` (its group read them) and none pending there: XACK went out, and the
            # PUBLISH travels before it in the same round trip.
            stored = [p for p in await world.db.positions_of(device_id) if p.ts >= start]
            owed = await instances.pending(storing.group)
            return len(stored) >= count and owed.total == 0, f"{len(stored)} stored, pending {owed}"

        await eventually(published, timeout=RECOVER,
                         what=f"Processor {storing.name} to store and publish the positions")
        await asyncio.sleep(2 * LAG_BOUND_MS / 1000)  # pacing: stays frozen until the messages are older than its bound
        return reports
    finally:
        frozen.process.resume()
