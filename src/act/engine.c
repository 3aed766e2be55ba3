/*-------------------------------------------------------------------------
 *
 * engine.c
 *		Apply rules to one reading of backend state, through the signal
 *		primitive, and return what happened as plain data.
 *
 * A rule says which client sessions to act on (state, how long, which
 * database, role and application) and how (cancel or terminate).  The
 * rule functions apply one rule each, enforce() every enabled policy
 * (policies.c), and the same engine serves any caller that is not an SQL
 * function at all: it knows nothing of tuples.  Every signal goes through
 * cw_signal_session(), which re-checks the live session right before it;
 * a run stops at connwatch.max_terminations_per_run signals, and reports
 * every other session it matched with the reason it was skipped.
 *
 * Only sessions the caller may see (pg_stat_activity's rule) can match: a
 * rule cannot judge a session whose state it is not allowed to read.  The
 * run counts the ones its filters would otherwise consider (hidden), so
 * that the caller can say so instead of returning nothing.
 *
 * Every real signal is written to the audit trail (audit.c) at once: the
 * LOG line, then the row, then the unit of work that holds the row is
 * committed (units.c), all with interrupts held off, so that neither a
 * cancel, a statement timeout nor a SIGTERM can come between a signal and
 * its row.  The trail is opened (and its table locked) before the first
 * signal: whatever would keep a row from being written stops the run
 * before anything is killed.  Each rule runs in a unit of its own: a rule
 * that fails is reported as a WARNING, with its error's SQLSTATE, and
 * skipped; the rows of the signals already sent stay.  The patterns of
 * every rule are checked before anything, so that the one known run-time
 * error of a rule (a LIKE pattern that ends with its escape character) is
 * caught before the first signal.  The policies skipped are returned as
 * data (CwRunResult.failures) for the caller to report.
 *
 * Units are internal subtransactions in a caller's transaction (the SQL
 * functions), or whole transactions in the background worker
 * (CW_RUN_OWN_TRANSACTIONS).  A subtransaction released into the caller's
 * transaction is still rolled back with it: for SQL callers, what the
 * engine guarantees is that the row is written with the signal and that
 * nothing the run itself does or receives loses it.  From the first signal
 * on, a cancel or a statement timeout is held off: when one arrives, the
 * run sends no further signal, and returns normally with a WARNING
 * (SQLSTATE 57014) instead of an error, so that its statement and the rows
 * can commit.  A ROLLBACK, an error after the function returned, or the
 * end of the caller's session before its commit still remove the rows;
 * the LOG lines stay.
 *
 * XXX: in a caller's transaction, each row gets a subtransaction (and a
 * subtransaction XID) of its own; past 64 of them the caller's
 * subtransaction cache overflows until it commits, as with a PL/pgSQL loop
 * around an exception block.  The default kill budget (50) stays below
 * (a unit that writes no row takes no XID).
 *
 * Concurrency: a run is per backend.  It reads backend state without locks
 * (observe/backend_state.c) and re-checks every session right before its
 * signal (signal.c).
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "common/hashfn.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "act/audit.h"
#include "act/engine.h"
#include "act/units.h"
#include "compat.h"
#include "observe/connection_limits.h"
#include "observe/durations.h"
#include "observe/xmin_horizon.h"
#include "pg_connwatch.h"

/* The state of one run */
typedef struct CwRun
{
	CwRunResult *result;
	CwAuditTrail audit;			/* opened when the run may signal */
	CwBackendSet *set;
	bool	   *handled;		/* per backend: already reported this run */
	bool	   *hidden;			/* per backend: counted in result->hidden */
	TransactionId oldest_holder;
	bool		oldest_holder_known;
	int			signals;		/* sent, or that a dry run would send */
	int			signalled;		/* really sent (and recorded) */
	List	   *cancelled;		/* CwObservation of cancels to follow up */
	List	   *cancelled_rules;	/* the CwRule of each */
	bool		own_transactions;	/* CW_RUN_OWN_TRANSACTIONS */
	CwUnit		unit;			/* the unit of the rule being applied */
	bool		cancel_held;	/* HOLD_CANCEL_INTERRUPTS since the 1st signal */
	bool		cancel_held_in_unit;	/* ... taken in the current unit */
	bool		recording;		/* between a signal and its committed row */
	CwBackend	recording_backend;	/* ... the session signalled */
	bool		recording_terminate;
	const char *recording_why;
	const CwBackend **pending;	/* the rule's candidates not acted on yet */
	int			npending;
	const char *stopped;		/* why no further signal is sent, or NULL */
} CwRun;

