/*
 * term_timer.c - time how long it takes until a set of backends is gone
 *
 * The act-layer benchmark (test/bench/act_run.sh) compares ways of
 * terminating the same 400 sessions.  What counts is not when the statement
 * returns but when the processes are gone, so this helper:
 *
 *   1. reads the target pids (one per line) and opens a pidfd for each
 *      (pidfd_open(2): it becomes readable when that process exits; no
 *      polling, no CPU taken from the exiting backends);
 *   2. with --sql: connects, runs the --setup statements (warming the
 *      session: library load, catalog caches, GUCs), then sends STMT;
 *      with --kill: sends SIGTERM to each pid with kill(2), in a loop;
 *   3. starts the clock right before step 2's statement or first kill(),
 *      and waits on the pidfds and the connection together: "exited" is when
 *      the last target process exited; "gone" is when the last one has also
 *      been reaped by the postmaster (no /proc/PID left);
 *   4. prints one line:
 *        stmt_ms=S exited_ms=E gone_ms=G rows=R first=V true=T
 *      S: until the statement returned (the kill loop finished); rows: rows
 *      returned; first: first column of the first row; true: rows whose
 *      first column is 't'.
 *
 * Exit status 1 when a target is already gone before the start, the
 * statement fails, or a target is still there after --timeout seconds.
 * Linux only (pidfd_open, /proc).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

#define TT_MAX_SETUP 8

static double
tt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
tt_fail(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "term_timer: ERROR: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void
tt_usage(void)
{
	fprintf(stderr,
			"usage: term_timer --pids FILE (--sql STMT [--setup STMT]... | --kill)\n"
			"                  [--host H] [--port P] [--dbname D] [--timeout S]\n");
}

static int
tt_proc_exists(int pid)
{
	char		path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d", pid);
	return stat(path, &st) == 0;
}

int
main(int argc, char **argv)
{
	static struct option long_options[] = {
		{"pids", required_argument, NULL, 'f'},
		{"sql", required_argument, NULL, 's'},
		{"setup", required_argument, NULL, 'S'},
		{"kill", no_argument, NULL, 'k'},
		{"host", required_argument, NULL, 'h'},
		{"port", required_argument, NULL, 'p'},
		{"dbname", required_argument, NULL, 'd'},
		{"timeout", required_argument, NULL, 't'},
		{NULL, 0, NULL, 0}
	};
	const char *pids_file = NULL;
	const char *stmt = NULL;
	const char *setup[TT_MAX_SETUP];
	int			nsetup = 0;
	int			use_kill = 0;
	const char *host = NULL;
	const char *port = NULL;
	const char *dbname = "postgres";
	int			timeout = 60;
	int		   *pids = NULL;
	int			npids = 0;
	int			maxpids = 0;
	struct pollfd *pfds;
	int		   *pfd_pid;
	int			nwaiting;
	PGconn	   *conn = NULL;
	int			stmt_done;
	int			rows = 0;
	int			ntrue = 0;
	char		first[128] = "";
	double		t0;
	double		t_stmt = 0;
	double		t_exited = 0;
	double		t_gone;
	double		deadline;
	FILE	   *f;
	int			opt;
	int			i;
	int			pid;

	while ((opt = getopt_long(argc, argv, "", long_options, NULL)) != -1)
	{
		switch (opt)
		{
			case 'f':
				pids_file = optarg;
				break;
			case 's':
				stmt = optarg;
				break;
			case 'S':
				if (nsetup == TT_MAX_SETUP)
					tt_fail("at most %d --setup statements", TT_MAX_SETUP);
				setup[nsetup++] = optarg;
				break;
			case 'k':
				use_kill = 1;
				break;
			case 'h':
				host = optarg;
				break;
			case 'p':
				port = optarg;
				break;
			case 'd':
				dbname = optarg;
				break;
			case 't':
				timeout = atoi(optarg);
				break;
			default:
				tt_usage();
				exit(1);
		}
	}
	if (pids_file == NULL || (stmt == NULL) == (use_kill == 0) || optind < argc)
	{
		tt_usage();
		exit(1);
	}

	f = fopen(pids_file, "r");
	if (f == NULL)
		tt_fail("could not open %s: %s", pids_file, strerror(errno));
	while (fscanf(f, "%d", &pid) == 1)
	{
		if (npids == maxpids)
		{
			maxpids = maxpids ? maxpids * 2 : 512;
			pids = realloc(pids, maxpids * sizeof(int));
			if (pids == NULL)
				tt_fail("out of memory");
		}
		pids[npids++] = pid;
	}
	fclose(f);
	if (npids == 0)
		tt_fail("no pids in %s", pids_file);

	/* slot 0: the connection (if any); then one pidfd per target */
	pfds = calloc(npids + 1, sizeof(struct pollfd));
	pfd_pid = calloc(npids + 1, sizeof(int));
	if (pfds == NULL || pfd_pid == NULL)
		tt_fail("out of memory");
	for (i = 0; i < npids; i++)
	{
		int			fd = (int) syscall(SYS_pidfd_open, pids[i], 0);

		if (fd < 0)
			tt_fail("pidfd_open(%d): %s (target gone before the start?)",
					pids[i], strerror(errno));
		pfds[i + 1].fd = fd;
		pfds[i + 1].events = POLLIN;
		pfd_pid[i + 1] = pids[i];
	}
	nwaiting = npids;

	if (!use_kill)
	{
		const char *keys[4];
		const char *vals[4];
		int			n = 0;

		if (host)
		{
			keys[n] = "host";
			vals[n++] = host;
		}
		if (port)
		{
			keys[n] = "port";
			vals[n++] = port;
		}
		keys[n] = "dbname";
		vals[n++] = dbname;
		keys[n] = NULL;
		vals[n] = NULL;
		conn = PQconnectdbParams(keys, vals, 0);
		if (PQstatus(conn) != CONNECTION_OK)
			tt_fail("could not connect: %s", PQerrorMessage(conn));
		for (i = 0; i < nsetup; i++)
		{
			PGresult   *res = PQexec(conn, setup[i]);
			ExecStatusType st = PQresultStatus(res);

			if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
				tt_fail("setup \"%s\" failed: %s", setup[i], PQerrorMessage(conn));
			PQclear(res);
		}
	}

	/* Go. */
	t0 = tt_now();
	deadline = t0 + timeout;
	if (use_kill)
	{
		for (i = 0; i < npids; i++)
			if (kill(pids[i], SIGTERM) != 0)
				tt_fail("kill(%d, SIGTERM): %s", pids[i], strerror(errno));
		t_stmt = tt_now();
		stmt_done = 1;
	}
	else
	{
		if (!PQsendQuery(conn, stmt))
			tt_fail("could not send the statement: %s", PQerrorMessage(conn));
		stmt_done = 0;
		pfds[0].fd = PQsocket(conn);
		pfds[0].events = POLLIN;
	}

	/* Wait for the statement's result and for every target to exit. */
	while (!stmt_done || nwaiting > 0)
	{
		int			rc;
		int			left = (int) ((deadline - tt_now()) * 1000);

		if (left <= 0)
			tt_fail("%d of %d targets still running after %d s%s", nwaiting,
					npids, timeout, stmt_done ? "" : " (statement not finished)");
		pfds[0].revents = 0;
		if (stmt_done)
			pfds[0].fd = -1;	/* poll ignores it */
		rc = poll(pfds, nwaiting + 1, left);
		if (rc < 0)
		{
			if (errno == EINTR)
				continue;
			tt_fail("poll: %s", strerror(errno));
		}
		if (!stmt_done && pfds[0].revents)
		{
			if (!PQconsumeInput(conn))
				tt_fail("connection lost: %s", PQerrorMessage(conn));
			while (!PQisBusy(conn))
			{
				PGresult   *res = PQgetResult(conn);
				ExecStatusType st;

				if (res == NULL)
				{
					t_stmt = tt_now();
					stmt_done = 1;
					break;
				}
				st = PQresultStatus(res);
				if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
					tt_fail("statement failed: %s", PQresultErrorMessage(res));
				rows += PQntuples(res);
				if (PQntuples(res) > 0 && PQnfields(res) > 0)
				{
					int			r;

					if (first[0] == '\0')
						snprintf(first, sizeof(first), "%s", PQgetvalue(res, 0, 0));
					for (r = 0; r < PQntuples(res); r++)
						if (strcmp(PQgetvalue(res, r, 0), "t") == 0)
							ntrue++;
				}
				PQclear(res);
			}
		}
		/* drop every target that has exited; the rest move down */
		for (i = 1; i <= nwaiting;)
		{
			if (pfds[i].revents & (POLLIN | POLLHUP | POLLERR))
			{
				close(pfds[i].fd);
				pfds[i] = pfds[nwaiting];
				pfd_pid[i] = pfd_pid[nwaiting];
				nwaiting--;
				if (nwaiting == 0)
					t_exited = tt_now();
			}
			else
				i++;
		}
	}

	/* Every target has exited; wait until the postmaster has reaped them. */
	for (;;)
	{
		int			remaining = 0;

		for (i = 0; i < npids; i++)
			if (pids[i] != 0)
			{
				if (tt_proc_exists(pids[i]))
					remaining++;
				else
					pids[i] = 0;
			}
		if (remaining == 0)
			break;
		if (tt_now() > deadline)
			tt_fail("%d of %d targets exited but not reaped after %d s",
					remaining, npids, timeout);
		usleep(100);
	}
	t_gone = tt_now();

	printf("stmt_ms=%.3f exited_ms=%.3f gone_ms=%.3f rows=%d first=%s true=%d\n",
		   (t_stmt - t0) * 1000, (t_exited - t0) * 1000, (t_gone - t0) * 1000,
		   rows, first[0] ? first : "-", ntrue);
	if (conn)
		PQfinish(conn);
	return 0;
}
