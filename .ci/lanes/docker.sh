#!/usr/bin/env bash
# Lane "docker": the Docker provider (testcontainers), services required.
#
# * A Docker daemon answers (DOCKER_HOST or the default socket): the suite runs against it, with its
#   default images (redis:7, timescale/timescaledb:latest-pg16).
# * Else, as root with apt (CI here): podman serves the Docker API, and the suite runs with images built
#   from Debian packages (.ci/lanes/images/build.sh, cached in podman's store: built only when missing).
#   podman's service, its containers, their bridge, firewall rules and forwarding, and behave itself all live
#   in throwaway namespaces (unshare --net --mount --pid): when the lane ends they are gone, and the machine's
#   ip_forward, firewall rules and listening ports are as before (checked below).
# * Else: skipped with one line (a failure under CI=true).
# Scenarios that stop servers (@needs-service-control) are skipped with their reason.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lanes/lib.sh
LANE_ALLOW_SKIP_TAGS=(needs-service-control)
REDIS_IMAGE=localhost/live-suite-redis:7
POSTGRES_IMAGE=localhost/live-suite-postgres:15

if [[ ${1:-} == --inside ]]; then
  # In the throwaway namespaces: loopback up, podman's Docker API on a socket, the suite, then the service down.
  work=$2
  LANE=docker LANE_REPORTS=reports/docker
  ip link set lo up
  podman system service --time=0 "unix://$work/podman.sock" >"$work/podman-service.log" 2>&1 &
  service=$!
  export DOCKER_HOST="unix://$work/podman.sock"
  # /.dockerenv here would make testcontainers look for a gateway; the daemon is on this host.
  export TESTCONTAINERS_CONNECTION_MODE=docker_host
  # Ryuk's image comes from a registry; the provider's own clean-up removes the containers.
  export TESTCONTAINERS_RYUK_DISABLED=true
  deadline=$((SECONDS + 60))
  until "$LANE_VENV/bin/python" -c 'import docker; docker.from_env(timeout=2).ping()' 2>/dev/null; do
    if ((SECONDS > deadline)) || ! kill -0 "$service" 2>/dev/null; then cat "$work/podman-service.log"; exit 1; fi
    sleep 0.2  # polling for the service's socket, with the deadline above
  done
  status=0
  lane_behave -D services=docker -D redis_image="$REDIS_IMAGE" -D postgres_image="$POSTGRES_IMAGE" || status=$?
  kill "$service" && wait "$service" || true
  exit "$status"
fi

lane_init docker

if "$LANE_VENV/bin/python" -c 'import docker; docker.from_env(timeout=3).ping()' 2>/dev/null; then
  echo "== lane docker: the Docker daemon at ${DOCKER_HOST:-its default socket}"
  lane_behave -D services=docker
  exit
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  lane_cannot_run "no Docker daemon answers, and serving the Docker API with podman here needs root with apt"
fi
apt_install podman runc debootstrap iproute2 iptables uidmap slirp4netns \
  || lane_cannot_run "podman, runc and debootstrap cannot be installed"

work=$(mktemp -d /tmp/ci-docker.XXXXXX)
# What must be the same after the lane: forwarding and firewall rules. (Listening ports and processes need
# no check: everything the lane starts lives in its own PID and network namespaces, which die with it.)
machine_state() {
  cat /proc/sys/net/ipv4/ip_forward
  { iptables-save 2>/dev/null; nft list ruleset 2>/dev/null; } | grep -v '^#' || true
}
containers_before=$(podman ps -aq --no-trunc | sort)
had_netns_dir=$([[ -d /run/netns ]] && echo yes || true)
machine_state >"$work/state.before"
cleanup() {
  local rc=$?
  # Containers the suite could not remove (a crash): remove them, and only them.
  comm -13 <(echo "$containers_before") <(podman ps -aq --no-trunc | sort) | xargs -r podman rm -f >/dev/null || rc=1
  [[ -n $had_netns_dir ]] || rmdir /run/netns 2>/dev/null || true
  machine_state >"$work/state.after"
  if ! diff -u "$work/state.before" "$work/state.after" >"$work/state.diff"; then
    echo "lane docker: the machine's forwarding or firewall rules changed:" >&2
    cat "$work/state.diff" >&2
    rc=1
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
chmod 755 "$work"

# podman here (facts in README, "Docker lane"): runc and cgroupfs (crun rejects the hybrid cgroup layout),
# file events (no journald), and ulimits within what the sandbox lets a container set.
cat >"$work/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=10000:10000", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF=$work/containers.conf
REDIS_IMAGE=$REDIS_IMAGE POSTGRES_IMAGE=$POSTGRES_IMAGE bash .ci/lanes/images/build.sh

echo "== lane docker: podman $(podman version --format '{{.Client.Version}}') serving the Docker API in a throwaway network namespace; $REDIS_IMAGE, $POSTGRES_IMAGE"
unshare --net --mount --pid --fork --mount-proc --propagation private -- bash .ci/lanes/docker.sh --inside "$work"
