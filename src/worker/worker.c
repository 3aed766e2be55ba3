/*-------------------------------------------------------------------------
 *
 * worker.c
 *		pg_connwatch's background worker: samples the history, and, with
 *		connwatch.enforce_interval set, applies connwatch.policies itself.
 *
 * Two kinds of process, as pg_cron's launcher and its job workers:
 *
 * - "pg_connwatch worker", registered at server start when pg_connwatch is
 *   preloaded.  It connects to no database (shared catalogs only), so that
 *   it never stands in the way of DROP DATABASE or of CREATE DATABASE ...
 *   TEMPLATE.  It samples the history every connwatch.sample_interval and,
 *   every connwatch.enforce_interval, starts one enforcement round.
 * - "pg_connwatch enforcer", a dynamic background worker that connects to
 *   connwatch.database, applies every enabled policy once and exits.  A
 *   round takes milliseconds; DROP DATABASE waits up to 5 s for the
 *   database's sessions to go, so a round does not make it fail.  A new
 *   round is started only once the previous one has ended.
 *
 * Both run on a primary and on a hot standby (from consistency on).  A
 * background worker has a slot of its own (max_worker_processes), so they
 * keep working when every client slot is taken -- the moment the enforcer
 * is needed most, and when pg_cron, which needs a free connection, cannot
 * run.
 *
 * The enforcer is connwatch.enforce() without a client: the same policies,
 * the same engine (act/engine.c), re-check, protections and kill budget,
 * the same LOG line and audit row, whose invoked_by is the worker's role
 * (the bootstrap superuser).  It commits each audit row at once
 * (CW_RUN_OWN_TRANSACTIONS), with interrupts held off from the signal to
 * the commit, so that neither an ERROR nor a SIGTERM after a signal loses
 * its row.  A policy that fails is skipped and logged as a WARNING when it
 * breaks (and every 10 minutes while it stays broken); the others are
 * applied, and the sampling, in another process, is not affected.  On a
 * hot standby the audit table cannot be written and the LOG line is the
 * whole trail, as for enforce() there.
 *
 * The enforcer pins the settings it needs over whatever its database or
 * role says (cw_pin_settings): a database owner could otherwise stop the
 * superuser's enforcer with ALTER DATABASE ... SET
 * default_transaction_read_only = on, or slow it with a statement_timeout.
 *
 * Concurrency: the worker and its rounds share one small dynamic shared
 * memory segment (CwEnforcerState), written by one round at a time (a new
 * round starts only when the previous one has stopped), and read by the
 * worker.  Robustness: SIGTERM is core's die(); an ERROR in the worker
 * ends it with exit code 1 and the postmaster starts it again after 5 s.
 * An ERROR in a round ends that round only.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/skey.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "act/engine.h"
#include "act/policies.h"
#include "compat.h"
#include "remember/history.h"
#include "remember/persistence.h"
#include "worker/worker.h"

/* lock_timeout of a round: a lock held on its tables delays it this long */
#define CW_ENFORCER_LOCK_TIMEOUT	"10s"

/* What the worker and its rounds share */
typedef struct CwEnforcerState
{
	bool		missing_extension_reported;
	uint32		failures_hash;	/* what the last reported failures said */
	TimestampTz failures_reported_at;
} CwEnforcerState;

/* the same policy failures are logged again after this long */
#define CW_FAILURES_REPEAT_MS	(10 * 60 * 1000)

static int	cw_enforce_interval_ms = 0;
static char *cw_worker_database = NULL;

static void cw_start_round(dsm_segment *segment, Oid database,
						   BackgroundWorkerHandle **round);
static Oid	cw_find_database(Oid known, bool *renamed_reported);
static void cw_pin_settings(void);
static void cw_enforce_round(CwEnforcerState *state);
static long cw_ms_until(TimestampTz due, TimestampTz now);

