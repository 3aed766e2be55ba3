/*
 * hold_sessions.c - open and hold many PostgreSQL sessions from one process
 *
 * The benchmark in test/bench needs thousands of real backends in a known
 * mix of states.  One process per connection (psql, pgbench) would cost more
 * memory and setup time than the server under test, so this helper opens
 * every connection itself with non-blocking libpq calls and then holds them:
 *
 *   idle     connected, nothing else
 *   iit      BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT ...  (idle in
 *            transaction, holding a snapshot, i.e. an xmin; every tenth one
 *            also takes a transaction ID)
 *   locker   one of the iit sessions: it also takes ACCESS EXCLUSIVE on the
 *            lock table and stays idle in transaction
 *   active   SELECT pg_sleep(3600)
 *   waiting  SELECT count(*) FROM <lock table>, queued behind the locker
 *
 * Each kind has its own application_name (PREFIX_idle, PREFIX_iit, ...);
 * the sessions of each kind log in as the roles of --roles in turn.  When every session is
 * in place the helper prints "READY ..." on stdout (and writes --ready-file),
 * then holds until SIGTERM/SIGINT, when it cancels the running statements,
 * closes everything and prints "DONE sessions=N lost=0".  Any connection or
 * query failure is reported on stderr and makes it exit non-zero: exit 1
 * during setup, exit 2 when a held session is lost (its connection closed,
 * or its statement ended).
 *
 * With --expect-termination (the act-layer benchmark's victims), a held
 * session that the server terminates is expected: it is counted and closed,
 * and once every session is gone the helper prints "LOST sessions=N lost=N"
 * and exits 0.  Stopped by a signal before that, it prints
 * "DONE sessions=N lost=K".  Either way the line says exactly how many of
 * its sessions the server ended.
 *
 * Concurrency: single-threaded; poll(2) over all sockets.  At most
 * --parallel connection attempts are in flight, so the postmaster's accept
 * queue never overflows.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

typedef enum hs_kind
{
	HS_IDLE,
	HS_IIT,
	HS_LOCKER,
	HS_ACTIVE,
	HS_WAITING
} hs_kind;

static const char *const hs_kind_names[] = {
	"idle", "iit", "locker", "active", "waiting"
};

typedef enum hs_phase
{
	HS_UNSTARTED,
	HS_CONNECTING,
	HS_CONNECTED,				/* connected, setup query not sent */
	HS_RUNNING,					/* setup query sent, results pending */
	HS_HELD						/* in its final state */
} hs_phase;

typedef struct hs_conn
{
	PGconn	   *conn;
	hs_kind		kind;
	hs_phase	phase;
	PostgresPollingStatusType poll_status;
	int			role;			/* index into hs_roles */
	int			nth;			/* 0-based number within its kind */
} hs_conn;

static volatile sig_atomic_t hs_stop = 0;
static hs_conn *hs_conns;
static int	hs_nconns;

static const char *hs_host = NULL;
static const char *hs_port = NULL;
static const char *hs_dbname = "postgres";
static const char *hs_prefix = "bench";
static const char *hs_lock_table = "bench_lock";
static const char *hs_data_table = "bench_data";
static const char *hs_ready_file = NULL;
static char **hs_roles;
static int	hs_nroles;
static int	hs_parallel = 64;
static int	hs_timeout = 300;
static int	hs_expect_termination = 0;
static int	hs_lost = 0;

static void
hs_on_signal(int signo)
{
	(void) signo;
	hs_stop = 1;
}

