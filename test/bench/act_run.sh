#!/usr/bin/env bash
# test/bench/act_run.sh - time pg_connwatch's act layer against what a DBA
# would run instead, at N connections (default 2,000), in one run.
#
#   bash test/bench/act_run.sh [--connections N] [--victims V] [--repeats R]
#                              [--duration S] [--rounds K] [--port P]
#                              [--install] [--keep] [--major NN]
#
# (1) The every-minute case: SELECT count(*) FROM connwatch.enforce() with
#     three enabled policies that match nothing, against one plain-SQL scan
#     of pg_stat_activity with the same conditions (act_enforce.sql); pgbench,
#     K rounds of S seconds each (default 5 x 2 s).
# (2) Terminating V idle-in-transaction sessions (default N/5 = 400) among N:
#     time until every one of them is gone, for (a) connwatch.
#     terminate_idle_in_transaction(), (b) SELECT pg_terminate_backend(pid)
#     FROM pg_stat_activity WHERE ..., (c) a raw kill -TERM loop, each on a
#     freshly opened identical set of V sessions, R times (default 5).
# Run as root (or, on the host's PostgreSQL, as any user that may run a
# cluster).  It installs libpq-dev if missing, builds test/bench/hold_sessions
# and term_timer (nothing else unless --install is given or the extension is
# not installed), and starts a throwaway cluster with scripts/pgcluster.sh.
# Timings never fail the run; a disturbed healthy session, a missing audit
# row, a query error or a disagreement between a function and its SQL
# equivalent does (exit 1).  --major 13, 17 or 18 runs this very script
# inside that major's Debian root file system (scripts/pgroot.sh, built on
# first use), on a copy of the tree, with the extension built and installed
# there (as root); 15, the default, is the host's.  See test/bench/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}

CONNECTIONS=2000
VICTIMS=
REPEATS=5
DURATION=2
ROUNDS=5
PORT=${BENCH_PORT:-55302}
INSTALL=auto
KEEP=0
MAJOR=15

# usage, die, psql_q and the bench_* setup functions
. "$HERE/lib.sh"

