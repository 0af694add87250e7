"""One command for every benchmark: ``.venv/bin/python -m bench [--quick] [--only suite,load,baselines]``.

Runs, in this order and in one invocation, each part bounded in time:

1. ``suite``: suite speed, cold and warm (:mod:`bench.suite`);
2. ``baselines``: Redis ingest and PostgreSQL storage ceilings (:mod:`bench.baselines`), the bare ``websockets``
   server's idle memory and its one-frame-per-position fan-out flat out, with the same viewer fleet (:mod:`bench.load`);
3. ``load``: the Processor: idle memory and connect time, latency, fan-out, the comparison with peers doing its live
   job (issue 21, :mod:`bench.peers`), the viewers x rates scaling table, burst storage, snapshot time at 100k / 10M
   positions (:mod:`bench.load`, :mod:`bench.snapshot`);
   profiles of the Processor (py-spy) where a goal is missed (or always, with ``--profile``).

Writes ``bench/results.json`` (every raw figure) and ``bench/RESULTS.md`` (tables, goals, machine).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import machine, report

BENCH = Path(__file__).resolve().parent

PARTS = ("suite", "baselines", "load")


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def guarded(results: dict[str, Any], key: str, action: Any) -> Any:
    """Run one measurement; on failure keep its traceback in the results and carry on with the others."""
    try:
        value = action()
        results[key] = value
        return value
    except Exception as exc:
        say(f"  {key} FAILED: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        results[key] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-4000:]}
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, shorter cells, 1M instead of 10M")
    parser.add_argument("--only", default=",".join(PARTS),
                        help=f"comma-separated parts to run: {', '.join(PARTS)} (default: all)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per suite figure (default 3, quick 1)")
    parser.add_argument("--profile", action="store_true", help="profile the Processor even if every goal is met")
    parser.add_argument("--no-profile", action="store_true", help="never profile")
    parser.add_argument("--services", default="embedded", help="embedded (default), docker or external")
    parser.add_argument("--output", default=str(BENCH), help="directory for RESULTS.md and results.json")
    parser.add_argument("--load-only", default="idle,latency,fanout,peers,scaling,burst,snapshot",
                        help="with the load part: which measurements (comma-separated; default all)")
    parser.add_argument("--processor-cmd", default=None,
                        help="command starting the Processor under test (default: python -m processor), as the "
                             "suite's -D processor_cmd; e.g. to measure a candidate change before it lands")
    parser.add_argument("--peer-targets", default=None,
                        help="with load 'peers': which targets (default processor,peer-python,peer-node,"
                             "bare-per-position,raw-write)")
    parser.add_argument("--peer-rows", default=None,
                        help="with load 'peers': rows as FANSxRATE, comma-separated (default 500x100,500x400,"
                             "1000x100,1000x400; --quick 500x100,1000x100)")
    parser.add_argument("--peer-rounds", type=int, default=None, help="with load 'peers': rounds (default 5, quick 1)")
    parser.add_argument("--peer-seconds", type=float, default=None, help="with load 'peers': seconds per cell")
    parser.add_argument("--no-pin", action="store_true", help="with load 'peers': do not pin the target to a core")
    parser.add_argument("--report-only", action="store_true",
                        help="measure nothing: re-render RESULTS.md from the existing results.json")
    args = parser.parse_args(argv)
    if args.report_only:
        out = Path(args.output)
        results = json.loads((out / "results.json").read_text())
        results["goals"] = report.goals(results)
        (out / "RESULTS.md").write_text(report.markdown(results))
        say(f"re-rendered {out / 'RESULTS.md'} from {out / 'results.json'}")
        return 0
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"--only: unknown part(s) {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")

    from bench import harness

    harness.OUT = Path(args.output) / "out"  # Processor logs and py-spy profiles of this run
    began = time.monotonic()
    results: dict[str, Any] = {  # type: ignore[no-redef]  # the --report-only branch returns before this one
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "quick": args.quick, "parts": parts, "machine": machine.describe(),
    }
    say(f"bench: {', '.join(parts)}{' (quick)' if args.quick else ''} on {results['machine']['cpu']}, "
        f"{results['machine']['cores']} cores")

    if "suite" in parts:
        from bench import suite

        repeats = args.repeats or (1 if args.quick else 3)
        say(f"suite speed: {repeats} run(s) per figure")
        guarded(results, "suite", lambda: suite.measure(repeats, say))
        say("suite speed: embedded services start, run files on disk vs /dev/shm")
        experiment = guarded({}, "x", lambda: suite.services_experiment(repeats))
        if isinstance(results.get("suite"), dict) and experiment:
            results["suite"]["services_experiment"] = experiment

    if "baselines" in parts or "load" in parts:
        run_services_parts(args, parts, results)

    results["goals"] = report.goals(results)
    results["seconds"] = time.monotonic() - began
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)  # --output may name a directory not made yet
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (out / "RESULTS.md").write_text(report.markdown(results))
    say(f"done in {results['seconds']:.0f} s: {out / 'RESULTS.md'}, {out / 'results.json'}")
    for goal in results["goals"]:
        mark = ("OUT OF REACH" if goal["met"] == report.OUT_OF_REACH else "MET   " if goal["met"]
                else "missed" if goal["met"] is False else "n/a   ")
        say(f"  {mark} {goal['goal']}: "
            f"{goal['measured']}")
    return 0


def run_services_parts(args: argparse.Namespace, parts: list[str], results: dict[str, Any]) -> None:
    from bench import baselines
    from bench.harness import Harness
    from bench.load import EVENTS, LoadBench, LoadConfig
    from bench.snapshot import SnapshotBench

    cfg = LoadConfig.make(args.quick)
    repeats = args.repeats or (1 if args.quick else 3)
    harness = Harness(args.services, args.processor_cmd)
    bench: LoadBench | None = None
    load: dict[str, Any] = {}
    base: dict[str, Any] = {}
    results["load"], results["baselines"] = load, base
    try:
        say("services: starting")
        harness.start()
        say(f"  {harness.describe()}")
        results["services"] = harness.describe()

        if "baselines" in parts:
            say("baselines: Redis XADD / XREADGROUP, PostgreSQL COPY")
            count = 30_000 if args.quick else 100_000
            guarded(base, "redis", lambda: harness.run(baselines.redis_ceiling(harness.endpoints.redis_url, count)))
            rows = 20_000 if args.quick else 50_000
            guarded(base, "postgres", lambda: harness.run(
                baselines.postgres_ceiling(harness.endpoints.database_url, rows), timeout=300))

        bench = LoadBench(harness, cfg, say)
        bench.start()

        if "baselines" in parts:
            # The bare server's cells at paced rates moved into the comparison (load: peers), where they run in the
            # same rounds as the Processor and the peers; here: its idle memory, and how fast one frame per
            # position goes flat out (the capacity of a server that does not batch).
            say("baselines: bare websockets server: idle memory; one frame per position, flat out")
            target = bench.baseline_target()
            guarded(base, "idle", lambda: bench.idle_memory(target))
            for mode, key in (("broadcast", "fanout"), ("raw", "fanout_raw")):
                flat = bench.baseline_target(mode)
                cell = guarded({}, "cell", lambda flat=flat: bench.cell(flat, label="flat out", viewers=1000,
                                                                        rate=None, n_events=1,
                                                                        seconds=cfg.sweep_seconds))
                if cell:
                    base.setdefault(key, []).append(cell)
                    say(f"  {flat.name} flat out: {_fps(cell)} frames/s, loss {cell['loss']}")
            bench.fleet.call("close_all")  # type: ignore[union-attr]  # set by the baseline start above
            bench.connected = None
            bench.server.close()  # type: ignore[union-attr]  # set by the baseline start above
            bench.server = None

        if "load" in parts:
            say("load: starting the Processor")
            if guarded(load, "start", lambda: {"seconds": _start(harness)}) is None:
                return
            target = bench.processor_target()
            guarded(load, "warm_up", lambda: bench.warm_up(target))
            wanted = set(args.load_only.split(","))
            idle = None
            if "idle" in wanted:
                say("load: idle memory and connect time, 1,000 viewers")
                idle = guarded(load, "idle", lambda: bench.idle_memory(target))
            if idle:
                say(f"  connect {idle['connect']['seconds']:.2f} s, {idle['kib_per_viewer']:.1f} KiB per idle viewer")
            say("load: latency cell")
            cell = guarded(load, "latency", lambda: _latency(bench, target, cfg, repeats)) \
                if "latency" in wanted else None
            if cell:
                say(f"  p99 {cell['latency_ms']['p99']} ms (runs: {_p99s(cell)}), loss {cell['loss']}")
            say("load: fan-out sweep, 1,000 viewers on one event")
            sweep = load.setdefault("fanout", [])
            for rate in cfg.sweep_rates if "fanout" in wanted else ():
                cell = guarded({}, "cell", lambda rate=rate: bench.cell(target, label="fan-out", viewers=1000,
                                                                        rate=rate,
                                                              n_events=1, seconds=cfg.sweep_seconds))
                if cell:
                    sweep.append(cell)
                    say(f"  fan-out {rate}/s: {_fps(cell)} frames/s, loss {cell['loss']}, shed {cell['shed_viewers']}")
            if "peers" in wanted:
                say("load: the Processor against peers doing its live job, in rounds (issue 21)")
                guarded(load, "peers", lambda: _peers(bench, args, say))
            say("load: scaling table")
            table = load.setdefault("scaling", [])
            for viewers in cfg.scaling_viewers if "scaling" in wanted else ():
                for rate in cfg.scaling_rates:
                    cell = guarded({}, "cell", lambda viewers=viewers, rate=rate: bench.cell(target, label="scaling",
                                                                                             viewers=viewers,
                                                                  rate=rate,
                                                                  n_events=EVENTS, seconds=cfg.cell_seconds))
                    if cell:
                        table.append(cell)
                        say(f"  {viewers} viewers x {rate}/s: {_fps(cell)} frames/s, p99 {cell['latency_ms']['p99']}"
                            f" ms, loss {cell['loss']}, shed {cell['shed_viewers']}, CPU {cell['cpu_pct']:.0f}%")
            say("load: burst storage")
            burst = guarded(load, "burst", bench.burst) if "burst" in wanted else None
            if burst:
                say(f"  {burst['stored']['per_s'] or 0:,.0f} positions/s stored")
            bench.fleet.call("close_all")  # type: ignore[union-attr]  # set by the load start above
            bench.connected = None
            sizes = [100_000, 1_000_000] if args.quick else [100_000, 10_000_000]
            say(f"load: snapshot at {', '.join(f'{s:,}' for s in sizes)} positions")
            if "snapshot" in wanted:
                guarded(load, "snapshot", lambda: SnapshotBench(harness, sizes, say, profile=not args.no_profile).run())

            goals = report.goals(results)
            if not args.no_profile and (args.profile or any(g["met"] is False and g.get("profile") for g in goals)):
                say("load: profiling the Processor (py-spy)")
                profiles = load.setdefault("profiles", {})
                guarded(profiles, "fanout", lambda: bench.cell(
                    target, label="profile fan-out", viewers=1000, rate=cfg.sweep_rates[-1], n_events=1,
                    seconds=5.0, profile="fanout"))
                guarded(profiles, "scaling", lambda: bench.cell(
                    target, label="profile scaling", viewers=100, rate=5000, n_events=EVENTS,
                    seconds=4.0, profile="scaling"))
                guarded(profiles, "burst", lambda: bench.burst(profile="burst"))
                guarded(profiles, "connect", lambda: _profile_connect(bench, target))
            if isinstance(load.get("snapshot"), dict) and load["snapshot"].get("profile"):
                load.setdefault("profiles", {})["snapshot"] = load["snapshot"]["profile"]
    finally:
        if bench is not None:
            bench.close()
        say("services: stopping")
        harness.stop()


def _latency(bench: Any, target: Any, cfg: Any, repeats: int) -> dict[str, Any]:
    """The latency cell ``repeats`` times: a p99 over a few seconds on a shared 2-core machine moves by tens of
    per cent from one run to the next, so the goal compares the run of median p99 of each target, and every run's
    figures are kept beside it (``runs``)."""
    cells = [bench.cell(target, label="latency", viewers=cfg.latency_viewers, rate=cfg.latency_rate, n_events=1,
                        seconds=cfg.cell_seconds) for _ in range(repeats)]
    ordered = sorted(cells, key=lambda c: c["latency_ms"]["p99"] if c["latency_ms"]["p99"] is not None else 1e18)
    median = dict(ordered[len(ordered) // 2])
    median["runs"] = [{"p50": c["latency_ms"]["p50"], "p99": c["latency_ms"]["p99"], "max": c["latency_ms"]["max"],
                       "loss": c["loss"], "late": c.get("late", 0), "cpu_pct": c.get("cpu_pct")} for c in cells]
    for key in ("loss", "shed_viewers", "duplicates", "out_of_order"):  # a fault in any run counts
        median[key] = sum(c.get(key) or 0 for c in cells)
    return median


def _peers(bench: Any, args: argparse.Namespace, say: Any) -> dict[str, Any]:
    """The comparison of issue 21 (:mod:`bench.peers`), with the command line's overrides."""
    from dataclasses import replace

    from bench.peers import Comparison, PeerConfig

    cfg = PeerConfig.make(args.quick, pin=not args.no_pin, targets=args.peer_targets)
    if args.peer_rows:
        rows = tuple(tuple(int(x) for x in row.lower().split("x")) for row in args.peer_rows.split(",") if row)
        cfg = replace(cfg, rows=rows)  # type: ignore[arg-type]  # FANSxRATE pairs, checked by the split above
    if args.peer_rounds:
        cfg = replace(cfg, rounds=args.peer_rounds)
    if args.peer_seconds:
        cfg = replace(cfg, seconds=args.peer_seconds)
    comparison = Comparison(bench, cfg, say)
    try:
        comparison.start()
        return comparison.run()
    finally:
        comparison.close()
        if bench.server is not None:  # the bare server of the reference rows
            bench.server.close()
            bench.server = None


def _p99s(cell: dict[str, Any]) -> str:
    return ", ".join(f"{r['p99']}" for r in cell.get("runs") or [cell["latency_ms"]])


def _start(harness: Any) -> float:
    began = time.monotonic()
    harness.start_processor("main")
    return time.monotonic() - began


def _profile_connect(bench: Any, target: Any) -> dict[str, Any]:
    from bench.load import finish_profile, start_profile

    bench.fleet.call("close_all")
    bench.connected = None
    spy = start_profile(target.pid, "connect", 2.0)
    connect = bench.fleet.call("connect", url=target.url, cookies=bench.world.cookies[:1000], timeout=180)
    profile = finish_profile(spy) if spy else None
    bench.fleet.call("close_all")
    return {"label": "1,000 viewers connecting", "connect_seconds": connect["seconds"], "profile": profile}


def _fps(cell: dict[str, Any]) -> str:
    return f"{cell['delivered_fps']:,.0f}" if cell.get("delivered_fps") else "?"


if __name__ == "__main__":
    sys.exit(main())
