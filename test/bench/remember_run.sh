#!/usr/bin/env bash
# test/bench/remember_run.sh - the overhead of pg_connwatch's remember layer
# (shared_preload_libraries = 'pg_connwatch': emit_log_hook,
# ClientAuthentication_hook, an exit callback per session and the sampling
# worker), in one run.
#
#   bash test/bench/remember_run.sh [--rounds R] [--duration S] [--clients C]
#                                   [--jobs J] [--scale F] [--storm-clients K]
#                                   [--connections N] [--worker-seconds T]
#                                   [--port P] [--install] [--keep]
#                                   [--major NN]
#
# Three configurations of one cluster, each started afresh (restart, then a
# short warm-up) before every measurement: A = the library not preloaded,
# B = shared_preload_libraries = 'pg_connwatch' (defaults), A' = A again,
# measured the same way to show the noise floor.  CREATE EXTENSION is done
# once, so only the preloading differs.  R rounds (default 8), each runs
# A, B, A' in turn, in the order A B A' then A' B A (so every pair is in
# ABBA order); each run takes S seconds (default 10) per workload:
# (1) pgbench -S -c C -j J (default 4 and 2) on a pgbench -i -s F database
#     (default 10): TPS and the server's CPU per transaction;
# (2) pgbench -S -C (a new connection per transaction): the same, per
#     connection;
# (3) a login storm: max_connections = 20, its 17 ordinary slots held by
#     hold_sessions, K (default 32) clients (login_storm) trying to connect
#     in a loop: refusals per second, mean latency of a refused attempt,
#     CPU per refusal; with B, connwatch.refused_connections must count
#     exactly the refusals the clients saw, and the server must not crash.
# Then (4): N idle sessions (default 2,000) with B and
# connwatch.sample_interval = 1s: the worker's CPU over T seconds (default
# 60), in % of one core.
# Server CPU = what the postmaster and all its children used: their
# utime+stime from /proc, and the cutime+cstime the postmaster collects as
# it reaps each exited backend (checked at the start).
# Run as root (or, on the host's PostgreSQL, as any user that may run a
# cluster).  It installs libpq-dev if missing, builds test/bench/hold_sessions
# and login_storm (nothing else unless --install is given or the extension
# is not installed), and starts a throwaway cluster with
# scripts/pgcluster.sh.  A default run takes about 15 minutes on 2 cores.
# Timings never fail the run; a set-up failure, a crash, a lost held
# session, a refusal count that differs between the ledger and the clients
# or another build installed during the run does (exit 1).  --major 13, 17
# or 18 runs this very script inside that major's Debian root file system
# (scripts/pgroot.sh), as run.sh and act_run.sh do; 15, the default, is the
# host's.  See test/bench/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
CMDLINE="bash test/bench/remember_run.sh${*:+ $*}"

ROUNDS=8
DURATION=10
CLIENTS=4
JOBS=2
SCALE=10
STORM_CLIENTS=32
STORM_MAX_CONNECTIONS=20
CONNECTIONS=2000
WORKER_SECONDS=60
WARMUP=2
PORT=${BENCH_PORT:-55303}
INSTALL=auto
KEEP=0
MAJOR=15

# usage, die, psql_q and the bench_* setup functions
. "$HERE/lib.sh"
# CRASH_PATTERN and crash_in_logs: the crash detector of the test scripts
. "$ROOT/scripts/lib.sh"

