"""Print ``acceptance: N passed, N failed, N skipped`` from behave's own JUnit reports.

Exits non-zero when a scenario failed or nothing ran, so CI cannot pass on an empty or skipped run.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def count(directory: Path) -> tuple[int, int, int]:
    passed = failed = skipped = 0
    for report in sorted(directory.glob("*.xml")):
        for case in ET.parse(report).getroot().iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
            elif case.find("skipped") is not None or case.get("status") == "skipped":
                skipped += 1
            else:
                passed += 1
    return passed, failed, skipped


def main() -> int:
    passed, failed, skipped = count(Path(sys.argv[1]))
    print(f"acceptance: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or skipped or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
