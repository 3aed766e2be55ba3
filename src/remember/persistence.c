/*-------------------------------------------------------------------------
 *
 * persistence.c
 *		Keep the ledgers across restarts: written to a file when the
 *		postmaster exits cleanly and, every connwatch.ledger_persist_interval,
 *		by the worker; read back, and checked, whenever the postmaster
 *		creates the ledgers (at start, and after a crash).
 *
 * The file is pg_stat/pg_connwatch.ledgers: a header (magic, format, the
 * sizes of the keys and of the enums, so that a library with another
 * layout ignores it), the refusal, ending and peak entries, then a trailer
 * naming the data directory that wrote it (a base backup copies pg_stat/:
 * a standby made from a running primary must not start with its ledgers).  It is
 * always written aside (.tmp), flushed, and renamed into place, so a crash
 * in the middle of a write leaves the previous copy.
 *
 * Who writes, and what protects what:
 *
 * - The postmaster, in an on_shmem_exit callback, on a clean exit (code 0)
 *   only: every other process is gone, nothing changes the ledgers, no
 *   lock is taken (as pg_stat_statements does).
 * - The worker (cw_persist_ledgers_if_due, from its loop), every interval:
 *   the endings and peaks are copied under the ledger lock, shared; the
 *   refusal ledger, lock-free, is read slot by slot (a slot being evicted
 *   at that instant may be saved under its old or its new key).  The file
 *   is written and flushed without any lock, then renamed under the lock,
 *   shared, if no reset happened since the copy (ledgers_reset_at and
 *   peaks_reset_at unchanged): reset_ledgers() and reset_peaks() remove
 *   the file under the lock, exclusive, so that a crash after a reset
 *   cannot bring back what was reset.
 *
 * Reading: the postmaster, creating the ledgers, before any other process
 * exists.  With connwatch.ledger_persist_interval > 0 the file stays after
 * it is read: a crash later brings back the last copy, so a crash-restart
 * (a backend killed by the OOM killer, say) loses at most one interval of
 * counting.  With 0 the file is removed once read, as before: only a
 * clean restart keeps the ledgers, and a crash cannot bring back figures
 * from before the last start.
 *
 * Everything read is checked: a cause, reason or scope out of range, a
 * flag that is not a boolean, a name without its terminating zero, a
 * timestamp out of range (or later than a day from now), a count that
 * does not add up -- such an entry is ignored.  Keys are rebuilt as live
 * counting builds them; a key held twice is added up; keys beyond
 * connwatch.max_ledger_keys are added to their overflow key.  Each kind of
 * problem is reported once, as a WARNING with the number of entries; a
 * file that cannot be read at all is reported at LOG and ignored.  The
 * server starts regardless.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "remember/persistence.h"
#include "remember/refusals.h"
#include "remember/sessions.h"
#include "remember/shared_state.h"

#define CW_LEDGER_DIR		"pg_stat"
#define CW_LEDGER_FILE		CW_LEDGER_DIR "/pg_connwatch.ledgers"
#define CW_LEDGER_TMP		CW_LEDGER_FILE ".tmp"
#define CW_LEDGER_MAGIC		0x43574c47	/* "CWLG" */
#define CW_LEDGER_FORMAT	2

/* More than any ledger counts: a quarter of int64, room to count on */
#define CW_MAX_SAVED_COUNT	(PG_INT64_MAX / 4)

typedef struct CwLedgerHeader
{
	uint32		magic;
	uint32		format;
	uint32		refusal_key_size;
	uint32		ending_entry_size;
	uint32		peak_entry_size;
	uint32		refusal_causes;	/* the enums' sizes: a reordered enum */
	uint32		ending_reasons; /* would relabel restored rows */
	uint32		peak_scopes;
	TimestampTz ledgers_reset_at;
	TimestampTz peaks_reset_at;
	int64		endings_dropped;
	int64		peaks_dropped;
	uint64		refusals_dropped;
	int32		nrefusals;
	int32		nendings;
	int32		npeaks;
} CwLedgerHeader;

