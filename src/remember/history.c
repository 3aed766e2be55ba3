/*-------------------------------------------------------------------------
 *
 * history.c
 *		A short history of the server's connections: one sample every
 *		connwatch.sample_interval, kept in a ring buffer in shared memory.
 *
 * The background worker (worker/) takes the samples; SQL reads them
 * (sql/history_view.c).  A sample counts the client backends by state, the
 * age of the oldest transaction and of the xmin horizon, the refusals and
 * endings since the previous sample (from the ledgers' running totals), and
 * per application -- the connwatch.history_applications with the most
 * connections, the rest as "other" -- its connections and sessions idle in
 * a transaction.  The ring holds connwatch.history_size samples (an hour at
 * the defaults) and its size is fixed at server start.
 *
 * Concurrency: one writer (the worker); the ring's lock (its own LWLock)
 * is held exclusively only to copy a finished sample in, and shared by
 * readers while they copy out one chunk of the samples they return
 * (cw_history_read): a reader's memory is one chunk, never the ring.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "observe/backend_state.h"
#include "observe/durations.h"
#include "observe/xmin_horizon.h"
#include "remember/history.h"
#include "remember/shared_state.h"

typedef struct CwHistoryRing
{
	LWLock	   *lock;
	int			capacity;		/* samples */
	int			napplications;	/* named applications per sample */
	Size		sample_size;
	uint64		written;		/* samples ever written; next goes to
								 * written % capacity */
	uint64		last_refusals_total;
	int64		last_endings_total;
	char		samples[FLEXIBLE_ARRAY_MEMBER];
} CwHistoryRing;

int			cw_sample_interval_ms = 1000;
int			cw_history_size = 3600;
int			cw_history_applications = 5;

static CwHistoryRing *cw_history = NULL;

#ifdef CW_HAVE_SHMEM_REQUEST_HOOK
static shmem_request_hook_type cw_prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type cw_prev_shmem_startup_hook = NULL;

static Size cw_sample_size(void);
static Size cw_history_shmem_size(void);
static void cw_history_request(void);
static void cw_history_startup(void);
static CwHistorySample *cw_sample_at(uint64 n);
static int	cw_application_cmp(const void *a, const void *b);

static Size
cw_sample_size(void)
{
	return MAXALIGN(add_size(offsetof(CwHistorySample, applications),
							 mul_size(cw_history_applications,
									  sizeof(CwHistoryApplication))));
}

static Size
cw_history_shmem_size(void)
{
	return add_size(offsetof(CwHistoryRing, samples),
					mul_size(cw_history_size, cw_sample_size()));
}

static void
cw_history_request(void)
{
#ifdef CW_HAVE_SHMEM_REQUEST_HOOK
	if (cw_prev_shmem_request_hook)
		cw_prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(cw_history_shmem_size());
	RequestNamedLWLockTranche("pg_connwatch history", 1);
}

static void
cw_history_startup(void)
{
	bool		found;

	if (cw_prev_shmem_startup_hook)
		cw_prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	cw_history = ShmemInitStruct("pg_connwatch history",
								 cw_history_shmem_size(), &found);
	if (!found)
	{
		memset(cw_history, 0, offsetof(CwHistoryRing, samples));
		cw_history->lock = &(GetNamedLWLockTranche("pg_connwatch history"))->lock;
		cw_history->capacity = cw_history_size;
		cw_history->napplications = cw_history_applications;
		cw_history->sample_size = cw_sample_size();
	}
	LWLockRelease(AddinShmemInitLock);
}