static bool cw_rule_patterns_valid(const CwRule *rule, List **failures);
static void cw_apply_rule_in_unit(CwRun *run, CwRule *rule);
static void cw_rule_failed(CwRun *run, const CwRule *rule, ErrorData *edata);
static void cw_apply_rule(CwRun *run, CwRule *rule);
static bool cw_names_match(CwRun *run, const CwRule *rule, const CwBackend *be);
static bool cw_rule_matches(CwRun *run, const CwRule *rule, const CwBackend *be);
static bool cw_like(const char *name, text *pattern);
static CwOutcome cw_act(CwRun *run, const CwRule *rule, const CwBackend *seen,
						CwObservation *observed, CwSignalKind kind,
						const char *why, bool retry_on_state_change);
static void cw_follow_up_cancels(CwRun *run);
static void cw_follow_up_cancels_in_unit(CwRun *run);
static bool cw_hold_cancel(CwRun *run);
static void cw_release_cancel(bool held, int signalled);
static void cw_add_action(CwRun *run, const CwRule *rule,
						  const CwBackend *be, const char *action,
						  const char *reason);

/*
 * Apply the rules, in order, over one reading of backend state.  A session
 * is acted on (or reported) by the first rule that matches it, and only
 * once.  The result lives in the caller's memory context.
 */
CwRunResult *
cw_run_rules(List *rules, int options)
{
	CwRun		run;
	ListCell   *lc;
	List	   *valid = NIL;
	int			read_flags = 0;

	memset(&run, 0, sizeof(CwRun));
	run.result = palloc0(sizeof(CwRunResult));
	run.own_transactions = (options & CW_RUN_OWN_TRANSACTIONS) != 0;

	/* before anything: a rule that could fail at run time is not applied */
	foreach(lc, rules)
	{
		CwRule	   *rule = lfirst(lc);

		if (cw_rule_patterns_valid(rule, &run.result->failures))
			valid = lappend(valid, rule);
	}

	if (options & CW_RUN_MAY_SIGNAL)
		cw_audit_open(&run.audit);
	if (options & CW_RUN_PRUNE_AUDIT)
		cw_prune_audit(&run.audit);

	foreach(lc, valid)
		if (((CwRule *) lfirst(lc))->only_if_holds_xmin)
			read_flags |= CW_READ_PROC;

	/*
	 * Every backend, not only clients: the oldest horizon holder may be a
	 * walsender or a background worker, even though only clients match.
	 */
	run.set = cw_read_backends(read_flags);
	run.handled = palloc0(sizeof(bool) * Max(run.set->nbackends, 1));
	run.hidden = palloc0(sizeof(bool) * Max(run.set->nbackends, 1));
	run.result->now = run.set->now;
	run.result->age_base = run.set->age_base;

	foreach(lc, valid)
		cw_apply_rule_in_unit(&run, (CwRule *) lfirst(lc));
	cw_follow_up_cancels_in_unit(&run);

	cw_release_backends(run.set);
	cw_release_cancel(run.cancel_held, run.signalled);
	return run.result;
}

/*
 * Signal exactly one session, observed by the caller, and record it: the
 * audit trail is opened first, and a signal sent gets its LOG line and its
 * row with interrupts held off, as in a run.  reason goes into both.
 */
