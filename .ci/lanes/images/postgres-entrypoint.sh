#!/bin/sh
# The entrypoint of localhost/live-suite-postgres: what the official postgres image's does, as far as the
# suite (testcontainers' PostgresContainer) relies on it. Honours POSTGRES_USER, POSTGRES_PASSWORD and
# POSTGRES_DB; initialises the cluster once with password authentication over TCP; creates the database on
# a socket-only temporary server (so nobody can connect over TCP before it exists: testcontainers' readiness
# probe, psql --host 127.0.0.1, only succeeds once it does); then runs `postgres "$@"`, so a command such as
# `postgres -c fsync=off` passes its options through.
set -eu
export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
if [ "${1:-}" = postgres ]; then shift; fi

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /run/postgresql
    chown postgres:postgres "$PGDATA" /run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$0" postgres "$@"
fi

user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k /run/postgresql" -w start >/dev/null
    if [ "$db" != postgres ]; then
        psql -v ON_ERROR_STOP=1 -h /run/postgresql -U "$user" -d postgres -q -c "CREATE DATABASE \"$db\""
    fi
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec postgres -D "$PGDATA" -k /run/postgresql "$@"
