"""Suite speed: wall time of the six ``@live`` scenarios and of the whole suite, cold and warm, and of the whole
suite warm through the parallel runner (``python -m support.run.parallel -j 3``), each of its runs right after a
single-process warm run (same-session A/B: the machine's load changes between sessions, less between neighbours).

Each run is a real ``.venv/bin/behave`` subprocess on the embedded services. *Cold*: ``SUITE_CACHE_DIR`` is a
fresh empty directory, so the run ``initdb``s its PostgreSQL cluster. *Warm*: the cache holds the cluster
template from an earlier run. Each figure is the median of the runs; each run is split into

* services / schema / processor: the suite's own line ``started in: services X s, schema Y s, processor Z s``;
* per-scenario reset: its line ``per-scenario set-up and clean-up: median N ms over M scenarios``;
* scenario bodies: the sum of behave's step durations (``-f json``), background steps included;
* other: wall minus all of the above (interpreter start-up, imports, behave's parsing, shutdown);
* cpu: the CPU of every process of the run, servers and browser included (:mod:`bench.cpu_account`), which bounds
  what any schedule of the same work can reach on this machine's cores.

The warm single-process runs also name the slowest scenarios, each with the step it spent longest in: what the
suite waits for.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .cpu_account import Split, account, split

REPO = Path(__file__).resolve().parent.parent
BEHAVE = REPO / ".venv" / "bin" / "behave"
PYTHON = REPO / ".venv" / "bin" / "python"
#: Workers of the parallel runner's figure: on two cores three measured fastest (bench/ANALYSIS.md, "the parallel
#: runner, measured": the suite mostly waits, so a third process still helps; a fourth gained nothing).
PARALLEL_JOBS = 3
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed, (\d+) skipped$", re.MULTILINE)

STARTED = re.compile(r"started in: (.*)")
PHASE = re.compile(r"(\w+) ([0-9.]+) s")
RESET = re.compile(r"per-scenario set-up and clean-up: median ([0-9.]+) ms over (\d+) scenarios")
TOOK = re.compile(r"Took (?:(\d+)h ?)?(\d+)m(?:in)? ?([0-9.]+)s")
COUNTS = re.compile(r"(\d+) scenarios? passed, (\d+) failed(?:, (\d+) skipped)?")


def behave_once(tags: str | None, cache: Path, timeout: float = 300.0) -> dict[str, Any]:
    """One behave run; its wall time and its phases."""
    with tempfile.TemporaryDirectory(prefix="bench-behave-") as tmp:
        report = Path(tmp) / "report.json"
        argv = [str(BEHAVE), "-D", "services=embedded", "-D", "require_services=true", "-f", "json", "-o",
                str(report), "-f", "progress"]
        if tags:
            argv.append(f"--tags={tags}")
        env = dict(os.environ, SUITE_CACHE_DIR=str(cache))
        with account() as group, split(group) as kinds:
            began = time.monotonic()
            try:
                proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
                                      preexec_fn=group.join if group else None)
                output, status = proc.stdout + proc.stderr, proc.returncode
            except subprocess.TimeoutExpired as exc:
                output = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) \
                    else str(exc.stdout)
                status = -1
            wall = time.monotonic() - began
            cpu, by_kind = _cpu(group), _by_kind(kinds)
        bodies, scenarios, statuses = _bodies(report)
        slowest = slowest_scenarios(report)
    run: dict[str, Any] = {"wall": wall, "status": status, "scenarios": scenarios, "statuses": statuses,
                           "bodies": bodies, "slowest": slowest}
    if cpu is not None:
        run["cpu"] = cpu
    if by_kind is not None:
        run["cpu_by_kind"] = by_kind
    started = STARTED.search(output)
    if started:
        run.update({name: float(seconds) for name, seconds in PHASE.findall(started.group(1))})
    reset = RESET.search(output)
    if reset:
        run["reset_ms"] = float(reset.group(1))
        run["reset_scenarios"] = int(reset.group(2))
    took = TOOK.search(output)
    if took:
        run["behave_took"] = int(took.group(1) or 0) * 3600 + int(took.group(2)) * 60 + float(took.group(3))
    counts = COUNTS.search(output)
    if counts:
        run["passed"], run["failed"] = int(counts.group(1)), int(counts.group(2))
    if status != 0:
        run["tail"] = "\n".join(output.splitlines()[-25:])
    booted = sum(run.get(k, 0.0) for k in ("services", "schema", "processor"))
    run["booted"] = booted
    run["resets_total"] = run.get("reset_ms", 0.0) / 1000 * run.get("reset_scenarios", 0)
    run["other"] = wall - booted - bodies - run["resets_total"]
    return run


def _bodies(report: Path) -> tuple[float, int, dict[str, int]]:
    """Sum of step durations and scenario statuses from behave's JSON report."""
    try:
        features = json.loads(report.read_text() or "[]")
    except (OSError, ValueError):
        return 0.0, 0, {}
    total, scenarios, statuses = 0.0, 0, {}  # type: ignore[var-annotated]  # filled below from behave's JSON
    for feature in features:
        for element in feature.get("elements", []):
            if element.get("type") != "scenario":
                continue
            scenarios += 1
            status = element.get("status", "?")
            statuses[status] = statuses.get(status, 0) + 1
            for step in element.get("steps", []):
                total += (step.get("result") or {}).get("duration", 0.0)
    return total, scenarios, statuses


