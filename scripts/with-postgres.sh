#!/usr/bin/env bash
# Runs a command with LIVEREC_TEST_PG pointing at a throwaway PostgreSQL cluster.
#
#   scripts/with-postgres.sh cargo test -p liverec-catalog
#
# initdb in a temp dir, start the server on a free port on 127.0.0.1 (trust auth, no fsync:
# test data only), export LIVEREC_TEST_PG=postgres://postgres@127.0.0.1:PORT/postgres, run the
# command, then stop the server and delete the cluster, also when the command fails or the
# script is interrupted. Exits with the command's status.
#
# PostgreSQL server binaries: $PG_BIN if set, else the newest /usr/lib/postgresql/*/bin; when
# none is there and we are root, `apt-get install postgresql` first. initdb refuses to run as
# root, so as root the cluster belongs to the `postgres` user (created by the package).
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

# Attempts at finding a free port (another process may take the one we picked).
readonly START_ATTEMPTS=5
# Seconds pg_ctl waits for the server to accept connections.
readonly START_TIMEOUT=60
# Tests run in parallel, each opening a pool.
readonly MAX_CONNECTIONS=300

find_pg_bin() {
    if [[ -n "${PG_BIN:-}" ]]; then
        echo "$PG_BIN"
        return
    fi
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    echo "$dir"
}

PG_BIN=$(find_pg_bin)
if [[ -z "$PG_BIN" || ! -x "$PG_BIN/initdb" ]]; then
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "with-postgres: installing PostgreSQL server binaries (apt-get)" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
        PG_BIN=$(find_pg_bin)
    fi
fi
if [[ -z "$PG_BIN" || ! -x "$PG_BIN/initdb" ]]; then
    echo "with-postgres: no PostgreSQL server binaries (set PG_BIN or install postgresql)" >&2
    exit 1
fi

# Run the server tools as `postgres` when we are root, else as ourselves.
as_owner() {
    if [[ $EUID -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# As root the `postgres` user must reach the cluster, which a private $TMPDIR may not allow.
if [[ $EUID -eq 0 ]]; then
    CLUSTER_PARENT=/tmp
else
    CLUSTER_PARENT=${TMPDIR:-/tmp}
fi
CLUSTER_DIR=$(mktemp -d "$CLUSTER_PARENT/liverec-pg.XXXXXX")
if [[ $EUID -eq 0 ]]; then
    chown postgres: "$CLUSTER_DIR"
fi
chmod 0700 "$CLUSTER_DIR"
DATA_DIR="$CLUSTER_DIR/data"
LOG_FILE="$CLUSTER_DIR/server.log"

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -f "$DATA_DIR/postmaster.pid" ]]; then
        as_owner "$PG_BIN/pg_ctl" stop -D "$DATA_DIR" -m immediate -w >/dev/null 2>&1 || true
    fi
    rm -rf "$CLUSTER_DIR"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

as_owner "$PG_BIN/initdb" -D "$DATA_DIR" -U postgres --auth=trust --encoding=UTF8 --no-locale \
    --no-sync >"$CLUSTER_DIR/initdb.log" 2>&1 || {
    cat "$CLUSTER_DIR/initdb.log" >&2
    exit 1
}

port_is_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

PORT=
for _ in $(seq "$START_ATTEMPTS"); do
    candidate=$((20000 + RANDOM % 40000))
    port_is_free "$candidate" || continue
    if as_owner "$PG_BIN/pg_ctl" start -D "$DATA_DIR" -l "$LOG_FILE" -w -t "$START_TIMEOUT" \
        -o "-c listen_addresses=127.0.0.1 -p $candidate -k $CLUSTER_DIR \
            -c max_connections=$MAX_CONNECTIONS -c fsync=off -c synchronous_commit=off \
            -c full_page_writes=off" >/dev/null; then
        PORT=$candidate
        break
    fi
done
if [[ -z "$PORT" ]]; then
    echo "with-postgres: the server did not start; its log:" >&2
    cat "$LOG_FILE" >&2 || true
    exit 1
fi

export LIVEREC_TEST_PG="postgres://postgres@127.0.0.1:$PORT/postgres"
# `$LIVEREC_TEST_PG_CTL stop|start` stops (fast) or starts this cluster again on the same port,
# for tests of a database outage.
cat >"$CLUSTER_DIR/ctl" <<CTL
#!/usr/bin/env bash
set -euo pipefail
case "\$1" in
    stop) $( [[ $EUID -eq 0 ]] && echo "runuser -u postgres --" ) "$PG_BIN/pg_ctl" stop -D "$DATA_DIR" -m fast -w ;;
    start) $( [[ $EUID -eq 0 ]] && echo "runuser -u postgres --" ) "$PG_BIN/pg_ctl" start -D "$DATA_DIR" -l "$LOG_FILE" -w -t $START_TIMEOUT \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $CLUSTER_DIR -c max_connections=$MAX_CONNECTIONS -c fsync=off -c synchronous_commit=off -c full_page_writes=off" ;;
    *) echo "usage: \$0 stop|start" >&2; exit 2 ;;
esac
CTL
chmod 0755 "$CLUSTER_DIR/ctl"
export LIVEREC_TEST_PG_CTL="$CLUSTER_DIR/ctl"
echo "with-postgres: PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT" >&2

# Not exec: the EXIT trap must still stop the server. `|| status=$?` keeps set -e from firing.
status=0
"$@" || status=$?
exit "$status"
