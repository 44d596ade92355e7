#!/usr/bin/env bash
# Run the whole Postback test suite on a fresh Debian 12 machine (as root, no stdin).
#
#   ./test.sh                                   # everything
#   ./test.sh --filter "FullyQualifiedName~X"   # extra arguments go to `dotnet test`
#
# Installs the PostgreSQL server and Chromium (for the admin UI tests) if they are
# missing, exports POSTBACK_TEST_CHROMIUM, starts a private throw-away
# server on a free 127.0.0.1 port (never the distro cluster), exports
# POSTBACK_TEST_POSTGRES for the tests; for the file exports it installs OpenSSH's
# server, pyftpdlib and pyOpenSSL when missing and starts sshd (an internal-sftp
# chroot user), an FTP and an FTPS server on free 127.0.0.1 ports, exporting
# POSTBACK_TEST_SFTP_*, POSTBACK_TEST_FTP_*, POSTBACK_TEST_FTPS_* and
# POSTBACK_TEST_FOLDER_ROOT; runs `dotnet test` on the solution and
# prints the totals from the TRX results as the very last line:
#   "N passed, N failed" or "N passed, N failed, N skipped".
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

export DEBIAN_FRONTEND=noninteractive
export DOTNET_CLI_TELEMETRY_OPTOUT=1
export DOTNET_NOLOGO=1
export DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

