#!/usr/bin/env bash
# scripts/test_major.sh - the pg_connwatch test suite on one PostgreSQL major.
#
#   PG_CONFIG=/usr/lib/postgresql/NN/bin/pg_config bash scripts/test_major.sh
#
# scripts/test.sh (the README's test command) runs this once per major: on
# the host for 15, inside the major's root file system (scripts/pgroot.sh)
# for the others.  It expects the packages to be there already.  Run as
# root from the top of a work tree.  It builds a scratch copy of the tree
# with -Wall -Wextra -Werror and installs the extension (the build makes
# the install and upgrade scripts of the version in development from
# sql_src/), then, as the postgres OS user:
#
#   0. (first, as the caller, in the work tree, not the copy)
#      scripts/check_sql_sources.sh: the SQL sources are complete;
#   1. pg_regress over the Makefile's REGRESS list, against a throwaway
#      cluster on a private socket directory and port;
#   2. pg_isolation_regress over the Makefile's ISOLATION list, same cluster;
#      then a plain "make installcheck" against a stock cluster, as a user
#      runs it (scripts/stock_installcheck.sh), which counts as one test;
#   3. the TAP tests (the Makefile's PROVE_TESTS), one prove run per file;
#      they boot their own clusters through PostgreSQL::Test::Cluster.
#      CONNWATCH_TAP_JOBS files run at once (default 2), each in its own
#      copy of the built tree, in the background from the start (while 1.
#      and 2. run); their results are printed and counted after those, in
#      the Makefile's order.  A line "=== time: ..." says where the time
#      went.
#
# All three go through PGXS's "make installcheck" with the other suites
# switched off, so the Makefile stays the source of truth for the lists and
# the environment.  Each regress test and each isolation spec counts as one
# test, each TAP assertion as one; a suite or TAP file that breaks without
# reporting a failed test (crash, bad plan, timeout) counts as one failure.
#
# The crash detector: whatever a suite reports, its server logs are read
# after it, and a log that shows a crashed server process (terminated by a
# signal, a PANIC, a crash restart) counts as one more failure, with the
# lines around it printed.  The detector checks itself on a sample log
# before anything runs.
# The last line printed is "N passed, N failed"; the exit status is non-zero
# when anything failed or nothing ran.  Every server started here is stopped
# on every way out.
#
# Environment:
#   PG_CONFIG               pg_config of the major to test (default: 15's)
#   CONNWATCH_TEST_PORT     first port to try for the regress cluster (default 55100)
#   CONNWATCH_KEEP_TMP=1    keep the scratch directory even when everything passed
#   CONNWATCH_TAP_JOBS      TAP files run at once (default 2; 1 runs them one by one)
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

if [ -z "${PG_CONFIG:-}" ]; then
	PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
	[ -x "$PG_CONFIG" ] || PG_CONFIG=pg_config
fi
export PG_CONFIG

# Time limits (seconds): per suite, and for the whole run, which must stay
# far below CI's.  A suite cut short counts as failed.
REGRESS_TIMEOUT=300
ISOLATION_TIMEOUT=300
TAP_TIMEOUT=420
BUDGET=${CONNWATCH_TEST_BUDGET:-840}

# TAP files that run at once.  On 2 cores, 2 lanes overlap one file's
# waits (sleeps, polls, pg_cron's minute) with another's work; see
# doc/testing.md, "Where the time goes".
TAP_JOBS=${CONNWATCH_TAP_JOBS:-2}
case "$TAP_JOBS" in
'' | *[!0-9]* | 0) TAP_JOBS=1 ;;
esac

# The files that take longest start first, so that no lane is left with a
# long one at the end (a hint from the measured times; a file not named
# here starts after these, in the Makefile's order).
# 201 and 103 first: the churn takes every core it gets for its fixed
# time, pg_cron's minute (13, 15) takes none.
TAP_LONG_FIRST="201_exit_churn 103_act_pg_cron 203_hostile_install 106_act_audit_hardening
202_fuzz 401_diagnose_scenarios 305_ledger_hardening 403_diagnose 101_act_races"

