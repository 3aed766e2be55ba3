/*-------------------------------------------------------------------------
 *
 * units.c
 *		Units of work that an error rolls back alone.
 *
 * The engine applies each rule, and commits each audit row, in a unit of
 * its own, so that an error in one rule is reported and skipped without
 * rolling back what the others did, and a row written right after its
 * signal is kept whatever fails later.  In a caller's transaction (the SQL
 * functions) a unit is an internal subtransaction, as PL/pgSQL's exception
 * blocks use them: cw_unit_commit() releases it into the caller's
 * transaction, which still decides the row's fate (a ROLLBACK of the
 * caller's transaction removes it).  In a background worker that runs
 * outside any portal (own_transactions) a unit is the transaction itself:
 * cw_unit_commit() commits it, so that nothing after it can lose the row.
 *
 * Concurrency: none; units are per backend.  The caller's memory context
 * must outlive the units (for a worker: not a transaction's context), and
 * is made current again after each of these calls.  cw_unit_abort() is
 * called in a PG_CATCH block only; it restores the interrupt hold-off
 * counts that were in force when the unit began (errfinish() resets them
 * to zero before the longjmp), copies the error and rolls the unit back.
 *
 * Copyright (c) 2026, pg_connwatch developers
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "act/units.h"

static void cw_unit_restart_transaction(bool push_snapshot,
										MemoryContext context);

/* Open a unit; the caller's memory context and resource owner are kept */
void
cw_unit_begin(CwUnit *unit, bool own_transactions)
{
	unit->own_transactions = own_transactions;
	unit->context = CurrentMemoryContext;
	unit->owner = CurrentResourceOwner;
	unit->holdoff = InterruptHoldoffCount;
	unit->cancel_holdoff = QueryCancelHoldoffCount;
	if (!own_transactions)
	{
		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(unit->context);
	}
	unit->open = true;
}

/*
 * Make what the unit did permanent (as far as the unit can: see above) and
 * open the next one.
 */
void
cw_unit_commit(CwUnit *unit)
{
	Assert(unit->open);
	if (unit->own_transactions)
		cw_unit_restart_transaction(ActiveSnapshotSet(), unit->context);
	else
	{
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(unit->context);
		CurrentResourceOwner = unit->owner;
		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(unit->context);
	}
}

/* Close the unit, keeping what it did */
void
cw_unit_end(CwUnit *unit)
{
	Assert(unit->open);
	if (!unit->own_transactions)
	{
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(unit->context);
		CurrentResourceOwner = unit->owner;
	}
	unit->open = false;
}

/*
 * In a PG_CATCH block: roll the unit back and return the error, copied
 * into the caller's memory context.  The unit is closed; a worker is left
 * in a fresh transaction (with a snapshot), as it was before the unit.
 */
ErrorData *
cw_unit_abort(CwUnit *unit)
{
	ErrorData  *edata;

	InterruptHoldoffCount = unit->holdoff;
	QueryCancelHoldoffCount = unit->cancel_holdoff;
	MemoryContextSwitchTo(unit->context);
	edata = CopyErrorData();
	FlushErrorState();

	if (unit->own_transactions)
	{
		HOLD_INTERRUPTS();
		AbortOutOfAnyTransaction();
		cw_unit_restart_transaction(true, unit->context);
		RESUME_INTERRUPTS();
	}
	else
	{
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(unit->context);
		CurrentResourceOwner = unit->owner;
	}
	unit->open = false;
	return edata;
}

/* A worker: commit (unless aborted) and start the next transaction */
static void
cw_unit_restart_transaction(bool push_snapshot, MemoryContext context)
{
	if (IsTransactionState())
	{
		if (ActiveSnapshotSet())
			PopActiveSnapshot();
		CommitTransactionCommand();
	}
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (push_snapshot)
		PushActiveSnapshot(GetTransactionSnapshot());
	MemoryContextSwitchTo(context);
}
