# Sourced by scripts/test and bench/run (which define `log`).
#
# start_private_postgres: a private throw-away PostgreSQL cluster owned by the `postgres` user
# (PostgreSQL refuses to run as root), in a fresh directory under /tmp, on a free loopback
# port, with its socket in that directory. It never touches a system cluster, and it is
# stopped and removed when the calling script exits. Installs the server binaries with apt
# when they are missing. Exports VTS_TEST_POSTGRES_URL (role vts with CREATEDB, database vts).
start_private_postgres() {
    pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
    if [[ ! -x "$(pg_bin)/postgres" ]]; then
        log "installing PostgreSQL server binaries (apt-get install postgresql)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    PG_BIN=$(pg_bin)
    PG_DIR=$(mktemp -d /tmp/vts-pg.XXXXXX)
    chown postgres: "$PG_DIR"
    as_postgres() { runuser -u postgres -- "$@"; }
    stop_postgres() {
        as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    }
    trap stop_postgres EXIT

    log "private PostgreSQL cluster: $PG_BIN/initdb -D $PG_DIR/data"
    as_postgres "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -E UTF8 --no-locale \
        --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$PG_DIR/initdb.log" \
        || { cat "$PG_DIR/initdb.log"; exit 1; }

    # A free port: something answering on it means taken. pg_ctl start fails if we lose a
    # race for it, so try a few.
    PG_PORT=
    for _ in 1 2 3 4 5 6 7 8; do
        port=$((20000 + RANDOM % 30000))
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
        # No durability needed: fsync and synchronous commit off make the tests faster.
        if as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
            -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >/dev/null; then
            PG_PORT=$port
            break
        fi
    done
    if [[ -z "$PG_PORT" ]]; then
        echo "could not start PostgreSQL; its log:" >&2
        cat "$PG_DIR/server.log" >&2 || true
        exit 1
    fi

    log "PostgreSQL on 127.0.0.1:$PG_PORT: role vts (CREATEDB: each test run makes its own database), database vts"
    as_postgres "$PG_BIN/psql" -q -h "$PG_DIR" -p "$PG_PORT" -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE vts LOGIN CREATEDB PASSWORD 'vts'" \
        -c "CREATE DATABASE vts OWNER vts" \
        -c "CREATE DATABASE vts_outage OWNER vts" \
        -c "CREATE DATABASE vts_balance OWNER vts" \
        -c "CREATE DATABASE vts_log OWNER vts"
    export VTS_TEST_POSTGRES_URL="postgres://vts:vts@127.0.0.1:$PG_PORT/vts"
    # For the test that stops and starts this (throw-away) server under a running switch.
    export VTS_TEST_POSTGRES_OUTAGE_URL="postgres://vts:vts@127.0.0.1:$PG_PORT/vts_outage"
    # For the balance cut-off test's switch on PostgreSQL.
    export VTS_TEST_POSTGRES_BALANCE_URL="postgres://vts:vts@127.0.0.1:$PG_PORT/vts_balance"
    # For the test that fills the write-ahead log during an outage.
    export VTS_TEST_POSTGRES_LOG_URL="postgres://vts:vts@127.0.0.1:$PG_PORT/vts_log"
    export VTS_TEST_PG_STOP="runuser -u postgres -- $PG_BIN/pg_ctl -D $PG_DIR/data -m fast -w stop"
    export VTS_TEST_PG_START="runuser -u postgres -- $PG_BIN/pg_ctl -D $PG_DIR/data -l $PG_DIR/server.log -w -t 60 -o '-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off' start"
    echo "VTS_TEST_POSTGRES_URL=$VTS_TEST_POSTGRES_URL"
}
