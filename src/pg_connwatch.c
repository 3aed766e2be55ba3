/*-------------------------------------------------------------------------
 *
 * pg_connwatch.c
 *		Module entry point: the settings of pg_connwatch.
 *
 * The observe and act layers need no shared memory of their own and work
 * without shared_preload_libraries; the library is loaded on the first call
 * of one of its functions, and defines its settings then.  Settings that
 * only shape what a caller is shown are USERSET; the safety settings of the
 * act layer (protections, kill budget) are SUSET, so that a cleanup role
 * cannot switch them off for its own session.  So are the thresholds of
 * diagnose() and of the limits' status (warning_pct, critical_pct): they
 * decide what a superuser's session and the metrics exporter are told, and
 * a database owner must not be able to silence them with ALTER DATABASE
 * ... SET.  (Before the library is loaded, core refuses to store an
 * unknown setting in pg_db_role_setting for anyone but a superuser, since
 * it may turn out to be SUSET: validate_option_array_item().)
 *
 * The thresholds of connwatch.diagnose() are read by that SQL function
 * with current_setting(); they are defined here so that they have types,
 * units and bounds.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/varlena.h"

#include "compat.h"
#include "pg_connwatch.h"
#include "remember/history.h"
#include "remember/hooks.h"
#include "remember/persistence.h"
#include "remember/sessions.h"
#include "remember/shared_state.h"
#include "worker/worker.h"

CW_MODULE_MAGIC;

int			cw_long_transaction_threshold_ms = 60 * 1000;
double		cw_warning_pct = 80.0;
double		cw_critical_pct = 95.0;
char	   *cw_protected_roles = NULL;
char	   *cw_protected_applications = NULL;
char	   *cw_protected_application_roles = NULL;
int			cw_max_terminations_per_run = 50;
int			cw_cancel_grace_period_ms = 5 * 1000;
int			cw_audit_retention_min = 30 * 24 * 60;
int			cw_debug_signal_barrier = 0;

/* connwatch.diagnose()'s thresholds: only SQL reads them */
static int	cw_diagnose_window_s = 15 * 60;
static int	cw_diagnose_idle_in_transaction_ms = 60 * 1000;
static int	cw_diagnose_horizon_age_s = 30 * 60;
static int	cw_diagnose_xmin_age = 50 * 1000 * 1000;
static double cw_diagnose_churn_rate = 10.0;
static int	cw_diagnose_network_idle_timeout_s = 0;

static const CwNameList cw_no_names = {0};
const CwNameList *cw_protected_role_names = &cw_no_names;
const CwNameList *cw_protected_application_names = &cw_no_names;
const CwNameList *cw_protected_application_role_names = &cw_no_names;

void		_PG_init(void);
static void cw_define_diagnose_settings(void);
static bool cw_check_name_list(char **newval, void **extra, GucSource source);
static void cw_assign_protected_roles(const char *newval, void *extra);
static void cw_assign_protected_applications(const char *newval, void *extra);
static void cw_assign_protected_application_roles(const char *newval,
												  void *extra);

/*
 * A list of names, as search_path or shared_preload_libraries take them,
 * parsed here once into a CwNameList, the setting's "extra", so that the
 * signal primitive only compares strings.
 */
static bool
cw_check_name_list(char **newval, void **extra, GucSource source)
{
	char	   *raw = pstrdup(*newval);
	List	   *names;
	ListCell   *lc;
	Size		size = offsetof(CwNameList, names);
	CwNameList *parsed;
	char	   *next;

	if (!SplitGUCList(raw, ',', &names))
	{
		GUC_check_errdetail("List syntax is invalid.");
		list_free(names);
		pfree(raw);
		return false;
	}
	foreach(lc, names)
		size += strlen((char *) lfirst(lc)) + 1;

	parsed = cw_guc_malloc(size);
	if (parsed == NULL)
	{
		list_free(names);
		pfree(raw);
		return false;
	}
	parsed->count = list_length(names);
	next = parsed->names;
	foreach(lc, names)
	{
		strcpy(next, (char *) lfirst(lc));
		next += strlen(next) + 1;
	}
	list_free(names);
	pfree(raw);

	*extra = parsed;
	return true;
}

static void
cw_assign_protected_roles(const char *newval, void *extra)
{
	cw_protected_role_names = extra ? extra : &cw_no_names;
}

static void
cw_assign_protected_applications(const char *newval, void *extra)
{
	cw_protected_application_names = extra ? extra : &cw_no_names;
}

static void
cw_assign_protected_application_roles(const char *newval, void *extra)
{
	cw_protected_application_role_names = extra ? extra : &cw_no_names;
}

