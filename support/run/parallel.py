"""``python -m support.run.parallel -j N [behave args]``: the suite in N behave processes on one set of services.

Why: the suite mostly waits (for frames, rows, deadlines), so on two cores N processes finish sooner than one.
How:

* One set of services (``-D services``, default ``auto``: the embedded ones) is started here, through
  support/services as a single run does. Workers 2..N reach it with ``-D services=external``, which gives each
  its own database ``live_suite_<hex>`` and stream prefix ``suite-<hex>:`` (support/services/external.py) and
  their own ports (every port the suite opens is a free one the kernel picks). Worker 1 starts services of
  its own: it runs the ``@needs-service-control`` scenarios, which stop and restart Redis and PostgreSQL
  (support/run/shards.py puts them all in shard 1). With ``-D services=external`` every worker uses the given
  servers, as a single run would.
* Worker k runs ``behave [behave args] -D shard=k/N``: the shards together run every scenario of the selection
  exactly once (support/run/shards.py). ``-D order=random`` stays: the runner prints one seed and gives each
  worker a seed derived from it, so the same command replays the same orders.
* Each worker writes JUnit and behave's JSON to ``<reports>/worker-k/`` and its console to
  ``<reports>/worker-k/behave.log``; the runner merges them into ``<reports>/junit/`` and
  ``<reports>/acceptance.json`` (support/run/merge.py) and ends with one line ``N passed, N failed, N skipped``,
  the totals a single ``behave`` prints (workers run with ``--show-skipped``, so a scenario the selection leaves
  out is in the reports as skipped). A failing worker's log is printed. The exit status is non-zero if any
  worker failed.
* Ctrl-C or SIGTERM: every worker aborts and cleans up, then the shared services stop (support/run/workers.py).

Runner options come first: ``-j/--jobs N`` (default 2), ``--reports DIR`` (default ``reports/parallel``),
``--timeout SECONDS`` (default 3600); everything after them is given to every worker.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ..services import Endpoints, ServicesUnavailable, start_services
from ..services.base import ServiceProvider
from ..services.leftovers import sweep_earlier_runs
from .interrupts import sigterm_aborts_the_run
from .merge import Totals, count_junit, failure_details, merge_json, merge_junit
from .settings import POSTGRES_IMAGE, REDIS_IMAGE, REPO_ROOT
from .workers import Worker, stop_all, wait_all

#: ``-D`` options the runner sets for each worker; given by the user they would break the split.
OWNED = ("shard", "report_dir")


def defines(args: Sequence[str]) -> dict[str, str]:
    """The ``-D name=value`` options in behave ``args`` (every spelling behave accepts; the last one wins)."""
    found: dict[str, str] = {}
    items = iter(args)
    for arg in items:
        if arg in ("-D", "--define"):
            value = next(items, "")
        elif arg.startswith("--define="):
            value = arg[len("--define="):]
        elif arg.startswith("-D") and len(arg) > 2:
            value = arg[2:]
        else:
            continue
        name, _, text = value.partition("=")
        found[name.strip()] = text
    return found


def derived_seed(seed: int, index: int) -> int:
    """Worker ``index``'s seed: distinct per worker, the same for the same run seed."""
    return random.Random(f"{seed}/{index}").randrange(1, 2**31)


def replay_argv(behave_args: Sequence[str], index: int, count: int, seed: int | None) -> list[str]:
    """The command that runs worker ``index``'s scenarios alone, in the same order, on services of its own."""
    order = ["-D", "order=random", "-D", f"seed={derived_seed(seed, index)}"] if seed is not None else []
    return ["behave", *behave_args, "-D", f"shard={index}/{count}", *order]


def worker_argv(behave_args: Sequence[str], index: int, count: int, folder: Path, *, services: list[str],
                seed: int | None, reports: list[str]) -> list[str]:
    """The command line of worker ``index`` (later ``-D`` options win over the user's)."""
    argv = [sys.executable, "-m", "behave", *behave_args, "-D", f"shard={index}/{count}", *services,
            "--junit", "--junit-directory", str(folder / "junit"), "--show-skipped",
            "-D", f"report={','.join(reports)}", "-D", f"report_dir={folder}"]
    if seed is not None:
        argv += ["-D", "order=random", "-D", f"seed={derived_seed(seed, index)}"]
    if not any(arg in ("-f", "--format") or arg.startswith(("--format=", "-f")) for arg in behave_args):
        argv += ["--format", "progress"]
    return argv


def _shared_services(mode: str, options: dict[str, str], count: int) -> tuple[ServiceProvider | None, list[str]]:
    """Start the services workers 2..N share; return the provider (to stop) and their ``-D`` options. ``[]``:
    each worker starts its own (one worker, or no shared services could start)."""
    redis_url = options.get("redis_url") or os.environ.get("REDIS_URL")
    database_url = options.get("database_url") or os.environ.get("DATABASE_URL")
    if mode == "external":
        return None, []  # every worker reaches the given servers, each with its own database and stream
    if count < 2:
        return None, []
    try:
        started = start_services(mode, redis_image=options.get("redis_image", REDIS_IMAGE),
                                 postgres_image=options.get("postgres_image", POSTGRES_IMAGE),
                                 redis_url=redis_url, database_url=database_url)
    except ServicesUnavailable as exc:
        say(f"no shared services ({exc}): each worker looks for its own")
        return None, []
    say(f"shared services: {started.provider.describe()}")
    endpoints: Endpoints = started.endpoints
    return started.provider, ["-D", "services=external", "-D", f"redis_url={endpoints.redis_url}",
                              "-D", f"database_url={endpoints.database_url}"]


