/*-------------------------------------------------------------------------
 *
 * shared_state.c
 *		Shared memory of the remember layer: sized from settings at server
 *		start, created once, attached to by every process.
 *
 * Only with pg_connwatch in shared_preload_libraries: the size is asked for
 * from _PG_init (13, 14) or shmem_request_hook (15+) and is fixed for the
 * life of the server by connwatch.max_ledger_keys.  Without preloading,
 * cw_remember stays NULL, the hooks are not installed, and the functions of
 * the remember layer raise 55000 (cw_remember_require) while the observe
 * and act layers work as ever.
 *
 * Concurrency: the refusal ledger is lock-free (refusals.c); everything
 * else is protected by the one LWLock of the "pg_connwatch" tranche, held
 * only for a counter update or a copy.  A crash-and-restart re-creates the
 * memory, and the ledgers start again from the worker's last copy on disk
 * (persistence.c).
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "remember/shared_state.h"

CwRememberShared *cw_remember = NULL;
HTAB	   *cw_ending_table = NULL;
HTAB	   *cw_peak_table = NULL;
int			cw_max_ledger_keys = 1000;

/*
 * The largest connwatch.max_ledger_keys: every reader of the ledgers
 * (diagnose(), metrics(), the views, the worker's copy) is linear in it;
 * doc/benchmarks.md has what a full ledger of this size costs.
 */
#define CW_MAX_LEDGER_KEYS	10000

#ifdef CW_HAVE_SHMEM_REQUEST_HOOK
static shmem_request_hook_type cw_prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type cw_prev_shmem_startup_hook = NULL;

static uint32 cw_refusal_slots(void);
static Size cw_ledger_struct_size(void);
static Size cw_remember_shmem_size(void);
static HTAB *cw_init_fixed_hash(const char *name, Size keysize,
								Size entrysize, long nentries);
static void cw_remember_request(void);
static void cw_remember_startup(void);

/* Twice the keys, so that probing stays short when the ledger fills */
static uint32
cw_refusal_slots(void)
{
	uint32		slots = 16;

	while (slots < (uint32) cw_max_ledger_keys * 2)
		slots *= 2;
	return slots;
}

/* The struct: counters, kill marks, then the refusal ledger's entries */
static Size
cw_ledger_struct_size(void)
{
	return add_size(offsetof(CwRememberShared, refusals),
					mul_size(cw_refusal_slots() + CW_NUM_REFUSAL_CAUSES,
							 sizeof(CwRefusalEntry)));
}

static Size
cw_remember_shmem_size(void)
{
	Size		size = cw_ledger_struct_size();

	size = add_size(size,
					hash_estimate_size(cw_max_ledger_keys + CW_NUM_ENDING_REASONS,
									   sizeof(CwEndingEntry)));
	size = add_size(size,
					hash_estimate_size(cw_max_ledger_keys + CW_NUM_PEAK_SCOPES,
									   sizeof(CwPeakEntry)));
	return size;
}

static void
cw_remember_request(void)
{
#ifdef CW_HAVE_SHMEM_REQUEST_HOOK
	if (cw_prev_shmem_request_hook)
		cw_prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(cw_remember_shmem_size());
	RequestNamedLWLockTranche("pg_connwatch", 1);
}

/* Create the ledgers (postmaster, or after a crash) or attach to them */
static void
cw_remember_startup(void)
{
	bool		found;

	if (cw_prev_shmem_startup_hook)
		cw_prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);

	cw_remember = ShmemInitStruct("pg_connwatch ledgers",
								  cw_ledger_struct_size(), &found);
	if (!found)
	{
		uint32		i;
		TimestampTz now = GetCurrentTimestamp();

		memset(cw_remember, 0, offsetof(CwRememberShared, refusals));
		cw_remember->lock = &(GetNamedLWLockTranche("pg_connwatch"))->lock;
		pg_atomic_init_u32(&cw_remember->fast_shutdown, 0);
		pg_atomic_init_u64(&cw_remember->refusals_dropped, 0);
		pg_atomic_init_u64(&cw_remember->refusals_total, 0);
		cw_remember->ledgers_reset_at = now;
		cw_remember->peaks_reset_at = now;
		cw_remember->refusal_slots = cw_refusal_slots();
		cw_remember->refusal_max_keys = (uint32) cw_max_ledger_keys;
		pg_atomic_init_u32(&cw_remember->refusal_keys, 0);
		for (i = 0; i < cw_remember->refusal_slots + CW_NUM_REFUSAL_CAUSES; i++)
		{
			CwRefusalEntry *entry = &cw_remember->refusals[i];
			bool		overflow = (i >= cw_remember->refusal_slots);

			/* the overflow keys, one per cause, are there from the start */
			memset(&entry->key, 0, sizeof(CwRefusalKey));
			entry->key.overflow = overflow;
			if (overflow)
				entry->key.cause = i - cw_remember->refusal_slots;
			entry->hash = 0;
			pg_atomic_init_u32(&entry->state,
							   overflow ? CW_ENTRY_READY : CW_ENTRY_FREE);
			pg_atomic_init_u64(&entry->count, 0);
			pg_atomic_init_u64(&entry->first_at, 0);
			pg_atomic_init_u64(&entry->last_at, 0);
		}
	}

	/* room for every key plus one overflow key per reason or scope */
	cw_ending_table = cw_init_fixed_hash("pg_connwatch session endings",
										 sizeof(CwEndingKey),
										 sizeof(CwEndingEntry),
										 cw_max_ledger_keys + CW_NUM_ENDING_REASONS);
	cw_peak_table = cw_init_fixed_hash("pg_connwatch peaks",
									   sizeof(CwPeakKey), sizeof(CwPeakEntry),
									   cw_max_ledger_keys + CW_NUM_PEAK_SCOPES);

	LWLockRelease(AddinShmemInitLock);
}

/* A shared hash table of binary keys, all its entries allocated at start */
static HTAB *
cw_init_fixed_hash(const char *name, Size keysize, Size entrysize,
				   long nentries)
{
	HASHCTL		info;

	memset(&info, 0, sizeof(info));
	info.keysize = keysize;
	info.entrysize = entrysize;
	return cw_shmem_init_hash(name, nentries, &info,
							  HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
}

/*
 * From _PG_init, while shared_preload_libraries is being processed: the
 * setting that sizes the ledgers, and the request for their memory.
 */
void
cw_remember_preload(void)
{
	DefineCustomIntVariable("connwatch.max_ledger_keys",
							"Most distinct keys each ledger of pg_connwatch keeps.",
							"Refused connections, session endings and peaks each keep this many keys; when full, the key seen longest ago is counted in an overflow key per cause.",
							&cw_max_ledger_keys,
							1000,
							16, CW_MAX_LEDGER_KEYS,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

#ifdef CW_HAVE_SHMEM_REQUEST_HOOK
	cw_prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = cw_remember_request;
#else
	cw_remember_request();
#endif
	cw_prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = cw_remember_startup;
}

/* The functions of the remember layer need the library preloaded */
void
cw_remember_require(void)
{
	if (cw_remember == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_connwatch's ledgers are not available"),
				 errdetail("They live in shared memory, which pg_connwatch gets only when the server loads it at start."),
				 errhint("Add pg_connwatch to shared_preload_libraries and restart the server.")));
}
