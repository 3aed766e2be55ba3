/*-------------------------------------------------------------------------
 *
 * policies.c
 *		The rows of connwatch.policies as rules for the engine.
 *
 * enforce() applies every enabled policy.  They are read from the
 * extension's own table, found through the extension's catalog entry
 * (extension_tables.c), with nothing resolved through the caller's
 * search_path, and every value is checked here again: the table's owner
 * can drop a CHECK constraint, and the engine must not trust what the
 * table no longer guarantees.  A row that fails those checks is skipped,
 * and returned as a failure that names it and carries the error's SQLSTATE,
 * for the caller to report; the other policies are still applied (an
 * enforcer must not stop for one bad row).
 *
 * Concurrency: reads the table under the caller's snapshot.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "act/extension_tables.h"
#include "act/policies.h"
#include "act/units.h"
#include "observe/durations.h"

/*
 * The columns of connwatch.policies enforce() reads, in the order it
 * selects them.  Their types are checked against the table, and a NULL in a
 * required one, or a value its CHECK constraint would have refused, is an
 * error naming the policy and the column: the table's owner can drop a
 * constraint, and enforce() must not trust what it no longer guarantees.
 */
typedef enum CwPolicyColumn
{
	CW_POLICY_NAME,
	CW_POLICY_STATE,
	CW_POLICY_OLDER_THAN,
	CW_POLICY_AGE_OF,
	CW_POLICY_DATNAME,
	CW_POLICY_USENAME,
	CW_POLICY_APPLICATION_NAME,
	CW_POLICY_ONLY_IF_HOLDS_XMIN,
	CW_POLICY_MIN_PCT_USED,
	CW_POLICY_ACTION,
	CW_POLICY_DRY_RUN,
	CW_POLICY_ENABLED,
	CW_POLICY_NCOLUMNS
} CwPolicyColumn;

static const struct
{
	const char *name;
	Oid			type;
	bool		required;
}			cw_policy_columns[CW_POLICY_NCOLUMNS] = {
	{"name", TEXTOID, true},
	{"state", TEXTOID, true},
	{"older_than", INTERVALOID, true},
	{"age_of", TEXTOID, true},
	{"datname", TEXTOID, false},
	{"usename", TEXTOID, false},
	{"application_name", TEXTOID, false},
	{"only_if_holds_xmin", BOOLOID, true},
	{"min_pct_used", NUMERICOID, false},
	{"action", TEXTOID, true},
	{"dry_run", BOOLOID, true},
	{"enabled", BOOLOID, true},
};

/* One column of a policy row; NULL only where the column allows it */
static Datum
cw_policy_value(HeapTuple tuple, TupleDesc desc, CwPolicyColumn column,
				const char *policy, bool *isnull)
{
	Datum		value = SPI_getbinval(tuple, desc, column + 1, isnull);

	if (*isnull && cw_policy_columns[column].required)
	{
		if (policy == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("a policy in connwatch.policies has no name")));
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("policy \"%s\" has a NULL %s", policy,
						cw_policy_columns[column].name),
				 errdetail("Column %s of connwatch.policies must not be NULL.",
						   cw_policy_columns[column].name)));
	}
	return value;
}

static void
cw_invalid_policy_value(const char *policy, CwPolicyColumn column,
						const char *value, const char *valid)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("policy \"%s\" has an invalid %s: %s", policy,
					cw_policy_columns[column].name, value),
			 errdetail("%s", valid)));
}

