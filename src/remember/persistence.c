/*-------------------------------------------------------------------------
 *
 * persistence.c
 *		Keep the ledgers across a clean restart: written to a file when
 *		the postmaster exits, read back when it creates them again.
 *
 * As pg_stat_statements does: the postmaster writes the file in an
 * on_shmem_exit callback, when every other process has exited (so nothing
 * changes the ledgers while they are written, and no lock is taken), and
 * only on a clean exit (code 0).  When the postmaster next creates the
 * ledgers it reads the file back and removes it, so that a crash later
 * cannot bring back stale figures: a crash loses the ledgers.
 *
 * The file is pg_stat/pg_connwatch.ledgers: a header (magic, format, the
 * sizes of the keys, so that a library with another layout ignores it),
 * then the refusal, ending and peak entries.  A file that cannot be read
 * is reported at LOG level and ignored; the server starts regardless.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/ipc.h"

#include "remember/persistence.h"
#include "remember/refusals.h"
#include "remember/sessions.h"
#include "remember/shared_state.h"

#define CW_LEDGER_FILE		"pg_stat/pg_connwatch.ledgers"
#define CW_LEDGER_MAGIC		0x43574c47	/* "CWLG" */
#define CW_LEDGER_FORMAT	2

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

typedef struct CwSavedRefusal
{
	CwRefusalKey key;
	uint64		count;
	TimestampTz first_at;
	TimestampTz last_at;
} CwSavedRefusal;

static shmem_startup_hook_type cw_prev_shmem_startup_hook = NULL;

static void cw_persistence_startup(void);
static void cw_load_ledgers(void);
static void cw_save_ledgers(int code, Datum arg);

/* From _PG_init: after shared_state.c's hook, which creates the ledgers */
void
cw_persistence_preload(void)
{
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
	on_shmem_exit(cw_save_ledgers, (Datum) 0);
}

static void
cw_load_ledgers(void)
{
	FILE	   *file;
	CwLedgerHeader header;
	int			i;

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

	cw_remember->ledgers_reset_at = header.ledgers_reset_at;
	cw_remember->peaks_reset_at = header.peaks_reset_at;
	cw_remember->endings_dropped = header.endings_dropped;
	cw_remember->peaks_dropped = header.peaks_dropped;
	pg_atomic_write_u64(&cw_remember->refusals_dropped, header.refusals_dropped);

	for (i = 0; i < header.nrefusals; i++)
	{
		CwSavedRefusal saved;

		if (fread(&saved, sizeof(saved), 1, file) != 1)
			goto short_file;
		cw_restore_refusal(&saved.key, saved.count, saved.first_at,
						   saved.last_at);
	}
	for (i = 0; i < header.nendings; i++)
	{
		CwEndingEntry saved;

		if (fread(&saved, sizeof(saved), 1, file) != 1)
			goto short_file;
		cw_restore_ending(&saved);
	}
	for (i = 0; i < header.npeaks; i++)
	{
		CwPeakEntry saved;

		if (fread(&saved, sizeof(saved), 1, file) != 1)
			goto short_file;
		cw_restore_peak(&saved);
	}
	goto done;

short_file:
	ereport(LOG,
			(errmsg("pg_connwatch's ledger file \"%s\" is truncated; kept what was read",
					CW_LEDGER_FILE)));
done:
	FreeFile(file);
	/* read once: a crash later must not bring these figures back */
	unlink(CW_LEDGER_FILE);
}

/*
 * on_shmem_exit in the postmaster: every other process is gone.  Only a
 * clean exit writes; the file is written aside and renamed into place.
 */
static void
cw_save_ledgers(int code, Datum arg)
{
	FILE	   *file;
	CwLedgerHeader header;
	HASH_SEQ_STATUS scan;
	CwEndingEntry *ending;
	CwPeakEntry *peak;
	uint32		i;

	if (code != 0 || cw_remember == NULL)
		return;

	file = AllocateFile(CW_LEDGER_FILE ".tmp", PG_BINARY_W);
	if (file == NULL)
		goto error;

	memset(&header, 0, sizeof(header));
	header.magic = CW_LEDGER_MAGIC;
	header.format = CW_LEDGER_FORMAT;
	header.refusal_key_size = sizeof(CwRefusalKey);
	header.ending_entry_size = sizeof(CwEndingEntry);
	header.peak_entry_size = sizeof(CwPeakEntry);
	header.refusal_causes = CW_NUM_REFUSAL_CAUSES;
	header.ending_reasons = CW_NUM_ENDING_REASONS;
	header.peak_scopes = CW_NUM_PEAK_SCOPES;
	header.ledgers_reset_at = cw_remember->ledgers_reset_at;
	header.peaks_reset_at = cw_remember->peaks_reset_at;
	header.endings_dropped = cw_remember->endings_dropped;
	header.peaks_dropped = cw_remember->peaks_dropped;
	header.refusals_dropped = pg_atomic_read_u64(&cw_remember->refusals_dropped);
	for (i = 0; i < cw_remember->refusal_slots + CW_NUM_REFUSAL_CAUSES; i++)
		if (pg_atomic_read_u32(&cw_remember->refusals[i].state) == CW_ENTRY_READY &&
			pg_atomic_read_u64(&cw_remember->refusals[i].count) > 0)
			header.nrefusals++;
	header.nendings = hash_get_num_entries(cw_ending_table);
	header.npeaks = hash_get_num_entries(cw_peak_table);
	if (fwrite(&header, sizeof(header), 1, file) != 1)
		goto error;

	for (i = 0; i < cw_remember->refusal_slots + CW_NUM_REFUSAL_CAUSES; i++)
	{
		CwRefusalEntry *entry = &cw_remember->refusals[i];
		CwSavedRefusal saved;

		if (pg_atomic_read_u32(&entry->state) != CW_ENTRY_READY ||
			pg_atomic_read_u64(&entry->count) == 0)
			continue;
		memset(&saved, 0, sizeof(saved));
		saved.key = entry->key;
		saved.count = pg_atomic_read_u64(&entry->count);
		saved.first_at = (TimestampTz) pg_atomic_read_u64(&entry->first_at);
		saved.last_at = (TimestampTz) pg_atomic_read_u64(&entry->last_at);
		if (fwrite(&saved, sizeof(saved), 1, file) != 1)
			goto error;
	}

	hash_seq_init(&scan, cw_ending_table);
	while ((ending = hash_seq_search(&scan)) != NULL)
	{
		if (fwrite(ending, sizeof(CwEndingEntry), 1, file) != 1)
		{
			hash_seq_term(&scan);
			goto error;
		}
	}
	hash_seq_init(&scan, cw_peak_table);
	while ((peak = hash_seq_search(&scan)) != NULL)
	{
		if (fwrite(peak, sizeof(CwPeakEntry), 1, file) != 1)
		{
			hash_seq_term(&scan);
			goto error;
		}
	}

	if (FreeFile(file) != 0)
	{
		file = NULL;
		goto error;
	}
	(void) durable_rename(CW_LEDGER_FILE ".tmp", CW_LEDGER_FILE, LOG);
	return;

error:
	ereport(LOG,
			(errcode_for_file_access(),
			 errmsg("could not write file \"%s\": %m", CW_LEDGER_FILE ".tmp")));
	if (file)
		FreeFile(file);
	unlink(CW_LEDGER_FILE ".tmp");
}
