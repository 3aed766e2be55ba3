/*-------------------------------------------------------------------------
 *
 * signal.c
 *		The one primitive that cancels or terminates a backend.
 *
 * Everything in pg_connwatch that signals a backend goes through
 * cw_signal_session().  It is given the observation that justified acting
 * -- the session as (pid, backend_start), and optionally the state it was
 * seen in since a given instant and the transaction it was in -- and right
 * before signalling it re-reads that backend's live status from shared
 * memory (never a transaction-frozen snapshot).  It signals only when the
 * backend is still the same session, still in the same state since the
 * same instant, a client backend, not the caller's own, not protected, and
 * for a cancel, running a statement (SIGINT does nothing to an idle
 * session, in a transaction or not), and the caller may signal it under
 * pg_signal_backend's rules (signalfuncs.c): superuser-owned (or role-less)
 * backends only by superusers, others by roles with the privileges of the
 * backend's role or of pg_signal_backend.  Otherwise it reports why it did
 * not -- except for a session the caller may not see (pg_stat_activity's
 * rule), which is "not permitted" whatever its state or start time, so that
 * the reasons cannot be used to probe what pg_stat_activity hides.
 *
 * Protection is by what a session cannot forge.  Its login role (PGPROC's
 * roleid, which SET ROLE does not change) is protected when listed in
 * connwatch.protected_roles.  Its application_name, which any session can
 * SET, protects it only together with its role: listed in
 * connwatch.protected_applications, and the role a superuser or a member
 * of a role listed in connwatch.protected_application_roles.  All three
 * settings are superuser-only.
 *
 * XXX: between the re-check and kill() the target can still change state;
 * that window is a few instructions long and the server offers no way to
 * close it (pg_terminate_backend() has the same one between its lookup and
 * its kill()).  What the re-check closes is the window between observing
 * and acting, which is as long as the caller's transaction.
 *
 * For tests only, connwatch.debug_signal_barrier makes the primitive wait
 * on a shared advisory lock between observing and re-checking, so that a
 * test can change the victim while the primitive is known to be paused.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>
#include <signal.h>

#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

#include "act/signal.h"
#include "compat.h"
#include "pg_connwatch.h"
#include "remember/sessions.h"

static bool cw_name_in_list(const char *name, const CwNameList *list);
static bool cw_is_protected_role(Oid roleid);
static bool cw_is_protected_application(const char *application_name,
										Oid roleid);
static void cw_wait_at_debug_barrier(void);

/*
 * Is name one of the names of a list setting (parsed by its check hook)?
 * Names are compared exactly as written: application names are not
 * identifiers, and role names are matched as stored.
 */
static bool
cw_name_in_list(const char *name, const CwNameList *list)
{
	const char *candidate = list->names;
	int			i;

	if (name == NULL)
		return false;
	for (i = 0; i < list->count; i++)
	{
		if (strcmp(name, candidate) == 0)
			return true;
		candidate += strlen(candidate) + 1;
	}
	return false;
}

static bool
cw_is_protected_role(Oid roleid)
{
	char	   *rolname = GetUserNameFromId(roleid, true);

	return rolname != NULL && cw_name_in_list(rolname, cw_protected_role_names);
}

/*
 * A protected application name, on a session whose login role may claim
 * it: a superuser, or a member of a role in protected_application_roles.
 */
static bool
cw_is_protected_application(const char *application_name, Oid roleid)
{
	const CwNameList *roles = cw_protected_application_role_names;
	const char *name = roles->names;
	int			i;

	if (!cw_name_in_list(application_name, cw_protected_application_names))
		return false;
	if (!OidIsValid(roleid))
		return false;
	if (superuser_arg(roleid))
		return true;
	for (i = 0; i < roles->count; i++)
	{
		Oid			listed = get_role_oid(name, true);

		if (OidIsValid(listed) && is_member_of_role(roleid, listed))
			return true;
		name += strlen(name) + 1;
	}
	return false;
}

static void
cw_wait_at_debug_barrier(void)
{
	if (cw_debug_signal_barrier == 0)
		return;
	DirectFunctionCall1(pg_advisory_xact_lock_shared_int8,
						Int64GetDatum((int64) cw_debug_signal_barrier));
}

/*
 * Re-check the observed session and signal it if every check passes (or,
 * for a dry run, report that it would).  live receives what the re-check
 * read, for the caller's result row and audit.  policy (NULL for none) is
 * what the session's ending is attributed to in the remember layer.
 */
