r"""A crowd at the start of a rally against a rate-limited CMS: ``python -m bench.cms_crowd``.

1,000 fans open the live map of one event at once. Every fan reaches Directus through the Processor's one
IP, and the Directus stand-in limits that IP as a common production Directus does (``RATE_LIMITER_POINTS=50``,
``RATE_LIMITER_DURATION=1``: 50 requests per 1 s fixed window, 429 ``REQUESTS_EXCEEDED`` with ``Retry-After``
beyond). Each fan behaves as a browser page would: when the upgrade is refused (a page sees only that the
socket failed) or the subscribe answers ``unavailable``, it tries again after 0.5–1.5 s (seeded jitter, the
same for every run), until it has its ``subscribed`` snapshot.

Measured: how many requests Directus received (and how many of them it refused with 429), how long the last
fan waited for the map, and what the Processor counted. Run it once per Processor build:

    .venv/bin/python -m bench.cms_crowd --label after
    mkdir -p /tmp/before && git archive aa9ea5b processor | tar -x -C /tmp/before
    .venv/bin/python -m bench.cms_crowd --label before \
        --processor-cmd "env PYTHONPATH=/tmp/before $PWD/.venv/bin/python -P -m processor"

(The Processor runs from the repository root, where ``python -m processor`` would find this branch's package
first; ``-P`` leaves the working directory off the import path, so ``PYTHONPATH`` names the old one.)

Each run appends its figures to ``bench/cms_crowd.json``; ``--markdown`` prints the table of every recorded
run (the section of ``bench/RESULTS.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bench.harness import Harness

RESULTS = Path(__file__).resolve().parent / "cms_crowd.json"


class Fan:
    """One fan trying until the map is open; counts attempts and the time it took."""

    def __init__(self, index: int, cookie: str, event_id: str, rng: random.Random) -> None:
        self.index = index
        self.cookie = cookie
        self.event_id = event_id
        self.rng = rng
        self.upgrade_attempts = 0
        self.subscribe_attempts = 0
        self.waited: float | None = None
        self.connection: Any = None

    def pause(self) -> float:
        return self.rng.uniform(0.5, 1.5)

    async def open_map(self, url: str, began: float, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.connection is None:
                self.upgrade_attempts += 1
                try:
                    self.connection = await connect(url, additional_headers={"Cookie": self.cookie},
                                                    open_timeout=15, compression=None, ping_interval=None)
                except (InvalidStatus, OSError, TimeoutError):
                    await asyncio.sleep(self.pause())  # pacing: a page reconnecting after a failed socket
                    continue
            self.subscribe_attempts += 1
            try:
                await self.connection.send(json.dumps({"type": "subscribe", "eventId": self.event_id}))
                while True:
                    frame = json.loads(await asyncio.wait_for(self.connection.recv(), deadline - time.monotonic()))
                    if frame.get("eventId") == self.event_id and frame.get("type") in ("subscribed", "error"):
                        break
            except (ConnectionClosed, TimeoutError):
                self.connection = None
                continue
            if frame["type"] == "subscribed":
                self.waited = time.monotonic() - began
                return
            await asyncio.sleep(self.pause())  # pacing: the page tries again after an `unavailable`

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()


async def crowd(harness: Harness, fans: int, limit: int, cap: float, seed: int) -> dict[str, Any]:
    suite = harness.suite
    stub = suite.stub
    assert suite.db is not None and suite.http is not None
    org, event = str(uuid.uuid4()), str(uuid.uuid4())
    await suite.db.add_organization(org, "Bench Rally Club", f"bench-{org[:8]}")
    await suite.db.add_event(event, org, "Bench Rally", f"bench-{event[:8]}")
    stub.known_events.add(event)
    people = []
    for _index in range(fans):
        user = str(uuid.uuid4())
        people.append(stub.sign_in(user))
        stub.grant(user, event)
    rng = random.Random(seed)
    crowd_of = [Fan(i, cookie, event, random.Random(rng.random())) for i, cookie in enumerate(people)]
    stub.rate_limit(points=limit, window=1.0)
    mark = len(stub.requests)
    before = await _auth_failures(harness)
    began = time.monotonic()
    try:
        await asyncio.gather(*(fan.open_map(suite.processor.live_url, began, began + cap) for fan in crowd_of))
        seconds = time.monotonic() - began
    finally:
        stub.lift_rate_limit()
        await asyncio.gather(*(fan.close() for fan in crowd_of), return_exceptions=True)
    seen = stub.requests_since(mark)
    after = await _auth_failures(harness)
    waits = sorted(fan.waited for fan in crowd_of if fan.waited is not None)
    return {
        "fans": fans,
        "limit_per_s": limit,
        "fans_in": len(waits),
        "seconds": round(seconds, 2),
        "last_fan_waited_s": round(waits[-1], 2) if len(waits) == fans else None,
        "median_wait_s": round(statistics.median(waits), 2) if waits else None,
        "directus_requests": len(seen),
        "directus_429": sum(1 for r in seen if r.status == 429),
        "directus_200": sum(1 for r in seen if r.status == 200),
        "users_me": sum(1 for r in seen if r.path == "/users/me"),
        "items": sum(1 for r in seen if r.path.startswith("/items/")),
        "upgrade_attempts": sum(f.upgrade_attempts for f in crowd_of),
        "subscribe_attempts": sum(f.subscribe_attempts for f in crowd_of),
        "auth_failures": {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) - before.get(k, 0)},
    }


async def _auth_failures(harness: Harness) -> dict[str, float]:
    from support.processes.scrape import scrape

    snapshot = await scrape(harness.suite.processor.base_url, harness.suite.http)  # type: ignore[arg-type]  # the suite is started by then (harness.start)
    return {dict(labels)["reason"]: value for (name, labels), value in snapshot.samples.items()
            if name == "processor_auth_failures_total"}


def markdown(runs: list[dict[str, Any]]) -> str:
    lines = [
        "## CMS crowd: 1,000 fans open one event against a rate-limited Directus",
        "",
        "`python -m bench.cms_crowd` (see its docstring). The Directus stand-in limits the Processor's IP to 50 "
        "requests per 1 s window (429 `REQUESTS_EXCEEDED` with `Retry-After` beyond, as Directus does); each fan "
        "retries a refused upgrade or an `unavailable` subscribe after 0.5–1.5 s (seeded), until it has the map. "
        "*before*: the Processor of commit aa9ea5b; *after*: this branch (429 read as its own outcome, one retry "
        "within the budget, requests held while Directus limits and then paced to its `extensions.limit`, "
        "identical checks in flight shared).",
        "",
        "| run | when | fans in | last fan waited | median wait | Directus requests | of them 429 | 200 | "
        "upgrade / subscribe attempts | Processor counted |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        last = f"{r['last_fan_waited_s']} s" if r["last_fan_waited_s"] is not None else f"not all in {r['seconds']} s"
        counted = ", ".join(f"{k} {int(v)}" for k, v in sorted(r["auth_failures"].items())) or "–"
        lines.append(
            f"| {r['label']} | {r['when'][:16]} | {r['fans_in']}/{r['fans']} | {last} | {r['median_wait_s']} s | "
            f"{r['directus_requests']:,} | {r['directus_429']:,} | {r['directus_200']:,} | "
            f"{r['upgrade_attempts']:,} / {r['subscribe_attempts']:,} | {counted} |")
    lines += [
        "",
        "Every fan needs two answers from Directus (`/users/me` at the upgrade, `/items/events/<id>` at the "
        "subscribe), so 2,000 successful requests at 50 per second take at least 40 s whatever the Processor does: "
        "the limit, not the Processor, sets how long the last fan waits. What the Processor decides is how many "
        "requests it wastes on a Directus that has already said no, and whether fans are told the CMS is busy or "
        "that it is down. Sharing identical checks does not lower the count here: 1,000 different fans are 1,000 "
        "different sessions, and no answer is reused across sessions.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cms_crowd", description=__doc__.splitlines()[0])
    parser.add_argument("--fans", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=50, help="Directus requests per second per client")
    parser.add_argument("--cap", type=float, default=100.0, help="give up after this many seconds")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--label", default="after")
    parser.add_argument("--processor-cmd", default=None)
    parser.add_argument("--markdown", action="store_true", help="print the table of recorded runs and exit")
    args = parser.parse_args(argv)
    runs = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    if args.markdown:
        print(markdown(runs), end="")
        return 0
    harness = Harness("embedded", args.processor_cmd)
    try:
        harness.start()
        harness.start_processor("main", PROCESSOR_SUBSCRIBE_RATE="20")
        result = harness.run(crowd(harness, args.fans, args.limit, args.cap, args.seed), timeout=args.cap + 60)
    finally:
        harness.stop()
    result.update(label=args.label, when=datetime.now(UTC).isoformat(timespec="seconds"),
                  processor_cmd=args.processor_cmd or "python -m processor")
    print(json.dumps(result, indent=1))
    runs.append(result)
    RESULTS.write_text(json.dumps(runs, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
