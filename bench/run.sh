#!/usr/bin/env bash
# Benchmark the Postback delivery engine (bench/README.md).
#
#   bench/run.sh                              # SQLite and PostgreSQL: 20,000 events cold, 20,000 warm
#   bench/run.sh --storage sqlite --events 5000
#   bench/run.sh --workload small             # the small order and single profile of the first wave
#   bench/run.sh --hub-build r2r              # the hub published with ReadyToRun (default: publish;
#                                             # build = the `dotnet build` output)
#   bench/run.sh --backlog 1000000            # also: memory as 1,000,000 deliveries pend (minutes)
#   bench/run.sh --sweep 1000000 --sweep-seconds 120   # also: event latency while retention deletes 1,000,000 rows
#   bench/run.sh --scale-out                  # also: 1 vs 2 hub processes on one PostgreSQL (docs/scaling.md)
#   bench/run.sh --keep ...                   # keep the hub logs and SQLite file
#   bench/run.sh --pg-stats ...               # PostgreSQL: print the top statements (pg_stat_statements)
#   bench/run.sh --pg-conf log_autovacuum_min_duration=0 --keep ...   # a PostgreSQL setting for the
#                                             # run (repeatable); --keep keeps its log
#   bench/run.sh --metrics off ...            # the hub without metrics (default on, as shipped), to
#                                             # measure what they cost: compare with --metrics on
#
# Builds the hub and the benchmark in Release, copies the hub's build to a private directory
# (so a concurrent rebuild cannot change it mid-run), starts a private, durable PostgreSQL
# server on a free 127.0.0.1 port when PostgreSQL is measured (fsync and synchronous_commit
# on), runs bench/Postback.Bench, and stops everything it started. Every other argument goes
# to the benchmark (`bench/run.sh --help` lists them).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

export DEBIAN_FRONTEND=noninteractive
export DOTNET_CLI_TELEMETRY_OPTOUT=1
export DOTNET_NOLOGO=1
export DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

log() { printf '[run.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

STORAGE=both
HELP=0
KEEP=0
PG_STATS=0
BACKLOG=0
EVENTS=20000
HUB_BUILD=publish
SCALE_OUT=0
PG_CONF=()
ARGS=()
while (($#)); do
    case "$1" in
        --storage) [[ $# -ge 2 ]] || die "--storage needs a value"; STORAGE=$2; shift 2 ;;
        --storage=*) STORAGE=${1#*=}; shift ;;
        --keep) KEEP=1; shift ;;
        --scale-out) SCALE_OUT=1; ARGS+=("$1"); shift ;;
        --hub-build) [[ $# -ge 2 ]] || die "--hub-build needs publish, r2r or build"; HUB_BUILD=$2; shift 2 ;;
        --pg-stats) PG_STATS=1; shift ;;
        --pg-conf)
            [[ $# -ge 2 && "$2" =~ ^[a-z_.]+=[^[:space:]]+$ ]] || die "--pg-conf needs name=value"
            PG_CONF+=("-c" "$2"); shift 2 ;;
        --metrics)
            [[ $# -ge 2 ]] || die "--metrics needs on or off"
            case "$2" in
                on) ARGS+=(--hub-env Postback__Metrics__Enabled=true) ;;
                off) ARGS+=(--hub-env Postback__Metrics__Enabled=false) ;;
                *) die "--metrics must be on or off, not '$2'" ;;
            esac
            shift 2 ;;
        --backlog) [[ $# -ge 2 ]] || die "--backlog needs a value"; BACKLOG=$2; ARGS+=("$1" "$2"); shift 2 ;;
        --events) [[ $# -ge 2 ]] || die "--events needs a value"; EVENTS=$2; ARGS+=("$1" "$2"); shift 2 ;;
        -h|--help) HELP=1; shift ;;
        *) ARGS+=("$1"); shift ;;
    esac
done
case "$STORAGE" in
    sqlite|postgres|both) ;;
    *) die "--storage must be sqlite, postgres or both, not '$STORAGE'" ;;
esac
[[ "$EVENTS" =~ ^[0-9]+$ ]] || die "--events must be a whole number"
case "$HUB_BUILD" in
    publish|r2r|build) ;;
    *) die "--hub-build must be publish, r2r or build, not '$HUB_BUILD'" ;;
esac
[[ "$BACKLOG" =~ ^[0-9]+$ ]] || die "--backlog must be a whole number"

command -v dotnet >/dev/null 2>&1 || die "'dotnet' not found on PATH: install the .NET 10 SDK first"

# ---------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------
log "building the benchmark (Release)"
dotnet build -c Release --nologo -v q bench/Postback.Bench/Postback.Bench.csproj </dev/null >&2

if [[ "$HELP" == 1 ]]; then
    sed -n '2,24p' "$ROOT/bench/run.sh" | sed 's/^# \{0,1\}//'
    echo
    exec dotnet bench/Postback.Bench/bin/Release/net10.0/Postback.Bench.dll --help
fi