/*
 * After the entries: which data directory wrote the file.  A base backup
 * copies pg_stat/, so without it a standby made from a running primary
 * would start with the primary's ledgers.  A file without a trailer (a
 * clean shutdown of 1.0.1) is accepted as before.
 */
#define CW_LEDGER_TRAILER_MAGIC	0x43574454	/* "CWDT" */

typedef struct CwLedgerTrailer
{
	uint32		magic;
	uint32		padding;
	uint64		data_dir_device;
	uint64		data_dir_inode;
} CwLedgerTrailer;

typedef struct CwSavedRefusal
{
	CwRefusalKey key;
	uint64		count;
	TimestampTz first_at;
	TimestampTz last_at;
} CwSavedRefusal;

/* What the file held that was not put back as it was, by kind */
typedef struct CwLoadProblems
{
	int			outcomes[CW_NUM_RESTORE_OUTCOMES];
	int			bad_time;		/* a timestamp out of range */
	int			bad_figure;		/* a count or a figure that cannot be */
	bool		bad_header_time;
} CwLoadProblems;

/* A copy of the ledgers, written without a lock */
typedef struct CwLedgerCopy
{
	CwLedgerHeader header;
	CwSavedRefusal *refusals;
	CwEndingEntry *endings;
	CwPeakEntry *peaks;
} CwLedgerCopy;

/* connwatch.ledger_persist_interval, in seconds; 0: clean shutdowns only */
int			cw_ledger_persist_interval_s = 60;

static shmem_startup_hook_type cw_prev_shmem_startup_hook = NULL;

/* The worker's own state */
static TimestampTz cw_next_persist = 0;
static bool cw_file_removed_while_off = false;
static MemoryContext cw_persist_context = NULL;

static void cw_persistence_startup(void);
static void cw_load_ledgers(void);
static void cw_save_at_exit(int code, Datum arg);
static bool cw_valid_time(TimestampTz ts, TimestampTz now, bool zero_ok);
static bool cw_check_refusal(const CwSavedRefusal *saved, TimestampTz now,
							 CwLoadProblems *problems);
static bool cw_check_ending(const CwEndingEntry *saved, TimestampTz now,
							CwLoadProblems *problems);
static bool cw_check_peak(const CwPeakEntry *saved, TimestampTz now,
						  CwLoadProblems *problems);
static void cw_report_problems(const CwLoadProblems *problems);
static void cw_fill_header(CwLedgerHeader *header);
static void cw_fill_trailer(CwLedgerTrailer *trailer);
static bool cw_written_elsewhere(FILE *file);
static bool cw_copy_ledgers(CwLedgerCopy *copy, bool take_lock);
static bool cw_write_file(const CwLedgerCopy *copy);