ARGS=("$@")
while [ $# -gt 0 ]; do
	bench_common_arg "$@"
	if [ "$SHIFT" -gt 0 ]; then
		shift "$SHIFT"
		continue
	fi
	case "$1" in
	--victims) VICTIMS=${2:?}; shift 2 ;;
	--victims=*) VICTIMS=${1#*=}; shift ;;
	--repeats) REPEATS=${2:?}; shift 2 ;;
	--repeats=*) REPEATS=${1#*=}; shift ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done

[[ $CONNECTIONS =~ ^[0-9]+$ ]] && [ "$CONNECTIONS" -ge 100 ] ||
	die "--connections must be an integer >= 100"
[ -n "$VICTIMS" ] || VICTIMS=$((CONNECTIONS / 5))
[[ $VICTIMS =~ ^[0-9]+$ ]] && [ "$VICTIMS" -ge 1 ] &&
	[ "$VICTIMS" -le $((CONNECTIONS / 2)) ] ||
	die "--victims must be an integer between 1 and half the connections"
for v in REPEATS DURATION ROUNDS; do
	[[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] || die "--${v,,} must be an integer >= 1"
done

# The population: V victims (leak_iit) and N - V healthy sessions.
BATCH_IDLE=$((CONNECTIONS / 20))		# batch_idle: idle, matched by no policy (young)
HEALTHY_IIT=$((CONNECTIONS / 10))		# bench_iit (+ bench_locker): idle in transaction, another application
ACTIVE=$((CONNECTIONS / 40))			# bench_active: SELECT pg_sleep(3600)
WAITING=$((CONNECTIONS / 40))			# bench_waiting: queued behind bench_locker's lock
IDLE=$((CONNECTIONS - VICTIMS - BATCH_IDLE - HEALTHY_IIT - ACTIVE - WAITING))
HEALTHY=$((CONNECTIONS - VICTIMS))
[ "$IDLE" -ge 0 ] || die "too many victims for $CONNECTIONS connections"

# Another major: this script again, inside its root (does not return).
bench_major "${ARGS[@]}"

# ---------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------
bench_prerequisites

bench_build hold_sessions term_timer
HOLDER=$HERE/hold_sessions
TIMER=$HERE/term_timer

# The holders keep one socket per session open.
bench_raise_nofile $((CONNECTIONS + 256))

# ---------------------------------------------------------------------------
# Cluster
# ---------------------------------------------------------------------------
DIR=$(mktemp -d /tmp/connwatch_actbench.XXXXXX)
chmod 755 "$DIR"
HOLDER_PIDS=()
LEAK_PID=
cleanup() {
	local rc=$? p
	for p in "${HOLDER_PIDS[@]}" $LEAK_PID; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	bench_stop_cluster "$rc"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

MAX_CONNECTIONS=$((CONNECTIONS + 100))
echo "== $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cores, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
# autovacuum off: no process but the held ones may come or go.
bench_start_cluster "$MAX_CONNECTIONS"

psql_q -d postgres <<'SQL' || die "setup SQL failed"
CREATE EXTENSION pg_connwatch;
CREATE ROLE bench_web LOGIN;
CREATE ROLE bench_worker LOGIN;
CREATE ROLE bench_report LOGIN;
CREATE ROLE bench_batch LOGIN;
CREATE DATABASE connwatch_bench;
-- The every-minute policies: none matches a session of this benchmark.
INSERT INTO connwatch.policies (name, state, older_than)
    VALUES ('leaked_transactions', 'idle in transaction', '1 hour');
INSERT INTO connwatch.policies (name, state, older_than, application_name)
    VALUES ('stale_batch', 'idle', '1 day', 'batch%');
INSERT INTO connwatch.policies (name, state, older_than, age_of)
    VALUES ('runaway_transactions', 'active', '1 hour', 'transaction');
SQL
psql_q -d connwatch_bench <<'SQL' || die "setup SQL failed"
CREATE TABLE bench_data AS SELECT g AS id, md5(g::text) AS payload
    FROM generate_series(1, 1000) AS g;
CREATE TABLE bench_lock (id integer);
GRANT ALL ON bench_data, bench_lock TO PUBLIC;
SQL
ROLES=bench_web,bench_worker,bench_report,bench_batch

FAILED=0
fail() {
	FAILED=1
	echo "!!! $*" >&2
}

# Start a holder in the background; waits until it is ready.
#   start_holder NAME [hold_sessions options...]   (sets STARTED_PID)
start_holder() {
	local name=$1 i
	shift
	rm -f "$DIR/ready.$name"
	"$HOLDER" --host "$DIR" --port "$PORT" --dbname connwatch_bench \
		--roles "$ROLES" --ready-file "$DIR/ready.$name" "$@" \
		>"$DIR/holder.$name.out" 2>"$DIR/holder.$name.err" &
	STARTED_PID=$!
	for ((i = 0; i < 6000; i++)); do
		[ -f "$DIR/ready.$name" ] && return 0
		if ! kill -0 "$STARTED_PID" 2>/dev/null; then
			cat "$DIR/holder.$name.err" >&2
			die "hold_sessions ($name) failed to open its sessions"
		fi
		sleep 0.1
	done
	die "hold_sessions ($name) not ready after 600 s"
}

# Poll pg_stat_activity until QUERY returns EXPECTED (60 s at most).
wait_for() {
	local query=$1 expected=$2 what=$3 i got
	for ((i = 0; i < 600; i++)); do
		got=$(psql_q -c "$query")
		[ "$got" = "$expected" ] && return 0
		sleep 0.1
	done
	die "$what: got '$got', expected '$expected'"
}

# What the healthy sessions look like: counts per kind, and a digest of
# their identities (pid, backend_start).
HEALTHY_COUNTS="
	count(*) FILTER (WHERE application_name = 'bench_idle' AND state = 'idle'),
	count(*) FILTER (WHERE application_name = 'batch_idle' AND state = 'idle'),
	count(*) FILTER (WHERE application_name IN ('bench_iit', 'bench_locker')
	                   AND state = 'idle in transaction'),
	count(*) FILTER (WHERE application_name = 'bench_active' AND wait_event = 'PgSleep'),
	count(*) FILTER (WHERE application_name = 'bench_waiting' AND wait_event_type = 'Lock'),
	count(*)"
HEALTHY_FROM="
	FROM pg_stat_activity
	WHERE application_name IN ('bench_idle', 'batch_idle', 'bench_iit', 'bench_locker',
	                           'bench_active', 'bench_waiting')"
HEALTHY_QUERY="SELECT $HEALTHY_COUNTS,
	md5(string_agg(pid::text || '@' || backend_start::text, ',' ORDER BY pid)) $HEALTHY_FROM"
HEALTHY_EXPECTED="$IDLE|$BATCH_IDLE|$HEALTHY_IIT|$ACTIVE|$WAITING|$HEALTHY"
LEAK_COUNT_QUERY="SELECT count(*) FROM pg_stat_activity
	WHERE application_name = 'leak_iit' AND state = 'idle in transaction'"

echo "== $CONNECTIONS sessions: $HEALTHY healthy ($IDLE bench_idle, $BATCH_IDLE batch_idle, $HEALTHY_IIT bench_iit idle in transaction (1 holds a lock), $ACTIVE bench_active, $WAITING bench_waiting) + $VICTIMS leak_iit idle in transaction"
start_holder bench --idle "$IDLE" --iit "$HEALTHY_IIT" --active "$ACTIVE" \
	--waiting "$WAITING" --prefix bench
HOLDER_PIDS+=("$STARTED_PID")
start_holder batch --idle "$BATCH_IDLE" --prefix batch
HOLDER_PIDS+=("$STARTED_PID")

# Open the victims: a fresh holder of VICTIMS idle-in-transaction sessions
# (application_name leak_iit) that expects the server to end them.
open_victims() {
	start_holder leak --iit "$VICTIMS" --prefix leak --expect-termination
	LEAK_PID=$STARTED_PID
	wait_for "$LEAK_COUNT_QUERY" "$VICTIMS" "leak_iit sessions idle in transaction"
}

open_victims
wait_for "SELECT $HEALTHY_COUNTS $HEALTHY_FROM" "$HEALTHY_EXPECTED" "healthy sessions"
# every held transaction at least a second old
wait_for "SELECT count(*) FROM pg_stat_activity WHERE now() - state_change < interval '1 s'
          AND application_name LIKE ANY (ARRAY['bench\_%', 'batch\_%', 'leak\_%'])" 0 \
	"sessions younger than 1 s"
HEALTHY_BEFORE=$(psql_q -F'|' -c "$HEALTHY_QUERY")
echo "   in place: $(psql_q -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'") client backends"

# ---------------------------------------------------------------------------
# (1) The every-minute case
# ---------------------------------------------------------------------------
echo
echo "== (1) every-minute enforcement, 3 policies, nothing to terminate, $CONNECTIONS sessions"
psql_q -c "SELECT name, state, older_than, age_of, coalesce(application_name, '-')
           FROM connwatch.policies ORDER BY name COLLATE \"C\"" | sed 's/^/   policy: /'

# Correctness: nothing matches now, and with every threshold at 0 the
# policies (dry run) and the SQL select exactly the same sessions.
SQL_EQ=$(sed -e '/^--/d' -e 's/;[[:space:]]*$//' "$HERE/act_enforce.sql")
SQL_EQ0=$(sed -e "s/interval '[^']*'/interval '0'/g" <<<"$SQL_EQ")
res=$(psql_q -F'|' -c "SELECT (SELECT count(*) FROM connwatch.enforce()),
                              (SELECT count(*) FROM ($SQL_EQ) AS q)") ||
	die "enforce() or its SQL equivalent failed"
[ "$res" = "0|0" ] || fail "(1) expected nothing to terminate, got enforce|SQL = $res"
EXPECTED_MATCHES=$((HEALTHY_IIT + VICTIMS + BATCH_IDLE + ACTIVE + WAITING))
res=$(psql_q -F'|' <<SQL
BEGIN;
UPDATE connwatch.policies SET older_than = '0';
SET LOCAL connwatch.max_terminations_per_run = 1000000;
CREATE TEMP TABLE e AS SELECT pid FROM connwatch.enforce(dry_run => true)
    WHERE pid <> pg_backend_pid();
CREATE TEMP TABLE s AS $SQL_EQ0;
SELECT (SELECT count(*) FROM e), (SELECT count(*) FROM s),
       (SELECT count(*) FROM (SELECT pid FROM e EXCEPT ALL SELECT pid FROM s) AS d),
       (SELECT count(*) FROM (SELECT pid FROM s EXCEPT ALL SELECT pid FROM e) AS d);
ROLLBACK;
SQL
) || die "zero-threshold cross-check failed"
echo "   cross-check with every threshold at 0: enforce(dry_run) rows | SQL rows | only enforce | only SQL = $res"
[ "$res" = "$EXPECTED_MATCHES|$EXPECTED_MATCHES|0|0" ] ||
	fail "(1) at threshold 0, enforce(dry_run) and the SQL equivalent should both select the same $EXPECTED_MATCHES sessions"

echo "SELECT count(*) FROM connwatch.enforce();" >"$DIR/enforce.sql"

time_ms() {
	local file=$1 out
	if ! out=$("$PGBENCH" -n -c 1 -j 1 -T "$DURATION" -r -f "$file" postgres 2>&1); then
		echo "$out" >&2
		die "pgbench failed on $file"
	fi
	if grep -q 'number of failed transactions: [1-9]' <<<"$out"; then
		echo "$out" >&2
		die "statements failed in $file"
	fi
	awk '/^statement latencies/ { getline; print $1; exit }' <<<"$out"
}

median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

E_ROUNDS=()
S_ROUNDS=()
R_ROUNDS=()
for ((r = 1; r <= ROUNDS; r++)); do
	if ((r % 2)); then
		e=$(time_ms "$DIR/enforce.sql")
		s=$(time_ms "$HERE/act_enforce.sql")
	else
		s=$(time_ms "$HERE/act_enforce.sql")
		e=$(time_ms "$DIR/enforce.sql")
	fi
	E_ROUNDS+=("$e")
	S_ROUNDS+=("$s")
	R_ROUNDS+=("$(awk -v a="$s" -v b="$e" 'BEGIN { print a / b }')")
	printf '   round %d: enforce() %8.3f ms   SQL %8.3f ms\n' "$r" "$e" "$s"
done
ENFORCE_MS=$(median "${E_ROUNDS[@]}")
SCAN_MS=$(median "${S_ROUNDS[@]}")
ENFORCE_RATIO=$(median "${R_ROUNDS[@]}")
res=$(psql_q -c "SELECT count(*) FROM connwatch.terminations")
[ "$res" = 0 ] || fail "(1) enforce() terminated something: $res audit rows"
bench_check_install "after (1)"

# ---------------------------------------------------------------------------
# (2) Terminating the victims
# ---------------------------------------------------------------------------
echo
echo "== (2) terminating $VICTIMS idle-in-transaction sessions (leak_iit) among $CONNECTIONS, $REPEATS times per method"
SQL_A="SELECT count(*) FROM connwatch.terminate_idle_in_transaction('0', application_name => 'leak%')"
SQL_B="SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'idle in transaction' AND application_name LIKE 'leak%'"
echo "   (a) $SQL_A"
echo "       session set up with: SET connwatch.max_terminations_per_run = 1000 (the default budget, 50, would stop at 50)"
echo "   (b) $SQL_B"
echo "   (c) kill(pid, SIGTERM) for each pid, in a loop"
echo "   gone = every target process exited and reaped; exited = every target exited (pidfd)"

declare -A GONE EXITED STMT
METHODS=(a b c)

# One trial: the current victims are terminated by METHOD and checked.
trial() {
	local method=$1 rep=$2 out audit_before audit_after lost healthy_after leak_rc i
	psql_q -c "SELECT pid FROM pg_stat_activity
	           WHERE application_name = 'leak_iit' AND state = 'idle in transaction'" \
		>"$DIR/targets"
	[ "$(wc -l <"$DIR/targets")" = "$VICTIMS" ] || die "expected $VICTIMS target pids"
	targets="{$(paste -sd, "$DIR/targets")}"
	audit_before=$(psql_q -c "SELECT count(*) FROM connwatch.terminations")
	healthy=$(psql_q -F'|' -c "$HEALTHY_QUERY")
	[ "$healthy" = "$HEALTHY_BEFORE" ] || fail "healthy sessions changed before trial $method$rep: $healthy"
	# let the victims' backends settle (the last ones were just started)
	sleep 1
	case "$method" in
	a)
		out=$("$TIMER" --host "$DIR" --port "$PORT" --dbname postgres --pids "$DIR/targets" \
			--setup "SELECT count(*) FROM connwatch.terminate_idle_in_transaction('1 day', dry_run => true)" \
			--setup "SET connwatch.max_terminations_per_run = 1000" \
			--sql "$SQL_A") || die "trial $method$rep failed"
		;;
	b)
		out=$("$TIMER" --host "$DIR" --port "$PORT" --dbname postgres --pids "$DIR/targets" \
			--setup "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' AND application_name LIKE 'nothing%'" \
			--sql "$SQL_B") || die "trial $method$rep failed"
		;;
	c)
		out=$("$TIMER" --pids "$DIR/targets" --kill) || die "trial $method$rep failed"
		;;
	esac
	# the victims' holder exits by itself once it has lost every session
	for ((i = 0; i < 300; i++)); do
		kill -0 "$LEAK_PID" 2>/dev/null || break
		sleep 0.1
	done
	leak_rc=0
	wait "$LEAK_PID" 2>/dev/null || leak_rc=$?
	LEAK_PID=
	lost=$(cat "$DIR/holder.leak.out" | grep -E '^(LOST|DONE)' || true)
	[ "$leak_rc" = 0 ] && [ "$lost" = "LOST sessions=$VICTIMS lost=$VICTIMS" ] ||
		fail "trial $method$rep: the victims' holder reported '$lost' (exit $leak_rc), expected all $VICTIMS lost"
	for p in "${HOLDER_PIDS[@]}"; do
		kill -0 "$p" 2>/dev/null ||
			{ cat "$DIR"/holder.bench.err "$DIR"/holder.batch.err >&2; die "trial $method$rep: a healthy holder lost a session"; }
	done
	healthy_after=$(psql_q -F'|' -c "$HEALTHY_QUERY")
	[ "$healthy_after" = "$HEALTHY_BEFORE" ] ||
		fail "trial $method$rep: healthy sessions disturbed: before $HEALTHY_BEFORE, after $healthy_after"
	[ "$(psql_q -c "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'leak%'")" = 0 ] ||
		fail "trial $method$rep: leak sessions left"
	audit_after=$(psql_q -c "SELECT count(*) FROM connwatch.terminations")
	if [ "$method" = a ]; then
		res=$(psql_q -c "
			SELECT count(DISTINCT pid) FROM connwatch.terminations
			WHERE pid = ANY ('$targets'::int[]) AND action = 'terminated'
			  AND application_name = 'leak_iit' AND state = 'idle in transaction'
			  AND policy IS NULL AND invoked_by = 'postgres'
			  AND logged_at > now() - interval '1 min'")
		[ "$((audit_after - audit_before))" = "$VICTIMS" ] && [ "$res" = "$VICTIMS" ] ||
			fail "trial $method$rep: connwatch.terminations got $((audit_after - audit_before)) rows ($res for the targets), expected $VICTIMS"
		grep -q "^stmt_ms=.* first=$VICTIMS " <<<"$out" ||
			fail "trial $method$rep: terminate_idle_in_transaction() returned '$out', expected $VICTIMS rows"
	else
		[ "$audit_after" = "$audit_before" ] ||
			fail "trial $method$rep: connwatch.terminations changed without connwatch"
	fi
	if [ "$method" = b ]; then
		grep -q "^stmt_ms=.* rows=$VICTIMS first=t true=$VICTIMS$" <<<"$out" ||
			fail "trial $method$rep: the SQL idiom returned '$out', expected $VICTIMS rows, all true"
	fi
	GONE[$method]+=" $(sed -E 's/.*gone_ms=([0-9.]+).*/\1/' <<<"$out")"
	EXITED[$method]+=" $(sed -E 's/.*exited_ms=([0-9.]+).*/\1/' <<<"$out")"
	STMT[$method]+=" $(sed -E 's/.*stmt_ms=([0-9.]+).*/\1/' <<<"$out")"
	printf '   %s%d: %s   healthy %s/%s unchanged, victims lost %s/%s, audit rows +%d\n' \
		"$method" "$rep" "$out" "$(cut -d'|' -f6 <<<"$healthy_after")" "$HEALTHY" \
		"$(sed -E 's/.*lost=//' <<<"$lost")" "$VICTIMS" "$((audit_after - audit_before))"
}

# The victims of (1) go first: every trial gets a freshly opened set.
kill "$LEAK_PID"
wait "$LEAK_PID" 2>/dev/null || true
LEAK_PID=
wait_for "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'leak%'" 0 "closing the first victims"

for ((rep = 1; rep <= REPEATS; rep++)); do
	for ((k = 0; k < 3; k++)); do
		# rotate the order: a b c, b c a, c a b, ...
		method=${METHODS[$(((k + rep - 1) % 3))]}
		open_victims
		trial "$method" "$rep"
	done
done

bench_check_install "after (2)"

# The healthy holders must have lost nothing from start to end.
HOLDERS_DONE=""
for name in bench batch; do
	p=${HOLDER_PIDS[0]}
	HOLDER_PIDS=("${HOLDER_PIDS[@]:1}")
	kill "$p"
	rc=0
	wait "$p" || rc=$?
	done_line=$(grep '^DONE' "$DIR/holder.$name.out" || true)
	[ "$rc" = 0 ] && [[ $done_line =~ ^DONE\ sessions=[0-9]+\ lost=0$ ]] ||
		fail "healthy holder $name: '$done_line' (exit $rc), expected lost=0"
	HOLDERS_DONE+="${HOLDERS_DONE:+, }$name: $done_line"
done

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
declare -A GONE_MED EXITED_MED STMT_MED
for m in "${METHODS[@]}"; do
	# shellcheck disable=SC2086
	GONE_MED[$m]=$(median ${GONE[$m]})
	# shellcheck disable=SC2086
	EXITED_MED[$m]=$(median ${EXITED[$m]})
	# shellcheck disable=SC2086
	STMT_MED[$m]=$(median ${STMT[$m]})
done
RATIO_AB=$(awk -v a="${GONE_MED[a]}" -v b="${GONE_MED[b]}" 'BEGIN { print a / b }')
RATIO_AC=$(awk -v a="${GONE_MED[a]}" -v c="${GONE_MED[c]}" 'BEGIN { print a / c }')

echo
echo "== Results at $CONNECTIONS connections ($(nproc) cores; load average now $(cut -d' ' -f1-3 /proc/loadavg))"
echo "(1) every-minute case, ms per call (median of $ROUNDS rounds of $DURATION s; ratio: median of the rounds' paired ratios)"
printf '    %-58s %9.3f ms\n' "SELECT count(*) FROM connwatch.enforce()  [3 policies]" "$ENFORCE_MS"
printf '    %-58s %9.3f ms\n' "one scan of pg_stat_activity, same conditions" "$SCAN_MS"
printf '    %-58s %8.2fx   target >= 10x at 2,000: %s\n' "SQL / enforce()" "$ENFORCE_RATIO" \
	"$(awk -v r="$ENFORCE_RATIO" 'BEGIN { print (r >= 10 ? "met" : "MISSED") }')"
echo "(2) terminating $VICTIMS of $CONNECTIONS, ms from the statement until all gone (median of $REPEATS; exited = all exited, statement = until it returned)"
printf '    %-50s %9s %9s %9s   %s\n' method "gone" "exited" "statement" "gone, each run"
for m in "${METHODS[@]}"; do
	case "$m" in
	a) label="(a) connwatch.terminate_idle_in_transaction" ;;
	b) label="(b) pg_terminate_backend() over pg_stat_activity" ;;
	c) label="(c) raw kill -TERM loop" ;;
	esac
	printf '    %-50s %9.1f %9.1f %9.1f   %s\n' "$label" "${GONE_MED[$m]}" "${EXITED_MED[$m]}" \
		"${STMT_MED[$m]}" "${GONE[$m]# }"
done
printf '    %-50s %8.2fx   target <= 1.2x at 2,000: %s\n' "(a) / (b)" "$RATIO_AB" \
	"$(awk -v r="$RATIO_AB" 'BEGIN { print (r <= 1.2 ? "met" : "MISSED") }')"
printf '    %-50s %8.2fx\n' "(a) / (c)" "$RATIO_AC"
echo "    healthy holders at the end: $HOLDERS_DONE"
echo "    wall time of this run: $((SECONDS / 60)) min $((SECONDS % 60)) s"
if [ "$FAILED" = 0 ]; then
	echo "    healthy sessions disturbed: 0 of $HEALTHY in every run (pid, backend_start and state of each); connwatch.terminations: exactly $VICTIMS rows per run of (a), none for (b) and (c)"
fi

if [ "$FAILED" != 0 ]; then
	echo
	echo "!!! correctness problems (see above)" >&2
	exit 1
fi