# Which hub is measured: the commit, and "+dirty" when src/ has uncommitted changes.
BENCH_HUB_REVISION=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n "$(git -C "$ROOT" status --porcelain -- src 2>/dev/null)" ]]; then
    BENCH_HUB_REVISION+="+dirty"
fi
export BENCH_HUB_REVISION

WORKDIR=$(mktemp -d -t postback-bench.XXXXXX)
PGWORK=""
PG_STARTED=0
PGBIN=""
# The hub as production runs it (docs/operations.md): the publish output, in a private
# directory so a concurrent rebuild cannot change it mid-run.
case "$HUB_BUILD" in
    publish)
        log "publishing the hub (dotnet publish -c Release)"
        dotnet publish src/Postback -c Release --nologo -v q -o "$WORKDIR/hub" </dev/null >&2
        export BENCH_HUB_BUILD="dotnet publish -c Release (tiered JIT, dynamic PGO off, as shipped)" ;;
    r2r)
        log "publishing the hub with ReadyToRun (dotnet publish -c Release -r linux-x64 -p:PublishReadyToRun=true)"
        dotnet publish src/Postback -c Release -r linux-x64 --self-contained false -p:PublishReadyToRun=true \
            --nologo -v q -o "$WORKDIR/hub" </dev/null >&2
        export BENCH_HUB_BUILD="dotnet publish -c Release -r linux-x64 -p:PublishReadyToRun=true" ;;
    build)
        log "building the hub (dotnet build -c Release)"
        dotnet build -c Release --nologo -v q src/Postback/Postback.csproj </dev/null >&2
        cp -r src/Postback/bin/Release/net10.0 "$WORKDIR/hub"
        export BENCH_HUB_BUILD="dotnet build -c Release" ;;
esac
for kv in ${ARGS[@]+"${ARGS[@]}"}; do
    case "$kv" in DOTNET_*=*) BENCH_HUB_BUILD+="; $kv" ;; esac
done

as_postgres() { runuser -u postgres -- "$@"; }

stop_pg() {
    if [[ "$PG_STARTED" == 1 ]]; then
        as_postgres "$PGBIN/pg_ctl" -D "$PGWORK/data" -m fast -w stop >/dev/null 2>&1 \
            || log "WARNING: pg_ctl stop failed"
        PG_STARTED=0
    fi
}

