"""``python -m support.run.durations REPORT.json...``: write the measured seconds of each scenario into
support/run/durations.json, which ``-D shard=i/n`` balances its shards by (support/run/shards.py).

The reports are behave's JSON (``-D report=json``, or ``-f json -o``), of any run: a whole one, a parallel run's
merged one (support/run/parallel.py), or a few scenarios' (the others keep their figures). A unit's seconds are
the sum of its steps' durations, background included, over every row of an outline. Elements are matched to
their unit by their feature file and line, read from the feature files as they are now, so the reports must
come from the current tree; the file then stores only the stable keys (file and name, see
:func:`~.shards.unit_key`). Units whose feature or scenario no longer exists are dropped.

Regenerate it when scenarios are added or their times change a lot: a missing unit weighs the median, which
only costs balance, never correctness (the shards still cover every scenario exactly once).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from behave.parser import parse_file

from .settings import REPO_ROOT
from .shard_model import containers, feature_file, run_units
from .shards import DURATIONS_FILE, unit_key


def lines_to_keys(files: Iterable[Path]) -> dict[tuple[str, int], str]:
    """``(feature file, line)`` of every scenario, outline and outline row -> its unit's key."""
    keys: dict[tuple[str, int], str] = {}
    for path in files:
        feature = parse_file(str(path))
        if feature is None:
            continue
        file = feature_file(str(path))
        for container in containers(feature):
            for item in run_units(container):
                key = unit_key(file, item.name)
                keys[(file, item.line)] = key
                for row in getattr(item, "scenarios", ()):  # an outline's rows
                    keys[(file, row.line)] = key
    return keys


def _location(element: dict[str, Any]) -> tuple[str, int] | None:
    file, _, line = str(element.get("location", "")).rpartition(":")
    return (feature_file(file), int(line)) if file and line.isdigit() else None


def measured(reports: Iterable[Path], keys: dict[tuple[str, int], str]) -> tuple[dict[str, float], list[str]]:
    """Seconds per unit key from behave JSON ``reports``, and the locations no current unit has."""
    seconds: dict[str, float] = {}
    unknown: list[str] = []
    for report in reports:
        for feature in json.loads(report.read_text(encoding="utf-8") or "[]"):
            for element in feature.get("elements", []):
                if element.get("type") != "scenario" or element.get("status") == "skipped":
                    continue
                location = _location(element)
                key = keys.get(location) if location else None
                if key is None:
                    unknown.append(str(element.get("location")))
                    continue
                took = sum((step.get("result") or {}).get("duration", 0.0) for step in element.get("steps", []))
                seconds[key] = seconds.get(key, 0.0) + took
    return seconds, unknown


def write(seconds: dict[str, float], target: Path, current: set[str]) -> dict[str, float]:
    """Merge ``seconds`` into ``target`` (kept figures of units still in ``current``), rounded; return it."""
    try:
        kept = json.loads(target.read_text(encoding="utf-8")).get("seconds", {})
    except FileNotFoundError:
        kept = {}
    merged = {key: float(value) for key, value in kept.items() if key in current}
    merged.update(seconds)
    data = {
        "about": "measured seconds per scenario (an outline counts once), for -D shard=i/n; "
                 "regenerate with python -m support.run.durations <behave JSON report>...",
        "seconds": {key: round(merged[key], 2) for key in sorted(merged)},
    }
    target.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, help="behave JSON reports of runs of the current tree")
    parser.add_argument("-o", "--output", type=Path, default=DURATIONS_FILE, help="default: %(default)s")
    parser.add_argument("--features", type=Path, default=REPO_ROOT / "features", help="default: %(default)s")
    args = parser.parse_args(argv)
    keys = lines_to_keys(sorted(args.features.rglob("*.feature")))
    seconds, unknown = measured(args.reports, keys)
    if unknown:
        print(f"not in the current feature files (a report of another tree?): {', '.join(unknown)}", file=sys.stderr)
    merged = write(seconds, args.output, set(keys.values()))
    missing = sorted(set(keys.values()) - set(merged))
    print(f"{args.output}: {len(seconds)} scenarios measured, {len(merged)} kept"
          + (f"; not measured (they weigh the median): {len(missing)}" if missing else ""))
    return 1 if unknown else 0


if __name__ == "__main__":
    sys.exit(main())
