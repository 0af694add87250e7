#!/usr/bin/env bash
# Lane "external": Debian's redis-server (real Redis 7, not Valkey) and stock PostgreSQL 15, started here on
# free loopback ports as unprivileged users in a temporary directory, with passwords, and reached only
# through REDIS_URL/DATABASE_URL (-D services=external), as a developer's own servers or CI service
# containers would be. Scenarios that stop servers (@needs-service-control) are skipped with their reason.
# Everything started here is stopped and deleted on exit, whatever happened.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lanes/lib.sh
lane_init external
LANE_ALLOW_SKIP_TAGS=(needs-service-control)

PG_BIN=/usr/lib/postgresql/15/bin
apt_install redis-server postgresql-15 || lane_cannot_run "Debian's redis-server and postgresql-15 are not installed"
[[ -x $PG_BIN/initdb && -x /usr/bin/redis-server ]] || lane_cannot_run "no $PG_BIN/initdb or /usr/bin/redis-server"

# As root, each server runs as its package's own unprivileged user; otherwise as ourselves.
as_user() {
  local user=$1; shift
  if [[ $(id -u) -eq 0 ]]; then setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"; else "$@"; fi
}

work=$(mktemp -d /tmp/ci-external.XXXXXX)
redis_pid=""
cleanup() {
  local rc=$?
  if [[ -n $redis_pid ]]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
  if [[ -f $work/pg/postmaster.pid ]]; then as_user postgres "$PG_BIN/pg_ctl" -D "$work/pg" -m immediate -w stop >/dev/null || true; fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
chmod 755 "$work"
password=$("$LANE_VENV/bin/python" -c 'import secrets; print(secrets.token_hex(16))')
redis_port=$(free_port)
pg_port=$(free_port)

# PostgreSQL 15, password authentication over TCP
mkdir -p "$work/pg" "$work/pgsock" "$work/pglog" "$work/redis"
printf '%s\n' "$password" >"$work/pwfile"
if [[ $(id -u) -eq 0 ]]; then chown postgres: "$work/pg" "$work/pgsock" "$work/pglog" "$work/pwfile"; chown redis: "$work/redis"; fi
as_user postgres "$PG_BIN/initdb" -D "$work/pg" -U postgres --pwfile="$work/pwfile" --auth-local=trust \
  --auth-host=scram-sha-256 --encoding=UTF8 --locale=C --no-sync >"$work/initdb.log" 2>&1 \
  || { cat "$work/initdb.log"; exit 1; }
as_user postgres "$PG_BIN/pg_ctl" -D "$work/pg" -l "$work/pglog/postgres.log" -w -t 60 start -o \
  "-p $pg_port -c listen_addresses=127.0.0.1 -k $work/pgsock -c fsync=off -c synchronous_commit=off -c max_connections=200 -c track_activity_query_size=16384" \
  >/dev/null || { cat "$work/pglog/postgres.log"; exit 1; }

# Redis 7, with a password, no persistence
# Not through as_user: a function sent to the background is a subshell, and killing that would leave the
# server running. setpriv execs, so $! is the server itself.
redis_as=()
[[ $(id -u) -eq 0 ]] && redis_as=(setpriv --reuid=redis --regid=redis --init-groups --)
"${redis_as[@]}" /usr/bin/redis-server --port "$redis_port" --bind 127.0.0.1 --requirepass "$password" --save '' \
  --appendonly no --dir "$work/redis" --logfile "$work/redis/redis.log" --daemonize no </dev/null >/dev/null 2>&1 &
redis_pid=$!
deadline=$((SECONDS + 30))
until REDISCLI_AUTH=$password redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG; do
  if ((SECONDS > deadline)) || ! kill -0 "$redis_pid" 2>/dev/null; then cat "$work/redis/redis.log"; exit 1; fi
  sleep 0.1  # polling for the server's readiness, with the deadline above
done

echo "== lane external: $(redis-server --version | cut -d' ' -f1-3) on 127.0.0.1:$redis_port, $("$PG_BIN/postgres" --version) on 127.0.0.1:$pg_port"
REDIS_URL="redis://:$password@127.0.0.1:$redis_port/0" DATABASE_URL="postgresql://postgres:$password@127.0.0.1:$pg_port/postgres" \
  lane_behave -D services=external
