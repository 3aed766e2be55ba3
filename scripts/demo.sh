#!/usr/bin/env bash
# scripts/demo.sh - show what pg_connwatch sees in a realistic workload.
#
# Run as root on Debian 12 from the top of the tree:  bash scripts/demo.sh
# (on the host's PostgreSQL 15), or  bash scripts/demo.sh --major 17  (13,
# 17, 18 or 19: inside that major's Debian root file system, scripts/pgroot.sh,
# with the same output).
#
# It installs the build dependencies (scripts/setup.sh), builds and installs
# the extension, starts a throwaway cluster on a private port (with
# pg_connwatch in shared_preload_libraries), and opens the sessions of a
# small shop:
#
#   nightly_report   (role reporting)    a REPEATABLE READ report, still running,
#                                        started first: it pins the xmin horizon
#   billing-api      (role billing_app)  a Flask/SQLAlchemy-like app that leaks:
#                                        8 sessions left idle in a transaction,
#                                        one of them aborted; CONNECTION LIMIT 10
#   orders-api       (role orders_app)   a healthy pool: 5 idle connections
#   admin_console    (role dba)          updated an order and went to lunch
#   orders-worker    (role orders_app)   2 sessions queued behind that row lock
#
# then prints what the views show, cleans the leak up (dry run, policy,
# enforce(), audit), replays an incident (the leak exhausts billing_app's
# limit, a batch job fills the server, a timeout cuts the leak), explains
# it "the morning after" from refused_connections, session_endings, peaks
# and a text chart of the history, ends with connwatch.diagnose() on its
# own workload (every finding about a misbehaving application, none about
# the healthy pool), and tears everything down (also on failure or Ctrl-C).  Environment: CONNWATCH_DEMO_PORT picks the port (default: the
# first free one from 55401).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD

# Another major: run this very script inside its root, on a copy of the tree.
if [ "${1:-}" = --major ] && [ "${2:-15}" != 15 ]; then
	root=$(bash scripts/pgroot.sh ensure "$2")
	rm -rf "${root:?}/tmp/pg_connwatch_demo"
	mkdir -p "$root/tmp/pg_connwatch_demo"
	tar -C "$REPO" --exclude=./.git --exclude='*.o' --exclude='*.so' \
		--exclude='*.bc' --exclude=./tmp_check -cf - . |
		tar -C "$root/tmp/pg_connwatch_demo" -xf -
	status=0
	bash scripts/pgroot.sh run "$2" env CONNWATCH_DEMO_IN_ROOT=1 \
		${CONNWATCH_DEMO_PORT:+CONNWATCH_DEMO_PORT=$CONNWATCH_DEMO_PORT} \
		bash /tmp/pg_connwatch_demo/scripts/demo.sh || status=$?
	bash scripts/pgroot.sh umount "$2" || true
	rm -rf "${root:?}/tmp/pg_connwatch_demo"
	exit "$status"
fi

# Server sized so that the limits mean something: 25 - 3 reserved = 22 slots.
MAX_CONNECTIONS=25
RESERVED=3
BILLING_LIMIT=10
BILLING_SESSIONS=8		# the last one ends up aborted
POOL_SESSIONS=5
WORKERS=2

DIR=
CLIENT_PIDS=()
CLIENT_FDS=()

