/*
 * login_storm.c - many clients trying to log in, in a loop, to a full server
 *
 * The remember layer's benchmark (test/bench/remember_run.sh) times the
 * server while every slot a client may take is held and clients keep
 * trying anyway, as at 03:00 when an application's pool overflows.  This
 * helper forks --clients processes; each one loops PQconnectdbParams() and
 * PQfinish() over the Unix socket (or TCP, with --host 127.0.0.1) until
 * --duration seconds have passed, and counts what happened to each
 * attempt:
 *
 *   refused     the server refused it; split by libpq's message into
 *               too_many ("sorry, too many clients already"), reserved
 *               ("remaining connection slots are reserved ...") and other
 *               (anything else: the first few distinct messages are
 *               printed on stderr)
 *   connected   it got in (the slots were not full after all)
 *
 * and the time each refused attempt took, from the call to
 * PQconnectdbParams() until it returned.  Every child starts at the same
 * instant and stops starting new attempts at the same deadline; the counts
 * are summed in shared memory.  It prints one line:
 *
 *   STORM clients=C elapsed_s=E attempts=N refused=R connected=K
 *         too_many=T reserved=S other=O refused_ms_mean=M refused_ms_max=X
 *
 * E runs from the common start until the last attempt returned.  Exit
 * status 0 when the storm ran (whatever the server answered), 1 on a usage
 * or system error.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define LS_MSGLEN 256

typedef struct ls_counts
{
	long		attempts;
	long		refused;
	long		connected;
	long		too_many;
	long		reserved;
	long		other;
	double		refused_s;		/* summed duration of the refused attempts */
	double		refused_max_s;
	double		finished_at;	/* when its last attempt returned */
	char		other_msg[LS_MSGLEN];	/* first "other" message */
} ls_counts;

static double
ls_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
ls_usage(void)
{
	fprintf(stdout,
			"usage: login_storm [--host H] [--port P] [--dbname D] [--user U]\n"
			"                   [--application-name A] [--clients N] [--duration S]\n"
			"  --clients N      processes trying to connect (default 32)\n"
			"  --duration S     seconds of storm (default 10; decimals allowed)\n");
}

/* One client: loop until the deadline. */
static void
ls_client(ls_counts *c, const char *const *keys, const char *const *vals,
		  double start, double deadline)
{
	double		now;

	while ((now = ls_now()) < start)
	{
		struct timespec ts = {0, 1000000};

		nanosleep(&ts, NULL);
	}
	while ((now = ls_now()) < deadline)
	{
		PGconn	   *conn = PQconnectdbParams(keys, vals, 0);
		double		took = ls_now() - now;

		c->attempts++;
		if (conn != NULL && PQstatus(conn) == CONNECTION_OK)
			c->connected++;
		else
		{
			const char *msg = conn ? PQerrorMessage(conn) : "out of memory";

			c->refused++;
			c->refused_s += took;
			if (took > c->refused_max_s)
				c->refused_max_s = took;
			if (strstr(msg, "sorry, too many clients already"))
				c->too_many++;
			else if (strstr(msg, "remaining connection slots are reserved"))
				c->reserved++;
			else
			{
				c->other++;
				if (c->other_msg[0] == '\0')
				{
					size_t		n;

					snprintf(c->other_msg, LS_MSGLEN, "%s", msg);
					n = strlen(c->other_msg);
					while (n > 0 && c->other_msg[n - 1] == '\n')
						c->other_msg[--n] = '\0';
					if (n == 0)
						snprintf(c->other_msg, LS_MSGLEN, "(empty message)");
				}
			}
		}
		PQfinish(conn);
	}
	c->finished_at = ls_now();
}

