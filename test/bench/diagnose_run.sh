#!/usr/bin/env bash
# test/bench/diagnose_run.sh - time connwatch.diagnose() at N connections
# with full ledgers, against the same questions answered by hand-written SQL
# over pg_stat_activity (test/bench/diagnose_plain.sql), in one run.
#
#   bash test/bench/diagnose_run.sh [--connections N] [--duration S]
#                                   [--rounds R] [--fill K] [--parts]
#                                   [--port P] [--install] [--keep]
#                                   [--major NN]
#
# One throwaway cluster (scripts/pgcluster.sh, as the postgres OS user):
# shared_preload_libraries = 'pg_connwatch', max_connections = N + 100,
# autovacuum off, every connwatch.* setting at its default.  Before timing:
# (1) the ledgers are filled past connwatch.max_ledger_keys (default 1,000):
#     K refused connection attempts (default max_ledger_keys + 100), each
#     claiming another name (15 % to a database with CONNECTION LIMIT 0,
#     15 % as a role with CONNECTION LIMIT 0, each with its own
#     application_name; the rest as roles that do not exist), and K sessions
#     opened and closed, each with its own application_name, so that the
#     refusal, ending and peak ledgers all overflow;
# (2) a prepared transaction is left behind (it holds the xmin horizon);
# (3) N sessions are held (test/bench/hold_sessions): 75 % idle, 15 %
#     (bench_iit) and 5 % (leak_iit, one role) idle in a transaction, one of
#     the bench_iit ones holding an ACCESS EXCLUSIVE lock that 2.5 % wait
#     for, 2.5 % active; a role and a database are brought near their
#     CONNECTION LIMIT;
# (4) the history ring (connwatch.history_size, default 3,600 samples) is
#     filled with samples of those sessions: connwatch.sample_interval =
#     10ms (ALTER SYSTEM, reload) until every sample is new, then 1s again.
# Then, with connwatch.diagnose_idle_in_transaction = 1s and
# connwatch.diagnose_horizon_age = 1s (PGOPTIONS; the sessions are seconds
# old):
# - checks (a failure makes the run exit 1): diagnose() returns CW101 for
#   application "leak_iit" (all its sessions), CW130 for the lock holder
#   (with every waiter), CW121 for the prepared transaction, at most 5 rows
#   per refusal cause among CW110 to CW119 (and some for each cause filled);
#   the ledgers and the history ring are full; and diagnose()'s CW101, CW103
#   to CW106, CW120 to CW123 and CW130 rows are exactly the rows of the
#   plain SQL, which therefore asks the same questions;
# - timing: SELECT * FROM connwatch.diagnose() against diagnose_plain.sql,
#   each with pgbench -n -c 1 -j 1 -T S -r (every row fetched, one session
#   per pgbench run), R rounds (default 5 x 2 s) in alternating order; the
#   median of the rounds' means, and the median of the paired ratios.
#   diagnose() plans its query once per session (PL/pgSQL), so the plain SQL
#   is timed with -M prepared (planned once per session too); it is also
#   timed with the simple protocol (planned at every call), and both are
#   timed once per round in a new psql session (\timing: what one call by
#   hand costs, compilation and planning included).  The target (diagnose()
#   under 20 ms at 2,000 connections) is reported as met or not; timings
#   never fail the run.
# With --parts, each source diagnose() reads is timed alone afterwards
# (SELECT count(*) FROM it, one round), and one diagnose() call is run
# under auto_explain (log_analyze, log_nested_statements): its plan is kept
# in the cluster directory, and the time of each materialized CTE and of
# each branch of its UNION ALL (named by the comment that opens it) printed.
# Run as root (or, on the host's PostgreSQL, as any user that may run a
# cluster).  It installs libpq-dev if missing, builds test/bench/hold_sessions
# (nothing else unless --install is given or the extension is not
# installed); port 55304 unless --port or BENCH_PORT says otherwise; the
# cluster directory /tmp/connwatch_diagbench.* is removed on exit unless
# --keep or a failure.  --major 13, 17 or 18 runs this very script inside
# that major's Debian root file system (scripts/pgroot.sh), as run.sh does.
# A run at 2,000 connections takes about 4 minutes.  The questions, and those
# that have no plain-SQL equivalent: test/bench/diagnose_plain.sql.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
CMDLINE="bash test/bench/diagnose_run.sh${*:+ $*}"

CONNECTIONS=2000
DURATION=2
ROUNDS=5
FILL=
PARTS=0
PORT=${BENCH_PORT:-55304}
INSTALL=auto
KEEP=0
MAJOR=15
TARGET_MS=20
# diagnose()'s thresholds for the run; diagnose_plain.sql has the same
DIAG_OPTIONS="-c connwatch.diagnose_idle_in_transaction=1s -c connwatch.diagnose_horizon_age=1s"
GID=cw_bench_forgotten

# usage, die, psql_q and the bench_* setup functions
. "$HERE/lib.sh"
# crash_in_logs: the crash detector of the test scripts
. "$ROOT/scripts/lib.sh"

ARGS=("$@")
while [ $# -gt 0 ]; do
	bench_common_arg "$@"
	if [ "$SHIFT" -gt 0 ]; then
		shift "$SHIFT"
		continue
	fi
	case "$1" in
	--fill) FILL=${2:?}; shift 2 ;;
	--fill=*) FILL=${1#*=}; shift ;;
	--parts) PARTS=1; shift ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done

