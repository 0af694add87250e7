"""Issue 21, item 1: the Processor against baselines that do its live job, measured in the same run, in rounds.

The rows are fans × positions/s on one event. In every row each target is measured in turn, in rounds (A B C …,
then … C B A, so a drift of the machine's load over the rounds favours none), each measured cell preceded by a
discarded warm-up cell, with the target pinned to a core of its own and the load-makers (viewer fleet, feeder,
valkey, this process) on the others (:mod:`bench.pinning`). The targets:

* ``processor``: the Processor, fed through its live reader: the feeder is another instance to it;
* ``peer-python``: :mod:`bench.peer_python`, the same job as fast as asyncio goes;
* ``peer-node``: ``bench/peer_node/server.js``, the same job on Node.js with ``ws`` and ``ioredis`` (skipped, with
  the reason, when Node.js or npm is missing; its packages are installed from the lock file on first use);
* ``bare-per-position``: the bare ``websockets.broadcast()`` server, one frame per position, generating its own
  positions (no Redis): the old yardstick, kept for reference, not the same job;
* ``raw-write``: the same server writing one pre-framed frame per position to every transport: the floor of one
  ``write`` per frame.

The first three read the same batches from the live feeder (:mod:`bench.feeder`), each on a channel of its own so
that an idle target gets no traffic, and must send the same bytes: a probe message through each of them is
compared frame for frame with the contract's rendering (:func:`frames_check`).

The lead fixing imports at merge: this module imports nothing from ``processor`` or ``support``; the one
``support`` attribute it reads is the embedded provider's server processes (``harness.suite.provider.redis`` /
``.postgres``), for pinning them (:func:`_service_pids`).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import harness as _harness
from .generator import TS_BASE_MS, render_ts_ms
from .load import LoadBench, Target
from .pinning import Plan
from .wire import position_frame
from .workers import Worker

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
NODE_DIR = BENCH / "peer_node"

#: Targets doing the Processor's live job (same input, same frames): the strongest of them is the yardstick. The
#: ``per-message`` variants (not run by default) fan out each message on its own even when several wait, as the
#: Processor's live reader did until it read waiting messages together too: they tell what coalescing is worth.
SAME_JOB = ("peer-python", "peer-node", "peer-python-per-message", "peer-node-per-message")
#: Kept beside them for reference: one frame per position, self-fed (no Redis).
REFERENCES = ("bare-per-position", "raw-write")
LABELS = {
    "processor": "Processor (live channel)",
    "peer-python": "Python peer",
    "peer-node": "Node.js peer",
    "peer-python-per-message": "Python peer, one fan-out per message",
    "peer-node-per-message": "Node.js peer, one fan-out per message",
    "bare-per-position": "bare broadcast(), per position",
    "raw-write": "raw write(), per position",
}
#: The fleet's CPU (% of one core) from which a cell is flagged: its figures may be the client's, not the target's.
FLEET_SATURATED = 90.0


@dataclass
class PeerConfig:
    """What the comparison runs: ``rows`` of (fans, positions/s), ``rounds`` per row, cells of ``seconds`` after a
    discarded warm-up of ``warmup`` seconds."""

    rows: tuple[tuple[int, int], ...] = ((500, 100), (500, 400), (1000, 100), (1000, 400))
    #: Five: on a saturated core one round's p99 moves by ±30 % (1,000 fans × 100/s: 36.7 to 49.9 ms for the same
    #: Processor), so the median of three decided a 1.2 × goal by one noisy round (bench/ANALYSIS.md).
    rounds: int = 5
    seconds: float = 4.0
    warmup: float = 1.0
    pin: bool = True
    targets: tuple[str, ...] = ("processor", "peer-python", "peer-node", "bare-per-position", "raw-write")

    @classmethod
    def make(cls, quick: bool, pin: bool = True, targets: str | None = None) -> PeerConfig:
        chosen = tuple(t.strip() for t in targets.split(",") if t.strip()) if targets else cls.targets
        unknown = set(chosen) - set(LABELS)
        if unknown:
            raise ValueError(f"unknown peer target(s) {', '.join(sorted(unknown))}; choose from {', '.join(LABELS)}")
        if quick:
            return cls(rows=((500, 100), (1000, 100)), rounds=1, seconds=2.0, warmup=0.5, pin=pin, targets=chosen)
        return cls(pin=pin, targets=chosen)


# -- the Node.js peer's packages ---------------------------------------------------------------------------------

def _locked_versions() -> dict[str, str]:
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    return {name: lock["packages"][f"node_modules/{name}"]["version"] for name in ("ws", "ioredis")}


def _installed(name: str) -> str | None:
    try:
        return str(json.loads((NODE_DIR / "node_modules" / name / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def ensure_node_peer(say: Callable[[str], None] = print) -> tuple[str | None, dict[str, Any]]:
    """Node.js ≥ 20 and the peer's locked packages (``npm ci`` once, when missing or not the locked versions):
    ``(None, facts)`` when the Node peer can run, else ``(reason, facts)``; the bench then skips its row and says
    why."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None:
        return "node is not installed (the Node.js peer's row is skipped)", {}
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    facts: dict[str, Any] = {"node": version}
    try:
        if int(version.lstrip("v").split(".")[0]) < 20:
            return f"node {version} is older than 20, which ioredis 6 needs (the Node.js peer's row is skipped)", facts
    except ValueError:
        return f"node --version said {version!r} (the Node.js peer's row is skipped)", facts
    locked = _locked_versions()
    if any(_installed(name) != v for name, v in locked.items()):
        if npm is None:
            return "npm is not installed, and bench/peer_node/node_modules is missing (row skipped)", facts
        versions = ", ".join(f"{k} {v}" for k, v in locked.items())
        say(f"  npm ci --prefix {NODE_DIR.relative_to(ROOT)} (once: {versions})")
        done = subprocess.run([npm, "ci", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund"], capture_output=True,
                              text=True, timeout=600)
        if done.returncode != 0:
            return f"npm ci failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-300:]}", facts
    facts["packages"] = {name: _installed(name) for name in locked}
    return None, facts


# -- peer processes --------------------------------------------------------------------------------------------

class PeerProcess:
    """A peer server started as a child process; it announces ``{"port": N}`` on stdout once listening and
    subscribed, and prints its counters on stderr when stopped (kept in ``bench/out/<name>.log``)."""

    def __init__(self, name: str, argv: list[str], timeout: float = 30.0) -> None:
        self.name = name
        _harness.OUT.mkdir(parents=True, exist_ok=True)
        self.log_path = _harness.OUT / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=self._log)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.stop()
            raise RuntimeError(f"{name} did not start within {timeout:.0f} s: "
                               f"{self.log_path.read_text(errors='replace')[-500:]}")
        self.info = json.loads(line)
        self.port = int(self.info["port"])
        self.url = f"ws://127.0.0.1:{self.port}/live"
        self.counters: dict[str, Any] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        try:
            self.counters = json.loads(lines[-1]) if lines else None
        except ValueError:
            self.counters = None