log() { printf '[test.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------
find_initdb() {
    # Newest installed server version wins.
    local f
    f=$(ls -1 /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)
    printf '%s' "$f"
}

ensure_packages() {
    local pkgs=()
    if [[ -z "$(find_initdb)" ]] || ! id -u postgres >/dev/null 2>&1; then
        pkgs+=(postgresql)
    fi
    if ! command -v python3 >/dev/null 2>&1; then
        pkgs+=(python3)
    fi
    # The admin UI tests drive Debian's Chromium (Playwright never downloads a browser).
    if [[ -z "${POSTBACK_TEST_CHROMIUM:-}" && ! -x /usr/bin/chromium ]]; then
        pkgs+=(chromium)
    fi
    # File exports: real SFTP (OpenSSH), FTP and FTPS (pyftpdlib; its TLS needs pyOpenSSL).
    if [[ ! -x /usr/sbin/sshd ]] || ! command -v ssh-keygen >/dev/null 2>&1; then
        pkgs+=(openssh-server)
    fi
    if ! /usr/bin/python3 -c 'import pyftpdlib' >/dev/null 2>&1; then
        pkgs+=(python3-pyftpdlib)
    fi
    if ! /usr/bin/python3 -c 'import OpenSSL' >/dev/null 2>&1; then
        pkgs+=(python3-openssl)
    fi
    if ! command -v openssl >/dev/null 2>&1; then
        pkgs+=(openssl)
    fi
    if ((${#pkgs[@]} > 0)); then
        [[ $(id -u) -eq 0 ]] || die "missing ${pkgs[*]} and not running as root to install them"
        log "installing: ${pkgs[*]}"
        apt-get update -q </dev/null
        apt-get install -y -q "${pkgs[@]}" </dev/null
    fi
}

ensure_packages

command -v dotnet >/dev/null 2>&1 \
    || die "'dotnet' not found on PATH: install the .NET 10 SDK (see global.json) first"

INITDB=$(find_initdb)
[[ -n "$INITDB" ]] || die "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin"
PGBIN=$(dirname "$INITDB")
id -u postgres >/dev/null 2>&1 || die "system user 'postgres' does not exist"
command -v runuser >/dev/null 2>&1 || die "'runuser' (util-linux) not found"

# ---------------------------------------------------------------------------
# Private PostgreSQL server
# ---------------------------------------------------------------------------
WORKDIR=$(mktemp -d -t postback-test.XXXXXX)
PGDATA_DIR="$WORKDIR/data"
PGSOCK_DIR="$WORKDIR/sock"
PGLOG="$WORKDIR/postgres.log"
RESULTS_DIR="$WORKDIR/results"
PG_STARTED=0

as_postgres() { runuser -u postgres -- "$@"; }

stop_pg() {
    if [[ "$PG_STARTED" == 1 ]]; then
        as_postgres "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >/dev/null 2>&1 \
            || log "WARNING: pg_ctl stop failed"
        PG_STARTED=0
    fi
}

# ---------------------------------------------------------------------------
# File export servers: sshd (internal-sftp, chroot), FTP, FTPS, a folder
# ---------------------------------------------------------------------------
FILES_ROOT=""
SFTP_USER=""
FILE_SERVER_PIDS=()

stop_file_servers() {
    local pid
    for pid in "${FILE_SERVER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    FILE_SERVER_PIDS=()
    if [[ -n "$SFTP_USER" ]]; then
        userdel "$SFTP_USER" >/dev/null 2>&1 || true
        SFTP_USER=""
    fi
    if [[ -n "$FILES_ROOT" ]]; then
        rm -rf -- "$FILES_ROOT"
        FILES_ROOT=""
    fi
}

wait_port() {
    python3 - "$1" <<'PY'
import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
PY
}

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

start_file_servers() {
    # sshd's ChrootDirectory must be root-owned and not group/world-writable all the way up,
    # so this lives under /srv, not /tmp.
    mkdir -p /srv
    FILES_ROOT=$(mktemp -d /srv/postback-test.XXXXXX)
    chmod 0755 "$FILES_ROOT"
    local sftp_root="$FILES_ROOT/sftp" ftp_root="$FILES_ROOT/ftp" ftps_root="$FILES_ROOT/ftps" folder_root="$FILES_ROOT/folder"
    mkdir -p "$sftp_root/upload" "$ftp_root" "$ftps_root" "$folder_root"
    chmod 0755 "$sftp_root"
    # Tests make a directory of their own in each, which the servers' users write in.
    chmod 0777 "$sftp_root/upload" "$ftp_root" "$ftps_root" "$folder_root"

    SFTP_USER="pbsftp$(random_hex 3)"
    local sftp_password
    sftp_password="pw-$(random_hex 12)"
    useradd --no-create-home --home-dir / --shell /usr/sbin/nologin "$SFTP_USER"
    echo "$SFTP_USER:$sftp_password" | chpasswd
    ssh-keygen -q -t ed25519 -N '' -f "$FILES_ROOT/ssh_host_ed25519_key"
    ssh-keygen -q -t ed25519 -N '' -f "$FILES_ROOT/client_key"
    cp "$FILES_ROOT/client_key.pub" "$FILES_ROOT/authorized_keys"
    chmod 0644 "$FILES_ROOT/authorized_keys"
    chmod 0600 "$FILES_ROOT/client_key"
    mkdir -p /run/sshd && chmod 0755 /run/sshd

    local sftp_port
    sftp_port=$(free_port)
    cat >"$FILES_ROOT/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $sftp_port
HostKey $FILES_ROOT/ssh_host_ed25519_key
PidFile $FILES_ROOT/sshd.pid
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile $FILES_ROOT/authorized_keys
AllowUsers $SFTP_USER
Subsystem sftp internal-sftp
Match User $SFTP_USER
    ChrootDirectory $sftp_root
    ForceCommand internal-sftp
    AllowTcpForwarding no
    X11Forwarding no
CONF
    /usr/sbin/sshd -t -f "$FILES_ROOT/sshd_config" || die "sshd refuses its test configuration"
    /usr/sbin/sshd -D -e -f "$FILES_ROOT/sshd_config" >"$FILES_ROOT/sshd.log" 2>&1 </dev/null &
    FILE_SERVER_PIDS+=($!)
    wait_port "$sftp_port" || { cat "$FILES_ROOT/sshd.log" >&2; die "sshd did not start on 127.0.0.1:$sftp_port"; }

    local ftp_port ftp_password
    ftp_port=$(free_port)
    ftp_password="pw-$(random_hex 12)"
    /usr/bin/python3 -m pyftpdlib -i 127.0.0.1 -p "$ftp_port" -w -d "$ftp_root" -u postback -P "$ftp_password" \
        >"$FILES_ROOT/ftp.log" 2>&1 </dev/null &
    FILE_SERVER_PIDS+=($!)
    wait_port "$ftp_port" || { cat "$FILES_ROOT/ftp.log" >&2; die "pyftpdlib did not start on 127.0.0.1:$ftp_port"; }

    # FTPS: pyftpdlib's TLS handler (its command line has no TLS switch), explicit AUTH TLS and
    # protected data connections required, with a self-signed certificate the tests pin.
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
        -keyout "$FILES_ROOT/ftps.key" -out "$FILES_ROOT/ftps.crt" >/dev/null 2>&1 || die "openssl could not make the FTPS certificate"
    local ftps_port ftps_fingerprint
    ftps_port=$(free_port)
    ftps_fingerprint="SHA256:$(openssl x509 -in "$FILES_ROOT/ftps.crt" -outform der | openssl dgst -sha256 -binary | base64 | tr -d '=\n')"
    cat >"$FILES_ROOT/ftps_server.py" <<'PY'
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import TLS_FTPHandler
from pyftpdlib.servers import FTPServer
port, root, password, cert, key = sys.argv[1:6]
authorizer = DummyAuthorizer()
authorizer.add_user("postback", password, root, perm="elradfmwMT")
handler = TLS_FTPHandler
handler.certfile = cert
handler.keyfile = key
handler.authorizer = authorizer
handler.tls_control_required = True
handler.tls_data_required = True
FTPServer(("127.0.0.1", int(port)), handler).serve_forever()
PY
    /usr/bin/python3 "$FILES_ROOT/ftps_server.py" "$ftps_port" "$ftps_root" "$ftp_password" "$FILES_ROOT/ftps.crt" "$FILES_ROOT/ftps.key" \
        >"$FILES_ROOT/ftps.log" 2>&1 </dev/null &
    FILE_SERVER_PIDS+=($!)
    wait_port "$ftps_port" || { cat "$FILES_ROOT/ftps.log" >&2; die "the FTPS server did not start on 127.0.0.1:$ftps_port"; }

    export POSTBACK_TEST_SFTP_PORT="$sftp_port"
    export POSTBACK_TEST_SFTP_USER="$SFTP_USER"
    export POSTBACK_TEST_SFTP_PASSWORD="$sftp_password"
    export POSTBACK_TEST_SFTP_KEY="$FILES_ROOT/client_key"
    POSTBACK_TEST_SFTP_FINGERPRINT=$(ssh-keygen -l -E sha256 -f "$FILES_ROOT/ssh_host_ed25519_key.pub" | awk '{print $2}')
    export POSTBACK_TEST_SFTP_FINGERPRINT
    export POSTBACK_TEST_SFTP_ROOT="$sftp_root"
    export POSTBACK_TEST_FTP_PORT="$ftp_port"
    export POSTBACK_TEST_FTP_USER=postback
    export POSTBACK_TEST_FTP_PASSWORD="$ftp_password"
    export POSTBACK_TEST_FTP_ROOT="$ftp_root"
    export POSTBACK_TEST_FTPS_PORT="$ftps_port"
    export POSTBACK_TEST_FTPS_FINGERPRINT="$ftps_fingerprint"
    export POSTBACK_TEST_FTPS_ROOT="$ftps_root"
    export POSTBACK_TEST_FOLDER_ROOT="$folder_root"
    log "sshd on 127.0.0.1:$sftp_port, FTP on 127.0.0.1:$ftp_port, FTPS on 127.0.0.1:$ftps_port, files under $FILES_ROOT"
}

# Silent on the normal path, so the summary stays the last line of output.
cleanup() {
    local rc=$?
    set +e
    stop_pg
    stop_file_servers
    rm -rf -- "$WORKDIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$PGSOCK_DIR"
chown -R postgres:postgres "$WORKDIR"

free_port() {
    python3 - <<'PY'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

log "initdb with $INITDB"
if ! as_postgres "$INITDB" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 --no-locale \
        >"$WORKDIR/initdb.log" 2>&1 </dev/null; then
    cat "$WORKDIR/initdb.log" >&2
    die "initdb failed"
fi

PGPORT=""
for attempt in 1 2 3 4 5; do
    port=$(free_port)
    log "starting PostgreSQL on 127.0.0.1:$port (attempt $attempt)"
    : >"$PGLOG"
    chown postgres:postgres "$PGLOG"
    if as_postgres "$PGBIN/pg_ctl" -D "$PGDATA_DIR" \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $PGSOCK_DIR -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=200" \
            -l "$PGLOG" -w -t 60 start >/dev/null </dev/null; then
        PG_STARTED=1
        PGPORT=$port
        break
    fi
    # pg_ctl may have given up while the postmaster is still around: stop it.
    if [[ -f "$PGDATA_DIR/postmaster.pid" ]]; then
        as_postgres "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if grep -qi 'could not bind\|address already in use' "$PGLOG"; then
        log "port $port was taken, retrying"
        continue
    fi
    log "PostgreSQL failed to start; server log ($PGLOG):"
    cat "$PGLOG" >&2
    die "could not start PostgreSQL"
done
if [[ -z "$PGPORT" ]]; then
    cat "$PGLOG" >&2
    die "could not start PostgreSQL: no free port after 5 attempts"
fi

ready=0
for _ in $(seq 1 60); do
    if "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT"; then
        ready=1
        break
    fi
    sleep 0.5
done
if [[ "$ready" != 1 ]]; then
    log "PostgreSQL did not become ready; server log ($PGLOG):"
    cat "$PGLOG" >&2
    die "PostgreSQL not ready on 127.0.0.1:$PGPORT"
fi
log "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') ready on 127.0.0.1:$PGPORT"

export POSTBACK_TEST_CHROMIUM="${POSTBACK_TEST_CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$POSTBACK_TEST_CHROMIUM" ]]; then
    # Never a skip (CI or not): the admin UI tests fail, and say why, without a browser.
    log "WARNING: Chromium not found at $POSTBACK_TEST_CHROMIUM; the admin UI tests will fail"
fi
start_file_servers
export POSTBACK_TEST_POSTGRES="Host=127.0.0.1;Port=$PGPORT;Username=postgres;Database=postgres;Pooling=true;Maximum Pool Size=50"

# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------
mkdir -p "$RESULTS_DIR"
log "dotnet test Postback.slnx -c Release $*"
set +e
dotnet test Postback.slnx -c Release --nologo \
    --logger "trx;LogFileName=results.trx" \
    --results-directory "$RESULTS_DIR" \
    "$@" </dev/null
test_rc=$?
set -e
log "dotnet test exited with $test_rc"
log "stopping private PostgreSQL server and the file servers"
stop_pg
stop_file_servers

# ---------------------------------------------------------------------------
# Summary from the TRX files
# ---------------------------------------------------------------------------
set +e
counts=$(python3 - "$RESULTS_DIR" <<'PY'
import pathlib, sys
import xml.etree.ElementTree as ET

ns = "{http://microsoft.com/schemas/VisualStudio/TeamTest/2010}"
files = sorted(pathlib.Path(sys.argv[1]).rglob("*.trx"))
if not files:
    sys.exit(3)
tot = {"total": 0, "executed": 0, "passed": 0, "failed": 0, "notExecuted": 0}
for f in files:
    try:
        root = ET.parse(f).getroot()
    except ET.ParseError as e:
        print(f"cannot parse {f}: {e}", file=sys.stderr)
        sys.exit(4)
    c = root.find(f"{ns}ResultSummary/{ns}Counters")
    if c is None:
        c = root.find(f".//{ns}Counters")
    if c is None:
        print(f"no Counters element in {f}", file=sys.stderr)
        sys.exit(4)
    for k in tot:
        tot[k] += int(c.get(k, "0") or 0)
print(len(files), tot["total"], tot["passed"], tot["failed"], tot["notExecuted"])
PY
)
parse_rc=$?
set -e

if [[ $parse_rc -ne 0 ]]; then
    if [[ $test_rc -ne 0 ]]; then
        log "FAILED: the build or test run failed (dotnet test exit code $test_rc) and produced no test results"
        echo "0 passed, 1 failed"
    else
        log "FAILED: dotnet test succeeded but produced no readable TRX results (no tests ran?)"
        echo "0 passed, 0 failed"
    fi
    exit 1
fi

read -r nfiles total passed failed skipped <<<"$counts"
status=0
if [[ $test_rc -ne 0 ]]; then
    log "FAILED: dotnet test exited with $test_rc"
    status=1
fi
if ((failed > 0)); then
    log "FAILED: $failed test(s) failed"
    status=1
fi
if ((total == 0)); then
    log "FAILED: no tests were run ($nfiles TRX file(s), total=0)"
    status=1
fi

summary="$passed passed, $failed failed"
if ((skipped > 0)); then
    summary+=", $skipped skipped"
fi
echo "$summary"
exit "$status"
