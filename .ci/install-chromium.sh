#!/usr/bin/env bash
# Make sure the @browser scenarios have a Chromium: Debian's `chromium` package, installed when missing and we
# are root with apt (as CI is). Playwright's own browser download is never used (its servers are unreachable
# from our machines). Call it from .ci/run before any acceptance lane, so that no lane skips @browser.
# Idempotent and quiet when Chromium is already there; exits non-zero if it is missing and cannot be installed.
set -euo pipefail

binary=/usr/lib/chromium/chromium
if [[ -x $binary ]]; then
  echo "chromium: present ($binary)"
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "chromium: missing, and installing it needs root and apt (apt-get install chromium)" >&2
  exit 1
fi
echo "chromium: installing Debian's chromium (about 480 MB on disk, 1-3 minutes)"
# Try the package lists we have first; refresh them only if that fails (an old or empty list).
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null || {
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends chromium >/dev/null
}
[[ -x $binary ]] || { echo "chromium: installed, but $binary is missing" >&2; exit 1; }
echo "chromium: installed ($binary)"
