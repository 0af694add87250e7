#!/usr/bin/env bash
# Lane "crash": nothing of a run is left behind, however it ends (issue 21, item 5). Embedded services.
#   1. killed: a run of @steady-load is killed with SIGKILL mid-way (it has recorded valkey-server, PostgreSQL
#      and the Processor, and its trackers are reporting); they must still be running after the kill (else this
#      proves nothing); a second, short run (@happy-path) must end them all (PostgreSQL's backends too), and
#      delete their folders and the record.
#   2. normal: that second run, once ended, has left no record of its own.
#   3. SIGTERM: a run of @steady-load stopped with SIGTERM mid-way leaves none of its processes, folders or
#      record.
# The runs' output and the snapshots are kept in reports/crash/.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lanes/lib.sh
lane_init crash

reason=$("$LANE_VENV/bin/python" -c 'from support.services.embedded import missing_binaries; print(missing_binaries() or "")')
[[ -z $reason ]] || lane_cannot_run "embedded services: $reason"

BEHAVE=("$LANE_VENV/bin/behave" -D require_services=true -D services=embedded --format progress)
# PYTHONPATH: the checks read the run records through support/ (the suite is not installed; see pyproject.toml)
CHECK=(env PYTHONPATH="$PWD" "$LANE_VENV/bin/python" .ci/lanes/crash_check.py)
out=$LANE_REPORTS
passed=0
failed=0
running=""
# Interrupted, the lane stops the run it started the way CI would: SIGTERM, which leaves nothing.
trap '[[ -n $running ]] && kill -TERM "$running" 2>/dev/null; true' EXIT

pass() { echo "lane $LANE: ok: $*"; passed=$((passed + 1)); }
fail() { echo "lane $LANE: FAILED: $*"; failed=$((failed + 1)); }

# Start a run in the background; $running is its behave pid.
start_run() {
  local log=$1; shift
  "${BEHAVE[@]}" "$@" >"$log" 2>&1 &
  running=$!
}

# Wait for the run of $running to end (it was killed or it ends by itself), whatever its status (the shell's
# "Killed" notice goes to /dev/null: the lane says what it killed).
end_run() {
  wait "$running" 2>/dev/null || true
  running=""
}

echo "== lane $LANE: 1. a run killed with SIGKILL, then a second run"
start_run "$out/killed.log" --tags=@steady-load
killed=$running
if record=$("${CHECK[@]}" wait "$killed" --timeout 60 --stream telemetry:teltonika); then
  kill -9 "$killed"
  end_run
  echo "lane $LANE: killed behave pid $killed (record $record)"
  if "${CHECK[@]}" snapshot "$record" "$out/killed-snapshot.json"; then
    start_run "$out/second.log" --tags=@happy-path
    second=$running
    end_run
    grep -E "^cleaned up after an earlier run" "$out/second.log" || echo "lane $LANE: (the second run said nothing about cleaning up)"
    if "${CHECK[@]}" left "$out/killed-snapshot.json"; then
      pass "the second run ended and removed everything the killed run had left"
    else
      fail "the killed run's processes or folders outlived the second run"
    fi
    echo "== lane $LANE: 2. a run that ends normally"
    if grep -qE "^1 scenario passed, 0 failed" "$out/second.log" && "${CHECK[@]}" no-record "$second"; then
      pass "the second run passed and left no record"
    else
      fail "the second run failed or left its record (see $out/second.log)"
    fi
  else
    fail "the killed run's processes did not outlive it, so nothing was proven"
  fi
else
  end_run
  fail "the first run never started its services (see $out/killed.log)"; tail -20 "$out/killed.log"
fi

echo "== lane $LANE: 3. a run stopped with SIGTERM"
start_run "$out/sigterm.log" --tags=@steady-load
stopped=$running
if record=$("${CHECK[@]}" wait "$stopped" --timeout 60 --stream telemetry:teltonika) \
    && "${CHECK[@]}" snapshot "$record" "$out/sigterm-snapshot.json" >/dev/null; then
  kill -TERM "$stopped"
  end_run
  if "${CHECK[@]}" left "$out/sigterm-snapshot.json"; then
    pass "the run stopped with SIGTERM left nothing behind"
  else
    fail "the run stopped with SIGTERM left processes or folders behind"
  fi
else
  end_run
  fail "the run to stop with SIGTERM never started its services (see $out/sigterm.log)"
fi

echo "acceptance[$LANE]: $passed passed, $failed failed, 0 skipped"
((failed == 0))
