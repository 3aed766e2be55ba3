/*-------------------------------------------------------------------------
 *
 * pg_connwatch.c
 *		Module entry point: the settings of pg_connwatch.
 *
 * The observe layer needs no shared memory of its own and works without
 * shared_preload_libraries; the library is loaded on the first call of
 * one of its functions, and defines its settings then.  Settings are
 * USERSET: they shape what a caller is shown, nothing more.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "utils/guc.h"

#include "pg_connwatch.h"

PG_MODULE_MAGIC;

int			cw_long_transaction_threshold_ms = 60 * 1000;
double		cw_warning_pct = 80.0;
double		cw_critical_pct = 95.0;

void		_PG_init(void);

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
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomRealVariable("connwatch.critical_pct",
							 "Percentage of a connection limit at which connwatch.connection_limits reports \"critical\".",
							 NULL,
							 &cw_critical_pct,
							 95.0,
							 0.0, 100.0,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("connwatch");
}
