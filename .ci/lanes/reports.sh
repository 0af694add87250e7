#!/usr/bin/env bash
# Lane "reports": a failing scenario's diagnostics reach the HTML, JSON, Allure, JUnit and console reports.
# Runs report_checks/ (pytest driving behave against a deliberately broken Processor; needs the services,
# so it is not part of the fast unit lane). JUnit XML in reports/reports/.
set -euo pipefail
cd "$(dirname "$0")/../.."

mkdir -p reports/reports
status=0
.venv-ci/bin/python -m pytest report_checks -q -p no:cacheprovider \
  --junitxml=reports/reports/report-checks.xml || status=$?

.venv-ci/bin/python - reports/reports/report-checks.xml <<'PY'
import sys
import xml.etree.ElementTree as ET

passed = failed = skipped = 0
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    if case.find("failure") is not None or case.find("error") is not None:
        failed += 1
    elif case.find("skipped") is not None:
        skipped += 1
    else:
        passed += 1
print(f"acceptance[reports]: {passed} passed, {failed} failed, {skipped} skipped")
PY
exit "$status"
