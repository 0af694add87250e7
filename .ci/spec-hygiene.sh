#!/usr/bin/env bash
# Spec hygiene (issue 12): every step of every feature has exactly one definition, and every step
# definition is used by some feature. No services: behave --dry-run runs no hooks and no step code.
# Prints "spec-hygiene: ok" or what is wrong, and exits non-zero on any problem.
set -euo pipefail
cd "$(dirname "$0")/.."

BEHAVE="${BEHAVE:-.venv-ci/bin/behave}"
ALL="@load or not @load"  # behave.ini leaves @load out by default; its steps count too
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
problems=0

# 1. Undefined and ambiguous steps: an ambiguous definition stops behave while it loads the steps, an
#    undefined step fails the dry run (behave prints a snippet to start from); both exit non-zero. The
#    summary is checked too, so a behave that exits 0 on undefined steps still fails here.
if ! "$BEHAVE" --dry-run --format null --tags="$ALL" >"$out" 2>&1 || grep -qE '[1-9][0-9]* undefined' "$out"; then
  echo "spec-hygiene: behave --dry-run found undefined, ambiguous or broken steps:"
  grep -v '^USING RUNNER' "$out"
  problems=1
fi

# 2. Step definitions no feature uses ("UNUSED STEP DEFINITIONS[n]:" then one indented line each).
"$BEHAVE" --dry-run --no-summary --format steps.usage --tags="$ALL" >"$out" 2>&1 || true
unused="$(sed -n '/^UNUSED STEP DEFINITIONS/,/^$/p' "$out")"
if [ -n "$unused" ]; then
  echo "spec-hygiene: step definitions no feature uses (delete them, or keep them in use):"
  echo "$unused"
  problems=1
fi

if [ "$problems" -ne 0 ]; then
  exit 1
fi
echo "spec-hygiene: ok (no undefined, ambiguous or unused steps)"
