#!/usr/bin/env bash
# Build the docker lane's two images from Debian packages, with no registry: only those missing (they stay
# in podman's store as the lane's cache; `podman rmi` them to measure a cold run).
#   localhost/live-suite-redis:7        Debian's redis-server (7.0)
#   localhost/live-suite-postgres:15    Debian's postgresql-15, with postgres-entrypoint.sh
# Each: debootstrap --variant=minbase (once for both), apt-get install in a chroot, `podman import`.
# Root only. Everything is built in a private mount namespace and a temporary directory, both gone after.
set -euo pipefail
cd "$(dirname "$0")"
REDIS_IMAGE=${REDIS_IMAGE:-localhost/live-suite-redis:7}
POSTGRES_IMAGE=${POSTGRES_IMAGE:-localhost/live-suite-postgres:15}
CACHE=${SUITE_CACHE_DIR:-/var/tmp/live-telemetry-suite}

if [[ ${1:-} != --inside ]]; then
  mkdir -p "$CACHE"
  exec 9>"$CACHE/images.lock"
  flock 9  # two runs at once build once
  missing=0
  podman image exists "$REDIS_IMAGE" || missing=1
  podman image exists "$POSTGRES_IMAGE" || missing=1
  ((missing)) || exit 0
  exec unshare --mount --propagation private -- bash "$PWD/build.sh" --inside
fi

codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
mirror=${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}
mirror=${mirror:-$(awk '$1 == "deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)}
mirror=${mirror:-http://deb.debian.org/debian}
build=$(mktemp -d /var/tmp/live-suite-images.XXXXXX)
cleanup() {
  local rc=$?
  # nothing may stay mounted inside a tree about to be deleted
  awk -v b="$build" 'index($5, b) == 1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r umount -l
  rm -rf --one-file-system "$build"
  exit "$rc"
}
trap cleanup EXIT

echo "images: debootstrap $codename from $mirror"
debootstrap --variant=minbase "$codename" "$build/base" "$mirror" >"$build/debootstrap.log" 2>&1 \
  || { tail -20 "$build/debootstrap.log"; exit 1; }

# apt_into <root> <package>...: Debian packages into a chroot, their services kept down (policy-rc.d)
apt_into() {
  local root=$1; shift
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -q --no-install-recommends "$@" \
    >>"$build/apt.log" 2>&1 || { tail -20 "$build/apt.log"; return 1; }
}
prepare() {
  cp -a "$build/base" "$1"
  cp /etc/resolv.conf "$1/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' >"$1/usr/sbin/policy-rc.d" && chmod 755 "$1/usr/sbin/policy-rc.d"
  chroot "$1" apt-get update -q >>"$build/apt.log" 2>&1
}
finish() {
  chroot "$1" apt-get clean
  rm -rf "$1"/var/lib/apt/lists/* "$1/usr/sbin/policy-rc.d" "$1/etc/resolv.conf"
}

if ! podman image exists "$REDIS_IMAGE"; then
  root=$build/redis
  prepare "$root"
  apt_into "$root" redis-server
  finish "$root"
  tar --numeric-owner -C "$root" -c . | podman import --quiet \
    --change 'CMD ["redis-server", "--protected-mode", "no", "--save", "", "--appendonly", "no"]' \
    --change 'EXPOSE 6379' --change 'USER redis' --change 'WORKDIR /var/lib/redis' - "$REDIS_IMAGE" >/dev/null
  echo "images: built $REDIS_IMAGE ($(chroot "$root" dpkg-query -W -f='${Version}' redis-server))"
fi

if ! podman image exists "$POSTGRES_IMAGE"; then
  root=$build/postgres
  prepare "$root"
  apt_into "$root" postgresql-common
  # the image's cluster is made by its entrypoint at the container's start, not by the package
  sed -i 's/^#* *create_main_cluster.*/create_main_cluster = false/' "$root/etc/postgresql-common/createcluster.conf"
  apt_into "$root" postgresql-15
  install -m 755 postgres-entrypoint.sh "$root/usr/local/bin/docker-entrypoint.sh"
  finish "$root"
  tar --numeric-owner -C "$root" -c . | podman import --quiet \
    --change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV PGDATA=/var/lib/postgresql/data' \
    --change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' --change 'CMD ["postgres"]' \
    --change 'STOPSIGNAL SIGINT' --change 'EXPOSE 5432' - "$POSTGRES_IMAGE" >/dev/null
  echo "images: built $POSTGRES_IMAGE ($(chroot "$root" dpkg-query -W -f='${Version}' postgresql-15))"
fi
