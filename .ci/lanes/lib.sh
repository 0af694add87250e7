# Shared by the lane scripts (.ci/lanes/<lane>.sh): source it after `set -euo pipefail`, from the repo root.
#
#   lane_init <name>            reports/<name>/ emptied; .venv-ci made if the lane runs alone
#   lane_cannot_run <reason>    the lane cannot run on this machine: a failure under CI=true, else a skip
#   lane_behave [behave args]   the acceptance suite as every lane runs it (services required, random
#                               order, @load included, skips shown), JUnit, the living documentation
#                               (html/index.html) and acceptance.json in reports/<name>/ (later -D
#                               arguments win), then the lane's line
#                               `acceptance[<name>]: N passed, N failed, N skipped`
#   LANE_ALLOW_SKIP_TAGS=(...)  tags (without @) whose scenarios may be skipped in this lane
#   apt_install <pkg>...        install Debian packages if missing (root with apt only), services kept down

LANE_VENV=${LANE_VENV:-.venv-ci}
LANE_ALLOW_SKIP_TAGS=()

lane_init() {
  LANE=$1
  LANE_REPORTS="reports/$LANE"
  rm -rf "$LANE_REPORTS" && mkdir -p "$LANE_REPORTS"
  if [[ ! -x "$LANE_VENV/bin/behave" ]]; then
    echo "lane $LANE: making $LANE_VENV (run alone)"
    python3 -m venv "$LANE_VENV"
    "$LANE_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt
  fi
}

lane_cannot_run() {
  if [[ "${CI:-}" == "true" ]]; then
    echo "acceptance[$LANE]: 0 passed, 1 failed, 0 skipped (the lane cannot run here, which CI does not allow: $*)"
    exit 1
  fi
  echo "acceptance[$LANE]: 0 passed, 0 failed, 0 skipped (lane skipped: $*)"
  exit 0
}

lane_behave() {
  local status=0 allow=()
  # An explicit --tags replaces behave.ini's default "not @load": the lanes run the @load scenario too.
  # --show-skipped puts skipped scenarios into the JUnit reports, so the count below sees every skip.
  "$LANE_VENV/bin/behave" -D require_services=true -D order=random --tags="@load or not @load" \
    --show-skipped --junit --junit-directory "$LANE_REPORTS" --format progress \
    -D report=html,json -D report_dir="$LANE_REPORTS" "$@" || status=$?
  for tag in "${LANE_ALLOW_SKIP_TAGS[@]}"; do allow+=(--allow-skip-tag "$tag"); done
  "$LANE_VENV/bin/python" .ci/junit_summary.py "$LANE_REPORTS" --lane "$LANE" "${allow[@]}" || status=1
  return "$status"
}

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "lane $LANE: missing packages ${missing[*]} (installing them needs root and apt)" >&2
    return 1
  fi
  echo "lane $LANE: installing ${missing[*]}"
  # policy-rc.d 101: the packages' own services (redis-server, postgresql) must not start on the machine.
  local policy=/usr/sbin/policy-rc.d made_policy=""
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
  fi
  local status=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null || {
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  } || status=$?
  [[ -n $made_policy ]] && rm -f "$policy"
  return "$status"
}

# A free TCP port on 127.0.0.1 (the kernel's choice; the window until the server binds is tiny).
free_port() {
  "$LANE_VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