/* From _PG_init: after shared_state.c's hook, which creates the ledgers */
void
cw_persistence_preload(void)
{
	DefineCustomIntVariable("connwatch.ledger_persist_interval",
							"How often the pg_connwatch worker saves the ledgers to disk, so that a crash-restart keeps them.",
							"0 saves them at a clean shutdown only; a crash then loses them.",
							&cw_ledger_persist_interval_s,
							60,
							0, 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	cw_prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = cw_persistence_startup;
}

static void
cw_persistence_startup(void)
{
	if (cw_prev_shmem_startup_hook)
		cw_prev_shmem_startup_hook();

	/* the postmaster, creating the ledgers (at start or after a crash) */
	if (IsUnderPostmaster || cw_remember == NULL)
		return;
	cw_load_ledgers();
	on_shmem_exit(cw_save_at_exit, (Datum) 0);
}

/*
 * A timestamp the views and diagnose() can compute with: in the range of
 * timestamptz, and not later than a day from now (a clock set back since
 * the file was written is allowed that much).
 */
static bool
cw_valid_time(TimestampTz ts, TimestampTz now, bool zero_ok)
{
	if (ts == 0)
		return zero_ok;
	return IS_VALID_TIMESTAMP(ts) && ts <= now + USECS_PER_DAY;
}

static bool
cw_check_refusal(const CwSavedRefusal *saved, TimestampTz now,
				 CwLoadProblems *problems)
{
	if (saved->count == 0 || saved->count > (uint64) CW_MAX_SAVED_COUNT)
	{
		problems->bad_figure++;
		return false;
	}
	if (!cw_valid_time(saved->first_at, now, false) ||
		!cw_valid_time(saved->last_at, now, false) ||
		saved->first_at > saved->last_at)
	{
		problems->bad_time++;
		return false;
	}
	return true;
}

static bool
cw_check_ending(const CwEndingEntry *saved, TimestampTz now,
				CwLoadProblems *problems)
{
	int64		in_buckets = 0;
	int			b;

	for (b = 0; b < CW_LIFETIME_BUCKETS; b++)
	{
		if (saved->buckets[b] < 0 || saved->buckets[b] > CW_MAX_SAVED_COUNT)
		{
			problems->bad_figure++;
			return false;
		}
		in_buckets += saved->buckets[b];
	}
	if (saved->count <= 0 || saved->count > CW_MAX_SAVED_COUNT ||
		in_buckets != saved->count || saved->total_usecs < 0 ||
		saved->total_usecs > CW_MAX_SAVED_COUNT ||
		saved->in_transaction < 0 || saved->in_transaction > saved->count ||
		saved->transaction_warnings < 0 ||
		saved->transaction_warnings > saved->count)
	{
		problems->bad_figure++;
		return false;
	}
	if (!cw_valid_time(saved->first_at, now, false) ||
		!cw_valid_time(saved->last_at, now, false) ||
		saved->first_at > saved->last_at ||
		!cw_valid_time(saved->last_in_transaction_at, now, true) ||
		!cw_valid_time(saved->last_transaction_warning_at, now, true))
	{
		problems->bad_time++;
		return false;
	}
	return true;
}

static bool
cw_check_peak(const CwPeakEntry *saved, TimestampTz now,
			  CwLoadProblems *problems)
{
	if (saved->peak < 0)
	{
		problems->bad_figure++;
		return false;
	}
	if (!cw_valid_time(saved->peak_at, now, true))
	{
		problems->bad_time++;
		return false;
	}
	return true;
}

/* One WARNING per kind of problem the file had */
static void
cw_report_problems(const CwLoadProblems *problems)
{
	if (problems->outcomes[CW_RESTORE_BAD_ENUM] > 0)
		ereport(WARNING,
				(errmsg("pg_connwatch ignored %d entries of \"%s\" with a cause, reason or scope out of range",
						problems->outcomes[CW_RESTORE_BAD_ENUM], CW_LEDGER_FILE)));
	if (problems->outcomes[CW_RESTORE_BAD_KEY] > 0)
		ereport(WARNING,
				(errmsg("pg_connwatch ignored %d entries of \"%s\" with a key that is not valid",
						problems->outcomes[CW_RESTORE_BAD_KEY], CW_LEDGER_FILE),
				 errdetail("A flag was not a boolean, an address family was unknown, or a name lacked its terminating zero byte.")));
	if (problems->bad_time > 0)
		ereport(WARNING,
				(errmsg("pg_connwatch ignored %d entries of \"%s\" with a timestamp out of range",
						problems->bad_time, CW_LEDGER_FILE),
				 errdetail("Timestamps must be valid, not later than a day from now, and first_at must not follow last_at.")));
	if (problems->bad_figure > 0)
		ereport(WARNING,
				(errmsg("pg_connwatch ignored %d entries of \"%s\" with counts that do not add up",
						problems->bad_figure, CW_LEDGER_FILE)));
	if (problems->outcomes[CW_RESTORE_MERGED] > 0)
		ereport(WARNING,
				(errmsg("pg_connwatch found %d duplicate keys in \"%s\" and added them up",
						problems->outcomes[CW_RESTORE_MERGED], CW_LEDGER_FILE)));
	if (problems->outcomes[CW_RESTORE_OVER_CAP] > 0)
		ereport(WARNING,
				(errmsg("pg_connwatch counted %d entries of \"%s\" beyond connwatch.max_ledger_keys in the overflow keys",
						problems->outcomes[CW_RESTORE_OVER_CAP], CW_LEDGER_FILE),
				 errdetail("The file holds more keys than the ledgers keep (%d); their counts are kept without their names, peaks beyond it are dropped.",
						   cw_max_ledger_keys)));
	if (problems->bad_header_time)
		ereport(WARNING,
				(errmsg("pg_connwatch found reset times out of range in \"%s\" and replaced them with the current time",
						CW_LEDGER_FILE)));
}

static void
cw_load_ledgers(void)
{
	FILE	   *file;
	CwLedgerHeader header;
	CwLoadProblems problems;
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	memset(&problems, 0, sizeof(problems));
	file = AllocateFile(CW_LEDGER_FILE, PG_BINARY_R);
	if (file == NULL)
	{
		if (errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", CW_LEDGER_FILE)));
		return;
	}

	if (fread(&header, sizeof(header), 1, file) != 1 ||
		header.magic != CW_LEDGER_MAGIC || header.format != CW_LEDGER_FORMAT ||
		header.refusal_key_size != sizeof(CwRefusalKey) ||
		header.ending_entry_size != sizeof(CwEndingEntry) ||
		header.peak_entry_size != sizeof(CwPeakEntry) ||
		header.refusal_causes != CW_NUM_REFUSAL_CAUSES ||
		header.ending_reasons != CW_NUM_ENDING_REASONS ||
		header.peak_scopes != CW_NUM_PEAK_SCOPES ||
		header.nrefusals < 0 || header.nendings < 0 || header.npeaks < 0)
	{
		ereport(LOG,
				(errmsg("ignoring pg_connwatch's ledger file \"%s\": not written by this version",
						CW_LEDGER_FILE)));
		goto done;
	}
	if (cw_written_elsewhere(file))
	{
		ereport(LOG,
				(errmsg("ignoring pg_connwatch's ledger file \"%s\": written by the server of another data directory",
						CW_LEDGER_FILE),
				 errdetail("A base backup or a copy of the data directory carries the ledgers of the server it was taken from.")));
		goto done;
	}

	if (!cw_valid_time(header.ledgers_reset_at, now, false) ||
		!cw_valid_time(header.peaks_reset_at, now, false))
		problems.bad_header_time = true;
	else
	{
		cw_remember->ledgers_reset_at = header.ledgers_reset_at;
		cw_remember->peaks_reset_at = header.peaks_reset_at;
	}
	cw_remember->endings_dropped = Max(header.endings_dropped, 0);
	cw_remember->peaks_dropped = Max(header.peaks_dropped, 0);
	pg_atomic_write_u64(&cw_remember->refusals_dropped,
						Min(header.refusals_dropped, (uint64) CW_MAX_SAVED_COUNT));

	for (i = 0; i < header.nrefusals; i++)
	{
		CwSavedRefusal saved;

		if (fread(&saved, sizeof(saved), 1, file) != 1)
			goto short_file;
		if (cw_check_refusal(&saved, now, &problems))
			problems.outcomes[cw_restore_refusal(&saved.key, saved.count,
												 saved.first_at,
												 saved.last_at)]++;
	}
	for (i = 0; i < header.nendings; i++)
	{
		CwEndingEntry saved;

		if (fread(&saved, sizeof(saved), 1, file) != 1)
			goto short_file;
		if (cw_check_ending(&saved, now, &problems))
			problems.outcomes[cw_restore_ending(&saved)]++;
	}
	for (i = 0; i < header.npeaks; i++)
	{
		CwPeakEntry saved;

		if (fread(&saved, sizeof(saved), 1, file) != 1)
			goto short_file;
		if (cw_check_peak(&saved, now, &problems))
			problems.outcomes[cw_restore_peak(&saved)]++;
	}
	goto done;

short_file:
	ereport(LOG,
			(errmsg("pg_connwatch's ledger file \"%s\" is truncated; kept what was read",
					CW_LEDGER_FILE)));
done:
	FreeFile(file);
	cw_report_problems(&problems);
	/* without periodic copies, a crash later must not bring these back */
	if (cw_ledger_persist_interval_s <= 0)
		unlink(CW_LEDGER_FILE);
}

/* This data directory, as the trailer records it */
static void
cw_fill_trailer(CwLedgerTrailer *trailer)
{
	struct stat st;

	memset(trailer, 0, sizeof(CwLedgerTrailer));
	trailer->magic = CW_LEDGER_TRAILER_MAGIC;
	if (stat(".", &st) == 0)
	{
		trailer->data_dir_device = (uint64) st.st_dev;
		trailer->data_dir_inode = (uint64) st.st_ino;
	}
}

/*
 * Whether the file's trailer names another data directory; the file is
 * left positioned right after the header.
 */
static bool
cw_written_elsewhere(FILE *file)
{
	CwLedgerTrailer saved;
	CwLedgerTrailer here;
	long		after_header = ftell(file);
	bool		elsewhere = false;

	if (after_header < 0)
		return false;
	if (fseek(file, -(long) sizeof(CwLedgerTrailer), SEEK_END) == 0 &&
		ftell(file) >= after_header &&
		fread(&saved, sizeof(saved), 1, file) == 1 &&
		saved.magic == CW_LEDGER_TRAILER_MAGIC)
	{
		cw_fill_trailer(&here);
		elsewhere = (saved.data_dir_device != here.data_dir_device ||
					 saved.data_dir_inode != here.data_dir_inode);
	}
	(void) fseek(file, after_header, SEEK_SET);
	return elsewhere;
}

static void
cw_fill_header(CwLedgerHeader *header)
{
	memset(header, 0, sizeof(CwLedgerHeader));
	header->magic = CW_LEDGER_MAGIC;
	header->format = CW_LEDGER_FORMAT;
	header->refusal_key_size = sizeof(CwRefusalKey);
	header->ending_entry_size = sizeof(CwEndingEntry);
	header->peak_entry_size = sizeof(CwPeakEntry);
	header->refusal_causes = CW_NUM_REFUSAL_CAUSES;
	header->ending_reasons = CW_NUM_ENDING_REASONS;
	header->peak_scopes = CW_NUM_PEAK_SCOPES;
}

/*
 * Copy the ledgers into CurrentMemoryContext.  take_lock: the worker,
 * while sessions come and go (the endings and peaks under the lock,
 * shared); the postmaster at its exit is alone.  False if memory could
 * not be had (nothing is raised: the worker must not fail for this).
 */
static bool
cw_copy_ledgers(CwLedgerCopy *copy, bool take_lock)
{
	uint32		nslots = cw_remember->refusal_slots + CW_NUM_REFUSAL_CAUSES;
	long		max_endings = cw_max_ledger_keys + CW_NUM_ENDING_REASONS;
	long		max_peaks = cw_max_ledger_keys + CW_NUM_PEAK_SCOPES;
	long		max_refusals = cw_remember->refusal_max_keys + CW_NUM_REFUSAL_CAUSES;
	HASH_SEQ_STATUS scan;
	CwEndingEntry *ending;
	CwPeakEntry *peak;
	uint32		i;

	cw_fill_header(&copy->header);
	copy->refusals = MemoryContextAllocExtended(CurrentMemoryContext,
												sizeof(CwSavedRefusal) * max_refusals,
												MCXT_ALLOC_NO_OOM);
	copy->endings = MemoryContextAllocExtended(CurrentMemoryContext,
											   sizeof(CwEndingEntry) * max_endings,
											   MCXT_ALLOC_NO_OOM);
	copy->peaks = MemoryContextAllocExtended(CurrentMemoryContext,
											 sizeof(CwPeakEntry) * max_peaks,
											 MCXT_ALLOC_NO_OOM);
	if (copy->refusals == NULL || copy->endings == NULL || copy->peaks == NULL)
		return false;

	/* lock-free: a slot is taken if READY before and after its copy */
	for (i = 0; i < nslots && copy->header.nrefusals < max_refusals; i++)
	{
		CwRefusalEntry *entry = &cw_remember->refusals[i];
		CwSavedRefusal *saved = &copy->refusals[copy->header.nrefusals];

		if (pg_atomic_read_u32(&entry->state) != CW_ENTRY_READY)
			continue;
		pg_read_barrier();
		memset(saved, 0, sizeof(CwSavedRefusal));
		saved->key = entry->key;
		saved->count = pg_atomic_read_u64(&entry->count);
		saved->first_at = (TimestampTz) pg_atomic_read_u64(&entry->first_at);
		saved->last_at = (TimestampTz) pg_atomic_read_u64(&entry->last_at);
		pg_read_barrier();
		if (pg_atomic_read_u32(&entry->state) != CW_ENTRY_READY ||
			saved->count == 0)
			continue;
		copy->header.nrefusals++;
	}
	copy->header.refusals_dropped = pg_atomic_read_u64(&cw_remember->refusals_dropped);

	if (take_lock)
		LWLockAcquire(cw_remember->lock, LW_SHARED);
	copy->header.ledgers_reset_at = cw_remember->ledgers_reset_at;
	copy->header.peaks_reset_at = cw_remember->peaks_reset_at;
	copy->header.endings_dropped = cw_remember->endings_dropped;
	copy->header.peaks_dropped = cw_remember->peaks_dropped;
	hash_seq_init(&scan, cw_ending_table);
	while ((ending = hash_seq_search(&scan)) != NULL)
	{
		if (copy->header.nendings < max_endings)
			copy->endings[copy->header.nendings++] = *ending;
	}
	hash_seq_init(&scan, cw_peak_table);
	while ((peak = hash_seq_search(&scan)) != NULL)
	{
		if (copy->header.npeaks < max_peaks)
			copy->peaks[copy->header.npeaks++] = *peak;
	}
	if (take_lock)
		LWLockRelease(cw_remember->lock);
	return true;
}

/* Write a copy to the temporary file and flush it; LOG on failure */
static bool
cw_write_file(const CwLedgerCopy *copy)
{
	FILE	   *file;
	CwLedgerTrailer trailer;

	cw_fill_trailer(&trailer);
	file = AllocateFile(CW_LEDGER_TMP, PG_BINARY_W);
	if (file == NULL)
		goto error;
	if (fwrite(&copy->header, sizeof(CwLedgerHeader), 1, file) != 1 ||
		(copy->header.nrefusals > 0 &&
		 fwrite(copy->refusals, sizeof(CwSavedRefusal),
				copy->header.nrefusals, file) != (size_t) copy->header.nrefusals) ||
		(copy->header.nendings > 0 &&
		 fwrite(copy->endings, sizeof(CwEndingEntry),
				copy->header.nendings, file) != (size_t) copy->header.nendings) ||
		(copy->header.npeaks > 0 &&
		 fwrite(copy->peaks, sizeof(CwPeakEntry),
				copy->header.npeaks, file) != (size_t) copy->header.npeaks) ||
		fwrite(&trailer, sizeof(CwLedgerTrailer), 1, file) != 1 ||
		fflush(file) != 0 || pg_fsync(fileno(file)) != 0)
		goto error;
	if (FreeFile(file) != 0)
	{
		file = NULL;
		goto error;
	}
	return true;

error:
	ereport(LOG,
			(errcode_for_file_access(),
			 errmsg("could not write file \"%s\": %m", CW_LEDGER_TMP)));
	if (file)
		FreeFile(file);
	unlink(CW_LEDGER_TMP);
	return false;
}

/*
 * on_shmem_exit in the postmaster: every other process is gone.  Only a
 * clean exit writes: after a crash the memory may be anything, and the
 * worker's last copy is what the next start reads.
 */
static void
cw_save_at_exit(int code, Datum arg)
{
	CwLedgerCopy copy;

	if (code != 0 || cw_remember == NULL)
		return;
	if (!cw_copy_ledgers(&copy, false))
		return;
	if (cw_write_file(&copy))
		(void) durable_rename(CW_LEDGER_TMP, CW_LEDGER_FILE, LOG);
}

/*
 * From the worker's loop, at each of its wake-ups: save the ledgers when
 * connwatch.ledger_persist_interval has passed since the last copy.  With
 * the interval 0, remove a copy left from before, once, so that a crash
 * does not bring back old figures.  Never raises an error: a failure to
 * write is logged, and tried again at the next interval.
 */
void
cw_persist_ledgers_if_due(void)
{
	TimestampTz now;
	CwLedgerCopy copy;
	MemoryContext old_context;

	if (cw_remember == NULL)
		return;
	if (cw_ledger_persist_interval_s <= 0)
	{
		if (!cw_file_removed_while_off)
			(void) unlink(CW_LEDGER_FILE);
		cw_file_removed_while_off = true;
		cw_next_persist = 0;
		return;
	}
	cw_file_removed_while_off = false;

	now = GetCurrentTimestamp();
	if (cw_next_persist == 0)
		cw_next_persist = TimestampTzPlusMilliseconds(now,
													  cw_ledger_persist_interval_s * 1000);
	if (now < cw_next_persist)
		return;
	cw_next_persist = TimestampTzPlusMilliseconds(now,
												  cw_ledger_persist_interval_s * 1000);

	if (cw_persist_context == NULL)
		cw_persist_context = AllocSetContextCreate(TopMemoryContext,
												   "pg_connwatch ledger copy",
												   ALLOCSET_DEFAULT_SIZES);
	old_context = MemoryContextSwitchTo(cw_persist_context);
	if (!cw_copy_ledgers(&copy, true))
		ereport(LOG,
				(errmsg("pg_connwatch could not save its ledgers: out of memory")));
	else if (cw_write_file(&copy))
	{
		bool		renamed = false;

		/* under the lock, so that a reset cannot slip in before the rename */
		LWLockAcquire(cw_remember->lock, LW_SHARED);
		if (cw_remember->ledgers_reset_at == copy.header.ledgers_reset_at &&
			cw_remember->peaks_reset_at == copy.header.peaks_reset_at)
		{
			if (rename(CW_LEDGER_TMP, CW_LEDGER_FILE) == 0)
				renamed = true;
			else
				ereport(LOG,
						(errcode_for_file_access(),
						 errmsg("could not rename file \"%s\" to \"%s\": %m",
								CW_LEDGER_TMP, CW_LEDGER_FILE)));
		}
		LWLockRelease(cw_remember->lock);
		if (renamed)
			(void) fsync_fname_ext(CW_LEDGER_DIR, true, false, LOG);
		else
			(void) unlink(CW_LEDGER_TMP);
	}
	MemoryContextSwitchTo(old_context);
	MemoryContextReset(cw_persist_context);
}

/*
 * After reset_ledgers() or reset_peaks(): the copy on disk holds what was
 * reset; remove it.  The caller holds the ledger lock exclusively, so no
 * copy taken before the reset is renamed into place after it.
 */
void
cw_forget_saved_ledgers(void)
{
	if (unlink(CW_LEDGER_FILE) != 0 && errno != ENOENT)
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("could not remove file \"%s\": %m", CW_LEDGER_FILE)));
}