/* One row of connwatch.policies as a rule, in the caller's memory context */
static CwRule *
cw_policy_rule(HeapTuple tuple, TupleDesc desc, bool dry_run)
{
	CwRule	   *rule = palloc0(sizeof(CwRule));
	Datum		value;
	bool		isnull;
	char	   *label;

	value = cw_policy_value(tuple, desc, CW_POLICY_NAME, NULL, &isnull);
	rule->policy = TextDatumGetCString(value);

	label = TextDatumGetCString(cw_policy_value(tuple, desc, CW_POLICY_STATE,
											   rule->policy, &isnull));
	if (strcmp(label, "idle in transaction") == 0)
		rule->state = CW_MATCH_IDLE_IN_TRANSACTION;
	else if (strcmp(label, "idle") == 0)
		rule->state = CW_MATCH_IDLE;
	else if (strcmp(label, "active") == 0)
		rule->state = CW_MATCH_ACTIVE;
	else if (strcmp(label, "any") == 0)
		rule->state = CW_MATCH_ANY;
	else
		cw_invalid_policy_value(rule->policy, CW_POLICY_STATE,
								quote_literal_cstr(label),
								"Valid states are 'idle in transaction', 'idle', 'active' and 'any'.");

	value = cw_policy_value(tuple, desc, CW_POLICY_OLDER_THAN, rule->policy,
							&isnull);
	rule->older_than = cw_interval_usecs(DatumGetIntervalP(value));
	if (rule->older_than < 0)
		cw_invalid_policy_value(rule->policy, CW_POLICY_OLDER_THAN,
								DatumGetCString(DirectFunctionCall1(interval_out, value)),
								"older_than must not be negative.");

	label = TextDatumGetCString(cw_policy_value(tuple, desc, CW_POLICY_AGE_OF,
											   rule->policy, &isnull));
	if (strcmp(label, "transaction") == 0)
		rule->age_of_transaction = true;
	else if (strcmp(label, "state") != 0)
		cw_invalid_policy_value(rule->policy, CW_POLICY_AGE_OF,
								quote_literal_cstr(label),
								"age_of is 'state' or 'transaction'.");

	value = cw_policy_value(tuple, desc, CW_POLICY_DATNAME, rule->policy, &isnull);
	rule->datname_pattern = isnull ? NULL : DatumGetTextPCopy(value);
	value = cw_policy_value(tuple, desc, CW_POLICY_USENAME, rule->policy, &isnull);
	rule->usename_pattern = isnull ? NULL : DatumGetTextPCopy(value);
	value = cw_policy_value(tuple, desc, CW_POLICY_APPLICATION_NAME,
							rule->policy, &isnull);
	rule->application_pattern = isnull ? NULL : DatumGetTextPCopy(value);

	rule->only_if_holds_xmin =
		DatumGetBool(cw_policy_value(tuple, desc, CW_POLICY_ONLY_IF_HOLDS_XMIN,
									 rule->policy, &isnull));

	/* converted here, not cast in SQL: nothing to resolve through a path */
	value = cw_policy_value(tuple, desc, CW_POLICY_MIN_PCT_USED, rule->policy,
							&isnull);
	rule->has_min_pct_used = !isnull;
	if (!isnull)
	{
		rule->min_pct_used = DatumGetFloat8(DirectFunctionCall1(numeric_float8,
																value));
		if (isnan(rule->min_pct_used) ||
			rule->min_pct_used < 0 || rule->min_pct_used > 100)
			cw_invalid_policy_value(rule->policy, CW_POLICY_MIN_PCT_USED,
									DatumGetCString(DirectFunctionCall1(numeric_out, value)),
									"min_pct_used is a percentage from 0 to 100.");
	}

	label = TextDatumGetCString(cw_policy_value(tuple, desc, CW_POLICY_ACTION,
											   rule->policy, &isnull));
	if (strcmp(label, "terminate") == 0)
		rule->kind = CW_SIGNAL_TERMINATE;
	else if (strcmp(label, "cancel") == 0)
		rule->kind = CW_SIGNAL_CANCEL;
	else
		cw_invalid_policy_value(rule->policy, CW_POLICY_ACTION,
								quote_literal_cstr(label),
								"action is 'terminate' or 'cancel'.");
	if (rule->kind == CW_SIGNAL_CANCEL &&
		rule->state != CW_MATCH_ACTIVE && rule->state != CW_MATCH_ANY)
		cw_invalid_policy_value(rule->policy, CW_POLICY_ACTION,
								"'cancel'",
								"A cancel reaches only a running statement: a policy that cancels matches state 'active' or 'any'.");

	value = cw_policy_value(tuple, desc, CW_POLICY_DRY_RUN, rule->policy,
							&isnull);
	rule->dry_run = dry_run || DatumGetBool(value);

	/* selected only when not false: a NULL is an error, not "disabled" */
	(void) cw_policy_value(tuple, desc, CW_POLICY_ENABLED, rule->policy,
						   &isnull);
	return rule;
}