passed=0
failed=0
skipped=0
completed=0
work=
src=
cluster=
pgbin=
lane_pids=()

log() { printf '=== %s\n' "$*"; }

# The time limit for the next suite: its own cap or what is left of the
# budget, whichever is smaller; once the budget is spent, 1 second, so that
# the suite fails at once and is counted as failed.
time_limit() {
	local left=$((BUDGET - SECONDS))
	[ "$left" -lt 1 ] && left=1
	[ "$left" -lt "$1" ] && echo "$left" || echo "$1"
}

# Run a command as the postgres OS user (the server refuses to run as root).
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# Stop every server this run may have started under directory $1 (default:
# the whole scratch directory): the regress cluster and any node a TAP test
# left behind (a killed prove cannot run its END block).
stop_all_clusters() {
	local under=${1:-$work}
	[ -n "$work" ] && [ -d "$under" ] && [ -n "$pgbin" ] || return 0
	local pidfile
	while IFS= read -r pidfile; do
		as_pg "$pgbin/pg_ctl" -D "$(dirname "$pidfile")" -m fast -t 30 -w stop >/dev/null 2>&1 ||
			as_pg "$pgbin/pg_ctl" -D "$(dirname "$pidfile")" -m immediate -w stop >/dev/null 2>&1 || true
	done < <(find "$under" -name postmaster.pid 2>/dev/null)
}

# The pid-reuse check of test/t/404 needs the next pid chosen, which only
# root may do (/proc/sys/kernel/ns_last_pid), while the TAP tests run as
# postgres.  A small root helper reads a number from the FIFO ask, writes it
# there, and answers on the FIFO done; the tests find the two FIFOs through
# CONNWATCH_PID_CHOOSER.  Without root, or where the file is not writable,
# there is no helper and that check is skipped.
pid_chooser=
start_pid_chooser() {
	[ "$(id -u)" = 0 ] && [ -w /proc/sys/kernel/ns_last_pid ] || return 0
	local dir=$work/pid_chooser
	mkdir -p "$dir" && mkfifo -m 600 "$dir/ask" "$dir/done" &&
		chown -R postgres: "$dir" || return 0
	(
		while :; do
			# a last line without its newline counts too
			read -r want <"$dir/ask" || [ -n "$want" ] || continue
			case "$want" in
			'' | *[!0-9]*) ;;
			*) echo "$want" >/proc/sys/kernel/ns_last_pid 2>/dev/null ;;
			esac
			echo done >"$dir/done"
		done
	) &
	pid_chooser=$!
	export CONNWATCH_PID_CHOOSER=$dir
}

