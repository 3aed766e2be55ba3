/*-------------------------------------------------------------------------
 *
 * worker.c
 *		pg_connwatch's background worker: samples the history, and, with
 *		connwatch.enforce_interval set, applies connwatch.policies itself.
 *
 * Registered at server start when pg_connwatch is preloaded.  It runs on a
 * primary and on a hot standby (from consistency on), connected to
 * connwatch.database, the database where the extension is installed.  A
 * background worker has a slot of its own (max_worker_processes), so it
 * keeps working when every client slot is taken -- the moment the enforcer
 * is needed most, and when pg_cron, which needs a free connection, cannot
 * run.
 *
 * The enforcer is connwatch.enforce() without a client: the same policies,
 * the same engine (act/engine.c), re-check, protections and kill budget,
 * the same LOG line and audit row, whose invoked_by is the worker's role
 * (the bootstrap superuser).  On a hot standby the audit table cannot be
 * written and the LOG line is the whole trail, as for enforce() there.
 *
 * Robustness: SIGTERM is core's die(); an ERROR ends the worker with exit
 * code 1, and the postmaster starts it again after bgw_restart_time (5 s),
 * without touching any other process.  Each round runs in its own
 * transaction, and allocates in its memory.  So does a persistent error:
 * an invalid policy, or a connwatch.database that does not exist, makes
 * the worker exit and start again every 5 s, logging the error each time.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/xact.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "act/engine.h"
#include "act/policies.h"
#include "remember/history.h"
#include "remember/persistence.h"
#include "worker/worker.h"

static int	cw_enforce_interval_ms = 0;
static char *cw_worker_database = NULL;
static bool cw_missing_extension_reported = false;

static void cw_enforce_round(void);
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
							   "Database the pg_connwatch worker connects to: where the extension is installed.",
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

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(cw_worker_database, NULL, 0);
	pgstat_report_appname("pg_connwatch worker");

	/* each round allocates in its transaction's memory, freed at commit */
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
			cw_enforce_round();
			next_enforce = TimestampTzPlusMilliseconds(now, cw_enforce_interval_ms);
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
 * One enforce() round: every enabled policy, through the engine, in its
 * own transaction.  Nothing to do (and said once) when the extension is
 * not installed in connwatch.database.
 */
static void
cw_enforce_round(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "pg_connwatch: enforcing connwatch.policies");

	if (!OidIsValid(get_extension_oid("pg_connwatch", true)))
	{
		if (!cw_missing_extension_reported)
			ereport(LOG,
					(errmsg("pg_connwatch worker: the extension is not installed in database \"%s\"; nothing to enforce",
							cw_worker_database),
					 errhint("CREATE EXTENSION pg_connwatch in that database, or set connwatch.database.")));
		cw_missing_extension_reported = true;
	}
	else
	{
		cw_missing_extension_reported = false;
		(void) cw_run_rules(cw_load_policies(false),
							CW_RUN_MAY_SIGNAL | CW_RUN_PRUNE_AUDIT);
	}

	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}
