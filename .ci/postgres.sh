#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the web tests: prints "URL DATA_DIR" on success, and
# nothing (exit 0) when no server can be had here, so the PostgreSQL test is skipped, not failed.
# `.ci/postgres.sh stop DATA_DIR` stops it.
set -u
if [ "${1:-}" = stop ]; then
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$PGBIN/pg_ctl" -D "$2" stop -m fast >/dev/null 2>&1
  else "$PGBIN/pg_ctl" -D "$2" stop -m fast >/dev/null 2>&1; fi
  exit 0
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$PGBIN" ] && command -v apt-get >/dev/null 2>&1; then
  { apt-get install -y -q postgresql || { apt-get update -q && apt-get install -y -q postgresql; } \
    || sudo -n apt-get install -y -q postgresql; } >/dev/null 2>&1
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
fi
[ -x "$PGBIN/initdb" ] || exit 0
DIR=$(mktemp -d /tmp/crystalmela-pg.XXXXXX)
PORT=${CRYSTALMELA_PG_PORT:-54329}
as_owner() { "$@"; }
if [ "$(id -u)" = 0 ]; then           # postgres refuses to run as root
  chown nobody "$DIR" 2>/dev/null || exit 0
  as_owner() { runuser -u nobody -- "$@"; }
fi
as_owner "$PGBIN/initdb" -D "$DIR/data" -A trust -U postgres >/dev/null 2>&1 || exit 0
as_owner "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w \
  -o "-h 127.0.0.1 -p $PORT -k $DIR" start >/dev/null 2>&1 || exit 0
echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres $DIR/data"