[[ $CONNECTIONS =~ ^[0-9]+$ ]] && [ "$CONNECTIONS" -ge 40 ] ||
	die "--connections must be an integer >= 40"
[[ $DURATION =~ ^[0-9]+$ ]] && [ "$DURATION" -ge 1 ] ||
	die "--duration must be a whole number of seconds >= 1"
[[ $ROUNDS =~ ^[0-9]+$ ]] && [ "$ROUNDS" -ge 1 ] ||
	die "--rounds must be an integer >= 1"
[ -z "$FILL" ] || { [[ $FILL =~ ^[0-9]+$ ]] && [ "$FILL" -ge 20 ]; } ||
	die "--fill must be an integer >= 20"

# Another major: this script again, inside its root (does not return).
bench_major "${ARGS[@]}"

# ---------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------
bench_prerequisites
bench_build hold_sessions
HOLDER=$HERE/hold_sessions
PLAIN=$HERE/diagnose_plain.sql
[ -f "$PLAIN" ] || die "missing $PLAIN"

# The holders keep one socket per session open.
bench_raise_nofile $((CONNECTIONS + 256))

N=$CONNECTIONS
ACTIVE=$((N / 40))
WAITING=$((N / 40))
LEAK=$((N / 20))
BENCH_IIT=$((N / 5 - LEAK))	# includes the lock holder
IDLE=$((N - BENCH_IIT - LEAK - ACTIVE - WAITING))
MAX_CONNECTIONS=$((N + 100))

# ---------------------------------------------------------------------------
# Cluster
# ---------------------------------------------------------------------------
DIR=$(mktemp -d /tmp/connwatch_diagbench.XXXXXX)
chmod 755 "$DIR"
HOLDER_PID=
LEAK_PID=
stop_holders() {
	local p
	for p in $HOLDER_PID $LEAK_PID; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	HOLDER_PID= LEAK_PID=
}
cleanup() {
	local rc=$?
	stop_holders
	bench_stop_cluster "$rc"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FAILED=0
fail() {
	FAILED=1
	echo "!!! $*" >&2
}

median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cores, load average: $LOAD_BEFORE"
echo "== command: $CMDLINE"
echo "== starting a cluster in $DIR (port $PORT, max_connections = $MAX_CONNECTIONS, shared_preload_libraries = 'pg_connwatch')"
PGBIN=$PGBIN bash "$ROOT/scripts/pgcluster.sh" start "$DIR" "$PORT" \
	"max_connections = $MAX_CONNECTIONS" \
	"autovacuum = off" \
	"shared_preload_libraries = 'pg_connwatch'" ||
	{ tail -20 "$DIR/server.log" >&2; die "could not start the cluster"; }
eval "$(bash "$ROOT/scripts/pgcluster.sh" env "$DIR" "$PORT")"
export PGDATABASE=postgres
PM=$(head -1 "$DIR/data/postmaster.pid")
echo "   server: $(psql_q -c 'SELECT version()')"

psql_q -d postgres <<'SQL' || die "setup SQL failed"
CREATE EXTENSION pg_connwatch;
CREATE ROLE bench_web LOGIN;
CREATE ROLE bench_worker LOGIN CONNECTION LIMIT 5000;
CREATE ROLE bench_report LOGIN CONNECTION LIMIT 3000;
CREATE ROLE bench_batch LOGIN;
CREATE ROLE leak_app LOGIN;
-- refused by its CONNECTION LIMIT (CW112), and at its limit (CW105)
CREATE ROLE cw_capped LOGIN CONNECTION LIMIT 0;
CREATE DATABASE connwatch_bench;
-- refused by its CONNECTION LIMIT (CW113), and at its limit (CW106)
CREATE DATABASE cw_closed CONNECTION LIMIT 0;
SQL
psql_q -d connwatch_bench <<'SQL' || die "setup SQL failed"
CREATE TABLE bench_data AS SELECT g AS id, md5(g::text) AS payload
    FROM generate_series(1, 1000) AS g;
CREATE TABLE bench_lock (id integer);
CREATE TABLE bench_2pc (id integer);
GRANT ALL ON bench_data, bench_lock TO PUBLIC;
SQL
[ "$(psql_q -c 'SELECT connwatch.preloaded()')" = t ] ||
	die "connwatch.preloaded() is not true: the library is not preloaded"
KEYS=$(psql_q -c "SHOW connwatch.max_ledger_keys")
HSIZE=$(psql_q -c "SHOW connwatch.history_size")
FILL=${FILL:-$((KEYS + 100))}
echo "   pg_connwatch $(psql_q -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_connwatch'"), connwatch.max_ledger_keys = $KEYS, connwatch.history_size = $HSIZE"

