/*-------------------------------------------------------------------------
 *
 * audit.c
 *		The audit trail of every real cancel and termination.
 *
 * Each action writes a LOG line and a row of connwatch.terminations with
 * the same facts, so that "server closed the connection unexpectedly" on
 * the client side can be matched with who ended the session and why.
 *
 * The table is not writable by the roles that act (nobody but its owner
 * may write it, so nobody can forge or erase entries): rows are inserted
 * and pruned as the table's owner, inside a security-restricted operation,
 * with statements that name every object schema-qualified, against the
 * table extension_tables.c vouches for.  On a hot standby nothing can be
 * written, and the LOG line is the whole trail.
 *
 * A run opens the trail (cw_audit_open) before its first signal, so that
 * whatever would keep the row from being written -- a read-only
 * transaction, a table that is not the extension's, a lock on the table --
 * stops the run before anything is killed, not after.  Opening it takes
 * the table's RowExclusiveLock, interruptibly, so that an INSERT made
 * later with interrupts held off (engine.c) never waits for that lock; a
 * worker that commits between rows takes it again after each commit
 * (cw_audit_lock).
 *
 * Text a client or a caller chose (the query, the reason, names) is written
 * as connwatch.printable() renders it, in the row and in the LOG line (there
 * with every non-ASCII character escaped: a log has no client encoding), so
 * that it cannot forge a line of the trail.
 *
 * Concurrency: inserts and deletes of ordinary rows under the table's
 * RowExclusiveLock; the prepared plans are per backend.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "storage/lmgr.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "act/audit.h"
#include "act/extension_tables.h"
#include "compat.h"
#include "datums.h"
#include "observe/durations.h"
#include "pg_connwatch.h"
#include "printable.h"

/* how much of the victim's last statement the audit keeps */
#define CW_AUDIT_QUERY_BYTES	512

#define CW_AUDIT_INSERT \
	"INSERT INTO %s " \
	"(logged_at, policy, pid, backend_start, datname, usename, " \
	" application_name, client_addr, state, state_age, xact_age, query, " \
	" action, reason, invoked_by) " \
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"

#define CW_AUDIT_PRUNE \
	"DELETE FROM %s WHERE logged_at OPERATOR(pg_catalog.<) $1"

/*
 * A statement on the audit table, planned once per backend; planned again
 * if the table is not the one it was planned for (the extension was
 * dropped and created again).
 */
typedef struct CwAuditStatement
{
	const char *sql_format;		/* %s: the table's qualified name */
	SPIPlanPtr	plan;
	Oid			relid;
} CwAuditStatement;

static CwAuditStatement cw_audit_insert = {CW_AUDIT_INSERT, NULL, InvalidOid};
static CwAuditStatement cw_audit_prune = {CW_AUDIT_PRUNE, NULL, InvalidOid};

static void cw_run_as_owner(const CwAuditTrail *audit,
							CwAuditStatement *statement, int nargs,
							Oid *argtypes, Datum *values, const char *nulls);

/*
 * Before a run's first signal: make sure each action can be recorded.  On a
 * primary, a read-only transaction could not write the row, so refuse to
 * act at all rather than kill without a record.
 */
void
cw_audit_open(CwAuditTrail *audit)
{
	audit->writable = !RecoveryInProgress();
	if (!audit->writable)
		return;

	if (XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot cancel or terminate sessions in a read-only transaction"),
				 errdetail("Every cancel and termination is recorded in connwatch.terminations, which a read-only transaction cannot write."),
				 errhint("Call the function outside the read-only transaction, or as a dry run.")));
	cw_find_extension_table("terminations", &audit->table);
	cw_audit_lock(audit);
}

/*
 * Take the lock an INSERT of an audit row needs, for the rest of the
 * transaction, while interrupts still work: a wait here can be cancelled
 * or time out, before anything is signalled.
 */
void
cw_audit_lock(const CwAuditTrail *audit)
{
	if (audit->writable)
		LockRelationOid(audit->table.relid, RowExclusiveLock);
}

/*
 * Run one statement as the audit table's owner, with search_path pinned.
 */
