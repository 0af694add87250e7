"""``python -m support.run.shard_check [--ran MERGED.json] [--splits 2,3,5] [behave selection args]``: proof that
sharding loses and repeats nothing (the CI lane ``.ci/lanes/shards.sh`` runs it).

The reference is behave's own listing: a ``--dry-run`` of the same selection (no hooks, no services, a few
seconds), as behave's JSON, with ``--show-skipped`` so that scenarios the selection leaves out are listed too.
Then:

* for each ``n`` of ``--splits``, the split ``-D shard=i/n`` makes of the run's units (the same code the
  shards run: support/run/shard_model.py and shards.py) puts every unit of the listing in exactly one shard;
* with ``--ran``, the merged JSON of a parallel run (support/run/parallel.py) holds every scenario of the
  listing (an outline's rows each) exactly once, and nothing else.

Prints one line per check and exits non-zero if any fails, naming the scenarios missing or repeated.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from behave.configuration import Configuration
from behave.runner_util import collect_feature_locations, parse_features

from .durations import lines_to_keys
from .merge import scenarios_in_json
from .settings import REPO_ROOT
from .shard_model import feature_file, units_of
from .shards import Unit, assign, estimate, load_durations


def dry_listing(behave_args: Sequence[str]) -> list[str]:
    """Every scenario behave lists for the selection ``behave_args``, as ``<location> <name>``."""
    with tempfile.TemporaryDirectory(prefix="shard-check-") as folder:
        report = Path(folder) / "dry.json"
        subprocess.run([sys.executable, "-m", "behave", *behave_args, "--dry-run", "--show-skipped", "--no-summary",
                        "-f", "json", "-o", str(report)], cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL)
        return scenarios_in_json(report)


def model_units(behave_args: Sequence[str]) -> list[Unit]:
    """The units of the selection, as the shards see them (behave's own configuration, behave.ini included)."""
    config = Configuration(command_args=list(behave_args))
    features: list[Any] = parse_features(collect_feature_locations(config.paths or ["features"]), language=config.lang)
    return [unit for unit, _ in units_of(features, config)]


def _problems(counts: Counter[str], expected: set[str]) -> list[str]:
    missing = sorted(expected - set(counts))
    repeated = sorted(key for key, seen in counts.items() if seen > 1)
    extra = sorted(set(counts) - expected)
    return ([f"missing: {', '.join(missing)}"] if missing else []) + \
        ([f"more than once: {', '.join(repeated)}"] if repeated else []) + \
        ([f"not in the listing: {', '.join(extra)}"] if extra else [])


def check_splits(units: Sequence[Unit], listed_keys: set[str], splits: Sequence[int]) -> list[str]:
    """One line per split; a line starting with ``FAIL`` when a unit is missing or repeated."""
    durations = load_durations()
    lines = []
    for count in splits:
        shards = assign(units, count, durations)
        problems = _problems(Counter(key for shard in shards for key in shard), listed_keys)
        sizes = "/".join(str(len(shard)) for shard in shards)
        seconds = "/".join(f"{estimate(shard, units, durations):.0f}" for shard in shards)
        verdict = "FAIL " + "; ".join(problems) if problems else "each exactly once"
        lines.append(f"-D shard=i/{count}: {len(listed_keys)} units in shards of {sizes} (~{seconds} s): {verdict}")
    return lines


def check_ran(ran: Path, listing: Sequence[str]) -> str:
    """One line comparing what a parallel run ran with the listing."""
    problems = _problems(Counter(scenarios_in_json(ran)), set(listing))
    verdict = "FAIL " + "; ".join(problems) if problems else "every scenario of the listing exactly once"
    return f"{ran}: {len(scenarios_in_json(ran))} scenarios ran: {verdict}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--ran", type=Path, help="the merged behave JSON of a parallel run of the same selection")
    parser.add_argument("--splits", default="2,3,5", help="shard counts to check (default: %(default)s)")
    args, behave_args = parser.parse_known_args(argv)
    listing = dry_listing(behave_args)
    if len(set(listing)) != len(listing):
        print(f"FAIL the dry run lists a scenario twice: {sorted(k for k, n in Counter(listing).items() if n > 1)}")
        return 1
    keys = lines_to_keys(sorted((REPO_ROOT / "features").rglob("*.feature")))
    listed_keys = {keys[(feature_file(file), int(line))] for file, _, line in
                   (entry.split(" ", 1)[0].rpartition(":") for entry in listing)}
    lines = [f"dry run: {len(listing)} scenarios, {len(listed_keys)} units (an outline counts once)"]
    lines += check_splits(model_units(behave_args), listed_keys, [int(n) for n in args.splits.split(",") if n])
    if args.ran:
        lines.append(check_ran(args.ran, listing))
    for line in lines:
        print(f"shard check: {line}")
    return 1 if any("FAIL" in line for line in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