def _cpu(group: Any) -> float | None:
    """The group's CPU seconds once the run is over, after its servers had a moment to exit."""
    if group is None:
        return None
    try:
        return float(group.cpu_seconds())
    except (OSError, ValueError):
        return None


def _by_kind(kinds: Split | None) -> dict[str, float] | None:
    """CPU seconds by kind of process (:class:`bench.cpu_account.Split`), or ``None`` if they were not sorted."""
    if kinds is None:
        return None
    try:
        return kinds.seconds()
    except (OSError, ValueError):
        return None


#: How many of the slowest scenarios the report names.
SLOWEST = 15


def slowest_scenarios(report: Path, count: int = SLOWEST) -> list[dict[str, Any]]:
    """The ``count`` slowest scenarios of a behave JSON report (outline rows count apart), each with its seconds
    and the step it spent longest in, which is what it waits for."""
    try:
        features = json.loads(report.read_text() or "[]")
    except (OSError, ValueError):
        return []
    found = []
    for feature in features:
        for element in feature.get("elements", []):
            if element.get("type") != "scenario":
                continue
            steps = [(float((step.get("result") or {}).get("duration", 0.0)), step)
                     for step in element.get("steps", [])]
            if not steps:
                continue
            longest, step = max(steps, key=lambda pair: pair[0])
            found.append({"feature": feature.get("location", "").split(":")[0], "scenario": element.get("name", ""),
                          "tags": element.get("tags", []), "seconds": sum(d for d, _ in steps),
                          "step": f"{step.get('keyword', '')} {step.get('name', '')}", "step_seconds": longest})
    return sorted(found, key=lambda row: row["seconds"], reverse=True)[:count]


def parallel_once(jobs: int, cache: Path, timeout: float = 600.0) -> dict[str, Any]:
    """One run of the whole default suite through the parallel runner; its wall time and totals."""
    with tempfile.TemporaryDirectory(prefix="bench-parallel-") as tmp:
        argv = [str(PYTHON), "-m", "support.run.parallel", "-j", str(jobs), "--reports", tmp,
                "-D", "services=embedded", "-D", "require_services=true"]
        with account() as group, split(group) as kinds:
            began = time.monotonic()
            try:
                proc = subprocess.run(argv, cwd=REPO, env=dict(os.environ, SUITE_CACHE_DIR=str(cache)),
                                      capture_output=True, text=True, timeout=timeout,
                                      preexec_fn=group.join if group else None)
                output, status = proc.stdout + proc.stderr, proc.returncode
            except subprocess.TimeoutExpired:
                output, status = "", -1
            wall = time.monotonic() - began
            cpu, by_kind = _cpu(group), _by_kind(kinds)
    totals = SUMMARY.findall(output)
    passed, failed, _skipped = (int(n) for n in totals[-1]) if totals else (0, 0, 0)
    run: dict[str, Any] = {"wall": wall, "status": status, "scenarios": passed + failed, "jobs": jobs}
    if cpu is not None:
        run["cpu"] = cpu
    if by_kind is not None:
        run["cpu_by_kind"] = by_kind
    if status != 0:
        run["tail"] = "\n".join(output.splitlines()[-25:])
    return run


