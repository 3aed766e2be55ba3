/*-------------------------------------------------------------------------
 *
 * hooks.c
 *		emit_log_hook and ClientAuthentication_hook: where a connection
 *		attempt is refused, a login succeeds and a session reports the
 *		FATAL that ends it.
 *
 * What these hooks may touch, and why:
 *
 * - emit_log_hook runs for every message that goes to the server log, in
 *   every process: in the postmaster, in a child that has no PGPROC (it
 *   could not get one, or it is a dead-end child that only refuses), in an
 *   established session.  Where there is no PGPROC an LWLock PANICs the
 *   server, and an error raised here would recurse into error reporting.
 *   So it acts on FATALs of client connections only (MyProcPort set), and
 *   does nothing but the lock-free count of refusals.c or, in an
 *   established session, note the SQLSTATE for the exit callback; and on
 *   the WARNINGs of BEGIN inside a transaction or COMMIT outside one, which
 *   it only notes, for the exit callback too.  No
 *   allocation, no lock, no error; it always chains to the previous hook.
 * - ClientAuthentication_hook runs in a backend that has its PGPROC, at the
 *   end of authentication, with its outcome.  STATUS_EOF is a client that
 *   hung up at the password prompt, which core does not report at all.  It
 *   chains to the previous hook first, and touches nothing but the
 *   refusal ledger and the backend's own session state.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq/auth.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"

#include "remember/hooks.h"
#include "remember/refusals.h"
#include "remember/sessions.h"

static emit_log_hook_type cw_prev_emit_log_hook = NULL;
static ClientAuthentication_hook_type cw_prev_client_authentication_hook = NULL;

static void cw_emit_log(ErrorData *edata);
static bool cw_is_misplaced_transaction_command(const ErrorData *edata);
static void cw_client_authentication(Port *port, int status);

/*
 * BEGIN inside a transaction block, or COMMIT/ROLLBACK outside one: told by
 * the untranslated message, since SET LOCAL and SET TRANSACTION outside a
 * block raise the same SQLSTATE 25P01 and are not what we look for.
 */
static bool
cw_is_misplaced_transaction_command(const ErrorData *edata)
{
	if (edata->message_id == NULL)
		return false;
	if (edata->sqlerrcode == ERRCODE_ACTIVE_SQL_TRANSACTION)
		return strcmp(edata->message_id,
					  "there is already a transaction in progress") == 0;
	if (edata->sqlerrcode == ERRCODE_NO_ACTIVE_SQL_TRANSACTION)
		return strcmp(edata->message_id,
					  "there is no transaction in progress") == 0;
	return false;
}

static void
cw_emit_log(ErrorData *edata)
{
	if (edata->elevel == FATAL && MyProcPort != NULL && cw_remember != NULL)
	{
		if (cw_session_is_established())
			cw_session_note_fatal(edata->sqlerrcode);
		else
			cw_count_refusal(cw_refusal_cause(edata->sqlerrcode,
											  edata->message_id),
							 MyProcPort);
	}
	else if (edata->elevel == WARNING && MyProcPort != NULL &&
			 cw_remember != NULL && cw_session_is_established() &&
			 cw_is_misplaced_transaction_command(edata))
		cw_session_note_transaction_warning();

	if (cw_prev_emit_log_hook)
		cw_prev_emit_log_hook(edata);
}

static void
cw_client_authentication(Port *port, int status)
{
	if (cw_prev_client_authentication_hook)
		cw_prev_client_authentication_hook(port, status);

	if (cw_remember == NULL)
		return;
	if (status == STATUS_EOF)
		cw_count_refusal(CW_REFUSED_AUTHENTICATION_ABANDONED, port);
	else if (status == STATUS_OK)
		cw_session_authenticated(port);
}

/* From _PG_init, while shared_preload_libraries is being processed */
void
cw_hooks_preload(void)
{
	cw_prev_emit_log_hook = emit_log_hook;
	emit_log_hook = cw_emit_log;
	cw_prev_client_authentication_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = cw_client_authentication;
}
