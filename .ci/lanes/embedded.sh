#!/usr/bin/env bash
# Lane "embedded": the default provider (valkey-server and PostgreSQL 18 from PyPI wheels), every scenario,
# services required, random order. What `behave` does on a developer's machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lanes/lib.sh
lane_init embedded

echo "== lane embedded: behave -D services=embedded"
# Its reports are the run's own: reports/html/index.html (the living documentation), reports/acceptance.json.
lane_behave -D services=embedded -D report_dir=reports
