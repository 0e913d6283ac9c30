# shellcheck shell=bash
# PostgreSQL helpers for the integration tests (sourced after lib.sh, after cw_init):
#
#   source "$(dirname "$0")/lib.sh"
#   source "$(dirname "$0")/pg_lib.sh"
#   cw_init "$@"
#   pg_start                                  # exports PG_DSN, PG_PORT (and PG_ADMIN_DSN)
#   dsn=$(pg_createdb alpha) || exit 1        # a fresh, empty database: its DSN
#   pg_query "$PG_DSN" 'SELECT count(*) FROM outages'
#   pg_stop                                   # optional: cw_cleanup calls it at exit
#
# A private server per test: initdb in $WORK/pg, then `postgres` from
# /usr/lib/postgresql/<newest>/bin (or $CITYWATCH_PG_BINDIR) as a child of the test, listening
# on 127.0.0.1 only, on a port the kernel picked free (retried if taken meanwhile), its unix
# socket in $WORK/pg. PostgreSQL refuses to run as root: when the test is root, initdb and
# postgres run as the system user `postgres` (else `nobody`) through setpriv, which also makes
# the server quit if the test dies (--pdeathsig). A missing binary or user fails the test
# (exit 1, with the reason); nothing is skipped.
#
# Roles: `citywatch` (LOGIN, not a superuser, SCRAM password over TCP) owns the databases
# `citywatch` (PG_DSN) and every one pg_createdb makes; that is the collector's role. The
# superuser `postgres` comes in over the unix socket only (trust; PG_ADMIN_DSN).
#
# pg_start registers pg_stop with cw_at_exit: it runs after every process cw_spawn started is
# gone (a collector flushes to a live database), then $WORK and the cluster are removed. Call
# pg_start in the test's own shell, never inside $(...) or a pipeline: the server is a child of
# that shell. pg_stop then pg_start restarts the same cluster on the same port (PG_DSN and the
# DSNs of pg_createdb stay valid).

PG_PID=""           # the postmaster, a child of this shell; empty when stopped
PG_DIR=""           # $WORK/pg: data/, the socket, initdb.log, postgres.log
PG_BINDIR=""
PG_RUNAS=()         # setpriv prefix: the unprivileged user, and --pdeathsig
PG_AT_EXIT=0

