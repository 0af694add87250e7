#!/usr/bin/env bash
# Lane "shards": the lanes' selection (every scenario, @load and @slow included, as lane_behave runs it) through
# the parallel runner, two workers on one set of embedded services (worker 1 with services of its own for the
# @needs-service-control scenarios), services required, random order; then proof that sharding loses and repeats
# nothing:
#   * the merged report holds every scenario a `behave --dry-run` of the same selection lists, each exactly once;
#   * the split `-D shard=i/n` makes for n = 2, 3 and 5 puts every scenario in exactly one shard.
# Merged JUnit and JSON in reports/shards/ (the workers' own under reports/shards/worker-<k>/).
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lanes/lib.sh
lane_init shards
# As lane_behave: an explicit --tags replaces behave.ini's default "not @load and not @slow".
selection=(--tags="@load or not @load")

echo "== lane shards: python -m support.run.parallel -j 2 -D services=embedded -D order=random ${selection[*]}"
status=0
"$LANE_VENV/bin/python" -m support.run.parallel -j 2 --reports "$LANE_REPORTS" \
  -D services=embedded -D require_services=true -D order=random "${selection[@]}" || status=$?

echo "== lane shards: every scenario exactly once"
"$LANE_VENV/bin/python" -m support.run.shard_check --ran "$LANE_REPORTS/acceptance.json" --splits 2,3,5 \
  "${selection[@]}" || status=1

"$LANE_VENV/bin/python" .ci/junit_summary.py "$LANE_REPORTS/junit" --lane shards || status=1
exit "$status"