# ---------------------------------------------------------------------------
# (1) Full ledgers
# ---------------------------------------------------------------------------
DBLIM=$((FILL * 15 / 100))
ROLELIM=$((FILL * 15 / 100))
UNKNOWN=$((FILL - DBLIM - ROLELIM))
echo
echo "== (1) filling the ledgers: $FILL refused attempts, $FILL sessions ended, each claiming another name"
psql_q -c "SELECT connwatch.reset_ledgers()" >/dev/null
T0=$SECONDS
# Each attempt is one psql, 8 at a time; every one must be refused.  The
# application_name is given explicitly (psql would claim "psql"); the
# unknown roles claim none, so diagnose() names them by role.
{
	for ((i = 1; i <= DBLIM; i++)); do
		echo "host=$DIR port=$PORT dbname=cw_closed user=bench_web application_name=dblimit_$i"
	done
	for ((i = 1; i <= ROLELIM; i++)); do
		echo "host=$DIR port=$PORT dbname=connwatch_bench user=cw_capped application_name=rolelimit_$i"
	done
	for ((i = 1; i <= UNKNOWN; i++)); do
		echo "host=$DIR port=$PORT dbname=connwatch_bench user=nobody_$i application_name=''"
	done
} >"$DIR/refusals.txt"
xargs -d '\n' -P 8 -n 1 "$PSQL" -X -w -At -c 'SELECT 1' -d <"$DIR/refusals.txt" \
	>"$DIR/refusals.out" 2>"$DIR/refusals.err" || true
GOT_IN=$(grep -c '^1$' "$DIR/refusals.out" || true)
[ "$GOT_IN" = 0 ] || fail "$GOT_IN of the $FILL refused attempts got in"
# Sessions opened and closed: \connect in 4 psql processes at once.
for ((j = 0; j < 4; j++)); do
	for ((i = j + 1; i <= FILL; i += 4)); do
		echo "\\connect \"host=$DIR port=$PORT dbname=connwatch_bench user=bench_web application_name=ended_$i\""
	done >"$DIR/endings.$j.sql"
	"$PSQL" -X -q -v ON_ERROR_STOP=1 -d connwatch_bench -f "$DIR/endings.$j.sql" \
		>"$DIR/endings.$j.out" 2>&1 &
	eval "END_PID_$j=$!"
done
for ((j = 0; j < 4; j++)); do
	p=END_PID_$j
	wait "${!p}" || { cat "$DIR/endings.$j.out" >&2; die "opening and closing sessions failed"; }
done
sleep 0.5
LEDGERS=$(psql_q -F'|' <<SQL
SELECT (SELECT count(*) FILTER (WHERE NOT overflow) FROM connwatch.refused_connections()),
       (SELECT coalesce(sum(count) FILTER (WHERE overflow), 0) FROM connwatch.refused_connections()),
       (SELECT coalesce(sum(count), 0) FROM connwatch.refused_connections()),
       (SELECT string_agg(cause || '=' || n, ' ' ORDER BY cause)
        FROM (SELECT cause, sum(count) AS n FROM connwatch.refused_connections() GROUP BY cause) AS c),
       (SELECT count(*) FILTER (WHERE NOT overflow) FROM connwatch.session_endings()),
       (SELECT coalesce(sum(count) FILTER (WHERE overflow), 0) FROM connwatch.session_endings()),
       (SELECT count(*) FILTER (WHERE application_name LIKE 'ended\_%') FROM connwatch.session_endings()),
       (SELECT count(*) FROM connwatch.peaks()),
       (SELECT count(*) FROM connwatch.peaks() WHERE scope = 'application')
SQL
) || die "reading the ledgers failed"
IFS='|' read -r R_KEYS R_OVER R_TOTAL R_CAUSES E_KEYS E_OVER E_NAMED P_ROWS P_APPS <<<"$LEDGERS"
echo "   $((SECONDS - T0)) s; refused_connections: $R_KEYS named keys + overflow counting $R_OVER (total $R_TOTAL: $R_CAUSES)"
echo "   session_endings: $E_KEYS named keys ($E_NAMED of the ended_* applications) + overflow counting $E_OVER; peaks: $P_ROWS rows ($P_APPS applications)"
[ "$R_TOTAL" = "$FILL" ] ||
	fail "refused_connections counts $R_TOTAL refusals, $FILL attempts were made"
[ "$R_CAUSES" = "database limit=$DBLIM role does not exist=$UNKNOWN role limit=$ROLELIM" ] ||
	fail "refusals by cause: $R_CAUSES, expected database limit=$DBLIM role does not exist=$UNKNOWN role limit=$ROLELIM"
if [ "$FILL" -gt "$KEYS" ]; then
	[ "$R_KEYS" = "$KEYS" ] && [ "$R_OVER" -gt 0 ] ||
		fail "the refusal ledger is not full: $R_KEYS named keys (max $KEYS), overflow $R_OVER"
	[ "$E_KEYS" = "$KEYS" ] && [ "$E_OVER" -gt 0 ] ||
		fail "the ending ledger is not full: $E_KEYS named keys (max $KEYS), overflow $E_OVER"
	[ "$P_ROWS" -ge "$KEYS" ] ||
		fail "the peak ledger is not full: $P_ROWS rows (max $KEYS)"
fi

# ---------------------------------------------------------------------------
# (2) A forgotten prepared transaction, before the sessions, so that it is
# the first holder of the xmin they share
# ---------------------------------------------------------------------------
psql_q -d connwatch_bench -c "BEGIN" -c "INSERT INTO bench_2pc VALUES (1)" \
	-c "PREPARE TRANSACTION '$GID'" >/dev/null || die "PREPARE TRANSACTION failed"