cleanup()
{
	local rc=$?
	set +e
	trap - EXIT INT TERM
	for pid in "${CLIENT_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for fd in "${CLIENT_FDS[@]}"; do
		eval "exec $fd>&-"
	done
	if [ -n "$DIR" ]; then
		if [ "$rc" != 0 ] && [ "$rc" != 130 ] && [ "$rc" != 143 ]; then
			echo "demo failed (exit $rc); last server log lines:" >&2
			tail -n 20 "$DIR/server.log" >&2 2>/dev/null
			for log in "$DIR"/clients/*.log; do
				[ -s "$log" ] && { echo "--- $log" >&2; tail -n 5 "$log" >&2; }
			done
		fi
		bash "$REPO/scripts/pgcluster.sh" stop "$DIR"
	fi
	for pid in "${CLIENT_PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	[ -n "$DIR" ] && rm -rf "$DIR"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() { printf '\n>>> %s\n' "$*"; }

# --- 1. dependencies, build, install -----------------------------------------
if [ -z "${CONNWATCH_DEMO_IN_ROOT:-}" ]; then
	step "installing build dependencies (scripts/setup.sh)"
	bash scripts/setup.sh
fi

step "building and installing pg_connwatch"
make -s
make -s install

PGBIN=$(pg_config --bindir)
PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -P pager=off)

# --- 2. a throwaway cluster --------------------------------------------------
port_free()
{
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
PORT=${CONNWATCH_DEMO_PORT:-}
if [ -z "$PORT" ]; then
	for candidate in $(seq 55401 55499); do
		if port_free "$candidate"; then
			PORT=$candidate
			break
		fi
	done
	[ -n "$PORT" ] || { echo "no free port in 55401-55499" >&2; exit 1; }
fi

DIR=$(mktemp -d /tmp/connwatch-demo.XXXXXX)
step "starting a throwaway cluster in $DIR on port $PORT"
bash scripts/pgcluster.sh start "$DIR" "$PORT" \
	"max_connections = $MAX_CONNECTIONS" \
	"superuser_reserved_connections = $RESERVED" \
	"shared_preload_libraries = 'pg_connwatch'" \
	"connwatch.sample_interval = '500ms'"
export PGHOST=$DIR PGPORT=$PORT PGUSER=postgres PGDATABASE=shop
mkdir "$DIR/clients"

"${PSQL[@]}" -d postgres <<EOF
CREATE ROLE reporting LOGIN;
CREATE ROLE billing_app LOGIN CONNECTION LIMIT $BILLING_LIMIT;
CREATE ROLE orders_app LOGIN CONNECTION LIMIT 20;
CREATE ROLE dba LOGIN IN ROLE pg_monitor;
CREATE ROLE batch LOGIN;
CREATE DATABASE shop;
EOF

"${PSQL[@]}" <<'EOF'
CREATE EXTENSION pg_connwatch;
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (
    id          bigint PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers,
    status      text NOT NULL DEFAULT 'new',
    total       numeric(10,2) NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE invoices (
    id       bigint PRIMARY KEY,
    order_id bigint NOT NULL REFERENCES orders,
    amount   numeric(10,2) NOT NULL,
    paid     boolean NOT NULL DEFAULT false
);
INSERT INTO customers SELECT i, 'customer ' || i FROM generate_series(1, 500) i;
INSERT INTO orders (id, customer_id, status, total)
    SELECT i, 1 + i % 500, (ARRAY['new', 'paid', 'shipped'])[1 + i % 3], (i % 997) / 10.0
    FROM generate_series(1, 20000) i;
INSERT INTO invoices SELECT id, id, total, status <> 'new' FROM orders;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO reporting, billing_app, orders_app, dba, batch;
GRANT INSERT, UPDATE ON orders, invoices TO billing_app, orders_app, dba;
VACUUM ANALYZE;
EOF

# --- 3. the workload ---------------------------------------------------------
# Each client is a psql reading SQL from its own FIFO; the demo keeps the write
# end open, so the session stays where the SQL leaves it until cleanup.
open_session()		# name role application_name sql...
{
	local name=$1 role=$2 app=$3 fifo="$DIR/clients/$1.in" fd
	shift 3
	mkfifo "$fifo"
	(
		for fd in "${CLIENT_FDS[@]}"; do
			eval "exec $fd>&-"
		done
		PGAPPNAME=$app exec "$PGBIN/psql" -X -q -h 127.0.0.1 -U "$role" \
			<"$fifo" >"$DIR/clients/$name.log" 2>&1
	) &
	CLIENT_PIDS+=("$!")
	exec {fd}<>"$fifo"
	CLIENT_FDS+=("$fd")
	printf '%s\n' "$@" >&"$fd"
}

# wait_for what sql: poll until the query returns t (at most 30 s).
wait_for()
{
	local what=$1 sql=$2 i answer
	for i in $(seq 300); do
		answer=$("${PSQL[@]}" -Atc "SELECT $sql") || return 1
		[ "$answer" = t ] && return 0
		sleep 0.1
	done
	echo "timed out waiting for $what" >&2
	"${PSQL[@]}" -c "SELECT pid, usename, application_name, state, wait_event_type
		FROM pg_stat_activity WHERE backend_type = 'client backend'" >&2
	return 1
}

# count of client backends of an application in a state
in_state()
{
	echo "(SELECT count(*) FROM pg_catalog.pg_stat_activity
	  WHERE application_name = '$1' AND state = '$2'
	    AND coalesce(wait_event_type, '') $3)"
}

step "opening the workload sessions"

# The report starts first, so its snapshot is the oldest one around.
open_session report reporting nightly_report \
	"BEGIN ISOLATION LEVEL REPEATABLE READ;" \
	"SELECT customer_id, count(*), sum(total) FROM orders GROUP BY customer_id ORDER BY 3 DESC LIMIT 10;" \
	"SELECT pg_sleep(600);"
wait_for "nightly_report" "$(in_state nightly_report active "= 'Timeout'") = 1"

# Business goes on while the report runs: 50 orders, 50 transactions.
"${PSQL[@]}" <<'EOF'
DO $$
BEGIN
    FOR i IN 1..50 LOOP
        INSERT INTO orders (id, customer_id, total) VALUES (100000 + i, 1 + i % 500, 9.90);
        COMMIT;
    END LOOP;
END
$$;
EOF

# The leak: every request opens a transaction (SQLAlchemy's autobegin), reads,
# and the session goes back to the pool without COMMIT.  One request failed
# half-way and left its transaction aborted.
for i in $(seq "$BILLING_SESSIONS"); do
	sql=("BEGIN;" "SELECT id, amount FROM invoices WHERE NOT paid AND order_id % 97 = $i ORDER BY id LIMIT 20;")
	if [ "$i" = "$BILLING_SESSIONS" ]; then
		sql+=("INSERT INTO invoices (id, order_id, amount) VALUES (1, 1, 0.10);")
	fi
	open_session "billing$i" billing_app billing-api "${sql[@]}"
done
wait_for "billing-api" "$(in_state billing-api 'idle in transaction' "= 'Client'") = $((BILLING_SESSIONS - 1))
	AND $(in_state billing-api 'idle in transaction (aborted)' "= 'Client'") = 1"
sleep 1		# the leak is older than anything below

for i in $(seq "$POOL_SESSIONS"); do
	open_session "pool$i" orders_app orders-api \
		"SELECT count(*) FROM orders WHERE status = 'new' AND customer_id = $i;"
done
wait_for "orders-api" "$(in_state orders-api idle "= 'Client'") = $POOL_SESSIONS"

# The lock chain: an admin holds a row lock and walks away; workers queue up.
open_session admin dba admin_console \
	"BEGIN;" "UPDATE orders SET status = 'on_hold' WHERE id = 4242;"
wait_for "admin_console" "$(in_state admin_console 'idle in transaction' "= 'Client'") = 1"
for i in $(seq "$WORKERS"); do
	open_session "worker$i" orders_app orders-worker \
		"UPDATE orders SET status = 'shipped' WHERE id = 4242;"
	wait_for "orders-worker $i" "$(in_state orders-worker active "= 'Lock'") = $i"
done

sleep 2		# let the workload age a little

# --- 4. what the views show --------------------------------------------------
CLIENTS=$((1 + BILLING_SESSIONS + POOL_SESSIONS + 1 + WORKERS))
step "what pg_connwatch shows ($CLIENTS client sessions; max_connections = $MAX_CONNECTIONS, $RESERVED reserved)"

"${PSQL[@]}" -v clients="$CLIENTS" <<'EOF'
\pset footer off
\pset null '-'
-- Wait until every backend of the setup and poll connections above is gone,
-- so that the counts below are exactly the workload plus this session.
SET demo.clients = :'clients';
DO $$
DECLARE
    deadline timestamptz := pg_catalog.clock_timestamp() + interval '10 s';
BEGIN
    WHILE (SELECT count(*) FROM pg_catalog.pg_stat_activity
           WHERE backend_type = 'client backend')
          <> pg_catalog.current_setting('demo.clients')::int + 1 LOOP
        IF pg_catalog.clock_timestamp() > deadline THEN
            RAISE EXCEPTION 'unexpected number of client backends';
        END IF;
        PERFORM pg_catalog.pg_sleep(0.05);
        PERFORM pg_catalog.pg_stat_clear_snapshot();
    END LOOP;
END
$$;

\echo
\echo '== connection_limits: every limit, counting only what PostgreSQL counts for it.'
\echo '   billing_app is close to its CONNECTION LIMIT; the server row counts client'
\echo '   backends against max_connections - superuser_reserved_connections.'
SELECT scope, name, used, max, headroom, pct_used, status
FROM connwatch.connection_limits;

\echo
\echo '== connection_headroom: how many more connections each role could open now,'
\echo '   and which limit stops it first.'
SELECT rolname, superuser, can_use_reserved AS reserved_ok, role_limit,
       used, headroom, binding_limit
FROM connwatch.connection_headroom;

\echo
\echo '== connection_summary: who holds the connections. Groups with idle'
\echo '   transactions come first: the leaking application is the first row.'
\echo '   xact_s: oldest open transaction, idle_s: longest idle in transaction.'
SELECT usename, application_name AS application, total, active, idle,
       idle_in_transaction AS idle_tx, idle_in_transaction_aborted AS aborted,
       waiting AS waits,
       round(extract(epoch FROM oldest_xact_age)::numeric, 1) AS xact_s,
       round(extract(epoch FROM longest_idle_in_transaction)::numeric, 1) AS idle_s
FROM connwatch.connection_summary;

\echo
\echo '== idle_in_transaction: sessions that forgot to COMMIT, longest idle first.'
\echo '   idle_s counts from the last statement (state_change), not from BEGIN.'
SELECT pid, usename, state = 'idle in transaction (aborted)' AS aborted,
       round(extract(epoch FROM idle_for)::numeric, 1) AS idle_s,
       holds_xmin, locks_held AS locks, blocking,
       left(query, 24) AS last_query
FROM connwatch.idle_in_transaction;

\echo
\echo '== long_transactions with connwatch.long_transaction_threshold = 1s:'
\echo '   every transaction open for more than a second, oldest first.'
SET connwatch.long_transaction_threshold = '1s';
SELECT pid, application_name AS application, state,
       round(extract(epoch FROM xact_age)::numeric, 1) AS xact_s,
       xmin_age, blocking, left(query, 21) AS query
FROM connwatch.long_transactions;

\echo
\echo '== xmin_horizon: what keeps VACUUM from removing dead rows, oldest first.'
\echo '   The REPEATABLE READ report started first and holds the horizon back.'
SELECT holder_type, holder, usename, application_name AS application, state,
       xmin, xmin_age
FROM connwatch.xmin_horizon;

\echo
\echo '== sessions waiting on a lock (connwatch.sessions, cardinality(blocked_by) > 0):'
\echo '   the chain ends at the admin_console session idle in its transaction.'
SELECT s.pid, s.application_name AS application, s.wait_event_type AS wait,
       s.wait_event, s.blocked_by,
       round(extract(epoch FROM s.state_age)::numeric, 1) AS waiting_s,
       left(s.query, 24) AS query
FROM connwatch.sessions AS s
WHERE cardinality(s.blocked_by) > 0
ORDER BY s.state_age DESC;

-- The demo's claims, checked against the views themselves.
DO $$
DECLARE
    top_idle name := (SELECT usename FROM connwatch.idle_in_transaction
                      ORDER BY idle_for DESC LIMIT 1);
    top_group name := (SELECT usename FROM connwatch.connection_summary LIMIT 1);
    top_xmin text := (SELECT application_name FROM connwatch.xmin_horizon LIMIT 1);
BEGIN
    IF top_idle IS DISTINCT FROM 'billing_app'
       OR top_group IS DISTINCT FROM 'billing_app'
       OR top_xmin IS DISTINCT FROM 'nightly_report' THEN
        RAISE EXCEPTION 'the views do not show the expected picture'
            USING DETAIL = format('top of idle_in_transaction: %s, of connection_summary: %s, of xmin_horizon: %s',
                                  top_idle, top_group, top_xmin);
    END IF;
END
$$;

\echo
\pset format unaligned
\pset tuples_only on
SELECT format('verdict: %s leaks idle-in-transaction sessions: %s of %s allowed, idle up to %ss',
              s.usename,
              s.idle_in_transaction + s.idle_in_transaction_aborted, l.max,
              round(extract(epoch FROM s.longest_idle_in_transaction)::numeric, 1))
FROM (SELECT * FROM connwatch.connection_summary LIMIT 1) AS s
LEFT JOIN connwatch.connection_limits AS l
       ON l.scope = 'role' AND l.name = s.usename;
EOF

# --- 5. acting on it ---------------------------------------------------------
step "cleaning up the leak safely: a dry run, then a policy, then the audit trail"

"${PSQL[@]}" <<'EOF'
\pset footer off
\pset null '-'
\echo
\echo '== terminate_idle_in_transaction(dry_run => true): what a cleanup would do.'
\echo '   Each session is re-checked live right before the (here: pretend) signal.'
SELECT pid, usename, action, reason
FROM connwatch.terminate_idle_in_transaction('1s', dry_run => true)
ORDER BY usename, pid;

\echo
\echo '== a policy for the leaking application, applied by connwatch.enforce()'
\echo '   (what pg_cron would run every minute: see connwatch.schedule_enforcement()).'
INSERT INTO connwatch.policies (name, state, older_than, usename)
VALUES ('billing-leaks', 'idle in transaction', '1s', 'billing_app');
SELECT pid, usename, action, reason, policy
FROM connwatch.enforce()
ORDER BY pid;

\echo
\echo '== connwatch.terminations: the audit trail (the same facts are in the server log).'
SELECT pid, usename, round(extract(epoch FROM state_age)::numeric, 1) AS idle_s,
       action, policy, invoked_by, left(query, 24) AS query
FROM connwatch.terminations
ORDER BY logged_at, pid;

-- Wait for the terminated backends to exit before showing the limits.
DO $$
DECLARE
    deadline timestamptz := pg_catalog.clock_timestamp() + interval '10 s';
BEGIN
    WHILE EXISTS (SELECT 1 FROM connwatch.sessions()
                  WHERE usename = 'billing_app') LOOP
        IF pg_catalog.clock_timestamp() > deadline THEN
            RAISE EXCEPTION 'the terminated sessions did not exit';
        END IF;
        PERFORM pg_catalog.pg_sleep(0.05);
    END LOOP;
END
$$;

\echo
\echo '== connection_limits afterwards: the leaked slots are free again; the admin'
\echo '   session (another role) and the healthy pool were left alone.'
SELECT scope, name, used, max, headroom, pct_used, status
FROM connwatch.connection_limits
WHERE scope = 'server' OR name IN ('billing_app', 'orders_app', 'dba');
EOF

# --- 6. an incident, and the morning after ----------------------------------
step "an incident at 03:00 (compressed into a few seconds), then the morning after"

STARTED=$("${PSQL[@]}" -Atc "SELECT now()")
"${PSQL[@]}" -c "ALTER ROLE billing_app SET idle_in_transaction_session_timeout = '8s'"

# billing-api leaks again, up to its CONNECTION LIMIT: every further
# request of the application is refused ("too many connections for role").
for i in $(seq "$BILLING_LIMIT"); do
	open_session "leak$i" billing_app billing-api \
		"BEGIN;" "SELECT id FROM invoices WHERE NOT paid LIMIT 1;"
	sleep 0.3		# one leaked request after the other
done
wait_for "billing-api" "$(in_state billing-api 'idle in transaction' "= 'Client'") = $BILLING_LIMIT"
for i in 1 2 3; do
	if PGAPPNAME=billing-api "$PGBIN/psql" -X -q -h 127.0.0.1 -U billing_app \
		-c 'SELECT 1' >/dev/null 2>&1; then
		echo "billing-api was not refused" >&2
		exit 1
	fi
done

# A batch job fans out over more connections than the server has left: it
# takes every ordinary slot, and its further workers are refused
# ("remaining connection slots are reserved ...").  (The session that
# counts is gone when the batch starts.)
BATCH=$("${PSQL[@]}" -Atc "SELECT $MAX_CONNECTIONS - $RESERVED - count(*) + 1
	FROM pg_stat_activity WHERE backend_type = 'client backend'")
for i in $(seq "$BATCH"); do
	open_session "batch$i" batch batch-job "SELECT pg_sleep(4);" '\q'
	sleep 0.3
done
wait_for "batch-job" "$(in_state batch-job active "= 'Timeout'") = $BATCH"
for i in 1 2; do
	if PGAPPNAME=batch-job "$PGBIN/psql" -X -q -h 127.0.0.1 -U batch \
		-c 'SELECT 1' >/dev/null 2>&1; then
		echo "batch-job was not refused" >&2
		exit 1
	fi
done

# The batch ends; idle_in_transaction_session_timeout cuts the leaked
# sessions (their clients will see "server closed the connection
# unexpectedly" on next use).  By 09:00 the server looks calm.
wait_for "the leak to be cut" "(SELECT count(*) FROM pg_stat_activity
	WHERE application_name IN ('billing-api', 'batch-job')) = 0"
sleep 1

"${PSQL[@]}" -v started="$STARTED" <<'EOF'
\pset footer off
\pset null '-'
\echo
\echo '== the morning after: pg_stat_activity shows a calm server.'
SELECT count(*) AS client_sessions_now FROM pg_stat_activity
WHERE backend_type = 'client backend';

\echo
\echo '== refused_connections: who was refused during the night, and why.'
SELECT cause, usename, application_name AS application, count
FROM connwatch.refused_connections
WHERE last_at >= :'started'
ORDER BY count DESC, cause;

\echo
\echo '== session_endings: how the sessions of the night ended.'
\echo '   lifetimes: sessions under 100 ms, 1 s, 10 s, 1 min (doc/remember.md).'
SELECT application_name AS application, reason, count,
       lifetime_buckets[1:4] AS lifetimes
FROM connwatch.session_endings
WHERE application_name IN ('billing-api', 'batch-job') AND last_at >= :'started'
ORDER BY application, reason;

\echo
\echo '== peaks: the most sessions at once.'
SELECT scope, name, current, peak
FROM connwatch.peaks
WHERE scope = 'server' OR name IN ('billing_app', 'batch', 'billing-api', 'batch-job')
ORDER BY scope, name;

\echo
\echo '== history: client sessions during the incident, one line per sample'
\echo '   (500 ms): # a session, x a refused attempt.'
SELECT to_char(sampled_at, 'HH24:MI:SS.MS') AS time,
       client_backends AS sessions, idle_in_transaction AS leaked, refused,
       repeat('#', client_backends) || repeat('x', refused::int) AS chart
FROM connwatch.history(:'started', now())
ORDER BY sampled_at;

-- The morning-after story, checked against the views themselves.
SET demo.started = :'started';
DO $$
DECLARE
    started timestamptz := pg_catalog.current_setting('demo.started')::timestamptz;
BEGIN
    IF (SELECT sum(count) FROM connwatch.refused_connections
        WHERE cause = 'role limit' AND usename = 'billing_app' AND last_at >= started)
           IS DISTINCT FROM 3
       OR (SELECT sum(count) FROM connwatch.refused_connections
           WHERE cause = 'reserved slots' AND usename = 'batch' AND last_at >= started)
           IS DISTINCT FROM 2
       OR (SELECT sum(count) FROM connwatch.session_endings
           WHERE application_name = 'billing-api'
             AND reason = 'idle-in-transaction timeout') IS DISTINCT FROM 10
       OR (SELECT peak FROM connwatch.peaks
           WHERE scope = 'role' AND name = 'billing_app') < 10
       OR NOT EXISTS (SELECT 1 FROM connwatch.history(started, now())
                      WHERE refused > 0) THEN
        RAISE EXCEPTION 'the ledgers do not tell the story of the incident';
    END IF;
END
$$;

\echo
\echo '== diagnose(): the findings, most severe first. Each says what happened,'
\echo '   with the evidence, what the application saw, and the fix'
\echo '   (doc/diagnose.md). Thresholds for a demo that lasts seconds, not hours:'
SET connwatch.diagnose_idle_in_transaction = '5s';
SET connwatch.diagnose_horizon_age = '10s';
\x on
SELECT severity, code, subject, finding, client_symptom, advice
FROM connwatch.diagnose();
\x off

-- Every finding is about one of the misbehaving applications; the healthy
-- pool (orders-api) and its workers appear in none.
DO $$
DECLARE
    f record;
    seen text[] := '{}';
BEGIN
    FOR f IN SELECT * FROM connwatch.diagnose() LOOP
        IF f.evidence->>'application' IS NULL
           OR f.evidence->>'application' NOT IN ('billing-api', 'batch-job', 'admin_console', 'nightly_report')
           OR f.client_symptom = '' OR f.advice = '' THEN
            RAISE EXCEPTION 'diagnose() reported % about %', f.code, f.subject;
        END IF;
        seen := seen || f.code;
    END LOOP;
    IF NOT seen @> ARRAY['CW101', 'CW111', 'CW112', 'CW120', 'CW130', 'CW150'] THEN
        RAISE EXCEPTION 'diagnose() missed part of the story: %', seen;
    END IF;
END
$$;
EOF

step "stopping the workload and the cluster"
