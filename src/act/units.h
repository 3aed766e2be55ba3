/*-------------------------------------------------------------------------
 *
 * units.h
 *		Units of work that an error rolls back alone: an internal
 *		subtransaction inside a caller's transaction, or the transaction
 *		itself in a background worker.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#ifndef CW_UNITS_H
#define CW_UNITS_H

#include "utils/elog.h"
#include "utils/palloc.h"
#include "utils/resowner.h"

typedef struct CwUnit
{
	bool		own_transactions;	/* a worker: units are transactions */
	bool		open;
	MemoryContext context;		/* where the caller allocates, kept */
	ResourceOwner owner;		/* the caller's resource owner */
	uint32		holdoff;		/* interrupt hold-off counts at the start */
	uint32		cancel_holdoff;
} CwUnit;

extern void cw_unit_begin(CwUnit *unit, bool own_transactions);
extern void cw_unit_commit(CwUnit *unit);
extern void cw_unit_end(CwUnit *unit);
extern ErrorData *cw_unit_abort(CwUnit *unit);

#endif							/* CW_UNITS_H */