/*
 * One row as a rule, or NULL when it fails its checks: then a failure with
 * the error's SQLSTATE says which policy is skipped and why.  The checks
 * run in a subtransaction (units.c), as PL/pgSQL's exception blocks do.
 */
static CwRule *
cw_checked_policy_rule(HeapTuple tuple, TupleDesc desc, bool dry_run,
					   List **failures)
{
	CwUnit		unit;
	CwRule	   *volatile rule = NULL;

	cw_unit_begin(&unit, false);
	PG_TRY();
	{
		rule = cw_policy_rule(tuple, desc, dry_run);
		cw_unit_end(&unit);
	}
	PG_CATCH();
	{
		ErrorData  *edata = cw_unit_abort(&unit);

		/* a cancel is the caller's, not the policy's */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(edata);
		*failures = cw_add_failure(*failures, edata->sqlerrcode,
								   edata->message, edata->detail,
								   "The policy is skipped; the other policies are applied.");
		FreeErrorData(edata);
		rule = NULL;
	}
	PG_END_TRY();
	return rule;
}

/*
 * Read the enabled policies, in name order, from the extension's own table
 * (extension_tables.c), with nothing in the statement resolved through the
 * caller's search_path.
 */
List *
cw_load_policies(bool dry_run, List **failures)
{
	MemoryContext caller_context = CurrentMemoryContext;
	CwExtensionTable table;
	StringInfoData sql;
	List	   *policies = NIL;
	int			save_nestlevel;
	int			column;
	TupleDesc	desc;
	HeapTuple  *tuples;
	uint64		ntuples;
	uint64		i;

	cw_find_extension_table("policies", &table);

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (column = 0; column < CW_POLICY_NCOLUMNS; column++)
		appendStringInfo(&sql, "%s%s", column > 0 ? ", " : "",
						 quote_identifier(cw_policy_columns[column].name));
	appendStringInfo(&sql, " FROM %s WHERE enabled IS NOT FALSE"
					 " ORDER BY name COLLATE pg_catalog.\"C\"",
					 table.qualified_name);

	save_nestlevel = cw_spi_connect_pinned();
	if (SPI_execute(sql.data, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read connwatch.policies");

	for (column = 0; column < CW_POLICY_NCOLUMNS; column++)
	{
		Oid			type = SPI_gettypeid(SPI_tuptable->tupdesc, column + 1);

		if (type != cw_policy_columns[column].type)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column %s of connwatch.policies has type %s, not %s",
							cw_policy_columns[column].name,
							format_type_be(type),
							format_type_be(cw_policy_columns[column].type))));
	}

	/* the rows, out of SPI's memory, to be checked one by one */
	{
		MemoryContext spi_context = MemoryContextSwitchTo(caller_context);

		desc = CreateTupleDescCopy(SPI_tuptable->tupdesc);
		ntuples = SPI_processed;
		tuples = palloc(sizeof(HeapTuple) * Max(ntuples, 1));
		for (i = 0; i < ntuples; i++)
			tuples[i] = heap_copytuple(SPI_tuptable->vals[i]);
		MemoryContextSwitchTo(spi_context);
	}
	cw_spi_finish_pinned(save_nestlevel);

	for (i = 0; i < ntuples; i++)
	{
		CwRule	   *rule;

		CHECK_FOR_INTERRUPTS();
		rule = cw_checked_policy_rule(tuples[i], desc, dry_run, failures);
		if (rule != NULL)
			policies = lappend(policies, rule);
	}
	return policies;
}
