#!/usr/bin/env bash
# Lane "launcher": the default suite once more, with the Processor started through a launcher that forks it as
# a child (fixtures/launcher.sh, as `npm start` does) instead of exec-ing it. It proves the suite signals the
# whole process group (SIGTERM reaches the Processor; nothing is left running) and runs a command given by an
# absolute path. Services required, embedded, random order.
set -euo pipefail
cd "$(dirname "$0")/../.."
LANE=launcher
LANE_VENV=${LANE_VENV:-.venv-ci}
LAUNCHER="$PWD/fixtures/launcher.sh"
export LAUNCHER_PYTHON="$PWD/$LANE_VENV/bin/python"

if [[ -f .ci/lanes/lib.sh ]]; then
  source .ci/lanes/lib.sh
  lane_init "$LANE"
  echo "== lane $LANE: behave -D services=embedded -D processor_cmd=$LAUNCHER"
  status=0
  lane_behave -D services=embedded -D processor_cmd="$LAUNCHER" || status=$?
else  # standalone (before the shared lane library exists): the same run and the same closing line
  reports="reports/$LANE"
  rm -rf "$reports" && mkdir -p "$reports"
  if [[ ! -x "$LANE_VENV/bin/behave" ]]; then
    python3 -m venv "$LANE_VENV"
    "$LANE_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt
  fi
  echo "== lane $LANE: behave -D services=embedded -D processor_cmd=$LAUNCHER"
  status=0
  "$LANE_VENV/bin/behave" -D require_services=true -D services=embedded -D order=random \
    -D processor_cmd="$LAUNCHER" --junit --junit-directory "$reports" --format progress || status=$?
  summary=$("$LANE_VENV/bin/python" .ci/junit_summary.py "$reports") || status=1
  echo "${summary/acceptance:/acceptance[$LANE]:}"
fi

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