ARGS=("$@")
while [ $# -gt 0 ]; do
	bench_common_arg "$@"
	if [ "$SHIFT" -gt 0 ]; then
		shift "$SHIFT"
		continue
	fi
	case "$1" in
	--clients) CLIENTS=${2:?}; shift 2 ;;
	--clients=*) CLIENTS=${1#*=}; shift ;;
	--jobs) JOBS=${2:?}; shift 2 ;;
	--jobs=*) JOBS=${1#*=}; shift ;;
	--scale) SCALE=${2:?}; shift 2 ;;
	--scale=*) SCALE=${1#*=}; shift ;;
	--storm-clients) STORM_CLIENTS=${2:?}; shift 2 ;;
	--storm-clients=*) STORM_CLIENTS=${1#*=}; shift ;;
	--worker-seconds) WORKER_SECONDS=${2:?}; shift 2 ;;
	--worker-seconds=*) WORKER_SECONDS=${1#*=}; shift ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done

for v in ROUNDS DURATION CLIENTS JOBS SCALE STORM_CLIENTS CONNECTIONS WORKER_SECONDS; do
	[[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] ||
		die "--$(tr _ - <<<"${v,,}") must be an integer >= 1"
done
[ "$JOBS" -le "$CLIENTS" ] || die "--jobs must not exceed --clients"
[ "$CLIENTS" -le 15 ] || die "--clients must be at most 15 (max_connections is $STORM_MAX_CONNECTIONS)"

# Another major: this script again, inside its root (does not return).
bench_major "${ARGS[@]}"

# ---------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------
bench_prerequisites

# A login_storm built elsewhere (a tree copied into a root by --major) may
# not run here: build it again.
if [ -x "$HERE/login_storm" ] && ! "$HERE/login_storm" --help >/dev/null 2>&1; then
	rm -f "$HERE/login_storm"
fi
bench_build hold_sessions login_storm
HOLDER=$HERE/hold_sessions
STORM=$HERE/login_storm
PGCTL=$PGBIN/pg_ctl
CLK_TCK=$(getconf CLK_TCK)

# The holder keeps one socket per session open.
bench_raise_nofile $((CONNECTIONS + 256))

RUN_AS=()
[ "$(id -u)" = 0 ] && RUN_AS=(runuser -u postgres --)

# ---------------------------------------------------------------------------
# Cluster
# ---------------------------------------------------------------------------
DIR=$(mktemp -d /tmp/connwatch_rembench.XXXXXX)
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

FAILED=0
fail() {
	FAILED=1
	echo "!!! $*" >&2
}

# Every configuration is a bench.conf included at the end of
# postgresql.conf: what differs between A and B is shared_preload_libraries.
COMMON_CONF=("autovacuum = off" "shared_buffers = 256MB")
write_conf() {
	printf '%s\n' "${COMMON_CONF[@]}" "$@" >"$DIR/data/bench.conf"
	[ "$(id -u)" = 0 ] && chown postgres: "$DIR/data/bench.conf"
	return 0
}
pg_start() {
	"${RUN_AS[@]}" "$PGCTL" -D "$DIR/data" -l "$DIR/server.log" -w -t 120 start >/dev/null ||
		{ tail -20 "$DIR/server.log" >&2; die "could not start the cluster"; }
	PM=$(head -1 "$DIR/data/postmaster.pid")
}
pg_stop() {
	"${RUN_AS[@]}" "$PGCTL" -D "$DIR/data" -m fast -w -t 120 stop >/dev/null ||
		die "could not stop the cluster"
}

# CPU in clock ticks from /proc/PID/stat: utime+stime (own), or
# cutime+cstime (of its reaped children).  Empty when PID is gone.
proc_ticks() {
	local line f
	read -r line <"/proc/$1/stat" 2>/dev/null || return 0
	read -r -a f <<<"${line##*) }"	# f[0] is field 3 (state)
	case "$2" in
	self) echo $((f[11] + f[12])) ;;
	children) echo $((f[13] + f[14])) ;;
	esac
}
children_of() {
	ps -o pid= --ppid "$1" | tr -d ' '
}
# Everything the server used so far (sets TICKS): the postmaster's own CPU
# (TICKS_PM: the forks), what it collected from its reaped children, and its
# live children's own CPU.
server_ticks() {
	local p t
	TICKS_PM=$(proc_ticks "$PM" self)
	TICKS=$((TICKS_PM + $(proc_ticks "$PM" children)))
	for p in $(children_of "$PM"); do
		t=$(proc_ticks "$p" self)
		TICKS=$((TICKS + ${t:-0}))
	done
}
# Wait until the postmaster has exactly N children again (the short-lived
# ones exited and reaped), 20 s at most.
wait_children() {
	local want=$1 i n
	for ((i = 0; i < 200; i++)); do
		n=$(children_of "$PM" | wc -l)
		[ "$n" = "$want" ] && return 0
		sleep 0.1
	done
	fail "the postmaster has $n children, expected $want"
}

