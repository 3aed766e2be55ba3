/*-------------------------------------------------------------------------
 *
 * action_functions.c
 *		SQL-callable functions of the act layer: terminate_backend(),
 *		cancel_backend(), the rule functions and enforce().
 *
 * Each checks its arguments, hands a rule (or the policies) to the engine
 * (act/engine.c) and turns the outcomes into rows of connwatch.action.
 * When the caller's filters matched sessions it may not see, and that the
 * engine therefore could not judge, a NOTICE says how many and what would
 * let the caller see them: an empty result must not pass for "nothing
 * stale here".
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "act/engine.h"
#include "act/policies.h"
#include "datums.h"
#include "sql/srf.h"

#define CW_ACTION_COLS	13

PG_FUNCTION_INFO_V1(cw_terminate_backend);
PG_FUNCTION_INFO_V1(cw_cancel_backend);
PG_FUNCTION_INFO_V1(cw_terminate_idle_in_transaction);
PG_FUNCTION_INFO_V1(cw_terminate_idle);
PG_FUNCTION_INFO_V1(cw_terminate_long_transactions);
PG_FUNCTION_INFO_V1(cw_enforce);

static Datum cw_signal_one(FunctionCallInfo fcinfo, CwSignalKind kind);
static Datum cw_apply_rule_function(FunctionCallInfo fcinfo, CwRule *rule);
static void cw_put_actions(ReturnSetInfo *rsinfo, const CwRunResult *result);
static void cw_report_hidden(const CwRunResult *result);

/*
 * connwatch.terminate_backend(pid, backend_start, reason) and
 * connwatch.cancel_backend(...): act on exactly one session.  Returns
 * whether the signal was sent; when it was not, a WARNING says why, as
 * pg_terminate_backend() does for a pid that is not a backend.
 */
static Datum
cw_signal_one(FunctionCallInfo fcinfo, CwSignalKind kind)
{
	CwObservation observed = {0};
	CwLiveSession live;
	CwOutcome	outcome;
	char	   *reason;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("pid and backend_start must not be NULL"),
				 errhint("Read both from connwatch.sessions: together they identify one session.")));

	observed.pid = PG_GETARG_INT32(0);
	observed.backend_start = PG_GETARG_TIMESTAMPTZ(1);
	observed.slot_hint = -1;
	reason = PG_ARGISNULL(2) ? "requested" : text_to_cstring(PG_GETARG_TEXT_PP(2));

	outcome = cw_signal_and_record(&observed, kind, reason, &live);
	if (outcome == CW_OUTCOME_SIGNALLED)
		PG_RETURN_BOOL(true);

	/* the reason first, so that it reads the same whatever the pid */
	if (outcome == CW_OUTCOME_GONE || outcome == CW_OUTCOME_REPLACED)
		ereport(WARNING,
				(errmsg("session not signalled: %s", cw_outcome_reason(outcome)),
				 errdetail("PID %d is not the PostgreSQL session that started at %s.",
						   observed.pid, timestamptz_to_str(observed.backend_start))));
	else
		ereport(WARNING,
				(errmsg("session not signalled: %s", cw_outcome_reason(outcome)),
				 errdetail("PID %d.", observed.pid)));
	PG_RETURN_BOOL(false);
}

Datum
cw_terminate_backend(PG_FUNCTION_ARGS)
{
	return cw_signal_one(fcinfo, CW_SIGNAL_TERMINATE);
}

Datum
cw_cancel_backend(PG_FUNCTION_ARGS)
{
	return cw_signal_one(fcinfo, CW_SIGNAL_CANCEL);
}

/*
 * terminate_idle_in_transaction(older_than, dry_run, datname, usename,
 * application_name) and terminate_idle(...) share their signature;
 * terminate_long_transactions() adds cancel_first.
 */
static Datum
cw_apply_rule_function(FunctionCallInfo fcinfo, CwRule *rule)
{
	ReturnSetInfo *rsinfo;
	CwRunResult *result;

	rule->older_than = cw_older_than_arg(fcinfo, 0);
	rule->dry_run = cw_bool_arg(fcinfo, 1, "dry_run");
	rule->datname_pattern = cw_pattern_arg(fcinfo, 2);
	rule->usename_pattern = cw_pattern_arg(fcinfo, 3);
	rule->application_pattern = cw_pattern_arg(fcinfo, 4);

	rsinfo = cw_begin_srf(fcinfo, CW_ACTION_COLS);
	result = cw_run_rules(list_make1(rule),
						  rule->dry_run ? 0 : CW_RUN_MAY_SIGNAL);
	(void) cw_report_failures(result->failures, WARNING);
	cw_put_actions(rsinfo, result);
	cw_report_hidden(result);
	return (Datum) 0;
}

