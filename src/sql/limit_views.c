/*-------------------------------------------------------------------------
 *
 * limit_views.c
 *		SQL-callable functions behind connwatch.connection_limits and
 *		connwatch.connection_headroom.
 *
 * The counting and judging is observe/connection_limits.c's; this file
 * turns it into rows, with pct_used rounded once and the status judged on
 * the rounded figure, so that what is shown and what is judged agree.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "observe/connection_limits.h"
#include "pg_connwatch.h"
#include "sql/srf.h"

#define CW_CONNECTION_LIMITS_COLS	7
#define CW_CONNECTION_HEADROOM_COLS	7

PG_FUNCTION_INFO_V1(cw_connection_limits);
PG_FUNCTION_INFO_V1(cw_connection_headroom);

static void cw_check_thresholds(void);
static void cw_put_limit_row(ReturnSetInfo *rsinfo, const char *scope,
							 const char *name, int used, int max);

/* warning_pct above critical_pct would make "warning" unreachable */
static void
cw_check_thresholds(void)
{
	if (cw_warning_pct > cw_critical_pct)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("connwatch.warning_pct (%g) must not exceed connwatch.critical_pct (%g)",
						cw_warning_pct, cw_critical_pct)));
}

/*
 * Emit one row of connection_limits.  max < 0 means unlimited.  pct_used
 * is rounded to one decimal, half up, and the status compares that rounded
 * value.
 */
static void
cw_put_limit_row(ReturnSetInfo *rsinfo, const char *scope, const char *name,
				 int used, int max)
{
	Datum		values[CW_CONNECTION_LIMITS_COLS] = {0};
	bool		nulls[CW_CONNECTION_LIMITS_COLS] = {0};
	const char *status = "ok";

	values[0] = CStringGetTextDatum(scope);
	nulls[1] = (name == NULL);
	values[2] = Int32GetDatum(used);

	if (max < 0)
		nulls[3] = nulls[4] = nulls[5] = true;
	else
	{
		int64		tenths;
		char		pct[32];

		tenths = cw_pct_tenths(used, max);
		snprintf(pct, sizeof(pct), INT64_FORMAT ".%d",
				 tenths / 10, (int) (tenths % 10));

		values[3] = Int32GetDatum(max);
		values[4] = Int32GetDatum(Max(max - used, 0));
		values[5] = DirectFunctionCall3(numeric_in, CStringGetDatum(pct),
										ObjectIdGetDatum(InvalidOid),
										Int32GetDatum(-1));
		if (tenths >= cw_critical_pct * 10)
			status = "critical";
		else if (tenths >= cw_warning_pct * 10)
			status = "warning";
	}
	values[6] = CStringGetTextDatum(status);

	/* name is of type name: hand the tuplestore a full NAMEDATALEN buffer */
	if (name != NULL)
	{
		NameData   *namedata = palloc(sizeof(NameData));

		namestrcpy(namedata, name);
		values[1] = NameGetDatum(namedata);
	}

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * connwatch.connection_limits(): server, reserved, then one row per
 * database and per role that has a limit or a counted connection.
 */
Datum
cw_connection_limits(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	CwServerUsage usage;
	CwBackendSet *set;
	CwLimitedObject *databases;
	CwLimitedObject *roles;
	int			ndatabases;
	int			nroles;
	int			i;

	cw_check_thresholds();
	rsinfo = cw_begin_srf(fcinfo, CW_CONNECTION_LIMITS_COLS);

	set = cw_read_backends(0);
	cw_count_server(set, &usage);
	databases = cw_read_databases(&ndatabases);
	roles = cw_read_roles(&nroles);
	cw_count_usage(set, databases, ndatabases, roles, nroles);

	cw_put_limit_row(rsinfo, "server", NULL, usage.client_backends,
					 usage.general_max);
	if (usage.reserved_max > 0)
		cw_put_limit_row(rsinfo, "reserved", NULL,
						 Max(usage.client_backends - usage.general_max, 0),
						 usage.reserved_max);

	for (i = 0; i < ndatabases; i++)
		cw_put_limit_row(rsinfo, "database", NameStr(databases[i].name),
						 databases[i].used, databases[i].limit);

	for (i = 0; i < nroles; i++)
	{
		CwLimitedObject *role = &roles[i];

		if (role->used == 0 && !(role->can_login && role->limit >= 0))
			continue;
		cw_put_limit_row(rsinfo, "role", NameStr(role->name), role->used,
						 role->superuser ? -1 : role->limit);
	}

	cw_release_backends(set);
	return (Datum) 0;
}

/*
 * connwatch.connection_headroom(): how many more connections each login
 * role with a session or a CONNECTION LIMIT could open right now.
 */
Datum
cw_connection_headroom(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = cw_begin_srf(fcinfo, CW_CONNECTION_HEADROOM_COLS);
	CwServerUsage usage;
	CwBackendSet *set;
	CwLimitedObject *roles;
	int			nroles;
	int			i;

	set = cw_read_backends(0);
	cw_count_server(set, &usage);
	roles = cw_read_roles(&nroles);
	cw_count_usage(set, NULL, 0, roles, nroles);

	for (i = 0; i < nroles; i++)
	{
		CwLimitedObject *role = &roles[i];
		Datum		values[CW_CONNECTION_HEADROOM_COLS] = {0};
		bool		nulls[CW_CONNECTION_HEADROOM_COLS] = {0};
		const char *binding;
		bool		can_use_reserved;
		int			headroom;

		if (!role->can_login || (role->used == 0 && role->limit < 0))
			continue;

		headroom = cw_role_headroom(&usage, role, &can_use_reserved, &binding);

		values[0] = NameGetDatum(&role->name);
		values[1] = BoolGetDatum(role->superuser);
		values[2] = BoolGetDatum(can_use_reserved);
		/* a superuser's CONNECTION LIMIT is never applied */
		values[3] = Int32GetDatum(role->limit);
		nulls[3] = role->superuser || role->limit < 0;
		values[4] = Int32GetDatum(role->used);
		values[5] = Int32GetDatum(headroom);
		values[6] = CStringGetTextDatum(binding);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	cw_release_backends(set);
	return (Datum) 0;
}