def say(message: str) -> None:
    print(f"parallel: {message}", flush=True)


def _report_kinds(options: dict[str, str]) -> list[str]:
    kinds = [kind.strip().lower() for kind in options.get("report", "").split(",") if kind.strip()]
    return list(dict.fromkeys([*kinds, "json"]))


def _merge(workers: Sequence[Worker], reports: Path, kinds: list[str]) -> Totals:
    folders = [worker.log.parent for worker in workers]
    totals = merge_junit([folder / "junit" for folder in folders], reports / "junit")
    merge_json([folder / "acceptance.json" for folder in folders], reports / "acceptance.json")
    say(f"merged reports: {reports / 'junit'}/, {reports / 'acceptance.json'}")
    if "allure" in kinds:  # Allure reads a folder of result files: the union is the merged run
        for folder in folders:
            if (folder / "allure-results").is_dir():
                shutil.copytree(folder / "allure-results", reports / "allure-results", dirs_exist_ok=True)
    if "html" in kinds:
        say(f"HTML pages, one per worker: {', '.join(str(folder / 'acceptance.html') for folder in folders)}")
    return totals


def _clear(reports: Path) -> None:
    """Remove what an earlier parallel run wrote there, and only that: ``--reports`` may name a shared folder."""
    for old in [*reports.glob("worker-*"), reports / "junit", reports / "allure-results"]:
        shutil.rmtree(old, ignore_errors=True)
    (reports / "acceptance.json").unlink(missing_ok=True)


def _show_failures(workers: Sequence[Worker]) -> None:
    """A failed worker's log, then each of its failures as its JUnit holds them (step, traceback, what the suite
    saw), and the command that replays it alone."""
    for worker in workers:
        if worker.returncode != 0:
            print(f"---- {worker.name} ({worker.role}) ended with status {worker.returncode}; its log, "
                  f"{worker.log}: ----\n{worker.log.read_text(errors='replace').rstrip()}", flush=True)
            for detail in failure_details(worker.log.parent / "junit"):
                print(f"---- {worker.name}: failed ----\n{detail}", flush=True)
            print(f"---- end of {worker.name}; replay it alone: {shlex.join(worker.replay)}", flush=True)


def run(jobs: int, reports: Path, behave_args: list[str], timeout: float) -> int:
    options = defines(behave_args)
    if owned := [name for name in OWNED if name in options]:
        raise SystemExit(f"parallel: -D {', -D '.join(owned)} is the runner's to set (use --reports for the folder)")
    mode = options.get("services", "auto")
    seed: int | None = None
    if options.get("order") == "random":
        seed = int(options["seed"]) if options.get("seed") else random.SystemRandom().randrange(1, 2**31)
        say(f"scenario order: random, seed {seed} (replay with -D order=random -D seed={seed})")
    _clear(reports)
    kinds = _report_kinds(options)
    began = time.monotonic()
    provider: ServiceProvider | None = None
    workers: list[Worker] = []
    try:
        provider, shared = _shared_services(mode, options, jobs)
        for index in range(1, jobs + 1):
            services = shared if index > 1 else []
            folder = reports / f"worker-{index}"
            worker = Worker(index, jobs, worker_argv(behave_args, index, jobs, folder, services=services, seed=seed,
                                                     reports=kinds), folder / "behave.log",
                            role="shared services" if services else f"own services (-D services={mode})",
                            replay=replay_argv(behave_args, index, jobs, seed))
            workers.append(worker)  # before it starts: an interrupt right after the start still stops it
            worker.start(REPO_ROOT)
            say(f"{worker.name}: {worker.role}, log {worker.log}")
        left = wait_all(workers, began + timeout)
        if left:
            say(f"still running after {timeout:.0f} s: {', '.join(worker.name for worker in left)}; stopping them")
            for line in stop_all(left):
                say(line)
    except KeyboardInterrupt:
        say("interrupted: stopping the workers, then the services")
        for line in stop_all(workers):
            say(line)
        return 130
    finally:
        if provider is not None:
            provider.stop()
    for worker in workers:
        counted = count_junit(worker.log.parent / "junit")
        say(f"{worker.name}: {counted.line()} in {worker.took:.1f} s, exit status {worker.returncode}")
    totals = _merge(workers, reports, kinds)
    _show_failures(workers)
    failed = any(worker.returncode != 0 for worker in workers)
    say(f"{jobs} workers in {time.monotonic() - began:.1f} s" + (", FAILED" if failed or totals.failed else ""))
    print(totals.line(), flush=True)
    return 1 if failed or totals.failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m support.run.parallel", description=__doc__.splitlines()[0], allow_abbrev=False,
        usage="%(prog)s [-j N] [--reports DIR] [--timeout SECONDS] [behave args...]",
        epilog="Every other argument goes to each worker's behave (README, 'In parallel, and in shards').")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="behave processes (default: %(default)s)")
    parser.add_argument("--reports", type=Path, default=Path("reports/parallel"),
                        help="where the workers' and the merged reports go (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds before the workers are stopped (default: %(default)s)")
    args, behave_args = parser.parse_known_args(argv)
    if args.jobs < 1:
        parser.error("-j must be at least 1")
    sigterm_aborts_the_run()
    if cleaned := sweep_earlier_runs():
        say(cleaned)
    return run(args.jobs, args.reports.absolute(), behave_args, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
