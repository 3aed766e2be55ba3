#!/usr/bin/env bash
# test/bench/run.sh - time pg_connwatch's views against the plain SQL a
# careful DBA would write over pg_stat_activity, at several connection counts.
#
#   bash test/bench/run.sh [--connections N] [--levels A,B,C] [--duration S]
#                          [--rounds R] [--port P] [--install] [--keep]
#                          [--major NN]
#
# Run as root (or, on the host's PostgreSQL, as any user that may run a
# cluster).  It installs libpq-dev if missing, builds
# test/bench/hold_sessions (nothing else is built unless --install is given
# or the extension is not installed), starts a throwaway cluster with
# scripts/pgcluster.sh, and for each level (default N/10, N/2, N) opens that
# many sessions (75 % idle, 20 % idle in transaction, 2.5 % active, 2.5 %
# waiting on a lock), checks that each view and its SQL equivalent return
# the same rows, times both with pgbench (R rounds of S seconds per query,
# default 5 x 2 s), and prints a table.  Timings never fail the run; setup
# failures, query errors and row-count mismatches do (exit 1).  --major 13,
# 17 or 18 runs this very script inside that major's Debian root file system
# (scripts/pgroot.sh, built on first use), on a copy of the tree, with the
# extension built and installed there (as root); 15, the default, is the
# host's.  See test/bench/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}