static void
cw_run_as_owner(const CwAuditTrail *audit, CwAuditStatement *statement,
				int nargs, Oid *argtypes, Datum *values, const char *nulls)
{
	int			rc;
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(audit->table.owner, save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = cw_spi_connect_pinned();

	if (statement->plan != NULL && statement->relid != audit->table.relid)
	{
		SPI_freeplan(statement->plan);
		statement->plan = NULL;
	}
	if (statement->plan == NULL)
	{
		char	   *sql = psprintf(statement->sql_format,
								   audit->table.qualified_name);
		SPIPlanPtr	prepared = SPI_prepare(sql, nargs, argtypes);

		if (prepared == NULL || SPI_keepplan(prepared) != 0)
			elog(ERROR, "could not prepare pg_connwatch audit statement: %s",
				 SPI_result_code_string(SPI_result));
		statement->plan = prepared;
		statement->relid = audit->table.relid;
	}
	rc = SPI_execute_plan(statement->plan, values, nulls, false, 0);
	if (rc < 0)
		elog(ERROR, "pg_connwatch could not write its audit trail: %s",
			 SPI_result_code_string(rc));

	cw_spi_finish_pinned(save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

/*
 * The LOG line of a real action, written right at the signal so that no
 * error later in the run can lose it.  be is the session as the re-check
 * read it; ages are measured at the signal.
 */
void
cw_log_action(const char *policy, const CwBackend *be, CwSignalKind kind,
			  const char *reason, TimestampTz signalled_at)
{
	const char *state = cw_state_name(be->state);
	char	   *datname = OidIsValid(be->datid) ? get_database_name(be->datid) : NULL;
	char	   *usename = OidIsValid(be->userid) ? GetUserNameFromId(be->userid, true) : NULL;
	bool		isnull;
	Datum		client_addr = cw_client_host_datum(&be->client_addr, &isnull);

	ereport(LOG,
			(errmsg("pg_connwatch %s backend %d: policy=%s reason=\"%s\" backend_start=%s database=%s user=%s application_name=\"%s\" client=%s state=\"%s\" state_age=%s xact_age=%s invoked_by=%s",
					kind == CW_SIGNAL_TERMINATE ? "terminated" : "cancelled",
					be->pid,
					policy ? cw_printable(policy, false) : "(none)",
					reason ? cw_printable(reason, false) : "",
					timestamptz_to_str(be->backend_start),
					datname ? cw_printable(datname, false) : "",
					usename ? cw_printable(usename, false) : "",
					cw_printable(be->application_name, false),
					isnull ? "local" :
					DatumGetCString(DirectFunctionCall1(inet_out, client_addr)),
					state ? state : "",
					be->state_change == 0 ? "" :
					cw_format_duration(cw_age_usecs(signalled_at, be->state_change)),
					be->xact_start == 0 ? "" :
					cw_format_duration(cw_age_usecs(signalled_at, be->xact_start)),
					GetUserNameFromId(GetUserId(), false)),
			 errhidestmt(true)));
}

/*
 * The row of connwatch.terminations of a real action, when the trail is
 * writable (on a standby the LOG line is the whole trail).
 */
void
cw_record_action(const CwAuditTrail *audit, const char *policy,
				 const CwBackend *be, CwSignalKind kind, const char *reason,
				 TimestampTz now)
{
	const char *action = (kind == CW_SIGNAL_TERMINATE) ? "terminated" : "cancelled";
	const char *state = cw_state_name(be->state);
	char	   *invoked_by;
	char	   *datname;
	char	   *usename;
	char	   *query = NULL;
	bool		isnull;
	Datum		client_addr;
	Datum		state_age;
	Datum		xact_age;
	bool		state_age_null;
	bool		xact_age_null;

	if (!audit->writable)
		return;

	invoked_by = GetUserNameFromId(GetUserId(), false);
	datname = OidIsValid(be->datid) ? get_database_name(be->datid) : NULL;
	usename = OidIsValid(be->userid) ? GetUserNameFromId(be->userid, true) : NULL;
	client_addr = cw_client_host_datum(&be->client_addr, &isnull);
	/*
	 * any client's text, with every non-ASCII character escaped too: the
	 * row must read the same whoever wrote it and in every client encoding
	 */
	if (be->have_query)
		query = cw_printable(pnstrdup(be->query,
									  pg_mbcliplen(be->query, strlen(be->query),
												   CW_AUDIT_QUERY_BYTES)),
							 false);
	state_age = cw_age_datum(now, be->state_change, &state_age_null);
	xact_age = cw_age_datum(now, be->xact_start, &xact_age_null);

	{
		Oid			argtypes[15] = {TIMESTAMPTZOID, TEXTOID, INT4OID,
			TIMESTAMPTZOID, NAMEOID, NAMEOID, TEXTOID, INETOID, TEXTOID,
		INTERVALOID, INTERVALOID, TEXTOID, TEXTOID, TEXTOID, NAMEOID};
		Datum		values[15];
		char		nulls[15];
		NameData	datname_data;
		NameData	usename_data;
		NameData	invoked_by_data;

		memset(nulls, ' ', sizeof(nulls));
		values[0] = TimestampTzGetDatum(now);
		values[1] = policy ? CStringGetTextDatum(policy) : (Datum) 0;
		nulls[1] = policy ? ' ' : 'n';
		values[2] = Int32GetDatum(be->pid);
		values[3] = TimestampTzGetDatum(be->backend_start);
		namestrcpy(&datname_data, datname ? datname : "");
		values[4] = NameGetDatum(&datname_data);
		nulls[4] = datname ? ' ' : 'n';
		namestrcpy(&usename_data, usename ? usename : "");
		values[5] = NameGetDatum(&usename_data);
		nulls[5] = usename ? ' ' : 'n';
		values[6] = CStringGetTextDatum(be->application_name);
		values[7] = client_addr;
		nulls[7] = isnull ? 'n' : ' ';
		values[8] = state ? CStringGetTextDatum(state) : (Datum) 0;
		nulls[8] = state ? ' ' : 'n';
		values[9] = state_age;
		nulls[9] = state_age_null ? 'n' : ' ';
		values[10] = xact_age;
		nulls[10] = xact_age_null ? 'n' : ' ';
		values[11] = query ? CStringGetTextDatum(query) : (Datum) 0;
		nulls[11] = query ? ' ' : 'n';
		values[12] = CStringGetTextDatum(action);
		values[13] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
		nulls[13] = reason ? ' ' : 'n';
		namestrcpy(&invoked_by_data, invoked_by);
		values[14] = NameGetDatum(&invoked_by_data);

		cw_run_as_owner(audit, &cw_audit_insert, 15, argtypes, values, nulls);
	}
}

/* Drop audit rows older than connwatch.audit_retention (0: keep all) */
void
cw_prune_audit(const CwAuditTrail *audit)
{
	Oid			argtypes[1] = {TIMESTAMPTZOID};
	Datum		values[1];

	if (cw_audit_retention_min == 0 || !audit->writable)
		return;

	values[0] = TimestampTzGetDatum(GetCurrentTimestamp() -
									(int64) cw_audit_retention_min * USECS_PER_MINUTE);
	cw_run_as_owner(audit, &cw_audit_prune, 1, argtypes, values, NULL);
}
