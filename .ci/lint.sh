#!/usr/bin/env bash
# Lint and type gate (issue 13): ruff and mypy, configured and pinned (group `dev`) in pyproject.toml, installed
# into .venv-ci by .ci/run through requirements-dev.txt (this script installs nothing). Fails on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${LINT_VENV:-.venv-ci}"
status=0
echo "== lint: ruff check ."
"$VENV/bin/ruff" check . || status=1
echo "== types: mypy (strict for processor/, support/ and steps/)"
"$VENV/bin/mypy" || status=1
if [ "$status" -ne 0 ]; then
  echo "lint: FAILED (see the findings above)"
  exit 1
fi
echo "lint: ok (ruff and mypy found nothing)"