CwOutcome
cw_signal_and_record(const CwObservation *observed, CwSignalKind kind,
					 const char *reason, CwLiveSession *live)
{
	CwAuditTrail audit;
	CwOutcome	outcome;
	bool		cancel_held = false;

	cw_audit_open(&audit);
	if (audit.writable)
	{
		CHECK_FOR_INTERRUPTS();
		HOLD_CANCEL_INTERRUPTS();
		cancel_held = true;
	}
	HOLD_INTERRUPTS();
	outcome = cw_signal_session(observed, kind, NULL, false, live);
	if (outcome == CW_OUTCOME_SIGNALLED)
	{
		TimestampTz signalled_at = GetCurrentTimestamp();

		cw_log_action(NULL, &live->backend, kind, reason, signalled_at);
		cw_record_action(&audit, NULL, &live->backend, kind, reason,
						 signalled_at);
	}
	RESUME_INTERRUPTS();
	cw_release_cancel(cancel_held, outcome == CW_OUTCOME_SIGNALLED ? 1 : 0);
	return outcome;
}

/*
 * Is every LIKE pattern of the rule one that textlike() accepts whatever
 * the name it is matched with?  The only pattern it refuses is one that
 * ends with the escape character, and it says so only when a name gets
 * that far: check it here, before anything is signalled.  A policy with
 * such a pattern is skipped (a failure for the caller to report); a rule
 * function's argument is an error (nothing was signalled yet).
 */
static bool
cw_rule_patterns_valid(const CwRule *rule, List **failures)
{
	text	   *patterns[3] = {rule->datname_pattern, rule->usename_pattern,
	rule->application_pattern};
	const char *columns[3] = {"datname", "usename", "application_name"};
	int			i;

	for (i = 0; i < 3; i++)
	{
		const char *p;
		int			len;
		bool		valid = true;

		if (patterns[i] == NULL)
			continue;
		p = VARDATA_ANY(patterns[i]);
		len = VARSIZE_ANY_EXHDR(patterns[i]);
		while (len > 0)
		{
			int			l;

			if (*p == '\\')
			{
				p++;
				len--;
				if (len <= 0)
				{
					valid = false;
					break;
				}
			}
			l = pg_mblen(p);
			p += l;
			len -= l;
		}
		if (valid)
			continue;

		if (rule->policy == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_ESCAPE_SEQUENCE),
					 errmsg("the %s pattern ends with the escape character",
							columns[i]),
					 errdetail("A LIKE pattern must not end with an unescaped backslash."),
					 errhint("Write \\\\ for a backslash in the name.")));
		*failures = cw_add_failure(*failures, ERRCODE_INVALID_ESCAPE_SEQUENCE,
								   psprintf("policy \"%s\" skipped: its %s pattern ends with the escape character",
											rule->policy, columns[i]),
								   "A LIKE pattern must not end with an unescaped backslash.",
								   "The other policies are applied. Write \\\\ for a backslash in the name.");
		return false;
	}
	return true;
}

/*
 * Apply one rule in a unit of its own (units.c): an error in it is
 * reported and the rule skipped, and the rows of the signals already sent,
 * each committed with its unit, stay.
 */
static void
cw_apply_rule_in_unit(CwRun *run, CwRule *rule)
{
	run->cancel_held_in_unit = false;
	run->npending = 0;
	cw_unit_begin(&run->unit, run->own_transactions);
	PG_TRY();
	{
		cw_apply_rule(run, rule);
		cw_unit_end(&run->unit);
	}
	PG_CATCH();
	{
		cw_rule_failed(run, rule, cw_unit_abort(&run->unit));
	}
	PG_END_TRY();
}