CONNECTIONS=2000
LEVELS=
DURATION=2
ROUNDS=5
PORT=${BENCH_PORT:-55301}
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
	--levels) LEVELS=${2:?}; shift 2 ;;
	--levels=*) LEVELS=${1#*=}; shift ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done

[[ $CONNECTIONS =~ ^[0-9]+$ ]] && [ "$CONNECTIONS" -ge 40 ] ||
	die "--connections must be an integer >= 40"
[[ $DURATION =~ ^[0-9]+$ ]] && [ "$DURATION" -ge 1 ] ||
	die "--duration must be a whole number of seconds >= 1"
[[ $ROUNDS =~ ^[0-9]+$ ]] && [ "$ROUNDS" -ge 1 ] ||
	die "--rounds must be an integer >= 1"
if [ -z "$LEVELS" ]; then
	LEVELS="$((CONNECTIONS / 10)),$((CONNECTIONS / 2)),$CONNECTIONS"
fi
IFS=, read -r -a LEVEL_LIST <<<"$LEVELS"
MAX_LEVEL=0
for n in "${LEVEL_LIST[@]}"; do
	[[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 40 ] || die "every level must be an integer >= 40 (got '$n')"
	[ "$n" -gt "$MAX_LEVEL" ] && MAX_LEVEL=$n
done

# Another major: this script again, inside its root (does not return).
bench_major "${ARGS[@]}"

# ---------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------
bench_prerequisites

bench_build hold_sessions
HOLDER=$HERE/hold_sessions

# The holder keeps one socket per session open.
bench_raise_nofile $((MAX_LEVEL + 256))

# ---------------------------------------------------------------------------
# Cluster
# ---------------------------------------------------------------------------
DIR=$(mktemp -d /tmp/connwatch_bench.XXXXXX)
chmod 755 "$DIR"
HOLDER_PID=
cleanup() {
	local rc=$?
	if [ -n "$HOLDER_PID" ]; then
		kill "$HOLDER_PID" 2>/dev/null || true
		wait "$HOLDER_PID" 2>/dev/null || true
	fi
	bench_stop_cluster "$rc"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

MAX_CONNECTIONS=$((MAX_LEVEL + 100))
echo "== $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cores, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
# autovacuum off: the population of backends must not change between the
# correctness checks' two reads.  Everything else keeps its default
# (track_activity_query_size = 1024, max_locks_per_transaction = 64).
bench_start_cluster "$MAX_CONNECTIONS"
# The sessions the benchmark holds are seconds old: let long_transactions see
# them (the SQL equivalent uses the same 1 second).
export PGOPTIONS="-c connwatch.long_transaction_threshold=1s"

psql_q -d postgres <<'SQL' || die "setup SQL failed"
CREATE EXTENSION pg_connwatch;
-- Roles the held sessions log in as: two with a CONNECTION LIMIT, one
-- limited role without sessions (it still has a limits/headroom row).
CREATE ROLE bench_web LOGIN;
CREATE ROLE bench_worker LOGIN CONNECTION LIMIT 5000;
CREATE ROLE bench_report LOGIN CONNECTION LIMIT 3000;
CREATE ROLE bench_batch LOGIN;
CREATE ROLE bench_unused LOGIN CONNECTION LIMIT 10;
CREATE DATABASE connwatch_bench CONNECTION LIMIT 10000;
SQL
psql_q -d connwatch_bench <<'SQL' || die "setup SQL failed"
CREATE TABLE bench_data AS SELECT g AS id, md5(g::text) AS payload
    FROM generate_series(1, 1000) AS g;
CREATE TABLE bench_lock (id integer);
GRANT ALL ON bench_data, bench_lock TO PUBLIC;
SQL
ROLES=bench_web,bench_worker,bench_report,bench_batch

# ---------------------------------------------------------------------------
# The views and their equivalents
# ---------------------------------------------------------------------------
# name|view|SQL file|columns compared row by row (same expression both sides)
SORTED='ARRAY(SELECT x FROM unnest(%s) AS x ORDER BY x)'
CASES=(
	"sessions|sessions|sessions.sql|"
	"sessions (full SQL)|sessions|sessions_full.sql|pid, backend_type, datname, usename, application_name, state, CASE WHEN backend_type = 'client backend' THEN wait_event_type END, backend_xid, backend_xmin, xmin_age, $(printf "$SORTED" blocked_by), query"
	"idle_in_transaction|idle_in_transaction|idle_in_transaction.sql|pid, usename, application_name, state, backend_xid, backend_xmin, xmin_age, holds_xmin, locks_held, $(printf "$SORTED" "coalesce(blocking, '{}')"), query"
	"long_transactions|long_transactions|long_transactions.sql|pid, usename, application_name, state, backend_xid, backend_xmin, xmin_age, $(printf "$SORTED" "coalesce(blocking, '{}')"), query"
	"connection_limits|connection_limits|connection_limits.sql|scope, name, used, max, headroom, pct_used, status"
	"connection_headroom|connection_headroom|connection_headroom.sql|rolname, superuser, can_use_reserved, role_limit, used, headroom, binding_limit"
	"connection_summary|connection_summary|connection_summary.sql|datname, usename, application_name, client_addr, total, active, idle, idle_in_transaction, idle_in_transaction_aborted, other, insufficient_privilege, waiting"
	"xmin_horizon|xmin_horizon|xmin_horizon.sql|holder_type, holder, pid, xmin, xmin_age"
)

for c in "${CASES[@]}"; do
	IFS='|' read -r _ view file _ <<<"$c"
	[ -f "$HERE/$file" ] || die "missing $HERE/$file"
	echo "SELECT * FROM connwatch.$view;" >"$DIR/view_$view.sql"
done

# The SQL file as a subquery: its one statement without the semicolon.
as_subquery() {
	sed -e 's/;[[:space:]]*$//' "$HERE/$1"
}

# Mean per-call latency in ms of the one statement in FILE, from pgbench -r.
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

MISMATCH=0
declare -A VIEW_MS SQL_MS RATIO ROWS

# ---------------------------------------------------------------------------
# One level
# ---------------------------------------------------------------------------
run_level() {
	local n=$1
	local active=$((n / 40)) waiting=$((n / 40))
	local iit=$((n / 5))
	local idle=$((n - iit - active - waiting))
	local ready=$DIR/ready.$n i counts expected

	echo
	echo "== $n sessions: $idle idle, $iit idle in transaction (1 holds a lock), $active active, $waiting waiting on the lock"
	rm -f "$ready"
	"$HOLDER" --host "$DIR" --port "$PORT" --dbname connwatch_bench \
		--roles "$ROLES" --idle "$idle" --iit "$iit" --active "$active" \
		--waiting "$waiting" --prefix bench --ready-file "$ready" \
		>"$DIR/holder.$n.out" 2>"$DIR/holder.$n.err" &
	HOLDER_PID=$!
	for ((i = 0; i < 6000; i++)); do
		[ -f "$ready" ] && break
		if ! kill -0 "$HOLDER_PID" 2>/dev/null; then
			cat "$DIR/holder.$n.err" >&2
			HOLDER_PID=
			die "hold_sessions failed to open $n sessions"
		fi
		sleep 0.1
	done
	[ -f "$ready" ] || die "hold_sessions not ready after 600 s"
	cat "$DIR/holder.$n.out"

	# The server's view must show exactly the mix, and every held
	# transaction must be older than the 1 s long-transaction threshold.
	expected="$idle|$iit|$active|$waiting|0"
	for ((i = 0; i < 600; i++)); do
		counts=$(psql_q -c "
			SELECT count(*) FILTER (WHERE application_name = 'bench_idle' AND state = 'idle'),
			       count(*) FILTER (WHERE application_name IN ('bench_iit', 'bench_locker')
			                          AND state = 'idle in transaction'),
			       count(*) FILTER (WHERE application_name = 'bench_active' AND wait_event = 'PgSleep'),
			       count(*) FILTER (WHERE application_name = 'bench_waiting' AND wait_event_type = 'Lock'),
			       count(*) FILTER (WHERE application_name LIKE 'bench\_%'
			                          AND now() - xact_start < interval '1.5 s')
			FROM pg_stat_activity")
		[ "$counts" = "$expected" ] && break
		sleep 0.1
	done
	[ "$counts" = "$expected" ] ||
		die "server shows idle|iit|active|waiting|young = $counts, expected $expected"

	# Correctness first: same rows from the view and from its equivalent.
	local c name view file cols vq sq res vr sr vo so
	for c in "${CASES[@]}"; do
		IFS='|' read -r name view file cols <<<"$c"
		sq=$(as_subquery "$file")
		if [ -z "$cols" ]; then
			res=$(psql_q -F'|' -c "
				SELECT (SELECT count(*) FROM connwatch.$view),
				       (SELECT count(*) FROM ($sq) AS q), 0, 0") ||
				die "check query for $name failed"
		else
			res=$(psql_q -F'|' -c "
				WITH v AS (SELECT $cols FROM connwatch.$view),
				     s AS (SELECT $cols FROM ($sq) AS q)
				SELECT (SELECT count(*) FROM v), (SELECT count(*) FROM s),
				       (SELECT count(*) FROM (SELECT * FROM v EXCEPT ALL SELECT * FROM s) AS d),
				       (SELECT count(*) FROM (SELECT * FROM s EXCEPT ALL SELECT * FROM v) AS d)") ||
				die "check query for $name failed"
		fi
		IFS='|' read -r vr sr vo so <<<"$res"
		ROWS[$name,$n]=$vr
		if [ "$vr" != "$sr" ]; then
			MISMATCH=1
			echo "!!! MISMATCH: $name at $n sessions: view returns $vr rows, SQL equivalent $sr" >&2
		fi
		if [ "$vo" != 0 ] || [ "$so" != 0 ]; then
			echo "!!! CONTENT DIFFERS: $name at $n sessions: $vo rows only in the view, $so only in the SQL equivalent; first ones:" >&2
			psql_q -F' | ' -c "
				WITH v AS (SELECT $cols FROM connwatch.$view),
				     s AS (SELECT $cols FROM ($sq) AS q)
				(SELECT 'view only' AS side, * FROM (SELECT * FROM v EXCEPT ALL SELECT * FROM s) AS d LIMIT 5)
				UNION ALL
				(SELECT 'sql only', * FROM (SELECT * FROM s EXCEPT ALL SELECT * FROM v) AS d LIMIT 5)" >&2 || true
		fi
	done

	# Timings: ROUNDS rounds, each timing every view and its equivalent
	# back to back (in alternating order), so that a disturbance from other
	# work on the machine hits both sides of a pair alike.  Kept: the median
	# of the rounds' mean per-call latencies for each side, and the median of
	# the rounds' paired ratios.
	local vms sms vr sr r
	declare -A vrounds srounds rrounds
	for ((r = 1; r <= ROUNDS; r++)); do
		for c in "${CASES[@]}"; do
			IFS='|' read -r name view file cols <<<"$c"
			if ((r % 2)); then
				vr=$(time_ms "$DIR/view_$view.sql")
				sr=$(time_ms "$HERE/$file")
			else
				sr=$(time_ms "$HERE/$file")
				vr=$(time_ms "$DIR/view_$view.sql")
			fi
			vrounds[$name]+=" $vr"
			srounds[$name]+=" $sr"
			rrounds[$name]+=" $(awk -v a="$sr" -v b="$vr" 'BEGIN { print a / b }')"
		done
	done
	for c in "${CASES[@]}"; do
		IFS='|' read -r name view file cols <<<"$c"
		vms=$(median ${vrounds[$name]})
		sms=$(median ${srounds[$name]})
		VIEW_MS[$name,$n]=$vms
		SQL_MS[$name,$n]=$sms
		RATIO[$name,$n]=$(median ${rrounds[$name]})
		echo "${name}|${n}|${vrounds[$name]# }|${srounds[$name]# }" >>"$DIR/rounds.txt"
		printf '   %-22s rows %5s   view %9.3f ms   SQL %9.3f ms   SQL/view %6.2fx\n' \
			"$name" "${ROWS[$name,$n]}" "$vms" "$sms" "${RATIO[$name,$n]}"
	done

	bench_check_install "at $n sessions"

	kill "$HOLDER_PID" 2>/dev/null || true
	wait "$HOLDER_PID" 2>/dev/null || true
	HOLDER_PID=
	# Nothing of this level may survive into the next one.
	psql_q -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
	           WHERE application_name LIKE 'bench\_%'" >/dev/null
	for ((i = 0; i < 600; i++)); do
		[ "$(psql_q -c "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'bench\_%'")" = 0 ] && break
		sleep 0.1
	done
}

echo "== pgbench, 1 client, $ROUNDS rounds of $DURATION s per query, all rows fetched"
for n in "${LEVEL_LIST[@]}"; do
	run_level "$n"
done

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
target() {
	case "$1" in
	"sessions") echo "1.0 view no slower than SELECT * FROM pg_stat_activity" ;;
	"connection_limits" | "connection_summary") echo "10 >= 10x (aim 30x)" ;;
	"idle_in_transaction") echo "3 >= 3x" ;;
	*) echo "" ;;
	esac
}

echo
echo "== Results (ms per call: median over the rounds of each round's mean; SQL/view: median of the rounds' paired ratios, higher is better for the view)"
printf '%-22s %6s %6s %11s %11s %9s\n' view N rows "view ms" "SQL ms" "SQL/view"
for c in "${CASES[@]}"; do
	IFS='|' read -r name _ <<<"$c"
	for n in "${LEVEL_LIST[@]}"; do
		printf '%-22s %6s %6s %11.3f %11.3f %8.2fx\n' "$name" "$n" "${ROWS[$name,$n]}" \
			"${VIEW_MS[$name,$n]}" "${SQL_MS[$name,$n]}" "${RATIO[$name,$n]}"
	done
done

echo
echo "== Growth: ms per 1,000 connections (least-squares slope over the levels; per-segment slopes)"
printf '%-22s %12s %12s   %s\n' view "view ms/1k" "SQL ms/1k" "view segments"
for c in "${CASES[@]}"; do
	IFS='|' read -r name _ <<<"$c"
	vx=""
	sx=""
	for n in "${LEVEL_LIST[@]}"; do
		vx="$vx $n:${VIEW_MS[$name,$n]}"
		sx="$sx $n:${SQL_MS[$name,$n]}"
	done
	awk -v name="$name" -v vx="$vx" -v sx="$sx" '
	function slope(s,   parts, k, n, x, y, sx, sy, sxx, sxy, kv) {
		n = split(s, parts, " ")
		sx = sy = sxx = sxy = 0
		for (k = 1; k <= n; k++) {
			split(parts[k], kv, ":"); x = kv[1] / 1000; y = kv[2]
			sx += x; sy += y; sxx += x * x; sxy += x * y
		}
		if (n < 2 || n * sxx - sx * sx == 0) return 0
		return (n * sxy - sx * sy) / (n * sxx - sx * sx)
	}
	function segments(s,   parts, k, n, a, b, out) {
		n = split(s, parts, " ")
		out = ""
		for (k = 2; k <= n; k++) {
			split(parts[k - 1], a, ":"); split(parts[k], b, ":")
			out = out sprintf("%s%d->%d: %.3f", (k > 2 ? ", " : ""), a[1], b[1],
							  (b[2] - a[2]) / ((b[1] - a[1]) / 1000))
		}
		return out
	}
	BEGIN { printf "%-22s %12.3f %12.3f   %s\n", name, slope(vx), slope(sx), segments(vx) }'
done

echo
echo "== Per-round means, ms (view | SQL)"
while IFS='|' read -r name n vr sr; do
	printf '%-22s %6s   %-45s | %s\n' "$name" "$n" "$vr" "$sr"
done <"$DIR/rounds.txt"

echo
echo "== Targets at $MAX_LEVEL connections"
for c in "${CASES[@]}"; do
	IFS='|' read -r name _ <<<"$c"
	t=$(target "$name")
	[ -n "$t" ] || continue
	need=${t%% *}
	text=${t#* }
	ratio=${RATIO[$name,$MAX_LEVEL]}
	verdict=$(awk -v r="$ratio" -v need="$need" 'BEGIN { print (r >= need ? "met" : "MISSED") }')
	printf '%-22s SQL/view %7.2fx   target: %-50s %s\n' "$name" "$ratio" "$text" "$verdict"
done

if [ "$MISMATCH" != 0 ]; then
	echo
	echo "!!! At least one view and its SQL equivalent disagreed on the number of rows (see above)." >&2
	exit 1
fi
