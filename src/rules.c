/*-------------------------------------------------------------------------
 *
 * rules.c
 *		Rules that pick stale sessions, and policies that apply them.
 *
 * A rule says which client sessions to act on (state, how long, which
 * database, role and application) and how (cancel or terminate).  The
 * rule functions -- terminate_idle_in_transaction(), terminate_idle(),
 * terminate_long_transactions() -- each apply one rule; enforce() applies
 * every enabled row of connwatch.policies in one pass over one reading of
 * backend state.  Either way every signal goes through cw_signal_session(),
 * which re-checks the live session right before it, and every call stops
 * at connwatch.max_terminations_per_run signals.
 *
 * Only sessions the caller may see (pg_stat_activity's rule) can match:
 * a rule cannot judge a session whose state it is not allowed to read.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "audit.h"
#include "backend_state.h"
#include "compat.h"
#include "connection_limits.h"
#include "extension_tables.h"
#include "pg_connwatch.h"
#include "termination.h"
#include "xmin_horizon.h"

#define CW_ACTION_COLS	13

typedef enum CwStateFilter
{
	CW_MATCH_IDLE_IN_TRANSACTION,	/* including aborted */
	CW_MATCH_IDLE,
	CW_MATCH_ACTIVE,
	CW_MATCH_ANY
} CwStateFilter;

typedef struct CwRule
{
	char	   *policy;			/* NULL for the rule functions */
	CwStateFilter state;
	int64		older_than;		/* microseconds */
	bool		age_of_transaction; /* else age of the state */
	text	   *datname_pattern;	/* NULL: all */
	text	   *usename_pattern;
	text	   *application_pattern;
	bool		only_if_holds_xmin;
	bool		has_min_pct_used;
	double		min_pct_used;
	CwSignalKind kind;
	bool		cancel_first;	/* cancel active statements, then terminate */
	bool		dry_run;
} CwRule;

/* One call of an action function */
typedef struct CwRun
{
	ReturnSetInfo *rsinfo;
	CwAuditTrail audit;			/* opened when the run may signal */
	CwBackendSet *set;
	bool	   *handled;		/* per backend: already reported this run */
	TransactionId oldest_holder;
	bool		oldest_holder_known;
	int			signals;		/* sent, or that a dry run would send */
	List	   *cancelled;		/* CwObservation of cancels to follow up */
	List	   *cancelled_rules;	/* the CwRule of each */
	List	   *unaudited;		/* CwSignalled not yet in the audit trail */
} CwRun;

/* A signal sent, waiting to be written to the audit trail */
typedef struct CwSignalled
{
	const char *policy;
	CwBackend	backend;		/* as the re-check read it */
	CwSignalKind kind;
	const char *reason;
	TimestampTz signalled_at;
} CwSignalled;

PG_FUNCTION_INFO_V1(cw_terminate_backend);
PG_FUNCTION_INFO_V1(cw_cancel_backend);
PG_FUNCTION_INFO_V1(cw_terminate_idle_in_transaction);
PG_FUNCTION_INFO_V1(cw_terminate_idle);
PG_FUNCTION_INFO_V1(cw_terminate_long_transactions);
PG_FUNCTION_INFO_V1(cw_enforce);

static Datum cw_signal_one(FunctionCallInfo fcinfo, CwSignalKind kind);
static int64 cw_older_than_arg(FunctionCallInfo fcinfo, int argno);
static bool cw_bool_arg(FunctionCallInfo fcinfo, int argno, const char *name);
static text *cw_pattern_arg(FunctionCallInfo fcinfo, int argno);
static Datum cw_apply_rule_function(FunctionCallInfo fcinfo, CwRule *rule);
static void cw_begin_run(CwRun *run, FunctionCallInfo fcinfo, bool acts);
static void cw_read_run_backends(CwRun *run, int read_flags);
static void cw_apply_rule(CwRun *run, CwRule *rule);
static bool cw_rule_matches(CwRun *run, const CwRule *rule, const CwBackend *be);
static bool cw_like(Datum name, bool name_null, text *pattern);
static CwOutcome cw_act(CwRun *run, const CwRule *rule, const CwBackend *seen,
						CwObservation *observed, CwSignalKind kind,
						const char *why, bool retry_on_state_change);
static void cw_follow_up_cancels(CwRun *run);
static void cw_write_audit(CwRun *run);
static void cw_put_action(CwRun *run, const CwRule *rule,
						  const CwBackend *be, const char *action,
						  const char *reason);