# ---------------------------------------------------------------------------
# (3) N sessions
# ---------------------------------------------------------------------------
echo
echo "== (3) $N sessions: $IDLE idle, $((BENCH_IIT + LEAK)) idle in transaction ($BENCH_IIT bench_iit of which 1 holds a lock, $LEAK leak_iit), $ACTIVE active, $WAITING waiting on the lock; prepared transaction '$GID'"
T0=$SECONDS
rm -f "$DIR/ready.bench" "$DIR/ready.leak"
"$HOLDER" --host "$DIR" --port "$PORT" --dbname connwatch_bench \
	--roles bench_web,bench_worker,bench_report,bench_batch \
	--idle "$IDLE" --iit "$BENCH_IIT" --active "$ACTIVE" --waiting "$WAITING" \
	--prefix bench --ready-file "$DIR/ready.bench" \
	>"$DIR/holder.bench.out" 2>"$DIR/holder.bench.err" &
HOLDER_PID=$!
"$HOLDER" --host "$DIR" --port "$PORT" --dbname connwatch_bench --roles leak_app \
	--iit "$LEAK" --prefix leak --ready-file "$DIR/ready.leak" \
	>"$DIR/holder.leak.out" 2>"$DIR/holder.leak.err" &
LEAK_PID=$!
for ((i = 0; i < 6000; i++)); do
	[ -f "$DIR/ready.bench" ] && [ -f "$DIR/ready.leak" ] && break
	kill -0 "$HOLDER_PID" 2>/dev/null ||
		{ cat "$DIR/holder.bench.err" >&2; HOLDER_PID=; die "hold_sessions failed to open its sessions"; }
	kill -0 "$LEAK_PID" 2>/dev/null ||
		{ cat "$DIR/holder.leak.err" >&2; LEAK_PID=; die "hold_sessions (leak) failed to open its sessions"; }
	sleep 0.1