# pg_bindir: sets PG_BINDIR to the directory holding initdb, postgres and psql, or fails.
pg_bindir() {
  local d best="" v bestv=-1
  _pg_has() { [[ -x $1/initdb && -x $1/postgres && -x $1/psql ]]; }
  if [[ -n "${CITYWATCH_PG_BINDIR:-}" ]]; then
    _pg_has "$CITYWATCH_PG_BINDIR" ||
      fail "CITYWATCH_PG_BINDIR=$CITYWATCH_PG_BINDIR holds no executable initdb, postgres and psql"
    PG_BINDIR=$CITYWATCH_PG_BINDIR
    return 0
  fi
  for d in /usr/lib/postgresql/*/bin; do
    v=${d#/usr/lib/postgresql/}
    v=${v%/bin}
    [[ $v =~ ^[0-9]+$ ]] && _pg_has "$d" && ((v > bestv)) && { bestv=$v; best=$d; }
  done
  if [[ -z $best ]] && command -v initdb >/dev/null; then
    best=$(dirname "$(command -v initdb)")
    _pg_has "$best" || best=""
  fi
  [[ -n $best ]] || fail "PostgreSQL server binaries not found: no initdb, postgres and psql in" \
    "\$CITYWATCH_PG_BINDIR, /usr/lib/postgresql/<version>/bin or PATH. Install Debian's" \
    "postgresql package (scripts/install-deps.sh does), or set CITYWATCH_PG_BINDIR"
  PG_BINDIR=$best
}

pg_free_tcp_port() { cw_free_port tcp; }

# pg_start: initdb (first call) and start the server; exports PG_PORT, PG_DSN, PG_ADMIN_DSN,
# PG_PASSWORD. Fails the test (with initdb's or the server's log) when it cannot.
pg_start() {
  [[ -n "${WORK:-}" && -d "$WORK" ]] || { echo "pg_start: source lib.sh and call cw_init first" >&2; exit 2; }
  [[ -z "$PG_PID" ]] || fail "pg_start: the server (pid $PG_PID) is already running"
  if ((PG_AT_EXIT == 0)); then
    cw_at_exit pg_stop
    PG_AT_EXIT=1
  fi
  pg_bindir
  command -v setpriv >/dev/null || fail "setpriv not found (Debian's util-linux package)"
  command -v timeout >/dev/null || fail "timeout not found (Debian's coreutils package)"
  PG_DIR=$WORK/pg
  ((${#PG_DIR} + 16 < 108)) || fail "$PG_DIR is too long for a unix socket path; set TMPDIR shorter"

  local user=""
  PG_RUNAS=(setpriv --pdeathsig QUIT)
  if ((EUID == 0)); then
    if id -u postgres >/dev/null 2>&1; then user=postgres
    elif id -u nobody >/dev/null 2>&1; then user=nobody
    else fail "running as root, and PostgreSQL refuses to: neither user postgres nor nobody exists"
    fi
    # setpriv applies --pdeathsig after the uid change, which would otherwise clear it.
    PG_RUNAS=(setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups --pdeathsig QUIT)
  fi
  local env=(env -i PATH=/usr/bin:/bin LC_ALL=C TZ=UTC HOME="$PG_DIR")

  local fresh=0
  if [[ ! -d "$PG_DIR/data" ]]; then
    fresh=1
    rm -rf "$PG_DIR"
    mkdir -p "$PG_DIR" || fail "cannot create $PG_DIR"
    chmod 700 "$PG_DIR"
    if [[ -n $user ]]; then
      chmod go+x "$WORK"  # traverse only: the user needs to reach $WORK/pg
      chown "$user:" "$PG_DIR" || fail "chown $user $PG_DIR"
      "${PG_RUNAS[@]}" test -w "$PG_DIR" -a -x "$PG_DIR" ||
        fail "user $user cannot write $PG_DIR (a parent directory is not searchable by it?);" \
          "set TMPDIR to a directory such as /tmp"
    fi
    PG_PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    [[ ${#PG_PASSWORD} == 32 ]] || fail "cannot read /dev/urandom"
    (umask 077 && printf '%s\n' "$PG_PASSWORD" >"$PG_DIR/pwfile") || fail "cannot write $PG_DIR/pwfile"
    [[ -z $user ]] || chown "$user:" "$PG_DIR/pwfile"
    # Superuser postgres (same password, unused), trust on the socket (its dir is 0700), SCRAM
    # over TCP. --no-sync: the cluster is thrown away; the server itself keeps fsync on.
    (cd "$PG_DIR" && exec timeout -k 5 60 "${env[@]}" "${PG_RUNAS[@]}" "$PG_BINDIR/initdb" \
      -D "$PG_DIR/data" -U postgres --pwfile="$PG_DIR/pwfile" --auth-local=trust \
      --auth-host=scram-sha-256 -E UTF8 --locale=C --no-sync --no-instructions) \
      >"$PG_DIR/initdb.log" 2>&1
    local rc=$?
    rm -f "$PG_DIR/pwfile"
    if ((rc != 0)); then
      echo "----- initdb.log -----" >&2
      cat "$PG_DIR/initdb.log" >&2
      fail "initdb exited with $rc$( ((rc == 124)) && echo ' (timed out after 60 s)')"
    fi
    PG_PORT=""
  fi
  ((fresh)) && CW_LOGS+=("$PG_DIR/postgres.log")

  local attempt port_taken from
  for ((attempt = 0; attempt < 5; attempt++)); do
    # A restart keeps its port: the DSNs handed out carry it.
    [[ $fresh == 0 && -n "${PG_PORT:-}" ]] || PG_PORT=$(pg_free_tcp_port) || fail "cannot pick a free port"
    from=$(($(stat -c %s "$PG_DIR/postgres.log" 2>/dev/null || echo 0) + 1))
    (cd "$PG_DIR" && exec "${env[@]}" "${PG_RUNAS[@]}" "$PG_BINDIR/postgres" -D "$PG_DIR/data" \
      -c listen_addresses=127.0.0.1 -c port="$PG_PORT" -c unix_socket_directories="$PG_DIR" \
      -c logging_collector=off -c shared_buffers=16MB -c max_connections=50) \
      >>"$PG_DIR/postgres.log" 2>&1 &
    PG_PID=$!
    _pg_wait_ready && break
    port_taken=0
    grep -qE 'could not bind|Address already in use' <<<"$(tail -c "+$from" "$PG_DIR/postgres.log")" &&
      port_taken=1
    pg_stop immediate
    ((port_taken && fresh)) || fail "postgres did not start on 127.0.0.1:$PG_PORT (see postgres.log)"
    cw_log "port $PG_PORT was taken meanwhile; trying another"
  done
  [[ -n "$PG_PID" ]] || fail "postgres did not start: every port tried was taken"

  export PG_PORT PG_PASSWORD
  export PG_DSN="host=127.0.0.1 port=$PG_PORT dbname=citywatch user=citywatch password=$PG_PASSWORD"
  export PG_ADMIN_DSN="host=$PG_DIR port=$PG_PORT dbname=postgres user=postgres"
  if ((fresh)); then
    _pg_admin -c "CREATE ROLE citywatch LOGIN PASSWORD '$PG_PASSWORD'" >/dev/null ||
      fail "cannot create the role citywatch"
    _pg_admin -c "CREATE DATABASE citywatch OWNER citywatch TEMPLATE template0" >/dev/null ||
      fail "cannot create the database citywatch"
  fi
  [[ $(pg_query "$PG_DSN" 'SELECT current_user') == citywatch ]] ||
    fail "the role citywatch cannot log in over TCP ($PG_DSN)"
  cw_log "postgres pid $PG_PID on 127.0.0.1:$PG_PORT, dir $PG_DIR${user:+, as user $user}"
}

# True once the postmaster marks its lock file ready (as pg_ctl -w does) and answers on TCP;
# false when it exits first or after 30 s.
_pg_wait_ready() {
  local i pidfile=$PG_DIR/data/postmaster.pid
  for ((i = 0; i < 300; i++)); do
    kill -0 "$PG_PID" 2>/dev/null || return 1
    if [[ $(sed -n 1p "$pidfile" 2>/dev/null) == "$PG_PID" && $(sed -n 8p "$pidfile" 2>/dev/null) == ready* ]] &&
      "$PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2; then
      return 0
    fi
    sleep "$CW_POLL"
  done
  cw_log "postgres (pid $PG_PID) did not accept connections on 127.0.0.1:$PG_PORT within 30 s"
  return 1
}

# psql as the superuser over the unix socket.
_pg_admin() {
  "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$PG_ADMIN_DSN connect_timeout=10" "$@"
}

# pg_createdb NAME: creates the empty database NAME ([a-z_][a-z0-9_]*, owned by citywatch)
# and prints its DSN. Fails (exit 1 of the subshell in $(...): add `|| exit 1`) on error.
pg_createdb() {
  local name=${1:-}
  [[ $name =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || fail "pg_createdb: '$name' is not a valid name ([a-z_][a-z0-9_]*)"
  [[ -n "$PG_PID" ]] || fail "pg_createdb: the server is not running (pg_start first)"
  _pg_admin -c "CREATE DATABASE $name OWNER citywatch TEMPLATE template0" >/dev/null ||
    fail "pg_createdb: cannot create the database $name"
  echo "host=127.0.0.1 port=$PG_PORT dbname=$name user=citywatch password=$PG_PASSWORD"
}

# pg_query DSN SQL: runs SQL, prints the rows unaligned (fields separated by |), no headers.
# Returns psql's status (non-zero on any error, printed on stderr).
pg_query() {
  "$PG_BINDIR/psql" -X -A -t -q -v ON_ERROR_STOP=1 "$1 connect_timeout=10" -c "$2"
}

# pg_stop [immediate|fast]: stops the server (default immediate: SIGQUIT, as pg_ctl stop -m
# immediate; fast: SIGINT, a clean shutdown, so that the next pg_start needs no crash recovery)
# and waits for it, SIGKILL after 10 s. Idempotent, never exits: safe in any cleanup.
pg_stop() {
  [[ -n "${PG_PID:-}" ]] || return 0
  local pid=$PG_PID sig=QUIT i
  [[ ${1:-immediate} == fast ]] && sig=INT
  PG_PID=""
  kill "-$sig" "$pid" 2>/dev/null
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep "${CW_POLL:-0.1}"
  done
  if kill -0 "$pid" 2>/dev/null; then
    cw_log "postgres (pid $pid) still running 10 s after SIG$sig; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  return 0
}