/* The follow-up of cancel_first, in a unit as a rule is */
static void
cw_follow_up_cancels_in_unit(CwRun *run)
{
	if (run->cancelled == NIL)
		return;
	run->cancel_held_in_unit = false;
	run->npending = 0;
	cw_unit_begin(&run->unit, run->own_transactions);
	PG_TRY();
	{
		cw_follow_up_cancels(run);
		cw_unit_end(&run->unit);
	}
	PG_CATCH();
	{
		cw_rule_failed(run, linitial(run->cancelled_rules),
					   cw_unit_abort(&run->unit));
	}
	PG_END_TRY();
}

/*
 * A rule failed (its unit is rolled back).  A cancel before the first
 * signal is the caller's to see: raised again.  So is any error of a rule
 * function before it signalled anything.  Otherwise the error becomes a
 * WARNING with its SQLSTATE and the run goes on; if it was the audit row
 * that failed, the run sends no further signal.
 */
static void
cw_rule_failed(CwRun *run, const CwRule *rule, ErrorData *edata)
{
	if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
		(rule->policy == NULL && run->signalled == 0))
		ReThrowError(edata);

	/* the unit's roll-back restored the hold-off counts of its start */
	if (run->cancel_held_in_unit)
		HOLD_CANCEL_INTERRUPTS();
	run->cancel_held_in_unit = false;
	if (run->recording)
	{
		/* signalled, with its LOG line, but without its row: say so */
		run->recording = false;
		run->stopped = "audit trail failed";
		run->signals++;
		run->signalled++;
		cw_add_action(run, rule, &run->recording_backend,
					  run->recording_terminate ? "terminated" : "cancelled",
					  psprintf("%s (no audit row: %s)", run->recording_why,
							   edata->message));
	}
	if (run->own_transactions && run->audit.writable)
		cw_audit_lock(&run->audit);

	/* the rule's sessions it did not reach */
	while (run->npending > 0)
	{
		cw_add_action(run, rule, *run->pending, "skipped",
					  run->stopped ? run->stopped : "policy failed");
		run->pending++;
		run->npending--;
	}

	run->result->failures =
		cw_add_failure(run->result->failures, edata->sqlerrcode,
					   rule->policy ?
					   psprintf("policy \"%s\" skipped: %s", rule->policy,
								edata->message) :
					   psprintf("rule skipped: %s", edata->message),
					   edata->detail,
					   run->stopped ?
					   psprintf("No further session is signalled in this run: %s.",
								run->stopped) :
					   "The other policies are applied.");
	FreeErrorData(edata);
}

/* Append a failure, its texts copied into the current memory context */
List *
cw_add_failure(List *failures, int sqlerrcode, char *message,
			   const char *detail, const char *hint)
{
	CwRuleFailure *failure = palloc(sizeof(CwRuleFailure));

	failure->sqlerrcode = sqlerrcode;
	failure->message = pstrdup(message);
	failure->detail = detail ? pstrdup(detail) : NULL;
	failure->hint = hint ? pstrdup(hint) : NULL;
	return lappend(failures, failure);
}

/*
 * Report the failures at elevel (WARNING for an SQL caller); returns a
 * hash of what they say (0 for none), so that a caller that runs the same
 * policies again and again (the worker) can tell a new failure from the
 * same one.
 */
uint32
cw_report_failures(List *failures, int elevel)
{
	ListCell   *lc;
	uint32		hash = 0;

	foreach(lc, failures)
	{
		CwRuleFailure *failure = lfirst(lc);

		hash = hash_combine(hash,
							hash_bytes((const unsigned char *) failure->message,
									   strlen(failure->message)));
		hash = hash_combine(hash, (uint32) failure->sqlerrcode);
		ereport(elevel,
				(errcode(failure->sqlerrcode),
				 errmsg_internal("%s", failure->message),
				 failure->detail ? errdetail_internal("%s", failure->detail) : 0,
				 failure->hint ? errhint("%s", failure->hint) : 0));
	}
	return (failures != NIL && hash == 0) ? 1 : hash;
}