Datum
cw_terminate_idle_in_transaction(PG_FUNCTION_ARGS)
{
	CwRule		rule = {0};

	rule.state = CW_MATCH_IDLE_IN_TRANSACTION;
	rule.kind = CW_SIGNAL_TERMINATE;
	return cw_apply_rule_function(fcinfo, &rule);
}

Datum
cw_terminate_idle(PG_FUNCTION_ARGS)
{
	CwRule		rule = {0};

	rule.state = CW_MATCH_IDLE;
	rule.kind = CW_SIGNAL_TERMINATE;
	return cw_apply_rule_function(fcinfo, &rule);
}

Datum
cw_terminate_long_transactions(PG_FUNCTION_ARGS)
{
	CwRule		rule = {0};

	rule.state = CW_MATCH_ANY;
	rule.age_of_transaction = true;
	rule.kind = CW_SIGNAL_TERMINATE;
	rule.cancel_first = cw_bool_arg(fcinfo, 5, "cancel_first");
	return cw_apply_rule_function(fcinfo, &rule);
}

/*
 * connwatch.enforce(dry_run): every enabled policy, in name order, over one
 * reading of backend state.
 */
Datum
cw_enforce(PG_FUNCTION_ARGS)
{
	bool		dry_run = cw_bool_arg(fcinfo, 0, "dry_run");
	List	   *failures = NIL;
	List	   *policies = cw_load_policies(dry_run, &failures);
	ReturnSetInfo *rsinfo = cw_begin_srf(fcinfo, CW_ACTION_COLS);
	CwRunResult *result;

	result = cw_run_rules(policies, dry_run ? 0 :
						  CW_RUN_MAY_SIGNAL | CW_RUN_PRUNE_AUDIT);
	/* each policy skipped is a WARNING, with its SQLSTATE */
	(void) cw_report_failures(list_concat(failures, result->failures),
							  WARNING);
	cw_put_actions(rsinfo, result);
	cw_report_hidden(result);
	return (Datum) 0;
}

/* One row of connwatch.action per outcome */
static void
cw_put_actions(ReturnSetInfo *rsinfo, const CwRunResult *result)
{
	CwNames		names = {0};
	ListCell   *lc;

	foreach(lc, result->actions)
	{
		const CwAction *action = lfirst(lc);
		const CwBackend *be = &action->backend;
		Datum		values[CW_ACTION_COLS] = {0};
		bool		nulls[CW_ACTION_COLS] = {0};

		cw_identity_datums(&names, be, values, nulls);
		if (be->visible)
		{
			values[7] = cw_age_datum(result->now, be->state_change, &nulls[7]);
			values[8] = cw_age_datum(result->now, be->xact_start, &nulls[8]);
		}
		else
			nulls[7] = nulls[8] = true;
		values[9] = cw_xid_age_datum(result->age_base,
									 cw_backend_horizon_xid(be), &nulls[9]);
		values[10] = CStringGetTextDatum(action->action);
		values[11] = action->reason ? CStringGetTextDatum(action->reason) : (Datum) 0;
		nulls[11] = (action->reason == NULL);
		values[12] = action->policy ? CStringGetTextDatum(action->policy) : (Datum) 0;
		nulls[12] = (action->policy == NULL);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/*
 * Say how many sessions the run could not judge, and why: typically a
 * cleanup role that has pg_signal_backend but not pg_read_all_stats.
 */
static void
cw_report_hidden(const CwRunResult *result)
{
	if (result->hidden == 0)
		return;
	ereport(NOTICE,
			(errmsg_plural("%d session was not considered: its state is hidden from role \"%s\"",
						   "%d sessions were not considered: their state is hidden from role \"%s\"",
						   result->hidden, result->hidden,
						   GetUserNameFromId(GetUserId(), false)),
			 errdetail("Only sessions whose state pg_stat_activity shows the caller are matched."),
			 errhint("Grant pg_read_all_stats (or pg_monitor) to the role that runs the cleanup, or run it as the sessions' role.")));
}