median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
calc() {
	awk "BEGIN { printf \"%.6f\", $* }"
}

echo "== $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cores, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== command: $CMDLINE"
SLOT_S=$((3 * DURATION + WARMUP + 3))
echo "== $ROUNDS rounds x 3 configurations x ($DURATION s pgbench -S, $DURATION s pgbench -S -C, $DURATION s login storm, restart and warm-up): about $(((ROUNDS * 3 * SLOT_S + WORKER_SECONDS + 90) / 60)) minutes"
echo "== starting a cluster in $DIR (port $PORT)"
PGBIN=$PGBIN bash "$ROOT/scripts/pgcluster.sh" start "$DIR" "$PORT" "include_if_exists = 'bench.conf'" ||
	{ tail -20 "$DIR/server.log" >&2; die "could not start the cluster"; }
eval "$(bash "$ROOT/scripts/pgcluster.sh" env "$DIR" "$PORT")"
export PGDATABASE=postgres
write_conf "max_connections = $STORM_MAX_CONNECTIONS"
pg_stop
pg_start

psql_q -d postgres <<'SQL' || die "setup SQL failed"
CREATE EXTENSION pg_connwatch;
CREATE ROLE cw_hold LOGIN;
CREATE ROLE cw_storm LOGIN;
CREATE DATABASE bench;
SQL
psql_q -d bench -c "CREATE EXTENSION pg_connwatch" -c "CREATE EXTENSION pg_prewarm" ||
	die "setup SQL failed"
echo "== pgbench -i -s $SCALE bench"
"$PGBENCH" -i -q -s "$SCALE" bench >"$DIR/pgbench_init.log" 2>&1 ||
	{ cat "$DIR/pgbench_init.log" >&2; die "pgbench -i failed"; }
RESERVED=$(psql_q -c "SHOW superuser_reserved_connections")
HOLD=$((STORM_MAX_CONNECTIONS - RESERVED))
echo "   pg_connwatch $(psql_q -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_connwatch'"), $(psql_q -c "SELECT version()" | cut -d' ' -f1-2), shared_buffers 256MB, autovacuum off, max_connections $STORM_MAX_CONNECTIONS ($RESERVED reserved)"

# Check the CPU accounting on one backend: what it used until just before
# it exited must reappear in the postmaster's cutime+cstime once reaped.
BASE_CHILDREN=$(children_of "$PM" | wc -l)
PGAPPNAME=cw_acct "$PSQL" -X -q -At -d postgres \
	-c "SELECT count(*) FROM generate_series(1, 3000000)" -c "SELECT pg_sleep(2)" >/dev/null &
