#!/usr/bin/env bash
# Lane "shards": the default selection (what `behave` runs) through the parallel runner, two workers on one set
# of embedded services (worker 1 with services of its own for @needs-service-control), services required, random
# order; then proof that sharding loses and repeats nothing:
#   * the merged report holds every scenario a `behave --dry-run` of the same selection lists, each exactly once;
#   * the split `-D shard=i/n` makes for n = 2, 3 and 5 puts every scenario in exactly one shard.
# Merged JUnit and JSON in reports/shards/ (the workers' own under reports/shards/worker-<k>/).
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lanes/lib.sh
lane_init shards
# The default selection leaves @load and @slow out; with --show-skipped they are in the reports as skipped.
LANE_ALLOW_SKIP_TAGS=(load slow)

echo "== lane shards: python -m support.run.parallel -j 2 -D services=embedded -D order=random"
status=0
"$LANE_VENV/bin/python" -m support.run.parallel -j 2 --reports "$LANE_REPORTS" \
  -D services=embedded -D require_services=true -D order=random || status=$?

echo "== lane shards: every scenario exactly once"
"$LANE_VENV/bin/python" -m support.run.shard_check --ran "$LANE_REPORTS/acceptance.json" --splits 2,3,5 || status=1

allow=()
for tag in "${LANE_ALLOW_SKIP_TAGS[@]}"; do allow+=(--allow-skip-tag "$tag"); done
"$LANE_VENV/bin/python" .ci/junit_summary.py "$LANE_REPORTS/junit" --lane shards "${allow[@]}" || status=1
exit "$status"