static void
cw_define_diagnose_settings(void)
{
	DefineCustomIntVariable("connwatch.diagnose_window",
							"How far back connwatch.diagnose() looks in the ledgers and the history.",
							"Refusals and endings older than this are not findings; an application's connections must have been flat this long to count as an exhausted pool.",
							&cw_diagnose_window_s,
							15 * 60,
							1, 7 * 24 * 60 * 60,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("connwatch.diagnose_idle_in_transaction",
							"Time idle in a transaction after which connwatch.diagnose() calls a session leaked.",
							NULL,
							&cw_diagnose_idle_in_transaction_ms,
							60 * 1000,
							1, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("connwatch.diagnose_horizon_age",
							"Time after which connwatch.diagnose() reports what holds the xmin horizon back.",
							NULL,
							&cw_diagnose_horizon_age_s,
							30 * 60,
							1, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("connwatch.diagnose_xmin_age",
							"Transaction IDs behind which connwatch.diagnose() reports what holds the xmin horizon back, however recent.",
							NULL,
							&cw_diagnose_xmin_age,
							50 * 1000 * 1000,
							1, INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomRealVariable("connwatch.diagnose_churn_rate",
							 "Sessions per second, each shorter than a second, from which connwatch.diagnose() reports an application's churn.",
							 NULL,
							 &cw_diagnose_churn_rate,
							 10.0,
							 0.01, 1000000.0,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("connwatch.diagnose_network_idle_timeout",
							"Idle timeout of a firewall or load balancer between the applications and the server.",
							"connwatch.diagnose() reports pooled connections idle longer than this. 0 turns the check off.",
							&cw_diagnose_network_idle_timeout_s,
							0,
							0, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);
}

void
_PG_init(void)
{
	DefineCustomIntVariable("connwatch.long_transaction_threshold",
							"Transaction age above which connwatch.long_transactions lists a session.",
							NULL,
							&cw_long_transaction_threshold_ms,
							60 * 1000,
							0, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomRealVariable("connwatch.warning_pct",
							 "Percentage of a connection limit at which connwatch.connection_limits reports \"warning\".",
							 NULL,
							 &cw_warning_pct,
							 80.0,
							 0.0, 100.0,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomRealVariable("connwatch.critical_pct",
							 "Percentage of a connection limit at which connwatch.connection_limits reports \"critical\".",
							 NULL,
							 &cw_critical_pct,
							 95.0,
							 0.0, 100.0,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("connwatch.protected_roles",
							   "Login roles whose sessions pg_connwatch never cancels or terminates.",
							   "A comma-separated list of role names.",
							   &cw_protected_roles,
							   "",
							   PGC_SUSET,
							   GUC_LIST_INPUT,
							   cw_check_name_list, cw_assign_protected_roles,
							   NULL);

	/*
	 * Any session can SET application_name: a name alone protects nothing.
	 * It protects the sessions of superusers and of members of
	 * connwatch.protected_application_roles, which a session cannot choose.
	 */
	DefineCustomStringVariable("connwatch.protected_applications",
							   "application_name values that protect a session of a superuser or of a member of connwatch.protected_application_roles.",
							   "A comma-separated list of application names. Any session can choose its application_name: the name protects only sessions whose login role is a superuser or a member of a role in connwatch.protected_application_roles.",
							   &cw_protected_applications,
							   "pg_dump,pg_basebackup,pg_restore,pg_rewind,pg_cron",
							   PGC_SUSET,
							   GUC_LIST_INPUT,
							   cw_check_name_list,
							   cw_assign_protected_applications, NULL);

	DefineCustomStringVariable("connwatch.protected_application_roles",
							   "Roles whose members' sessions connwatch.protected_applications protects.",
							   "A comma-separated list of role names; membership counts. Superusers' sessions are protected by the application names without being listed.",
							   &cw_protected_application_roles,
							   "",
							   PGC_SUSET,
							   GUC_LIST_INPUT,
							   cw_check_name_list,
							   cw_assign_protected_application_roles, NULL);

	DefineCustomIntVariable("connwatch.max_terminations_per_run",
							"Most sessions one call of an action function may cancel or terminate.",
							"Sessions beyond the budget are reported as skipped.",
							&cw_max_terminations_per_run,
							50,
							0, INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("connwatch.cancel_grace_period",
							"How long terminate_long_transactions waits after a cancel before it terminates.",
							NULL,
							&cw_cancel_grace_period_ms,
							5 * 1000,
							0, 10 * 60 * 1000,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("connwatch.audit_retention",
							"How long connwatch.enforce() keeps rows of connwatch.terminations.",
							"0 keeps them forever.",
							&cw_audit_retention_min,
							30 * 24 * 60,
							0, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MIN,
							NULL, NULL, NULL);

	DefineCustomIntVariable("connwatch.debug_signal_barrier",
							"For tests: advisory lock key the signal primitive waits on before its re-check.",
							"0 disables the barrier.",
							&cw_debug_signal_barrier,
							0,
							0, INT_MAX,
							PGC_SUSET,
							GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL,
							NULL, NULL, NULL);

	cw_define_diagnose_settings();

	if (process_shared_preload_libraries_in_progress)
	{
		cw_remember_preload();
		cw_persistence_preload();
		cw_history_preload();
		cw_sessions_preload();
		cw_hooks_preload();
		cw_worker_preload();
	}

	cw_reserve_guc_prefix("connwatch");
}