/* From _PG_init, while shared_preload_libraries is being processed */
void
cw_history_preload(void)
{
	DefineCustomIntVariable("connwatch.sample_interval",
							"How often the pg_connwatch worker samples the server into connwatch.history.",
							"0 stops sampling.",
							&cw_sample_interval_ms,
							1000,
							0, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("connwatch.history_size",
							"How many samples connwatch.history keeps.",
							NULL,
							&cw_history_size,
							3600,
							1, 1000000,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("connwatch.history_applications",
							"How many applications each sample of connwatch.history names; the rest are counted as other.",
							NULL,
							&cw_history_applications,
							5,
							0, 100,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

#ifdef CW_HAVE_SHMEM_REQUEST_HOOK
	cw_prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = cw_history_request;
#else
	cw_history_request();
#endif
	cw_prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = cw_history_startup;
}

static CwHistorySample *
cw_sample_at(uint64 n)
{
	return (CwHistorySample *) (cw_history->samples +
								(n % cw_history->capacity) * cw_history->sample_size);
}

/* Most connections first, then by name */
static int
cw_application_cmp(const void *a, const void *b)
{
	const CwHistoryApplication *x = a;
	const CwHistoryApplication *y = b;

	if (x->connections != y->connections)
		return x->connections > y->connections ? -1 : 1;
	return strcmp(x->name, y->name);
}

/*
 * Take one sample (the worker, inside a transaction) and put it in the
 * ring.  The reading is done before the lock is taken.
 */
void
cw_history_take_sample(void)
{
	CwBackendSet *set;
	CwHistorySample *sample;
	CwHistoryApplication *apps;
	int			napps = 0;
	TimestampTz oldest_xact = 0;
	TransactionId oldest_holder;
	int32		xmin_age;
	uint64		refusals_total;
	int			i;

	if (cw_history == NULL || cw_remember == NULL)
		return;

	sample = palloc0(cw_history->sample_size);
	set = cw_read_backends(CW_READ_PROC);
	apps = palloc0(sizeof(CwHistoryApplication) * Max(set->nbackends, 1));

	for (i = 0; i < set->nbackends; i++)
	{
		CwBackend  *be = &set->backends[i];
		bool		iit;
		int			a;

		if (!cw_is_client_backend(be))
			continue;
		sample->client_backends++;
		iit = cw_is_idle_in_transaction(be);
		if (be->state == STATE_RUNNING || be->state == STATE_FASTPATH)
			sample->active++;
		else if (be->state == STATE_IDLE)
			sample->idle++;
		else if (iit)
			sample->idle_in_transaction++;
		if (cw_waits_on_lock(be))
			sample->waiting++;
		if (be->xact_start != 0 && (oldest_xact == 0 || be->xact_start < oldest_xact))
			oldest_xact = be->xact_start;

		/* applications are few: a linear search is fine */
		for (a = 0; a < napps; a++)
			if (strcmp(apps[a].name, be->application_name) == 0)
				break;
		if (a == napps)
			strlcpy(apps[napps++].name, be->application_name, NAMEDATALEN);
		apps[a].connections++;
		if (iit)
			apps[a].idle_in_transaction++;
		CHECK_FOR_INTERRUPTS();
	}

	sample->sampled_at = set->now;
	sample->oldest_xact_usecs = oldest_xact ? cw_age_usecs(set->now, oldest_xact) : -1;
	oldest_holder = cw_oldest_horizon_holder(set);
	sample->oldest_xmin_age = cw_xid_age(set->age_base, oldest_holder, &xmin_age) ?
		xmin_age : -1;

	qsort(apps, napps, sizeof(CwHistoryApplication), cw_application_cmp);
	sample->napplications = Min(napps, cw_history->napplications);
	memcpy(sample->applications, apps,
		   sizeof(CwHistoryApplication) * sample->napplications);
	for (i = sample->napplications; i < napps; i++)
	{
		sample->other_connections += apps[i].connections;
		sample->other_idle_in_transaction += apps[i].idle_in_transaction;
	}
	cw_release_backends(set);

	/* what the ledgers counted since the previous sample */
	refusals_total = pg_atomic_read_u64(&cw_remember->refusals_total);
	LWLockAcquire(cw_remember->lock, LW_SHARED);
	sample->ended = cw_remember->endings_total;
	LWLockRelease(cw_remember->lock);

	LWLockAcquire(cw_history->lock, LW_EXCLUSIVE);
	{
		int64		ended_total = sample->ended;

		sample->refused = cw_history->written == 0 ? 0 :
			(int64) (refusals_total - cw_history->last_refusals_total);
		sample->ended = cw_history->written == 0 ? 0 :
			ended_total - cw_history->last_endings_total;
		cw_history->last_refusals_total = refusals_total;
		cw_history->last_endings_total = ended_total;
		memcpy(cw_sample_at(cw_history->written), sample, cw_history->sample_size);
		cw_history->written++;
	}
	LWLockRelease(cw_history->lock);

	pfree(apps);
	pfree(sample);
}

/*
 * Copy into buffer (room for max_samples samples of cw_history_sample_size()
 * bytes) the next samples taken in [since, until], oldest first, starting
 * at *cursor (0 at the first call), and advance *cursor past what was
 * looked at; returns how many were copied, 0 when there are no more.
 *
 * Only the timestamps of the samples outside the range are read, and only
 * matching samples are copied: the caller's memory is max_samples samples
 * whatever the ring's size.  The lock is held shared for one call; between
 * two calls the worker may write (the cursor then skips what it
 * overwrote), so a long result is not one instant of the ring, but every
 * sample returned is whole.
 */
int
cw_history_read(TimestampTz since, TimestampTz until, uint64 *cursor,
				CwHistorySample *buffer, int max_samples)
{
	uint64		first;
	uint64		n;
	int			count = 0;

	cw_remember_require();
	LWLockAcquire(cw_history->lock, LW_SHARED);
	first = cw_history->written > (uint64) cw_history->capacity ?
		cw_history->written - cw_history->capacity : 0;
	for (n = Max(*cursor, first); n < cw_history->written && count < max_samples; n++)
	{
		CwHistorySample *sample = cw_sample_at(n);

		if (sample->sampled_at < since || sample->sampled_at > until)
			continue;
		memcpy((char *) buffer + count * cw_history->sample_size, sample,
			   cw_history->sample_size);
		count++;
	}
	LWLockRelease(cw_history->lock);
	*cursor = n;
	return count;
}

/* The stride of a buffer for cw_history_read */
Size
cw_history_sample_size(void)
{
	cw_remember_require();
	return cw_history->sample_size;
}
