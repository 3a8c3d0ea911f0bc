#!/usr/bin/env bash
# A throwaway PostgreSQL server for the integration tests: loopback only, a fresh data directory under a temp
# folder, trust authentication (nothing but this machine can reach it), gone after `stop`.
#
#   pg_env="$(.ci/postgres.sh start)"      # installs PostgreSQL if missing and starts it; prints the exports of
#   eval "$pg_env"                         #   CHURN_TEST_POSTGRES_URL and CHURN_PG_DIR (two steps, so `set -e`
#                                          #   stops on a failed start: `eval "$(...)"` would hide it)
#   .ci/postgres.sh stop "$CHURN_PG_DIR"   # stops the server and deletes its folder
#
# `start` prints only the `export` lines on stdout; everything else goes to stderr. As root, the server runs as
# the unprivileged `postgres` OS user (PostgreSQL refuses to run as root); otherwise as the calling user.
# CHURN_PG_DB names the database (default churn_test); its owner is the superuser `postgres`, trusted on 127.0.0.1.
set -euo pipefail

DB_NAME="${CHURN_PG_DB:-churn_test}"
DB_USER="postgres"

log() { echo "postgres.sh: $*" >&2; }

find_bindir() {
    if command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return
    fi
    # Debian keeps the server binaries off PATH, one folder per major version; take the newest.
    local newest
    newest="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n "$newest" && -x "$newest/pg_ctl" ]]; then
        echo "$newest"
    fi
}

install_postgres() {
    if [[ "$(id -u)" != 0 ]]; then
        log "pg_ctl not found and not root: install the Debian package 'postgresql' first"
        exit 1
    fi
    log "pg_ctl not found: installing the Debian package postgresql"
    # No default cluster: this script makes its own, and a packaged one would hold port 5432 for nothing.
    if [[ ! -e /etc/postgresql-common/createcluster.conf ]]; then
        mkdir -p /etc/postgresql-common
        echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold postgresql >&2
}

as_server_user() {
    # Run a command as the OS user that owns the server.
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u "$RUN_AS" -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
    local bindir dir port url
    bindir="$(find_bindir)"
    if [[ -z "$bindir" ]]; then
        install_postgres
        bindir="$(find_bindir)"
        [[ -n "$bindir" ]] || { log "installed postgresql but found no pg_ctl"; exit 1; }
    fi
    RUN_AS="$(id -un)"
    if [[ "$(id -u)" == 0 ]]; then
        RUN_AS=postgres
        id -u postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    fi
    # As root, under /tmp: a root-only TMPDIR (e.g. under /root) is not reachable by the server user.
    local parent="${TMPDIR:-/tmp}"
    if [[ "$(id -u)" == 0 ]]; then
        parent=/tmp
    fi
    dir="$(mktemp -d "$parent/churn-pg.XXXXXX")"
    chmod 755 "$dir"
    mkdir "$dir/data"
    if [[ "$(id -u)" == 0 ]]; then
        chown -R "$RUN_AS" "$dir"
    fi
    log "initdb in $dir/data ($("$bindir/postgres" --version))"
    as_server_user "$bindir/initdb" -D "$dir/data" -U "$DB_USER" --auth=trust --encoding=UTF8 --locale=C \
        --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; rm -rf "$dir"; exit 1; }
    # The port is free when picked; if another process takes it before the server binds, pick again.
    for _ in 1 2 3 4 5; do
        port="$(free_port)"
        if as_server_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o \
            "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off" >/dev/null 2>&1; then
            break
        fi
        port=""
    done
    if [[ -z "$port" ]]; then
        cat "$dir/server.log" >&2
        log "the server did not start"
        rm -rf "$dir"
        exit 1
    fi
    echo "$bindir" >"$dir/bindir"
    echo "$RUN_AS" >"$dir/run_as"
    if ! as_server_user "$bindir/createdb" -h 127.0.0.1 -p "$port" -U "$DB_USER" "$DB_NAME"; then
        stop "$dir"
        exit 1
    fi
    url="postgres://$DB_USER@127.0.0.1:$port/$DB_NAME"
    log "server up at $url (data in $dir)"
    echo "export CHURN_TEST_POSTGRES_URL='$url'"
    echo "export CHURN_PG_DIR='$dir'"
}

stop() {
    local dir="${1:-${CHURN_PG_DIR:-}}"
    if [[ -z "$dir" || ! -f "$dir/bindir" ]]; then
        log "stop: no server folder given (pass the CHURN_PG_DIR that start exported)"
        exit 1
    fi
    RUN_AS="$(cat "$dir/run_as")"
    as_server_user "$(cat "$dir/bindir")/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    log "server stopped, $dir removed"
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