static List *cw_load_policies(bool dry_run);

/*
 * older_than: NULL and negative intervals are errors, not "match nothing".
 * Months count as 30 days, as interval comparison does.
 */
static int64
cw_older_than_arg(FunctionCallInfo fcinfo, int argno)
{
	int64		usecs;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("older_than must not be NULL")));

	/* judged as a whole, like the policies' CHECK: '1 day -1 s' is fine */
	usecs = cw_interval_usecs(PG_GETARG_INTERVAL_P(argno));
	if (usecs < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("older_than must not be negative"),
				 errdetail("older_than was %s.",
						   DatumGetCString(DirectFunctionCall1(interval_out,
															   PG_GETARG_DATUM(argno))))));
	return usecs;
}

static bool
cw_bool_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
	return PG_GETARG_BOOL(argno);
}

static text *
cw_pattern_arg(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) ? NULL : PG_GETARG_TEXT_PP(argno);
}

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
	CwAuditTrail audit;
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

	cw_audit_open(&audit);
	outcome = cw_signal_session(&observed, kind, false, &live);
	if (outcome == CW_OUTCOME_SIGNALLED)
	{
		TimestampTz signalled_at = GetCurrentTimestamp();

		cw_log_action(NULL, &live.backend, kind, reason, signalled_at);
		cw_record_action(&audit, NULL, &live.backend, kind, reason,
						 signalled_at);
		PG_RETURN_BOOL(true);
	}

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
	CwRun		run;

	rule->older_than = cw_older_than_arg(fcinfo, 0);
	rule->dry_run = cw_bool_arg(fcinfo, 1, "dry_run");
	rule->datname_pattern = cw_pattern_arg(fcinfo, 2);
	rule->usename_pattern = cw_pattern_arg(fcinfo, 3);
	rule->application_pattern = cw_pattern_arg(fcinfo, 4);

	cw_begin_run(&run, fcinfo, !rule->dry_run);
	cw_read_run_backends(&run, rule->only_if_holds_xmin ? CW_READ_PROC : 0);
	cw_apply_rule(&run, rule);
	cw_write_audit(&run);
	cw_follow_up_cancels(&run);
	cw_write_audit(&run);
	cw_release_backends(run.set);
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
 * reading of backend state.  A session is acted on (or reported) by the
 * first policy that matches it, and only once.
 */
Datum
cw_enforce(PG_FUNCTION_ARGS)
{
	bool		dry_run = cw_bool_arg(fcinfo, 0, "dry_run");
	List	   *policies;
	ListCell   *lc;
	CwRun		run;
	int			read_flags = 0;

	policies = cw_load_policies(dry_run);
	foreach(lc, policies)
		if (((CwRule *) lfirst(lc))->only_if_holds_xmin)
			read_flags |= CW_READ_PROC;

	cw_begin_run(&run, fcinfo, !dry_run);
	if (!dry_run)
		cw_prune_audit(&run.audit);
	cw_read_run_backends(&run, read_flags);
	foreach(lc, policies)
		cw_apply_rule(&run, (CwRule *) lfirst(lc));
	cw_write_audit(&run);
	cw_follow_up_cancels(&run);
	cw_write_audit(&run);
	cw_release_backends(run.set);
	return (Datum) 0;
}

/*
 * Set up the result set, and when the run may signal (acts), the audit
 * trail: whatever would keep an action from being recorded stops the run
 * here, before any signal.
 */
static void
cw_begin_run(CwRun *run, FunctionCallInfo fcinfo, bool acts)
{
	memset(run, 0, sizeof(CwRun));
	run->rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	cw_init_materialized_srf(fcinfo);
	if (run->rsinfo->setDesc->natts != CW_ACTION_COLS)
		elog(ERROR, "incorrect number of output arguments");
	if (acts)
		cw_audit_open(&run->audit);
}

/*
 * Every backend, not only clients: the oldest horizon holder may be a
 * walsender or a background worker, even though only clients match.
 */
static void
cw_read_run_backends(CwRun *run, int read_flags)
{
	run->set = cw_read_backends(read_flags);
	run->handled = palloc0(sizeof(bool) * Max(run->set->nbackends, 1));
}

/* SQL LIKE, where a NULL pattern matches everything and NULL nothing */
static bool
cw_like(Datum name, bool name_null, text *pattern)
{
	if (pattern == NULL)
		return true;
	if (name_null)
		return false;
	return DatumGetBool(DirectFunctionCall2Coll(textlike, C_COLLATION_OID,
												name, PointerGetDatum(pattern)));
}