def python_peer(name: str, redis_url: str, channel: str, coalesce: bool = True) -> PeerProcess:
    return PeerProcess(name, [sys.executable, "-m", "bench.peer_python", "--redis-url", redis_url,
                              "--channel", channel, *([] if coalesce else ["--no-coalesce"])])


def node_peer(name: str, redis_url: str, channel: str, coalesce: bool = True) -> PeerProcess:
    node = shutil.which("node")
    assert node is not None
    return PeerProcess(name, [node, str(NODE_DIR / "server.js"), "--redis-url", redis_url, "--channel", channel,
                              "--coalesce", "on" if coalesce else "off"])


# -- the comparison ----------------------------------------------------------------------------------------------

def _service_pids(bench: LoadBench) -> dict[str, int]:
    """valkey's and PostgreSQL's pids when the services are embedded (children of this process); else none."""
    provider = getattr(bench.h.suite, "provider", None)
    found = {}
    for name in ("redis", "postgres"):
        pid = getattr(getattr(provider, name, None), "pid", None)
        if isinstance(pid, int):
            found[name] = pid
    return found


class Comparison:
    """Owns the feeder and the peers for one comparison; :meth:`run` measures every row."""

    def __init__(self, bench: LoadBench, cfg: PeerConfig, say: Callable[[str], None]) -> None:
        self.bench = bench
        self.cfg = cfg
        self.say = say
        self.plan = Plan.make(cfg.pin)
        self.feeder: Worker | None = None
        self.peers: dict[str, PeerProcess] = {}
        self.targets: dict[str, Target] = {}
        self.skipped: dict[str, str] = {}
        self.node: dict[str, Any] = {}
        self.channels: dict[str, str] = {}  # the live channel each feeder-fed target reads

    # -- set-up ------------------------------------------------------------------------------------------------

    def start(self) -> None:
        h, bench = self.bench.h, self.bench
        stream, redis_url = h.endpoints.stream, h.endpoints.redis_url
        self.feeder = Worker("bench-feeder", "bench.feeder:Feeder", redis_url=redis_url)
        wanted = self.cfg.targets
        if "processor" in wanted:
            process = h.suite.processor
            if process is None or process.proc is None:
                self.skipped["processor"] = "the Processor is not running"
            else:
                self.targets["processor"] = self._fed("processor", process.live_url, process.proc.pid,
                                                      f"{stream}:live")
        node_checked, node_reason = False, None  # Node.js and its packages: looked at once, when first needed
        for name in SAME_JOB:
            if name not in wanted:
                continue
            coalesce = not name.endswith("-per-message")
            if name.startswith("peer-node"):
                if node_checked is False:
                    node_checked, (node_reason, self.node) = True, ensure_node_peer(self.say)
                if node_reason:
                    self.say(f"  {name} skipped: {node_reason}")
                    self.skipped[name] = node_reason
                    continue
                start = node_peer
            else:
                start = python_peer
            channel = f"{stream}:live:{name}"
            peer = self.peers[name] = start(name, redis_url, channel, coalesce)
            self.targets[name] = self._fed(name, peer.url, peer.pid, channel)
        if "bare-per-position" in wanted:
            self.targets["bare-per-position"] = replace(bench.baseline_target("broadcast"), name="bare-per-position")
        if "raw-write" in wanted:
            self.targets["raw-write"] = replace(bench.baseline_target("raw"), name="raw-write")

    def _fed(self, name: str, url: str, pid: int, channel: str) -> Target:
        """A target fed by the live feeder on ``channel``."""
        feeder, world = self.feeder, self.bench.world
        assert feeder is not None and world is not None
        entry_of = dict(zip(world.devices, world.device_entry, strict=True))
        self.channels[name] = channel

        def start(**kw: Any) -> None:
            devices = kw["devices"]
            feeder.send("run", channel=channel, events=world.events, entries=[entry_of[d] for d in devices],
                        devices=devices, device_event=kw["device_event"], rate=kw["rate"], duration=kw["duration"],
                        seq_start=kw["seq_start"])

        return Target(name, url, pid, start, feeder.result, stores=False)

    def close(self) -> None:
        self.plan.release([os.getpid()])
        for peer in self.peers.values():
            peer.stop()
        if self.feeder is not None:
            self.feeder.close()
            self.feeder = None

    # -- measuring ---------------------------------------------------------------------------------------------

    def _pin(self, target: Target) -> dict[str, list[int]]:
        """The target on its core; this process and every other process it started (fleet, feeder, valkey,
        PostgreSQL, the idle targets) on the others."""
        return self.plan.apply(target.pid, [os.getpid()])

    def _watch(self) -> dict[str, int]:
        watch = dict(_service_pids(self.bench))
        watch.pop("postgres", None)  # idle in these cells
        if self.feeder is not None:
            watch["feeder"] = self.feeder.pid
        return watch

    def _saturated(self, cell: dict[str, Any]) -> bool:
        """Was the load-makers' side the limit? The fleet at ≥ ``FLEET_SATURATED`` % of a core, or, pinned, the
        fleet, feeder and valkey together using nearly all of the cores they share."""
        fleet = cell.get("fleet_cpu_pct") or 0.0
        client = fleet + sum((cell.get("cpu_pct_of") or {}).values())
        cell["client_cpu_pct"] = client
        shared = 95.0 * len(self.plan.others)
        return fleet >= FLEET_SATURATED or (self.plan.enabled and client >= shared)

    def run(self) -> dict[str, Any]:
        cfg, bench = self.cfg, self.bench
        result: dict[str, Any] = {
            "config": {"rows": [list(r) for r in cfg.rows], "rounds": cfg.rounds, "seconds": cfg.seconds,
                       "warmup": cfg.warmup, "fleet_saturated_pct": FLEET_SATURATED},
            "pinning": self.plan.describe(), "skipped": self.skipped, "node": self.node,
            "targets": list(self.targets), "labels": {k: LABELS[k] for k in self.targets}, "rows": []}
        plan = self.plan
        self.say(f"  pinning: target on core(s) {list(plan.target)}, the rest on {list(plan.others)}" if plan.enabled
                 else f"  not pinned: {plan.reason}")
        result["frames_check"] = self.frames_check()
        for name, verdict in result["frames_check"]["targets"].items():
            self.say(f"  frames check {name}: {'identical' if verdict.get('identical') else verdict}")
        names = list(self.targets)
        for viewers, rate in cfg.rows:
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
            errors: list[dict[str, Any]] = []
            for r in range(cfg.rounds):
                for name in (names if r % 2 == 0 else list(reversed(names))):
                    target = self.targets[name]
                    peer = self.peers.get(name)
                    if peer is not None and peer.proc.poll() is not None:
                        why = f"the {name} process ended (exit {peer.proc.returncode}; see {peer.log_path.name})"
                        self.say(f"  {viewers} fans × {rate}/s, round {r + 1}, {name} skipped: {why}")
                        errors.append({"target": name, "round": r, "error": why})
                        continue
                    placed = self._pin(target)
                    try:
                        bench.cell(target, label="warm-up", viewers=viewers, rate=rate, n_events=1,
                                   seconds=cfg.warmup)
                        cell = bench.cell(target, label="peers", viewers=viewers, rate=rate, n_events=1,
                                          seconds=cfg.seconds, watch=self._watch())
                    except Exception as exc:  # one target failing (e.g. a peer died) must not lose the others
                        self.say(f"  {viewers} fans × {rate}/s, round {r + 1}, {name} FAILED: {type(exc).__name__}: "
                                 f"{str(exc)[:200]}")
                        errors.append({"target": name, "round": r, "error": f"{type(exc).__name__}: {exc}"[:2000]})
                        bench.connected = None
                        continue
                    cell["round"] = r
                    cell["pinned"] = bool(placed)
                    cell["fleet_saturated"] = self._saturated(cell)
                    runs[name].append(cell)
                    lat = cell["latency_ms"]
                    self.say(f"  {viewers} fans × {rate}/s, round {r + 1}, {name}: p50/p99/max {_n(lat['p50'])}/"
                             f"{_n(lat['p99'])}/{_n(lat['max'])} ms, {_n(cell.get('delivered_fps'))} frames/s, "
                             f"loss {cell['loss']}, late {cell.get('late', 0)}, CPU {cell['cpu_pct']:.0f}%, fleet "
                             f"{cell['fleet_cpu_pct']:.0f}%{' SATURATED' if cell['fleet_saturated'] else ''}")
            result["rows"].append({"viewers": viewers, "rate": rate, "errors": errors,
                                   "targets": {name: median_cell(cells) for name, cells in runs.items() if cells}})
        bench.fleet.call("close_all")  # type: ignore[union-attr]  # the fleet exists once the bench started
        bench.connected = None
        self.plan.release([os.getpid()])
        for name, peer in self.peers.items():
            peer.stop()
            result.setdefault("peer_counters", {})[name] = peer.counters
        return result

    # -- same bytes ------------------------------------------------------------------------------------------------

    def frames_check(self) -> dict[str, Any]:
        """One probe message through every feeder-fed target, to one viewer each: are the frames the viewer gets
        byte for byte the contract's (:func:`bench.wire.position_frame`), hence the same for every target?

        The probe's values are chosen to differ where renderers differ: ``-0.0``, ``1e-05`` and ``1e+16`` (Python
        writes them so, JavaScript would not), ``null`` fields, escapes and non-ASCII text in a device id."""
        bench = self.bench
        assert bench.fleet is not None and bench.world is not None and self.feeder is not None
        world = bench.world
        event = world.events[0]
        seq = bench.seq
        bench.seq += 10
        now = time.time()
        probe = [
            [event, world.device_entry[0], world.devices[0], render_ts_ms(TS_BASE_MS + seq), 41.00001, -0.0, None,
             1e-05, None, None, f"{int(now * 1000)}-0"],
            [event, world.device_entry[1], 'probe-"q"\\-\x01-ü-\u2028', render_ts_ms(TS_BASE_MS + seq + 1), 1e16,
             19.8187, now, 87.5, 270.0, 12, f"{int(now * 1000)}-1"],
        ]
        expected = [position_frame(p) for p in probe]
        out: dict[str, Any] = {"probe_positions": len(probe), "targets": {}}
        for name in ("processor", *SAME_JOB):
            target = self.targets.get(name)
            if target is None:
                continue
            channel = self.channels[name]
            bench.fleet.call("close_all")
            bench.connected = None
            bench.fleet.call("connect", url=target.url, cookies=world.cookies[:1], timeout=60)
            bench.fleet.call("subscribe", event_ids=[event], timeout=60)
            bench.fleet.call("arm", sampled=[0])
            bench.fleet.call("capture", index=0)
            bench.fleet.call("expect", expected=[len(probe)])
            receivers = self.feeder.call("probe", channel=channel, positions=probe)
            bench._wait_delivered(5.0)
            got = [p for p in bench.fleet.call("captured", index=0) if b'"position"' in p]
            verdict: dict[str, Any] = {"identical": got == expected, "frames": len(got), "receivers": receivers}
            if got != expected:
                verdict["expected"] = [e.decode(errors="replace") for e in expected]
                verdict["got"] = [g.decode(errors="replace") for g in got]
            out["targets"][name] = verdict
        bench.fleet.call("close_all")
        bench.connected = None
        return out