static void
hs_log(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "hold_sessions: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* The FATAL a terminated session receives arrives as a notice: expected. */
static void
hs_quiet_notice(void *arg, const char *message)
{
	(void) arg;
	(void) message;
}

static void
hs_usage(void)
{
	fprintf(stderr,
			"usage: hold_sessions [options]\n"
			"  --host DIR|HOST        server socket directory or host\n"
			"  --port PORT\n"
			"  --dbname DB            (default postgres)\n"
			"  --roles R1,R2,...      login roles, used round-robin (default: libpq default user)\n"
			"  --idle N --iit N --active N --waiting N\n"
			"                         sessions of each kind; --iit includes the one lock holder\n"
			"  --prefix P             application_name prefix (default bench)\n"
			"  --lock-table T         table the lock holder locks (default bench_lock)\n"
			"  --data-table T         table the iit sessions read (default bench_data)\n"
			"  --parallel K           connection attempts in flight (default 64)\n"
			"  --timeout S            give up setup after S seconds (default 300)\n"
			"  --ready-file PATH      written once every session is in place\n"
			"  --expect-termination   sessions ended by the server are expected: count\n"
			"                         them; exit 0 once all are gone\n");
}

/* Close everything; cancel statements first so no backend keeps running. */
static void
hs_shutdown(void)
{
	int			i;

	for (i = 0; i < hs_nconns; i++)
	{
		hs_conn    *c = &hs_conns[i];

		if (c->conn && (c->kind == HS_ACTIVE || c->kind == HS_WAITING) &&
			c->phase >= HS_RUNNING && PQstatus(c->conn) == CONNECTION_OK)
		{
			PGcancel   *cancel = PQgetCancel(c->conn);
			char		errbuf[256];

			if (cancel)
			{
				(void) PQcancel(cancel, errbuf, sizeof(errbuf));
				PQfreeCancel(cancel);
			}
		}
	}
	for (i = 0; i < hs_nconns; i++)
	{
		if (hs_conns[i].conn)
			PQfinish(hs_conns[i].conn);
		hs_conns[i].conn = NULL;
	}
}

static void
hs_fail(int code, const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "hold_sessions: ERROR: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	hs_shutdown();
	exit(code);
}

static void
hs_start_connect(hs_conn *c, int idx)
{
	const char *keys[8];
	const char *vals[8];
	char		appname[128];
	int			n = 0;

	snprintf(appname, sizeof(appname), "%s_%s", hs_prefix, hs_kind_names[c->kind]);
	if (hs_host)
	{
		keys[n] = "host";
		vals[n++] = hs_host;
	}
	if (hs_port)
	{
		keys[n] = "port";
		vals[n++] = hs_port;
	}
	keys[n] = "dbname";
	vals[n++] = hs_dbname;
	if (hs_nroles > 0)
	{
		keys[n] = "user";
		vals[n++] = hs_roles[c->role];
	}
	keys[n] = "application_name";
	vals[n++] = appname;
	keys[n] = NULL;
	vals[n] = NULL;

	c->conn = PQconnectStartParams(keys, vals, 0);
	if (c->conn == NULL)
		hs_fail(1, "connection %d: out of memory", idx);
	if (PQstatus(c->conn) == CONNECTION_BAD)
		hs_fail(1, "connection %d (%s): %s", idx, hs_kind_names[c->kind],
				PQerrorMessage(c->conn));
	if (hs_expect_termination)
		PQsetNoticeProcessor(c->conn, hs_quiet_notice, NULL);
	c->phase = HS_CONNECTING;
	c->poll_status = PGRES_POLLING_WRITING;
}

/* Advance a connection attempt; returns 1 when it has just completed. */
static int
hs_continue_connect(hs_conn *c, int idx)
{
	c->poll_status = PQconnectPoll(c->conn);
	if (c->poll_status == PGRES_POLLING_FAILED)
		hs_fail(1, "connection %d (%s, role %s) failed: %s", idx,
				hs_kind_names[c->kind],
				hs_nroles > 0 ? hs_roles[c->role] : "(default)",
				PQerrorMessage(c->conn));
	if (c->poll_status == PGRES_POLLING_OK)
	{
		c->phase = HS_CONNECTED;
		return 1;
	}
	return 0;
}

static void
hs_send(hs_conn *c, int idx, const char *sql)
{
	if (!PQsendQuery(c->conn, sql))
		hs_fail(1, "connection %d (%s): could not send \"%s\": %s", idx,
				hs_kind_names[c->kind], sql, PQerrorMessage(c->conn));
	c->phase = HS_RUNNING;
}

/*
 * Read whatever results are available.  For setup queries (iit, locker)
 * returns 1 once every result has arrived.  Errors are fatal.
 */
static int
hs_drain(hs_conn *c, int idx, int fail_code)
{
	if (!PQconsumeInput(c->conn))
		hs_fail(fail_code, "connection %d (%s) lost: %s", idx,
				hs_kind_names[c->kind], PQerrorMessage(c->conn));
	while (!PQisBusy(c->conn))
	{
		PGresult   *res = PQgetResult(c->conn);
		ExecStatusType st;

		if (res == NULL)
			return 1;
		st = PQresultStatus(res);
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		{
			char		msg[1024];

			snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
			PQclear(res);
			hs_fail(fail_code, "connection %d (%s): query failed: %s", idx,
					hs_kind_names[c->kind], msg);
		}
		PQclear(res);
		if (c->kind == HS_ACTIVE || c->kind == HS_WAITING)
			hs_fail(fail_code, "connection %d (%s): statement finished, but it should still be %s",
					idx, hs_kind_names[c->kind],
					c->kind == HS_ACTIVE ? "sleeping" : "waiting for the lock");
	}
	return 0;
}

/*
 * A held session has input: returns 1 (with why filled in) when it has
 * ended, i.e. the server closed the connection or its statement (active,
 * waiting) finished or failed; 0 when it is still held (a notice or a
 * parameter status is harmless).
 */
static int
hs_held_session_ended(hs_conn *c, char *why, size_t whylen)
{
	int			ended = 0;

	if (!PQconsumeInput(c->conn))
	{
		snprintf(why, whylen, "%s", PQerrorMessage(c->conn));
		return 1;
	}
	while (!PQisBusy(c->conn))
	{
		PGresult   *res = PQgetResult(c->conn);

		if (res == NULL)
			break;
		if (!ended)
		{
			const char *msg = PQresultErrorMessage(res);

			snprintf(why, whylen, "%s", *msg ? msg : "its statement finished");
		}
		ended = 1;
		PQclear(res);
	}
	if (PQstatus(c->conn) != CONNECTION_OK)
	{
		if (!ended)
			snprintf(why, whylen, "%s", PQerrorMessage(c->conn));
		ended = 1;
	}
	return ended;
}

static int
hs_parse_count(const char *arg, const char *what)
{
	char	   *end;
	long		v = strtol(arg, &end, 10);

	if (*arg == '\0' || *end != '\0' || v < 0 || v > 1000000)
	{
		hs_log("invalid %s: \"%s\"", what, arg);
		exit(1);
	}
	return (int) v;
}

static double
hs_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	static struct option long_options[] = {
		{"host", required_argument, NULL, 'h'},
		{"port", required_argument, NULL, 'p'},
		{"dbname", required_argument, NULL, 'd'},
		{"roles", required_argument, NULL, 'r'},
		{"idle", required_argument, NULL, 1},
		{"iit", required_argument, NULL, 2},
		{"active", required_argument, NULL, 3},
		{"waiting", required_argument, NULL, 4},
		{"prefix", required_argument, NULL, 5},
		{"lock-table", required_argument, NULL, 6},
		{"data-table", required_argument, NULL, 7},
		{"parallel", required_argument, NULL, 8},
		{"timeout", required_argument, NULL, 9},
		{"ready-file", required_argument, NULL, 10},
		{"expect-termination", no_argument, NULL, 11},
		{"help", no_argument, NULL, '?'},
		{NULL, 0, NULL, 0}
	};
	int			counts[5] = {0, 0, 0, 0, 0};
	int			opt;
	int			i;
	int			next_to_start;
	int			in_flight;
	int			connected;
	int			setup_pending;
	double		deadline;
	struct pollfd *pfds;
	int		   *pfd_conn;
	char		iit_sql[512];
	char		iit_xid_sql[512];
	char		locker_sql[512];
	char		waiting_sql[256];
	struct sigaction sa;

	while ((opt = getopt_long(argc, argv, "h:p:d:r:", long_options, NULL)) != -1)
	{
		switch (opt)
		{
			case 'h':
				hs_host = optarg;
				break;
			case 'p':
				hs_port = optarg;
				break;
			case 'd':
				hs_dbname = optarg;
				break;
			case 'r':
				{
					char	   *list = strdup(optarg);
					char	   *tok;
					char	   *save = NULL;

					hs_roles = calloc(strlen(optarg) + 1, sizeof(char *));
					for (tok = strtok_r(list, ",", &save); tok;
						 tok = strtok_r(NULL, ",", &save))
						hs_roles[hs_nroles++] = tok;
				}
				break;
			case 1:
				counts[HS_IDLE] = hs_parse_count(optarg, "--idle");
				break;
			case 2:
				counts[HS_IIT] = hs_parse_count(optarg, "--iit");
				break;
			case 3:
				counts[HS_ACTIVE] = hs_parse_count(optarg, "--active");
				break;
			case 4:
				counts[HS_WAITING] = hs_parse_count(optarg, "--waiting");
				break;
			case 5:
				hs_prefix = optarg;
				break;
			case 6:
				hs_lock_table = optarg;
				break;
			case 7:
				hs_data_table = optarg;
				break;
			case 8:
				hs_parallel = hs_parse_count(optarg, "--parallel");
				if (hs_parallel < 1)
					hs_parallel = 1;
				break;
			case 9:
				hs_timeout = hs_parse_count(optarg, "--timeout");
				break;
			case 10:
				hs_ready_file = optarg;
				break;
			case 11:
				hs_expect_termination = 1;
				break;
			default:
				hs_usage();
				exit(opt == '?' ? 1 : 0);
		}
	}
	if (optind < argc)
	{
		hs_usage();
		exit(1);
	}
	if (counts[HS_WAITING] > 0 && counts[HS_IIT] == 0)
	{
		hs_log("--waiting needs at least one --iit session to hold the lock");
		exit(1);
	}

	/* The lock holder is one of the iit sessions. */
	if (counts[HS_WAITING] > 0)
	{
		counts[HS_IIT]--;
		counts[HS_LOCKER] = 1;
	}

	snprintf(iit_sql, sizeof(iit_sql),
			 "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM %s",
			 hs_data_table);
	snprintf(iit_xid_sql, sizeof(iit_xid_sql),
			 "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM %s; SELECT pg_current_xact_id()",
			 hs_data_table);
	snprintf(locker_sql, sizeof(locker_sql),
			 "BEGIN; SELECT count(*) FROM %s; LOCK TABLE %s IN ACCESS EXCLUSIVE MODE",
			 hs_data_table, hs_lock_table);
	snprintf(waiting_sql, sizeof(waiting_sql), "SELECT count(*) FROM %s",
			 hs_lock_table);

	/*
	 * Order: the locker first (its lock must be granted before any waiter
	 * queues), then the others interleaved so that each kind is spread over
	 * every role, waiters last.
	 */
	hs_nconns = counts[0] + counts[1] + counts[2] + counts[3] + counts[4];
	hs_conns = calloc(hs_nconns > 0 ? hs_nconns : 1, sizeof(hs_conn));
	pfds = calloc(hs_nconns > 0 ? hs_nconns : 1, sizeof(struct pollfd));
	pfd_conn = calloc(hs_nconns > 0 ? hs_nconns : 1, sizeof(int));
	if (!hs_conns || !pfds || !pfd_conn)
	{
		hs_log("out of memory");
		exit(1);
	}
	{
		int			n = 0;
		int			k;
		int			left[5];

		memcpy(left, counts, sizeof(left));
		if (left[HS_LOCKER])
		{
			hs_conns[n++].kind = HS_LOCKER;
			left[HS_LOCKER] = 0;
		}
		while (left[HS_IDLE] + left[HS_IIT] + left[HS_ACTIVE] > 0)
		{
			for (k = 0; k < 4; k++)
			{
				int			share;

				if (k == HS_LOCKER)
					continue;
				/* idle : iit : active roughly in proportion */
				share = k == HS_IDLE ? 15 : k == HS_IIT ? 4 : 1;
				while (share-- > 0 && left[k] > 0)
				{
					hs_conns[n++].kind = k;
					left[k]--;
				}
			}
		}
		while (left[HS_WAITING]-- > 0)
			hs_conns[n++].kind = HS_WAITING;
		/* spread every kind over the roles evenly */
		memset(left, 0, sizeof(left));
		for (k = 0; k < n; k++)
		{
			hs_conns[k].nth = left[hs_conns[k].kind]++;
			hs_conns[k].role = hs_nroles > 0 ? hs_conns[k].nth % hs_nroles : 0;
		}
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = hs_on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;			/* no SA_RESTART: poll() must return EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	deadline = hs_now() + hs_timeout;
	next_to_start = 0;
	in_flight = 0;
	connected = 0;
	setup_pending = 0;

	/*
	 * Setup loop: connect with bounded parallelism, send each session's
	 * statement as soon as it is connected (waiters only once the locker's
	 * lock is granted), and wait for the iit/locker statements to finish.
	 */
	for (;;)
	{
		int			npfd = 0;
		int			rc;
		int			locker_done = counts[HS_LOCKER] == 0 ||
			hs_conns[0].phase == HS_HELD;

		if (hs_stop)
			hs_fail(1, "interrupted during setup");
		if (hs_now() > deadline)
			hs_fail(1, "setup not finished after %d s (%d of %d connected)",
					hs_timeout, connected, hs_nconns);

		/* start new attempts; the locker alone until its lock is granted */
		while (in_flight < hs_parallel && next_to_start < hs_nconns &&
			   (locker_done || next_to_start == 0) &&
			   (hs_conns[next_to_start].kind != HS_WAITING || locker_done))
		{
			hs_start_connect(&hs_conns[next_to_start], next_to_start);
			next_to_start++;
			in_flight++;
		}

		/* send setup statements of freshly connected sessions */
		for (i = 0; i < hs_nconns; i++)
		{
			hs_conn    *c = &hs_conns[i];

			if (c->phase != HS_CONNECTED)
				continue;
			switch (c->kind)
			{
				case HS_IDLE:
					c->phase = HS_HELD;
					break;
				case HS_IIT:
					hs_send(c, i, (c->nth % 10 == 0) ? iit_xid_sql : iit_sql);
					setup_pending++;
					break;
				case HS_LOCKER:
					hs_send(c, i, locker_sql);
					setup_pending++;
					break;
				case HS_ACTIVE:
					hs_send(c, i, "SELECT pg_sleep(3600)");
					break;
				case HS_WAITING:
					hs_send(c, i, waiting_sql);
					break;
			}
		}

		if (next_to_start == hs_nconns && in_flight == 0 && setup_pending == 0)
			break;

		for (i = 0; i < hs_nconns; i++)
		{
			hs_conn    *c = &hs_conns[i];
			short		events = 0;

			if (c->phase == HS_CONNECTING)
				events = c->poll_status == PGRES_POLLING_READING ? POLLIN : POLLOUT;
			else if (c->phase == HS_RUNNING)
				events = POLLIN;
			else
				continue;
			pfds[npfd].fd = PQsocket(c->conn);
			pfds[npfd].events = events;
			pfds[npfd].revents = 0;
			pfd_conn[npfd++] = i;
		}

		rc = poll(pfds, npfd, 1000);
		if (rc < 0)
		{
			if (errno == EINTR)
				continue;
			hs_fail(1, "poll: %s", strerror(errno));
		}
		for (i = 0; i < npfd; i++)
		{
			int			idx = pfd_conn[i];
			hs_conn    *c = &hs_conns[idx];

			if (pfds[i].revents == 0)
				continue;
			if (c->phase == HS_CONNECTING)
			{
				if (hs_continue_connect(c, idx))
				{
					in_flight--;
					connected++;
				}
			}
			else if (c->phase == HS_RUNNING)
			{
				if (hs_drain(c, idx, 1) &&
					(c->kind == HS_IIT || c->kind == HS_LOCKER))
				{
					c->phase = HS_HELD;
					setup_pending--;
				}
			}
		}
	}

	printf("READY sessions=%d idle=%d idle_in_transaction=%d active=%d waiting=%d pid=%d\n",
		   hs_nconns, counts[HS_IDLE], counts[HS_IIT] + counts[HS_LOCKER],
		   counts[HS_ACTIVE], counts[HS_WAITING], (int) getpid());
	fflush(stdout);
	if (hs_ready_file)
	{
		FILE	   *f = fopen(hs_ready_file, "w");

		if (f == NULL || fprintf(f, "%d\n", hs_nconns) < 0 || fclose(f) != 0)
			hs_fail(1, "could not write %s: %s", hs_ready_file, strerror(errno));
	}

	/* Hold: any traffic on a held session means it was lost or finished. */
	while (!hs_stop)
	{
		int			npfd = 0;
		int			rc;

		for (i = 0; i < hs_nconns; i++)
		{
			if (hs_conns[i].conn == NULL)
				continue;		/* ended, expectedly */
			pfds[npfd].fd = PQsocket(hs_conns[i].conn);
			pfds[npfd].events = POLLIN;
			pfds[npfd].revents = 0;
			pfd_conn[npfd++] = i;
		}
		rc = poll(pfds, npfd, -1);
		if (rc < 0)
		{
			if (errno == EINTR)
				continue;
			hs_fail(2, "poll: %s", strerror(errno));
		}
		for (i = 0; i < npfd; i++)
		{
			int			idx = pfd_conn[i];
			hs_conn    *c = &hs_conns[idx];

			char		why[1024];

			if (pfds[i].revents == 0)
				continue;
			if (!hs_held_session_ended(c, why, sizeof(why)))
				continue;
			if (!hs_expect_termination)
				hs_fail(2, "connection %d (%s, role %s) lost: %s", idx,
						hs_kind_names[c->kind],
						hs_nroles > 0 ? hs_roles[c->role] : "(default)", why);
			PQfinish(c->conn);
			c->conn = NULL;
			hs_lost++;
		}
		if (hs_expect_termination && hs_lost == hs_nconns)
		{
			printf("LOST sessions=%d lost=%d\n", hs_nconns, hs_lost);
			fflush(stdout);
			free(pfds);
			free(pfd_conn);
			return 0;
		}
	}

	hs_shutdown();
	printf("DONE sessions=%d lost=%d\n", hs_nconns, hs_lost);
	fflush(stdout);
	return 0;
}