done
[ -f "$DIR/ready.bench" ] && [ -f "$DIR/ready.leak" ] || die "hold_sessions not ready after 600 s"
sed 's/^/   /' "$DIR/holder.bench.out" "$DIR/holder.leak.out"
EXPECTED="$IDLE|$BENCH_IIT|$LEAK|$ACTIVE|$WAITING|0"
for ((i = 0; i < 600; i++)); do
	COUNTS=$(psql_q -c "
		SELECT count(*) FILTER (WHERE application_name = 'bench_idle' AND state = 'idle'),
		       count(*) FILTER (WHERE application_name IN ('bench_iit', 'bench_locker')
		                          AND state = 'idle in transaction'),
		       count(*) FILTER (WHERE application_name = 'leak_iit' AND state = 'idle in transaction'),
		       count(*) FILTER (WHERE application_name = 'bench_active' AND wait_event = 'PgSleep'),
		       count(*) FILTER (WHERE application_name = 'bench_waiting' AND wait_event_type = 'Lock'),
		       count(*) FILTER (WHERE (application_name LIKE 'bench\_%' OR application_name LIKE 'leak\_%')
		                          AND now() - xact_start < interval '1.5 s')
		FROM pg_stat_activity")
	[ "$COUNTS" = "$EXPECTED" ] && break
	sleep 0.1
done
[ "$COUNTS" = "$EXPECTED" ] ||
	die "server shows idle|bench iit|leak iit|active|waiting|young = $COUNTS, expected $EXPECTED"
LOCKER_PID=$(psql_q -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'bench_locker'")
# a role at 98 % of its CONNECTION LIMIT (CW105), a database at 85 % (CW106)
read -r BATCH_USED BENCH_DB_USED <<<"$(psql_q -F' ' -c "
	SELECT (SELECT count(*) FROM pg_stat_activity WHERE usename = 'bench_batch'),
	       (SELECT count(*) FROM pg_stat_activity WHERE datname = 'connwatch_bench')")"
BATCH_LIMIT=$(((BATCH_USED * 100 + 97) / 98))
DB_LIMIT=$(((BENCH_DB_USED * 100 + 84) / 85))
psql_q -c "ALTER ROLE bench_batch CONNECTION LIMIT $BATCH_LIMIT" \
	-c "ALTER DATABASE connwatch_bench CONNECTION LIMIT $DB_LIMIT" >/dev/null
echo "   in place after $((SECONDS - T0)) s: $(psql_q -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'") client backends; lock holder pid $LOCKER_PID; role bench_batch $BATCH_USED of CONNECTION LIMIT $BATCH_LIMIT, database connwatch_bench $BENCH_DB_USED of $DB_LIMIT"

# ---------------------------------------------------------------------------
# (4) A full history ring of samples of those sessions
# ---------------------------------------------------------------------------
echo
echo "== (4) filling the history ring ($HSIZE samples): connwatch.sample_interval = 10ms, then 1s"
T0=$SECONDS
SWITCH=$(psql_q -c "SELECT now()")
psql_q -c "ALTER SYSTEM SET connwatch.sample_interval = '10ms'" -c "SELECT pg_reload_conf()" >/dev/null
H=
for ((i = 0; i < HSIZE / 20 + 300; i++)); do
	sleep 1
	H=$(psql_q -F'|' -c "SELECT count(*), count(*) FILTER (WHERE sampled_at > '$SWITCH'),
	                            min(client_backends), max(client_backends)
	                     FROM connwatch.history()")
	[ "${H%%|*}" = "$HSIZE" ] && [ "$(cut -d'|' -f2 <<<"$H")" = "$HSIZE" ] && break
done
psql_q -c "ALTER SYSTEM SET connwatch.sample_interval = '1s'" -c "SELECT pg_reload_conf()" >/dev/null
IFS='|' read -r H_ALL H_NEW H_MIN H_MAX <<<"$H"
echo "   $((SECONDS - T0)) s: $H_ALL samples, $H_NEW of them since the switch, client_backends $H_MIN to $H_MAX"
[ "$H_ALL" = "$HSIZE" ] && [ "$H_NEW" = "$HSIZE" ] ||
	fail "the history ring is not full of new samples: $H_ALL samples, $H_NEW new (connwatch.history_size = $HSIZE)"
[ "$(psql_q -c "SHOW connwatch.sample_interval")" = 1s ] || fail "connwatch.sample_interval is not back at 1s"
bench_check_install "after the set-up"

# ---------------------------------------------------------------------------
# Checks: diagnose() finds what was set up, and the plain SQL asks the same
# ---------------------------------------------------------------------------
export PGOPTIONS="$DIAG_OPTIONS"
echo
echo "== checks (PGOPTIONS='$PGOPTIONS')"
as_subquery() {
	sed -e 's/;[[:space:]]*$//' "$1"
}
psql_q <<SQL >/dev/null || die "running diagnose() or the plain SQL for the checks failed"
DROP TABLE IF EXISTS bench_diag, bench_plain;
CREATE TABLE bench_diag AS SELECT * FROM connwatch.diagnose();
CREATE TABLE bench_plain AS $(as_subquery "$PLAIN");
SQL
DIAG_ROWS=$(psql_q -c "SELECT count(*) FROM bench_diag")
PLAIN_ROWS=$(psql_q -c "SELECT count(*) FROM bench_plain")
echo "   diagnose() returned $DIAG_ROWS rows, the plain SQL $PLAIN_ROWS; diagnose() by code:"
psql_q -F' ' -c "SELECT format('     %-5s %-8s %5s  %s', code, severity, count(*),
                                left(string_agg(subject, ', ' ORDER BY subject), 110))
                 FROM bench_diag GROUP BY code, severity ORDER BY code, severity"

check() {
	# description, query returning t when the check passes, query printing the evidence
	local what=$1 ok=$2 show=${3:-}
	if [ "$(psql_q -c "$ok")" = t ]; then
		echo "   ok: $what"
	else
		fail "$what"
		[ -z "$show" ] || psql_q -F' | ' -c "$show" | sed 's/^/      /' >&2
	fi
}
check "CW101 for application \"leak_iit\", all $LEAK of its sessions" \
	"SELECT count(*) = 1 AND min((evidence->>'sessions')::int) = $LEAK
	 FROM bench_diag WHERE code = 'CW101' AND subject = 'application \"leak_iit\"'" \
	"SELECT code, subject, evidence FROM bench_diag WHERE code = 'CW101'"
check "CW130 for the lock holder (pid $LOCKER_PID), $WAITING sessions waiting" \
	"SELECT count(*) = 1 AND min((evidence->>'waiting')::int) = $WAITING
	        AND min(evidence->>'application') = 'bench_locker'
	 FROM bench_diag WHERE code = 'CW130' AND subject = 'pid $LOCKER_PID'" \
	"SELECT code, subject, evidence FROM bench_diag WHERE code = 'CW130'"
check "CW121 for prepared transaction \"$GID\"" \
	"SELECT count(*) = 1 FROM bench_diag
	 WHERE code = 'CW121' AND subject = 'prepared transaction \"$GID\"'" \
	"SELECT code, subject FROM bench_diag WHERE code LIKE 'CW12_'"
check "CW110 to CW119: at most 5 rows per cause" \
	"SELECT coalesce(bool_and(n <= 5), true) FROM (SELECT count(*) AS n FROM bench_diag
	 WHERE code BETWEEN 'CW110' AND 'CW119' GROUP BY code, evidence->>'cause') AS c" \
	"SELECT code, evidence->>'cause', count(*) FROM bench_diag
	 WHERE code BETWEEN 'CW110' AND 'CW119' GROUP BY 1, 2 ORDER BY 1, 2"
check "CW112, CW113 and CW114 (role does not exist) each reported" \
	"SELECT count(DISTINCT code || (evidence->>'cause')) = 3 FROM bench_diag
	 WHERE (code, evidence->>'cause') IN (('CW112', 'role limit'), ('CW113', 'database limit'),
	                                      ('CW114', 'role does not exist'))"
echo "   refusal rows per cause: $(psql_q -c "SELECT string_agg(format('%s %s: %s', code, cause, n), ', ' ORDER BY code, cause)
	FROM (SELECT code, evidence->>'cause' AS cause, count(*) AS n FROM bench_diag
	      WHERE code BETWEEN 'CW110' AND 'CW119' GROUP BY 1, 2) AS c")"
check "no CW190 (the library is preloaded)" \
	"SELECT count(*) = 0 FROM bench_diag WHERE code = 'CW190'"

