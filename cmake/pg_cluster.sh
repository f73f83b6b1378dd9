#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the tests. Usage:
#   cmake/pg_cluster.sh start STATE_DIR   initdb into a fresh temp dir (as the unprivileged
#                                         'postgres' user when run as root), listen on 127.0.0.1
#                                         at a free port, create database athanor_test, and write
#                                         its URL to STATE_DIR/url
#   cmake/pg_cluster.sh stop STATE_DIR    stop the server and remove its directory
# Nothing but 127.0.0.1 is listened on; authentication is 'trust' for the one local user.
set -euo pipefail
cmd=${1:?usage: pg_cluster.sh start|stop STATE_DIR}
state=${2:?usage: pg_cluster.sh start|stop STATE_DIR}
bindir=${ATHANOR_PG_BINDIR:-/usr/lib/postgresql/15/bin}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop() {
  [ -f "$state/datadir" ] || return 0
  local data; data=$(cat "$state/datadir")
  if [ -d "$data/data" ]; then
    as_owner "$bindir/pg_ctl" -D "$data/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$data"
  rm -f "$state/datadir" "$state/url"
}

case "$cmd" in
  stop) stop; exit 0 ;;
  start) ;;
  *) echo "usage: pg_cluster.sh start|stop STATE_DIR" >&2; exit 2 ;;
esac

[ -x "$bindir/initdb" ] || { echo "pg_cluster: $bindir/initdb not found (apt-get install postgresql-15)" >&2; exit 1; }
mkdir -p "$state"
stop  # a cluster left behind by a killed run
# The data directory lives in /tmp: the unprivileged owner must be able to reach it.
data=$(mktemp -d /tmp/athanor-pg.XXXXXX)
echo "$data" > "$state/datadir"
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$data"; fi
as_owner "$bindir/initdb" -D "$data/data" -U athanor -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$data/initdb.log" 2>&1 ||
  { cat "$data/initdb.log" >&2; exit 1; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for attempt in $(seq 1 20); do
  port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
  port_in_use "$port" && continue
  if as_owner "$bindir/pg_ctl" -D "$data/data" -l "$data/server.log" -w -t 60 start \
       -o "-p $port -h 127.0.0.1 -k $data -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >/dev/null 2>&1; then
    "$bindir/createdb" -h 127.0.0.1 -p "$port" -U athanor athanor_test >/dev/null 2>&1 ||
      { tail -n 20 "$data/server.log" >&2; stop; exit 1; }
    echo "postgresql://athanor@127.0.0.1:$port/athanor_test" > "$state/url"
    echo "pg_cluster: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($data)"
    exit 0
  fi
done
tail -n 20 "$data/server.log" >&2 || true
stop
echo "pg_cluster: could not start a server" >&2
exit 1
