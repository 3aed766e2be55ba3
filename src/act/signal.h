/*-------------------------------------------------------------------------
 *
 * signal.h
 *		The one primitive that signals a backend.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#ifndef CW_SIGNAL_H
#define CW_SIGNAL_H

#include "observe/backend_state.h"

typedef enum CwSignalKind
{
	CW_SIGNAL_TERMINATE,		/* SIGTERM: end the session */
	CW_SIGNAL_CANCEL			/* SIGINT: cancel the running statement */
} CwSignalKind;

/*
 * The observation that justified acting on a session.  The session is
 * (pid, backend_start); the state and transaction fields are checked only
 * when the corresponding flag is set.
 */
typedef struct CwObservation
{
	int			pid;
	TimestampTz backend_start;
	int			slot_hint;		/* status slot it was seen in, or -1 */
	bool		check_state;
	BackendState state;
	TimestampTz state_change;
	bool		check_xact;
	TimestampTz xact_start;
} CwObservation;

typedef enum CwOutcome
{
	CW_OUTCOME_SIGNALLED,
	CW_OUTCOME_WOULD_SIGNAL,	/* dry run: every check passed */
	CW_OUTCOME_GONE,
	CW_OUTCOME_REPLACED,
	CW_OUTCOME_NOT_CLIENT,
	CW_OUTCOME_OWN_SESSION,
	CW_OUTCOME_STATE_CHANGED,
	CW_OUTCOME_TRANSACTION_CHANGED,
	CW_OUTCOME_NOTHING_TO_CANCEL,
	CW_OUTCOME_PROTECTED_ROLE,
	CW_OUTCOME_PROTECTED_APPLICATION,
	CW_OUTCOME_SUPERUSER,
	CW_OUTCOME_NOT_PERMITTED,
	CW_OUTCOME_SIGNAL_FAILED	/* kill() failed other than with ESRCH */
} CwOutcome;

/* What the re-check read of the session, for results and the audit */
typedef struct CwLiveSession
{
	bool		found;
	CwBackend	backend;
} CwLiveSession;

extern CwOutcome cw_signal_session(const CwObservation *observed,
								   CwSignalKind kind, const char *policy,
								   bool dry_run, CwLiveSession *live);
extern const char *cw_outcome_reason(CwOutcome outcome);

#endif							/* CW_SIGNAL_H */
