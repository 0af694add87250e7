#!/usr/bin/env bash
# Lane "reports": the reports a reader gets (report_checks/, pytest driving behave; needs the services and a
# Chromium, so it is not part of the fast unit lane):
#   * a failing scenario's diagnostics reach the living documentation, the one-page HTML, JSON, Allure, JUnit
#     and the console (a run against a deliberately broken Processor), and the living documentation's totals;
#   * a dry run's living documentation lists every feature in story order with "not run" totals and nothing
#     failed, and real Chromium (the system's, as the @browser scenarios use it) opens its index: every
#     entry, scenarios folded, no file locations or tags in the owner's view.
# Left in reports/reports/: JUnit XML, the dry run's documentation (specification/html/index.html) and a
# screenshot of its index (living-doc-index.png).
set -euo pipefail
cd "$(dirname "$0")/../.."

mkdir -p reports/reports
bash .ci/install-chromium.sh || echo "lane reports: no Chromium (the browser checks fail under CI=true, else skip)"
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