ACCT_PID=$!
BPID=
for ((i = 0; i < 100; i++)); do
	BPID=$(psql_q -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'cw_acct' AND wait_event = 'PgSleep'")
	[ -n "$BPID" ] && break
	sleep 0.1
done
[ -n "$BPID" ] || die "CPU accounting check: the test backend did not show up"
wait_children $((BASE_CHILDREN + 1))
USED=$(proc_ticks "$BPID" self)
CU0=$(proc_ticks "$PM" children)
wait "$ACCT_PID" || die "CPU accounting check: psql failed"
wait_children "$BASE_CHILDREN"
CU1=$(proc_ticks "$PM" children)
echo "== CPU accounting check: backend $BPID used $USED ticks until it went to sleep; after it exited, the postmaster's cutime+cstime grew by $((CU1 - CU0)) ticks ($CLK_TCK ticks/s)"
[ "$USED" -ge 10 ] && [ $((CU1 - CU0)) -ge "$USED" ] && [ $((CU1 - CU0 - USED)) -le 3 ] ||
	fail "CPU accounting check: the exited backend's CPU did not land in the postmaster's cutime+cstime as expected"
pg_stop

# ---------------------------------------------------------------------------
# (1)-(3): one slot = one configuration, started afresh
# ---------------------------------------------------------------------------
declare -A VAL
put() { VAL[$1.$2]+=" $3"; }

PGBENCH_OUT=
run_pgbench() {
	local what=$1
	shift
	if ! PGBENCH_OUT=$("$PGBENCH" -n "$@" bench 2>&1); then
		echo "$PGBENCH_OUT" >&2
		die "pgbench $* failed ($what)"
	fi
	if grep -q 'number of failed transactions: [1-9]' <<<"$PGBENCH_OUT"; then
		echo "$PGBENCH_OUT" >&2
		die "pgbench $*: transactions failed ($what)"
	fi
}
pgbench_tx() { awk -F': *' '/^number of transactions actually processed/ { print $2 + 0; exit }' <<<"$PGBENCH_OUT"; }
pgbench_tps() { awk '/^tps = / { print $3; exit }' <<<"$PGBENCH_OUT"; }
field() { sed -nE "s/.* $1=([^ ]+).*/\1/p" <<<"$2"; }

# One workload, timed: sets M_TPS, M_CPU (server CPU in us per transaction,
# from before pgbench started until its backends were reaped) and M_PM (the
# postmaster's own share of it).
measure_pgbench() {
	local base=$1 c0 p0 tx
	shift
	server_ticks
	c0=$TICKS p0=$TICKS_PM
	run_pgbench "$*" "$@"
	wait_children "$base"
	server_ticks
	tx=$(pgbench_tx)
	M_TPS=$(pgbench_tps)
	[ -n "$tx" ] && [ "$tx" -gt 0 ] && [ -n "$M_TPS" ] || { echo "$PGBENCH_OUT" >&2; die "no transactions in pgbench $*"; }
	M_CPU=$(calc "($TICKS - $c0) * 1000000 / $CLK_TCK / $tx")
	M_PM=$(calc "($TICKS_PM - $p0) * 1000000 / $CLK_TCK / $tx")
}

LEDGER_OK=0
LEDGER_BAD=0
LEDGER_LINES=()
STORM_LOG_TOTAL=0
STORM_CLIENT_TOTAL=0

slot() {
	local cfg=$1 round=$2 label preload base pm0 wpid w0 t0 line line2
	local c0 c1 p0 refused ledger ledger_total t1 w1 log_refusals i
	case "$cfg" in
	A) label="A "; preload="" ;;
	A2) label="A'"; preload="" ;;
	B) label="B "; preload="pg_connwatch" ;;
	esac
	write_conf "max_connections = $STORM_MAX_CONNECTIONS" "shared_preload_libraries = '$preload'"
	: >"$DIR/server.log"
	pg_start
	pm0=$PM
	t0=$(date +%s.%N)
	[ "$(psql_q -c "SHOW shared_preload_libraries")" = "$preload" ] ||
		die "shared_preload_libraries is not '$preload'"
	wpid=
	if [ "$cfg" = B ]; then
		for ((i = 0; i < 100; i++)); do
			wpid=$(psql_q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_connwatch worker'")
			[ -n "$wpid" ] && break
			sleep 0.1
		done
		[ -n "$wpid" ] || die "B: no pg_connwatch worker in pg_stat_activity"
	elif [ -n "$(psql_q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_connwatch worker'")" ]; then
		die "$label: a pg_connwatch worker runs without the library preloaded"
	fi
	w0=$([ -n "$wpid" ] && proc_ticks "$wpid" self || true)

	# warm-up: every pgbench table in shared buffers, a few seconds of load
	psql_q -d bench -c "SELECT pg_prewarm('pgbench_accounts'), pg_prewarm('pgbench_accounts_pkey'),
	                           pg_prewarm('pgbench_branches'), pg_prewarm('pgbench_tellers')" >/dev/null ||
		die "pg_prewarm failed"
	run_pgbench warm-up -S -c "$CLIENTS" -j "$JOBS" -T "$WARMUP"
	sleep 0.5
	base=$(children_of "$PM" | wc -l)
	wait_children "$base"

	# (1) pgbench -S
	measure_pgbench "$base" -S -c "$CLIENTS" -j "$JOBS" -T "$DURATION"
	put "$cfg" s_tps "$M_TPS"
	put "$cfg" s_cpu "$M_CPU"
	line=$(printf '   round %d %s  -S %9.1f tps %6.1f us/tx' "$round" "$label" "$M_TPS" "$M_CPU")

	# (2) pgbench -S -C
	measure_pgbench "$base" -S -C -c "$CLIENTS" -j "$JOBS" -T "$DURATION"
	put "$cfg" c_tps "$M_TPS"
	put "$cfg" c_cpu "$M_CPU"
	put "$cfg" c_pm "$M_PM"
	line+=$(printf ' | -C %7.1f tps %7.1f us/conn' "$M_TPS" "$M_CPU")

	# (3) the login storm: hold the ordinary slots, then K clients knock
	rm -f "$DIR/ready.storm"
	"$HOLDER" --host "$DIR" --port "$PORT" --dbname bench --roles cw_hold \
		--idle "$HOLD" --prefix storm --ready-file "$DIR/ready.storm" \
		>"$DIR/holder.storm.out" 2>"$DIR/holder.storm.err" &
	HOLDER_PID=$!
	for ((i = 0; i < 600; i++)); do
		[ -f "$DIR/ready.storm" ] && break
		kill -0 "$HOLDER_PID" 2>/dev/null ||
			{ cat "$DIR/holder.storm.err" >&2; die "hold_sessions failed to open $HOLD sessions"; }
		sleep 0.1
	done
	[ -f "$DIR/ready.storm" ] || die "hold_sessions not ready after 60 s"
	[ "$cfg" = B ] && { psql_q -c "SELECT connwatch.reset_ledgers()" >/dev/null || die "reset_ledgers() failed"; }
	wait_children $((base + HOLD))
	server_ticks
	c0=$TICKS p0=$TICKS_PM
	line2=$("$STORM" --host "$DIR" --port "$PORT" --dbname bench --user cw_storm \
		--application-name cw_storm --clients "$STORM_CLIENTS" --duration "$DURATION" \
		2>"$DIR/storm.err") || { cat "$DIR/storm.err" >&2; die "login_storm failed"; }
	wait_children $((base + HOLD))
	server_ticks
	c1=$TICKS
	if [ -s "$DIR/storm.err" ]; then
		sed 's/^/   /' "$DIR/storm.err" >&2
	fi
	refused=$(field refused "$line2")
	[ "$(field connected "$line2")" = 0 ] ||
		fail "round $round $label: $(field connected "$line2") storm clients got in: the slots were not all held"
	[ "$refused" -gt 0 ] || die "round $round $label: no refusal in the storm: $line2"
	put "$cfg" r_rate "$(calc "$refused / $(field elapsed_s "$line2")")"
	put "$cfg" r_lat "$(field refused_ms_mean "$line2")"
	put "$cfg" r_cpu "$(calc "($c1 - $c0) * 1000000 / $CLK_TCK / $refused")"
	put "$cfg" r_pm "$(calc "($TICKS_PM - $p0) * 1000000 / $CLK_TCK / $refused")"
	line+=$(printf ' | storm %6.0f refused/s %6.3f ms %6.1f us/refusal' \
		"$(calc "$refused / $(field elapsed_s "$line2")")" "$(field refused_ms_mean "$line2")" \
		"$(calc "($c1 - $c0) * 1000000 / $CLK_TCK / $refused")")
	if [ "$cfg" = B ]; then
		ledger=$(psql_q -F'=' -c "SELECT cause, sum(count) FROM connwatch.refused_connections
		                          GROUP BY cause ORDER BY cause" | paste -sd' ')
		ledger_total=$(psql_q -c "SELECT coalesce(sum(count), 0) FROM connwatch.refused_connections")
		LEDGER_LINES+=("round $round: ledger $ledger_total (${ledger:-empty}); clients $refused (too many clients=$(field too_many "$line2") reserved slots=$(field reserved "$line2") other=$(field other "$line2"))")
		if [ "$ledger_total" = "$refused" ]; then
			LEDGER_OK=$((LEDGER_OK + 1))
			line+=" | ledger = clients"
		else
			LEDGER_BAD=$((LEDGER_BAD + 1))
			line+=" | ledger $ledger_total != clients $refused"
			fail "round $round B: connwatch.refused_connections counts $ledger_total refusals ($ledger), the clients saw $refused (difference $((ledger_total - refused)))"
		fi
	fi
	kill "$HOLDER_PID"
	wait "$HOLDER_PID" || fail "round $round $label: hold_sessions exited with $?"
	HOLDER_PID=
	grep -q "^DONE sessions=$HOLD lost=0$" "$DIR/holder.storm.out" ||
		fail "round $round $label: hold_sessions: $(cat "$DIR/holder.storm.out" "$DIR/holder.storm.err")"

	if [ -n "$wpid" ]; then
		w1=$(proc_ticks "$wpid" self)
		t1=$(date +%s.%N)
		if [ -n "$w1" ]; then
			put B w_cpu "$(calc "($w1 - $w0) * 100 / $CLK_TCK / ($t1 - $t0)")"
		else
			fail "round $round B: the worker (pid $wpid) is gone"
		fi
	fi
	[ "$(head -1 "$DIR/data/postmaster.pid")" = "$pm0" ] && kill -0 "$pm0" ||
		fail "round $round $label: the postmaster changed or died (pid $pm0)"
	pg_stop
	if crash_in_logs "$DIR/server.log"; then
		fail "round $round $label: the server crashed (above)"
		cp "$DIR/server.log" "$DIR/server.crash.$round.$cfg.log"
	fi
	log_refusals=$(grep -cE 'FATAL: +(sorry, too many clients already|remaining connection slots are reserved)' "$DIR/server.log" || true)
	STORM_LOG_TOTAL=$((STORM_LOG_TOTAL + log_refusals))
	STORM_CLIENT_TOTAL=$((STORM_CLIENT_TOTAL + refused))
	put "$cfg" r_split "$(field too_many "$line2")/$(field reserved "$line2")/$(field other "$line2")"
	echo "$line"
	bench_check_install "round $round $label"
}

echo
echo "== (1)-(3): $ROUNDS rounds; each runs A, B and A' (A B A', then A' B A), restarted before each"
echo "   A = not preloaded; B = shared_preload_libraries = 'pg_connwatch'; A' = A again (noise floor)"
echo "   -S: pgbench -n -S -c $CLIENTS -j $JOBS -T $DURATION; -C: the same with -C; storm: $HOLD of $STORM_MAX_CONNECTIONS slots held, $STORM_CLIENTS clients x $DURATION s"
for ((r = 1; r <= ROUNDS; r++)); do
	if ((r % 2)); then order=(A B A2); else order=(A2 B A); fi
	for cfg in "${order[@]}"; do
		slot "$cfg" "$r"
	done
done

# ---------------------------------------------------------------------------
# (4) The worker at N sessions
# ---------------------------------------------------------------------------
echo
echo "== (4) the worker at $CONNECTIONS idle sessions, connwatch.sample_interval = 1s, $WORKER_SECONDS s"
write_conf "max_connections = $((CONNECTIONS + 100))" "shared_preload_libraries = 'pg_connwatch'" \
	"connwatch.sample_interval = '1s'"
: >"$DIR/server.log"
pg_start
PM4=$PM
rm -f "$DIR/ready.idle"
"$HOLDER" --host "$DIR" --port "$PORT" --dbname bench --roles cw_hold \
	--idle "$CONNECTIONS" --prefix worker --ready-file "$DIR/ready.idle" \
	>"$DIR/holder.idle.out" 2>"$DIR/holder.idle.err" &
HOLDER_PID=$!
for ((i = 0; i < 6000; i++)); do
	[ -f "$DIR/ready.idle" ] && break
	kill -0 "$HOLDER_PID" 2>/dev/null ||
		{ cat "$DIR/holder.idle.err" >&2; die "hold_sessions failed to open $CONNECTIONS sessions"; }
	sleep 0.1
done
[ -f "$DIR/ready.idle" ] || die "hold_sessions not ready after 600 s"
WPID=$(psql_q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_connwatch worker'")
[ -n "$WPID" ] || die "no pg_connwatch worker"
echo "   in place: $(psql_q -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'") client backends; worker pid $WPID"
sleep 2
W0=$(proc_ticks "$WPID" self)
T0=$(date +%s.%N)
sleep "$WORKER_SECONDS"
W1=$(proc_ticks "$WPID" self)
T1=$(date +%s.%N)
[ -n "$W1" ] || fail "(4) the worker (pid $WPID) is gone"
W1=${W1:-$W0}
WORKER_PCT=$(calc "($W1 - $W0) * 100 / $CLK_TCK / ($T1 - $T0)")
SAMPLES=$(psql_q -F'|' -c "SELECT count(*), max(client_backends), min(client_backends)
	FROM connwatch.history(to_timestamp($T0), to_timestamp($T1))")
echo "   worker: $((W1 - W0)) ticks in $(calc "$T1 - $T0" | cut -c1-6) s = $(printf '%.3f' "$WORKER_PCT") % of one core; samples taken in the window | max | min client_backends: $SAMPLES"
[ "$(cut -d'|' -f1 <<<"$SAMPLES")" -ge $((WORKER_SECONDS * 9 / 10)) ] ||
	fail "(4) the worker took only $(cut -d'|' -f1 <<<"$SAMPLES") samples in $WORKER_SECONDS s"
kill "$HOLDER_PID"
wait "$HOLDER_PID" || fail "(4) hold_sessions exited with $?"
HOLDER_PID=
grep -q "^DONE sessions=$CONNECTIONS lost=0$" "$DIR/holder.idle.out" ||
	fail "(4) hold_sessions: $(cat "$DIR/holder.idle.out" "$DIR/holder.idle.err")"
[ "$(head -1 "$DIR/data/postmaster.pid")" = "$PM4" ] || fail "(4) the postmaster changed"
pg_stop
crash_in_logs "$DIR/server.log" && fail "(4) the server crashed (above)"
bench_check_install "after (4)"

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
# worse(higher_is_better, a, b): how much worse b is than a, in %
worse() {
	if [ "$1" = higher ]; then calc "($2 - $3) * 100 / $2"; else calc "($3 - $2) * 100 / $2"; fi
}
# median over the rounds of the paired per-round worse()
paired() {
	local dir=$1 a=$2 b=$3 k
	local -a va vb out=()
	read -r -a va <<<"${VAL[$a.$4]}"
	read -r -a vb <<<"${VAL[$b.$4]}"
	for k in "${!va[@]}"; do
		out+=("$(worse "$dir" "${va[$k]}" "${vb[$k]}")")
	done
	median "${out[@]}"
}
verdict() {
	# overhead noise target
	awk -v o="$1" -v n="$2" -v t="$3" 'BEGIN {
		an = n < 0 ? -n : n
		if (o <= t && (o < 0 ? -o : o) <= an) print "under target, within noise"
		else if (o <= t) print "under target"
		else if (o <= an) print "above target but within noise: not resolved"
		else print "ABOVE target and noise"
	}'
}
row() {
	# label metric higher|lower format target
	local label=$1 m=$2 dir=$3 fmt=$4 target=${5:-} a b a2 ob na pb pa v
	# shellcheck disable=SC2086
	a=$(median ${VAL[A.$m]})
	# shellcheck disable=SC2086
	b=$(median ${VAL[B.$m]})
	# shellcheck disable=SC2086
	a2=$(median ${VAL[A2.$m]})
	ob=$(worse "$dir" "$a" "$b")
	na=$(worse "$dir" "$a" "$a2")
	pb=$(paired "$dir" A B "$m")
	pa=$(paired "$dir" A A2 "$m")
	v=""
	[ -n "$target" ] && v="< $target %: $(verdict "$ob" "$na" "$target")"
	printf "    %-30s $fmt $fmt $fmt %+7.2f%% %+7.2f%% %+7.2f%% %+7.2f%%  %s\n" \
		"$label" "$a" "$b" "$a2" "$ob" "$na" "$pb" "$pa" "$v"
}
range() {
	local m=$1 fmt=$2 c name lo hi txt=""
	for c in A B A2; do
		name=$c
		[ "$c" = A2 ] && name="A'"
		# shellcheck disable=SC2086
		lo=$(printf '%s\n' ${VAL[$c.$m]} | sort -g | head -1)
		# shellcheck disable=SC2086
		hi=$(printf '%s\n' ${VAL[$c.$m]} | sort -g | tail -1)
		txt+=$(printf "%s $fmt-$fmt  " "$name" "$lo" "$hi")
	done
	echo "$txt"
}

echo
echo "== Results ($(nproc) cores; load average now $(cut -d' ' -f1-3 /proc/loadavg); wall time $((SECONDS / 60)) min $((SECONDS % 60)) s)"
echo "   command: $CMDLINE"
echo "   $ROUNDS rounds of A, B, A' (A B A' / A' B A), $DURATION s per workload, each configuration restarted and warmed up before it"
echo "   figures: median over the rounds; B vs A = overhead, A' vs A = noise floor (the same protocol, both not preloaded);"
echo "   positive % = worse (fewer TPS or refusals/s, more CPU or latency); 'paired' = median of the per-round comparisons"
printf '    %-30s %10s %10s %10s %8s %8s %8s %8s\n' "" A B "A'" "B vs A" "A' vs A" "paired B" "paired A'"
echo "(1) pgbench -S -c $CLIENTS -j $JOBS, scale $SCALE (persistent connections)"
row "TPS" s_tps higher "%10.1f" 1
row "server CPU per tx (us)" s_cpu lower "%10.2f"
echo "      ranges: TPS $(range s_tps %.1f)"
echo "(2) pgbench -S -C -c $CLIENTS -j $JOBS (a new connection per transaction)"
row "TPS" c_tps higher "%10.1f" 2
row "server CPU per connection (us)" c_cpu lower "%10.1f"
row "  of which postmaster (us)" c_pm lower "%10.1f"
echo "      ranges: TPS $(range c_tps %.1f)"
echo "(3) login storm: max_connections $STORM_MAX_CONNECTIONS, $HOLD held, $STORM_CLIENTS clients"
row "refusals per second" r_rate higher "%10.1f"
row "refused attempt, mean (ms)" r_lat lower "%10.3f"
row "server CPU per refusal (us)" r_cpu lower "%10.1f"
row "  of which postmaster (us)" r_pm lower "%10.1f"
echo "      ranges: refusals/s $(range r_rate %.1f)"
# shellcheck disable=SC2086
echo "      client view too many clients/reserved slots/other, per round: A:${VAL[A.r_split]}  B:${VAL[B.r_split]}  A':${VAL[A2.r_split]}"
echo "      refusals in the server log ('sorry, too many clients' + 'reserved'), all rounds: $STORM_LOG_TOTAL; seen by the clients: $STORM_CLIENT_TOTAL"
echo "      ledger check (B): connwatch.refused_connections = the clients' refusals in $LEDGER_OK of $((LEDGER_OK + LEDGER_BAD)) rounds"
for l in "${LEDGER_LINES[@]}"; do
	echo "        $l"
done
# shellcheck disable=SC2086
echo "(4) worker CPU: $(printf '%.3f' "$WORKER_PCT") % of one core at $CONNECTIONS idle sessions over $WORKER_SECONDS s (target < 1 %: $(awk -v p="$WORKER_PCT" 'BEGIN { print (p < 1 ? "met" : "MISSED") }')); at <= $STORM_MAX_CONNECTIONS sessions during the B rounds: median $(printf '%.3f' "$(median ${VAL[B.w_cpu]})") %"
if [ "$FAILED" = 0 ]; then
	echo "   no crash (postmaster pid unchanged in every round, no crash in the logs), no held session lost"
else
	echo
	echo "!!! correctness problems (see above)" >&2
	exit 1
fi