static bool
cw_rule_matches(CwRun *run, const CwRule *rule, const CwBackend *be)
{
	CwBackendSet *set = run->set;
	TimestampTz since;
	Datum		name;
	bool		isnull;

	if (!be->visible || !cw_is_client_backend(be))
		return false;

	switch (rule->state)
	{
		case CW_MATCH_IDLE_IN_TRANSACTION:
			if (be->state != STATE_IDLEINTRANSACTION &&
				be->state != STATE_IDLEINTRANSACTION_ABORTED)
				return false;
			break;
		case CW_MATCH_IDLE:
			if (be->state != STATE_IDLE)
				return false;
			break;
		case CW_MATCH_ACTIVE:
			if (be->state != STATE_RUNNING && be->state != STATE_FASTPATH)
				return false;
			break;
		case CW_MATCH_ANY:
			break;
	}

	/* cancelling reaches only a running statement */
	if (rule->kind == CW_SIGNAL_CANCEL &&
		be->state != STATE_RUNNING && be->state != STATE_FASTPATH)
		return false;

	since = rule->age_of_transaction ? be->xact_start : be->state_change;
	if (since == 0 || cw_age_usecs(set->now, since) < rule->older_than)
		return false;

	if (rule->datname_pattern != NULL)
	{
		name = cw_database_name(set, be->datid, &isnull);
		if (!cw_like(isnull ? (Datum) 0 :
					 DirectFunctionCall1(name_text, name), isnull,
					 rule->datname_pattern))
			return false;
	}
	if (rule->usename_pattern != NULL)
	{
		name = cw_role_name(set, be->userid, &isnull);
		if (!cw_like(isnull ? (Datum) 0 :
					 DirectFunctionCall1(name_text, name), isnull,
					 rule->usename_pattern))
			return false;
	}
	if (!cw_like(CStringGetTextDatum(be->application_name), false,
				 rule->application_pattern))
		return false;

	if (rule->only_if_holds_xmin)
	{
		TransactionId held = cw_backend_horizon_xid(be);

		if (!run->oldest_holder_known)
		{
			run->oldest_holder = cw_oldest_horizon_holder(set);
			run->oldest_holder_known = true;
		}
		if (!TransactionIdIsValid(held) ||
			!TransactionIdEquals(held, run->oldest_holder))
			return false;
	}
	return true;
}

/* Oldest first, so that the kill budget goes to the worst offenders */
static int
cw_candidate_cmp(const void *a, const void *b, void *arg)
{
	const CwRule *rule = arg;
	const CwBackend *ba = *(CwBackend *const *) a;
	const CwBackend *bb = *(CwBackend *const *) b;
	TimestampTz sa = rule->age_of_transaction ? ba->xact_start : ba->state_change;
	TimestampTz sb = rule->age_of_transaction ? bb->xact_start : bb->state_change;

	if (sa != sb)
		return sa < sb ? -1 : 1;
	return ba->pid - bb->pid;
}

static void
cw_apply_rule(CwRun *run, CwRule *rule)
{
	CwBackendSet *set = run->set;
	CwBackend **candidates;
	int			ncandidates = 0;
	int			i;

	if (rule->has_min_pct_used &&
		cw_server_pct_used(set) < rule->min_pct_used)
		return;

	candidates = palloc(sizeof(CwBackend *) * Max(set->nbackends, 1));
	for (i = 0; i < set->nbackends; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (!run->handled[i] && cw_rule_matches(run, rule, &set->backends[i]))
		{
			candidates[ncandidates++] = &set->backends[i];
			run->handled[i] = true;
		}
	}
	qsort_arg(candidates, ncandidates, sizeof(CwBackend *), cw_candidate_cmp,
			  rule);

	for (i = 0; i < ncandidates; i++)
	{
		const CwBackend *be = candidates[i];
		CwObservation observed = {0};
		CwSignalKind kind = rule->kind;
		char	   *why;

		CHECK_FOR_INTERRUPTS();

		observed.pid = be->pid;
		observed.backend_start = be->backend_start;
		observed.slot_hint = be->slot;
		observed.check_state = true;
		observed.state = be->state;
		observed.state_change = be->state_change;
		observed.check_xact = rule->age_of_transaction;
		observed.xact_start = be->xact_start;

		why = psprintf("%s for %s",
					   rule->age_of_transaction ? "transaction open" :
					   cw_state_name(be->state),
					   cw_format_duration(cw_age_usecs(set->now,
													   rule->age_of_transaction ?
													   be->xact_start :
													   be->state_change)));

		/* a running statement is cancelled first; idle ones cannot be */
		if (rule->cancel_first &&
			(be->state == STATE_RUNNING || be->state == STATE_FASTPATH))
			kind = CW_SIGNAL_CANCEL;

		(void) cw_act(run, rule, be, &observed, kind, why, false);
	}
}