KEYS = ("wall", "services", "schema", "processor", "booted", "reset_ms", "bodies", "other", "cpu")


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": len(runs), "all_passed": all(r["status"] == 0 for r in runs)}
    for key in KEYS:
        values = [r[key] for r in runs if key in r]
        if values:
            out[key] = statistics.median(values)
            out[f"{key}_all"] = values
    out["scenarios"] = max((r["scenarios"] for r in runs), default=0)
    split_runs = [r["cpu_by_kind"] for r in runs if "cpu_by_kind" in r]
    if split_runs:
        out["cpu_by_kind"] = {kind: statistics.median(run.get(kind, 0.0) for run in split_runs)
                              for kind in split_runs[0]}
    return out


def measure(repeats: int, say: Callable[[str], None], *, whole_suite: bool = True) -> dict[str, Any]:
    """Cold and warm, ``@live`` and the whole suite (default tags), ``repeats`` runs each."""
    warm_cache = Path(tempfile.mkdtemp(prefix="bench-suite-cache-"))
    results: dict[str, Any] = {"repeats": repeats}
    try:
        for label, tags in (("live", "@live"), ("whole", None)) if whole_suite else (("live", "@live"),):
            cold, warm = [], []
            for i in range(repeats):
                # the first cold run of the first set fills the warm cache; the others start from nothing
                fresh = warm_cache if label == "live" and i == 0 else Path(tempfile.mkdtemp(prefix="bench-cold-"))
                try:
                    run = behave_once(tags, fresh)
                finally:
                    if fresh != warm_cache:
                        shutil.rmtree(fresh, ignore_errors=True)
                cold.append(run)
                say(f"  suite {label} cold #{i + 1}: {run['wall']:.2f} s wall, status {run['status']}")
            parallel: list[dict[str, Any]] = []
            for i in range(repeats):
                run = behave_once(tags, warm_cache)
                warm.append(run)
                say(f"  suite {label} warm #{i + 1}: {run['wall']:.2f} s wall, status {run['status']}")
                if label == "whole":  # right after its single-process neighbour: same-session A/B
                    run = parallel_once(PARALLEL_JOBS, warm_cache)
                    parallel.append(run)
                    say(f"  suite {label} warm parallel -j {PARALLEL_JOBS} #{i + 1}: {run['wall']:.2f} s wall, "
                        f"status {run['status']}")
            results[label] = {"cold": median_of(cold), "warm": median_of(warm),
                              "runs": {"cold": cold, "warm": warm, "parallel": parallel}}
            if parallel:
                results[label]["parallel"] = {**median_of(parallel), "jobs": PARALLEL_JOBS}
            if label == "whole" and warm:
                results[label]["slowest"] = warm[-1].get("slowest", [])
    finally:
        shutil.rmtree(warm_cache, ignore_errors=True)
    return results


def services_experiment(repeats: int = 3) -> dict[str, Any]:
    """Embedded service start (valkey + PostgreSQL from the warm template) with the run's files on the disk,
    as ``support/services/embedded.py`` does today, and on ``/dev/shm`` (tmpfs): how much of *booted* is the
    copy of the cluster template to disk?"""
    import types

    import support.services.embedded as embedded

    if not os.path.isdir("/dev/shm") or not os.access("/dev/shm", os.W_OK):
        return {"error": "no writable /dev/shm"}
    real = embedded.tempfile  # type: ignore[attr-defined]  # patching the module's own tempfile import for the experiment

    def start_stop(directory: str | None) -> float:
        def mkdtemp(*args: Any, **kwargs: Any) -> str:
            if directory and kwargs.get("prefix") == "live-suite-":
                kwargs["dir"] = directory
            return real.mkdtemp(*args, **kwargs)

        embedded.tempfile = types.SimpleNamespace(mkdtemp=mkdtemp)  # type: ignore[assignment, attr-defined]  # patching the module's own tempfile import for the experiment
        services = embedded.EmbeddedServices()
        try:
            began = time.monotonic()
            services.start()
            return time.monotonic() - began
        finally:
            services.stop()
            embedded.tempfile = real  # type: ignore[attr-defined]  # patching the module's own tempfile import for the experiment

    start_stop(None)  # makes sure the template exists (a cold start the first time on a machine)
    disk = [start_stop(None) for _ in range(repeats)]
    shm = [start_stop("/dev/shm") for _ in range(repeats)]
    return {"disk": disk, "shm": shm, "disk_median": statistics.median(disk), "shm_median": statistics.median(shm)}