int
main(int argc, char **argv)
{
	static struct option long_options[] = {
		{"host", required_argument, NULL, 'h'},
		{"port", required_argument, NULL, 'p'},
		{"dbname", required_argument, NULL, 'd'},
		{"user", required_argument, NULL, 'U'},
		{"application-name", required_argument, NULL, 'a'},
		{"clients", required_argument, NULL, 'c'},
		{"duration", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'H'},
		{NULL, 0, NULL, 0}
	};
	const char *host = NULL;
	const char *port = NULL;
	const char *dbname = "postgres";
	const char *user = NULL;
	const char *appname = "login_storm";
	int			nclients = 32;
	double		duration = 10;
	const char *keys[8];
	const char *vals[8];
	int			n = 0;
	int			opt;
	int			i;
	int			failed = 0;
	ls_counts  *counts;
	ls_counts	sum;
	double		start;
	double		deadline;
	double		last = 0;
	pid_t	   *pids;

	while ((opt = getopt_long(argc, argv, "h:p:d:U:a:c:T:", long_options, NULL)) != -1)
	{
		switch (opt)
		{
			case 'h':
				host = optarg;
				break;
			case 'p':
				port = optarg;
				break;
			case 'd':
				dbname = optarg;
				break;
			case 'U':
				user = optarg;
				break;
			case 'a':
				appname = optarg;
				break;
			case 'c':
				nclients = atoi(optarg);
				break;
			case 'T':
				duration = atof(optarg);
				break;
			case 'H':
				ls_usage();
				exit(0);
			default:
				ls_usage();
				exit(1);
		}
	}
	if (optind < argc || nclients < 1 || nclients > 10000 || duration <= 0)
	{
		ls_usage();
		exit(1);
	}

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
	if (user)
	{
		keys[n] = "user";
		vals[n++] = user;
	}
	keys[n] = "application_name";
	vals[n++] = appname;
	/* no GSS or SSL negotiation round trip before the startup packet */
	keys[n] = "gssencmode";
	vals[n++] = "disable";
	keys[n] = "sslmode";
	vals[n++] = "disable";
	keys[n] = NULL;
	vals[n] = NULL;

	counts = mmap(NULL, sizeof(ls_counts) * nclients, PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pids = calloc(nclients, sizeof(pid_t));
	if (counts == MAP_FAILED || pids == NULL)
	{
		fprintf(stderr, "login_storm: out of memory\n");
		exit(1);
	}
	memset(counts, 0, sizeof(ls_counts) * nclients);
	signal(SIGPIPE, SIG_IGN);
	fflush(stdout);

	/* every child starts at the same instant, once all are forked */
	start = ls_now() + 0.05 + nclients * 0.002;
	deadline = start + duration;
	for (i = 0; i < nclients; i++)
	{
		pids[i] = fork();
		if (pids[i] < 0)
		{
			fprintf(stderr, "login_storm: fork: %s\n", strerror(errno));
			while (--i >= 0)
				kill(pids[i], SIGKILL);
			exit(1);
		}
		if (pids[i] == 0)
		{
			ls_client(&counts[i], keys, vals, start, deadline);
			_exit(0);
		}
	}
	for (i = 0; i < nclients; i++)
	{
		int			status;

		if (waitpid(pids[i], &status, 0) < 0 ||
			!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
	}
	if (failed)
	{
		fprintf(stderr, "login_storm: %d of %d clients failed\n", failed, nclients);
		exit(1);
	}

	memset(&sum, 0, sizeof(sum));
	for (i = 0; i < nclients; i++)
	{
		ls_counts  *c = &counts[i];
		int			j;

		sum.attempts += c->attempts;
		sum.refused += c->refused;
		sum.connected += c->connected;
		sum.too_many += c->too_many;
		sum.reserved += c->reserved;
		sum.other += c->other;
		sum.refused_s += c->refused_s;
		if (c->refused_max_s > sum.refused_max_s)
			sum.refused_max_s = c->refused_max_s;
		if (c->finished_at > last)
			last = c->finished_at;
		/* the distinct "other" messages, once each */
		if (c->other_msg[0] == '\0')
			continue;
		for (j = 0; j < i; j++)
			if (strcmp(counts[j].other_msg, c->other_msg) == 0)
				break;
		if (j == i)
			fprintf(stderr, "login_storm: other outcome: %s\n", c->other_msg);
	}
	printf("STORM clients=%d elapsed_s=%.3f attempts=%ld refused=%ld connected=%ld "
		   "too_many=%ld reserved=%ld other=%ld refused_ms_mean=%.3f refused_ms_max=%.3f\n",
		   nclients, last - start, sum.attempts, sum.refused, sum.connected,
		   sum.too_many, sum.reserved, sum.other,
		   sum.refused ? sum.refused_s * 1000 / sum.refused : 0.0,
		   sum.refused_max_s * 1000);
	return 0;
}