/*
 * From the first real signal on, hold off cancels (and statement timeouts,
 * which arrive as cancels) until the run ends; see the file header.  Only
 * where rows are written: on a standby, a cancel works as anywhere.
 * Returns false when a cancel is pending: send no further signal.
 */
static bool
cw_hold_cancel(CwRun *run)
{
	if (!run->audit.writable)
		return true;
	if (!run->cancel_held)
	{
		/* nothing signalled yet: a pending cancel is an error as usual */
		CHECK_FOR_INTERRUPTS();
		HOLD_CANCEL_INTERRUPTS();
		run->cancel_held = true;
		run->cancel_held_in_unit = true;
	}
	if (QueryCancelPending && run->stopped == NULL)
		run->stopped = "run cancelled";
	return run->stopped == NULL;
}

/*
 * The end of the hold: a cancel that arrived after a signal stopped the run
 * and is answered with a WARNING instead of an error, so that the rows of
 * the signals sent can commit.  Without a signal sent, it is left pending,
 * and raised as usual.
 *
 * XXX: this consumes the cancel request, as ProcessInterrupts() would; the
 * timeout indicators are reset the same way.
 */
static void
cw_release_cancel(bool held, int signalled)
{
	bool		statement_timeout;
	bool		lock_timeout;

	if (!held)
		return;
	RESUME_CANCEL_INTERRUPTS();
	if (!QueryCancelPending || signalled == 0 || QueryCancelHoldoffCount > 0)
		return;

	QueryCancelPending = false;
	statement_timeout = get_timeout_indicator(STATEMENT_TIMEOUT, true);
	lock_timeout = get_timeout_indicator(LOCK_TIMEOUT, true);
	ereport(WARNING,
			(errcode(ERRCODE_QUERY_CANCELED),
			 errmsg_plural("%s after %d signal: no further session was signalled",
						   "%s after %d signals: no further session was signalled",
						   signalled,
						   statement_timeout ? "statement timeout" :
						   lock_timeout ? "lock timeout" : "cancel request",
						   signalled),
			 errdetail("The run returned instead of failing, so that the audit rows of the sessions it signalled are kept with its transaction.")));
}

/* SQL LIKE in the C collation, where a NULL pattern matches everything */
static bool
cw_like(const char *name, text *pattern)
{
	if (pattern == NULL)
		return true;
	if (name == NULL)
		return false;
	return DatumGetBool(DirectFunctionCall2Coll(textlike, C_COLLATION_OID,
												CStringGetTextDatum(name),
												PointerGetDatum(pattern)));
}

/*
 * The filters on what pg_stat_activity shows everybody: database, role and
 * application name.
 */
static bool
cw_names_match(CwRun *run, const CwRule *rule, const CwBackend *be)
{
	const NameData *name;

	if (rule->datname_pattern != NULL)
	{
		name = cw_database_name(&run->set->names, be->datid);
		if (!cw_like(name ? NameStr(*name) : NULL, rule->datname_pattern))
			return false;
	}
	if (rule->usename_pattern != NULL)
	{
		name = cw_role_name(&run->set->names, be->userid);
		if (!cw_like(name ? NameStr(*name) : NULL, rule->usename_pattern))
			return false;
	}
	return cw_like(be->application_name, rule->application_pattern);
}

