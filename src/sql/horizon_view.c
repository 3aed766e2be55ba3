/*-------------------------------------------------------------------------
 *
 * horizon_view.c
 *		The SQL-callable function behind connwatch.xmin_horizon.
 *
 * One row per holder of the xmin horizon (observe/xmin_horizon.c), oldest
 * first.  Details of a backend holder follow pg_stat_activity's
 * visibility rule.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "datums.h"
#include "observe/xmin_horizon.h"
#include "printable.h"
#include "sql/srf.h"

#define CW_XMIN_HORIZON_COLS	10

PG_FUNCTION_INFO_V1(cw_xmin_horizon);

Datum
cw_xmin_horizon(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = cw_begin_srf(fcinfo, CW_XMIN_HORIZON_COLS);
	CwBackendSet *set;
	ListCell   *lc;

	set = cw_read_backends(CW_READ_PROC);

	foreach(lc, cw_horizon_holders(set))
	{
		CwHorizonHolder *holder = lfirst(lc);
		CwBackend  *be = holder->backend;
		Datum		values[CW_XMIN_HORIZON_COLS] = {0};
		bool		nulls[CW_XMIN_HORIZON_COLS] = {0};

		values[0] = CStringGetTextDatum(cw_holder_type_name(holder->type));
		/* a prepared transaction's GID is any login role's choice */
		values[1] = CStringGetTextDatum(cw_printable(holder->name,
													 cw_printable_keeps_unicode()));
		values[2] = Int32GetDatum(holder->pid);
		nulls[2] = (holder->pid == 0);
		values[3] = cw_database_datum(&set->names, holder->datid, &nulls[3]);
		values[4] = cw_role_datum(&set->names, holder->userid, &nulls[4]);

		nulls[5] = nulls[6] = nulls[9] = true;
		if (be != NULL)
		{
			values[5] = CStringGetTextDatum(be->application_name);
			nulls[5] = false;
			if (be->visible)
			{
				TimestampTz since = (holder->type == CW_HOLDER_WALSENDER) ?
					be->backend_start : be->xact_start;

				values[6] = cw_state_datum(be->state, &nulls[6]);
				values[9] = TimestampTzGetDatum(since);
				nulls[9] = (since == 0);
			}
		}

		values[7] = TransactionIdGetDatum(holder->xmin);
		values[8] = cw_xid_age_datum(set->age_base, holder->xmin, &nulls[8]);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	cw_release_backends(set);
	return (Datum) 0;
}