# The same questions, the same answers: diagnose()'s rows against the
# plain SQL's, on the columns that do not depend on the instant of reading.
SORTED_PIDS="(SELECT jsonb_agg(x ORDER BY x::int) FROM jsonb_array_elements(%s->'waiting_pids') AS x)"
COMPARE=(
	"leaked (CW101)|code = 'CW101'|question = 'leaked'|subject, %s->>'role', %s->>'database', %s->'sessions', %s->'sessions_waiting_on_them', %s->'pids', %s->>'last_query'"
	"lock heads (CW130)|code = 'CW130'|question = 'lock head'|subject, %s->>'application', %s->'waiting', %s->'stuck_behind', $SORTED_PIDS, %s->>'last_query'"
	"limits (CW103 to CW106)|code BETWEEN 'CW103' AND 'CW106'|question = 'limit'|subject, %s->>'scope', %s->'used', %s->'max', %s->'applications'"
	"xmin horizon (CW120 to CW123)|code BETWEEN 'CW120' AND 'CW123'|question = 'horizon'|subject, %s->>'holder_type'"
)
for c in "${COMPARE[@]}"; do
	IFS='|' read -r what dwhere pwhere cols <<<"$c"
	dcols=${cols//%s/evidence}
	pcols=${cols//%s/detail}
	res=$(psql_q -F'|' -c "
		WITH d AS (SELECT $dcols FROM bench_diag WHERE $dwhere),
		     p AS (SELECT $pcols FROM bench_plain WHERE $pwhere)
		SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM p),
		       (SELECT count(*) FROM (SELECT * FROM d EXCEPT ALL SELECT * FROM p) AS x),
		       (SELECT count(*) FROM (SELECT * FROM p EXCEPT ALL SELECT * FROM d) AS x)") ||
		die "comparison query failed ($what)"
	IFS='|' read -r dn pn donly ponly <<<"$res"
	if [ "$donly" = 0 ] && [ "$ponly" = 0 ]; then
		echo "   ok: $what: diagnose() and the plain SQL agree ($dn rows)"
	else
		fail "$what: diagnose() $dn rows, plain SQL $pn; $donly only in diagnose(), $ponly only in the plain SQL; first ones:"
		psql_q -F' | ' -c "
			WITH d AS (SELECT $dcols FROM bench_diag WHERE $dwhere),
			     p AS (SELECT $pcols FROM bench_plain WHERE $pwhere)
			(SELECT 'diagnose only', * FROM (SELECT * FROM d EXCEPT ALL SELECT * FROM p) AS x LIMIT 5)
			UNION ALL
			(SELECT 'plain only', * FROM (SELECT * FROM p EXCEPT ALL SELECT * FROM d) AS x LIMIT 5)" |
			cut -c1-400 | sed 's/^/      /' >&2 || true
	fi
done
echo "   not compared (no plain-SQL equivalent: they read pg_connwatch's ledgers and history): CW102, CW110 to CW119, CW140, CW150, CW160, CW161"

# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------
echo "SELECT * FROM connwatch.diagnose();" >"$DIR/diagnose.sql"
# Mean per-call latency in ms of the one statement in FILE, from pgbench -r;
# further arguments go to pgbench (-M prepared).
time_ms() {
	local file=$1 out
	shift
	if ! out=$("$PGBENCH" -n -c 1 -j 1 -T "$DURATION" -r "$@" -f "$file" postgres 2>&1); then
		echo "$out" >&2
		die "pgbench failed on $file"
	fi
	if grep -q 'number of failed transactions: [1-9]' <<<"$out"; then
		echo "$out" >&2
		die "statements failed in $file"
	fi
	awk '/^statement latencies/ { getline; print $1; exit }' <<<"$out"
}
# One call in a new session (psql, \timing): what a person running it once
# waits for, with the PL/pgSQL compilation and the planning of a new backend.
cold_ms() {
	local out
	out=$("$PSQL" -X -q -v ON_ERROR_STOP=1 -o /dev/null -c '\timing on' -f "$1" postgres 2>&1) ||
		{ echo "$out" >&2; die "psql failed on $1"; }
	sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p' <<<"$out" | tail -1
}

echo
echo "== timing: pgbench -n -c 1 -j 1 -T $DURATION -r, $ROUNDS rounds in alternating order, all rows fetched"
echo "   diagnose:     SELECT * FROM connwatch.diagnose();  (its PL/pgSQL plan is cached for the pgbench session)"
echo "   plain:        test/bench/diagnose_plain.sql with -M prepared (planned once per pgbench session, like diagnose())"
echo "   plain simple: the same with the simple protocol (planned at every call)"
echo "   new session:  one call in a new psql session (\\timing), each side, per round"
D_ROUNDS=()
P_ROUNDS=()
PS_ROUNDS=()
R_ROUNDS=()
DC_ROUNDS=()
PC_ROUNDS=()
RC_ROUNDS=()
for ((r = 1; r <= ROUNDS; r++)); do
	if ((r % 2)); then
		d=$(time_ms "$DIR/diagnose.sql")
		p=$(time_ms "$PLAIN" -M prepared)
		ps=$(time_ms "$PLAIN")
		dc=$(cold_ms "$DIR/diagnose.sql")
		pc=$(cold_ms "$PLAIN")
	else
		pc=$(cold_ms "$PLAIN")
		dc=$(cold_ms "$DIR/diagnose.sql")
		ps=$(time_ms "$PLAIN")
		p=$(time_ms "$PLAIN" -M prepared)
		d=$(time_ms "$DIR/diagnose.sql")
	fi
	D_ROUNDS+=("$d")
	P_ROUNDS+=("$p")
	PS_ROUNDS+=("$ps")
	DC_ROUNDS+=("$dc")
	PC_ROUNDS+=("$pc")
	R_ROUNDS+=("$(awk -v a="$p" -v b="$d" 'BEGIN { print a / b }')")
	RC_ROUNDS+=("$(awk -v a="$pc" -v b="$dc" 'BEGIN { print a / b }')")
	printf '   round %d: diagnose() %8.3f ms   plain %8.3f ms   plain simple %8.3f ms   plain/diagnose %6.3f   new session: diagnose() %8.3f ms, plain %8.3f ms\n' \
		"$r" "$d" "$p" "$ps" "${R_ROUNDS[-1]}" "$dc" "$pc"
done
D_MS=$(median "${D_ROUNDS[@]}")
P_MS=$(median "${P_ROUNDS[@]}")
PS_MS=$(median "${PS_ROUNDS[@]}")
DC_MS=$(median "${DC_ROUNDS[@]}")
PC_MS=$(median "${PC_ROUNDS[@]}")
RATIO=$(median "${R_ROUNDS[@]}")
RATIO_C=$(median "${RC_ROUNDS[@]}")
LOAD_TIMING=$(cut -d' ' -f1-3 /proc/loadavg)
bench_check_install "after the timing"

# ---------------------------------------------------------------------------
# --parts: what each source costs alone, and diagnose() under auto_explain
# ---------------------------------------------------------------------------
if [ "$PARTS" = 1 ]; then
	echo
	echo "== parts: each source diagnose() reads, alone (SELECT count(*), pgbench -T $DURATION, one round)"
	PARTS_LIST=(
		"idle_in_transaction()|SELECT count(*) FROM connwatch.idle_in_transaction();"
		"connection_summary()|SELECT count(*) FROM connwatch.connection_summary();"
		"connection_limits()|SELECT count(*) FROM connwatch.connection_limits();"
		"long_transactions('0')|SELECT count(*) FROM connwatch.long_transactions(interval '0');"
		"xmin_horizon|SELECT count(*) FROM connwatch.xmin_horizon;"
		"refused_connections()|SELECT count(*) FROM connwatch.refused_connections();"
		"session_endings()|SELECT count(*) FROM connwatch.session_endings();"
		"peaks()|SELECT count(*) FROM connwatch.peaks();"
		"history(window)|SELECT count(*) FROM connwatch.history(now() - interval '15 min', 'infinity');"
		"history, unnested apps|SELECT count(*) FROM connwatch.history(now() - interval '15 min', 'infinity') AS h, unnest(h.applications, h.application_connections) AS x;"
		"sessions()|SELECT count(*) FROM connwatch.sessions();"
		"pg_stat_activity|SELECT count(*) FROM pg_stat_activity;"
	)
	k=0
	for pl in "${PARTS_LIST[@]}"; do
		k=$((k + 1))
		echo "${pl#*|}" >"$DIR/part.$k.sql"
		printf '   %-26s %9.3f ms\n' "${pl%%|*}" "$(time_ms "$DIR/part.$k.sql")"
	done

	echo
	echo "== one diagnose() call under auto_explain (log_analyze, log_nested_statements, log_timing)"
	MARK=$(wc -l <"$DIR/server.log")
	psql_q >/dev/null <<'SQL' || fail "diagnose() under auto_explain failed"
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_analyze = on;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_timing = on;
SET auto_explain.log_buffers = off;
SELECT count(*) FROM connwatch.diagnose();
SELECT count(*) FROM connwatch.diagnose();
SQL
	sleep 0.5
	tail -n +"$((MARK + 1))" "$DIR/server.log" >"$DIR/diagnose_explain.log"
	# the second call's inner plan (the first plans and caches it)
	awk '/duration: .* plan:/ { n++ } n == 3' "$DIR/diagnose_explain.log" >"$DIR/diagnose_plan.txt"
	echo "   full log: $DIR/diagnose_explain.log (kept with --keep); the second call's RETURN QUERY plan: $DIR/diagnose_plan.txt"
	echo "   $(grep -m1 'duration:' "$DIR/diagnose_plan.txt" | sed 's/.*duration:/duration:/')"
	# The branches of the findings UNION ALL, in order, named by the comment
	# that opens each in the installed script.
	EXTSQL="$("$PG_CONFIG" --sharedir)/extension/pg_connwatch--$(psql_q -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_connwatch'").sql"
	awk '/^    findings AS \(/ { f = 1 } f && (/findings AS \(/ || /^    UNION ALL/) { want = 1; next }
	     f && want && /^    -- CW[0-9]/ { sub(/^    -- /, ""); print; want = 0 } f && /^    \)$/ { exit }' \
		"$EXTSQL" >"$DIR/branches.txt" 2>/dev/null || true
	awk '
	function ind(s) { match(s, /[^ ]/); return RSTART }
	function atime(s,   a) { if (match(s, /actual time=[0-9.]+\.\.[0-9.]+/)) { a = substr(s, RSTART, RLENGTH); sub(/.*\.\./, "", a); return a + 0 } return -1 }
	function loops(s,   a) { if (match(s, /loops=[0-9]+/)) { a = substr(s, RSTART + 6, RLENGTH - 6); return a + 0 } return 1 }
	function rows(s,   a) { if (match(s, /rows=[0-9]+ loops/)) { a = substr(s, RSTART + 5, RLENGTH - 11); return a + 0 } return 0 }
	FNR == NR { label[++nl] = substr($0, 1, 70); next }
	{ gsub(/\t/, " ") }
	/^ *CTE [a-z_]+ *$/ { cte = $2; next }
	cte != "" && /->/ {
		if (cte == "findings") { infind = 1; cte = ""; next }
		printf "     CTE %-14s %9.3f ms  rows %-6d (materialized by its first reader)\n", cte, atime($0) * loops($0), rows($0)
		cte = ""; next
	}
	infind && /->/ {
		i = ind($0)
		if (childind == 0) childind = i
		if (i == childind) {
			nb++
			printf "     branch %-2d %9.3f ms  rows %-6d %s\n", nb, atime($0) * loops($0), rows($0),
				(nb in label) ? label[nb] : "?"
		} else if (i < childind) infind = 0
	}' "$DIR/branches.txt" "$DIR/diagnose_plan.txt" |
		sed '1i\   where the time goes (actual time of each node, ms; a branch includes the CTEs it reads first, and the timing overhead of EXPLAIN ANALYZE):'