# Kills a hub the benchmark left behind (it stops its own; this is for a benchmark that was
# itself killed), by the PID it recorded, and only if that PID is still a Postback hub.
stop_hubs() {
    local f pid
    for f in "$WORKDIR"/bench/*/hub.pid; do
        [[ -f "$f" ]] || continue
        pid=$(cat "$f" 2>/dev/null || true)
        if [[ "$pid" =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'Postback.dll'; then
            log "stopping leftover hub $pid"
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
}

cleanup() {
    local rc=$?
    set +e
    stop_hubs
    stop_pg
    if [[ "$KEEP" == 1 ]]; then
        log "kept: $WORKDIR (hub logs under bench/<storage>/hub.log)"
        [[ -n "$PGWORK" ]] && log "kept: $PGWORK (PostgreSQL data and log)"
    else
        rm -rf -- "$WORKDIR"
        [[ -n "$PGWORK" ]] && rm -rf -- "$PGWORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# Private, durable PostgreSQL server (as test.sh does, but with fsync on)
# ---------------------------------------------------------------------------
find_initdb() {
    local f
    f=$(ls -1 /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)
    printf '%s' "$f"
}

free_port() {
    python3 - <<'PY'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

if [[ "$STORAGE" != sqlite || "$SCALE_OUT" == 1 ]]; then
    if [[ -z "$(find_initdb)" ]] || ! id -u postgres >/dev/null 2>&1 || ! command -v python3 >/dev/null 2>&1; then
        [[ $(id -u) -eq 0 ]] || die "PostgreSQL (or python3) is missing and this is not root to install it"
        log "installing postgresql"
        apt-get update -q </dev/null >&2
        apt-get install -y -q postgresql python3 </dev/null >&2
    fi
    INITDB=$(find_initdb)
    [[ -n "$INITDB" ]] || die "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin"
    PGBIN=$(dirname "$INITDB")
    command -v runuser >/dev/null 2>&1 || die "'runuser' (util-linux) not found"

    PGWORK=$(mktemp -d -t postback-bench-pg.XXXXXX)
    mkdir -p "$PGWORK/sock"
    chown -R postgres:postgres "$PGWORK"
    log "initdb with $INITDB"
    if ! as_postgres "$INITDB" -D "$PGWORK/data" -U postgres --auth=trust -E UTF8 --no-locale \
            >"$PGWORK/initdb.log" 2>&1 </dev/null; then
        cat "$PGWORK/initdb.log" >&2
        die "initdb failed"
    fi
    PGPORT=""
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        log "starting PostgreSQL on 127.0.0.1:$port (attempt $attempt; fsync=on, synchronous_commit=on)"
        : >"$PGWORK/postgres.log"
        chown postgres:postgres "$PGWORK/postgres.log"
        # Durable: fsync, full_page_writes and synchronous_commit keep their default (on).
        extra=""
        [[ "$PG_STATS" == 1 ]] && extra="-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
        [[ ${#PG_CONF[@]} -gt 0 ]] && extra+=" ${PG_CONF[*]}"
        if as_postgres "$PGBIN/pg_ctl" -D "$PGWORK/data" \
                -o "-c listen_addresses=127.0.0.1 -p $port -k $PGWORK/sock -c fsync=on -c synchronous_commit=on -c full_page_writes=on -c max_connections=200 $extra" \
                -l "$PGWORK/postgres.log" -w -t 60 start >/dev/null </dev/null; then
            PG_STARTED=1
            PGPORT=$port
            break
        fi
        if [[ -f "$PGWORK/data/postmaster.pid" ]]; then
            as_postgres "$PGBIN/pg_ctl" -D "$PGWORK/data" -m immediate -w stop >/dev/null 2>&1 || true
        fi
        if grep -qi 'could not bind\|address already in use' "$PGWORK/postgres.log"; then
            continue
        fi
        cat "$PGWORK/postgres.log" >&2
        die "could not start PostgreSQL"
    done
    [[ -n "$PGPORT" ]] || die "could not start PostgreSQL: no free port after 5 attempts"
    for _ in $(seq 1 60); do
        "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT" -U postgres && break
        sleep 0.5
    done
    "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT" -U postgres || die "PostgreSQL not ready on 127.0.0.1:$PGPORT"
    as_postgres "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres postback_bench </dev/null
    if [[ "$SCALE_OUT" == 1 ]]; then
        as_postgres "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres postback_scale_1 </dev/null
        as_postgres "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres postback_scale_2 </dev/null
    fi
    if [[ "$PG_STATS" == 1 ]]; then
        as_postgres "$PGBIN/psql" -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postback_bench \
            -c 'CREATE EXTENSION pg_stat_statements' </dev/null
    fi
    log "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') ready on 127.0.0.1:$PGPORT (fsync=$(as_postgres "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -Atc 'show fsync' </dev/null), synchronous_commit=$(as_postgres "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -Atc 'show synchronous_commit' </dev/null))"
    export POSTBACK_BENCH_PSQL="$PGBIN/psql"
    export POSTBACK_BENCH_POSTGRES="Host=127.0.0.1;Port=$PGPORT;Username=postgres;Database=postback_bench;Pooling=true;Maximum Pool Size=50"
fi

# ---------------------------------------------------------------------------
# Run (bounded: the benchmark has its own phase timeouts; this is the backstop)
# ---------------------------------------------------------------------------
per_storage=$((900 + EVENTS / 20 + BACKLOG / 200))
[[ "$STORAGE" == both ]] && limit=$((2 * per_storage)) || limit=$per_storage
[[ "$SCALE_OUT" == 1 ]] && limit=$((limit + per_storage))
log "running the benchmark (storage: $STORAGE; stops by itself, at the latest after ${limit} s)"
set +e
timeout --signal=TERM --kill-after=60 "$limit" \
    dotnet bench/Postback.Bench/bin/Release/net10.0/Postback.Bench.dll \
    --storage "$STORAGE" --hub-dll "$WORKDIR/hub/Postback.dll" --work-dir "$WORKDIR/bench" \
    ${ARGS[@]+"${ARGS[@]}"} </dev/null
rc=$?
set -e
if [[ $rc -eq 124 ]]; then
    log "ERROR: the benchmark did not finish within ${limit} s"
fi
if [[ "$PG_STATS" == 1 && "$PG_STARTED" == 1 ]]; then
    echo
    echo "== PostgreSQL: statements by total execution time (pg_stat_statements, whole run incl. warm-up) =="
    as_postgres "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -d postback_bench -P pager=off -c "
        SELECT calls, round(total_exec_time::numeric, 0) AS total_ms, round(mean_exec_time::numeric, 3) AS mean_ms,
               rows, shared_blks_hit + shared_blks_read AS blocks,
               left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS query
        FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'postback_bench')
        ORDER BY total_exec_time DESC LIMIT 15" </dev/null || true
    as_postgres "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -d postback_bench -P pager=off -c "
        SELECT relname, n_live_tup, n_dead_tup, n_tup_upd, n_tup_hot_upd, autovacuum_count
        FROM pg_stat_user_tables ORDER BY n_tup_upd + n_tup_ins DESC LIMIT 6" </dev/null || true
    as_postgres "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -d postback_bench -P pager=off -c "
        SELECT xact_commit, blks_hit, blks_read, tup_inserted, tup_updated, tup_fetched
        FROM pg_stat_database WHERE datname = 'postback_bench'" </dev/null || true
    as_postgres "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -d postback_bench -P pager=off -c "
        SELECT wal_records, wal_fpi, pg_size_pretty(wal_bytes) AS wal, wal_write, wal_sync, round(wal_sync_time::numeric, 0) AS wal_sync_ms
        FROM pg_stat_wal" </dev/null || true
fi
exit $rc