def median_cell(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median p99 of a target's rounds, every run's figures beside it; faults of any run counted."""
    ordered = sorted(cells, key=lambda c: c["latency_ms"]["p99"] if c["latency_ms"]["p99"] is not None else 1e18)
    median = dict(ordered[len(ordered) // 2])
    median["runs"] = [{"p50": c["latency_ms"]["p50"], "p99": c["latency_ms"]["p99"], "max": c["latency_ms"]["max"],
                       "delivered_fps": c.get("delivered_fps"), "loss": c["loss"], "late": c.get("late", 0),
                       "cpu_pct": c.get("cpu_pct"), "fleet_cpu_pct": c.get("fleet_cpu_pct"),
                       "fleet_saturated": c.get("fleet_saturated"), "round": c.get("round")} for c in cells]
    fps = sorted(c.get("delivered_fps") or 0 for c in cells)
    median["delivered_fps_median"] = fps[len(fps) // 2]
    for key in ("loss", "shed_viewers", "duplicates", "out_of_order", "excess"):
        median[key] = sum(c.get(key) or 0 for c in cells)
    median["over_capacity"] = any(c.get("over_capacity") for c in cells)
    median["fleet_saturated"] = any(c.get("fleet_saturated") for c in cells)
    return median


def _n(value: float | None) -> str:
    return "?" if value is None else f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
