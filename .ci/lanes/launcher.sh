#!/usr/bin/env bash
# Lane "launcher": the default suite once more, with the Processor started through a launcher that forks it as
# a child (fixtures/launcher.sh, as `npm start` does) instead of exec-ing it. It proves the suite signals the
# whole process group (SIGTERM reaches the Processor; nothing is left running) and runs a command given by an
# absolute path. Services required, embedded, random order.
set -euo pipefail
cd "$(dirname "$0")/../.."
LANE_VENV=${LANE_VENV:-.venv-ci}
LAUNCHER="$PWD/fixtures/launcher.sh"
export LAUNCHER_PYTHON="$PWD/$LANE_VENV/bin/python"

source .ci/lanes/lib.sh
lane_init launcher
echo "== lane $LANE: behave -D services=embedded -D processor_cmd=$LAUNCHER"
status=0
lane_behave -D services=embedded -D processor_cmd="$LAUNCHER" || status=$?

# Nothing of the Processor may outlive the run: no launcher, no Processor started from this checkout (other
# checkouts on the machine may run their own).
left=()
for pid in $(pgrep -f -- "fixtures/launcher.sh|-m processor" || true); do
  [[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" == "$PWD" ]] && left+=("$(tr '\0' ' ' <"/proc/$pid/cmdline")")
done
if [[ ${#left[@]} -gt 0 ]]; then
  echo "lane $LANE: processes left running after the suite:" >&2
  printf '  %s\n' "${left[@]}" >&2
  status=1
fi
exit "$status"
