#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the test suite (installing it from Debian's packages
# if missing) and print the SQLAlchemy URL to export as CORRIDOR_TEST_POSTGRES_URL.
#   eval "$(scripts/test_postgres.sh start DIR)"   ...   scripts/test_postgres.sh stop DIR
set -euo pipefail
action=${1:?start or stop}; dir=${2:?a directory for the cluster}

pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "$action" in
  start)
    if [ -z "$(pgbin)" ]; then
      echo "installing PostgreSQL (Debian packages)" >&2
      apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    bin=$(pgbin)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_pg "$bin/initdb" -D "$dir/data" -A trust -U corridor >/dev/null
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
    echo "export CORRIDOR_TEST_POSTGRES_URL=postgresql+psycopg://corridor@127.0.0.1:$port/postgres"
    ;;
  stop)
    as_pg "$(pgbin)/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
    ;;
esac
