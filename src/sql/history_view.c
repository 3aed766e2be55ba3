/*-------------------------------------------------------------------------
 *
 * history_view.c
 *		The SQL-callable function behind connwatch.history.
 *
 * connwatch.history(since, until): one row per sample of the ring buffer
 * (remember/history.c) taken in [since, until], oldest first.  The
 * applications of a sample are three parallel arrays -- names, connections,
 * sessions idle in a transaction -- with "other" last when applications
 * beyond connwatch.history_applications had connections.  Application
 * names are shown to roles with pg_read_all_stats only, as in peaks.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "compat.h"
#include "remember/history.h"
#include "remember/shared_state.h"
#include "sql/srf.h"

#define CW_HISTORY_COLS	13

/*
 * Samples copied out of the ring at a time: the function's memory is this
 * many samples (about 0.5 MB with 100 applications), whatever the ring's
 * size and the range asked for.
 */
#define CW_HISTORY_CHUNK	64

PG_FUNCTION_INFO_V1(cw_history_function);

static Datum cw_int4_array(const int32 *values, int n);
static void cw_history_put_row(ReturnSetInfo *rsinfo, CwHistorySample *s,
							   bool sees_applications);

static Datum
cw_int4_array(const int32 *values, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		elems[i] = Int32GetDatum(values[i]);
	return PointerGetDatum(construct_array(elems, n, INT4OID, sizeof(int32),
										   true, TYPALIGN_INT));
}

Datum
cw_history_function(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	TimestampTz since;
	TimestampTz until;
	CwHistorySample *chunk;
	Size		stride;
	uint64		cursor = 0;
	int			nsamples;
	bool		sees_applications;
	MemoryContext rows_context;
	MemoryContext old_context;

	cw_remember_require();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("since and until must not be NULL")));
	since = PG_GETARG_TIMESTAMPTZ(0);
	until = PG_GETARG_TIMESTAMPTZ(1);
	rsinfo = cw_begin_srf(fcinfo, CW_HISTORY_COLS);
	sees_applications = cw_has_read_all_stats(GetUserId());

	/* one chunk of samples, and the rows' datums freed after each chunk */
	stride = cw_history_sample_size();
	chunk = palloc(mul_size(stride, CW_HISTORY_CHUNK));
	rows_context = AllocSetContextCreate(CurrentMemoryContext,
										 "pg_connwatch history rows",
										 ALLOCSET_DEFAULT_SIZES);
	while ((nsamples = cw_history_read(since, until, &cursor, chunk,
									   CW_HISTORY_CHUNK)) > 0)
	{
		int			i;

		old_context = MemoryContextSwitchTo(rows_context);
		for (i = 0; i < nsamples; i++)
			cw_history_put_row(rsinfo,
							   (CwHistorySample *) ((char *) chunk + i * stride),
							   sees_applications);
		MemoryContextSwitchTo(old_context);
		MemoryContextReset(rows_context);
		CHECK_FOR_INTERRUPTS();
	}
	MemoryContextDelete(rows_context);
	pfree(chunk);
	return (Datum) 0;
}

/* One sample as a row of the result */
static void
cw_history_put_row(ReturnSetInfo *rsinfo, CwHistorySample *s,
				   bool sees_applications)
{
	Datum		values[CW_HISTORY_COLS] = {0};
	bool		nulls[CW_HISTORY_COLS] = {0};
	int			napps = Min(Max(s->napplications, 0), cw_history_applications);
	Datum	   *names = palloc(sizeof(Datum) * (napps + 1));
	int32	   *connections = palloc(sizeof(int32) * (napps + 1));
	int32	   *idle_in_transaction = palloc(sizeof(int32) * (napps + 1));
	int			n = 0;
	int			a;

	values[0] = TimestampTzGetDatum(s->sampled_at);
	values[1] = Int32GetDatum(s->client_backends);
	values[2] = Int32GetDatum(s->active);
	values[3] = Int32GetDatum(s->idle);
	values[4] = Int32GetDatum(s->idle_in_transaction);
	values[5] = Int32GetDatum(s->waiting);
	nulls[6] = (s->oldest_xact_usecs < 0);
	if (!nulls[6])
	{
		Interval   *age = palloc0(sizeof(Interval));

		age->time = s->oldest_xact_usecs;
		values[6] = DirectFunctionCall1(interval_justify_hours,
										IntervalPGetDatum(age));
	}
	values[7] = Int32GetDatum(s->oldest_xmin_age);
	nulls[7] = (s->oldest_xmin_age < 0);
	values[8] = Int64GetDatum(s->refused);
	values[9] = Int64GetDatum(s->ended);

	for (a = 0; a < napps; a++, n++)
	{
		s->applications[a].name[NAMEDATALEN - 1] = '\0';
		names[n] = CStringGetTextDatum(s->applications[a].name);
		connections[n] = s->applications[a].connections;
		idle_in_transaction[n] = s->applications[a].idle_in_transaction;
	}
	if (s->other_connections > 0)
	{
		names[n] = CStringGetTextDatum("other");
		connections[n] = s->other_connections;
		idle_in_transaction[n] = s->other_idle_in_transaction;
		n++;
	}
	values[10] = PointerGetDatum(construct_array(names, n, TEXTOID, -1,
												 false, TYPALIGN_INT));
	nulls[10] = !sees_applications;
	values[11] = cw_int4_array(connections, n);
	values[12] = cw_int4_array(idle_in_transaction, n);

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}
