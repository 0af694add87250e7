#!/usr/bin/env bash
# Lane "browser": the @browser scenarios alone, in real Chromium (Debian's package, installed here if missing),
# with a browser REQUIRED (-D require_browser=true: a missing Chromium fails instead of skipping).
# Uses the lane frame of .ci/lanes/lib.sh, but not lane_behave: that one shows tag-excluded scenarios as
# skips, and this lane runs one tag on purpose. Redundant in CI when .ci/run calls .ci/install-chromium.sh
# before the other lanes (they run @browser too: it is in the default set); meant for running it alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lanes/lib.sh
lane_init browser

bash .ci/install-chromium.sh || lane_cannot_run "no Chromium, and it cannot be installed here"

echo "== lane browser: behave --tags=@browser -D require_browser=true"
status=0
"$LANE_VENV/bin/behave" -D require_services=true -D require_browser=true -D order=random --tags=@browser \
  --junit --junit-directory "$LANE_REPORTS" --format progress || status=$?
"$LANE_VENV/bin/python" .ci/junit_summary.py "$LANE_REPORTS" --lane browser || status=1
exit "$status"
