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
 * with statements that name every object schema-qualified.  On a hot
 * standby nothing can be written, and the LOG line is the whole trail.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "pg_connwatch.h"
#include "termination.h"

/* how much of the victim's last statement the audit keeps */
#define CW_AUDIT_QUERY_BYTES	512

#define CW_AUDIT_INSERT \
	"INSERT INTO connwatch.terminations " \
	"(logged_at, policy, pid, backend_start, datname, usename, " \
	" application_name, client_addr, state, state_age, xact_age, query, " \
	" action, reason, invoked_by) " \
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"

#define CW_AUDIT_PRUNE \
	"DELETE FROM connwatch.terminations " \
	"WHERE logged_at OPERATOR(pg_catalog.<) $1"

/* both statements are planned once per backend */
static SPIPlanPtr cw_audit_insert_plan = NULL;
static SPIPlanPtr cw_audit_prune_plan = NULL;

static Oid	cw_audit_table_owner(void);
static void cw_run_as_owner(SPIPlanPtr *plan, const char *sql, int nargs,
							Oid *argtypes, Datum *values, const char *nulls);

static Oid
cw_audit_table_owner(void)
{
	Oid			nspid = get_namespace_oid("connwatch", false);
	Oid			relid = get_relname_relid("terminations", nspid);
	HeapTuple	tuple;
	Oid			owner;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table connwatch.terminations does not exist")));
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

/*
 * Run one statement as the audit table's owner.  It is prepared on first
 * use and *plan keeps it for the life of the backend.
 */
static void
cw_run_as_owner(SPIPlanPtr *plan, const char *sql, int nargs, Oid *argtypes,
				Datum *values, const char *nulls)
{
	Oid			owner = cw_audit_table_owner();
	int			rc;
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (*plan == NULL)
	{
		SPIPlanPtr	prepared = SPI_prepare(sql, nargs, argtypes);

		if (prepared == NULL || SPI_keepplan(prepared) != 0)
			elog(ERROR, "could not prepare pg_connwatch audit statement: %s",
				 SPI_result_code_string(SPI_result));
		*plan = prepared;
	}
	rc = SPI_execute_plan(*plan, values, nulls, false, 0);
	if (rc < 0)
		elog(ERROR, "pg_connwatch could not write its audit trail: %s",
			 SPI_result_code_string(rc));
	SPI_finish();

	AtEOXact_GUC(true, save_nestlevel);
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
					policy ? policy : "(none)",
					reason ? reason : "",
					timestamptz_to_str(be->backend_start),
					datname ? datname : "",
					usename ? usename : "",
					be->application_name,
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
 * The row of connwatch.terminations of a real action, when the server is
 * not in recovery (on a standby the LOG line is the whole trail).
 */
void
cw_record_action(const char *policy, const CwBackend *be, CwSignalKind kind,
				 const char *reason, TimestampTz now)
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

	if (RecoveryInProgress())
		return;

	invoked_by = GetUserNameFromId(GetUserId(), false);
	datname = OidIsValid(be->datid) ? get_database_name(be->datid) : NULL;
	usename = OidIsValid(be->userid) ? GetUserNameFromId(be->userid, true) : NULL;
	client_addr = cw_client_host_datum(&be->client_addr, &isnull);
	if (be->query != NULL)
		query = pnstrdup(be->query,
						 pg_mbcliplen(be->query, strlen(be->query),
									  CW_AUDIT_QUERY_BYTES));
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

		cw_run_as_owner(&cw_audit_insert_plan, CW_AUDIT_INSERT, 15, argtypes,
						values, nulls);
	}
}

/* Drop audit rows older than connwatch.audit_retention (0: keep all) */
void
cw_prune_audit(void)
{
	Oid			argtypes[1] = {TIMESTAMPTZOID};
	Datum		values[1];

	if (cw_audit_retention_min == 0 || RecoveryInProgress())
		return;

	values[0] = TimestampTzGetDatum(GetCurrentTimestamp() -
									(int64) cw_audit_retention_min * USECS_PER_MINUTE);
	cw_run_as_owner(&cw_audit_prune_plan, CW_AUDIT_PRUNE, 1, argtypes, values,
					NULL);
}
