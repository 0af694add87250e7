#!/usr/bin/env bash
# Contract coverage gate (issue 24): every promise of docs/processor.md has a scenario that fails when the
# Processor breaks it, or a written exemption (what no black box can observe; at most one promise in ten).
# Fails when a promise has neither, when docs/contract-map.toml names a promise the contract no longer has or a
# scenario tag that is not exactly one scenario's own, or when docs/coverage.md is not what the map generates.
# `--write` regenerates docs/coverage.md first. No services: it reads files only (behave's Gherkin parser).
# Last line: `contract: <N> promises, <C> checked, <E> exempt, <U> unchecked`.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-.venv-ci/bin/python}"
if [[ ! -x "$PYTHON" ]]; then
  echo "contract: no $PYTHON (made by .ci/run); run with PYTHON=.venv/bin/python or another venv with behave"
  exit 1
fi
exec "$PYTHON" .ci/contract_coverage.py "$@"