/* A visible client session: does the rule select it? */
static bool
cw_rule_matches(CwRun *run, const CwRule *rule, const CwBackend *be)
{
	TimestampTz since;

	switch (rule->state)
	{
		case CW_MATCH_IDLE_IN_TRANSACTION:
			if (!cw_is_idle_in_transaction(be))
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
	if (since == 0 || cw_age_usecs(run->set->now, since) < rule->older_than)
		return false;

	if (!cw_names_match(run, rule, be))
		return false;

	if (rule->only_if_holds_xmin)
	{
		TransactionId held = cw_backend_horizon_xid(be);

		if (!run->oldest_holder_known)
		{
			run->oldest_holder = cw_oldest_horizon_holder(run->set);
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
		CwBackend  *be = &set->backends[i];

		CHECK_FOR_INTERRUPTS();
		if (run->handled[i] || !cw_is_client_backend(be))
			continue;
		if (!be->visible)
		{
			if (!run->hidden[i] && cw_names_match(run, rule, be))
			{
				run->hidden[i] = true;
				run->result->hidden++;
			}
			continue;
		}
		if (cw_rule_matches(run, rule, be))
		{
			candidates[ncandidates++] = be;
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

		/* if the rule fails, the ones left are reported (cw_rule_failed) */
		run->pending = (const CwBackend **) &candidates[i + 1];
		run->npending = ncandidates - i - 1;

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

	/* a cancelled run, or one whose trail failed, signals nothing more */
	if (run->stopped != NULL && !rule->dry_run)
	{
		cw_add_action(run, rule, seen, "skipped", run->stopped);
		return CW_OUTCOME_NOT_PERMITTED;
	}

	/*
	 * Past the budget, still run every check (as a dry run), so that a
	 * session that would be skipped anyway is reported with its own reason.
	 */
	if (run->signals >= cw_max_terminations_per_run)
	{
		outcome = cw_signal_session(observed, kind, rule->policy, true, &live);
		if (outcome == CW_OUTCOME_STATE_CHANGED && retry_on_state_change)
			return outcome;
		if (outcome == CW_OUTCOME_WOULD_SIGNAL)
			cw_add_action(run, rule, &live.backend, "skipped",
						  "kill budget reached");
		else
			cw_add_action(run, rule, live.found ? &live.backend : seen,
						  "skipped", cw_outcome_reason(outcome));
		return outcome;
	}

	if (!rule->dry_run)
	{
		if (!cw_hold_cancel(run))
		{
			cw_add_action(run, rule, seen, "skipped", run->stopped);
			return CW_OUTCOME_NOT_PERMITTED;
		}
		/* the signal, its LOG line and its committed row: nothing between */
		HOLD_INTERRUPTS();
	}
	outcome = cw_signal_session(observed, kind, rule->policy, rule->dry_run,
								&live);
	if (outcome == CW_OUTCOME_SIGNALLED)
	{
		TimestampTz signalled_at = GetCurrentTimestamp();

		cw_log_action(rule->policy, &live.backend, kind, why, signalled_at);
		run->recording = true;
		run->recording_backend = live.backend;
		run->recording_terminate = terminate;
		run->recording_why = why;
		cw_record_action(&run->audit, rule->policy, &live.backend, kind, why,
						 signalled_at);
		cw_unit_commit(&run->unit);
		run->recording = false;
		run->signalled++;
	}
	if (!rule->dry_run)
		RESUME_INTERRUPTS();
	/* a new transaction: lock the trail again, before the next signal */
	if (outcome == CW_OUTCOME_SIGNALLED && run->own_transactions)
		cw_audit_lock(&run->audit);

	switch (outcome)
	{
		case CW_OUTCOME_SIGNALLED:
			run->signals++;
			cw_add_action(run, rule, &live.backend,
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
			cw_add_action(run, rule, &live.backend,
						  terminate ? "would terminate" : "would cancel", why);
			break;
		case CW_OUTCOME_STATE_CHANGED:
			if (retry_on_state_change)
				break;
			pg_fallthrough;
		default:
			cw_add_action(run, rule, live.found ? &live.backend : seen,
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

	cancelled_at = run->result->now;
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
		/* a cancel held since the cancels were sent ends the wait */
		if (!cw_hold_cancel(run))
			break;
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

/* Report what happened to one session */
static void
cw_add_action(CwRun *run, const CwRule *rule, const CwBackend *be,
			  const char *action, const char *reason)
{
	CwAction   *entry = palloc(sizeof(CwAction));

	entry->policy = rule->policy;
	entry->backend = *be;
	entry->action = action;
	entry->reason = reason;
	run->result->actions = lappend(run->result->actions, entry);
}
