#!/usr/bin/env bash
# Lane "browser": the @browser scenarios alone, in real Chromium (Debian's package, installed here if missing),
# with a browser REQUIRED (-D require_browser=true: a missing Chromium fails instead of skipping).
# Uses the lane frame of .ci/lanes/lib.sh. Not needed as a lane of its own when .ci/run calls
# .ci/install-chromium.sh before the other lanes: they run @browser too (it is in the default set).
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lanes/lib.sh
lane_init browser

bash .ci/install-chromium.sh || lane_cannot_run "no Chromium, and it cannot be installed here"

echo "== lane browser: behave --tags=@browser -D require_browser=true"
lane_behave --tags=@browser -D require_browser=true