/*
 * Signal one matched session through the primitive, within the budget, and
 * report the outcome -- except a change of state when the caller will
 * observe the session again (retry_on_state_change).
 */
static CwOutcome
cw_act(CwRun *run, const CwRule *rule, const CwBackend *seen,
	   CwObservation *observed, CwSignalKind kind, const char *why,
	   bool retry_on_state_change)
{
	CwLiveSession live;
	CwOutcome	outcome;
	bool		terminate = (kind == CW_SIGNAL_TERMINATE);

	/*
	 * Past the budget, still run every check (as a dry run), so that a
	 * session that would be skipped anyway is reported with its own reason.
	 */
	if (run->signals >= cw_max_terminations_per_run)
	{
		outcome = cw_signal_session(observed, kind, true, &live);
		if (outcome == CW_OUTCOME_STATE_CHANGED && retry_on_state_change)
			return outcome;
		if (outcome == CW_OUTCOME_WOULD_SIGNAL)
			cw_put_action(run, rule, &live.backend, "skipped",
						  "kill budget reached");
		else
			cw_put_action(run, rule, live.found ? &live.backend : seen,
						  "skipped", cw_outcome_reason(outcome));
		return outcome;
	}

	outcome = cw_signal_session(observed, kind, rule->dry_run, &live);
	switch (outcome)
	{
		case CW_OUTCOME_SIGNALLED:
			{
				CwSignalled *signalled = palloc(sizeof(CwSignalled));

				signalled->policy = rule->policy;
				signalled->backend = live.backend;
				signalled->kind = kind;
				signalled->reason = why;
				signalled->signalled_at = GetCurrentTimestamp();
				cw_log_action(rule->policy, &live.backend, kind, why,
							  signalled->signalled_at);
				run->unaudited = lappend(run->unaudited, signalled);
			}
			run->signals++;
			cw_put_action(run, rule, &live.backend,
						  terminate ? "terminated" : "cancelled", why);
			if (!terminate && rule->cancel_first)
			{
				CwObservation *follow_up = palloc(sizeof(CwObservation));

				*follow_up = *observed;
				run->cancelled = lappend(run->cancelled, follow_up);
				run->cancelled_rules = lappend(run->cancelled_rules, (void *) rule);
			}
			break;
		case CW_OUTCOME_WOULD_SIGNAL:
			run->signals++;
			cw_put_action(run, rule, &live.backend,
						  terminate ? "would terminate" : "would cancel", why);
			break;
		case CW_OUTCOME_STATE_CHANGED:
			if (retry_on_state_change)
				break;
			/* FALLTHROUGH */
		default:
			cw_put_action(run, rule, live.found ? &live.backend : seen,
						  "skipped", cw_outcome_reason(outcome));
			break;
	}
	return outcome;
}

/*
 * Is the session we cancelled still in the transaction we cancelled in?
 * Three ways it can be: still in the statement we cancelled (its
 * state_change has not moved; while the backend aborts, it reports no
 * xact_start but is still "active"), still in the same transaction, or
 * idle in the aborted transaction block the cancel left behind (which
 * reports no xact_start either).
 */
static bool
cw_still_in_cancelled_transaction(const CwObservation *observed,
								  TimestampTz cancelled_at, CwBackend *be)
{
	if (!cw_read_one_backend(observed->pid, observed->slot_hint, 0, be) ||
		be->backend_start != observed->backend_start)
		return false;
	if (be->state_change == observed->state_change)
		return true;
	if (be->xact_start != 0)
		return be->xact_start == observed->xact_start;
	return be->state == STATE_IDLEINTRANSACTION_ABORTED &&
		be->state_change >= cancelled_at;
}

/*
 * After cancelling running statements of long transactions, give their
 * clients connwatch.cancel_grace_period to end the transaction, then
 * terminate the sessions still in it.  Each of those is observed afresh,
 * so the primitive's re-check guards the termination like any other.
 */