/* From _PG_init, while shared_preload_libraries is being processed */
void
cw_worker_preload(void)
{
	BackgroundWorker worker;

	DefineCustomIntVariable("connwatch.enforce_interval",
							"How often the pg_connwatch worker applies connwatch.policies itself.",
							"0 (the default) leaves enforcement to enforce() calls.",
							&cw_enforce_interval_ms,
							0,
							0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomStringVariable("connwatch.database",
							   "Database the pg_connwatch enforcer connects to: where the extension is installed.",
							   NULL,
							   &cw_worker_database,
							   "postgres",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = 5;
	strlcpy(worker.bgw_library_name, "pg_connwatch", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "cw_worker_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "pg_connwatch worker", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "pg_connwatch worker", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

static long
cw_ms_until(TimestampTz due, TimestampTz now)
{
	if (due <= now)
		return 0;
	return (long) Min((due - now + 999) / 1000, (int64) INT_MAX);
}

void
cw_worker_main(Datum main_arg)
{
	TimestampTz next_sample = 0;
	TimestampTz next_enforce = 0;
	dsm_segment *segment;
	BackgroundWorkerHandle *round = NULL;
	bool		missing_database_reported = false;
	bool		renamed_reported = false;
	Oid			database = InvalidOid;
	bool		no_slot_reported = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* no database: shared catalogs only, and nobody's DROP DATABASE waits */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("pg_connwatch worker");

	segment = dsm_create(sizeof(CwEnforcerState), 0);
	dsm_pin_mapping(segment);
	memset(dsm_segment_address(segment), 0, sizeof(CwEnforcerState));

	/* each sample allocates in its transaction's memory, freed at commit */
	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		long		timeout = 60 * 1000;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		if (cw_sample_interval_ms > 0 && now >= next_sample)
		{
			SetCurrentStatementStartTimestamp();
			StartTransactionCommand();
			cw_history_take_sample();
			CommitTransactionCommand();
			next_sample = TimestampTzPlusMilliseconds(now, cw_sample_interval_ms);
		}
		if (cw_enforce_interval_ms > 0 && now >= next_enforce)
		{
			pid_t		pid;

			next_enforce = TimestampTzPlusMilliseconds(now, cw_enforce_interval_ms);
			if (round != NULL &&
				GetBackgroundWorkerPid(round, &pid) != BGWH_STOPPED)
			{
				/* the previous round still runs: this one is skipped */
			}
			else
			{
				if (round != NULL)
					pfree(round);
				round = NULL;

				SetCurrentStatementStartTimestamp();
				StartTransactionCommand();
				database = cw_find_database(database, &renamed_reported);
				CommitTransactionCommand();

				if (!OidIsValid(database))
				{
					if (!missing_database_reported)
						ereport(LOG,
								(errmsg("pg_connwatch worker: database \"%s\" does not exist; nothing to enforce",
										cw_worker_database),
								 errhint("Set connwatch.database to the database where the extension is installed.")));
					missing_database_reported = true;
				}
				else
				{
					missing_database_reported = false;
					cw_start_round(segment, database, &round);
					if (round == NULL && !no_slot_reported)
						ereport(WARNING,
								(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
								 errmsg("pg_connwatch worker: could not start an enforcement round"),
								 errdetail("Every background worker slot is taken."),
								 errhint("Raise max_worker_processes.")));
					no_slot_reported = (round == NULL);
				}
			}
		}
		cw_persist_ledgers_if_due();

		now = GetCurrentTimestamp();
		if (cw_sample_interval_ms > 0)
			timeout = Min(timeout, cw_ms_until(next_sample, now));
		if (cw_enforce_interval_ms > 0)
			timeout = Min(timeout, cw_ms_until(next_enforce, now));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(timeout, 1), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * The database the rounds connect to: connwatch.database, or, once it has
 * been found, the same database under whatever name its owner gives it
 * (ALTER DATABASE ... RENAME must not stop the superuser's enforcer; said
 * once).  InvalidOid when neither exists.
 *
 * pg_database is a shared catalog, which a process connected to no
 * database may read, but without its indexes (opening one would look it
 * up in pg_class): heap scans, of a few rows.
 */
static Oid
cw_find_database(Oid known, bool *renamed_reported)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			found = InvalidOid;

	rel = table_open(DatabaseRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_database_datname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum(cw_worker_database));
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		found = ((Form_pg_database) GETSTRUCT(tuple))->oid;
		*renamed_reported = false;
	}
	systable_endscan(scan);

	if (!OidIsValid(found) && OidIsValid(known))
	{
		ScanKeyInit(&key, Anum_pg_database_oid, BTEqualStrategyNumber,
					F_OIDEQ, ObjectIdGetDatum(known));
		scan = systable_beginscan(rel, InvalidOid, false, NULL, 1, &key);
		tuple = systable_getnext(scan);
		if (HeapTupleIsValid(tuple))
		{
			found = known;
			if (!*renamed_reported)
				ereport(WARNING,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("pg_connwatch worker: database \"%s\" was renamed to \"%s\"; the enforcer keeps using it",
								cw_worker_database,
								NameStr(((Form_pg_database) GETSTRUCT(tuple))->datname)),
						 errhint("Set connwatch.database to its new name before the next restart.")));
			*renamed_reported = true;
		}
		systable_endscan(scan);
	}
	table_close(rel, AccessShareLock);
	return found;
}

/* Start one round; *round is NULL when no worker slot was free */
static void
cw_start_round(dsm_segment *segment, Oid database,
			   BackgroundWorkerHandle **round)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "pg_connwatch", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "cw_enforcer_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "pg_connwatch enforcer", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "pg_connwatch enforcer", BGW_MAXLEN);
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(segment));
	worker.bgw_notify_pid = MyProcPid;
	memcpy(worker.bgw_extra, &database, sizeof(Oid));

	if (!RegisterDynamicBackgroundWorker(&worker, round))
		*round = NULL;
}

