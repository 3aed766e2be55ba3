#!/usr/bin/python3
"""Client scenarios for connwatch.diagnose(), driven by real clients.

Each scenario reproduces a pattern that brings people to pg_connwatch, with
SQLAlchemy and psycopg2, against a running server, until the client raises
its real error.  It keeps the pattern alive, runs

    SELECT severity, code, subject, finding, evidence::text, client_symptom,
           advice, needs_preload FROM connwatch.diagnose()

over a separate superuser connection, prints ONE JSON line on stdout and
cleans up (closes every connection, rolls back prepared transactions).

    /usr/bin/python3 test/scenarios/scenarios.py SCENARIO [--hold S] [--evidence]

Connection parameters come from libpq's environment (PGHOST, PGPORT, PGUSER:
a superuser; PGDATABASE, default postgres).  The script creates the roles
and tables it needs when they are missing:

    cw_app      LOGIN                       the applications' role
    cw_limited  LOGIN CONNECTION LIMIT 3    role_limit
    cw_idle     LOGIN, idle_session_timeout = 1s (14+; on 13
                idle_in_transaction_session_timeout = 1s)
    cw_scenario_items, cw_scenario_accounts (in PGDATABASE)

The JSON line:

    {"scenario": ..., "client_error": first line of str(exc), SQLAlchemy's
     " (Background on this error at: ...)" removed, or null,
     "error_type": "sqlalchemy.exc.TimeoutError" (module.class), or null,
     "client_errors": [{"application", "role", "error_type", "client_error"}],
     "findings": [{"severity", "code", "subject", "finding", "evidence",
                   "client_symptom", "advice", "needs_preload"}] or null
                 (null: diagnose() failed, see "diagnose_error"),
     ... scenario-specific keys}

Exit status: 0 when the scenario produced what it should (the client's error
where one is expected), 1 when it did not, 2 on an unexpected failure.

Works with SQLAlchemy 1.3, 1.4 and 2.0 (text(), engine.connect(),
engine.begin(), Session(bind=...); no API removed in 2.0 or added after 1.3)
and psycopg2 2.8+.  Only the standard library besides them.
"""

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import traceback
import warnings

warnings.simplefilter("ignore")
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")

import psycopg2  # noqa: E402
import sqlalchemy  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

# SQLAlchemy logs "Exception during reset or similar" with a traceback when a
# pooled connection breaks; that is the scenario working, not noise to show.
_sa_log = logging.getLogger("sqlalchemy")
_sa_log.addHandler(logging.NullHandler())
_sa_log.propagate = False

DBNAME = os.environ.get("PGDATABASE") or "postgres"
ADMIN_APP = "connwatch-scenarios"

APP_ROLE = "cw_app"
LIMITED_ROLE = "cw_limited"
IDLE_ROLE = "cw_idle"

DIAGNOSE_SQL = """
SELECT severity, code, subject, finding, evidence::text, client_symptom,
       advice, needs_preload
FROM connwatch.diagnose()"""

EVIDENCE_SQL = {
    "refused_connections":
        "SELECT cause, datname, usename, application_name, count "
        "FROM connwatch.refused_connections ORDER BY 1, 2, 3, 4",
    "session_endings":
        "SELECT * FROM connwatch.session_endings ORDER BY 1, 2, 3, 4",
    "peaks":
        "SELECT scope, name, current, peak FROM connwatch.peaks ORDER BY 1, 2",
    "connection_summary":
        "SELECT * FROM connwatch.connection_summary",
    "connection_limits":
        "SELECT * FROM connwatch.connection_limits",
    "idle_in_transaction":
        "SELECT pid, usename, application_name, idle_for::text, blocking "
        "FROM connwatch.idle_in_transaction",
    "xmin_horizon":
        "SELECT * FROM connwatch.xmin_horizon",
    "history_last_5":
        "SELECT * FROM connwatch.history ORDER BY sampled_at DESC LIMIT 5",
}


