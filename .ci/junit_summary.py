"""Count JUnit reports into the lines CI prints, and say whether the run may pass.

Two uses:

* ``junit_summary.py reports/<lane> --lane <lane> [--allow-skip-tag TAG]...`` prints
  ``acceptance[<lane>]: N passed, N failed, N skipped`` from the JUnit XML files there (behave's or
  pytest's) and exits non-zero when something failed, nothing passed, or a scenario was skipped without a
  tag that allows it (``--allow-skip-tag needs-service-control`` for providers that cannot stop their
  servers). Skipped scenarios are only in behave's reports with ``--show-skipped``: the lanes pass it, so
  a skip cannot hide.
* ``junit_summary.py --total LOG...`` sums the ``acceptance[<lane>]: ...`` lines of the lanes' logs into
  ``acceptance: N passed, N failed, N skipped`` (the last such line of each log counts).

Without ``--lane`` the first form prints the historical ``acceptance: ...`` line.
"""

from __future__ import annotations

import argparse
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

LANE_LINE = re.compile(r"^acceptance\[(?P<lane>[\w-]+)\]: (?P<passed>\d+) passed, (?P<failed>\d+) failed, "
                       r"(?P<skipped>\d+) skipped")


@dataclass
class Counts:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    #: Names of skipped test cases that no ``--allow-skip-tag`` covers.
    unexplained_skips: list[str] = field(default_factory=list)


def _tags(case: ET.Element) -> set[str]:
    """behave writes the scenario's tags into the case's system-out (``@scenario.begin`` then ``@a @b``)."""
    out = case.find("system-out")
    text = (out.text or "") if out is not None else ""
    return {word[1:] for word in text.split() if word.startswith("@")}


def count(directory: Path, allowed_skip_tags: set[str] = frozenset()) -> Counts:
    counts = Counts()
    for report in sorted(directory.glob("*.xml")):
        for case in ET.parse(report).getroot().iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                counts.failed += 1
            elif case.find("skipped") is not None or case.get("status") in ("skipped", "untested"):
                counts.skipped += 1
                if not _tags(case) & allowed_skip_tags:
                    counts.unexplained_skips.append(case.get("name", "?"))
            else:
                counts.passed += 1
    return counts


def lane_main(args: argparse.Namespace) -> int:
    counts = count(Path(args.directory), set(args.allow_skip_tag))
    label = f"acceptance[{args.lane}]" if args.lane else "acceptance"
    print(f"{label}: {counts.passed} passed, {counts.failed} failed, {counts.skipped} skipped")
    if counts.unexplained_skips:
        print(f"{label}: skipped without a reason this lane accepts: {', '.join(counts.unexplained_skips)}",
              file=sys.stderr)
    return 1 if counts.failed or counts.unexplained_skips or not counts.passed else 0


def total_main(logs: list[str]) -> int:
    passed = failed = skipped = 0
    for log in logs:
        last = None
        for line in Path(log).read_text(errors="replace").splitlines():
            match = LANE_LINE.match(line.strip())
            if match:
                last = match
        if last is None:
            print(f"{log}: no acceptance[<lane>] line", file=sys.stderr)
            failed += 1
            continue
        passed += int(last["passed"])
        failed += int(last["failed"])
        skipped += int(last["skipped"])
    print(f"acceptance: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or not passed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", help="a directory of JUnit XML files")
    parser.add_argument("--lane", help="the lane's name, for its acceptance[<lane>] line")
    parser.add_argument("--allow-skip-tag", action="append", default=[], metavar="TAG",
                        help="a skipped scenario carrying this tag (without @) is accepted")
    parser.add_argument("--total", nargs="+", metavar="LOG", help="sum the lanes' lines found in these logs")
    args = parser.parse_args()
    if args.total:
        return total_main(args.total)
    if not args.directory:
        parser.error("a directory of JUnit reports, or --total")
    return lane_main(args)


if __name__ == "__main__":
    sys.exit(main())