/*
 * The settings a round needs, over whatever the database or the role set
 * (PGC_S_OVERRIDE wins over both).  A database owner may set any USERSET
 * parameter for the database with ALTER DATABASE ... SET; none of these
 * may change what the superuser's enforcer does or whether it runs.
 *
 * XXX: synchronous_commit is not pinned (the administrator's choice for the
 * cluster cannot be told from the owner's here): an owner who sets it to
 * off makes the rows of the last few hundred milliseconds before a crash
 * losable, not the LOG lines.
 */
static void
cw_pin_settings(void)
{
	static const struct
	{
		const char *name;
		const char *value;
	}			pinned[] = {
		{"default_transaction_read_only", "off"},
		{"default_transaction_isolation", "read committed"},
		{"default_transaction_deferrable", "off"},
		{"statement_timeout", "0"},
		{"lock_timeout", CW_ENFORCER_LOCK_TIMEOUT},
		{"idle_in_transaction_session_timeout", "0"},
		{"idle_session_timeout", "0"},
		{"transaction_timeout", "0"},
		{"exit_on_error", "off"},
		{"role", "none"},
		{"search_path", "pg_catalog, pg_temp"},
		/* the LOG lines of the trail read the same in every database */
		{"DateStyle", "ISO, MDY"},
		{"IntervalStyle", "postgres"},
	};
	int			i;

	for (i = 0; i < lengthof(pinned); i++)
	{
		/* some exist only on later majors */
		if (GetConfigOption(pinned[i].name, true, false) == NULL)
			continue;
		SetConfigOption(pinned[i].name, pinned[i].value, PGC_SUSET,
						PGC_S_OVERRIDE);
	}
}

/*
 * A round: connect to connwatch.database, apply every enabled policy once
 * through the engine, exit.
 */
void
cw_enforcer_main(Datum main_arg)
{
	dsm_segment *segment;
	CwEnforcerState *state;
	Oid			database;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	segment = dsm_attach(DatumGetUInt32(main_arg));
	if (segment == NULL)
		proc_exit(0);			/* the worker is gone: so is this round */
	state = dsm_segment_address(segment);

	/*
	 * By OID: the database its owner may have renamed.  ALLOW_CONNECTIONS
	 * false, which its owner may set, does not keep the enforcer out.
	 */
	memcpy(&database, MyBgworkerEntry->bgw_extra, sizeof(Oid));
	BackgroundWorkerInitializeConnectionByOid(database, InvalidOid,
											  BGWORKER_BYPASS_ALLOWCONN);
	pgstat_report_appname("pg_connwatch enforcer");
	cw_pin_settings();

	cw_enforce_round(state);

	dsm_detach(segment);
	proc_exit(0);
}

/*
 * One enforce() round: every enabled policy, through the engine, each
 * audit row committed at once.  Nothing to do (and said once while it
 * lasts) when the extension is not installed in connwatch.database.
 */
static void
cw_enforce_round(CwEnforcerState *state)
{
	MemoryContext round_context;

	round_context = AllocSetContextCreate(TopMemoryContext,
										  "pg_connwatch round",
										  ALLOCSET_DEFAULT_SIZES);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "pg_connwatch: enforcing connwatch.policies");

	if (!OidIsValid(get_extension_oid("pg_connwatch", true)))
	{
		if (!state->missing_extension_reported)
			ereport(LOG,
					(errmsg("pg_connwatch worker: the extension is not installed in database \"%s\"; nothing to enforce",
							get_database_name(MyDatabaseId)),
					 errhint("CREATE EXTENSION pg_connwatch in that database, or set connwatch.database.")));
		state->missing_extension_reported = true;
	}
	else
	{
		List	   *failures = NIL;
		List	   *policies;
		CwRunResult *result;
		uint32		hash;
		TimestampTz now = GetCurrentTimestamp();

		state->missing_extension_reported = false;
		/* outlives the transactions the run commits */
		MemoryContextSwitchTo(round_context);
		policies = cw_load_policies(false, &failures);
		result = cw_run_rules(policies,
							  CW_RUN_MAY_SIGNAL | CW_RUN_PRUNE_AUDIT |
							  CW_RUN_OWN_TRANSACTIONS);

		/*
		 * A broken policy is logged when it breaks, and again every 10
		 * minutes while it stays broken, not every round.
		 */
		failures = list_concat(failures, result->failures);
		hash = cw_report_failures(failures, DEBUG1);
		if (hash != 0 &&
			(hash != state->failures_hash ||
			 TimestampDifferenceExceeds(state->failures_reported_at, now,
										CW_FAILURES_REPEAT_MS)))
		{
			(void) cw_report_failures(failures, WARNING);
			state->failures_reported_at = now;
		}
		state->failures_hash = hash;
		/* the run left us in a transaction of its own */
		MemoryContextSwitchTo(CurTransactionContext);
	}

	if (ActiveSnapshotSet())
		PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextDelete(round_context);
}