def log(msg):
    sys.stderr.write("scenarios: %s\n" % msg)
    sys.stderr.flush()


def type_name(exc):
    cls = type(exc)
    return "%s.%s" % (cls.__module__, cls.__name__)


_BACKGROUND = re.compile(r"\s*\(Background on this error at: [^)]*\)\s*$")


def first_line(exc):
    """The first line of str(exc), without SQLAlchemy's background link."""
    lines = str(exc).strip().splitlines()
    line = lines[0] if lines else ""
    return _BACKGROUND.sub("", line).rstrip()


def describe(exc):
    return type_name(exc), first_line(exc)


def pg_connect(app, user=None, **kw):
    """A plain psycopg2 connection (the rest from libpq's environment)."""
    args = {"dbname": DBNAME, "application_name": app}
    if user:
        args["user"] = user
    args.update(kw)
    return psycopg2.connect(**args)


def engine(app, user=None, options=None, **kw):
    """A SQLAlchemy engine over psycopg2; host, port from the environment."""
    connect_args = {"dbname": DBNAME, "application_name": app}
    if user:
        connect_args["user"] = user
    if options:
        connect_args["options"] = options
    return sqlalchemy.create_engine("postgresql+psycopg2://",
                                    connect_args=connect_args, **kw)


class Scenario(object):
    """Shared state of one run: the admin connection, settings, the result."""

    def __init__(self, name, args):
        self.name = name
        self.args = args
        self.admin = pg_connect(ADMIN_APP)
        self.admin.autocommit = True
        self.result = {"scenario": name, "client_error": None,
                       "error_type": None, "client_errors": [],
                       "findings": None}
        self.cleanups = []
        self.version = self.admin.server_version
        self.result["server_version_num"] = self.version

    # -- admin helpers ----------------------------------------------------

    def sql(self, query, params=None):
        cur = self.admin.cursor()
        cur.execute(query, params)
        rows = cur.fetchall() if cur.description else None
        cur.close()
        return rows

    def value(self, query, params=None):
        rows = self.sql(query, params)
        return rows[0][0] if rows else None

    def seconds_setting(self, name):
        """An interval GUC in seconds; None when it does not exist (yet)."""
        try:
            return self.value(
                "SELECT extract(epoch FROM "
                "current_setting(%s, true)::interval)::float8", (name,))
        except psycopg2.Error:
            return None

    def hold_for(self, auto):
        """--hold when given, else the scenario's own figure."""
        if self.args.hold is not None:
            return self.args.hold
        return auto

    def wait_until(self, query, params=None, timeout=20.0, what="condition"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.value(query, params):
                return True
            time.sleep(0.05)
        raise RuntimeError("timed out waiting for %s" % what)

    def setup(self):
        v = self.version
        self.sql("""
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cw_app') THEN
        CREATE ROLE cw_app LOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cw_limited') THEN
        CREATE ROLE cw_limited LOGIN CONNECTION LIMIT 3;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cw_idle') THEN
        CREATE ROLE cw_idle LOGIN;
    END IF;
END
$$""")
        if v >= 140000:
            self.sql("ALTER ROLE cw_idle SET idle_session_timeout = '1s'")
        else:
            self.sql("ALTER ROLE cw_idle SET "
                     "idle_in_transaction_session_timeout = '1s'")
        self.sql("""
CREATE TABLE IF NOT EXISTS cw_scenario_items (
    id integer PRIMARY KEY, name text NOT NULL, qty integer NOT NULL)""")
        self.sql("""
CREATE TABLE IF NOT EXISTS cw_scenario_accounts (
    id integer PRIMARY KEY, balance numeric NOT NULL)""")
        # a prepared transaction a crashed earlier run left behind
        self.rollback_prepared()
        self.sql("""
INSERT INTO cw_scenario_items
SELECT g, 'item ' || g, g FROM generate_series(1, 20) AS g
WHERE NOT EXISTS (SELECT FROM cw_scenario_items)""")
        self.sql("""
INSERT INTO cw_scenario_accounts
SELECT g, 100 FROM generate_series(1, 10) AS g
WHERE NOT EXISTS (SELECT FROM cw_scenario_accounts)""")
        self.sql("GRANT SELECT, INSERT, UPDATE, DELETE ON cw_scenario_items, "
                 "cw_scenario_accounts TO PUBLIC")

    def rollback_prepared(self):
        if self.value("SELECT count(*) FROM pg_prepared_xacts WHERE gid = %s",
                      (GID,)):
            self.sql("ROLLBACK PREPARED %s", (GID,))

    # -- the result -------------------------------------------------------

    def client_error(self, exc, application, role=None, primary=True):
        etype, line = describe(exc)
        self.result["client_errors"].append(
            {"application": application, "role": role,
             "error_type": etype, "client_error": line})
        if primary and self.result["client_error"] is None:
            self.result["client_error"] = line
            self.result["error_type"] = etype
            self.result["client_error_full"] = str(exc)
        log("%s got %s: %s" % (application, etype, line))

    def diagnose(self, key="findings"):
        try:
            cur = self.admin.cursor()
            cur.execute(DIAGNOSE_SQL)
            rows = cur.fetchall()
            cur.close()
            findings = []
            for (severity, code, subject, finding, evidence, symptom,
                 advice, needs_preload) in rows:
                findings.append({
                    "severity": severity, "code": code, "subject": subject,
                    "finding": finding,
                    "evidence": json.loads(evidence) if evidence else None,
                    "client_symptom": symptom, "advice": advice,
                    "needs_preload": needs_preload})
            self.result[key] = findings
        except psycopg2.Error as exc:
            self.result[key] = None
            self.result["diagnose_error"] = "%s: %s" % describe(exc)
            log("diagnose() failed: %s" % first_line(exc))
        if self.args.evidence:
            self.evidence()

    def evidence(self):
        ev = {}
        for name, query in EVIDENCE_SQL.items():
            try:
                cur = self.admin.cursor()
                cur.execute(query)
                cols = [d[0] for d in cur.description]
                ev[name] = [dict(zip(cols, [json_value(v) for v in row]))
                            for row in cur.fetchall()]
                cur.close()
            except psycopg2.Error as exc:
                ev[name] = "%s: %s" % describe(exc)
        self.result.setdefault("evidence", []).append(ev)

    def cleanup(self):
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as exc:  # cleanup goes on
                log("cleanup: %s: %s" % describe(exc))
        self.cleanups = []


def json_value(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [json_value(x) for x in v]
    return str(v)


# ---------------------------------------------------------------------------
# 1. leaked_sessions: a Flask-style app that never closes its Sessions
# ---------------------------------------------------------------------------

APP_LEAK = "flask-orders"


def leaked_sessions(sc):
    eng = engine(APP_LEAK, user=APP_ROLE, pool_size=5, max_overflow=10,
                 pool_timeout=2)
    # What the app keeps per request and never tears down (a g/request
    # context that outlives the request): the Session, still holding its
    # connection, idle in the transaction its first query began.
    request_context = {}

    def show_order(request_id):
        session = Session(bind=eng)
        rows = session.execute(
            text("SELECT id, name, qty FROM cw_scenario_items WHERE id = :id"),
            {"id": request_id % 20 + 1}).fetchall()
        request_context[request_id] = session
        return rows   # no session.close(), no commit

    def close_all():
        for s in request_context.values():
            try:
                s.close()
            except Exception:
                pass
        eng.dispose()
    sc.cleanups.append(close_all)

    request_id = 0
    while True:
        request_id += 1
        try:
            show_order(request_id)
        except sqlalchemy.exc.TimeoutError as exc:
            sc.client_error(exc, APP_LEAK, APP_ROLE)
            break
        if request_id > 100:
            raise RuntimeError("the pool never ran out")
    sc.result["leaked_sessions"] = len(request_context)
    error_at = time.time()

    # keep the app running (every request times out) for the window
    window = sc.seconds_setting("connwatch.diagnose_window")
    iit = sc.seconds_setting("connwatch.diagnose_idle_in_transaction")
    auto = max(0.5, (iit or 0) + 0.5, (window or 0) + 1.0)
    hold = sc.hold_for(min(auto, 30.0))
    failures = 1
    while time.time() < error_at + hold - 2.0:
        request_id += 1
        try:
            show_order(request_id)
        except sqlalchemy.exc.TimeoutError:
            failures += 1
    rest = error_at + hold - time.time()
    if rest > 0:
        time.sleep(rest)
    sc.result["failed_requests"] = failures
    sc.diagnose()
    return True


# ---------------------------------------------------------------------------
# 2. role_limit: a pool larger than its role's CONNECTION LIMIT
# ---------------------------------------------------------------------------

APP_BILLING = "billing-api"


def role_limit(sc):
    limit = sc.value("SELECT rolconnlimit FROM pg_roles WHERE rolname = %s",
                     (LIMITED_ROLE,))
    sc.result["role_connection_limit"] = limit
    eng = engine(APP_BILLING, user=LIMITED_ROLE, pool_size=5,
                 max_overflow=5, pool_timeout=2)
    held = []

    def close_all():
        for c in held:
            c.close()
        eng.dispose()
    sc.cleanups.append(close_all)

    # five request threads each hold a pooled connection through a request
    for i in range(10):
        try:
            conn = eng.connect()
        except sqlalchemy.exc.OperationalError as exc:
            sc.client_error(exc, APP_BILLING, LIMITED_ROLE)
            break
        held.append(conn)
        with conn.begin():
            conn.execute(text("SELECT name FROM cw_scenario_items "
                              "WHERE id = :id"), {"id": i + 1}).fetchall()
    sc.result["connections_held"] = len(held)
    time.sleep(sc.hold_for(0.5))
    sc.diagnose()
    return sc.result["client_error"] is not None


# ---------------------------------------------------------------------------
# 3. max_connections: the server runs out of slots
# ---------------------------------------------------------------------------

APP_FANOUT = "report-fanout"
APP_ADMIN_BATCH = "etl-admin"


def max_connections(sc):
    """report-fanout (an ordinary role) opens a connection per report worker
    until only the reserved slots are left; then etl-admin, a batch that
    connects as the superuser, takes those until none is left."""
    superuser = sc.value("SELECT current_user")
    held = []
    engines = []

    def close_all():
        for c in held:
            try:
                c.close()
            except Exception:
                pass
        for e in engines:
            e.dispose()
    sc.cleanups.append(close_all)

    def fill(app, user):
        eng = engine(app, user=user, pool_size=100, max_overflow=0,
                     pool_timeout=2)
        engines.append(eng)
        for _ in range(1000):
            try:
                conn = eng.connect()
            except sqlalchemy.exc.OperationalError as exc:
                return exc
            held.append(conn)
            with conn.begin():
                conn.execute(text("SELECT count(*) FROM cw_scenario_items"))
        raise RuntimeError("%s never ran out of connections" % app)

    exc = fill(APP_FANOUT, APP_ROLE)
    sc.client_error(exc, APP_FANOUT, APP_ROLE, primary=False)
    exc = fill(APP_ADMIN_BATCH, superuser)
    sc.client_error(exc, APP_ADMIN_BATCH, superuser, primary=True)
    sc.result["connections_held"] = len(held)
    time.sleep(sc.hold_for(0.5))
    sc.diagnose()
    return all("too many clients" in e["client_error"]
               or "reserved" in e["client_error"]
               for e in sc.result["client_errors"])


# ---------------------------------------------------------------------------
# 4. connect_per_request: no pooling, a connection per request
# ---------------------------------------------------------------------------

APP_CHURN = "flask-nullpool"


def connect_per_request(sc):
    duration = sc.args.duration if sc.args.duration is not None else 3.0
    eng = engine(APP_CHURN, user=APP_ROLE, poolclass=NullPool)
    sc.cleanups.append(eng.dispose)
    stop = threading.Event()
    counts = []
    errors = []

    def worker():
        n = 0
        i = 0
        while not stop.is_set():
            i += 1
            try:
                with eng.connect() as conn:
                    conn.execute(text("SELECT name FROM cw_scenario_items "
                                      "WHERE id = :id"),
                                 {"id": i % 20 + 1}).fetchall()
                n += 1
            except Exception as exc:
                errors.append(exc)
                time.sleep(0.01)
        counts.append(n)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    started = time.time()
    for t in threads:
        t.start()
    time.sleep(duration)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.time() - started
    total = sum(counts)
    sc.result["sessions"] = total
    sc.result["sessions_per_second"] = round(total / elapsed, 1)
    if errors:
        sc.client_error(errors[0], APP_CHURN, APP_ROLE)
    log("%d sessions in %.1fs (%.0f/s)" % (total, elapsed, total / elapsed))
    sc.diagnose()
    # churn is reproduced when it runs at twice the rate CW140 reports from
    # (connwatch.diagnose_churn_rate): how many sessions a second a machine
    # can open depends on how fast it forks (6 ms a fork on some VMs)
    churn_rate = sc.value(
        "SELECT COALESCE(current_setting('connwatch.diagnose_churn_rate', true), "
        "'10')::float8")
    sc.result["churn_rate_setting"] = churn_rate
    return total / elapsed >= 2 * churn_rate


# ---------------------------------------------------------------------------
# 5. idle_session_timeout: a pooled connection the server has closed
# ---------------------------------------------------------------------------

APP_INVENTORY = "inventory-api"


def idle_session_timeout(sc):
    """14+: cw_idle has idle_session_timeout = 1s; the pool (no pre_ping)
    hands out a connection the server closed while it sat in the pool.
    13 has no idle_session_timeout: cw_idle has
    idle_in_transaction_session_timeout = 1s instead, and the app keeps a
    Session open in its transaction across the pause."""
    variant = sc.args.variant
    if variant == "auto":
        variant = ("idle_session" if sc.version >= 140000
                   else "idle_in_transaction")
    options = None
    if variant == "idle_in_transaction" and sc.version >= 140000:
        # only to try 13's variant on a newer server
        options = "-c idle_session_timeout=0 " \
                  "-c idle_in_transaction_session_timeout=1s"
    eng = engine(APP_INVENTORY, user=IDLE_ROLE, options=options, pool_size=5,
                 max_overflow=0, pool_timeout=2)
    sc.cleanups.append(eng.dispose)
    query = text("SELECT qty FROM cw_scenario_items WHERE id = :id")
    pause = sc.args.duration if sc.args.duration is not None else 2.0

    if variant == "idle_session":
        sc.result["timeout"] = "idle_session_timeout"

        def request(i):
            with eng.connect() as conn:
                return conn.execute(query, {"id": i}).scalar()

        request(1)          # the connection goes back to the pool, idle
        time.sleep(pause)   # the server ends it after 1 s
        try:
            request(2)
        except sqlalchemy.exc.DBAPIError as exc:
            sc.client_error(exc, APP_INVENTORY, IDLE_ROLE)
    else:
        sc.result["timeout"] = "idle_in_transaction_session_timeout"
        session = Session(bind=eng)
        sc.cleanups.append(session.close)
        session.execute(query, {"id": 1}).fetchall()   # BEGIN ... (no commit)
        time.sleep(pause)
        try:
            session.execute(query, {"id": 2}).fetchall()
        except sqlalchemy.exc.DBAPIError as exc:
            sc.client_error(exc, APP_INVENTORY, IDLE_ROLE)
        try:
            session.rollback()
        except Exception:
            pass
    time.sleep(sc.hold_for(0.2))
    sc.diagnose()
    return sc.result["client_error"] is not None


# ---------------------------------------------------------------------------
# 6. lock_chain: an idle transaction holds a row lock, workers queue behind
# ---------------------------------------------------------------------------

APP_HEAD = "admin-console"
APP_WAITERS = "orders-worker"


def lock_chain(sc):
    head_eng = engine(APP_HEAD, user=APP_ROLE, pool_size=1, max_overflow=0)
    sc.cleanups.append(head_eng.dispose)
    # three workers, each with its own small pool; the first gives up after
    # 1 s (lock_timeout) and retries without it, the others just wait
    impatient = engine(APP_WAITERS, user=APP_ROLE, pool_size=1,
                       max_overflow=0, options="-c lock_timeout=1s")
    workers = [engine(APP_WAITERS, user=APP_ROLE, pool_size=1,
                      max_overflow=0) for _ in range(3)]
    for e in [impatient] + workers:
        sc.cleanups.append(e.dispose)

    # an operator's console: updates a row and leaves the transaction open
    head = head_eng.connect()
    head_tx = head.begin()
    head.execute(text("UPDATE cw_scenario_accounts SET balance = balance + 1 "
                      "WHERE id = 1"))
    head_at = time.time()

    errors = []
    update = text("UPDATE cw_scenario_accounts SET balance = balance - 1 "
                  "WHERE id = 1")

    def pay(eng, retry_eng=None):
        try:
            with eng.begin() as conn:
                conn.execute(update)
        except sqlalchemy.exc.OperationalError as exc:
            errors.append(exc)
            if retry_eng is None:
                return
            impatient.dispose()
            with retry_eng.begin() as conn:   # the retry waits
                conn.execute(update)

    threads = [threading.Thread(target=pay, args=(impatient, workers[0])),
               threading.Thread(target=pay, args=(workers[1],)),
               threading.Thread(target=pay, args=(workers[2],))]
    for t in threads:
        t.start()

    def release():
        try:
            head_tx.rollback()
            head.close()
        finally:
            for t in threads:
                t.join(10)
    sc.cleanups.append(release)    # before the engines are disposed

    deadline = time.time() + 20
    while not errors and time.time() < deadline:
        time.sleep(0.05)
    if errors:
        sc.client_error(errors[0], APP_WAITERS, APP_ROLE)
    sc.wait_until(
        "SELECT count(*) = 3 FROM pg_stat_activity "
        "WHERE application_name = %s AND wait_event_type = 'Lock'",
        (APP_WAITERS,), what="three workers waiting on the lock")
    iit = sc.seconds_setting("connwatch.diagnose_idle_in_transaction")
    hold = sc.hold_for(min(max(1.5, (iit or 0) + 0.5), 30.0))
    rest = head_at + hold - time.time()
    if rest > 0:
        time.sleep(rest)
    sc.result["waiting"] = sc.value(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE application_name = %s AND wait_event_type = 'Lock'",
        (APP_WAITERS,))
    sc.diagnose()
    return sc.result["client_error"] is not None


# ---------------------------------------------------------------------------
# 7. prepared_xact: PREPARE TRANSACTION, then the app crashes
# ---------------------------------------------------------------------------

APP_2PC = "payments-2pc"
GID = "cw_scenario_payment_42"


def prepared_xact(sc):
    sc.cleanups.append(sc.rollback_prepared)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        # the app: phase one of a two-phase commit, then it dies before
        # COMMIT PREPARED (no clean disconnect: the process just ends)
        code = 3
        try:
            eng = engine(APP_2PC, user=APP_ROLE, pool_size=1, max_overflow=0)
            conn = eng.connect()
            xa = conn.begin_twophase(GID)
            conn.execute(text("UPDATE cw_scenario_accounts "
                              "SET balance = balance - 10 WHERE id = 2"))
            xa.prepare()
            code = 0
        except Exception:
            traceback.print_exc()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    prepared_at = time.time()
    if os.WEXITSTATUS(status) != 0:
        raise RuntimeError("the 2PC app did not prepare its transaction")
    sc.result["gid"] = GID
    age = sc.seconds_setting("connwatch.diagnose_horizon_age")
    hold = sc.hold_for(min(max(0.5, (age or 0) + 0.5), 30.0))
    rest = prepared_at + hold - time.time()
    if rest > 0:
        time.sleep(rest)
    sc.diagnose()
    return sc.value("SELECT count(*) FROM pg_prepared_xacts WHERE gid = %s",
                    (GID,)) == 1


# ---------------------------------------------------------------------------
# 8. fork_shared_pool: gunicorn-style fork without engine.dispose()
# ---------------------------------------------------------------------------

APP_FORK = "gunicorn-app"


def fork_shared_pool(sc):
    workers = 4
    requests = 200
    eng = engine(APP_FORK, user=APP_ROLE, pool_size=1, max_overflow=0,
                 pool_timeout=2)
    sc.cleanups.append(eng.dispose)
    # the master process warms the pool up before forking (an app factory
    # that runs a query at import time, say)
    with eng.connect() as conn:
        conn.execute(text("SELECT count(*) FROM cw_scenario_items")).scalar()
    shared_pid = sc.value(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
        (APP_FORK,))

    sys.stdout.flush()
    sys.stderr.flush()
    rfd, wfd = os.pipe()
    children = []
    for w in range(workers):
        pid = os.fork()
        if pid != 0:
            children.append(pid)
            continue
        # a worker: the same engine, the same pooled connection
        os.close(rfd)
        # a worker that waits forever for an answer another worker read
        # is killed, as gunicorn kills it (WORKER TIMEOUT)
        signal.alarm(2)
        try:
            for n in range(requests):
                item = (n * workers + w) % 20 + 1
                try:
                    with eng.connect() as conn:
                        if n % 2:
                            rows = conn.execute(
                                text("SELECT id, name FROM cw_scenario_items "
                                     "WHERE id = :id"), {"id": item}).fetchall()
                            for row in rows:
                                row.name
                        else:
                            conn.execute(
                                text("SELECT qty FROM cw_scenario_items "
                                     "WHERE id = :id"), {"id": item}).scalar()
                except Exception as exc:
                    etype, line = describe(exc)
                    msg = json.dumps({"worker": w, "request": n,
                                      "error_type": etype,
                                      "client_error": line,
                                      "client_error_full": str(exc)[:2000]})
                    os.write(wfd, (msg[:3000] + "\n").encode())
                    # the worker answers 500 and the master replaces it;
                    # no new connection of its own comes into play
                    break
        finally:
            os._exit(0)
    os.close(wfd)
    hung = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            hung += 1
    sc.result["workers_killed_hanging"] = hung
    data = b""
    while True:
        chunk = os.read(rfd, 65536)
        if not chunk:
            break
        data += chunk
    os.close(rfd)
    reports = [json.loads(l) for l in data.decode().splitlines() if l.strip()]
    sc.result["worker_errors"] = reports
    if reports:
        first = reports[0]
        sc.result["client_error"] = first["client_error"]
        sc.result["error_type"] = first["error_type"]
        sc.result["client_error_full"] = first["client_error_full"]
        seen = set()
        for r in reports:
            key = (r["error_type"], r["client_error"])
            if key not in seen:
                seen.add(key)
                sc.result["client_errors"].append(
                    {"application": APP_FORK, "role": APP_ROLE,
                     "error_type": r["error_type"],
                     "client_error": r["client_error"]})
        log("first worker error: %s: %s"
            % (first["error_type"], first["client_error"]))

    # the master closes the shared session; it must be over before diagnose
    eng.dispose()
    sc.wait_until(
        "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = %s",
        (shared_pid,), what="the shared session to end")
    time.sleep(sc.hold_for(0.2))
    sc.diagnose()
    return sc.result["client_error"] is not None


# ---------------------------------------------------------------------------
# 9. healthy: a pooled app done right
# ---------------------------------------------------------------------------

APP_HEALTHY = "healthy-api"


def healthy(sc):
    # the app runs through a whole diagnose window, and one second more
    # (at most 5 s: the default window is 15 minutes)
    window = sc.seconds_setting("connwatch.diagnose_window")
    duration = (sc.args.duration if sc.args.duration is not None
                else min(5.0, (window or 4.0) + 1.0))
    eng = engine(APP_HEALTHY, user=APP_ROLE, pool_size=5, max_overflow=5,
                 pool_timeout=5, pool_pre_ping=True)
    sc.cleanups.append(eng.dispose)
    stop = threading.Event()
    errors = []
    counts = []

    def worker(w):
        n = 0
        while not stop.is_set():
            n += 1
            try:
                if n % 5 == 0:
                    with eng.begin() as conn:
                        conn.execute(text(
                            "UPDATE cw_scenario_items SET qty = qty + 1 "
                            "WHERE id = :id"), {"id": (w * 5 + n) % 20 + 1})
                else:
                    session = Session(bind=eng)
                    try:
                        session.execute(text(
                            "SELECT id, name, qty FROM cw_scenario_items "
                            "WHERE id = :id"), {"id": n % 20 + 1}).fetchall()
                        session.commit()
                    finally:
                        session.close()
            except Exception as exc:
                errors.append(exc)
            time.sleep(0.01)
        counts.append(n)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    time.sleep(duration)
    sc.diagnose("findings")           # while the app runs
    stop.set()
    for t in threads:
        t.join()
    sc.result["requests"] = sum(counts)
    if errors:
        sc.client_error(errors[0], APP_HEALTHY, APP_ROLE)
    eng.dispose()
    sc.wait_until(
        "SELECT count(*) = 0 FROM pg_stat_activity "
        "WHERE application_name = %s", (APP_HEALTHY,),
        what="the pool to close")
    sc.diagnose("findings_after_close")
    return not errors


SCENARIOS = {
    "leaked_sessions": leaked_sessions,
    "role_limit": role_limit,
    "max_connections": max_connections,
    "connect_per_request": connect_per_request,
    "idle_session_timeout": idle_session_timeout,
    "lock_chain": lock_chain,
    "prepared_xact": prepared_xact,
    "fork_shared_pool": fork_shared_pool,
    "healthy": healthy,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--hold", type=float, default=None,
                    help="seconds to keep the pattern alive before diagnose "
                         "(default: from the connwatch.diagnose_* settings)")
    ap.add_argument("--duration", type=float, default=None,
                    help="load duration (connect_per_request, healthy) or "
                         "pause (idle_session_timeout)")
    ap.add_argument("--variant", default="auto",
                    choices=["auto", "idle_session", "idle_in_transaction"],
                    help="idle_session_timeout: which timeout (default: "
                         "idle_session on 14+, idle_in_transaction on 13)")
    ap.add_argument("--evidence", action="store_true",
                    help="add the connwatch views' rows to the JSON line")
    ap.add_argument("--setup-only", action="store_true",
                    help="create the roles and tables, run nothing")
    args = ap.parse_args()

    signal.alarm(150)   # never hang a test run
    sc = Scenario(args.scenario, args)
    sc.setup()
    if args.setup_only:
        return 0
    ok = False
    status = 0
    try:
        ok = SCENARIOS[args.scenario](sc)
    except Exception as exc:
        sc.result["scenario_error"] = "%s: %s" % describe(exc)
        traceback.print_exc()
        status = 2
    finally:
        sc.cleanup()
    sys.stdout.write(json.dumps(sc.result, sort_keys=False) + "\n")
    sys.stdout.flush()
    try:
        sc.admin.close()
    except Exception:
        pass
    if status:
        return status
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