static void
cw_follow_up_cancels(CwRun *run)
{
	TimestampTz cancelled_at;
	TimestampTz deadline;
	ListCell   *lc;
	ListCell   *rc;

	if (run->cancelled == NIL)
		return;

	cancelled_at = run->set->now;
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   cw_cancel_grace_period_ms);
	for (;;)
	{
		bool		pending = false;

		foreach(lc, run->cancelled)
		{
			CwBackend	be;

			if (cw_still_in_cancelled_transaction(lfirst(lc), cancelled_at, &be))
				pending = true;
		}
		if (!pending || GetCurrentTimestamp() >= deadline)
			break;

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 50, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}

	forboth(lc, run->cancelled, rc, run->cancelled_rules)
	{
		const CwRule *rule = lfirst(rc);
		const CwObservation *cancelled = lfirst(lc);
		int			attempt;

		/*
		 * Observe afresh and let the primitive re-check that observation.
		 * A backend finishing its abort moves from "active" to "idle in
		 * transaction (aborted)" and may do so in between: then observe it
		 * again (a few times at most; it settles at once).
		 */
		for (attempt = 0; attempt < 3; attempt++)
		{
			CwObservation observed = *cancelled;
			CwBackend	be;

			if (!cw_still_in_cancelled_transaction(cancelled, cancelled_at, &be))
				break;

			observed.check_state = true;
			observed.state = be.state;
			observed.state_change = be.state_change;
			observed.check_xact = false;
			if (cw_act(run, rule, &be, &observed, CW_SIGNAL_TERMINATE,
					   "transaction still open after cancel",
					   attempt < 2) != CW_OUTCOME_STATE_CHANGED)
				break;
		}
	}
}

/*
 * Write the audit rows of the signals sent so far.  A run sends all its
 * signals (each with its LOG line) first and writes the rows right after,
 * so that the last victim of a large cleanup is not kept waiting behind the
 * INSERTs for the first ones.
 */
static void
cw_write_audit(CwRun *run)
{
	ListCell   *lc;

	foreach(lc, run->unaudited)
	{
		CwSignalled *signalled = lfirst(lc);

		cw_record_action(&run->audit, signalled->policy, &signalled->backend,
						 signalled->kind, signalled->reason,
						 signalled->signalled_at);
	}
	list_free_deep(run->unaudited);
	run->unaudited = NIL;
}

static void
cw_put_action(CwRun *run, const CwRule *rule, const CwBackend *be,
			  const char *action, const char *reason)
{
	CwBackendSet *set = run->set;
	Datum		values[CW_ACTION_COLS] = {0};
	bool		nulls[CW_ACTION_COLS] = {0};

	cw_identity_datums(set, be, values, nulls);
	if (be->visible)
	{
		values[7] = cw_age_datum(set->now, be->state_change, &nulls[7]);
		values[8] = cw_age_datum(set->now, be->xact_start, &nulls[8]);
	}
	else
		nulls[7] = nulls[8] = true;
	values[9] = cw_xid_age_datum(set, cw_backend_horizon_xid(be), &nulls[9]);
	values[10] = CStringGetTextDatum(action);
	values[11] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	nulls[11] = (reason == NULL);
	values[12] = rule->policy ? CStringGetTextDatum(rule->policy) : (Datum) 0;
	nulls[12] = (rule->policy == NULL);

	tuplestore_putvalues(run->rsinfo->setResult, run->rsinfo->setDesc,
						 values, nulls);
}

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
 * Read the enabled policies, in name order, from the extension's own table
 * (extension_tables.c), with nothing in the statement resolved through the
 * caller's search_path.
 */
static List *
cw_load_policies(bool dry_run)
{
	MemoryContext caller_context = CurrentMemoryContext;
	CwExtensionTable table;
	StringInfoData sql;
	List	   *policies = NIL;
	int			save_nestlevel;
	int			column;
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

	for (i = 0; i < SPI_processed; i++)
	{
		MemoryContext spi_context = MemoryContextSwitchTo(caller_context);

		CHECK_FOR_INTERRUPTS();
		policies = lappend(policies,
						   cw_policy_rule(SPI_tuptable->vals[i],
										  SPI_tuptable->tupdesc, dry_run));
		MemoryContextSwitchTo(spi_context);
	}

	cw_spi_finish_pinned(save_nestlevel);
	return policies;
}
