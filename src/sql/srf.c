/*-------------------------------------------------------------------------
 *
 * srf.c
 *		Result set-up and argument checks shared by the SQL-callable
 *		functions.
 *
 * Every set-returning function of pg_connwatch materializes its result
 * (compat.h knows how on each major) and checks that the row type the SQL
 * declaration gives has the number of columns the C code fills: an install
 * script and a library of different versions fail here with an error, not
 * with a crash.  Arguments a user gets wrong are errors with a SQLSTATE,
 * never "match nothing".
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "observe/durations.h"
#include "sql/srf.h"

/* Set up materialized output and check the declared row shape */
ReturnSetInfo *
cw_begin_srf(FunctionCallInfo fcinfo, int ncols)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	cw_init_materialized_srf(fcinfo);
	if (rsinfo->setDesc->natts != ncols)
		elog(ERROR, "incorrect number of output arguments");
	return rsinfo;
}

/*
 * older_than, in microseconds: NULL and negative intervals are errors.  It
 * is judged as a whole, like the policies' CHECK ('1 day -1 s' is fine),
 * with months as 30 days, as interval comparison does.
 */
int64
cw_older_than_arg(FunctionCallInfo fcinfo, int argno)
{
	int64		usecs;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("older_than must not be NULL")));

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

bool
cw_bool_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
	return PG_GETARG_BOOL(argno);
}

/* A LIKE pattern; NULL matches everything */
text *
cw_pattern_arg(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) ? NULL : PG_GETARG_TEXT_PP(argno);
}