CwOutcome
cw_signal_session(const CwObservation *observed, CwSignalKind kind,
				  const char *policy, bool dry_run, CwLiveSession *live)
{
	CwBackend  *be = &live->backend;
	Oid			roleid;
	int			sig = (kind == CW_SIGNAL_TERMINATE) ? SIGTERM : SIGINT;

	cw_wait_at_debug_barrier();

	live->found = cw_read_one_backend(observed->pid, observed->slot_hint,
									  CW_READ_PROC | CW_READ_QUERY, be);
	if (!live->found)
		return CW_OUTCOME_GONE;

	/*
	 * A session the caller may not see is "not permitted", whatever else is
	 * true of it: any other answer would tell its state, or whether a
	 * guessed backend_start is right.
	 */
	if (!be->visible)
		return CW_OUTCOME_NOT_PERMITTED;
	if (be->backend_start != observed->backend_start)
		return CW_OUTCOME_REPLACED;
	if (be->backend_type != B_BACKEND)
		return CW_OUTCOME_NOT_CLIENT;
	if (be->pid == MyProcPid)
		return CW_OUTCOME_OWN_SESSION;
	if (observed->check_state &&
		(be->state != observed->state ||
		 be->state_change != observed->state_change))
		return CW_OUTCOME_STATE_CHANGED;
	if (observed->check_xact && be->xact_start != observed->xact_start)
		return CW_OUTCOME_TRANSACTION_CHANGED;
	/* SIGINT does nothing to a session that runs no statement */
	if (kind == CW_SIGNAL_CANCEL &&
		be->state != STATE_RUNNING && be->state != STATE_FASTPATH)
		return CW_OUTCOME_NOTHING_TO_CANCEL;

	/* the PGPROC's role is what core judges signal permission by */
	if (!be->have_proc)
		return CW_OUTCOME_GONE;
	roleid = be->proc_roleid;

	if (cw_is_protected_role(roleid))
		return CW_OUTCOME_PROTECTED_ROLE;
	if (cw_is_protected_application(be->application_name, roleid))
		return CW_OUTCOME_PROTECTED_APPLICATION;
	if ((!OidIsValid(roleid) || superuser_arg(roleid)) && !superuser())
		return CW_OUTCOME_SUPERUSER;
	if (!has_privs_of_role(GetUserId(), roleid) &&
		!has_privs_of_role(GetUserId(), CW_ROLE_SIGNAL_BACKEND))
		return CW_OUTCOME_NOT_PERMITTED;

	if (dry_run)
		return CW_OUTCOME_WOULD_SIGNAL;

	/* the session's exit callback attributes its ending to us */
	if (kind == CW_SIGNAL_TERMINATE)
		cw_mark_termination(be->pid, be->backend_start, policy);

	/*
	 * Signal the process group, as pg_signal_backend() does.  A process
	 * that exited since the re-check is "gone"; any other failure is
	 * reported by its errno, as core reports it, not taken for an exit.
	 */
#ifdef HAVE_SETSID
	if (kill(-be->pid, sig) != 0)
#else
	if (kill(be->pid, sig) != 0)
#endif
	{
		if (errno == ESRCH)
			return CW_OUTCOME_GONE;
		ereport(WARNING,
				(errmsg("could not send signal to process %d: %m", be->pid)));
		return CW_OUTCOME_SIGNAL_FAILED;
	}

	return CW_OUTCOME_SIGNALLED;
}

const char *
cw_outcome_reason(CwOutcome outcome)
{
	switch (outcome)
	{
		case CW_OUTCOME_SIGNALLED:
		case CW_OUTCOME_WOULD_SIGNAL:
			return NULL;
		case CW_OUTCOME_GONE:
			return "gone";
		case CW_OUTCOME_REPLACED:
			return "backend_start mismatch";
		case CW_OUTCOME_NOT_CLIENT:
			return "not a client backend";
		case CW_OUTCOME_OWN_SESSION:
			return "own session";
		case CW_OUTCOME_STATE_CHANGED:
			return "state changed";
		case CW_OUTCOME_TRANSACTION_CHANGED:
			return "transaction changed";
		case CW_OUTCOME_NOTHING_TO_CANCEL:
			return "no statement to cancel";
		case CW_OUTCOME_PROTECTED_ROLE:
			return "protected role";
		case CW_OUTCOME_PROTECTED_APPLICATION:
			return "protected application";
		case CW_OUTCOME_SUPERUSER:
			return "superuser";
		case CW_OUTCOME_NOT_PERMITTED:
			return "not permitted";
		case CW_OUTCOME_SIGNAL_FAILED:
			return "signal failed";
	}
	return "unknown";
}