# Every way out ends here: stop the servers, print the closing line last.
finish() {
	local rc=$?
	trap - EXIT INT TERM
	[ -n "$pid_chooser" ] && kill "$pid_chooser" 2>/dev/null
	stop_lanes
	stop_all_clusters
	if [ "$completed" != 1 ]; then
		echo "!!! test_major.sh stopped before the end (status $rc)"
		failed=$((failed + 1))
	fi
	if [ -n "$work" ] && [ -d "$work" ]; then
		if [ "$failed" -eq 0 ] && [ "${CONNWATCH_KEEP_TMP:-0}" != 1 ]; then
			rm -rf "$work"
		else
			echo "scratch directory kept: $work"
		fi
	fi
	local line="$passed passed, $failed failed"
	[ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
	echo "$line"
	if [ "$failed" -gt 0 ] || [ "$passed" -eq 0 ]; then
		exit 1
	fi
	exit 0
}
trap finish EXIT
trap 'echo "!!! interrupted"; exit 130' INT TERM

# Normal end of the run: finish() prints the summary and sets the status.
summary_and_exit() {
	completed=1
	exit 0
}

# show_file, show_tail, free_port and the crash detector's pattern
# and reader (crash_in_logs) are shared with test_packages.sh.
. "$root/scripts/lib.sh"

# Count a crash in a suite's logs as a failure.
#   check_crashes SUITE LOG...
check_crashes() {
	local suite=$1
	shift
	if crash_in_logs "$@"; then
		echo "!!! $suite: a server crashed (crash detector)"
		failed=$((failed + 1))
	fi
}

# The detector must see a real crash report and must not see one in a
# quoted statement.
detector_selftest() {
	local sample ok=0
	sample=$(mktemp)
	cat >"$sample" <<'LOG'
2026-01-01 00:00:00.000 UTC [100] LOG:  server process (PID 101) was terminated by signal 11: Segmentation fault
LOG
	crash_in_logs "$sample" >/dev/null || ok=1
	cat >"$sample" <<'LOG'
2026-01-01 00:00:00.000 UTC [103] 201_exit_churn.pl PANIC:  could not write to file
LOG
	crash_in_logs "$sample" >/dev/null || ok=1
	cat >"$sample" <<'LOG'
2026-01-01 00:00:00.000 UTC [102] ERROR:  syntax error at or near "PANIC"
2026-01-01 00:00:00.000 UTC [102] STATEMENT:  SELECT 'was terminated by signal' PANIC: 
LOG
	crash_in_logs "$sample" >/dev/null && ok=1
	rm -f "$sample"
	return $ok
}

# A variable of the scratch tree's Makefile.
make_var() {
	as_pg make -s --no-print-directory -C "$src" -f Makefile -f - print-var VAR="$1" <<'EOF'
print-var:
	@echo $($(VAR))
EOF
}

# Count pg_regress / pg_isolation_regress results in a log; false when
# something failed.
#   count_regress LOG EXPECTED_COUNT EXIT_STATUS
count_regress() {
	local out=$1 expected=$2 status=$3 ok bad
	# up to 15: "test name ... ok"; from 16 on: "ok 1 - name" (TAP style)
	ok=$(grep -cE '^(test +)?[[:space:]]*[^[:space:]]+ +\.\.\. ok( |$)|^ok [0-9]+ +[-+] ' "$out")
	bad=$(grep -cE '^(test +)?[[:space:]]*[^[:space:]]+ +\.\.\. (FAILED|failed)|^not ok [0-9]+ +[-+] ' "$out")
	if [ $((ok + bad)) -lt "$expected" ]; then
		echo "!!! only $((ok + bad)) of $expected tests reported a result"
		bad=$((expected - ok))
	fi
	if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
		echo "!!! the suite timed out"
	fi
	if [ "$status" -ne 0 ] && [ "$bad" -eq 0 ]; then
		echo "!!! the suite exited with status $status without a failed test"
		bad=1
	fi
	passed=$((passed + ok))
	failed=$((failed + bad))
	[ "$bad" -eq 0 ]
}

if ! detector_selftest; then
	echo "!!! the crash detector failed its self-test"
	failed=$((failed + 1))
	summary_and_exit
fi

if ! "$PG_CONFIG" --version >/dev/null 2>&1; then
	echo "!!! no usable pg_config at $PG_CONFIG"
	failed=$((failed + 1))
	summary_and_exit
fi
log "$("$PG_CONFIG" --version)"
pgbin=$("$PG_CONFIG" --bindir)

#
# 0. The SQL sources, in the work tree (it has the .git the copy lacks):
#    the manifest is complete, every object has its COMMENT ON, and the
#    scripts the build makes are not committed.  Each check counts as one.
#
log "SQL sources (scripts/check_sql_sources.sh)"
sources_out=$(sh "$root/scripts/check_sql_sources.sh" 2>&1)
sources_status=$?
printf '%s\n' "$sources_out"
sources_ok=$(grep -E '^ok [0-9]+' <<<"$sources_out" | grep -cvE '# *SKIP')
sources_bad=$(grep -cE '^not ok [0-9]+' <<<"$sources_out")
if [ "$sources_status" -ne 0 ] && [ "$sources_bad" -eq 0 ]; then
	echo "!!! check_sql_sources.sh exited with status $sources_status without a failed check"
	sources_bad=1
fi
passed=$((passed + sources_ok))
failed=$((failed + sources_bad))
skipped=$((skipped + $(grep -cE '^ok [0-9]+.*# *SKIP' <<<"$sources_out")))

#
# 1. Scratch copy, build, install
#
work=$(mktemp -d /tmp/pg_connwatch_test.XXXXXX)
src="$work/src"
mkdir -p "$src" "$work/logs"
# No build products or old results: the build below must compile everything
# with the Makefile's warning flags.
tar -C "$root" \
	--exclude=./.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
	--exclude=./results --exclude=./output_iso --exclude=./tmp_check --exclude=./log \
	--exclude=./regression.diffs --exclude=./regression.out \
	-cf - . | tar -C "$src" -xf -

t_build=$SECONDS
log "build (make)"
if ! make -C "$src" -j2 CONNWATCH_WERROR=1 >"$work/logs/build.log" 2>&1; then
	cat "$work/logs/build.log"
	echo "!!! build failed"
	failed=$((failed + 1))
	summary_and_exit
fi

log "install (make install)"
if ! make -C "$src" install CONNWATCH_WERROR=1 >"$work/logs/install.log" 2>&1; then
	cat "$work/logs/install.log"
	echo "!!! make install failed"
	failed=$((failed + 1))
	summary_and_exit
fi

[ "$(id -u)" = 0 ] && chown -R postgres: "$work"

t_installed=$SECONDS
regress_list=$(make_var REGRESS)
isolation_list=$(make_var ISOLATION)
tap_list=$(make_var PROVE_TESTS)
n_regress=$(wc -w <<<"$regress_list")
n_isolation=$(wc -w <<<"$isolation_list")

#
# 2. TAP tests: one prove run per file, in the environment PGXS's
#    prove_installcheck sets up (PATH, PG_REGRESS, TESTDIR, the perl modules).
#    TAP_JOBS lanes take the files from one queue, in the background while
#    pg_regress and the isolation specs run (3.); each lane is a copy of the
#    built tree, because prove_installcheck empties its tree's tmp_check
#    before every file.  A lane keeps each file's output, exit status and
#    logs under $work/logs, and stops the servers the file left; the files
#    are reported (4.) in the Makefile's order, each once it is done.  The
#    lanes share one port lock directory, so that two nodes started at once
#    never take the same port.
#

# The next file of the queue, or false when it is empty.
next_tap_file() {
	local line
	{
		flock 9
		line=$(head -n 1 "$work/tap_queue")
		[ -n "$line" ] && sed -i 1d "$work/tap_queue"
	} 9>"$work/tap_queue.lock"
	[ -n "$line" ] && echo "$line"
}

# A lane: run files from the queue in tree $1 until it is empty.  The pid
# of the file's runner (runuser, or timeout when not root: started here,
# not through as_pg, so that $! is its pid) is in $work/lanes/N.child (N:
# the lane's number, $2) for stop_lanes.
tap_lane() {
	local dir=$1 lane=$2 t name status runner=()
	[ "$(id -u)" = 0 ] && runner=(runuser -u postgres --)
	while t=$(next_tap_file); do
		name=$(basename "$t" .pl)
		date +%s >"$work/logs/tap_$name.start"
		"${runner[@]}" timeout -k 10 "$(time_limit $TAP_TIMEOUT)" \
			make -s -C "$dir" --no-print-directory installcheck REGRESS= ISOLATION= TAP_TESTS=1 \
			PROVE_TESTS="$t" PROVE_FLAGS="-v" >"$work/logs/tap_$name.log" 2>&1 &
		echo $! >"$work/lanes/$lane.child"
		wait $!
		status=$?
		# its runner is gone: stop_lanes must not signal that pid again
		rm -f "$work/lanes/$lane.child"
		stop_all_clusters "$dir"
		mkdir -p "$work/logs/tap_$name"
		cp -a "$dir/tmp_check/log/." "$work/logs/tap_$name/" 2>/dev/null
		date +%s >"$work/logs/tap_$name.end"
		# renamed into place: the reader never sees it empty
		echo "$status" >"$work/logs/tap_$name.status.tmp" &&
			mv "$work/logs/tap_$name.status.tmp" "$work/logs/tap_$name.status"
	done
}

# Every way out: no lane may go on running a file after the run ended.
# The lane first, so that it starts no other file, then the runner of its
# file (runuser, or timeout when not root), which passes SIGTERM on to the
# file's make and prove; waited for (20 s, then SIGKILL), so that no node
# starts after stop_all_clusters.
stop_lanes() {
	local pid lane=0 runners=() i alive
	for pid in "${lane_pids[@]}"; do
		lane=$((lane + 1))
		kill "$pid" 2>/dev/null
		[ -s "$work/lanes/$lane.child" ] || continue
		pid=$(cat "$work/lanes/$lane.child")
		kill "$pid" 2>/dev/null && runners+=("$pid")
	done
	for i in $(seq 1 20); do
		alive=0
		for pid in "${runners[@]}"; do
			kill -0 "$pid" 2>/dev/null && alive=1
		done
		[ "$alive" = 0 ] && return 0
		sleep 1
	done
	for pid in "${runners[@]}"; do
		kill -KILL "$pid" 2>/dev/null
	done
	return 0
}

t_tap=$SECONDS
start_pid_chooser
export PG_TEST_PORT_DIR="$work/portlock"
mkdir -p "$PG_TEST_PORT_DIR"
[ "$(id -u)" = 0 ] && chown postgres: "$PG_TEST_PORT_DIR"
# the queue: with more than one lane the long files first, then the rest
# in the Makefile's order
: >"$work/tap_queue"
[ "$TAP_JOBS" -gt 1 ] || TAP_LONG_FIRST=
for long in $TAP_LONG_FIRST; do
	for t in $tap_list; do
		[ "$(basename "$t" .pl)" = "$long" ] && echo "$t" >>"$work/tap_queue"
	done
done
for t in $tap_list; do
	grep -qxF "$t" "$work/tap_queue" || echo "$t" >>"$work/tap_queue"
done
mkdir -p "$work/lanes"
n_tap=$(wc -w <<<"$tap_list")
[ "$TAP_JOBS" -gt "$n_tap" ] && TAP_JOBS=$n_tap
[ "$n_tap" -gt 0 ] && log "TAP: $n_tap files, $TAP_JOBS at a time"
for lane in $(seq 1 "$TAP_JOBS"); do
	lane_dir=$work/lane$lane
	cp -a "$src" "$lane_dir"
	tap_lane "$lane_dir" "$lane" &
	lane_pids+=($!)
done


#
# 3. pg_regress and the isolation specs against a throwaway cluster, while
#    the TAP lanes run
#
t_regress=$SECONDS
if [ "$n_regress" -gt 0 ] || [ "$n_isolation" -gt 0 ]; then
	# Another run may take the port between the probe and the start: retry.
	next_port=${CONNWATCH_TEST_PORT:-55100}
	for attempt in 1 2 3; do
		port=$(free_port "$next_port") || break
		next_port=$((port + 1))
		dir="$work/cluster$attempt"
		log "cluster on port $port ($dir)"
		if PGBIN="$pgbin" "$root/scripts/pgcluster.sh" start "$dir" "$port" \
			"max_connections = 100" \
			"max_prepared_transactions = 10"; then
			cluster=$dir
			break
		fi
		show_tail "initdb log" "$dir/initdb.log"
		show_tail "server log" "$dir/server.log"
	done
	if [ -z "$cluster" ]; then
		echo "!!! could not start the test cluster"
		failed=$((failed + n_regress + n_isolation))
	fi
fi

if [ -n "$cluster" ]; then
	pgenv=(env PGHOST="$cluster" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres)
	failed_before=$failed

	if [ "$n_regress" -gt 0 ]; then
		log "pg_regress: $n_regress tests"
		as_pg "${pgenv[@]}" timeout -k 10 "$(time_limit $REGRESS_TIMEOUT)" \
			make -s -C "$src" --no-print-directory installcheck ISOLATION= TAP_TESTS= \
			2>&1 | tee "$work/logs/regress.log"
		status=${PIPESTATUS[0]}
		if ! count_regress "$work/logs/regress.log" "$n_regress" "$status"; then
			show_file "regression diffs" "$src/regression.diffs" 200
		fi
		# This cluster has what every file needs (TCP, prepared
		# transactions): a file that took its "skipped:" way lost its
		# coverage and counts as failed, not passed.
		for f in $(grep -l '^skipped:' "$src"/results/*.out 2>/dev/null); do
			t=$(basename "$f" .out)
			echo "!!! $t skipped on the suite's cluster: $(grep -m1 '^skipped:' "$f")"
			grep -qE "^(test +)?[[:space:]]*$t +\.\.\. ok( |\$)|^ok [0-9]+ +[-+] +$t( |\$)" \
				"$work/logs/regress.log" || continue
			passed=$((passed - 1))
			failed=$((failed + 1))
		done
	fi

	# Debian's postgresql-server-dev-13 does not ship pg_isolation_regress:
	# there the specs are reported as skipped, never as passed.
	isolation_driver="$(dirname "$("$PG_CONFIG" --pgxs)")/../../src/test/isolation/pg_isolation_regress"
	if [ "$n_isolation" -gt 0 ] && [ ! -x "$isolation_driver" ]; then
		log "isolation: $n_isolation specs SKIPPED: this major's server-dev package has no pg_isolation_regress"
		skipped=$((skipped + n_isolation))
	elif [ "$n_isolation" -gt 0 ]; then
		log "isolation: $n_isolation specs"
		as_pg "${pgenv[@]}" timeout -k 10 "$(time_limit $ISOLATION_TIMEOUT)" \
			make -s -C "$src" --no-print-directory installcheck REGRESS= TAP_TESTS= \
			2>&1 | tee "$work/logs/isolation.log"
		status=${PIPESTATUS[0]}
		if ! count_regress "$work/logs/isolation.log" "$n_isolation" "$status"; then
			show_file "isolation diffs" "$src/output_iso/regression.diffs" 200
		fi
	fi

	if [ "$failed" -gt "$failed_before" ]; then
		show_tail "server log" "$cluster/server.log" 80
	fi
	PGBIN="$pgbin" "$root/scripts/pgcluster.sh" stop "$cluster" || true
	check_crashes "pg_regress and isolation" "$cluster/server.log"
fi

t_regress=$((SECONDS - t_regress))

#
# 2b. A user's plain "make installcheck" against a stock cluster (initdb,
#     start, nothing else): it must pass; one test.
#
if [ "$n_regress" -gt 0 ]; then
	log "make installcheck against a stock cluster"
	timeout -k 10 "$(time_limit $REGRESS_TIMEOUT)" bash "$root/scripts/stock_installcheck.sh" \
		"$src" "$work/stock" "${CONNWATCH_TEST_PORT:-55100}" >"$work/logs/stock.log" 2>&1
	status=$?
	grep -E 'All [0-9]+ tests|[0-9]+ of [0-9]+ tests|\.\.\. FAILED|^not ok|^stock cluster|^skipped on|specs skipped|TAP|!!!' "$work/logs/stock.log"
	if [ "$status" -eq 0 ]; then
		passed=$((passed + 1))
	else
		echo "!!! make installcheck against a stock cluster failed (status $status)"
		failed=$((failed + 1))
		show_file "stock installcheck diffs" "$work/stock/src/regression.diffs" 200
		show_file "stock installcheck isolation diffs" "$work/stock/src/output_iso/regression.diffs" 200
		show_tail "stock installcheck log" "$work/logs/stock.log" 40
	fi
	stop_all_clusters "$work/stock"
	check_crashes "stock installcheck" "$work/stock/server.log"
fi

#
# 4. The TAP files' results, in the Makefile's order
#
for t in $tap_list; do
	name=$(basename "$t" .pl)
	# wait for the file's lane to finish it; a lane that died leaves no status
	while [ ! -e "$work/logs/tap_$name.status" ]; do
		alive=0
		for pid in "${lane_pids[@]}"; do
			kill -0 "$pid" 2>/dev/null && alive=1
		done
		[ "$alive" = 1 ] || break
		sleep 1
	done
	log "TAP: $t"
	out="$work/logs/tap_$name.log"
	if [ -e "$work/logs/tap_$name.status" ]; then
		status=$(cat "$work/logs/tap_$name.status")
		cat "$out"
		echo "($t: $(($(cat "$work/logs/tap_$name.end") - $(cat "$work/logs/tap_$name.start"))) s)"
	else
		status=1
		echo "!!! $t did not run (its lane ended before it)"
		touch "$out"
	fi
	ok=$(grep -cE '^ok [0-9]+' "$out")
	todo_ok=$(grep -cE '^not ok [0-9]+.*# *TODO' "$out")
	bad=$(grep -E '^not ok [0-9]+' "$out" | grep -cvE '# *TODO')
	skips=$(grep -cE '^ok [0-9]+.*# *(skip|SKIP)' "$out")
	ok=$((ok - skips + todo_ok))
	# a file that skipped itself whole (1..0 # SKIP ...) counts as one skip
	# (prove -v prints it as "file.pl .. skipped: reason")
	if [ "$status" -eq 0 ] && grep -qE '^1\.\.0 *# *(skip|SKIP)|\.pl \.+ skipped: ' "$out"; then
		skips=$((skips + 1))
	fi
	if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
		echo "!!! $t timed out"
	fi
	if [ "$status" -ne 0 ] && [ "$bad" -eq 0 ]; then
		echo "!!! $t exited with status $status without a failed assertion (died, bad plan or timeout)"
		bad=1
	fi
	passed=$((passed + ok))
	failed=$((failed + bad))
	skipped=$((skipped + skips))
	logs="$work/logs/tap_$name"
	if [ "$bad" -gt 0 ]; then
		for f in "$logs"/regress_log_*; do
			[ -s "$f" ] || continue
			echo "----- TAP log without passing assertions ($f, last 150 lines)"
			grep -vE '^(\[[^]]*\] *(\([^)]*\) *)?)?ok [0-9]+' "$f" | tail -n 150
			echo "-----"
		done
		for f in "$logs"/*.log; do
			[ -s "$f" ] || continue
			case "$(basename "$f")" in regress_log_*) continue ;; esac
			echo "----- TAP server log ($f: errors, then last 30 lines)"
			grep -E 'PANIC|FATAL|TRAP|terminated by signal|exited with exit code' "$f" | head -n 50
			echo "..."
			tail -n 30 "$f"
			echo "-----"
		done
	fi
	# the server logs the file left (the lane copied them before its next file)
	check_crashes "$t" $(find "$logs" -name '*.log' ! -name 'regress_log_*' 2>/dev/null)
done
wait "${lane_pids[@]}" 2>/dev/null
# reaped: their pids may be anybody's now, and stop_lanes must not use them
lane_pids=()
log "time: $SECONDS s in all: build and install $((t_installed - t_build)) s, then TAP $((SECONDS - t_tap)) s ($TAP_JOBS files at a time), pg_regress and isolation $t_regress s of it"

summary_and_exit
