/*-------------------------------------------------------------------------
 *
 * engine.h
 *		Rules that pick stale sessions, applied through the signal
 *		primitive; the outcomes as plain data.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#ifndef CW_ENGINE_H
#define CW_ENGINE_H

#include "act/signal.h"
#include "observe/backend_state.h"

typedef enum CwStateFilter
{
	CW_MATCH_IDLE_IN_TRANSACTION,	/* including aborted */
	CW_MATCH_IDLE,
	CW_MATCH_ACTIVE,
	CW_MATCH_ANY
} CwStateFilter;

/* Which client sessions to act on, and how */
typedef struct CwRule
{
	char	   *policy;			/* NULL for the rule functions */
	CwStateFilter state;
	int64		older_than;		/* microseconds */
	bool		age_of_transaction; /* else age of the state */
	text	   *datname_pattern;	/* LIKE patterns; NULL: all */
	text	   *usename_pattern;
	text	   *application_pattern;
	bool		only_if_holds_xmin;
	bool		has_min_pct_used;
	double		min_pct_used;
	CwSignalKind kind;
	bool		cancel_first;	/* cancel active statements, then terminate */
	bool		dry_run;
} CwRule;

/* What a run did to one session, or would have done, or why it did not */
typedef struct CwAction
{
	const char *policy;			/* the rule's policy, NULL for none */
	CwBackend	backend;		/* as the re-check read it, else as seen */
	const char *action;			/* "terminated", "would cancel", "skipped"... */
	const char *reason;
} CwAction;

/*
 * A policy (or rule) that could not be applied: skipped, and reported by
 * the caller (cw_report_failures), as a WARNING with this SQLSTATE.
 */
typedef struct CwRuleFailure
{
	int			sqlerrcode;
	char	   *message;		/* names the policy */
	char	   *detail;			/* or NULL */
	char	   *hint;			/* or NULL */
} CwRuleFailure;

/* cw_run_rules() options */
#define CW_RUN_MAY_SIGNAL	0x01	/* open the audit trail before anything */
#define CW_RUN_PRUNE_AUDIT	0x02	/* and prune it (connwatch.audit_retention) */
/*
 * The caller is a background worker outside any portal, in a transaction
 * with an active snapshot, and allocates in a memory context that outlives
 * transactions: each audit row is committed at once, and each rule runs in
 * a transaction of its own (units.c).  The caller is left in a transaction.
 */
#define CW_RUN_OWN_TRANSACTIONS	0x04

typedef struct CwRunResult
{
	List	   *actions;		/* CwAction, in the order they happened */
	List	   *failures;		/* CwRuleFailure of the rules skipped */

	/*
	 * Client sessions the rules' database, role and application filters
	 * match but whose state the caller may not see, so that no rule could
	 * judge them (each counted once).
	 */
	int			hidden;

	/* what the ages and xid ages of the actions are measured against */
	TimestampTz now;
	TransactionId age_base;
} CwRunResult;

extern CwRunResult *cw_run_rules(List *rules, int options);
extern List *cw_add_failure(List *failures, int sqlerrcode, char *message,
							const char *detail, const char *hint);
extern uint32 cw_report_failures(List *failures, int elevel);
extern CwOutcome cw_signal_and_record(const CwObservation *observed,
									  CwSignalKind kind, const char *reason,
									  CwLiveSession *live);

#endif							/* CW_ENGINE_H */