fi

# ---------------------------------------------------------------------------
# End: the held sessions must all still be there, no crash
# ---------------------------------------------------------------------------
unset PGOPTIONS
kill "$HOLDER_PID" "$LEAK_PID" 2>/dev/null || true
wait "$HOLDER_PID" || fail "hold_sessions exited with $?"
wait "$LEAK_PID" || fail "hold_sessions (leak) exited with $?"
HOLDER_PID= LEAK_PID=
grep -q "^DONE sessions=$((N - LEAK)) lost=0$" "$DIR/holder.bench.out" ||
	fail "hold_sessions: $(cat "$DIR/holder.bench.out" "$DIR/holder.bench.err")"
grep -q "^DONE sessions=$LEAK lost=0$" "$DIR/holder.leak.out" ||
	fail "hold_sessions (leak): $(cat "$DIR/holder.leak.out" "$DIR/holder.leak.err")"
psql_q -d connwatch_bench -c "ROLLBACK PREPARED '$GID'" >/dev/null || fail "ROLLBACK PREPARED failed"
[ "$(head -1 "$DIR/data/postmaster.pid")" = "$PM" ] || fail "the postmaster changed (a crash?)"
if crash_in_logs "$DIR/server.log"; then
	fail "the server crashed (above)"
fi

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
echo
echo "== Results at $N connections ($(nproc) cores; load average before the run $LOAD_BEFORE, after the timing $LOAD_TIMING; wall time $((SECONDS / 60)) min $((SECONDS % 60)) s)"
echo "   command: $CMDLINE"
echo "   ledgers: refused_connections $R_KEYS keys + overflow, session_endings $E_KEYS keys + overflow, peaks $P_ROWS rows; history $H_ALL samples"
echo "   ms per call: median over $ROUNDS rounds of each round's mean (pgbench -T $DURATION); ratio: median of the rounds' paired ratios"
printf '   %-58s %6s %11s\n' "" rows "ms per call"
printf '   %-58s %6s %11.3f\n' "SELECT * FROM connwatch.diagnose()" "$DIAG_ROWS" "$D_MS"
printf '   %-58s %6s %11.3f\n' "plain SQL (diagnose_plain.sql, -M prepared)" "$PLAIN_ROWS" "$P_MS"
printf '   %-58s %6s %10.2fx\n' "plain / diagnose()" "" "$RATIO"
printf '   %-58s %6s %11.3f\n' "plain SQL, simple protocol (planned at every call)" "$PLAIN_ROWS" "$PS_MS"
printf '   %-58s %6s %11.3f\n' "diagnose(), one call in a new session" "" "$DC_MS"
printf '   %-58s %6s %11.3f\n' "plain SQL, one call in a new session" "" "$PC_MS"
printf '   %-58s %6s %10.2fx\n' "plain / diagnose(), new session" "" "$RATIO_C"
echo "   per round, diagnose():             ${D_ROUNDS[*]}"
echo "   per round, plain SQL (prepared):   ${P_ROUNDS[*]}"
echo "   per round, plain SQL (simple):     ${PS_ROUNDS[*]}"
echo "   per round, diagnose() new session: ${DC_ROUNDS[*]}"
echo "   per round, plain SQL new session:  ${PC_ROUNDS[*]}"
echo "   diagnose() < $TARGET_MS ms at $N connections with full ledgers: $(awk -v d="$D_MS" -v t="$TARGET_MS" 'BEGIN { print (d < t ? "met" : "NOT MET") }') ($D_MS ms; in a new session $DC_MS ms)"
echo "   (the plain SQL answers only CW101, CW103 to CW106, CW120 to CW123 and CW130: the ledger and history"
echo "    questions have no plain-SQL equivalent, so diagnose() does more work than it)"
if [ "$FAILED" = 0 ]; then
	echo "   every check passed"
else
	echo
	echo "!!! correctness problems (see above)" >&2
	exit 1
fi
